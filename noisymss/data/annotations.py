"""Melody f0 annotations: read the formats the project meets and put them on a 10 ms grid.

An annotation reference is a path, optionally with '#N' choosing a part of a multi-part file:
    song.f0.txt / REF.txt     mir_eval two-column text (time, Hz; 0 or negative = unvoiced),
                              whitespace or comma separated (ADC2004 / MIREX05 style, the demo corpus)
    song_MELODY2.csv          MedleyDB melody CSV (time,Hz)
    song-GTF0s.mat#0          Bach10 ground truth: MIDI numbers, one row per part (0 = violin),
                              10 ms hop, first frame centred at 23 ms
    clip.pv#mir1k             MIR-1K pitch labels: one MIDI number per line (0 = unvoiced), 40 ms
                              frames with a 20 ms hop, frame k centred at 0.02 * (k + 1) s
    clip.pv#ikala             iKala pitch labels: the same format, 32 ms hop, frame k centred at
                              0.016 + 0.032 * k s
    song.f0.Corrected         TONAS: time, energy, automatic f0, corrected f0 (the fourth column is read)

A reference ending in '#activity' is vocal activity without pitch (JamendoLyrics' line
alignment: start_time, end_time, text per sung line), read by `read_activity`, never as f0.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from noisymss.audio.pitch import midi_to_hz

HOP = 0.01  # seconds: the project's f0 frame hop (JDC and mir_eval's 10 ms convention)
BACH10_FIRST_FRAME = 0.023
# .pv pitch files: one MIDI number per line; their frame times are the dataset's convention,
# named after the '#': (hop in seconds, centre of frame 0)
PV_TIMING = {"mir1k": (0.02, 0.02), "ikala": (0.032, 0.016)}


class AnnotationError(ValueError):
    """An annotation that cannot be used; the message names the file and what to do."""


def read_f0(reference: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Reads an annotation.

    Returns:
        times (N,) seconds, increasing; f0 (N,) Hz with 0 = unvoiced.
    """
    base, _, part = str(reference).partition("#")
    path = Path(base)
    if part == "activity":
        raise AnnotationError(f"{path}: vocal activity without pitch; use this song unlabelled, or give it an f0 file")
    if not path.is_file():
        raise AnnotationError(f"{path}: annotation file not found")
    if path.suffix.lower() == ".mat":
        times, f0 = _read_gtf0s(path, int(part or 0))
    elif path.suffix.lower() == ".pv":
        times, f0 = _read_pv(path, part)
    elif path.name.endswith(".f0.Corrected"):
        times, f0 = _read_columns(path, value=3)
    else:
        times, f0 = _read_columns(path)
    if times.size and (not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0)):
        raise AnnotationError(f"{path}: times are not strictly increasing; sort the rows or fix the file")
    f0 = np.where(np.isfinite(f0) & (f0 > 0), f0, 0.0)
    return times, f0


def read_activity(reference: str | os.PathLike, hop: float = HOP) -> tuple[np.ndarray, np.ndarray]:
    """Vocal activity from a line alignment (CSV: start_time, end_time, ...; with or without a header)
    on a `hop` grid up to the last line's end.

    Returns:
        times (N,) seconds; active (N,) bool.
    """
    path = Path(str(reference).partition("#")[0])
    if not path.is_file():
        raise AnnotationError(f"{path}: annotation file not found")
    spans = []
    with open(path, newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.reader(f), start=1):
            try:
                spans.append((float(row[0]), float(row[1])))
            except (ValueError, IndexError):
                if spans:
                    raise AnnotationError(f"{path}:{n}: expected 'start_time,end_time,...'") from None
    times = np.arange(int(np.ceil(max((e for _, e in spans), default=0.0) / hop)) + 1) * hop
    active = np.zeros(len(times), bool)
    for start, end in spans:
        active |= (times >= start) & (times < end)
    return times, active


def write_f0(path: str | os.PathLike, times: np.ndarray, f0: np.ndarray) -> None:
    """Writes mir_eval two-column text (time, Hz), atomically."""
    from noisymss.atomic import atomic_write_text

    lines = "".join(f"{t:.3f}\t{f:.3f}\n" for t, f in zip(times, f0))
    atomic_write_text(path, lines)


def f0_on_grid(times: np.ndarray, f0: np.ndarray, start: float, frames: int, hop: float = HOP) -> np.ndarray:
    """Samples an annotation at t = start + k * hop (k < frames) by nearest frame.

    Frames farther than one source hop from any annotated time are unvoiced (0), so a grid
    that runs past the annotation's end reads silence, not the last note held forever.
    """
    grid = start + hop * np.arange(frames)
    if times.size == 0:
        return np.zeros(frames)
    idx = np.clip(np.searchsorted(times, grid), 1, len(times) - 1) if len(times) > 1 else np.zeros(frames, int)
    if len(times) > 1:
        left = idx - 1
        idx = np.where(np.abs(grid - times[left]) <= np.abs(times[idx] - grid), left, idx)
    src_hop = float(np.median(np.diff(times))) if len(times) > 1 else hop
    out = f0[idx].astype(np.float64)
    out[np.abs(times[idx] - grid) > max(src_hop, hop) * 1.01] = 0.0
    return out


def _read_columns(path: Path, value: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Time in the first column, Hz in column `value`."""
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, start=1):
            parts = line.replace(",", " ").split()
            if not parts or parts[0].startswith("#"):
                continue
            try:
                rows.append((float(parts[0]), float(parts[value])))
            except (ValueError, IndexError):
                if rows:  # a header is allowed only before the data
                    raise AnnotationError(f"{path}:{n}: expected 'time, Hz', got {line.strip()[:60]!r}") from None
    if not rows:
        raise AnnotationError(f"{path}: no (time, Hz) rows found; expected mir_eval two-column text")
    data = np.asarray(rows, dtype=np.float64)
    return data[:, 0], data[:, 1]


def _read_gtf0s(path: Path, part: int) -> tuple[np.ndarray, np.ndarray]:
    from scipy.io import loadmat

    try:
        midi = np.asarray(loadmat(path)["GTF0s"], dtype=np.float64)
    except Exception as err:
        raise AnnotationError(f"{path}: not a Bach10 GTF0s .mat file ({err})") from None
    if not 0 <= part < midi.shape[0]:
        raise AnnotationError(f"{path}: part #{part} out of range; the file has parts 0..{midi.shape[0] - 1}")
    times = BACH10_FIRST_FRAME + HOP * np.arange(midi.shape[1])
    return times, midi_to_hz(midi[part])


def _read_pv(path: Path, timing: str) -> tuple[np.ndarray, np.ndarray]:
    if timing not in PV_TIMING:
        raise AnnotationError(f"{path}#{timing}: a .pv file needs its dataset's frame timing after '#': "
                              f"one of {', '.join(PV_TIMING)}")
    hop, first = PV_TIMING[timing]
    try:
        midi = np.loadtxt(path, dtype=np.float64, ndmin=1)
    except ValueError as err:
        raise AnnotationError(f"{path}: expected one MIDI number per line ({err})") from None
    f0 = np.where(midi > 0, midi_to_hz(np.maximum(midi, 1e-9)), 0.0)
    return first + hop * np.arange(len(midi)), f0
