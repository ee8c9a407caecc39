"""Dagstuhl ChoirSet (Rosenzweig et al.): SATB choir recordings, each singer on three microphones.

    root/audio_wav_22050_mono/DCS_<Piece>_<Take>_<Part><N>_<Mic>.wav     a singer: Mic DYN, HSM or LRX
    root/audio_wav_22050_mono/DCS_<Piece>_<Take>_Stereo*_<Mic>.wav       the room: STM, STL, STR
    root/annotations_csv_F0_manual/DCS_<Piece>_<Take>_<Part><N>_LRX.csv  manual f0 (time, Hz)

Each singer microphone is a stem labelled 'vocals' (true) with that singer's manual f0 (the three
microphones recorded the same voice at once); each room microphone is a mixture without an f0
(a choir has no single melody). The piece and take are the song and the group. Split "train".
"""
from __future__ import annotations

import re
from pathlib import Path

from noisymss.data.sources.probe import Plan, Skipped, audio_files

SPLIT = "train"
_NAME = re.compile(r"^(DCS_.+_Take\d+)_(.+)_([A-Z]+)$")


def scan(root: Path) -> tuple[list[Plan], list[Skipped]]:
    plans, skipped = [], []
    for path in audio_files(root / "audio_wav_22050_mono", root):
        found = _NAME.match(path.stem)
        if not found:
            skipped.append(Skipped(str(path), "not a Dagstuhl ChoirSet name (DCS_<piece>_<take>_<part>_<mic>)"))
            continue
        song, part, _ = found.groups()
        if part.startswith("Stereo"):
            plans.append(Plan(path, path.stem, song, "mixture", SPLIT, group=song))
            continue
        f0 = root / "annotations_csv_F0_manual" / f"{song}_{part}_LRX.csv"
        plans.append(Plan(path, path.stem, song, "stem", SPLIT, labels=("vocals",), true_labels=("vocals",),
                          annotation=str(f0) if f0.is_file() else "", group=song))
    return plans, skipped
