"""iKala (Chan et al., ICASSP 2015): 252 thirty-second clips of Chinese pop, vocals and accompaniment apart.

    root/Wavfile/<song>_<section>.wav    44.1 kHz stereo: left = accompaniment, right = vocals
    root/PitchLabel/<clip>.pv            vocal pitch per 32 ms frame, MIDI (0 = unvoiced)
    root/id_mapping.txt                  singer and song id per line (tab separated, with a header)

MIR-1K's layout and rows (`mir1k.py`): per clip the mixture and the two channels as true stems
'vocals' and 'accompaniment', the pitch labels ('#ikala' timing: frame k at 0.016 + 0.032 k s) on
the mixture and the vocals, the singer (from id_mapping.txt) as the group.
"""
from __future__ import annotations

from pathlib import Path

from noisymss.data.sources.mir1k import scan_clips
from noisymss.data.sources.probe import Plan, Skipped


def scan(root: Path) -> tuple[list[Plan], list[Skipped]]:
    mapping = root / "id_mapping.txt"
    if not mapping.is_file():
        return [], [Skipped(str(mapping), "missing: iKala's singer of each song (give the dataset's top folder)")]
    singers = {}
    for line in mapping.read_text(encoding="utf-8").splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2:
            singers[parts[1]] = f"singer{parts[0]}"
    return scan_clips(root, "ikala", lambda clip: singers.get(clip.split("_")[0], ""))
