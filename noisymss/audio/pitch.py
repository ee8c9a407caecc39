"""MIDI note numbers ↔ Hz (equal temperament, A4 = MIDI 69 = 440 Hz), with 0 meaning unvoiced.

The one conversion for annotations, synthesis and the melody model's pitch classes: f0 tracks
use 0 Hz for unvoiced frames, so 0 (or less) maps to 0 both ways instead of to ±inf.
"""
from __future__ import annotations

import numpy as np

A4_MIDI, A4_HZ = 69.0, 440.0


def midi_to_hz(midi: np.ndarray) -> np.ndarray:
    """Fractional MIDI numbers (any shape) to Hz (float64, same shape); 0 or less gives 0 Hz."""
    midi = np.asarray(midi, dtype=np.float64)
    return np.where(midi > 0, A4_HZ * 2.0 ** ((midi - A4_MIDI) / 12.0), 0.0)


def hz_to_midi(hz: np.ndarray) -> np.ndarray:
    """Hz (any shape) to fractional MIDI numbers (float64, same shape); 0 Hz or less gives 0."""
    hz = np.asarray(hz, dtype=np.float64)
    return np.where(hz > 0, A4_MIDI + 12.0 * np.log2(np.maximum(hz, 1e-9) / A4_HZ), 0.0)
