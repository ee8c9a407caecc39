"""Separation losses per example and per source, and reductions that leave out suspect examples.

Every loss returns a (B, S) tensor — one value per batch example and source — rather than a
scalar, so that a robust reduction can drop examples or cells whose loss is suspiciously high
(with noisy stem labels these are often the mislabelled or bleeding stems; SDX'23 label-noise
track). `noisymss.tasks.robust.reduce_loss` turns (B, S) into the scalar to optimise.

Waveforms are (B, S, C, T); magnitude spectrograms (B, S, C, F, N).
"""
from __future__ import annotations

import itertools

import torch
from torch import nn

from noisymss.audio.spectral import stft
from noisymss.metrics.separation import sdr_of_energies, utterance_sdr

def l1_loss(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over channels and samples (Demucs' loss): (B, S, C, T) ×2 → (B, S)."""
    return (est - ref).abs().flatten(2).mean(-1)


def sdr_loss(est: torch.Tensor, ref: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Negative signal-to-distortion ratio in dB: −10 log10((‖s‖² + eps) / (‖s − ŝ‖² + eps)).

    The validation metric (`utterance_sdr`, the plain SDR of the Music Demixing Challenge 2021
    and SDX'23: energies summed over channels and samples; no BSS-Eval projection) as a loss.
    eps makes a silent reference with a silent estimate score 0 dB instead of NaN.

    Args:
        est, ref: (B, S, C, T).

    Returns:
        (B, S); lower is better.
    """
    return -utterance_sdr(est, ref, eps)


def _cosine(a: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:
    # eps inside the square roots keeps the gradient finite when a signal is all zeros.
    return (a * b).sum(-1) / ((a.square().sum(-1) + eps).sqrt() * (b.square().sum(-1) + eps).sqrt())


def wsdr_loss(est: torch.Tensor, ref: torch.Tensor, mix: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """X-UMX's time-domain term: 1 − weighted SDR (Choi et al., ICLR 2019), in [0, 2].

    wSDR = α cos(ŝ, s) + (1 − α) cos(x − ŝ, x − s), α = ‖s‖² / (‖s‖² + ‖x − s‖²): the estimate
    must match the source *and* what it leaves of the mixture must match the rest, each weighted by
    its share of the energy. Computed per channel, then averaged over channels.

    Args:
        est, ref: (B, S, C, T).
        mix: the mixture, (B, C, T) or (B, 1, C, T).

    Returns:
        (B, S); 0 for a perfect estimate.
    """
    if mix.dim() == 3:
        mix = mix[:, None]
    noise, noise_est = mix - ref, mix - est
    e_ref, e_noise = ref.square().sum(-1), noise.square().sum(-1)
    alpha = e_ref / (e_ref + e_noise + eps)
    w = alpha * _cosine(est, ref, eps) + (1.0 - alpha) * _cosine(noise_est, noise, eps)
    return (1.0 - w).mean(-1)


class MultiDomainLoss(nn.Module):
    """X-UMX's multi-domain loss (MDL) with the combination loss (CL), per example and source.

    For every combination c of sources (sizes 1..S−1, or single sources only without
    `combination`): L_c = MSE(Σ_c |Ŝ|, Σ_c |S|) + alpha × wSDR-loss(Σ_c ŝ, Σ_c s) — summed
    magnitudes against summed reference magnitudes, summed waveforms against summed references,
    with the mixture x = Σ_all s (as in the authors' code). The combinations are what make a
    branch pay for energy it takes from another. Each L_c is shared equally among its member
    sources and the result is scaled so that its mean over sources equals the mean of L_c over
    combinations; without `combination` it is simply L_s per source.

    Args:
        n_fft, hop: the STFT of the separator (periodic Hann, centred, zero padded).
        alpha: weight of the time-domain term (paper: 10).
        combination: use combinations of sources, not only single sources.
        time_loss: "wsdr" (the paper's weighted SDR) or "sdr" (−SDR in dB; then a much smaller
            alpha fits, as dB values are some 10× larger).
        eps: numerical floor of the time-domain term.
    """

    def __init__(self, n_fft: int = 4096, hop: int = 1024, alpha: float = 10.0, combination: bool = True,
                 time_loss: str = "wsdr", eps: float = 1e-8):
        super().__init__()
        if time_loss not in ("wsdr", "sdr"):
            raise ValueError(f"time_loss={time_loss!r}: expected 'wsdr' or 'sdr'")
        self.n_fft, self.hop, self.alpha = n_fft, hop, alpha
        self.combination, self.time_loss, self.eps = combination, time_loss, eps

    def combinations(self, n_sources: int) -> list[tuple[int, ...]]:
        """The source index tuples the loss is computed on: 4 sources → 4 + 6 + 4 = 14."""
        largest = max(n_sources - 1, 1) if self.combination else 1
        return [c for k in range(1, largest + 1) for c in itertools.combinations(range(n_sources), k)]

    def forward(self, est_time: torch.Tensor, ref_time: torch.Tensor,
                est_mag: torch.Tensor | None = None) -> torch.Tensor:
        """Loss per example and source.

        Args:
            est_time: (B, S, C, T) estimated waveforms.
            ref_time: (B, S, C, T) reference waveforms.
            est_mag: (B, S, C, F, N) estimated magnitudes, e.g. `XUMX.forward_spec`'s (as the paper:
                the network's output before the inverse STFT). None: |STFT(est_time)| with this
                loss's STFT (then the gradient flows through the inverse STFT too).

        Returns:
            (B, S).
        """
        s = ref_time.shape[1]
        ref_mag = stft(ref_time, self.n_fft, self.hop).abs()
        if est_mag is None:
            est_mag = stft(est_time, self.n_fft, self.hop).abs()
        if est_mag.shape != ref_mag.shape:
            raise ValueError(f"est_mag {tuple(est_mag.shape)} != reference magnitudes {tuple(ref_mag.shape)}")
        combos = self.combinations(s)
        m = torch.zeros(len(combos), s, dtype=ref_time.dtype, device=ref_time.device)  # (K, S) membership
        for k, c in enumerate(combos):
            m[k, list(c)] = 1.0
        # Every term is a quadratic form of per-source signals, so it is computed from S × S Gram
        # matrices instead of materialising K summed signals (K = 14 for 4 sources): ~4× faster.
        d = (est_mag - ref_mag).flatten(2)  # (B, S, X)
        freq = _forms(d @ d.transpose(1, 2), m, m) / d.shape[-1]  # ‖Σ_c (|Ŝ| − |S|)‖² / X: (B, K)
        # Per channel: the Gram matrix of [errors ŝ − s, references s], (B, C, 2S, 2S). The error
        # basis keeps ‖ŝ_c − s_c‖² exact (no cancellation of two large energies).
        u = torch.cat([est_time - ref_time, ref_time], 1).transpose(1, 2)
        g = u @ u.transpose(-1, -2)
        g_dd, g_dr, g_rr = g[..., :s, :s], g[..., :s, s:], g[..., s:, s:]
        e_err, err_ref, e_ref = _forms(g_dd, m, m), _forms(g_dr, m, m), _forms(g_rr, m, m)  # (B, C, K)
        if self.time_loss == "sdr":
            time = -sdr_of_energies(e_ref.sum(1), e_err.sum(1), self.eps)
        else:
            # x = Σ_all s, n = x − s_c (the other sources), ŝ_c = s_c + err, x − ŝ_c = n − err.
            rest = 1.0 - m
            e_noise, err_noise = _forms(g_rr, rest, rest), _forms(g_dr, m, rest)
            alpha = e_ref / (e_ref + e_noise + self.eps)
            e_est, e_noise_est = e_err + 2 * err_ref + e_ref, e_noise - 2 * err_noise + e_err
            cos_target = (err_ref + e_ref) / (_root(e_est, self.eps) * _root(e_ref, self.eps))
            cos_noise = (e_noise - err_noise) / (_root(e_noise_est, self.eps) * _root(e_noise, self.eps))
            time = (1.0 - alpha * cos_target - (1.0 - alpha) * cos_noise).mean(1)
        per_combo = freq + self.alpha * time  # (B, K)
        share = m / m.sum(1, keepdim=True)  # each combination's loss split equally among its members
        return per_combo @ share * (s / len(combos))


def _forms(gram: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """⟨Σ_s a_ks u_s, Σ_t b_kt v_t⟩ for every row k, from gram[..., s, t] = ⟨u_s, v_t⟩: (..., K)."""
    return torch.einsum("ks,...st,kt->...k", a, gram, b)


def _root(energy: torch.Tensor, eps: float) -> torch.Tensor:
    # Rounding can leave an energy formed from Gram entries slightly negative.
    return (energy.clamp(min=0.0) + eps).sqrt()
