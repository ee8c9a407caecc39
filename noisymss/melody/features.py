"""JDC input features (as the authors' code): 8 kHz mono, STFT 1024 / hop 80, 10·log10(|S| / max|S|), 31-frame patches."""
from __future__ import annotations

import torch

from noisymss.audio.spectral import amplitude_to_db, stft

SAMPLE_RATE, N_FFT, HOP, PATCH = 8000, 1024, 80, 31
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


def to_patches(db: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Cuts one song's (frames, 513) dB features into non-overlapping (1, 31, 513) patches.

    The last patch is padded with the floor value (silence), not with 0 dB as the original
    code did (0 dB is the loudest value); callers trim outputs back to `frames`.

    Returns:
        patches (N, 1, 31, 513) and the number of real frames.
    """
    frames = db.shape[0]
    n = max(1, -(-frames // PATCH))
    padded = torch.full((n * PATCH, db.shape[1]), FLOOR_DB, dtype=db.dtype, device=db.device)
    padded[:frames] = db
    return padded.reshape(n, 1, PATCH, db.shape[1]), frames
