"""JDC's pitch classes (Kum & Nam, Appl. Sci. 2019): non-voice at 0, then a MIDI range in 1/16 semitone steps.

The published range is MIDI 38-83 (73-988 Hz, 722 classes). Real singers reach lower: MIR-1K's
voiced frames go down to MIDI 36.4 (1 % of them lie below 43.1), so a model for real singing
can widen it (`PitchGrid(36, 84)`, the MelodyTask's `pitch_range`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from noisymss.audio.pitch import hz_to_midi, midi_to_hz

STEPS_PER_SEMITONE = 16


@dataclass(frozen=True)
class PitchGrid:
    """The output classes: class 0 = non-voice, class k = MIDI low + (k - 1) / steps, up to MIDI high."""

    low: float = 38.0
    high: float = 83.0
    steps: int = STEPS_PER_SEMITONE

    def __post_init__(self):
        if not 0 < self.low < self.high:
            raise ValueError(f"pitch range ({self.low}, {self.high}): give two MIDI numbers, low < high, e.g. (36, 84)")

    @property
    def n_classes(self) -> int:
        return int(round((self.high - self.low) * self.steps)) + 2

    def hz_to_class(self, hz: np.ndarray) -> np.ndarray:
        """Hz (0 or less = unvoiced) to the nearest class; voiced pitches outside the range go to its edge."""
        hz = np.asarray(hz, dtype=np.float64)
        steps = np.clip(np.round((hz_to_midi(hz) - self.low) * self.steps), 0, self.n_classes - 2)
        return np.where(hz > 0, steps + 1, 0).astype(np.int64)

    def class_to_hz(self, classes: np.ndarray) -> np.ndarray:
        """Class index to Hz; class 0 gives 0 (unvoiced)."""
        classes = np.asarray(classes)
        return np.where(classes > 0, midi_to_hz(self.low + (classes - 1) / self.steps), 0.0)

    def gaussian_targets(self, classes: torch.Tensor, sigma: float = 1.0, radius: int = 3,
                         normalize: bool = True) -> torch.Tensor:
        """JDC's Gaussian-blurred targets (paper: σ = 1, radius 3): exp(-d² / 2σ²) for |d| <= radius classes.

        Unvoiced frames get a one-hot on class 0, and the blur never spills onto class 0 at the
        lowest pitches. With `normalize` each voiced row sums to 1, so voiced and unvoiced frames
        weigh the same in the cross-entropy; without it the peak is 1 and a voiced row sums to
        about 2.5, as Keras' unnormalised loss had it.

        Args:
            classes: (...,) int64 class indices.

        Returns:
            (..., n_classes) float32.
        """
        grid = torch.arange(self.n_classes, device=classes.device)
        dist = (grid - classes[..., None]).float()
        target = torch.exp(-dist.pow(2) / (2 * sigma**2)) * (dist.abs() <= radius)
        target[..., 0] = 0.0
        voiced = (classes > 0)[..., None]
        target = torch.where(voiced, target, (grid == 0).float().expand_as(target))
        if normalize:
            target = target / target.sum(dim=-1, keepdim=True)
        return target


def median_filter(hz: np.ndarray, median: int) -> np.ndarray:
    """JDC's median filter over an Hz track (edges padded with zeros, as scipy's medfilt)."""
    from scipy.signal import medfilt

    return medfilt(hz, median) if median > 1 and len(hz) >= median else hz


JDC_GRID = PitchGrid()  # the published range, MIDI 38-83: 722 classes
