"""MedleyDB-Melody (Bittner et al.): the 108 melody-annotated MedleyDB mixes, without stems.

    root/audio/<Artist>_<Title>_MIX.wav
    root/melody2/<Artist>_<Title>_MELODY2.csv        time, Hz (melody definition 2: any instrument)
    root/medleydb_melody_metadata.json               artist, title, is_instrumental per song

Each mix is a mixture with the artist as the group. As in `medleydb.py`, the MELODY2 annotation is
attached only to songs the metadata says are sung: an instrumental song's melody is an
instrument's line (indexed without it, with a note). Split "train".
"""
from __future__ import annotations

import json
from pathlib import Path

from noisymss.data.sources.probe import Plan, Skipped, audio_files

SPLIT = "train"


def scan(root: Path) -> tuple[list[Plan], list[Skipped]]:
    meta_path = root / "medleydb_melody_metadata.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return [], [Skipped(str(meta_path), f"unreadable or missing ({str(err)[:100]}): whether a song is sung is unknown")]
    plans, skipped = [], []
    for path in audio_files(root / "audio", root):
        song = path.stem.removesuffix("_MIX")
        info = meta.get(song)
        if not isinstance(info, dict):
            skipped.append(Skipped(str(path), "not in medleydb_melody_metadata.json"))
            continue
        melody = root / "melody2" / f"{song}_MELODY2.csv"
        sung = not info.get("is_instrumental", False)
        if melody.is_file() and not sung:
            skipped.append(Skipped(str(path), "instrumental: its melody is an instrument's line, not attached", kept=True))
        plans.append(Plan(path, song, song, "mixture", SPLIT, annotation=str(melody) if sung and melody.is_file() else "",
                          group=str(info.get("artist") or song.split("_")[0])))
    return plans, skipped
