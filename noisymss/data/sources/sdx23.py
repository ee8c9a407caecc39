"""The SDX'23 label-noise and bleeding sets (Sound Demixing Challenge 2023, MDX track): MUSDB18's
layout (`musdb.py`), one folder per song, whose stems are often not what their names say on
purpose. Labels are given; the truth is unknown (no `true_labels`); every song is "train" unless a
split folder says otherwise.
"""
from __future__ import annotations

from pathlib import Path

from noisymss.data.sources.musdb import scan_songs
from noisymss.data.sources.probe import Plan, Skipped


def scan(root: Path) -> tuple[list[Plan], list[Skipped]]:
    return scan_songs(root, clean=False)
