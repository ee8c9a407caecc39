"""Segment reads for training loaders, optionally through a decoded-audio cache.

Decoding FLAC costs several times reading WAV, and a loader reads the same stems every epoch.
With a cache folder, each file is decoded once into a raw `.npy` (int16 when the source is
16-bit PCM, so it is exact and half the size of float32) that later reads memory-map and slice:
a segment then costs a copy, not a decode. Cache files are keyed by path, size and mtime, and
written atomically, so concurrent workers at worst decode a file twice.
"""
from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import soundfile as sf

from noisymss.atomic import atomic_path
from noisymss.audio.io import AudioError, audio_info, convert_channels, fit_length, read_audio, resample


class SegmentReader:
    """Reads (channels, samples) segments at a target rate and channel count.

    Args:
        cache_dir: folder for decoded copies; None reads the files directly (seeking).
        max_open: memory maps kept open per process (least recently used are closed).
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None, max_open: int = 256):
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.max_open = max_open
        self._maps: OrderedDict[str, tuple[np.ndarray, int]] = OrderedDict()  # path -> (samples, rate)

    def read(self, path: str, start: float, duration: float, sample_rate: int, channels: int) -> np.ndarray:
        """`duration` seconds from `start`, zero-padded past the end.

        Returns:
            (channels, round(duration * sample_rate)) float32.
        """
        if self.cache_dir is None:
            return read_audio(path, start, duration, sample_rate, channels)
        data, rate = self._decoded(path)
        first = int(round(start * rate))
        count = int(np.ceil(duration * rate)) + (rate != sample_rate)
        seg = data[:, first:first + count]
        audio = seg.astype(np.float32) / 32768.0 if seg.dtype == np.int16 else np.array(seg, dtype=np.float32)
        audio = fit_length(resample(audio, rate, sample_rate), int(round(duration * sample_rate)))
        return convert_channels(audio, channels)

    def _decoded(self, path: str) -> tuple[np.ndarray, int]:
        if path in self._maps:
            self._maps.move_to_end(path)
            return self._maps[path]
        st = os.stat(path)
        key = hashlib.sha1(f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
        info = audio_info(path)
        cached = self.cache_dir / key[:2] / f"{key}.{info.sample_rate}.npy"
        if not cached.is_file():
            self._decode(path, cached)
        self._maps[path] = (np.load(cached, mmap_mode="r"), info.sample_rate)
        if len(self._maps) > self.max_open:
            self._maps.popitem(last=False)
        return self._maps[path]

    @staticmethod
    def _decode(path: str, cached: Path) -> None:
        subtype = sf.info(path).subtype
        dtype = "int16" if subtype == "PCM_16" else "float32"
        try:
            data, _ = sf.read(path, dtype=dtype, always_2d=True)
        except Exception as err:
            raise AudioError(f"{path}: decode failed ({err})") from None
        with atomic_path(cached) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.ascontiguousarray(data.T))
