"""Whole files decoded once into memory at one rate and channel count: a segment reader for the
Mixer where segments are short and the rate is low (melody: 8 kHz mono), and whole songs for
evaluation and for a teacher.

At 8 kHz mono, 30 s of song is 1 MB, so a few hundred songs fit in memory and a 0.3 s patch
costs a slice instead of a decode and a resample. Loader workers forked after `preload` share
the decoded arrays.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from noisymss.audio.io import AudioError, read_audio


class SongStore:
    """Decoded files: `load(path)` is (channels, samples) float32 at `sample_rate`.

    Args:
        sample_rate, channels: the format every file is decoded to.
    """

    def __init__(self, sample_rate: int, channels: int = 1):
        self.sample_rate, self.channels = sample_rate, channels
        self._audio: dict[str, np.ndarray] = {}

    def __contains__(self, path: str) -> bool:
        """Whether `path` is decoded (or was put) already."""
        return path in self._audio

    def load(self, path: str) -> np.ndarray:
        """The whole file, decoded on first use (raises AudioError naming the file)."""
        audio = self._audio.get(path)
        if audio is None:
            audio = self._audio[path] = read_audio(path, sample_rate=self.sample_rate, channels=self.channels)
        return audio

    def put(self, path: str, audio: np.ndarray) -> None:
        """Replaces what `path` reads as (e.g. the noisy version a teacher heard), (channels, samples)."""
        if audio.ndim != 2 or audio.shape[0] != self.channels:
            raise ValueError(f"{path}: audio must be ({self.channels}, samples), got {audio.shape}")
        self._audio[path] = np.ascontiguousarray(audio, dtype=np.float32)

    def preload(self, paths: Iterable[str]) -> list[tuple[str, str]]:
        """Decodes `paths` now; returns (path, reason) for those that could not be read."""
        failed = []
        for path in paths:
            try:
                self.load(path)
            except (AudioError, OSError) as err:
                failed.append((path, str(err)))
        return failed

    def read(self, path: str, start: float, duration: float, sample_rate: int, channels: int,
             out: np.ndarray | None = None) -> np.ndarray:
        """The Mixer's reader protocol: `duration` seconds from `start` (rounded to a sample),
        zero-padded past the end, as (channels, round(duration * sample_rate)) float32."""
        if (sample_rate, channels) != (self.sample_rate, self.channels):
            raise ValueError(f"this store decodes to {self.sample_rate} Hz, {self.channels} ch; "
                             f"asked for {sample_rate} Hz, {channels} ch")
        audio = self.load(path)
        length = int(round(duration * sample_rate))
        first = max(int(round(start * sample_rate)), 0)
        seg = audio[:, first:first + length]
        dst = out if out is not None else np.empty((channels, length), np.float32)
        dst[:, :seg.shape[1]] = seg
        dst[:, seg.shape[1]:] = 0.0
        return dst
