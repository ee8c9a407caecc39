"""RIFF/WAVE headers, read without decoding: how the samples are stored and where they lie.

libsndfile hides what some callers need: a WAV whose data chunk runs past the end of the file
is quietly shortened to the bytes present (the index reports it as truncated), and a 16-bit PCM
data chunk can be memory-mapped as it is (the segment reader uses it as decoded audio).
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass

PCM, IEEE_FLOAT, EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)  # streaming writers leave the data size unset


@dataclass(frozen=True)
class WavHeader:
    """The `fmt ` and `data` chunks of a RIFF/WAVE file.

    Attributes:
        format_tag: 1 PCM, 3 IEEE float, ...; WAVE_FORMAT_EXTENSIBLE is resolved to its sub-format.
        channels, sample_rate, block_align (bytes per frame), bits (per sample).
        data_offset: where the samples start, in bytes from the start of the file.
        data_size: the data chunk's declared size in bytes; None when the writer left it unset.
        file_size: the file's size when the header was read.
    """

    format_tag: int
    channels: int
    sample_rate: int
    block_align: int
    bits: int
    data_offset: int
    data_size: int | None
    file_size: int

    @property
    def declared_frames(self) -> int | None:
        """Frames the data chunk declares; None when its size is unset or the frame size is 0."""
        if self.data_size is None or not self.block_align:
            return None
        return self.data_size // self.block_align

    @property
    def frames_present(self) -> int:
        """Whole frames of the data chunk that are in the file (fewer than declared if truncated)."""
        present = self.file_size - self.data_offset
        size = present if self.data_size is None else min(self.data_size, present)
        return max(size, 0) // self.block_align if self.block_align else 0


def read_wav_header(path: str | os.PathLike) -> WavHeader | None:
    """The header of a RIFF/WAVE file, or None.

    None when `path` is unreadable, is not RIFF/WAVE (RF64 included), or has no complete `fmt `
    chunk before its `data` chunk. Chunks are walked in order, each padded to an even size.
    """
    try:
        with open(path, "rb") as f:
            file_size = os.fstat(f.fileno()).st_size
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            fmt = None
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None  # no data chunk (or a truncated header)
                cid, size = chunk[:4], int.from_bytes(chunk[4:], "little")
                if cid == b"data":
                    if fmt is None:
                        return None
                    declared = None if size in _UNKNOWN_SIZES else size
                    return WavHeader(*fmt, data_offset=f.tell(), data_size=declared, file_size=file_size)
                if cid == b"fmt ":
                    fmt = _parse_fmt(f.read(size))
                    if fmt is None:
                        return None
                    f.seek(size & 1, os.SEEK_CUR)
                else:
                    f.seek(size + (size & 1), os.SEEK_CUR)  # chunks are word-aligned
    except OSError:
        return None


def _parse_fmt(body: bytes) -> tuple[int, int, int, int, int] | None:
    """(format_tag, channels, sample_rate, block_align, bits) of a `fmt ` chunk body."""
    if len(body) < 16:
        return None
    tag, channels, rate, _, align, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == EXTENSIBLE:
        if len(body) < 26:
            return None
        tag = int.from_bytes(body[24:26], "little")  # the sub-format GUID starts with the tag
    return tag, channels, rate, align, bits
