"""Segment reads for training loaders, optionally through a decoded-audio cache.

Decoding FLAC costs several times reading WAV, and a loader reads the same stems every epoch.
With a cache folder, each file is decoded once into a raw `.npy` (int16 when the source is
16-bit PCM, so it is exact and half the size of float32) that later reads memory-map and slice:
a segment then costs a copy, not a decode. Cache files are keyed by path, size and mtime, and
written atomically, so concurrent workers at worst decode a file twice.

Without a cache, a 16-bit PCM WAV is used the same way: its data chunk already is decoded audio,
so it is memory-mapped (header checked against libsndfile's reading of the file, map checked
against the file's size and mtime on every read) and sliced. Other files are read by seeking.

Speed notes (this is a loader's hot path): a segment is converted once, straight into its
destination (`out=`), with no intermediate float copies. 16-bit PCM is read as int16 and scaled
by 2**-15 here, which is exactly libsndfile's float conversion and several times faster. Reads
that need resampling or a channel conversion take the general path (`read_audio`). Mapped pages
count in a process's RSS but are the kernel's page cache, shared by every worker.
"""
from __future__ import annotations

import hashlib
import os
import struct
from collections import OrderedDict
from pathlib import Path

import numpy as np
import soundfile as sf

from noisymss.atomic import atomic_path
from noisymss.audio.io import AudioError, _short, audio_info, convert_channels, fit_length, read_audio, resample

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
        self._maps: OrderedDict[str, tuple[np.ndarray, int]] = OrderedDict()  # path -> (samples, rate)
        # Direct reads: path -> ((frames, channels) int16 map of a PCM_16 WAV or None, rate, stat signature).
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
        if self.cache_dir is None:
            audio = self._read_file(path, start, duration, sample_rate, channels, length, out)
        else:
            audio = self._read_cached(path, start, duration, sample_rate, channels, length, out)
        if out is not None and audio is not out:
            np.add(audio, _ZERO, out=out)  # a copy that also writes -0.0 as +0.0, as every path here does
            return out
        return audio

    # ------------------------------------------------------------------ direct reads
    def _read_file(self, path, start, duration, sample_rate, channels, length, out):
        """Same result as `read_audio`: from a map for PCM_16 WAV, else a seeking read."""
        mapped, rate = self._wav_map(path)
        if mapped is None or rate != sample_rate or mapped.shape[1] != channels:
            return self._read_seek(path, start, duration, sample_rate, channels, length, out)
        frames = mapped.shape[0]
        first = int(round(start * rate))
        begin = first if 0 < first < frames else 0  # read_audio's seek rule (a negative start reads from 0)
        count = 0 if first >= frames else max(0, min(length, frames - begin))
        dst = out if out is not None else np.empty((channels, length), np.float32)
        np.multiply(mapped[begin:begin + count].T, _INT16_SCALE, out=dst[:, :count])
        dst[:, count:] = 0.0
        return dst

    def _wav_map(self, path) -> tuple[np.ndarray | None, int]:
        """The (frames, channels) int16 map of a PCM_16 WAV, or (None, 0) for any other file."""
        if not str(path).lower().endswith(".wav"):
            return None, 0
        try:
            st = os.stat(path)
        except OSError:
            return None, 0  # the seeking read reports it
        sig = (st.st_size, st.st_mtime_ns, st.st_ino)
        entry = self._wavs.get(path)
        if entry is not None and entry[2] == sig:
            self._wavs.move_to_end(path)
            return entry[0], entry[1]
        mapped, rate = _map_pcm16_wav(path)
        self._wavs[path] = (mapped, rate, sig)
        self._wavs.move_to_end(path)
        if len(self._wavs) > self.max_open:
            self._wavs.popitem(last=False)
        return mapped, rate

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
            first = int(round(start * rate))
            begin = first if 0 < first < frames else 0  # read_audio's seek rule (a negative start reads from 0)
            count = 0 if first >= frames else max(0, min(length, frames - begin))
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
        data, rate = self._decoded(path)
        first = int(round(start * rate))
        count = int(np.ceil(duration * rate)) + (rate != sample_rate)
        seg = data[:, first:first + count]
        if rate != sample_rate or data.shape[0] != channels:
            audio = seg.astype(np.float32) / 32768.0 if seg.dtype == np.int16 else np.array(seg, dtype=np.float32)
            audio = fit_length(resample(audio, rate, sample_rate), length)
            return convert_channels(audio, channels)
        seg = seg[:, :length]
        have = seg.shape[1]
        dst = out if out is not None else np.empty((channels, length), np.float32)
        if seg.dtype == np.int16:
            np.multiply(seg, _INT16_SCALE, out=dst[:, :have])
        else:
            np.add(seg, _ZERO, out=dst[:, :have])
        dst[:, have:] = 0.0
        return dst

    def _decoded(self, path: str) -> tuple[np.ndarray, int]:
        entry = self._maps.get(path)
        if entry is not None:
            self._maps.move_to_end(path)
            return entry
        st = os.stat(path)
        key = hashlib.sha1(f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
        info = audio_info(path)
        cached = self.cache_dir / key[:2] / f"{key}.{info.sample_rate}.npy"
        if not cached.is_file():
            self._decode(path, cached)
        # A plain ndarray view of the map: slicing a np.memmap subclass costs more per read.
        entry = self._maps[path] = (np.load(cached, mmap_mode="r").view(np.ndarray), info.sample_rate)
        if len(self._maps) > self.max_open:
            self._maps.popitem(last=False)
        return entry

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


def _map_pcm16_wav(path) -> tuple[np.ndarray | None, int]:
    """Memory-maps the data chunk of a little-endian 16-bit PCM WAV: ((frames, channels) int16, rate).

    Returns (None, 0) for anything else, or when libsndfile reads the file differently (frames,
    channels, rate, subtype), so that a map is only used where it gives libsndfile's samples.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None, 0
            fmt = None
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None, 0
                cid, size = chunk[:4], int.from_bytes(chunk[4:], "little")
                if cid == b"fmt ":
                    body = f.read(size)
                    if len(body) < 16:
                        return None, 0
                    tag, nch, rate, _, align, bits = struct.unpack("<HHIIHH", body[:16])
                    if tag == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the sub-format GUID starts with the tag
                        tag = int.from_bytes(body[24:26], "little")
                    fmt = (tag, nch, rate, align, bits)
                    f.seek(size & 1, 1)
                elif cid == b"data":
                    offset = f.tell()
                    break
                else:
                    f.seek(size + (size & 1), 1)
        if fmt is None or fmt[0] != 1 or fmt[4] != 16 or fmt[1] < 1 or fmt[3] != 2 * fmt[1]:
            return None, 0
        _, nch, rate, _, _ = fmt
        info = sf.info(str(path))
        frames = min(size, os.path.getsize(path) - offset) // (2 * nch)
        if (info.subtype, info.channels, info.samplerate, info.frames) != ("PCM_16", nch, rate, frames) or frames < 1:
            return None, 0
        mapped = np.memmap(path, dtype="<i2", mode="r", offset=offset, shape=(frames, nch))
        return mapped.view(np.ndarray), int(rate)
    except Exception:  # unreadable or odd: the seeking read decides (and reports errors as before)
        return None, 0
