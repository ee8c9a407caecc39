"""Spectral features on `torch.stft`: batched, differentiable, and on whatever device the input is.

torchaudio is not used (see README): these few functions are all the project needs, and a
mel filterbank is a few lines (the HTK / Slaney formulas below match torchaudio and librosa).
"""
from __future__ import annotations

import math

import torch
from torch import nn


def stft(audio: torch.Tensor, n_fft: int, hop_length: int, center: bool = True) -> torch.Tensor:
    """Complex STFT with a periodic Hann window (librosa's and torchaudio's defaults).

    Args:
        audio: (..., samples) real.

    Returns:
        (..., n_fft // 2 + 1, frames) complex; frame j is centred at j * hop_length when `center`.
    """
    shape = audio.shape
    flat = audio.reshape(-1, shape[-1])
    window = torch.hann_window(n_fft, device=audio.device, dtype=audio.dtype)
    spec = torch.stft(flat, n_fft, hop_length, window=window, center=center, pad_mode="constant", return_complex=True)
    return spec.reshape(shape[:-1] + spec.shape[-2:])


def amplitude_to_db(
    x: torch.Tensor, multiplier: float = 20.0, amin: float = 1e-10, top_db: float | None = 80.0, ref_dims: int = 2
) -> torch.Tensor:
    """`multiplier * log10(x / max)` with the max taken per item over the last `ref_dims` axes.

    With `multiplier=10` on a magnitude this is librosa's `power_to_db(|S|, ref=np.max)` that JDC
    uses (10·log10 of the magnitude, not the power): values lie in [-top_db, 0].

    Args:
        x: (..., F, T) non-negative.
    """
    dims = tuple(range(-ref_dims, 0))
    db = multiplier * torch.log10(torch.clamp(x, min=amin))
    ref = multiplier * torch.log10(torch.clamp(x.amax(dim=dims, keepdim=True), min=amin))
    db = db - ref
    if top_db is not None:
        db = torch.clamp(db, min=-top_db)
    return db


def hz_to_mel(hz: torch.Tensor | float, scale: str = "slaney") -> torch.Tensor:
    """Hertz to mel: 'htk' (2595 log10(1 + f/700)) or 'slaney' (linear below 1 kHz, log above)."""
    hz = torch.as_tensor(hz, dtype=torch.float64)
    if scale == "htk":
        return 2595.0 * torch.log10(1.0 + hz / 700.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    logstep = math.log(6.4) / 27.0
    mel = hz / f_sp
    return torch.where(hz >= min_log_hz, min_log_hz / f_sp + torch.log(hz / min_log_hz) / logstep, mel)


def mel_to_hz(mel: torch.Tensor, scale: str = "slaney") -> torch.Tensor:
    """Inverse of `hz_to_mel`."""
    mel = torch.as_tensor(mel, dtype=torch.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    logstep = math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return torch.where(mel >= min_log_mel, min_log_hz * torch.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def mel_filterbank(
    n_fft: int, sample_rate: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None, scale: str = "slaney"
) -> torch.Tensor:
    """Triangular mel filters, Slaney area-normalised for scale='slaney' (librosa's default).

    Returns:
        (n_mels, n_fft // 2 + 1) float32.
    """
    f_max = f_max if f_max is not None else sample_rate / 2
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges = mel_to_hz(torch.linspace(float(hz_to_mel(f_min, scale)), float(hz_to_mel(f_max, scale)), n_mels + 2), scale)
    lower = (freqs[None, :] - edges[:-2, None]) / (edges[1:-1] - edges[:-2])[:, None]
    upper = (edges[2:, None] - freqs[None, :]) / (edges[2:] - edges[1:-1])[:, None]
    fb = torch.clamp(torch.minimum(lower, upper), min=0.0)
    if scale == "slaney":
        fb = fb * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return fb.float()


class LogMel(nn.Module):
    """Log-mel spectrogram of a batch of waveforms (channels averaged to mono first).

    Args:
        sample_rate: input rate in Hz.
        n_fft, hop_length, n_mels, f_min, f_max: STFT and filterbank settings.
        eps: floor added before the log.
    """

    def __init__(
        self,
        sample_rate: int = 44100,
        n_fft: int = 2048,
        hop_length: int = 512,
        n_mels: int = 128,
        f_min: float = 0.0,
        f_max: float | None = None,
        eps: float = 1e-6,
    ):
        super().__init__()
        self.n_fft, self.hop_length, self.eps = n_fft, hop_length, eps
        self.register_buffer("filters", mel_filterbank(n_fft, sample_rate, n_mels, f_min, f_max), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """
        Args:
            audio: (B, C, T) or (B, T) waveforms.

        Returns:
            (B, n_mels, frames) natural-log mel power.
        """
        if audio.dim() == 3:
            audio = audio.mean(dim=1)
        power = stft(audio, self.n_fft, self.hop_length).abs().pow(2)
        return torch.log(self.filters @ power + self.eps)
