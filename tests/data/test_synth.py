import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from conftest import yin
from noisymss.data.annotations import read_f0
from noisymss.data.catalog import Catalog
from noisymss.data.synth.corpus import CLASSES, SynthError, SynthSettings, plan_songs, synthesize
from noisymss.data.synth.score import BACH10_CHORALES, chorale_names


def _read(path):
    data, _ = sf.read(str(path), dtype="int16", always_2d=True)
    return data.astype(np.int32)


def test_mixture_is_the_exact_sum_of_the_stems(demo_corpus):
    cat = Catalog.load(demo_corpus / "catalog.csv")
    for mix in cat.mixtures():
        stems = [e for e in cat.stems() if e.song == mix.song]
        total = sum(_read(cat.resolve(e.path)) for e in stems)
        np.testing.assert_array_equal(total, _read(cat.resolve(mix.path)))
        assert sf.info(str(cat.resolve(mix.path))).samplerate == 44100 and mix.channels == 2


def test_f0_truth_agrees_with_what_a_pitch_tracker_hears(demo_corpus):
    cat = Catalog.load(demo_corpus / "catalog.csv")
    clean_vocals = [e for e in cat.stems() if e.true_labels == ("vocals",)]
    assert clean_vocals
    agree = total = 0
    for e in clean_vocals:
        audio, sr = sf.read(str(cat.resolve(e.path)), always_2d=True)
        times, f0 = read_f0(cat.resolve(e.annotation))
        voiced = np.flatnonzero(f0 > 0)[::4]
        est = yin(audio.mean(axis=1), sr, times[voiced])
        cents = 1200 * np.abs(np.log2(np.maximum(est, 1e-6) / f0[voiced]))
        agree += int(np.sum(cents < 50))
        total += len(voiced)
    assert total > 300 and agree / total >= 0.9


def test_label_noise_fraction_kinds_and_truth(demo_corpus):
    cat = Catalog.load(demo_corpus / "catalog.csv")
    stems = cat.stems()
    noisy = [e for e in stems if set(e.labels) != set(e.true_labels)]
    assert len(noisy) == round(0.5 * 6 * len(CLASSES))  # planned over 4 stem slots per song
    swapped = [e for e in noisy if len(e.true_labels) == 1]
    merged = [e for e in noisy if len(e.true_labels) == 2]
    assert swapped and merged and len(swapped) + len(merged) == len(noisy)
    assert all(e.labels[0] not in e.true_labels for e in swapped)
    assert all(e.labels[0] in e.true_labels for e in merged)
    assert len(stems) == 6 * len(CLASSES) - len(merged)  # an absorbed stem is not written
    clean = [e for e in stems if e not in noisy]
    assert all(e.labels == e.true_labels for e in clean)
    # the melody annotation follows the audio that holds the vocals, whatever its given label
    assert all(bool(e.annotation) == ("vocals" in e.true_labels) for e in stems)


def test_bleeding_stems_carry_another_part_10_to_20_db_down_and_keep_their_labels(tmp_path):
    base = dict(songs=2, seconds=2.0, seed=5, splits=(("train", 1.0),))
    synthesize(tmp_path / "bleed", SynthSettings(**base, label_noise=0.5, noise_kinds=("bleed",)), progress=False)
    synthesize(tmp_path / "clean", SynthSettings(**base), progress=False)
    bled = Catalog.load(tmp_path / "bleed" / "catalog.csv")
    assert all(e.labels == e.true_labels for e in bled.stems())  # labels right, audio not clean
    for mix in bled.mixtures():  # the mixture is the sum of the stems as written, bleed included
        np.testing.assert_array_equal(sum(_read(bled.resolve(e.path)) for e in bled.stems() if e.song == mix.song),
                                      _read(bled.resolve(mix.path)))
    seen = 0
    for song in sorted((tmp_path / "bleed" / "songs").iterdir()):
        noise = json.loads((song / "meta.json").read_text())["noise"]
        assert len(noise) == 2  # half the song's 4 stems
        for cls, n in noise.items():
            assert n["kind"] == "bleed" and n["from"] != cls and -20.0 <= n["db"] <= -10.0
            own = _read(tmp_path / "clean" / "songs" / song.name / f"{cls}.flac").astype(float)
            other = _read(tmp_path / "clean" / "songs" / song.name / f"{n['from']}.flac").astype(float)
            heard = _read(song / f"{cls}.flac").astype(float)
            # heard = a * own + b * other (each song has its own scale): fit a, b; b's part is n["db"] below a's
            (a, b), *_ = np.linalg.lstsq(np.stack([own.ravel(), other.ravel()], 1), heard.ravel(), rcond=None)
            level = 20 * np.log10(np.sqrt(np.mean((b * other) ** 2)) / np.sqrt(np.mean((a * own) ** 2)))
            assert level == pytest.approx(n["db"], abs=0.3), (song.name, cls)
            seen += 1
    assert seen == 4
    with pytest.raises(SynthError, match="--noise-kinds"):
        synthesize(tmp_path / "x", SynthSettings(noise_kinds=("hum",)), progress=False)


