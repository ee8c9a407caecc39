"""Catalogs the experiments make from the shared data with the `noisymss` verbs, each made once."""
from __future__ import annotations

from pathlib import Path

from noisymss.experiments.runner import noisymss


def split_catalog(shared_folder: Path, fmt: str, fractions: str, out: Path) -> Path:
    """A dataset folder indexed with `fmt` (kept beside `out` as <stem>_all.csv), then split by group
    with `noisymss catalog split --fractions ... --seed 0`."""
    if not out.is_file():
        everything = out.with_name(out.stem + "_all.csv")
        if not everything.is_file():
            noisymss(["index", str(shared_folder), "--format", fmt, "--out", str(everything)], out.with_suffix(".log"))
        noisymss(["catalog", "split", str(everything), "--fractions", fractions, "--seed", "0", "--out", str(out)],
                 out.with_suffix(".log"))
    return out


def one_split_catalog(shared_folder: Path, fmt: str, split: str, out: Path) -> Path:
    """A dataset folder indexed with `fmt`, every row in `split`."""
    return split_catalog(shared_folder, fmt, f"{split}=1.0", out)


def few_songs(catalog: Path, out: Path, per_split: int = 2) -> Path:
    """The first songs of each split, with their stems: a pipeline check, not an experiment."""
    from noisymss.data.catalog import Catalog

    if not out.is_file():
        cat = Catalog.load(catalog)
        keep = set()
        for split in sorted({e.split for e in cat.mixtures()}):
            keep |= {e.song for e in cat.mixtures(split)[:per_split]}
        Catalog([e for e in cat.entries if e.song in keep], cat.root).save(out)
    return out
