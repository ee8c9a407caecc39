"""Audio file I/O: read whole files or seek to a segment, convert rate and channels, write atomically.

Audio arrays are float32 NumPy arrays of shape (channels, samples) throughout the project. A path
ending in `#ch<k>` names channel k of a file alone (datasets such as MIR-1K and iKala store the
vocals and the accompaniment as the two channels of one file): it reads as a mono file.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

from noisymss.atomic import atomic_path

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3", ".opus")


class AudioError(OSError):
    """A file that cannot be used as audio; the message names the file and the reason."""


@dataclass(frozen=True)
class AudioInfo:
    """What the header of an audio file says."""

    path: str
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


_CHANNEL = re.compile(r"^(.*)#ch(\d+)$")


def split_channel(path: str | os.PathLike) -> tuple[str, int | None]:
    """('file', k) for 'file#ch<k>', ('file', None) for a plain path."""
    found = _CHANNEL.match(str(path))
    return (found.group(1), int(found.group(2))) if found else (str(path), None)


def channel_path(path: str | os.PathLike, channel: int) -> str:
    """The path that names channel `channel` of a file alone."""
    return f"{path}#ch{channel}"


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Reads the header of `path` (one channel of it for 'file#ch<k>'); raises AudioError if it is not
    readable audio."""
    base, channel = split_channel(path)
    try:
        info = sf.info(base)
    except Exception as err:  # soundfile raises LibsndfileError, RuntimeError or TypeError
        raise AudioError(f"{path}: not readable audio ({_short(err)})") from None
    whole = AudioInfo(base, int(info.samplerate), int(info.channels), int(info.frames))
    return whole if channel is None else one_channel(whole, channel)


def one_channel(info: AudioInfo, channel: int) -> AudioInfo:
    """The header of channel `channel` alone of the file `info` describes; an AudioError if it has none."""
    if channel >= info.channels:
        raise AudioError(f"{channel_path(info.path, channel)}: the file has {info.channels} channel(s), so no channel {channel}")
    return AudioInfo(channel_path(info.path, channel), info.sample_rate, 1, info.frames)


def read_audio(
    path: str | os.PathLike,
    start: float = 0.0,
    duration: float | None = None,
    sample_rate: int | None = None,
    channels: int | None = None,
) -> np.ndarray:
    """Reads `duration` seconds from `start` (whole file by default), seeking rather than decoding all.

    A segment that runs past the end of the file is zero-padded, so the result always holds
    exactly round(duration * rate) samples when a duration is given.

    Args:
        path: any file libsndfile reads (WAV, FLAC, OGG, AIFF, MP3 ...).
        start: segment start in seconds, in the file's time.
        duration: segment length in seconds; None reads to the end.
        sample_rate: target rate; None keeps the file's rate.
        channels: target channel count (1 → average, mono → repeated); None keeps the file's.

    Returns:
        float32 array of shape (channels, samples).
    """
    info = audio_info(path)
    if info.frames == 0:
        raise AudioError(f"{path}: holds no samples")
    base, channel = split_channel(path)
    if channel is not None:  # the whole file's channels, then the one asked for
        audio = read_audio(base, start, duration, sample_rate)[channel:channel + 1]
        return convert_channels(audio, channels) if channels else audio
    target_rate = sample_rate or info.sample_rate
    first = int(round(start * info.sample_rate))
    if duration is None:
        count = max(info.frames - first, 0)
        out_len = int(round(count * target_rate / info.sample_rate))
    else:
        out_len = int(round(duration * target_rate))
        # One extra source frame so resampling sees the sample just past the segment.
        count = int(np.ceil(duration * info.sample_rate)) + (target_rate != info.sample_rate)
    try:
        with sf.SoundFile(str(path)) as f:
            if 0 < first < info.frames:
                f.seek(first)
            data = f.read(count, dtype="float32", always_2d=True) if first < info.frames else np.zeros((0, info.channels), np.float32)
    except Exception as err:
        raise AudioError(f"{path}: read failed at {start:.3f}s ({_short(err)})") from None
    check_finite(data, path)
    audio = np.ascontiguousarray(data.T)
    audio = resample(audio, info.sample_rate, target_rate)
    audio = fit_length(audio, out_len)
    return convert_channels(audio, channels) if channels else audio


