"""Bach chorales from music21's bundled corpus as timed note lists, plus a drum part at their tempo."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# Chorales that Bach10 also records: left out of the demo corpus by default so Bach10 stays a
# clean test set (its ten recordings are chorales that music21's corpus also holds).
BACH10_CHORALES = frozenset(
    ["bwv48.3", "bwv255", "bwv256", "bwv62.6", "bwv274", "bwv275", "bwv296", "bwv297", "bwv326", "bwv327", "bwv364", "bwv385"]
)
VOICES = ("soprano", "alto", "tenor", "bass")


@dataclass(frozen=True)
class Note:
    """A note in seconds; `pitch` is a MIDI number."""

    start: float
    end: float
    pitch: int
    velocity: int = 90


@lru_cache(maxsize=1)
def chorale_names() -> tuple[str, ...]:
    """Every Bach work in music21's corpus stored as MusicXML, by file stem (e.g. 'bwv255'), sorted."""
    from music21 import corpus

    return tuple(sorted({p.stem for p in corpus.getComposer("bach") if p.suffix in (".mxl", ".xml")}))


def satb_parts(name: str) -> dict[str, list[tuple[float, float, int]]] | None:
    """The four voices of a chorale as (offset, length, pitch) in quarter notes; None unless it has exactly S, A, T, B."""
    from music21 import corpus

    score = corpus.parse(f"bach/{name}")
    parts = {}
    for part in score.parts:
        voice = (part.partName or "").strip().lower()
        if voice in VOICES and voice not in parts:
            notes = []
            for n in part.stripTies().flatten().notes:
                if n.isChord:  # chorale voices are monophonic; a rare divisi keeps its top note
                    n = max(n.notes, key=lambda x: x.pitch.midi)
                notes.append((float(n.offset), float(n.quarterLength), int(n.pitch.midi)))
            parts[voice] = notes
    return parts if len(parts) == 4 and all(parts.values()) else None


def timed_notes(
    notes: list[tuple[float, float, int]], seconds_per_quarter: float, total: float, rng: np.random.Generator,
    gap: float = 0.04,
) -> list[Note]:
    """Lays a voice out in seconds, repeating the chorale until `total` seconds are filled.

    Args:
        gap: silence before each note's end (seconds) so repeated pitches re-articulate.
    """
    length_q = max(o + d for o, d, _ in notes)
    out: list[Note] = []
    repeat = 0
    while True:
        shift = repeat * (length_q + 1.0) * seconds_per_quarter  # one beat of rest between repeats
        for offset, dur, pitch in notes:
            start = shift + offset * seconds_per_quarter
            if start >= total:
                return out
            end = min(start + max(dur * seconds_per_quarter - gap, 0.05), total)
            out.append(Note(start, end, pitch, int(rng.integers(75, 110))))
        repeat += 1


# Drum patterns over one 4/4 bar in sixteenths: GM kit notes (36 kick, 38 snare, 42 closed hat,
# 46 open hat, 51 ride, 37 side stick).
_PATTERNS = (
    {36: [0, 8], 38: [4, 12], 42: [0, 2, 4, 6, 8, 10, 12, 14]},
    {36: [0, 6, 8], 38: [4, 12], 42: list(range(16))},
    {36: [0, 10], 38: [8], 51: [0, 4, 8, 12]},
    {36: [0, 8], 37: [4, 12], 42: [0, 4, 8, 12], 46: [14]},
)


def drum_notes(seconds_per_quarter: float, total: float, rng: np.random.Generator) -> list[Note]:
    """A generated groove at the chorale's tempo: one of a few patterns, ghost notes and fills varied per bar."""
    pattern = _PATTERNS[int(rng.integers(len(_PATTERNS)))]
    sixteenth = seconds_per_quarter / 4
    notes: list[Note] = []
    bar = 0
    while bar * 16 * sixteenth < total:
        fill = bar % 4 == 3 and rng.random() < 0.5
        hits = {k: list(v) for k, v in pattern.items()}
        if fill:  # a snare/tom run over the last beat of a phrase
            for step in (12, 13, 14, 15):
                hits.setdefault(int(rng.choice([38, 45, 47, 50])), []).append(step)
        for key, steps in hits.items():
            for step in steps:
                t = (bar * 16 + step) * sixteenth + rng.normal(0, 0.004)  # slight human timing
                if 0 <= t < total:
                    velocity = int(np.clip(rng.normal(95 if step % 4 == 0 else 75, 10), 30, 127))
                    notes.append(Note(t, min(t + 0.1, total), key, velocity))
        if rng.random() < 0.3:  # ghost snare
            t = (bar * 16 + int(rng.integers(16))) * sixteenth
            if t < total:
                notes.append(Note(t, min(t + 0.08, total), 38, 35))
        bar += 1
    return sorted(notes, key=lambda n: n.start)
