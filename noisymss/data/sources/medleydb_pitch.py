"""MedleyDB-Pitch (Bittner et al.): monophonic MedleyDB stems with checked f0.

    root/audio/<Artist>_<Title>_STEM_NN.wav
    root/pitch/<Artist>_<Title>_STEM_NN.csv         time, Hz (0 = unvoiced)
    root/medleydb_pitch_metadata.json               instrument, artist, title of each stem

Each stem is a row labelled by its instrument mapped to a class (`medleydb.to_class`), true (the
stems are clean), with its f0 as the annotation and its artist as the group. Split "train".
"""
from __future__ import annotations

import json
from pathlib import Path

from noisymss.data.sources.medleydb import to_class
from noisymss.data.sources.probe import Plan, Skipped, audio_files

SPLIT = "train"


def scan(root: Path) -> tuple[list[Plan], list[Skipped]]:
    meta_path = root / "medleydb_pitch_metadata.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return [], [Skipped(str(meta_path), f"unreadable or missing ({str(err)[:100]}): stems cannot be labelled")]
    plans, skipped = [], []
    for path in audio_files(root / "audio", root):
        info = meta.get(path.stem)
        if not isinstance(info, dict) or not info.get("instrument"):
            skipped.append(Skipped(str(path), "not in medleydb_pitch_metadata.json: its instrument is unknown"))
            continue
        pitch = root / "pitch" / f"{path.stem}.csv"
        label = (to_class(str(info["instrument"])),)
        song = f"{info.get('artist', '')}_{info.get('title', '')}".strip("_") or path.stem
        plans.append(Plan(path, path.stem, song, "stem", SPLIT, labels=label, true_labels=label,
                          annotation=str(pitch) if pitch.is_file() else "", group=str(info.get("artist") or song)))
        if not pitch.is_file():
            skipped.append(Skipped(str(pitch), "f0 missing: the stem is indexed without an annotation", kept=True))
    return plans, skipped
