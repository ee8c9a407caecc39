"""MoisesDB (Pereira et al., arXiv:2307.15913): 240 songs, each stem split into its recorded tracks.

    root/<provider>/<track id>/data.json      artist, song, genre; stems: [{stemName, tracks: [{id, trackType,
                                              extension, has_bleed}]}]
    root/<provider>/<track id>/<stemName>/<track uuid>.<extension>

Each recorded track is a row labelled through the taxonomy (`TAXONOMY`, or the user's `--taxonomy
from,to` table) from its stem name; true unless the track bleeds (`has_bleed`). A stem name the
table does not name keeps its own name (reported by `noisymss index`). There is no mixture file.
The artist is the group; split "train".
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from noisymss.data.sources.probe import Plan, Skipped, is_audio

TAXONOMY = {"vocals": "vocals", "drums": "drums", "percussion": "drums", "bass": "bass", "guitar": "other",
            "piano": "other", "other_keys": "other", "bowed_strings": "other", "wind": "other",
            "other_plucked": "other", "other": "other"}
SPLIT = "train"


def scan(root: Path, taxonomy: Mapping[str, str] | None = None) -> tuple[list[Plan], list[Skipped]]:
    table = dict(TAXONOMY if taxonomy is None else taxonomy)
    plans, skipped = [], []
    for meta_path in sorted(root.rglob("data.json")):
        folder = meta_path.parent
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            stems = list(meta["stems"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            skipped.append(Skipped(str(meta_path), f"not MoisesDB data.json ({str(err)[:80]}): the song is left out"))
            continue
        song = folder.name
        listed = set()
        for stem in stems:
            name = str(stem.get("stemName") or "")
            for track in stem.get("tracks") or []:
                path = folder / name / f"{track.get('id')}.{track.get('extension', 'wav')}"
                listed.add(path)
                if not path.is_file():
                    skipped.append(Skipped(str(path), f"listed in data.json ({name}) but missing"))
                    continue
                label = (table.get(name, name),)
                plans.append(Plan(path, f"{song}/{name}/{path.stem}", song, "stem", SPLIT, labels=label,
                                  true_labels=None if track.get("has_bleed") else label,
                                  group=str(meta.get("artist") or song)))
        skipped += [Skipped(str(p), "not listed in data.json") for p in sorted(folder.rglob("*"))
                    if p.is_file() and is_audio(p) and p not in listed]
    return plans, skipped