def test_same_seed_same_corpus(tmp_path, demo_corpus):
    settings = SynthSettings(songs=6, seconds=8.0, seed=3, label_noise=0.5, splits=(("train", 0.67), ("valid", 0.17), ("test", 0.16)))
    synthesize(tmp_path, settings, progress=False)
    assert (tmp_path / "catalog.csv").read_text() == (demo_corpus / "catalog.csv").read_text()
    for song in (demo_corpus / "songs").iterdir():
        for f in song.glob("*.flac"):
            np.testing.assert_array_equal(_read(f), _read(tmp_path / "songs" / song.name / f.name))
    other = plan_songs(SynthSettings(songs=6, seconds=8.0, seed=4))
    assert [p["song"] for p in other] != [p["song"] for p in plan_songs(settings)]


def test_rerun_resumes_and_never_uses_a_half_written_song(tmp_path):
    settings = SynthSettings(songs=3, seconds=2.0, seed=1, label_noise=0.0)
    synthesize(tmp_path, settings, progress=False)
    songs = sorted((tmp_path / "songs").iterdir())
    kept_mtime = os.stat(songs[0] / "vocals.flac").st_mtime_ns
    shutil.rmtree(songs[1])
    # a run killed mid-song leaves only a temp folder, which is redone, never read
    half = tmp_path / "songs" / f".tmp-{songs[2].name}"
    shutil.move(songs[2], half)
    (half / "meta.json").unlink()
    before = (tmp_path / "catalog.csv").read_text()
    synthesize(tmp_path, settings, progress=False)
    assert os.stat(songs[0] / "vocals.flac").st_mtime_ns == kept_mtime
    assert all((s / "meta.json").is_file() for s in songs)
    assert not list((tmp_path / "songs").glob(".tmp-*"))
    assert (tmp_path / "catalog.csv").read_text() == before


def test_other_settings_in_the_same_folder_are_refused(tmp_path):
    synthesize(tmp_path, SynthSettings(songs=1, seconds=1.0, seed=1), progress=False)
    # a corpus recorded before a setting existed resumes when the setting is at its default
    record = json.loads((tmp_path / "synth.json").read_text())
    (tmp_path / "synth.json").write_text(json.dumps({k: v for k, v in record.items() if k != "noise_kinds"}))
    synthesize(tmp_path, SynthSettings(songs=1, seconds=1.0, seed=1), progress=False)
    with pytest.raises(SynthError, match="noise_kinds"):
        synthesize(tmp_path, SynthSettings(songs=1, seconds=1.0, seed=1, noise_kinds=("bleed",)), progress=False)
    with pytest.raises(SynthError, match="seed: 1 -> 2"):
        synthesize(tmp_path, SynthSettings(songs=1, seconds=1.0, seed=2), progress=False)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "mine.txt").write_text("user data")
    with pytest.raises(SynthError, match="not empty"):
        synthesize(tmp_path / "elsewhere", SynthSettings(songs=1, seconds=1.0), progress=False)
    with pytest.raises(SynthError, match="label-noise"):
        synthesize(tmp_path / "x", SynthSettings(label_noise=1.5), progress=False)


def test_a_data_configs_demo_renders_the_same_corpus_as_its_settings(tmp_path):
    from noisymss.data.datamodule import DemoCorpus

    demo = DemoCorpus(songs=1, seconds=1.0, seed=1, catalog=str(tmp_path / "a" / "catalog.csv"))
    assert demo.synth_settings() == SynthSettings(songs=1, seconds=1.0, seed=1)
    synthesize(tmp_path / "a", demo, progress=False)  # the experiments pass a config's demo as it is
    synthesize(tmp_path / "b", demo.synth_settings(), progress=False)
    assert (tmp_path / "a" / "synth.json").read_text() == (tmp_path / "b" / "synth.json").read_text()


def test_bach10_chorales_are_left_out_by_default(demo_corpus):
    assert BACH10_CHORALES <= set(chorale_names())
    plans = plan_songs(SynthSettings(songs=40, seconds=1.0, seed=0))
    assert not {p["chorale"] for p in plans} & BACH10_CHORALES
    meta = json.loads(next((demo_corpus / "songs").iterdir()).joinpath("meta.json").read_text())
    assert meta["chorale"] not in BACH10_CHORALES
