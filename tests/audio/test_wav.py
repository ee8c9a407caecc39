"""The one RIFF/WAVE header reader (audio.wav), as the segment reader's map and the index's probe use it."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import soundfile as sf

from noisymss.audio.cache import SegmentReader, _map_pcm16_wav
from noisymss.audio.io import AudioError, read_audio
from noisymss.audio.wav import EXTENSIBLE, IEEE_FLOAT, PCM, read_wav_header
from noisymss.data.sources.probe import probe_audio

RATE = 8000
KSDATAFORMAT_TAIL = bytes.fromhex("000000001000800000aa00389b71")  # the GUID after its 2-byte tag


def chunk(cid: bytes, body: bytes, size: int | None = None) -> bytes:
    """A RIFF chunk, padded to an even length; `size` overrides the declared size."""
    return cid + struct.pack("<I", len(body) if size is None else size) + body + b"\0" * (len(body) & 1)


def fmt_body(tag: int, channels: int, bits: int, extensible: bool = False) -> bytes:
    align = channels * bits // 8
    body = struct.pack("<HHIIHH", EXTENSIBLE if extensible else tag, channels, RATE, RATE * align, align, bits)
    if extensible:
        mask = (1 << channels) - 1
        body += struct.pack("<HHI", 22, bits, mask) + struct.pack("<H", tag) + KSDATAFORMAT_TAIL
    return body


def wav_bytes(samples: bytes, tag=PCM, channels=2, bits=16, extensible=False, before=(), between=(),
              data_size=None) -> bytes:
    """A WAV built by hand: optional chunks before `fmt ` and between it and `data`."""
    body = b"WAVE" + b"".join(before) + chunk(b"fmt ", fmt_body(tag, channels, bits, extensible))
    body += b"".join(between) + chunk(b"data", samples, data_size)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def pcm16(frames: int = 1000, channels: int = 2) -> np.ndarray:
    rng = np.random.default_rng(frames + channels)
    return rng.integers(-32768, 32768, size=(frames, channels)).astype("<i2")


ODD = chunk(b"LIST", b"abc")  # 3 bytes and a pad byte


@pytest.mark.parametrize("before, between", [((), ()), ((ODD,), ()), ((), (ODD, chunk(b"fact", b"\1\0\0\0"))),
                                             ((ODD, chunk(b"junk", b"x" * 7)), (ODD,))])
@pytest.mark.parametrize("extensible", [False, True])
def test_pcm16_maps_at_the_data_chunk_whatever_comes_before(tmp_path, before, between, extensible):
    samples = pcm16()
    path = tmp_path / "a.wav"
    path.write_bytes(wav_bytes(samples.tobytes(), extensible=extensible, before=before, between=between))
    header = read_wav_header(path)
    assert (header.format_tag, header.channels, header.sample_rate, header.bits, header.block_align) == (PCM, 2, RATE, 16, 4)
    assert header.declared_frames == header.frames_present == 1000
    assert path.read_bytes()[header.data_offset:] == samples.tobytes()
    mapped, rate = _map_pcm16_wav(path)
    assert rate == RATE and np.array_equal(mapped, sf.read(str(path), dtype="int16", always_2d=True)[0])


@pytest.mark.parametrize("tag, bits, dtype", [(IEEE_FLOAT, 32, "<f4"), (PCM, 24, None), (PCM, 32, "<i4"), (PCM, 8, "u1")])
@pytest.mark.parametrize("extensible", [False, True])
def test_other_sample_formats_are_read_but_not_mapped(tmp_path, tag, bits, dtype, extensible):
    rng = np.random.default_rng(bits)
    if dtype == "<f4":
        samples = rng.uniform(-1, 1, (500, 2)).astype(dtype).tobytes()
    elif dtype is None:  # 24-bit: three bytes per sample
        samples = rng.integers(0, 256, 500 * 2 * 3).astype("u1").tobytes()
    else:
        samples = rng.integers(0, 200, (500, 2)).astype(dtype).tobytes()
    path = tmp_path / "b.wav"
    path.write_bytes(wav_bytes(samples, tag=tag, bits=bits, extensible=extensible, before=(ODD,)))
    header = read_wav_header(path)
    assert (header.format_tag, header.bits, header.block_align, header.declared_frames) == (tag, bits, 2 * bits // 8, 500)
    assert _map_pcm16_wav(path) == (None, 0)
    assert sf.info(str(path)).frames == 500  # libsndfile agrees on what the file is
    np.testing.assert_array_equal(SegmentReader().read(str(path), 0.01, 0.05, RATE, 2),
                                  read_audio(path, 0.01, 0.05, RATE, 2) + np.float32(0))


def test_a_float_wav_written_by_libsndfile(tmp_path):
    path = tmp_path / "f.wav"
    sf.write(str(path), np.zeros((10, 1), np.float32), RATE, subtype="FLOAT")
    header = read_wav_header(path)
    assert (header.format_tag, header.channels, header.bits, header.declared_frames) == (IEEE_FLOAT, 1, 32, 10)


def test_truncated_data_chunk(tmp_path):
    """The header declares 1000 frames, 600 and a half are there: the probe says truncated, the map uses 600."""
    samples = pcm16()
    path = tmp_path / "cut.wav"
    path.write_bytes(wav_bytes(samples.tobytes())[: 44 + 600 * 4 + 2])
    header = read_wav_header(path)
    assert (header.declared_frames, header.frames_present) == (1000, 600)
    with pytest.raises(AudioError, match="truncated: header says 1000 frames"):
        probe_audio(path)
    mapped, _ = _map_pcm16_wav(path)
    assert np.array_equal(mapped, samples[:600]) and sf.info(str(path)).frames == 600


@pytest.mark.parametrize("size", [0, 0xFFFFFFFF])
def test_unset_data_size_is_unknown(tmp_path, size):
    path = tmp_path / "stream.wav"
    path.write_bytes(wav_bytes(pcm16(100).tobytes(), data_size=size))
    header = read_wav_header(path)
    assert header.data_size is None and header.declared_frames is None and header.frames_present == 100


@pytest.mark.parametrize("data", [
    b"", b"RIFF", b"RIFX" + b"\0" * 40, b"RIFF\0\0\0\0AVI " + b"\0" * 40,
    b"RIFF\0\0\0\0WAVE",  # no chunks
    b"RIFF\0\0\0\0WAVE" + chunk(b"data", b"\0" * 8) + chunk(b"fmt ", fmt_body(PCM, 2, 16)),  # data before fmt
    b"RIFF\0\0\0\0WAVE" + chunk(b"fmt ", fmt_body(PCM, 2, 16)[:14]) + chunk(b"data", b"\0" * 8),  # short fmt
    b"RIFF\0\0\0\0WAVE" + chunk(b"fmt ", fmt_body(PCM, 2, 16, extensible=True)[:24]) + chunk(b"data", b""),
    wav_bytes(b"\0" * 40)[:30],  # cut inside fmt
    wav_bytes(b"\0" * 40)[:40],  # cut inside the data chunk's header
])
def test_not_a_usable_wav_header(tmp_path, data):
    path = tmp_path / "x.wav"
    path.write_bytes(data)
    assert read_wav_header(path) is None
    assert _map_pcm16_wav(path) == (None, 0)


def test_missing_file(tmp_path):
    assert read_wav_header(tmp_path / "none.wav") is None
