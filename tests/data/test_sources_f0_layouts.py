"""Importers of the f0 datasets, on the real-format trees in ../shared/data/layouts (skipped when
absent): rows, labels, groups and annotation values checked against the files themselves."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from noisymss.audio.io import audio_info
from noisymss.data.annotations import read_f0
from noisymss.data.sources import index_dir

LAYOUTS = Path(__file__).resolve().parents[2].parent / "shared/data/layouts"


def _index(folder: str, fmt: str, notes: int = 0):
    root = LAYOUTS / folder
    if not root.is_dir():
        pytest.skip(f"{root} not present")
    cat, skipped = index_dir(root, fmt, progress=False)
    assert len(skipped) == notes and all(s.kept for s in skipped), skipped
    return root, cat


def test_medleydb_melody_attaches_the_melody_only_to_sung_songs(tmp_path):
    root, cat = _index("medleydb_melody", "medleydb_melody", notes=1)  # its one song is instrumental
    (e,) = cat.entries
    assert (e.role, e.group, e.annotation) == ("mixture", "MusicDelta", "")
    import json
    import shutil

    shutil.copytree(root, tmp_path / "mdb")  # the same song, marked sung: its MELODY2 is attached
    meta = json.loads((tmp_path / "mdb/medleydb_melody_metadata.json").read_text())
    meta["MusicDelta_Beethoven"]["is_instrumental"] = False
    (tmp_path / "mdb/medleydb_melody_metadata.json").write_text(json.dumps(meta))
    sung, skipped = index_dir(tmp_path / "mdb", "medleydb_melody", progress=False)
    assert not skipped and sung.entries[0].annotation == "melody2/MusicDelta_Beethoven_MELODY2.csv"


def _first_rows(path: Path, n: int = 3, value: int = 1) -> np.ndarray:
    rows = [line.replace(",", " ").split() for line in path.read_text().splitlines() if line.strip()][:n]
    return np.array([[float(r[0]), float(r[value])] for r in rows])


def test_medleydb_pitch():
    root, cat = _index("medleydb_pitch", "medleydb_pitch")
    (e,) = cat.entries
    assert (e.role, e.labels, e.true_labels, e.group) == ("stem", ("vocals",), ("vocals",), "AClassicEducation")  # male singer
    times, hz = read_f0(cat.resolve(e.annotation))
    np.testing.assert_allclose(np.c_[times, hz][:2], _first_rows(root / "pitch" / f"{e.id}.csv", 2))


def test_mdb_stem_synth():
    root, cat = _index("mdb_stem_synth", "mdb_stem_synth")
    (e,) = cat.entries
    assert e.role == "mixture" and e.group == "AClassicEducation" and e.song == "AClassicEducation_NightOwl"
    times, hz = read_f0(cat.resolve(e.annotation))
    assert len(times) == 1034 and np.median(np.diff(times)) == pytest.approx(0.0029, abs=1e-4)


def test_orchset():
    root, cat = _index("orchset", "orchset")
    (e,) = cat.entries
    assert e.split == "test" and e.group == "Beethoven" and "stereo" in e.path and e.channels == 2
    times, hz = read_f0(cat.resolve(e.annotation))
    np.testing.assert_allclose(np.c_[times, hz], _first_rows(root / "GT" / "Beethoven-S3-I-ex1.mel"))


def test_tonas_reads_the_corrected_f0_and_the_singer():
    root, cat = _index("tonas", "tonas")
    (e,) = cat.entries
    assert e.group == "Antonio Mairena" and e.split == "test"
    times, hz = read_f0(cat.resolve(e.annotation))
    np.testing.assert_allclose(np.c_[times, hz], _first_rows(root / "Deblas" / "01-D_AMairena.f0.Corrected", 4, 3))


def test_dagstuhl_singers_are_vocal_stems_with_their_manual_f0_and_the_room_is_a_mixture():
    root, cat = _index("dagstuhl_choirset", "dagstuhl")
    stems, mixtures = cat.stems(), cat.mixtures()
    assert len(stems) == 11 and len(mixtures) == 4 and {e.group for e in cat} == {"DCS_LI_QuartetB_Take04"}  # as in the tree
    assert all(e.labels == ("vocals",) and e.annotation.endswith(e.id.rsplit("_", 1)[0] + "_LRX.csv") for e in stems)
    assert all(not e.annotation for e in mixtures)
    assert all(audio_info(cat.resolve(e.path)).sample_rate == 22050 for e in cat)
