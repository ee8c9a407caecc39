import pytest
import torch

from noisymss.models.classifier import Block, ConvNeXt, InstrumentClassifier


def test_shapes_and_sizes():
    small = InstrumentClassifier.small(n_classes=5, sample_rate=16000).eval()
    assert small(torch.randn(3, 2, 16000)).shape == (3, 5)
    assert small(torch.randn(3, 16000)).shape == (3, 5)  # mono without a channel axis
    assert sum(p.numel() for p in small.parameters()) < 500_000
    tiny = InstrumentClassifier.tiny()
    assert 27e6 < sum(p.numel() for p in tiny.parameters()) < 29e6  # ConvNeXt-Tiny is 28 M
    with pytest.raises(ValueError, match="one width per stage"):
        ConvNeXt(4, depths=(1, 1), dims=(8,))


def test_a_clip_scores_the_same_alone_or_in_a_batch():
    """No batch statistics anywhere: refine scores stems one by one, training saw batches."""
    torch.manual_seed(0)
    model = InstrumentClassifier.small(sample_rate=16000).eval()
    batch = torch.randn(4, 2, 16000) * 0.1
    torch.testing.assert_close(model(batch[1:2]), model(batch)[1:2], rtol=1e-4, atol=1e-5)


def test_stochastic_depth_only_while_training():
    torch.manual_seed(0)
    block = Block(8, drop_path=0.5, layer_scale=1.0)
    x = torch.randn(16, 8, 6, 6)
    block.eval()
    torch.testing.assert_close(block(x), block(x))
    block.train()
    y = block(x)
    skipped = [torch.equal(y[i], x[i]) for i in range(16)]
    assert 0 < sum(skipped) < 16  # whole examples skip the branch, others keep it (rescaled)
