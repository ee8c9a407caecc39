"""Separation losses against hand-worked values."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from noisymss.audio.spectral import stft
from noisymss.separation.losses import MultiDomainLoss, l1_loss, sdr_loss, wsdr_loss


def test_l1_loss_by_hand():
    est = torch.tensor([[[[1.0, 2.0, 3.0, 4.0]], [[0.0, 0.0, 0.0, 0.0]]]])  # (1, 2, 1, 4)
    ref = torch.tensor([[[[1.0, 1.0, 1.0, 1.0]], [[1.0, -1.0, 1.0, -1.0]]]])
    # source 0: |0, 1, 2, 3| → 6 / 4; source 1: all 1 → 1
    assert torch.allclose(l1_loss(est, ref), torch.tensor([[1.5, 1.0]]))


def test_sdr_loss_by_hand():
    ref = torch.ones(1, 2, 1, 4)
    est = torch.tensor([[[[2.0, 2.0, 2.0, 2.0]], [[1.0, 1.0, 1.0, 0.0]]]])
    # source 0: signal 4, distortion 4 → 0 dB; source 1: signal 4, distortion 1 → 10 log10 4 = 6.0206 dB
    assert torch.allclose(sdr_loss(est, ref), torch.tensor([[0.0, -6.0206]]), atol=1e-4)


def test_sdr_loss_silent_reference_is_finite():
    ref = torch.zeros(1, 2, 2, 8)
    est = torch.zeros(1, 2, 2, 8)
    est[0, 1] = 0.1
    loss = sdr_loss(est, ref)
    assert torch.isfinite(loss).all()
    assert loss[0, 0].item() == pytest.approx(0.0)  # silence for silence: 0 dB, not NaN
    assert loss[0, 1].item() > 50.0  # sound where there should be none: a very bad (high) loss


def test_wsdr_loss_by_hand():
    # mixture [1, 1] = source 0 [1, 0] + source 1 [0, 1]; the estimate gives everything to source 0.
    ref = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])
    est = torch.tensor([[[[1.0, 1.0]], [[0.0, 0.0]]]])
    mix = ref.sum(1)
    # source 0: α = 1 / 2, cos(ŝ, s) = 1 / √2, x − ŝ = 0 → cos 0: loss 1 − 1 / (2√2)
    # source 1: α = 1 / 2, ŝ = 0 → cos 0, cos(x − ŝ, x − s) = cos([1, 1], [1, 0]) = 1 / √2: the same
    expected = 1.0 - 0.5 / math.sqrt(2.0)
    assert torch.allclose(wsdr_loss(est, ref, mix), torch.full((1, 2), expected), atol=1e-6)
    assert torch.allclose(wsdr_loss(ref, ref, mix), torch.zeros(1, 2), atol=1e-6)  # perfect → 0


def test_multi_domain_combinations_by_hand():
    # References silent, so the frequency term of a combination is mean((Σ_c a_s)²) for constant
    # estimated magnitudes a = 1, 2, 3, and the wSDR term is 1 (α = 0, cos 0).
    b, s, c, t = 1, 3, 1, 8
    ref = torch.zeros(b, s, c, t)
    est_time = torch.randn(b, s, c, t)
    frames = t // 2 + 1
    est_mag = torch.tensor([1.0, 2.0, 3.0])[None, :, None, None, None].expand(b, s, c, 3, frames)
    loss = MultiDomainLoss(n_fft=4, hop=2, alpha=0.0)
    assert loss.combinations(3) == [(0,), (1,), (2,), (0, 1), (0, 2), (1, 2)]
    # combination losses: {0} 1, {1} 4, {2} 9, {0,1} 9, {0,2} 16, {1,2} 25, each split among members:
    # source 0: 1 + 9/2 + 16/2 = 13.5; source 1: 4 + 9/2 + 25/2 = 21; source 2: 9 + 16/2 + 25/2 = 29.5;
    # times S / K = 3 / 6, so the mean over sources is the mean over the 6 combinations (64 / 6).
    out = loss(est_time, ref, est_mag)
    assert torch.allclose(out, torch.tensor([[6.75, 10.5, 14.75]]))
    assert out.mean().item() == pytest.approx(64.0 / 6.0)
    # the time term (1 per combination) adds alpha to every source
    out = MultiDomainLoss(n_fft=4, hop=2, alpha=10.0)(est_time, ref, est_mag)
    assert torch.allclose(out, torch.tensor([[16.75, 20.5, 24.75]]), atol=1e-5)
    # without combinations: each source alone
    out = MultiDomainLoss(n_fft=4, hop=2, alpha=0.0, combination=False)(est_time, ref, est_mag)
    assert torch.allclose(out, torch.tensor([[1.0, 4.0, 9.0]]))
    # two sources: sizes 1..S−1 are single sources only
    out = MultiDomainLoss(n_fft=4, hop=2, alpha=0.0)(est_time[:, :2], ref[:, :2], est_mag[:, :2])
    assert torch.allclose(out, torch.tensor([[1.0, 4.0]]))


@pytest.mark.parametrize("time_loss", ["wsdr", "sdr"])
def test_multi_domain_matches_explicit_enumeration(time_loss):
    """The Gram-matrix evaluation equals summing the signals of each combination explicitly."""
    g = torch.Generator().manual_seed(0)
    b, s, c, t = 2, 3, 2, 600
    ref = torch.randn(b, s, c, t, generator=g, dtype=torch.float64)
    est = ref + 0.5 * torch.randn(b, s, c, t, generator=g, dtype=torch.float64)
    ref[1, 2] = 0.0  # an absent source
    loss = MultiDomainLoss(n_fft=64, hop=16, alpha=10.0, time_loss=time_loss)
    est_mag, ref_mag = stft(est, 64, 16).abs(), stft(ref, 64, 16).abs()
    combos = [(0,), (1,), (2,), (0, 1), (0, 2), (1, 2)]
    expected = torch.zeros(b, s, dtype=torch.float64)
    for combo in combos:
        idx = list(combo)
        freq = (est_mag[:, idx].sum(1) - ref_mag[:, idx].sum(1)).square().flatten(1).mean(1)
        e, r = est[:, idx].sum(1, keepdim=True), ref[:, idx].sum(1, keepdim=True)
        time = (wsdr_loss(e, r, ref.sum(1)) if time_loss == "wsdr" else sdr_loss(e, r))[:, 0]
        for j in combo:
            expected[:, j] += (freq + 10.0 * time) / len(combo)
    expected *= s / len(combos)
    assert torch.allclose(loss(est, ref, est_mag), expected, rtol=1e-9, atol=1e-9)
    assert torch.allclose(loss(est, ref), expected, rtol=1e-9, atol=1e-9)  # magnitudes from est_time


def test_multi_domain_silence_has_finite_gradient():
    est = torch.zeros(2, 4, 2, 256, requires_grad=True)
    ref = torch.zeros(2, 4, 2, 256)
    ref[0, 0] = torch.randn(2, 256)
    loss = MultiDomainLoss(n_fft=64, hop=16)(est, ref)
    assert loss.shape == (2, 4) and torch.isfinite(loss).all()
    loss.sum().backward()
    assert torch.isfinite(est.grad).all()


def test_combinations_count():
    loss = MultiDomainLoss()
    assert len(loss.combinations(4)) == 4 + 6 + 4
    assert loss.combinations(1) == [(0,)]
    assert all(len(c) < 4 for c in loss.combinations(4))
    assert set(loss.combinations(4)) == {c for k in (1, 2, 3) for c in itertools.combinations(range(4), k)}
