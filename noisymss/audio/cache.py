"""Segment reads for training loaders, optionally through a decoded-audio cache.

Decoding FLAC costs several times reading WAV, and a loader reads the same stems every epoch.
With a cache folder, each file is decoded once into a raw `.npy` (int16 when the source is
16-bit PCM, so it is exact and half the size of float32; channels stored one after another)
that later reads memory-map and slice: a segment then costs a copy, not a decode. Cache files
are keyed by path, size and mtime, and written atomically, so concurrent workers at worst decode
a file twice.

Without a cache, a 16-bit PCM WAV is used the same way: its data chunk already is decoded audio,
so it is memory-mapped (header checked against libsndfile's reading of the file) and sliced.
Other files are read by seeking.

A file that changes after it was opened is noticed: every read compares the file's size, mtime
and inode with those it was opened with (one `os.stat`, about 1 % of a 6 s stereo read), and
reopens (re-decodes) it when they differ. This also keeps a map off a truncated file's missing
pages, which would kill the process (SIGBUS). A change that keeps size, mtime and inode is not
seen, and a cache file whose source was rewritten with the same size and mtime is reused.

Speed notes (this is a loader's hot path): a segment is converted once, straight into its
destination (`out=`), with no intermediate float copies. 16-bit PCM is read as int16 and scaled
by 2**-15 here, which is exactly libsndfile's float conversion and several times faster. A WAV
stores channels interleaved, so a direct read converts from a strided view, which takes about
twice the time of the cache's contiguous copy (the price of reading WAV without a cache; other
ways of splitting the channels, in NumPy or torch, measured no faster). Reads that need
resampling or a channel conversion take `read_audio`'s steps. Mapped pages count in a process's
RSS but are the kernel's page cache, shared by every worker.
"""
from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

from noisymss.atomic import atomic_path
from noisymss.audio.io import (AudioError, _short, audio_info, convert_channels, fit_length, one_channel, read_audio,
                               resample, split_channel)
from noisymss.audio.wav import PCM, read_wav_header

_INT16_SCALE = np.float32(1.0 / 32768.0)  # a power of two: x * 2**-15 == x / 32768 exactly
# Float samples are copied as x + 0.0 (same cost as a copy): -0.0 becomes +0.0, so a segment read
# into a buffer is exactly what `zeros + segment` was (the mixer relies on this); 16-bit PCM never
# gives -0.0.
_ZERO = np.float32(0.0)


