"""Whole songs decoded once into memory at one rate and channel count (melody data, evaluation).

Melody training reads short patches at 8 kHz mono: 30 s of song is 1 MB there, so a few hundred
songs fit in memory and a patch costs a slice instead of a decode and a resample. Songs that
fail to load are skipped and listed, never fatal.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from noisymss.audio.io import AudioError, read_audio
from noisymss.data.annotations import HOP, AnnotationError, f0_on_grid, read_f0
from noisymss.data.catalog import Catalog, Entry


@dataclass
class Songs:
    """Decoded songs: `audio[i]` (samples,) float32 mono, `f0[i]` (frames,) Hz at 10 ms or None."""

    ids: list[str]
    audio: list[np.ndarray]
    f0: list[np.ndarray | None]
    sample_rate: int
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (id, reason)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def load(cls, catalog: Catalog, entries: Sequence[Entry], sample_rate: int, with_f0: bool,
             progress: bool = False) -> "Songs":
        """Decodes `entries` (mono, `sample_rate`); with `with_f0`, entries without a readable annotation are skipped."""
        from tqdm import tqdm

        ids, audio, f0s, skipped = [], [], [], []
        for e in tqdm(entries, desc="load songs", unit="song", disable=not progress):
            try:
                x = read_audio(catalog.resolve(e.path), sample_rate=sample_rate, channels=1)[0]
                f0 = None
                if with_f0:
                    if not e.annotation:
                        raise AnnotationError("no f0 annotation in the catalog")
                    times, hz = read_f0(catalog.resolve(e.annotation))
                    f0 = f0_on_grid(times, hz, 0.0, int(len(x) / sample_rate / HOP) + 1).astype(np.float32)
            except (AudioError, AnnotationError, OSError) as err:
                skipped.append((e.id, str(err)))
                continue
            ids.append(e.id)
            audio.append(x)
            f0s.append(f0)
        return cls(ids, audio, f0s, sample_rate, skipped)
