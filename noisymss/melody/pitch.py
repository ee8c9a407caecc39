"""JDC's pitch classes (Kum & Nam, Appl. Sci. 2019): non-voice at 0, then MIDI 38..83 in 1/16 semitone steps."""
from __future__ import annotations

import numpy as np
import torch

from noisymss.audio.pitch import hz_to_midi, midi_to_hz

MIDI_LOW, MIDI_HIGH, STEPS_PER_SEMITONE = 38.0, 83.0, 16
N_CLASSES = int((MIDI_HIGH - MIDI_LOW) * STEPS_PER_SEMITONE) + 2  # 722


def hz_to_class(hz: np.ndarray) -> np.ndarray:
    """Hz (0 or less = unvoiced) to the nearest class; voiced pitches outside the range go to its edge."""
    hz = np.asarray(hz, dtype=np.float64)
    midi = hz_to_midi(hz)
    steps = np.clip(np.round((midi - MIDI_LOW) * STEPS_PER_SEMITONE), 0, N_CLASSES - 2)
    return np.where(hz > 0, steps + 1, 0).astype(np.int64)


def class_to_hz(classes: np.ndarray) -> np.ndarray:
    """Class index to Hz; class 0 gives 0 (unvoiced)."""
    classes = np.asarray(classes)
    midi = MIDI_LOW + (classes - 1) / STEPS_PER_SEMITONE
    return np.where(classes > 0, midi_to_hz(midi), 0.0)


def gaussian_targets(classes: torch.Tensor, sigma: float = 1.0, radius: int = 3, normalize: bool = True) -> torch.Tensor:
    """JDC's Gaussian-blurred targets (paper: σ = 1, radius 3): exp(-d² / 2σ²) for |d| <= radius classes.

    Unvoiced frames get a one-hot on class 0, and the blur never spills onto class 0 at the
    lowest pitches. With `normalize` each voiced row sums to 1, so voiced and unvoiced frames
    weigh the same in the cross-entropy; without it the peak is 1 and a voiced row sums to
    about 2.5, as Keras' unnormalised loss had it.

    Args:
        classes: (...,) int64 class indices.

    Returns:
        (..., N_CLASSES) float32.
    """
    grid = torch.arange(N_CLASSES, device=classes.device)
    dist = (grid - classes[..., None]).float()
    target = torch.exp(-dist.pow(2) / (2 * sigma**2)) * (dist.abs() <= radius)
    target[..., 0] = 0.0
    voiced = (classes > 0)[..., None]
    target = torch.where(voiced, target, (grid == 0).float().expand_as(target))
    if normalize:
        target = target / target.sum(dim=-1, keepdim=True)
    return target


def decode(pitch_logits: torch.Tensor, median: int = 5) -> np.ndarray:
    """Frame-wise argmax → Hz (class 0 = 0 Hz) → median filter over the Hz track, as JDC's inference.

    Args:
        pitch_logits: (T, N_CLASSES) for one song.

    Returns:
        (T,) Hz at the model's 10 ms hop.
    """
    from scipy.signal import medfilt

    hz = class_to_hz(pitch_logits.argmax(dim=-1).cpu().numpy())
    return medfilt(hz, median) if median > 1 and len(hz) >= median else hz