class SegmentReader:
    """Reads (channels, samples) segments at a target rate and channel count.

    Args:
        cache_dir: folder for decoded copies; None reads the files directly (16-bit PCM WAV
            through a memory map, anything else by seeking).
        max_open: memory maps kept open per process, each kind (least recently used are closed);
            each holds a file descriptor.
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None, max_open: int = 256):
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.max_open = max_open
        # path -> (samples, rate, stat signature): decoded (channels, frames) maps of the cache ...
        self._maps: OrderedDict[str, tuple[np.ndarray, int, tuple]] = OrderedDict()
        # ... and, for direct reads, (frames, channels) int16 maps of PCM_16 WAVs (None: not one).
        self._wavs: OrderedDict[str, tuple[np.ndarray | None, int, tuple]] = OrderedDict()

    def __getstate__(self) -> dict:
        # Open maps stay with their process: pickling them (spawned workers) would copy whole files.
        return {"cache_dir": self.cache_dir, "max_open": self.max_open}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["cache_dir"], state["max_open"])

    def read(self, path: str, start: float, duration: float, sample_rate: int, channels: int,
             out: np.ndarray | None = None) -> np.ndarray:
        """`duration` seconds from `start`, zero-padded past the end.

        Args:
            out: optional (channels, round(duration * sample_rate)) float32 array to write the
                segment into (saves an allocation and a copy); it is returned.

        Returns:
            (channels, round(duration * sample_rate)) float32. Samples equal `read_audio`'s; a
            -0.0 in a float-format file reads as +0.0 (except on the resampling/channel-conversion
            path without `out`, which returns `read_audio`'s array itself).
        """
        length = int(round(duration * sample_rate))
        if out is not None and (out.shape != (channels, length) or out.dtype != np.float32):
            raise ValueError(f"out must be float32 of shape {(channels, length)}, got {out.dtype} {out.shape}")
        base, channel = split_channel(path)
        if channel is not None:  # one channel of a file: read them all (as they are), keep that one
            whole = audio_info(base)  # one header read per segment, as for any file
            one_channel(whole, channel)  # a clear error for a channel the file does not have
            audio = convert_channels(self.read(base, start, duration, sample_rate, whole.channels)[channel:channel + 1],
                                     channels)
            if out is None:
                return np.ascontiguousarray(audio)
            np.add(audio, _ZERO, out=out)
            return out
        if self.cache_dir is None:
            audio = self._read_file(path, start, duration, sample_rate, channels, length, out)
        else:
            audio = self._read_cached(path, start, duration, sample_rate, channels, length, out)
        if out is not None and audio is not out:
            np.add(audio, _ZERO, out=out)  # a copy that also writes -0.0 as +0.0, as every path here does
            return out
        return audio

    def _opened(self, maps: OrderedDict, path: str, load: Callable) -> tuple[np.ndarray | None, int]:
        """(samples, rate) of `path` from `maps`, (re)loaded with `load(path)` if new or changed."""
        signature = _signature(path)
        entry = maps.get(path)
        if entry is None or entry[2] != signature:
            entry = maps[path] = (*load(path), signature)
            if len(maps) > self.max_open:
                maps.popitem(last=False)
        maps.move_to_end(path)
        return entry[0], entry[1]

    # ------------------------------------------------------------------ direct reads
    def _read_file(self, path, start, duration, sample_rate, channels, length, out):
        """Same result as `read_audio`: from a map for PCM_16 WAV, else a seeking read."""
        mapped = None
        if str(path).lower().endswith(".wav"):
            mapped, rate = self._opened(self._wavs, path, _map_pcm16_wav)
        if mapped is None or rate != sample_rate or mapped.shape[1] != channels:
            return self._read_seek(path, start, duration, sample_rate, channels, length, out)
        begin, count = _window(int(round(start * rate)), mapped.shape[0], length)
        dst = out if out is not None else np.empty((channels, length), np.float32)
        np.multiply(mapped[begin:begin + count].T, _INT16_SCALE, out=dst[:, :count])
        dst[:, count:] = 0.0
        return dst

    @staticmethod
    def _read_seek(path, start, duration, sample_rate, channels, length, out):
        """Seeking read; same result as `read_audio`, without its second open and float copies."""
        try:
            f = sf.SoundFile(str(path))
        except Exception as err:
            raise AudioError(f"{path}: not readable audio ({_short(err)})") from None
        with f:
            rate, have, frames = f.samplerate, f.channels, f.frames
            if rate != sample_rate or have != channels:
                f.close()
                return read_audio(path, start, duration, sample_rate, channels)
            begin, count = _window(int(round(start * rate)), frames, length)
            dst = out if out is not None else np.empty((channels, length), np.float32)
            try:
                if count:
                    if begin:
                        f.seek(begin)
                    if f.subtype == "PCM_16":
                        data = f.read(count, dtype="int16", always_2d=True)
                        count = len(data)
                        np.multiply(data.T, _INT16_SCALE, out=dst[:, :count])
                    else:
                        data = f.read(count, dtype="float32", always_2d=True)
                        count = len(data)
                        np.add(data.T, _ZERO, out=dst[:, :count])
            except Exception as err:
                raise AudioError(f"{path}: read failed at {start:.3f}s ({_short(err)})") from None
        dst[:, count:] = 0.0
        return dst

    # ------------------------------------------------------------------ cached reads
    def _read_cached(self, path, start, duration, sample_rate, channels, length, out):
        data, rate = self._opened(self._maps, path, self._decoded)
        first = int(round(start * rate))
        if rate != sample_rate or data.shape[0] != channels:
            # read_audio's steps: one extra frame for the resampler, then rate, length, channels.
            begin, count = _window(first, data.shape[1], int(np.ceil(duration * rate)) + (rate != sample_rate))
            seg = data[:, begin:begin + count]
            audio = seg.astype(np.float32) / 32768.0 if seg.dtype == np.int16 else np.array(seg, dtype=np.float32)
            audio = fit_length(resample(audio, rate, sample_rate), length)
            return convert_channels(audio, channels)
        begin, count = _window(first, data.shape[1], length)
        seg = data[:, begin:begin + count]
        dst = out if out is not None else np.empty((channels, length), np.float32)
        if seg.dtype == np.int16:
            np.multiply(seg, _INT16_SCALE, out=dst[:, :count])
        else:
            np.add(seg, _ZERO, out=dst[:, :count])
        dst[:, count:] = 0.0
        return dst

    def _decoded(self, path: str) -> tuple[np.ndarray, int]:
        """The cache file of `path` (decoded now if missing), memory-mapped: ((channels, frames), rate)."""
        info = audio_info(path)  # also the clear error for a missing or unreadable file
        st = os.stat(path)
        key = hashlib.sha1(f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
        cached = self.cache_dir / key[:2] / f"{key}.{info.sample_rate}.npy"
        if not cached.is_file():
            self._decode(path, cached)
        # A plain ndarray view of the map: slicing a np.memmap subclass costs more per read.
        return np.load(cached, mmap_mode="r").view(np.ndarray), info.sample_rate

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


def _window(first: int, frames: int, count: int) -> tuple[int, int]:
    """(begin, frames to copy) of a `count`-frame read from frame `first` of `frames`, as
    `read_audio` seeks: a negative start reads from 0, a start at or past the end reads nothing."""
    if first >= frames:
        return 0, 0
    begin = max(first, 0)
    return begin, min(count, frames - begin)


def _signature(path: str) -> tuple | None:
    """What tells a file changed since it was opened: (size, mtime, inode); None if it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


def _map_pcm16_wav(path) -> tuple[np.ndarray | None, int]:
    """Memory-maps the data chunk of a little-endian 16-bit PCM WAV: ((frames, channels) int16, rate).

    Returns (None, 0) for anything else, or when libsndfile reads the file differently (frames,
    channels, rate, subtype), so that a map is only used where it gives libsndfile's samples.
    """
    header = read_wav_header(path)
    if (header is None or header.format_tag != PCM or header.bits != 16 or header.channels < 1
            or header.block_align != 2 * header.channels):
        return None, 0
    frames, nch = header.frames_present, header.channels
    try:
        info = sf.info(str(path))
        if (info.subtype, info.channels, info.samplerate, info.frames) != ("PCM_16", nch, header.sample_rate, frames) \
                or frames < 1:
            return None, 0
        mapped = np.memmap(path, dtype="<i2", mode="r", offset=header.data_offset, shape=(frames, nch))
    except Exception:  # unreadable or odd: the seeking read decides (and reports errors as before)
        return None, 0
    return mapped.view(np.ndarray), int(header.sample_rate)
