"""MDB-stem-synth (Salamon et al.): MedleyDB stems resynthesised to follow an f0 exactly.

    root/audio_stems/<Artist>_<Title>_STEM_NN.RESYN.wav
    root/annotation_stems/<Artist>_<Title>_STEM_NN.RESYN.csv    time, Hz (0 = unvoiced), ~2.9 ms hop

Each file is monophonic audio with a perfect f0: a row of role 'mixture' (what the melody task
reads) with that f0, the artist (the name before the first '_') as the group. No instrument is
named in this layout, so rows carry no labels. Split "train".
"""
from __future__ import annotations

from pathlib import Path

from noisymss.data.sources.probe import Plan, Skipped, audio_files

SPLIT = "train"


def scan(root: Path) -> tuple[list[Plan], list[Skipped]]:
    plans, skipped = [], []
    for path in audio_files(root / "audio_stems", root):
        name = path.name.removesuffix(path.suffix)  # <stem>.RESYN
        f0 = root / "annotation_stems" / f"{name}.csv"
        if not f0.is_file():
            skipped.append(Skipped(str(path), f"no annotation_stems/{name}.csv: a resynthesis without its f0 is of no use"))
            continue
        plans.append(Plan(path, name, name.split("_STEM")[0], "mixture", SPLIT, annotation=str(f0),
                          group=name.split("_")[0]))
    return plans, skipped
