"""The real-data configs, from raw dataset folders to a running `fit`, on the real audio in
../shared/data (skipped when absent): index, split by singer, fit."""
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
