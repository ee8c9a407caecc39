"""MIR-1K (Hsu & Jang): 1,000 clips of amateur Chinese pop singing, vocals and accompaniment apart.

    root/Wavfile/<singer>_<song>_<n>.<ext>     16 kHz stereo: left = accompaniment, right = vocals
    root/PitchLabel/<clip>.pv                   vocal pitch per 20 ms frame, MIDI (0 = unvoiced)

Each clip becomes three rows: the mixture (the file; read as mono it is the 0 dB mix, halved), and
the two channels as clean stems 'vocals' (`#ch1`) and 'accompaniment' (`#ch0`), their labels true.
The mixture and the vocal stem carry the pitch labels ('#mir1k' names their frame timing). The
singer (the file name's first part) is the group, so splits never put one voice in two splits;
every row starts in split 'train': assign splits with `noisymss catalog split`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from noisymss.data.sources.probe import Plan, Skipped, audio_files

SPLIT = "train"
CHANNELS = {"accompaniment": 0, "vocals": 1}


def scan(root: Path) -> tuple[list[Plan], list[Skipped]]:
    """Plans the mixture and both channel stems of every clip in root/Wavfile."""
    return scan_clips(root, "mir1k", lambda clip: clip.split("_")[0] if clip.count("_") >= 2 else "")


def scan_clips(root: Path, timing: str, singer_of: Callable[[str], str]) -> tuple[list[Plan], list[Skipped]]:
    """The MIR-1K layout (iKala shares it): Wavfile/<clip>.* with accompaniment left and vocals right,
    PitchLabel/<clip>.pv read with the dataset's frame `timing`; `singer_of(clip)` names the group
    ('' for a name that is not the dataset's)."""
    plans, skipped = [], []
    wavs = root / "Wavfile"
    if not wavs.is_dir():
        return [], [Skipped(str(wavs), "missing: the clips live in Wavfile/ (give the dataset's top folder)")]
    for path in audio_files(wavs, root):
        clip = path.stem
        singer = singer_of(clip)
        if not singer:
            skipped.append(Skipped(str(path), f"not a {timing} clip name, or a clip of no known singer"))
            continue
        pv = root / "PitchLabel" / f"{clip}.pv"
        ref = f"{pv}#{timing}" if pv.is_file() else ""
        if not ref:
            skipped.append(Skipped(str(pv), "pitch labels missing: the clip is indexed without an annotation", kept=True))
        plans.append(Plan(path, f"{clip}/mixture", clip, "mixture", SPLIT, annotation=ref, group=singer))
        for label, channel in CHANNELS.items():
            plans.append(Plan(path, f"{clip}/{label}", clip, "stem", SPLIT, labels=(label,), true_labels=(label,),
                              annotation=ref if label == "vocals" else "", group=singer, channel=channel))
    return plans, skipped
