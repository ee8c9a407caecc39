"""Label noise injected into a catalog of real-format stems (MIR-1K layout, and real MIR-1K clips when
../shared/data has them): the kinds, the truth kept, the audio of merged and bleeding stems, the
inputs never touched."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import mir1k_clip
from noisymss.audio.io import read_audio
from noisymss.cli import main
from noisymss.data.catalog import Catalog, CatalogError
from noisymss.data.label_noise import inject, plan_noise
from noisymss.data.sources import index_dir

MIR1K = Path(__file__).resolve().parents[2].parent / "shared/data/mir1k"


def _level_db(heard: np.ndarray, own: np.ndarray, other: np.ndarray) -> float:
    """heard = a own + b other: b other's level under a own's, in dB (least squares)."""
    (a, b), *_ = np.linalg.lstsq(np.stack([own.ravel(), other.ravel()], 1), heard.ravel(), rcond=None)
    return float(20 * np.log10(np.sqrt(np.mean((b * other) ** 2)) / np.sqrt(np.mean((a * own) ** 2))))


@pytest.fixture
def clips(tmp_path) -> Path:
    for k in range(6):
        mir1k_clip(tmp_path / "mir1k", f"singer{k % 3}_1_0{k}", [0.0] * 5 + [57.0 + k] * 60 + [0.0] * 5)
    cat, _ = index_dir(tmp_path / "mir1k", "mir1k", progress=False)
    cat.save(tmp_path / "all.csv")
    return tmp_path / "all.csv"


def test_every_kind_on_real_format_stems_with_the_truth_kept(clips, tmp_path):
    source = Catalog.load(clips)
    before = clips.read_bytes()
    noisy = inject(source, tmp_path / "noisy.csv", rate=0.5, kinds=("swap", "merge", "bleed"), seed=1)
    record = json.loads((tmp_path / "noisy.noise.json").read_text())["noise"]
    assert len(record) == round(0.5 * len(source.stems()))
    assert {n["kind"] for n in record.values()} <= {"swap", "merge", "bleed"} and "bleed" in {n["kind"] for n in record.values()}
    assert clips.read_bytes() == before and not list((tmp_path / "mir1k").rglob("*.noise*"))  # inputs untouched
    absorbed = {n["absorbs"] for n in record.values() if n["kind"] == "merge"}
    assert {e.id for e in noisy.stems()} == {e.id for e in source.stems()} - absorbed
    for e in noisy.stems():
        was, noise = source[e.id], record.get(e.id)
        path = noisy.resolve(e.path)
        if noise is None:
            assert (e.labels, e.true_labels, path) == (was.labels, was.labels, source.resolve(was.path))
        elif noise["kind"] == "swap":
            assert e.labels == (noise["label"],) != e.true_labels == was.labels and path == source.resolve(was.path)
        else:
            partner = source[noise.get("absorbs") or noise["from"]]
            own, other, heard = (read_audio(p) for p in (source.resolve(was.path), source.resolve(partner.path), path))
            assert e.labels == was.labels and path.parent == tmp_path / "noisy_audio" / e.song
            if noise["kind"] == "merge":
                np.testing.assert_allclose(heard, own + other, atol=1e-6)
                assert set(e.true_labels) == set(was.labels) | set(partner.labels)
            else:
                assert e.true_labels == was.labels and -20.0 <= noise["db"] <= -10.0
                assert _level_db(heard, own, other) == pytest.approx(noise["db"], abs=0.05)
    with pytest.raises(CatalogError, match="exists"):
        inject(source, tmp_path / "noisy.csv", rate=0.5)


def test_bad_requests_are_one_line_errors(clips, tmp_path):
    source = Catalog.load(clips)
    with pytest.raises(CatalogError, match="--rate 1.5"):
        inject(source, tmp_path / "a.csv", rate=1.5)
    with pytest.raises(CatalogError, match="noise kinds"):
        inject(source, tmp_path / "b.csv", rate=0.3, kinds=("hum",))
    with pytest.raises(CatalogError, match="no stems in split"):
        inject(source, tmp_path / "c.csv", rate=0.3, splits=("nowhere",))
    with pytest.raises(ValueError, match="noise kinds"):
        plan_noise({"s": [("a", "x")]}, ["x", "y"], 1.0, (), np.random.default_rng(0))


def test_the_command(clips, tmp_path, capsys):
    assert main(["catalog", "noise", str(clips), "--rate", "0.3", "--kinds", "swap,bleed", "--out",
                 str(tmp_path / "n.csv")]) == 0
    assert Catalog.load(tmp_path / "n.csv").stems() and (tmp_path / "n.noise.json").is_file()
    assert main(["catalog", "noise", str(clips), "--rate", "0.3", "--out", str(tmp_path / "n.csv")]) != 0
    assert "exists" in capsys.readouterr().err


@pytest.mark.skipif(not MIR1K.is_dir(), reason="MIR-1K not present in ../shared/data")
def test_bleeding_into_real_mir1k_vocals(tmp_path):
    for name in ("Ani_1_01", "Ani_1_02", "Ani_1_03", "Ani_1_04"):
        for sub, ext in (("Wavfile", ".ogg"), ("PitchLabel", ".pv")):
            (tmp_path / "mir1k" / sub).mkdir(parents=True, exist_ok=True)
            (tmp_path / "mir1k" / sub / f"{name}{ext}").symlink_to(MIR1K / sub / f"{name}{ext}")
    cat, _ = index_dir(tmp_path / "mir1k", "mir1k", progress=False)
    cat.save(tmp_path / "all.csv")
    noisy = inject(Catalog.load(tmp_path / "all.csv"), tmp_path / "bleed.csv", rate=0.5, kinds=("bleed",), seed=0)
    record = json.loads((tmp_path / "bleed.noise.json").read_text())["noise"]
    assert len(record) == 4
    for key, noise in record.items():
        e, partner = noisy[key], cat[noise["from"]]
        own, other = read_audio(cat.resolve(cat[key].path)), read_audio(cat.resolve(partner.path))
        assert _level_db(read_audio(noisy.resolve(e.path)), own, other) == pytest.approx(noise["db"], abs=0.05)
        assert e.labels == e.true_labels == cat[key].labels  # a bleeding stem keeps its (right) label