def read_blocks(path: str | os.PathLike, sample_rate: int, channels: int | None = None,
                block: float = 30.0) -> Iterator[np.ndarray]:
    """The whole file as consecutive (channels, samples) blocks at `sample_rate`, about `block` seconds each,
    reading only a block (plus a short margin) at a time, so memory does not grow with the file's length.

    Joined, the blocks are `read_audio(path, sample_rate=..., channels=...)` up to float rounding:
    each block is cut at a multiple of the rates' common period and resampled with enough
    neighbouring samples on both sides that the sinc filter never sees a block edge.
    """
    info = audio_info(path)
    if info.frames == 0:
        raise AudioError(f"{path}: holds no samples")
    base, channel = split_channel(path)
    g = math.gcd(info.sample_rate, sample_rate)
    period_in, period_out = info.sample_rate // g, sample_rate // g  # input frames ↔ output samples, exactly
    step = period_in * max(1, int(block * sample_rate) // period_out)
    # julius' sinc reaches zeros / rolloff = 24 / 0.945 output periods of the slower rate each side
    reach = 26 * max(1.0, info.sample_rate / sample_rate) + 2
    margin = period_in * math.ceil(reach / period_in)
    total = int(round(info.frames * sample_rate / info.sample_rate))
    done = 0
    try:
        with sf.SoundFile(base) as f:
            for a in range(0, info.frames, step):
                lo, hi = max(0, a - margin), min(info.frames, a + step + margin)
                f.seek(lo)
                data = f.read(hi - lo, dtype="float32", always_2d=True).T
                check_finite(data, path)
                if channel is not None:
                    data = data[channel:channel + 1]
                if channels == 1:  # averaging first is the same (resampling is linear) and cheaper
                    data = data.mean(axis=0, keepdims=True)
                out = resample(np.ascontiguousarray(data), info.sample_rate, sample_rate)
                first = (a - lo) // period_in * period_out
                count = min(step // period_in * period_out, total - done)
                piece = fit_length(out[:, first:], count)
                done += count
                yield convert_channels(piece, channels) if channels else piece
    except AudioError:
        raise
    except Exception as err:
        raise AudioError(f"{path}: read failed ({_short(err)})") from None


def check_finite(audio: np.ndarray, path: str | os.PathLike) -> None:
    """Raises AudioError if `audio` holds NaN or infinite samples (a broken file would otherwise give
    silence-like results, or fail deep inside a model)."""
    if not np.isfinite(audio).all():
        raise AudioError(f"{path}: holds NaN or infinite samples; repair or leave out this file")


def resample(audio: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Band-limited resampling with julius (sinc, torch); a no-op when the rates match.

    Args:
        audio: (channels, samples) float32.

    Returns:
        (channels, round(samples * new_rate / orig_rate)) float32.
    """
    if orig_rate == new_rate or audio.shape[-1] == 0:
        return audio
    import julius
    import torch

    g = math.gcd(int(orig_rate), int(new_rate))
    out = julius.resample_frac(torch.from_numpy(np.ascontiguousarray(audio)), int(orig_rate) // g, int(new_rate) // g)
    return out.numpy().astype(np.float32, copy=False)


def convert_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """Mixes down to mono by averaging, or repeats a mono signal; other conversions are refused."""
    have = audio.shape[0]
    if have == channels:
        return audio
    if channels == 1:
        return audio.mean(axis=0, keepdims=True)
    if have == 1:
        return np.repeat(audio, channels, axis=0)
    raise AudioError(f"cannot convert {have} channels to {channels}; give 1 or {have}")


def fit_length(audio: np.ndarray, length: int) -> np.ndarray:
    """Crops or zero-pads the last axis to exactly `length` samples."""
    have = audio.shape[-1]
    if have == length:
        return audio
    if have > length:
        return audio[..., :length]
    pad = np.zeros(audio.shape[:-1] + (length - have,), dtype=audio.dtype)
    return np.concatenate([audio, pad], axis=-1)


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, subtype: str | None = None) -> Path:
    """Writes (channels, samples) audio atomically: a temp file in the same folder, then a rename.

    The format follows the extension (.wav, .flac, ...). A reader never sees a half-written file.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        sf.write(tmp, np.asarray(audio).T, sample_rate, format=path.suffix.lstrip(".").upper(), subtype=subtype)
    return path


def _short(err: Exception) -> str:
    return str(err).strip().splitlines()[-1][:200] if str(err).strip() else type(err).__name__
