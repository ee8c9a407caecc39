"""Stems sorted into folders by label: the noisy "downloaded by query" case.

    root/<label>/**/<file>.{wav,flac,...}

Every audio file is its own song (a stem found by searching "drums" shares no song with any
other file), given the label of its top-level folder; the truth is unknown. Files lying
directly in root have no label and are skipped.
"""
from __future__ import annotations

from pathlib import Path

from noisymss.data.sources.probe import Plan, Skipped, audio_files


def scan(root: Path) -> tuple[list[Plan], list[Skipped]]:
    """Plans a stem row per audio file below a label folder; split "train"."""
    plans, skipped = [], []
    for path in audio_files(root):
        rel = path.relative_to(root)
        if len(rel.parts) < 2:
            skipped.append(Skipped(str(path), "not under a <label>/ folder"))
            continue
        song = rel.with_suffix("").as_posix()
        plans.append(Plan(path, song, song, "stem", "train", labels=(rel.parts[0],)))
    return plans, skipped
