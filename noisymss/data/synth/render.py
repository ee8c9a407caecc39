"""Render note lists through a General MIDI SoundFont with tinysoundfont, on a 10 ms grid.

Note events and pitch-bend updates happen on 10 ms block boundaries, so the f0 written for
frame k (t = k * 10 ms) is exactly the pitch the synthesiser played during that block.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from noisymss.audio.pitch import midi_to_hz
from noisymss.data.synth.score import Note

PITCH_BEND_RANGE = 2.0  # semitones either way (the GM default, set explicitly)


def default_soundfont() -> Path:
    """TimGM6mb.sf2, the small GM SoundFont shipped inside the pretty_midi wheel."""
    import importlib.util

    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("pretty_midi is not installed: `pip install pretty_midi`, or pass --soundfont FILE.sf2")
    path = Path(spec.origin).parent / "TimGM6mb.sf2"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: SoundFont missing from pretty_midi; pass --soundfont FILE.sf2")
    return path


@dataclass
class Vibrato:
    """Pitch-bend vibrato: depth in semitones, rate in Hz, fading in after `delay` seconds of a note."""

    depth: float = 0.25
    rate: float = 5.5
    delay: float = 0.15
    fade: float = 0.3

    def bend(self, t_in_note: np.ndarray, phase: float) -> np.ndarray:
        ramp = np.clip((t_in_note - self.delay) / self.fade, 0.0, 1.0)
        return self.depth * ramp * np.sin(2 * np.pi * self.rate * t_in_note + phase)


@dataclass
class Track:
    """One instrument: notes on one MIDI channel with a GM program (drums: the GM kit)."""

    notes: list[Note]
    program: int = 0
    is_drums: bool = False
    pan: int = 64  # 0 = left, 127 = right
    vibrato: Vibrato | None = None
    vibrato_phases: list[float] = field(default_factory=list)  # one per note; random draws by the caller


def render(tracks: list[Track], seconds: float, soundfont: str | os.PathLike, sample_rate: int = 44100,
           f0_track: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Renders tracks together into one stereo stem.

    Args:
        tracks: at most 15 melodic tracks (channel 9 is kept for drums).
        seconds: output length.
        f0_track: index of a monophonic track whose sounding pitch (with vibrato) to return.

    Returns:
        audio (2, samples) float32; f0 (frames,) in Hz (0 = no note) at 10 ms, or None.
    """
    import tinysoundfont

    block = sample_rate // 100
    frames = int(round(seconds * 100))
    synth = tinysoundfont.Synth(samplerate=sample_rate)
    sfid = synth.sfload(str(soundfont))
    events: list[list[tuple]] = [[] for _ in range(frames + 1)]
    bends = np.zeros((len(tracks), frames))
    sounding = np.zeros((len(tracks), frames))  # MIDI pitch of the note held in each frame, 0 = none
    for ch, track in enumerate(tracks):
        chan = 9 if track.is_drums else (ch if ch < 9 else ch + 1)
        synth.program_select(chan, sfid, 0, track.program, is_drums=track.is_drums)
        synth.control_change(chan, 10, track.pan)
        synth.pitchbend_range(chan, PITCH_BEND_RANGE)
        for i, note in enumerate(track.notes):
            on, off = int(round(note.start * 100)), int(round(note.end * 100))
            if on >= frames or off <= on:
                continue
            off = min(off, frames)
            events[off].append((0, chan, note.pitch, 0))  # note-offs sort before note-ons in a frame
            events[on].append((1, chan, note.pitch, note.velocity))
            sounding[ch, on:off] = note.pitch
            if track.vibrato is not None:
                t = np.arange(off - on) / 100.0
                phase = track.vibrato_phases[i] if i < len(track.vibrato_phases) else 0.0
                bends[ch, on:off] = track.vibrato.bend(t, phase)
    # Quantise bends to the 14-bit wheel so the f0 truth is what the synthesiser really played.
    wheel = np.clip(np.round(8192 + bends / PITCH_BEND_RANGE * 8192), 0, 16383).astype(int)
    played = (wheel - 8192) / 8192 * PITCH_BEND_RANGE
    has_vibrato = [t.vibrato is not None for t in tracks]
    channels = [9 if t.is_drums else (c if c < 9 else c + 1) for c, t in enumerate(tracks)]

    out = np.empty((frames * block, 2), dtype=np.float32)
    for k in range(frames):
        for kind, chan, pitch, velocity in sorted(events[k]):
            if kind == 0:
                synth.noteoff(chan, pitch)
            else:
                synth.noteon(chan, pitch, velocity)
        for ch, chan in enumerate(channels):
            if has_vibrato[ch] and (k == 0 or wheel[ch, k] != wheel[ch, k - 1]):
                synth.pitchbend(chan, int(wheel[ch, k]))
        out[k * block:(k + 1) * block] = np.frombuffer(synth.generate(block), dtype=np.float32).reshape(block, 2)
    audio = np.ascontiguousarray(out.T)
    if f0_track is None:
        return audio, None
    midi = sounding[f0_track] + played[f0_track]
    f0 = np.where(sounding[f0_track] > 0, midi_to_hz(midi), 0.0)
    return audio, f0
