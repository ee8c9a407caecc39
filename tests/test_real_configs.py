"""The real-data configs, from raw dataset folders to a running `fit`: on the real audio in
../shared/data where it is there (MIR-1K; skipped when absent), on generated trees of the
published layout where it is not (MUSDB18-HQ, SDX'23): index, split, fit."""
from __future__ import annotations

from pathlib import Path

import pytest

from noisymss.cli import main
from noisymss.data.catalog import Catalog

SHARED = Path(__file__).resolve().parents[1].parent / "shared/data"
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _mir1k_subset(root: Path, singers: int = 4, clips: int = 3) -> Path:
    """A MIR-1K tree of a few singers' clips (links to the real files)."""
    src = SHARED / "mir1k"
    chosen: dict[str, list[Path]] = {}
    for path in sorted((src / "Wavfile").iterdir()):
        singer = path.stem.split("_")[0]
        if len(chosen) < singers or singer in chosen:
            chosen.setdefault(singer, [])
            if len(chosen[singer]) < clips:
                chosen[singer].append(path)
    for paths in chosen.values():
        for path in paths:
            for folder, name in (("Wavfile", path.name), ("PitchLabel", f"{path.stem}.pv")):
                (root / folder).mkdir(parents=True, exist_ok=True)
                (root / folder / name).symlink_to(src / folder / name)
    return root


@pytest.mark.skipif(not (SHARED / "mir1k").is_dir(), reason="MIR-1K not present in ../shared/data")
def test_mir1k_melody_from_the_raw_folder_to_a_fit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _mir1k_subset(tmp_path / "MIR-1K")
    assert main(["index", "MIR-1K", "--format", "mir1k", "--out", "all.csv"]) == 0
    assert main(["catalog", "split", "all.csv", "--fractions", "labelled=0.25,unlabelled=0.25,valid=0.25,test=0.25",
                 "--out", "data/mir1k/catalog.csv"]) == 0
    splits = {}
    for e in Catalog.load(tmp_path / "data/mir1k/catalog.csv"):
        splits.setdefault(e.group, set()).add(e.split)
    assert all(len(s) == 1 for s in splits.values()) and len(set().union(*splits.values())) == 4
    code = main(["fit", "--config", str(CONFIGS / "mir1k_noisy_student.yaml"), "--trainer.max_epochs", "3",
                 "--trainer.limit_train_batches", "2", "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
                 "--data.init_args.train_examples", "8", "--data.init_args.batch_size", "4", "--data.init_args.num_workers", "0"])
    assert code == 0
    assert (tmp_path / "runs/mir1k_noisy_student/checkpoints/last.ckpt").is_file()


@pytest.mark.skipif(not (SHARED / "mir1k").is_dir(), reason="MIR-1K not present in ../shared/data")
def test_mir1k_separation_from_the_raw_folder_to_a_fit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _mir1k_subset(tmp_path / "MIR-1K", singers=3, clips=2)
    assert main(["index", "MIR-1K", "--format", "mir1k", "--out", "all.csv"]) == 0
    assert main(["catalog", "split", "all.csv", "--fractions", "train=0.34,valid=0.33,test=0.33",
                 "--out", "data/mir1k/separation.csv"]) == 0
    code = main(["fit", "--config", str(CONFIGS / "mir1k_separator_xumx.yaml"), "--trainer.max_epochs", "1",
                 "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1", "--trainer.logger", "false",
                 "--trainer.enable_progress_bar", "false", "--data.init_args.train_examples", "4",
                 "--data.init_args.batch_size", "2", "--data.init_args.num_workers", "0", "--data.init_args.cache_dir", "null"])
    assert code == 0
    assert (tmp_path / "runs/mir1k_separator_xumx/checkpoints/last.ckpt").is_file()


def _musdb_tree(root: Path, songs: dict[str, str], seconds: float = 3.0, rate: int = 44100) -> Path:
    """A MUSDB18-HQ-layout tree ({song: split folder}) of tones and noise, one file per source."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    for k, (song, split) in enumerate(songs.items()):
        folder = root / split / song
        folder.mkdir(parents=True)
        parts = {"vocals": np.sin(2 * np.pi * (300 + 20 * k) * t), "bass": np.sin(2 * np.pi * 60 * t),
                 "drums": rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 2 * t) > 0.9),
                 "other": np.sin(2 * np.pi * 880 * t) * 0.5}
        for name, x in parts.items():
            sf.write(folder / f"{name}.wav", np.repeat((0.2 * x)[:, None], 2, 1).astype(np.float32), rate)
        sf.write(folder / "mixture.wav", sum(np.repeat((0.2 * x)[:, None], 2, 1) for x in parts.values()).astype(np.float32), rate)
    return root


_TINY = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
         "--trainer.logger", "false", "--trainer.enable_progress_bar", "false", "--data.init_args.train_examples", "4",
         "--data.init_args.val_examples", "2", "--data.init_args.batch_size", "2", "--data.init_args.num_workers", "0",
         "--data.init_args.cache_dir", "null"]


def test_musdb18hq_layout_to_a_separator_fit_with_the_official_validation_split(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _musdb_tree(tmp_path / "musdb18hq", {"Song A": "train", "Song B": "train", "Actions - One Minute Smile": "train",
                                         "Song T": "test"})
    assert main(["index", "musdb18hq", "--format", "musdb", "--out", "data/musdb/catalog.csv"]) == 0
    assert {e.song: e.split for e in Catalog.load(tmp_path / "data/musdb/catalog.csv")}["Actions - One Minute Smile"] == "valid"
    assert main(["fit", "--config", str(CONFIGS / "musdb_separator_htdemucs.yaml"), *_TINY]) == 0
    assert (tmp_path / "runs/musdb_separator_htdemucs/checkpoints/last.ckpt").is_file()


def test_sdx23_layout_to_a_classifier_fit_scored_against_the_given_labels(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _musdb_tree(tmp_path / "sdx", {f"Song {k}": "" for k in range(4)})  # the SDX'23 sets have no split folders
    assert main(["index", "sdx", "--format", "sdx23", "--out", "all.csv"]) == 0
    assert main(["catalog", "split", "all.csv", "--fractions", "train=0.75,valid=0.25", "--out", "data/sdx23/catalog.csv"]) == 0
    capsys.readouterr()
    assert main(["fit", "--config", str(CONFIGS / "sdx23_classifier.yaml"), *_TINY]) == 0
    assert "score against the training labels" in capsys.readouterr().out
    assert main(["refine", "--config", str(CONFIGS / "sdx23_classifier.yaml"), "--trainer.logger", "false",
                 "--ckpt_path", "last", "--version", "refined1", "--threshold", "0.3"]) in (0, 1)
    out = capsys.readouterr()
    # an untrained-for-long classifier may remove every label: then the version is refused, never written
    written = (tmp_path / "data/sdx23/catalog.labels/refined1.csv").is_file()
    assert written == ("wrote label version 'refined1'" in out.out), out.err[-2000:]
    assert written or "lost every label" in out.err
