"""Multichannel Wiener filtering of source estimates, refined by expectation-maximisation.

The local Gaussian model of Duong et al. (2010), as used for music by Nugraha et al. (2016) and by
Open-Unmix at inference: source j at bin f, frame n is a zero-mean complex Gaussian with covariance
v_j(f, n) R_j(f) — a power spectral density times a spatial covariance matrix (C × C). Given those,
the posterior mean of the source is the Wiener estimate y_j = v_j R_j Cx⁻¹ x with
Cx = Σ_j v_j R_j; EM alternates between these estimates and re-fitting v_j and R_j to them.

sigsep's `norbert` implements the same in NumPy, but its last release is 0.2.1 (September 2019),
it imports the deprecated `scipy.ndimage.filters`, and it works on one unbatched array on the CPU;
this torch version is batched and runs wherever the tensors are.

Shapes: magnitudes (B, S, C, F, N) real, mixture STFT (B, C, F, N) complex → (B, S, C, F, N) complex.
"""
from __future__ import annotations

import torch


def wiener(mag: torch.Tensor, mix: torch.Tensor, iterations: int = 1, softmask: bool = False, residual: bool = False,
           eps: float = 1e-10, chunk: int = 300) -> torch.Tensor:
    """Complex source STFTs from magnitude estimates and the mixture STFT.

    Args:
        mag: (B, S, C, F, N) non-negative source magnitude estimates.
        mix: (B, C, F, N) complex mixture STFT.
        iterations: EM iterations; 0 returns the initial estimates.
        softmask: initialise with the ratio mask mag_j / Σ mag applied to the mixture (the estimates
            then already sum to the mixture) instead of mag_j with the mixture phase.
        residual: append a source for what the estimates leave out (mixture − Σ estimates), so
            energy the network gave to no source is modelled rather than forced into one.
        eps: numerical floor on powers.
        chunk: frames per step of the filtering (bounds the memory of the C × C systems).

    Returns:
        (B, S, C, F, N) complex estimates, or (B, S + 1, C, F, N) with `residual`.
    """
    if mag.dim() != 5 or mix.dim() != 4 or mag.shape[:1] + mag.shape[2:] != mix.shape:
        raise ValueError(f"mag {tuple(mag.shape)} and mix {tuple(mix.shape)}: "
                         "expected (B, S, C, F, N) and (B, C, F, N)")
    mag = mag.to(mix.real.dtype)
    if softmask:
        y = mix[:, None] * (mag / (mag.sum(1, keepdim=True) + eps))
    else:
        y = torch.polar(mag, mix.angle()[:, None].expand_as(mag))
    if residual:
        y = torch.cat([y, (mix - y.sum(1))[:, None]], 1)
    if iterations <= 0:
        return y
    # Bring each item to a peak magnitude of at most 10 so that eps means the same for loud and
    # quiet inputs and the C × C determinants stay far from float32's range limits.
    scale = (mix.abs().amax(dim=(1, 2, 3)) / 10.0).clamp(min=1.0)[:, None, None, None]
    y = expectation_maximization(y / scale[:, None], mix / scale, iterations, eps, chunk)
    return y * scale[:, None]


def expectation_maximization(y: torch.Tensor, mix: torch.Tensor, iterations: int, eps: float = 1e-10,
                             chunk: int = 300) -> torch.Tensor:
    """EM refinement of complex source estimates (Nugraha et al. 2016, Algorithm 1).

    Args:
        y: (B, S, C, F, N) complex initial estimates.
        mix: (B, C, F, N) complex mixture STFT.

    Returns:
        (B, S, C, F, N) complex estimates; Σ_j y_j ≈ mix after any iteration.
    """
    frames = mix.shape[-1]
    # The C × C statistics and systems are formed in double precision, chunk by chunk (they are
    # small next to y): for nearly coherent stereo bins the 2 × 2 determinant is a difference of
    # two almost equal products, and float32 loses most of its digits there.
    wide = torch.complex128
    spans = [slice(start, start + chunk) for start in range(0, frames, chunk)]
    for _ in range(iterations):
        # M step: per-source PSD (channel-averaged power) and spatial covariance, the latter
        # normalised by the total PSD so that v_j R_j keeps the estimate's power. Like Open-Unmix,
        # from y yᴴ alone: the posterior covariance term of the exact M step is left out.
        v = y.real.square().add(y.imag.square()).mean(2)  # (B, S, F, N)
        r = sum(torch.einsum("bsifn,bsjfn->bsfij", part, part.conj()) for part in (y[..., t].to(wide) for t in spans))
        r = r / (v.sum(-1, dtype=torch.float64)[..., None, None] + eps)  # (B, S, F, C, C)
        # E step: posterior means y_j = v_j R_j Cx⁻¹ x, frame chunk by frame chunk.
        parts = []
        for t in spans:
            vc = v[..., t].to(wide)
            cx = torch.einsum("bsfn,bsfij->bfnij", vc, r)  # (B, F, n, C, C)
            z = _solve(cx, mix[..., t].to(wide).permute(0, 2, 3, 1), eps)  # Cx⁻¹ x: (B, F, n, C)
            parts.append((torch.einsum("bsfij,bfnj->bsifn", r, z) * vc[:, :, None]).to(y.dtype))
        y = torch.cat(parts, -1)
    return y


def _solve(cx: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Solve (Cx + δ I) z = x for Hermitian positive semi-definite Cx.

    δ = eps + 1e-6 × mean eigenvalue: when the channels are nearly coherent (a centred source, a mono
    recording) Cx is close to singular; this bounds its condition number, at the cost of components
    60 dB below the bin's power in the near-null direction.

    Args:
        cx: (..., C, C) complex.
        x: (..., C) complex.

    Returns:
        (..., C) complex.
    """
    c = cx.shape[-1]
    trace = torch.diagonal(cx, dim1=-2, dim2=-1).real.sum(-1)
    delta = eps + 1e-6 * trace / c
    if c == 1:
        return x / (cx[..., 0, 0].real + delta)[..., None]
    if c == 2:
        # Closed form: batched torch.linalg.solve with 2 MKL threads fails on this machine, and
        # the 2 × 2 case is the common one (stereo).
        a = cx[..., 0, 0].real + delta
        d = cx[..., 1, 1].real + delta
        b = cx[..., 0, 1]
        det = (a * d - b.real.square() - b.imag.square()).clamp(min=eps * eps)  # ≥ δ² in exact arithmetic
        z0 = (d * x[..., 0] - b * x[..., 1]) / det
        z1 = (a * x[..., 1] - b.conj() * x[..., 0]) / det
        return torch.stack([z0, z1], -1)
    eye = torch.eye(c, dtype=cx.dtype, device=cx.device)
    return torch.linalg.solve(cx + delta[..., None, None] * eye, x.unsqueeze(-1)).squeeze(-1)
