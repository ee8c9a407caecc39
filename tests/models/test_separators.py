import pytest
import torch

from noisymss.models.separators import SIZES, build_separator

SOURCES = ["vocals", "drums", "bass", "other"]


@pytest.mark.parametrize("arch", list(SIZES))
def test_small_separators_map_a_mixture_to_sources(arch):
    torch.manual_seed(0)
    model = build_separator(arch, SOURCES, "small", sample_rate=16000, channels=2, segment=1.0).eval()
    x = torch.randn(2, 2, 16000) * 0.1
    with torch.no_grad():
        y = model(x)
        silent = model(torch.zeros(1, 2, 16000))
    assert y.shape == (2, 4, 2, 16000) and torch.isfinite(y).all()
    assert torch.isfinite(silent).all() and silent.abs().max() < 1e-4  # silence in, silence out


def test_the_mixture_baseline_sums_to_the_mixture_and_learns_gains():
    model = build_separator("mixture", SOURCES)
    x = torch.randn(3, 2, 100)
    torch.testing.assert_close(model(x).sum(dim=1), x)
    assert [p.numel() for p in model.parameters()] == [4]


def test_published_sizes_are_the_large_ones():
    small = sum(p.numel() for p in build_separator("htdemucs", SOURCES, "small").parameters())
    big = sum(p.numel() for p in build_separator("htdemucs", SOURCES, "published", segment=7.8).parameters())
    assert small < 1e6 < 20e6 < big


def test_unknown_arch_or_size_is_a_clear_error():
    with pytest.raises(ValueError, match="arch 'umx'"):
        build_separator("umx", SOURCES)
    with pytest.raises(ValueError, match="size 'huge'"):
        build_separator("hdemucs", SOURCES, "huge")
