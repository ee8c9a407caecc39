"""Multichannel Wiener EM: identities it must keep and the leakage it must remove."""
from __future__ import annotations

import math

import pytest
import torch

from noisymss.audio.spectral import stft
from noisymss.audio.wiener import wiener

N_FFT, HOP, SR = 512, 128, 8000


def rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a − b‖² / ‖b‖²."""
    return ((a - b).abs().square().sum() / b.abs().square().sum()).item()


def panned_sines() -> tuple[torch.Tensor, torch.Tensor]:
    """Two sines far apart in frequency, panned to opposite sides: (1, 2, 2, F, N) source STFTs, mixture STFT."""
    t = torch.arange(SR) / SR
    low = torch.sin(2 * math.pi * 300 * t)
    high = 0.5 * torch.sin(2 * math.pi * 2500 * t + 1.0)
    refs = torch.stack([torch.stack([low, 0.3 * low]), torch.stack([0.2 * high, high])])[None]
    spec = stft(refs, N_FFT, HOP)
    return spec, spec.sum(1)


def noise_mix(channels: int, batch: int = 1, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return stft(torch.randn(batch, channels, 4000, generator=g), N_FFT, HOP)


@pytest.mark.parametrize("channels", [1, 2, 3])  # 1 and 2: closed forms; 3: the general solve
@pytest.mark.parametrize("softmask", [False, True])
def test_single_source_returns_the_mixture(channels, softmask):
    mix = noise_mix(channels)
    out = wiener(mix.abs()[:, None], mix, iterations=2, softmask=softmask)
    assert out.shape == (1, 1) + mix.shape[1:]
    assert rel_error(out[:, 0], mix) < 1e-6


def test_zero_iterations_return_the_initial_estimates():
    ref, mix = panned_sines()
    mag = ref.abs()
    plain = wiener(mag, mix, iterations=0)
    assert torch.allclose(plain.abs(), mag, atol=1e-4)
    assert torch.allclose(torch.angle(plain[:, 0] * mix.conj()).abs().amax(), torch.tensor(0.0), atol=1e-3)
    soft = wiener(mag, mix, iterations=0, softmask=True)
    assert rel_error(soft.sum(1), mix) < 1e-10  # ratio masks sum to one


def test_separated_sines_beat_mixture_phase_estimates():
    ref, mix = panned_sines()
    mag = ref.abs()
    leaky = mag + 0.3 * mag.flip(1)  # each estimate leaks 30% of the other source's magnitude
    initial = wiener(leaky, mix, iterations=0)
    err0 = rel_error(initial, ref)
    err1 = rel_error(wiener(leaky, mix, iterations=1), ref)
    err3 = rel_error(wiener(leaky, mix, iterations=3), ref)
    assert err1 < 0.3 * err0  # about −18 dB against −10 dB
    assert err3 < err1  # EM keeps improving on this easy case
    for out in (wiener(leaky, mix, iterations=1), wiener(leaky, mix, iterations=2, softmask=True)):
        assert rel_error(out.sum(1), mix) < 1e-5  # Wiener estimates add up to the mixture


def test_residual_source_completes_the_mixture():
    ref, mix = panned_sines()
    out = wiener(0.5 * ref.abs(), mix, iterations=0, residual=True)
    assert out.shape[1] == 3
    assert rel_error(out.sum(1), mix) < 1e-10
    out = wiener(0.5 * ref.abs(), mix, iterations=1, residual=True)
    assert rel_error(out.sum(1), mix) < 1e-5


def test_silence_and_coherent_channels_stay_finite():
    ref, mix = panned_sines()
    out = wiener(torch.zeros_like(ref.real), torch.zeros_like(mix), iterations=2, residual=True)
    assert torch.isfinite(out).all() and out.abs().max() == 0
    # identical channels: every spatial covariance, and so the mixture's, is singular
    mono_ref = ref[:, :, :1].expand_as(ref)
    mono = mono_ref.sum(1)
    leaky = mono_ref.abs() + 0.3 * mono_ref.abs().flip(1)
    out = wiener(leaky, mono, iterations=3)
    assert torch.isfinite(out).all()
    assert rel_error(out.sum(1), mono) < 1e-5
    assert rel_error(out, mono_ref) < 0.3 * rel_error(wiener(leaky, mono, iterations=0), mono_ref)


def test_batch_items_are_filtered_independently():
    mix = noise_mix(2, batch=2, seed=3)
    mix[1] *= 1000.0  # a loud item must not change how the quiet one is filtered
    g = torch.Generator().manual_seed(4)
    mag = torch.rand((2, 2) + mix.shape[1:], generator=g) * mix.abs()[:, None]
    both = wiener(mag, mix, iterations=2)
    for i in range(2):
        alone = wiener(mag[i:i + 1], mix[i:i + 1], iterations=2)
        assert rel_error(both[i:i + 1], alone) < 1e-10


def test_bad_shapes_are_refused():
    mix = noise_mix(2)
    with pytest.raises(ValueError):
        wiener(mix.abs(), mix)
