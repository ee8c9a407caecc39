"""X-UMX: shapes, sizes, the bridges, Wiener inference, and that it learns a toy separation."""
from __future__ import annotations

import math

import pytest
import torch

from noisymss.audio.spectral import stft
from noisymss.models.xumx import SIZES, XUMX, bandwidth_to_max_bin
from noisymss.separation.losses import MultiDomainLoss

SOURCES = ["vocals", "drums", "bass", "other"]
T = 4411  # odd: not a multiple of the hop


def small(sources=SOURCES, seed: int = 0, **kwargs) -> XUMX:
    torch.manual_seed(seed)
    return XUMX.small(sources, **kwargs)


def test_shapes_and_length():
    model = small()
    x = torch.randn(2, 2, T)
    out = model(x)
    assert out.shape == (2, 4, 2, T)
    mag, spec = model.forward_spec(x)
    frames = T // 256 + 1
    assert mag.shape == (2, 4, 2, 513, frames) and (mag >= 0).all()
    assert spec.shape == (2, 2, 513, frames) and spec.is_complex()
    model.eval()
    assert model(torch.randn(1, 2, 1000)).shape == (1, 4, 2, 1000)  # shorter than n_fft
    with pytest.raises(ValueError):
        model(torch.randn(2, 1, T))  # mono into a stereo model


def test_stft_matches_spectral_and_inverts():
    model = small()
    x = torch.randn(2, 2, T)
    spec = model.stft(x)
    assert torch.allclose(spec, stft(x, 1024, 256), atol=1e-4)  # the losses' reference STFT
    assert torch.allclose(model.istft(spec, T), x, atol=1e-5)


def test_parameter_counts():
    # per source: input mean/scale 2·372 + fc1 744·32 + bn1 64 + BLSTM 2·(4·16·(32+16) + 2·4·16)
    # + fc2 64·32 + bn2 64 + fc3 32·1026 + bn3 2·1026 + output scale/mean 2·513 = 69,038
    assert bandwidth_to_max_bin(44100, 1024, 16000) == 372
    assert sum(p.numel() for p in small().parameters()) == 4 * 69038
    assert sum(p.numel() for p in small(SOURCES[:2]).parameters()) < 200_000
    published = XUMX.published(SOURCES)
    assert published.max_bin == 1487  # Open-Unmix's 16 kHz bandwidth at n_fft 4096
    # 8,893,348 per source: Open-Unmix's published size; the bridges add no parameters
    assert sum(p.numel() for p in published.parameters()) == 4 * 8_893_348
    assert XUMX.from_size("published", sources=SOURCES, layers=1).branches[0].lstm.num_layers == 1
    with pytest.raises(ValueError):
        XUMX.from_size("huge", sources=SOURCES)
    assert set(SIZES) == {"small", "published"}


def test_bridge_changes_output_not_shapes():
    bridged = small(bridge=True).eval()
    parallel = small(bridge=False).eval()
    parallel.load_state_dict(bridged.state_dict())  # the same weights: only the wiring differs
    x = torch.randn(2, 2, T)
    a, b = bridged(x), parallel(x)
    assert a.shape == b.shape
    assert not torch.allclose(a, b, atol=1e-4)
    # without bridges a branch sees only its own path: changing another branch's weights does not
    # move it; with bridges it does
    with torch.no_grad():
        for model in (bridged, parallel):
            model.branches[1].fc1.weight.mul_(-1.0)
    assert torch.allclose(parallel(x)[:, 0], b[:, 0], atol=1e-6)
    assert not torch.allclose(bridged(x)[:, 0], a[:, 0], atol=1e-4)


def test_wiener_inference_is_finite():
    model = small(wiener_iters=2).eval()
    x = torch.randn(2, 2, T)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, 4, 2, T) and torch.isfinite(out).all()
    # Wiener estimates add up to the mixture (up to the STFT round trip)
    assert ((out.sum(1) - x).square().sum() / x.square().sum()).item() < 1e-3
    model.train()  # training ignores wiener_iters: mixture-phase estimates, differentiable
    assert model(x).requires_grad


@pytest.mark.parametrize("train", [True, False])
def test_silence_in_silence_out(train):
    model = small().train(train)
    out = model(torch.zeros(2, 2, T))
    assert torch.isfinite(out).all() and out.abs().max().item() < 1e-6


def test_learns_to_separate_a_sine_from_noise():
    torch.manual_seed(0)
    sr, t = 16000, 8192
    time = torch.arange(t) / sr
    sine = 0.5 * torch.sin(2 * math.pi * 440.0 * time + torch.rand(4, 1, 1) * 6.28).expand(4, 2, t)
    noise = 0.1 * torch.randn(4, 2, t)
    refs = torch.stack([sine, noise], 1)  # (B, S, C, T)
    mix = refs.sum(1)
    model = XUMX.small(["sine", "noise"], sample_rate=sr)
    loss_fn = MultiDomainLoss(n_fft=1024, hop=256, alpha=10.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def step() -> float:
        mag, spec = model.forward_spec(mix)
        est = model.istft(mag * torch.polar(torch.ones_like(spec.real), spec.angle())[:, None], t)
        loss = loss_fn(est, refs, mag).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    losses = [step() for _ in range(25)]
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-3:]) / 3 < 0.6 * losses[0]
