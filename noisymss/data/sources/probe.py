"""Checking audio files fully, and the pieces every dataset importer shares.

An importer only reads a dataset's layout and returns `Plan`s (what a file would become in
the catalog). `probe_plans` then decodes every planned file once: a broken file becomes a
`Skipped` with a short reason and the scan goes on, so one bad download never stops an index
and no good file is lost.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import soundfile as sf
from tqdm import tqdm

from noisymss.audio.io import AUDIO_EXTENSIONS, AudioError, AudioInfo, _short, audio_info, channel_path
from noisymss.audio.wav import read_wav_header
from noisymss.data.catalog import Entry, make_entry

BLOCK = 65536  # frames decoded at a time: memory stays flat for hour-long files
_BAD_LABEL = re.compile(r"[|,]|^\s")  # what the catalog's label column cannot hold


@dataclass(frozen=True)
class Skipped:
    """A file left out of a catalog, and why (shown to the user after an index); with `kept`, a file
    indexed all the same whose row the user should know about (a guessed label, a missing annotation)."""

    path: str
    reason: str
    kept: bool = False


@dataclass
class Plan:
    """What an importer wants a file to become; `probe_plans` fills duration, rate and channels.

    `path` and `annotation` (a file, optionally with '#part') are absolute here; the catalog
    stores them relative to the dataset root.
    """

    path: Path
    id: str
    song: str
    role: str
    split: str
    labels: tuple = ()
    true_labels: tuple | None = None
    annotation: str = field(default="")
    group: str = ""  # singer or artist: splits keep a group together
    channel: int | None = None  # one channel of the file as the row's audio (stems stored as channels)


def probe_audio(path: str | os.PathLike) -> AudioInfo:
    """Decodes a whole file in blocks and checks that it is usable audio.

    Raises:
        AudioError: '<path>: <reason>' for a file that is unreadable or not audio, empty
            (0 frames), truncated (fewer frames decodable than the header says, or a WAV whose
            data chunk runs past the end of the file), or holding NaN or inf samples.
    """
    try:
        info = audio_info(path)
    except AudioError as err:  # libsndfile repeats the path inside its message; once is enough
        raise AudioError(str(err).replace(f"Error opening {str(path)!r}: ", "")) from None
    if info.frames <= 0:
        raise AudioError(f"{path}: empty (0 frames)")
    header = read_wav_header(path)
    declared = header.declared_frames if header is not None else None
    if declared is not None and declared > info.frames:
        # libsndfile quietly shortens such a WAV to the bytes present; the header tells the truth.
        raise AudioError(f"{path}: truncated: header says {declared} frames, file holds {info.frames}")
    count = 0
    try:
        with sf.SoundFile(str(path)) as f:
            for block in f.blocks(blocksize=BLOCK, dtype="float32", always_2d=True):
                finite = np.isfinite(block).all(axis=1)
                if not finite.all():
                    at = count + int(np.argmin(finite))
                    raise AudioError(f"{path}: NaN or inf samples from {at / info.sample_rate:.3f} s")
                count += len(block)
    except AudioError:
        raise
    except Exception as err:  # libsndfile reports a corrupt stream as LibsndfileError/RuntimeError
        raise AudioError(f"{path}: truncated or corrupt: decoding failed after {count} of {info.frames} "
                         f"frames ({_short(err)})") from None
    if count < info.frames:
        raise AudioError(f"{path}: truncated: header says {info.frames} frames, only {count} decodable")
    return info


def probe_plans(plans: Iterable[Plan], root: Path, progress: bool = True, desc: str = "index"
                ) -> tuple[list[Entry], list[Skipped]]:
    """Probes every planned file and turns the good ones into catalog entries.

    Args:
        plans: from an importer, in a stable order (ids are assigned first come, first kept).
        root: dataset folder; entry paths and annotations are stored relative to it.
        progress: show a tqdm bar over files on stderr.
        desc: the bar's label.

    Returns:
        (entries, skipped): a file that fails the probe, repeats an id (e.g. the same stem as
        both .wav and .flac), or carries a label the catalog cannot store is skipped.
    """
    plans = list(plans)
    entries, skipped, first, probed = [], [], {}, {}
    for plan in tqdm(plans, desc=desc, unit="file", file=sys.stderr, disable=not progress, dynamic_ncols=True):
        if plan.id in first:
            skipped.append(Skipped(str(plan.path), f"duplicate of {first[plan.id]} (same id '{plan.id}')"))
            continue
        bad = [c for c in plan.labels + (plan.true_labels or ()) if _BAD_LABEL.search(c)]
        if bad:
            skipped.append(Skipped(str(plan.path), f"label {bad[0]!r} contains '|' or ',' or starts with a space"))
            continue
        try:
            info = probed[plan.path] if plan.path in probed else probe_audio(plan.path)
        except AudioError as err:
            skipped.append(Skipped(str(plan.path), str(err).removeprefix(f"{plan.path}: ")))
            continue
        probed[plan.path] = info  # a file holding several rows (its channels) is decoded once
        if plan.channel is not None and plan.channel >= info.channels:
            skipped.append(Skipped(str(plan.path), f"{info.channels} channel(s): no channel {plan.channel} for {plan.id}"))
            continue
        first[plan.id] = plan.path
        path = rel(plan.path, root)
        entries.append(make_entry(
            id=plan.id, song=plan.song, path=path if plan.channel is None else channel_path(path, plan.channel),
            role=plan.role, duration=round(info.duration, 6),  # the CSV keeps 6 decimals: round so save/load round-trips
            sample_rate=info.sample_rate, channels=info.channels if plan.channel is None else 1, split=plan.split,
            labels=tuple(plan.labels), true_labels=tuple(plan.true_labels) if plan.true_labels else None,
            annotation=_rel_ref(plan.annotation, root), group=plan.group,
        ))
    return entries, skipped


def ignored(path: Path, root: Path) -> bool:
    """Hidden names and temp files ('.x', 'x.part') anywhere below root are not data."""
    parts = path.relative_to(root).parts
    return any(p.startswith(".") or p.endswith(".part") for p in parts)


def is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS


def audio_files(folder: Path, root: Path | None = None, recursive: bool = True) -> list[Path]:
    """Audio files under `folder`, sorted, leaving out hidden and temp names (relative to root)."""
    root = root or folder
    found = folder.rglob("*") if recursive else folder.glob("*")
    return sorted(p for p in found if is_audio(p) and not ignored(p, root) and p.is_file())


def rel(path: Path, root: Path, part: int | None = None) -> str:
    """`path` relative to root in POSIX form (absolute if outside it), with an optional '#part'."""
    text = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    return text if part is None else f"{text}#{part}"


def _rel_ref(ref: str, root: Path) -> str:
    """An annotation reference ('/abs/file' or '/abs/file#k') made relative to root."""
    if not ref:
        return ""
    base, hash_, part = ref.partition("#")
    return rel(Path(base), root) + hash_ + part
