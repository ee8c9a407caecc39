"""The source-filter singer: f0 truth against a pitch tracker, determinism, levels, formants, corpus use."""
import json

import numpy as np
import pytest
import soundfile as sf

from conftest import yin
from noisymss.data.annotations import read_f0
from noisymss.data.synth.corpus import SynthError, SynthSettings, plan_songs, synthesize
from noisymss.data.synth.score import Note, timed_notes
from noisymss.data.synth.voice import Singer, sing

SR = 44100


def _line(seconds: float, seed: int) -> list[Note]:
    """A chorale-like soprano line (steps and small leaps around A4), laid out as the corpus does."""
    rng = np.random.default_rng(seed)
    pitches = np.clip(69 + np.cumsum(rng.integers(-3, 4, 60)), 62, 79)
    quarters, offset = [], 0.0
    for p in pitches:
        length = float(rng.choice([1.0, 1.0, 2.0, 0.5]))
        quarters.append((offset, length, int(p)))
        offset += length
    return timed_notes(quarters, 60 / 80, seconds, rng)


def _frame_rms(x: np.ndarray, frames: int) -> np.ndarray:
    """RMS over the 10 ms centred on each frame time."""
    padded = np.pad(x, (220, 441 * frames))
    return np.sqrt(np.mean(padded[:441 * frames].reshape(frames, 441) ** 2, axis=1))


@pytest.mark.parametrize("male", [False, True])
def test_f0_truth_agrees_with_what_a_pitch_tracker_hears(male):
    rng = np.random.default_rng(1)
    audio, f0 = sing(_line(10.0, 1), 10.0, SR, rng, singer=Singer.draw(rng, male=male))
    times = np.arange(len(f0)) * 0.01
    voiced = np.flatnonzero(f0 > 0)[::2]
    est = yin(audio.mean(axis=0), SR, times[voiced])
    cents = 1200 * np.abs(np.log2(np.maximum(est, 1e-6) / f0[voiced]))
    assert len(voiced) > 300
    assert np.mean(cents < 50) >= 0.9
    assert np.median(cents) < 10  # the truth is the pitch sung, not just the note


def test_same_seed_same_song_other_seed_other_song():
    notes = _line(3.0, 2)
    a1, f1 = sing(notes, 3.0, SR, np.random.default_rng(5))
    a2, f2 = sing(notes, 3.0, SR, np.random.default_rng(5))
    a3, _ = sing(notes, 3.0, SR, np.random.default_rng(6))
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(f1, f2)
    assert a1.shape == a3.shape and not np.array_equal(a1, a3)


@pytest.mark.parametrize("seconds, sample_rate", [(6.0, 44100), (1.234, 22050)])
def test_shape_length_and_levels(seconds, sample_rate):
    audio, f0 = sing(_line(seconds, 3), seconds, sample_rate, np.random.default_rng(3), pan=30)
    frames = round(seconds * 100)
    assert audio.shape == (2, frames * (sample_rate // 100)) and audio.dtype == np.float32
    assert f0.shape == (frames,) and np.all(f0 >= 0) and (f0 > 0).any()
    assert np.isfinite(audio).all() and 0.25 < np.abs(audio).max() <= 0.5
    assert np.abs(audio[0]).max() > np.abs(audio[1]).max()  # panned left
    voiced_hz = f0[f0 > 0]
    assert voiced_hz.min() > 100 and voiced_hz.max() < 1100


def test_unvoiced_frames_hold_only_consonants_and_breaths():
    audio, f0 = sing(_line(12.0, 4), 12.0, SR, np.random.default_rng(4))
    rms = _frame_rms(audio.mean(axis=0), len(f0))
    voiced = np.median(rms[f0 > 0])
    unvoiced = rms[f0 == 0]
    assert np.percentile(rms[f0 > 0], 5) > voiced * 0.25  # a voiced frame is sung out
    assert (unvoiced > voiced * 0.03).any()  # consonants and breaths sound where the voicing is off, ...
    assert np.median(unvoiced) < voiced * 0.1 and np.percentile(unvoiced, 95) < voiced * 0.25  # ... softly


@pytest.mark.parametrize("male", [False, True])
def test_formants_move_with_the_vowels(male):
    notes = [Note(0.2 + 0.8 * k, 0.8 + 0.8 * k, 64) for k in range(6)]  # rests between: one syllable each
    rng = np.random.default_rng(0)
    audio, _ = sing(notes, 5.0, SR, rng, singer=Singer.draw(rng, male=male), vowels="ai")
    x = audio.mean(axis=0)
    f1_band, f2_band = [], []
    for note in notes:
        seg = x[int((note.start + 0.2) * SR):int((note.start + 0.5) * SR)]
        power = np.abs(np.fft.rfft(seg * np.hanning(len(seg)))) ** 2
        freq = np.fft.rfftfreq(len(seg), 1 / SR)
        band = lambda lo, hi: power[(freq >= lo) & (freq < hi)].sum()  # noqa: E731
        f1_band.append(10 * np.log10(band(450, 1100) / band(0, 450)))  # /a/ has a high F1, /i/ a low one
        f2_band.append(10 * np.log10(band(1600, 2600) / band(450, 1100)))  # /i/ has a high F2, /a/ a low one
    f1_band, f2_band = np.array(f1_band), np.array(f2_band)
    assert f1_band[0::2].min() > f1_band[1::2].max() + 15
    assert f2_band[1::2].min() > f2_band[0::2].max() + 15


def _read(path):
    data, _ = sf.read(str(path), dtype="int16", always_2d=True)
    return data.astype(np.int32)


def test_corpus_sung_by_the_singer(tmp_path):
    from noisymss.data.catalog import Catalog

    synthesize(tmp_path, SynthSettings(songs=2, seconds=3.0, seed=2, voice="singer"), progress=False)
    cat = Catalog.load(tmp_path / "catalog.csv")
    assert len(cat.mixtures()) == 2
    for mix in cat.mixtures():
        assert json.loads((tmp_path / "songs" / mix.song / "meta.json").read_text())["voice"] == "singer"
        stems = [e for e in cat.stems() if e.song == mix.song]
        np.testing.assert_array_equal(sum(_read(cat.resolve(e.path)) for e in stems), _read(cat.resolve(mix.path)))
        _, f0 = read_f0(cat.resolve(mix.annotation))
        assert len(f0) == 300 and (f0 > 0).sum() > 100


def test_mix_picks_both_voices_without_moving_other_draws(tmp_path):
    mixed = plan_songs(SynthSettings(songs=6, seconds=1.0, seed=3))
    assert {p["voice"] for p in mixed} == {"oohs", "singer"}
    oohs = plan_songs(SynthSettings(songs=6, seconds=1.0, seed=3, voice="oohs"))
    assert {p["voice"] for p in oohs} == {"oohs"}
    drop = lambda plans: [{k: v for k, v in p.items() if k != "voice"} for p in plans]  # noqa: E731
    assert drop(mixed) == drop(oohs)
    with pytest.raises(SynthError, match="--voice alto: choose one of oohs, singer, mix"):
        synthesize(tmp_path / "x", SynthSettings(voice="alto"), progress=False)
    assert not (tmp_path / "x").exists()  # refused before the folder was claimed
