"""Essentia's Melodia (Salamon & Gómez 2012, PredominantPitchMelodia), the untrained DSP peer that a user
picks when nothing is trained. Optional: `pip install essentia` (the `bench` extra)."""
from __future__ import annotations

import os

import numpy as np

RATE, HOP = 44100, 128  # Melodia's defaults: 44.1 kHz, 2.9 ms frames


def available() -> bool:
    try:
        import essentia.standard  # noqa: F401
    except ImportError:
        return False
    return True


def melodia_f0(path: str | os.PathLike, hop: float = 0.01) -> np.ndarray:
    """Melodia's f0 of an audio file (mono at 44.1 kHz, equal-loudness filtered, default settings), on a
    `hop` grid (frame j at j * hop; the nearest Melodia frame), in Hz with 0 = unvoiced."""
    import essentia.standard as es

    from noisymss.audio.io import read_audio

    audio = read_audio(path, sample_rate=RATE, channels=1)[0]
    pitch, _ = es.PredominantPitchMelodia(frameSize=2048, hopSize=HOP)(es.EqualLoudness()(audio))
    frames = 1 + int(len(audio) / RATE / hop)
    nearest = np.minimum(np.round(np.arange(frames) * hop * RATE / HOP).astype(int), len(pitch) - 1)
    return np.maximum(np.asarray(pitch, dtype=np.float64)[nearest], 0.0)
