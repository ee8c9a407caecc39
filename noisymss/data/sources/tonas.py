"""TONAS (Mora et al.): 72 a cappella flamenco songs (deblas and martinetes) with corrected f0.

    root/<Style>/<NN>-<X>_<Singer>.wav
    root/<Style>/<same>.f0.Corrected        time, energy, automatic f0, corrected f0 (Hz)
    root/TONAS-Metadata.txt                 file, style, title, singer (UTF-16, tab separated)

Each song is a mixture (a voice alone) with its corrected f0; the singer is the group (from the
metadata, else the file name after '_'). TONAS is an evaluation set: split "test".
"""
from __future__ import annotations

from pathlib import Path

from noisymss.data.sources.probe import Plan, Skipped, audio_files

SPLIT = "test"


def scan(root: Path) -> tuple[list[Plan], list[Skipped]]:
    singers = _singers(root / "TONAS-Metadata.txt")
    plans, skipped = [], []
    for path in audio_files(root, root):
        f0 = path.with_name(f"{path.stem}.f0.Corrected")
        if not f0.is_file():
            skipped.append(Skipped(str(path), f"no {f0.name}: a song without its f0"))
            continue
        singer = singers.get(path.name) or path.stem.partition("_")[2] or path.stem
        plans.append(Plan(path, path.stem, path.stem, "mixture", SPLIT, annotation=str(f0), group=singer))
    return plans, skipped


def _singers(path: Path) -> dict[str, str]:
    """{file name: singer} from the metadata (written as UTF-16 by the dataset), {} if absent."""
    if not path.is_file():
        return {}
    raw = path.read_bytes()
    text = raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode("utf-8", errors="replace")
    rows = [line.split("\t") for line in text.splitlines()[1:]]
    return {r[0].strip(): r[3].strip() for r in rows if len(r) > 3 and r[0].strip()}
