"""Importers whose labels go through a taxonomy table (Slakh2100, MoisesDB): the default table, the
user's own (`--taxonomy`), and an instrument no table names (kept under its own name, reported)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from noisymss.cli import main
from noisymss.data.catalog import Catalog
from noisymss.data.sources import index_dir

SLAKH = Path(__file__).resolve().parents[2].parent / "shared/data/layouts/slakh/slakh2100_flac_redux"


def _wav(path: Path, seconds: float = 0.2, rate: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.1 * np.sin(np.arange(int(seconds * rate)) / 5)).astype(np.float32), rate)


def _moisesdb(root: Path) -> Path:
    song = root / "provider" / "0001"
    tracks = {"vocals": [("v1", "lead_female_singer", False)], "percussion": [("p1", "shaker", False)],
              "bass": [("b1", "bass_guitar", True)], "theremin": [("t1", "theremin", False)]}
    stems = []
    for name, items in tracks.items():
        stems.append({"stemName": name, "tracks": [{"id": i, "trackType": kind, "extension": "wav", "has_bleed": bleed}
                                                   for i, kind, bleed in items]})
        for i, _, _ in items:
            _wav(song / name / f"{i}.wav")
    (song / "data.json").write_text(json.dumps({"artist": "Band", "song": "Song", "genre": "pop", "stems": stems}))
    _wav(song / "vocals" / "stray.wav")  # not in data.json
    return root


def test_moisesdb_rows_labels_truth_and_artist(tmp_path):
    cat, skipped = index_dir(_moisesdb(tmp_path), "moisesdb", progress=False)
    assert [Path(s.path).name for s in skipped] == ["stray.wav"]
    labels = {e.id.split("/")[1]: (e.labels, e.true_labels) for e in cat}
    assert labels == {"vocals": (("vocals",), ("vocals",)), "percussion": (("drums",), ("drums",)),
                      "bass": (("bass",), None),  # bleeding: truth unknown
                      "theremin": (("theremin",), ("theremin",))}  # in no table: kept under its own name
    assert {e.group for e in cat} == {"Band"}


def test_a_users_taxonomy_replaces_the_default_and_index_reports_the_labels(tmp_path, monkeypatch, capsys):
    _moisesdb(tmp_path / "db")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tax.csv").write_text("from,to\nvocals,voice\npercussion,percussion\nbass,bass\ntheremin,other\n")
    assert main(["index", "db", "--format", "moisesdb", "--taxonomy", "tax.csv", "--out", "c.csv"]) == 0
    assert "labels: " in capsys.readouterr().out
    assert {e.labels for e in Catalog.load(tmp_path / "c.csv")} == {("voice",), ("percussion",), ("bass",), ("other",)}
    assert main(["index", "db", "--format", "mir1k", "--taxonomy", "tax.csv", "--out", "d.csv"]) == 1
    assert "a table applies to slakh, moisesdb" in capsys.readouterr().err


def test_slakh_generated_layout_splits_and_missing_stems(tmp_path):
    track = tmp_path / "validation" / "Track00002"
    meta = {"stems": {"S00": {"inst_class": "Guitar", "audio_rendered": True},
                      "S01": {"inst_class": "Drums", "audio_rendered": True},
                      "S02": {"inst_class": "Piano", "audio_rendered": False},
                      "S03": {"inst_class": "Bass", "audio_rendered": True}}}
    track.mkdir(parents=True)
    (track / "metadata.yaml").write_text(json.dumps(meta))
    for name in ("S00", "S01"):
        _wav(track / "stems" / f"{name}.wav")
    _wav(track / "mix.wav")
    cat, skipped = index_dir(tmp_path, "slakh", progress=False)
    assert [s.path.endswith("S03") for s in skipped] == [True]  # rendered, but missing; S02 was never rendered
    assert {e.split for e in cat} == {"valid"} and len(cat.mixtures()) == 1
    assert {e.id: e.labels for e in cat.stems()} == {"Track00002/S00": ("other",), "Track00002/S01": ("drums",)}


@pytest.mark.skipif(not SLAKH.is_dir(), reason="Slakh2100 layout not present in ../shared/data")
def test_the_real_slakh_layouts():
    baby, skipped = index_dir(SLAKH.parent / "babyslakh_16k", "slakh", progress=False)  # BabySlakh: 16 kHz WAV
    assert not skipped and {e.sample_rate for e in baby} == {16000} and len(baby.mixtures()) == 1
    cat, skipped = index_dir(SLAKH, "slakh", progress=False)
    assert not skipped and len(cat.mixtures()) == 1
    import yaml

    meta = yaml.safe_load((SLAKH / "train/Track00001/metadata.yaml").read_text())["stems"]
    for e in cat.stems():
        inst = meta[e.id.split("/")[1]]["inst_class"]
        assert e.labels == ({"Drums": "drums", "Bass": "bass"}.get(inst, "other"),) and e.true_labels == e.labels


JAMENDO = Path(__file__).resolve().parents[2].parent / "shared/data/jamendo"


@pytest.mark.skipif(not JAMENDO.is_dir(), reason="JamendoLyrics not present in ../shared/data")
def test_the_real_jamendo_songs_are_unlabelled_mixtures_with_vocal_activity_and_artists():
    from noisymss.data.annotations import read_activity

    cat, skipped = index_dir(JAMENDO, "mixtures", progress=False)
    assert not skipped and len(cat) == 10 and all(e.role == "mixture" and not e.labels for e in cat)
    assert all(e.annotation.endswith("#activity") and e.group for e in cat)
    e = next(e for e in cat if "Quesabe" in e.id)
    assert e.group == "Quesabe"
    times, active = read_activity(cat.resolve(e.annotation))
    assert not active[np.searchsorted(times, 3.0)] and active[np.searchsorted(times, 3.5)]  # the first line: 3.39-3.99 s
