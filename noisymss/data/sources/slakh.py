"""Slakh2100 (Manilow et al.): MIDI rendered with sample-based instruments, one stem per instrument.

    root/[train|validation|test|omitted/]TrackNNNNN/metadata.yaml     stems: SNN: inst_class, audio_rendered, ...
    root/.../TrackNNNNN/mix.{flac,wav}
    root/.../TrackNNNNN/stems/SNN.{flac,wav}

Each rendered stem is a row labelled through the taxonomy (`TAXONOMY`, or the user's
`--taxonomy from,to` table) from its `inst_class`; the stems are clean, so the labels are true. An
inst_class the table does not name keeps its own name as its label (reported by `noisymss index`,
renamed with `noisymss catalog map`). The split is the folder's (`validation` becomes `valid`), else
"train"; the track is the song and the group.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import yaml

from noisymss.data.sources.probe import Plan, Skipped, audio_files

TAXONOMY = {"Drums": "drums", "Percussive": "drums", "Bass": "bass", "Piano": "other", "Chromatic Percussion": "other",
            "Organ": "other", "Guitar": "other", "Strings": "other", "Strings (continued)": "other", "Brass": "other",
            "Reed": "other", "Pipe": "other", "Synth Lead": "other", "Synth Pad": "other", "Sound Effects": "other",
            "Sound effects": "other", "Ethnic": "other"}
SPLITS = {"train": "train", "validation": "valid", "test": "test", "omitted": "omitted"}


def scan(root: Path, taxonomy: Mapping[str, str] | None = None) -> tuple[list[Plan], list[Skipped]]:
    table = dict(TAXONOMY if taxonomy is None else taxonomy)
    plans, skipped = [], []
    for meta_path in sorted(root.rglob("metadata.yaml")):
        track = meta_path.parent
        split = next((SPLITS[p] for p in reversed(track.relative_to(root).parts[:-1]) if p in SPLITS), "train")
        try:
            meta = yaml.safe_load(meta_path.read_text(encoding="utf-8"))
            stems = meta["stems"]
        except (OSError, yaml.YAMLError, KeyError, TypeError) as err:
            skipped.append(Skipped(str(meta_path), f"not Slakh metadata ({str(err)[:80]}): the track is left out"))
            continue
        song = track.name
        mix = next(iter(audio_files(track, root, recursive=False)), None)
        if mix is not None and mix.stem == "mix":
            plans.append(Plan(mix, f"{song}/mix", song, "mixture", split, group=song))
        found = {p.stem: p for p in audio_files(track / "stems", root)} if (track / "stems").is_dir() else {}
        for key, stem in sorted(stems.items()):
            if key not in found:
                if (stem or {}).get("audio_rendered", True):
                    skipped.append(Skipped(str(track / "stems" / key), "listed in metadata.yaml but missing"))
                continue
            inst = str((stem or {}).get("inst_class") or "unknown")
            label = (table.get(inst, inst),)
            plans.append(Plan(found[key], f"{song}/{key}", song, "stem", split, labels=label, true_labels=label,
                              group=song))
    return plans, skipped
