"""The fast Mixer draws exactly what the plain reference mixer draws, bit for bit.

Stems come in every shape the fast path treats differently: 16-bit WAV (memory-mapped), FLAC,
24-bit FLAC, float WAV, mono and stereo, at the output rate and at others (resampled), shorter
than the segment, silent throughout or in part, multi-label, with and without melody truth.
"""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from noisymss.audio.cache import SegmentReader
from noisymss.audio.effects import (Chain, ChannelSwap, Chorus, Compressor, Distortion, Equalizer, Gain, Phaser,
                                    PitchShift, Polarity, Reverb, TimeStretch)
from noisymss.audio.io import read_audio
from noisymss.audio.randaugment import RandAudioAugment
from noisymss.data.annotations import write_f0
from noisymss.data.catalog import Catalog, Entry
from noisymss.data.mixer import Mixer, MixRecipe
from noisymss.data.table import StemTable
from reference_mixer import reference_example

SR = 8000
CLASSES = ("vocals", "drums", "bass", "other")
PAIRS = [(epoch, index) for epoch in (0, 3) for index in range(12)]


def _signal(rng, seconds, rate, channels, kind):
    t = np.arange(int(round(seconds * rate))) / rate
    if kind == "silent":
        return np.zeros((channels, len(t)), np.float32)
    base = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 600) * t) + 0.05 * rng.standard_normal(len(t))
    rows = np.stack([base * (1.0 - 0.2 * c) for c in range(channels)])
    if kind == "half":  # silent for the first half: some draws are redrawn or dropped
        rows[:, : len(t) // 2] = 0.0
    return rows.astype(np.float32)


# song, name, labels, seconds, rate, channels, format/subtype, content, annotated
STEMS = [
    ("a", "vocals", ("vocals",), 2.0, SR, 1, ("WAV", "PCM_16"), "tone", True),
    ("a", "drums", ("drums",), 2.0, SR, 2, ("FLAC", "PCM_16"), "tone", False),
    ("a", "bass", ("bass",), 2.0, 16000, 1, ("WAV", "PCM_16"), "tone", False),
    ("a", "other", ("other",), 2.0, SR, 2, ("WAV", "PCM_16"), "silent", False),
    ("b", "vocals", ("vocals",), 2.0, 11025, 2, ("FLAC", "PCM_24"), "half", True),
    ("b", "drums", ("drums",), 0.3, SR, 2, ("WAV", "FLOAT"), "tone", False),
    ("b", "bass", ("bass",), 2.0, SR, 2, ("WAV", "PCM_16"), "half", False),
    ("b", "vocdrums", ("vocals", "drums"), 2.0, SR, 2, ("WAV", "PCM_16"), "tone", False),
    ("c", "other", ("other",), 2.0, SR, 1, ("WAV", "PCM_24"), "tone", False),
    ("c", "bass", ("bass",), 0.2, SR, 1, ("FLAC", "PCM_16"), "tone", False),
    ("c", "vocals", ("vocals",), 2.0, SR, 2, ("WAV", "PCM_16"), "tone", False),
    ("c", "bassother", ("bass", "other"), 2.0, 16000, 2, ("FLAC", "PCM_16"), "half", False),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    rng = np.random.default_rng(5)
    entries = []
    for song, name, labels, seconds, rate, channels, (fmt, subtype), kind, annotated in STEMS:
        audio = _signal(rng, seconds, rate, channels, kind)
        path = root / f"{song}_{name}.{fmt.lower()}"
        sf.write(str(path), audio.T, rate, format=fmt, subtype=subtype)
        annotation = ""
        if annotated:
            annotation = str(root / f"{song}_{name}.f0.txt")
            times = np.arange(int(seconds / 0.01)) * 0.01
            write_f0(annotation, times, np.where(np.arange(len(times)) % 7 == 0, 0.0, 220.0 + times * 50))
        frames = audio.shape[1]
        entries.append(Entry(f"{song}/{name}", song, str(path), "stem", frames / rate, rate, channels, "train",
                             labels, labels, annotation))
    catalog = Catalog(entries, root)
    catalog.save(root / "catalog.csv")
    return Catalog.load(root / "catalog.csv")


class PlainReader:
    """Not a SegmentReader: the mixer copies what it returns instead of reading into its buffers."""

    def read(self, path, start, duration, sample_rate, channels):
        return read_audio(path, start, duration, sample_rate, channels)


class Float64Effect:
    """Returns float64 audio: the mixer must then add stem by stem instead of deferring the sum."""

    def apply(self, audio, sample_rate, rng):
        return audio.astype(np.float64) * (1.0 + rng.random()), None


EFFECTS = {
    "none": lambda: None,
    "cheap": lambda: Chain([Gain(p=1.0, db=(-6, 6)), ChannelSwap(p=0.5), Polarity(p=0.5)]),
    "pedalboard": lambda: Chain([Polarity(p=0.3), Equalizer(p=0.3), Compressor(p=0.3), Gain(p=0.5),
                                 Reverb(p=0.3), Chorus(p=0.2), ChannelSwap(p=0.3), Phaser(p=0.2),
                                 Distortion(p=0.2), PitchShift(p=0.1), TimeStretch(p=0.1)]),
    "randaugment": lambda: RandAudioAugment(p=0.5),
    "float64": lambda: Float64Effect(),
}


def _mixer(catalog, tmp_path, reader="direct", effects="none", **recipe):
    table = StemTable.build(catalog, catalog.stems(), CLASSES, catalog.labels())
    readers = {"direct": lambda: SegmentReader(), "cache": lambda: SegmentReader(tmp_path / "cache"),
               "plain": lambda: PlainReader()}
    recipe = MixRecipe(segment=0.5, sample_rate=SR, **{"channels": 2, "class_prob": 0.7, **recipe})
    return Mixer(table, recipe, EFFECTS[effects](), readers[reader](), seed=11)


def assert_same_example(fast, ref):
    for name in ("mixture", "sources", "label", "f0"):
        a, b = getattr(fast, name), getattr(ref, name)
        if b is None:
            assert a is None, name
            continue
        assert (a.dtype, a.shape) == (b.dtype, b.shape), name
        assert np.array_equal(a, b, equal_nan=True), name
        assert a.tobytes() == b.tobytes(), f"{name}: same values, but the sign of a zero differs"
    assert fast.stems == ref.stems and fast.starts == ref.starts


def _check(mixer, pairs=PAIRS, stream="train"):
    stems = 0
    for epoch, index in pairs:
        fast = mixer.example(epoch, index, stream)
        assert_same_example(fast, reference_example(mixer, epoch, index, stream))
        stems += len(fast.stems)
    assert stems > len(pairs)  # mixtures, not just single stems


@pytest.mark.parametrize("same_song", [False, True])
@pytest.mark.parametrize("policy", ["all", "exclude", "interference", "catch_all"])
def test_every_multi_label_policy(corpus, tmp_path, policy, same_song):
    _check(_mixer(corpus, tmp_path, multi_label=policy, same_song=same_song, interference_prob=0.6))


@pytest.mark.parametrize("effects, reader, channels", [
    *[(e, r, c) for e in ("none", "cheap") for r in ("direct", "cache") for c in (1, 2)],
    ("pedalboard", "direct", 2), ("pedalboard", "cache", 1), ("randaugment", "direct", 1), ("float64", "cache", 2),
])
def test_effects_readers_and_channels(corpus, tmp_path, effects, reader, channels):
    mixer = _mixer(corpus, tmp_path, reader, effects, channels=channels, with_f0=True,
                   multi_label="interference", interference_prob=0.5)
    _check(mixer)
    _check(mixer, PAIRS[:6])  # again: now every read hits open maps (and a warm cache)


@pytest.mark.parametrize("effects", ["none", "cheap"])
def test_other_readers_streams_and_start_grids(corpus, tmp_path, effects):
    _check(_mixer(corpus, tmp_path, "plain", effects, with_f0=True, same_song=True), PAIRS[:10])
    _check(_mixer(corpus, tmp_path, "direct", effects, with_f0=True, min_sources=3), PAIRS[:10], "valid")
    _check(_mixer(corpus, tmp_path, "cache", effects, with_f0=True, start_grid=0.01), PAIRS[:10])
    _check(_mixer(corpus, tmp_path, "direct", effects, same_song=True, start_grid=0.25), PAIRS[:10])


def test_silent_and_short_stems_are_exercised(corpus, tmp_path):
    """The corpus really leaves stems out (silent) and pads short ones, so the tests above see both."""
    mixer = _mixer(corpus, tmp_path, class_prob=1.0)
    table = mixer.table
    short = {i for i in range(len(table)) if table.duration[i] < 0.5}
    silent = next(i for i in range(len(table)) if table.paths[i].endswith("a_other.wav"))
    drawn = set()
    for epoch, index in PAIRS:
        ex = mixer.example(epoch, index)
        assert silent not in ex.stems
        drawn.update(ex.stems)
    assert short & drawn


def test_effects_never_change_a_readers_own_arrays(corpus, tmp_path):
    """Only the mixer's own buffers are handed to effects in place, never an array a reader keeps."""

    class KeepingReader(PlainReader):
        def __init__(self):
            self.kept = {}

        def read(self, path, start, duration, sample_rate, channels):
            key = (path, start, duration, sample_rate, channels)
            if key not in self.kept:
                self.kept[key] = (super().read(*key), super().read(*key))  # (handed out, pristine)
            return self.kept[key][0]

    mixer = _mixer(corpus, tmp_path, "plain", "cheap", class_prob=1.0, same_song=True)
    mixer.reader = KeepingReader()
    _check(mixer, PAIRS[:10])
    for handed_out, pristine in mixer.reader.kept.values():
        assert handed_out.tobytes() == pristine.tobytes()
