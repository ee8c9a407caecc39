"""Orchset (Bosch et al.): 64 symphonic excerpts with their predominant melody.

    root/audio/stereo/<Composer>-<Work>-ex<N>.wav     (root/audio/mono/ holds mono copies)
    root/GT/<excerpt>.mel                             time, Hz every 10 ms (0 = unvoiced)

Each excerpt is a mixture with its melody (stereo audio where present, else mono); the composer is
the group. Orchset is an evaluation set: split "test".
"""
from __future__ import annotations

from pathlib import Path

from noisymss.data.sources.probe import Plan, Skipped, audio_files

SPLIT = "test"


def scan(root: Path) -> tuple[list[Plan], list[Skipped]]:
    plans, skipped = [], []
    stereo = {p.stem: p for p in audio_files(root / "audio" / "stereo", root)}
    mono = {p.stem: p for p in audio_files(root / "audio" / "mono", root)}
    for name in sorted(stereo | mono):
        path = stereo.get(name) or mono[name]
        melody = root / "GT" / f"{name}.mel"
        if not melody.is_file():
            skipped.append(Skipped(str(path), f"no GT/{name}.mel: an excerpt without its melody"))
            continue
        plans.append(Plan(path, name, name, "mixture", SPLIT, annotation=str(melody), group=name.split("-")[0]))
    return plans, skipped
