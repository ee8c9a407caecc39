"""Folders of unlabelled mixtures (songs for the melody teacher to label, or to separate).

Every audio file under root, at any depth, is a mixture row with no labels and no
annotation; its song and id are its path relative to root without the extension.
"""
from __future__ import annotations

from pathlib import Path

from noisymss.data.sources.probe import Plan, Skipped, audio_files


def scan(root: Path) -> tuple[list[Plan], list[Skipped]]:
    """Plans a mixture row per audio file; split "train"."""
    plans = []
    for path in audio_files(root):
        song = path.relative_to(root).with_suffix("").as_posix()
        plans.append(Plan(path, song, song, "mixture", "train"))
    return plans, []
