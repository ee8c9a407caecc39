"""Whole songs as separation references: the mixture and one reference per source, from a catalog.

A song can be scored only when every stem of it names exactly one of the sources under the label
version used for evaluation: a stem labelled {vocals, bass} holds both and cannot be split into
exact references, and a stem of a class outside the sources would be in the mixture with no
reference to be scored against. Such songs are skipped with the reason, never scored wrongly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from noisymss.audio.io import read_audio
from noisymss.data.catalog import Catalog


@dataclass
class SongReference:
    """mixture (C, T) and references (S, C, T), float32; the mixture is the sum of the references."""

    song: str
    mixture: np.ndarray
    references: np.ndarray


def scorable_songs(catalog: Catalog, split: str, sources: Sequence[str],
                   labels: Mapping[str, Sequence[str]]) -> tuple[list[str], dict[str, str]]:
    """(songs that can be scored, {song: why not}) among the songs of `split`, in catalog order."""
    stems: dict[str, list] = {}
    for e in catalog.stems(split):
        stems.setdefault(e.song, []).append(e)
    ok, skipped = [], {}
    for song, entries in stems.items():
        bad = [e for e in entries if len(labels[e.id]) != 1 or labels[e.id][0] not in sources]
        if bad:
            skipped[song] = f"stem {bad[0].id} is labelled {'+'.join(labels[bad[0].id]) or '(nothing)'}: no exact reference"
        else:
            ok.append(song)
    return ok, skipped


def load_song(catalog: Catalog, song: str, sources: Sequence[str], labels: Mapping[str, Sequence[str]],
              sample_rate: int, channels: int) -> SongReference:
    """Reads a scorable song's stems at `sample_rate` and `channels` and sums them per source."""
    entries = [e for e in catalog.stems() if e.song == song]
    audio = [read_audio(catalog.resolve(e.path), sample_rate=sample_rate, channels=channels) for e in entries]
    length = max(a.shape[-1] for a in audio)
    refs = np.zeros((len(sources), channels, length), dtype=np.float32)
    for e, a in zip(entries, audio):
        refs[list(sources).index(labels[e.id][0]), :, :a.shape[-1]] += a
    return SongReference(song, refs.sum(axis=0), refs)
