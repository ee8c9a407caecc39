"""A compact, array-backed view of catalog stems for loaders.

DataLoader workers are forked: touching Python objects bumps their reference counts and
copies the pages they live on, so a list of 100,000 row objects slowly turns into 100,000
private copies per worker. Here every column is one NumPy array (strings packed into one
byte buffer with offsets), so worker memory stays flat however large the catalog is.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from noisymss.data.catalog import Catalog, Entry


class PackedStrings:
    """An immutable list of strings stored as one UTF-8 buffer plus offsets."""

    def __init__(self, items: Sequence[str]):
        encoded = [s.encode("utf-8") for s in items]
        self.offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=self.offsets[1:])
        self.buffer = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> str:
        return self.buffer[self.offsets[i]:self.offsets[i + 1]].tobytes().decode("utf-8")


@dataclass
class StemTable:
    """Stems of one split under one label version, as arrays.

    Attributes:
        classes: class names, the columns of `labels`.
        paths, annotations: absolute audio paths and f0 references ('' = none).
        song: (N,) int32 song codes; duration: (N,) float32 seconds.
        labels: (N, C) uint8 multi-hot under the label version in use.
    """

    classes: tuple[str, ...]
    paths: PackedStrings
    annotations: PackedStrings
    song: np.ndarray
    duration: np.ndarray
    labels: np.ndarray

    @classmethod
    def build(cls, catalog: Catalog, entries: Sequence[Entry], classes: Sequence[str],
              labels: Mapping[str, Sequence[str]]) -> "StemTable":
        """Packs `entries` (stems) with their labels from `labels` ({id: classes}); other classes are ignored."""
        col = {c: j for j, c in enumerate(classes)}
        multi_hot = np.zeros((len(entries), len(classes)), dtype=np.uint8)
        for i, e in enumerate(entries):
            for c in labels.get(e.id, ()):
                if c in col:
                    multi_hot[i, col[c]] = 1
        songs = {s: k for k, s in enumerate(dict.fromkeys(e.song for e in entries))}
        resolve = _resolver(catalog)
        return cls(
            classes=tuple(classes),
            paths=PackedStrings([resolve(e.path) for e in entries]),
            annotations=PackedStrings([resolve(e.annotation) if e.annotation else "" for e in entries]),
            song=np.array([songs[e.song] for e in entries], dtype=np.int32),
            duration=np.array([e.duration for e in entries], dtype=np.float32),
            labels=multi_hot,
        )

    def __len__(self) -> int:
        return len(self.song)


def _resolver(catalog: Catalog) -> Callable[[str], str]:
    """`str(catalog.resolve(p))`, by string joins where that gives the same text (pathlib is slow at 100k rows).

    A path with nothing pathlib would normalise (no empty or '.' components, no trailing '/')
    joins onto a normalised root as plain text; anything else goes through pathlib.
    """
    root = str(catalog.root)
    if os.name != "posix" or root != str(Path(root)):
        return lambda p: str(catalog.resolve(p))
    prefix = "" if root == "." else root if root.endswith("/") else root + "/"

    def resolve(p: str) -> str:
        if not p or "//" in p or "/./" in p or p.startswith("./") or p.endswith(("/", "/.")) or p == ".":
            return str(catalog.resolve(p))
        return p if p.startswith("/") else prefix + p

    return resolve
