"""Folders of unlabelled mixtures (songs for the melody teacher to label, or to separate).

Every audio file under root, at any depth, is a mixture row with no labels; its song and id are
its path relative to root without the extension. In JamendoLyrics' layout

    root/mp3/<name>.mp3, root/annotations/lines/<name>.csv (start_time, end_time, lyrics_line),
    root/JamendoLyrics.csv (Filepath, Artist, ...)

a song's line alignment is its annotation, read as vocal activity (`<file>#activity`: singing
between each line's start and end; no pitch), and its artist is the group.
"""
from __future__ import annotations

import csv
from pathlib import Path

from noisymss.data.sources.probe import Plan, Skipped, audio_files


def scan(root: Path) -> tuple[list[Plan], list[Skipped]]:
    """Plans a mixture row per audio file; split "train"."""
    artists = _jamendo_artists(root / "JamendoLyrics.csv")
    plans = []
    for path in audio_files(root):
        song = path.relative_to(root).with_suffix("").as_posix()
        lines = root / "annotations" / "lines" / f"{path.stem}.csv"
        plans.append(Plan(path, song, song, "mixture", "train", annotation=f"{lines}#activity" if lines.is_file() else "",
                          group=artists.get(path.name, "")))
    return plans, []


def _jamendo_artists(path: Path) -> dict[str, str]:
    """{file name: artist} from JamendoLyrics.csv ({} without it)."""
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {Path(r.get("Filepath", "")).name: (r.get("Artist") or "").strip() for r in csv.DictReader(f)}
