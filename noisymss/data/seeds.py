"""Named random streams: every random draw of the data pipeline comes from `generator(seed, stream, *keys)`.

A stream is a name (``"mix/train"``, ``"patch"``, ``"noise/teacher"``, ...), never a hand-picked
integer, so two parts of the pipeline cannot share random numbers by accident: the name is hashed
into the `SeedSequence` spawn key beside the keys (epoch, index, ...), and different names or
different keys give independent streams. The hash is CRC-32 of the UTF-8 name, stable across
processes, platforms and Python versions (unlike `hash()`).
"""
from __future__ import annotations

import zlib

import numpy as np


def stream_id(stream: str) -> int:
    """The stable integer that names `stream` in a seed's spawn key."""
    if not stream:
        raise ValueError("a random stream needs a name")
    return zlib.crc32(stream.encode("utf-8"))


def generator(seed: int, stream: str, *keys: int) -> np.random.Generator:
    """An independent generator for (seed, stream, keys); the same arguments give the same numbers.

    Args:
        seed: the run's base seed (a config's `seed`).
        stream: what the numbers are for; each purpose has its own name.
        keys: non-negative integers that pick one draw of the stream, e.g. (epoch, index).
    """
    if any(k < 0 for k in keys):
        raise ValueError(f"seed keys must be non-negative, got {keys} for stream '{stream}'")
    sequence = np.random.SeedSequence(int(seed), spawn_key=(stream_id(stream), *(int(k) for k in keys)))
    return np.random.default_rng(sequence)
