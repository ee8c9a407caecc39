"""Dataset importers: scan a dataset folder and build a stem `Catalog`.

    cat, skipped = index_dir("/data/musdb18hq", "musdb")
    cat.save("musdb.csv")

Each format's module reads only the folder layout and plans rows; every planned file is then
decoded once (`probe_audio`), and a broken one is reported in `skipped` instead of stopping
the scan. Hidden names ('.x') and temp files ('x.part') are ignored.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from noisymss.data.catalog import Catalog
from noisymss.data.sources import bach10, folder, ikala, medleydb, mir1k, mixtures, musdb, sdx23
from noisymss.data.sources.probe import Plan, Skipped, probe_audio, probe_plans

Scanner = Callable[[Path], "tuple[list[Plan], list[Skipped]]"]

FORMATS: dict[str, Scanner] = {
    "musdb": musdb.scan,
    "sdx23": sdx23.scan,
    "folder": folder.scan,
    "mixtures": mixtures.scan,
    "bach10": bach10.scan,
    "medleydb": medleydb.scan,
    "mir1k": mir1k.scan,
    "ikala": ikala.scan,
}

__all__ = ["FORMATS", "Skipped", "index_dir", "probe_audio"]


def index_dir(root: str | os.PathLike, fmt: str, progress: bool = True) -> tuple[Catalog, list[Skipped]]:
    """Builds a catalog of every usable audio file of a dataset folder.

    Args:
        root: the dataset's top folder.
        fmt: one of FORMATS.
        progress: show a progress bar over files on stderr.

    Returns:
        (catalog, skipped): the catalog's root is `root` and its paths are relative to it;
        `skipped` lists each file left out with the reason: layout problems first, then
        files that failed the probe.

    Raises:
        ValueError: unknown format, or root is not a folder.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown dataset format '{fmt}'; known formats: {', '.join(FORMATS)}")
    root = Path(root).expanduser().absolute()
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder; give the dataset's top folder")
    plans, skipped = FORMATS[fmt](root)
    entries, broken = probe_plans(plans, root, progress=progress, desc=f"index {fmt}")
    return Catalog(entries, root), skipped + broken
