import torch

from noisymss.models.jdc import JDC

KERAS_PARAMETERS = 4_177_556  # summed from the weight shapes of the authors' released Keras model
TORCH_EXTRA_LSTM_BIAS = 2 * 4 * (256 + 32)  # PyTorch keeps two bias vectors per LSTM gate


def test_full_size_parameter_count_matches_the_published_model():
    n = sum(p.numel() for p in JDC().parameters())
    assert n == KERAS_PARAMETERS + TORCH_EXTRA_LSTM_BIAS


def test_output_shapes_and_fused_voicing_is_a_distribution():
    model = JDC.small().eval()
    pitch, voice = model(torch.randn(3, 1, 31, 513))
    assert pitch.shape == (3, 31, 722) and voice.shape == (3, 31, 2)
    torch.testing.assert_close(voice.exp().sum(-1), torch.ones(3, 31))


def test_time_resolution_is_kept_for_any_patch_length():
    pitch, voice = JDC.small().eval()(torch.randn(1, 1, 7, 513))
    assert pitch.shape == (1, 7, 722) and voice.shape == (1, 7, 2)


def test_small_size_is_much_smaller():
    assert sum(p.numel() for p in JDC.small().parameters()) < 0.1 * KERAS_PARAMETERS
