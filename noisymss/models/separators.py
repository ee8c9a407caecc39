"""Separation networks by name and size: HTDemucs and HDemucs from the `demucs` package, X-UMX from
`noisymss.models.xumx`. Every one maps a mixture (B, C, T) to sources (B, S, C, T).

A checkpoint records (arch, size, overrides, sources, sample rate, channels, segment), which is
everything `build_separator` needs, so inference loads a model without Lightning or a config.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

# Small sizes train on a 2-core CPU in minutes; "published" are the papers' / demucs's own sizes.
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "htdemucs": {
        "small": dict(channels=16, depth=3, nfft=1024, t_layers=1, t_heads=4, dconv_comp=4),
        # demucs' htdemucs model: its class defaults (48 channels, depth 4, 5 transformer layers, nfft 4096)
        "published": dict(),
    },
    "hdemucs": {
        "small": dict(channels=16, depth=4, nfft=1024, dconv_comp=4),
        "published": dict(),  # demucs' hdemucs (v3) defaults: 48 channels, depth 6
    },
    "xumx": {
        "small": dict(size="small"),
        "published": dict(size="published"),
    },
    "mixture": {"small": dict(), "published": dict()},  # the baseline a separator must beat
}


class MixtureGain(nn.Module):
    """The trivial separator: every source is the mixture times a learned gain (1/S at start, so
    the untrained sources sum to the mixture). Its SDR is the floor any separator must beat.

    Args:
        n_sources: S.
    """

    def __init__(self, n_sources: int):
        super().__init__()
        self.gain = nn.Parameter(torch.full((n_sources,), 1.0 / n_sources))

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        """(B, C, T) → (B, S, C, T)."""
        return self.gain[None, :, None, None] * mixture[:, None]


def build_separator(arch: str, sources: Sequence[str], size: str = "small", sample_rate: int = 44100, channels: int = 2,
                    segment: float = 3.0, **overrides: Any) -> nn.Module:
    """A separation network.

    Args:
        arch: htdemucs | hdemucs | xumx | mixture (the baseline: a gain per source times the mixture).
        sources: source names, in output order.
        size: small (CPU) | published.
        sample_rate, channels: of the audio it separates.
        segment: training segment in seconds (demucs models pad shorter inputs to it at inference).
        overrides: constructor arguments replacing the size's.

    Returns:
        an nn.Module mapping (B, C, T) to (B, S, C, T).
    """
    if arch not in SIZES:
        raise ValueError(f"separator arch '{arch}': choose one of {', '.join(SIZES)}")
    if size not in SIZES[arch]:
        raise ValueError(f"separator size '{size}': choose one of {', '.join(SIZES[arch])}")
    kwargs = {**SIZES[arch][size], **overrides}
    if arch == "mixture":
        return MixtureGain(len(sources))
    if arch == "xumx":
        from noisymss.models.xumx import XUMX

        preset = kwargs.pop("size")
        return XUMX.from_size(preset, sources=list(sources), audio_channels=channels, sample_rate=sample_rate, **kwargs)
    if arch == "htdemucs":
        from demucs.htdemucs import HTDemucs

        return HTDemucs(sources=list(sources), audio_channels=channels, samplerate=sample_rate, segment=segment, **kwargs)
    from demucs.hdemucs import HDemucs

    return HDemucs(sources=list(sources), audio_channels=channels, samplerate=sample_rate, segment=segment, **kwargs)
