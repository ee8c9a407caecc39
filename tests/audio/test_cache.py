"""SegmentReader (memory-mapped WAV, decoded-audio cache) reads what `read_audio` reads, bit for bit."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import soundfile as sf

from noisymss.audio.cache import SegmentReader
from noisymss.audio.io import AudioError, read_audio

RATE = 8000
FRAMES = 8000 + 37  # not a whole number of segments
FORMATS = [("wav", "PCM_16"), ("wav", "PCM_24"), ("wav", "FLOAT"), ("flac", "PCM_16"), ("flac", "PCM_24")]


def write(path, channels: int, subtype: str, seed: int = 0, frames: int = FRAMES):
    """Noise with a silent stretch; a float file also holds -0.0 samples there."""
    rng = np.random.default_rng(seed)
    audio = (rng.standard_normal((frames, channels)) * 0.2).clip(-1, 1).astype(np.float32)
    audio[100:200] = np.float32(-0.0) if subtype == "FLOAT" else 0.0
    sf.write(str(path), audio, RATE, subtype=subtype)
    return str(path)


def expected(path, start, duration, rate, channels, out: bool):
    """read_audio's samples; -0.0 reads as +0.0 except on the conversion path without `out` (documented)."""
    audio = read_audio(path, start, duration, rate, channels)
    converts = rate != RATE or channels != sf.info(path).channels
    return audio if converts and not out else audio + np.float32(0)


def same(a: np.ndarray, b: np.ndarray) -> None:
    assert (a.dtype, a.shape) == (b.dtype, b.shape)
    assert a.tobytes() == b.tobytes()  # equal values and the same sign of every zero


LENGTH = 0.25
STARTS = [0.0, 0.1234567, 0.5, (FRAMES - 2000) / RATE, (FRAMES - 1999.6) / RATE, (FRAMES - 1) / RATE,
          FRAMES / RATE, (FRAMES + 0.4) / RATE, 5.0, -0.01, -0.00001]  # the last two read from 0, as read_audio does


def readers(tmp_path):
    return {"direct": SegmentReader(), "cache": SegmentReader(tmp_path / "cache")}


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("ext, subtype", FORMATS)
def test_segments_equal_read_audio(tmp_path, ext, subtype, channels):
    path = write(tmp_path / f"a.{ext}", channels, subtype)
    for kind, reader in readers(tmp_path).items():
        for rep in ("miss", "hit"):  # the first read opens (decodes into the cache), the second reuses
            for start in STARTS:
                same(reader.read(path, start, LENGTH, RATE, channels), expected(path, start, LENGTH, RATE, channels, False))
                out = np.full((channels, int(LENGTH * RATE)), np.nan, np.float32)
                assert reader.read(path, start, LENGTH, RATE, channels, out=out) is out
                same(out, expected(path, start, LENGTH, RATE, channels, True))


@pytest.mark.parametrize("rate, channels", [(RATE, 1), (RATE, 2), (6000, 2), (11025, 1), (16000, 2)])
@pytest.mark.parametrize("ext, subtype", [("wav", "PCM_16"), ("wav", "FLOAT"), ("flac", "PCM_24")])
@pytest.mark.parametrize("file_channels", [1, 2])
def test_resampling_and_channel_conversion(tmp_path, ext, subtype, file_channels, rate, channels):
    path = write(tmp_path / f"r.{ext}", file_channels, subtype, seed=1)
    for reader in readers(tmp_path).values():
        for start in (0.0, 0.3, (FRAMES - 100) / RATE, -0.01):
            for out in (False, True):
                buffer = np.empty((channels, int(round(LENGTH * rate))), np.float32) if out else None
                same(reader.read(path, start, LENGTH, rate, channels, out=buffer),
                     expected(path, start, LENGTH, rate, channels, out))


