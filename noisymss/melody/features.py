"""JDC input features (as the authors' code): 8 kHz mono, STFT 1024 / hop 80, 10·log10(|S| / max|S|), 31-frame patches.

The reference max is each patch's own, in training and at inference alike (the authors' code
took the whole song's at inference, which the patches a model trains on never see).
"""
from __future__ import annotations

import torch

from noisymss.audio.spectral import amplitude_to_db, stft

SAMPLE_RATE, N_FFT, HOP, PATCH = 8000, 1024, 80, 31
PATCH_SAMPLES = (PATCH - 1) * HOP  # a patch's audio: 1 + 2400 // 80 = 31 centred STFT frames
N_BINS = N_FFT // 2 + 1
FLOOR_DB = -80.0
# The released mean/std files are not available: a fixed affine map puts the [-80, 0] dB range
# around zero with unit-scale spread (their mean spans -67.5..-15.1 dB, std 6.3..10.8 dB).
NORM_MEAN, NORM_STD = -40.0, 20.0


def log_magnitude(audio: torch.Tensor) -> torch.Tensor:
    """librosa's power_to_db(|S|, ref=max) as JDC computes it, the max taken over each whole item.

    Args:
        audio: (B, samples) mono at 8 kHz.

    Returns:
        (B, frames, 513) in [-80, 0] dB, frame j centred at j * 10 ms.
    """
    mag = stft(audio, N_FFT, HOP).abs()
    return amplitude_to_db(mag, multiplier=10.0, top_db=-FLOOR_DB).transpose(-1, -2)


def normalize(db: torch.Tensor) -> torch.Tensor:
    return (db - NORM_MEAN) / NORM_STD
