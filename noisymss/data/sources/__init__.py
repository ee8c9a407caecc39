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
from noisymss.data.sources import (bach10, dagstuhl, folder, ikala, mdb_stem_synth, medleydb, medleydb_melody,
                                   medleydb_pitch, mir1k,
                                   mixtures, moisesdb, musdb, orchset, sdx23, slakh, tonas)
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
    "medleydb_melody": medleydb_melody.scan,
    "medleydb_pitch": medleydb_pitch.scan,
    "mdb_stem_synth": mdb_stem_synth.scan,
    "orchset": orchset.scan,
    "tonas": tonas.scan,
    "dagstuhl": dagstuhl.scan,
    "slakh": slakh.scan,
    "moisesdb": moisesdb.scan,
}
TAXONOMIES = {"slakh": slakh.TAXONOMY, "moisesdb": moisesdb.TAXONOMY}  # formats whose labels go through a table

__all__ = ["FORMATS", "TAXONOMIES", "Skipped", "index_dir", "probe_audio"]


def index_dir(root: str | os.PathLike, fmt: str, progress: bool = True, taxonomy: dict[str, str] | None = None,
              decode_to: str | os.PathLike | None = None) -> tuple[Catalog, list[Skipped]]:
    """Builds a catalog of every usable audio file of a dataset folder.

    Args:
        root: the dataset's top folder.
        fmt: one of FORMATS.
        progress: show a progress bar over files on stderr.
        taxonomy: {dataset name: class} replacing the format's own table (formats in TAXONOMIES).
        decode_to: musdb: the folder `.stem.mp4` files are decoded into (None: they are skipped).

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
    if taxonomy is not None and fmt not in TAXONOMIES:
        raise ValueError(f"--taxonomy: format '{fmt}' names its labels itself; a table applies to {', '.join(TAXONOMIES)}")
    if taxonomy is not None:
        plans, skipped = FORMATS[fmt](root, taxonomy)
    elif fmt == "musdb" and decode_to is not None:
        plans, skipped = musdb.scan(root, Path(decode_to).absolute())
    else:
        plans, skipped = FORMATS[fmt](root)
    entries, broken = probe_plans(plans, root, progress=progress, desc=f"index {fmt}")
    return Catalog(entries, root), skipped + broken
