"""Whole-song melody extraction with a JDC model: decode → 8 kHz mono → features → patches → f0."""
from __future__ import annotations

import os

import numpy as np
import torch

from noisymss.audio.io import read_audio
from noisymss.melody.features import SAMPLE_RATE, log_magnitude, normalize, to_patches
from noisymss.melody.pitch import decode


@torch.inference_mode()
def song_logits(model: torch.nn.Module, audio: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Pitch logits for every 10 ms frame of one song.

    Args:
        model: a JDC (returns pitch logits first), in eval mode, on the device to use.
        audio: (samples,) mono at 8 kHz.

    Returns:
        (frames, n_classes), frames = 1 + samples // 80 (frame j at t = j * 10 ms).
    """
    device = next(model.parameters()).device
    db = log_magnitude(audio.to(device)[None])[0]  # the reference max is the whole song's, as JDC
    patches, frames = to_patches(db)
    outs = [model(normalize(patches[i:i + batch_size]))[0] for i in range(0, len(patches), batch_size)]
    return torch.cat(outs).reshape(-1, outs[0].shape[-1])[:frames]


def extract_f0(model: torch.nn.Module, path: str | os.PathLike, median: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """f0 of an audio file (any format soundfile reads).

    Returns:
        times (frames,) in seconds at 10 ms, f0 (frames,) in Hz with 0 = unvoiced.
    """
    audio = torch.from_numpy(read_audio(path, sample_rate=SAMPLE_RATE, channels=1)[0])
    hz = decode(song_logits(model, audio), median=median)
    return np.arange(len(hz)) * 0.01, hz