def test_a_warm_cache_is_read_by_a_new_reader_without_decoding(tmp_path, monkeypatch):
    path = write(tmp_path / "w.flac", 2, "PCM_16")
    first = SegmentReader(tmp_path / "cache").read(path, 0.3, LENGTH, RATE, 2)
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 1
    monkeypatch.setattr(SegmentReader, "_decode", staticmethod(lambda *a: pytest.fail("decoded again")))
    reader = pickle.loads(pickle.dumps(SegmentReader(tmp_path / "cache")))  # as a spawned worker gets it
    same(reader.read(path, 0.3, LENGTH, RATE, 2), first)


@pytest.mark.parametrize("kind", ["direct", "cache"])
@pytest.mark.parametrize("ext", ["wav", "flac"])
@pytest.mark.parametrize("change", ["replaced", "rewritten_in_place", "shortened"])
def test_a_file_changed_after_it_was_opened_is_read_anew(tmp_path, kind, ext, change):
    path = write(tmp_path / f"c.{ext}", 2, "PCM_16", seed=1)
    reader = readers(tmp_path)[kind]
    before = reader.read(path, 0.5, LENGTH, RATE, 2)  # opens (maps, decodes)
    stat = os.stat(path)
    if change == "replaced":  # a new file renamed over the old one: new inode
        write(tmp_path / f"new.{ext}", 2, "PCM_16", seed=2)
        os.replace(tmp_path / f"new.{ext}", path)
    else:  # same inode; same size too unless shortened, so only the mtime (set here) tells
        frames = FRAMES if change == "rewritten_in_place" else 5000
        data = (np.random.default_rng(3).standard_normal((frames, 2)) * 0.2).clip(-1, 1)
        if ext == "wav":  # the same samples' bytes overwritten (and cut), as an editor saving in place would
            with sf.SoundFile(path, "r+") as f:
                f.write(data)
                f.truncate(frames)
        else:
            sf.write(path, data, RATE, subtype="PCM_16")  # truncates and rewrites the same inode
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    after = reader.read(path, 0.5, LENGTH, RATE, 2)
    same(after, read_audio(path, 0.5, LENGTH, RATE, 2))
    assert not np.array_equal(after, before)


def test_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    for reader in readers(tmp_path).values():
        for path in (bad, tmp_path / "missing.flac"):
            with pytest.raises(AudioError, match=path.name):
                reader.read(str(path), 0.0, LENGTH, RATE, 2)


def test_out_must_fit(tmp_path):
    path = write(tmp_path / "o.wav", 2, "PCM_16")
    with pytest.raises(ValueError, match="out must be float32"):
        SegmentReader().read(path, 0.0, LENGTH, RATE, 2, out=np.empty((2, 10), np.float32))


@pytest.mark.parametrize("cached", [False, True])
@pytest.mark.parametrize("subtype, rate", [("PCM_16", 16000), ("FLOAT", 16000), ("PCM_16", 44100)])
def test_one_channel_of_a_file_reads_as_that_channel_alone(cached, subtype, rate, tmp_path):
    """'file#ch1' is channel 1 of the file as a mono file, through every read path (map, seek, cache,
    resampling) and read_audio alike."""
    from noisymss.audio.io import audio_info, read_audio

    rng = np.random.default_rng(0)
    stereo = (0.3 * rng.standard_normal((2, 3 * rate))).astype(np.float32)
    path = tmp_path / "two.wav"
    sf.write(path, stereo.T, rate, subtype=subtype)
    whole = read_audio(path, 0.5, 1.0, 16000)
    reader = SegmentReader(tmp_path / "cache" if cached else None)
    for channel in (0, 1):
        ref = f"{path}#ch{channel}"
        assert audio_info(ref).channels == 1
        np.testing.assert_array_equal(read_audio(ref, 0.5, 1.0, 16000), whole[channel:channel + 1])
        np.testing.assert_array_equal(reader.read(ref, 0.5, 1.0, 16000, 1), whole[channel:channel + 1])
        np.testing.assert_array_equal(reader.read(ref, 0.5, 1.0, 16000, 2), np.repeat(whole[channel:channel + 1], 2, 0))
    with pytest.raises(AudioError, match="has 2 channel\\(s\\), so no channel 2"):
        reader.read(f"{path}#ch2", 0.0, 1.0, 16000, 1)
