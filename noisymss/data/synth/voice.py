"""A singing-voice synthesiser for the demo corpus: a source-filter model with an exact f0 truth.

GM "Voice Oohs" is one sampled vowel; real singing moves its formants with the words, has
consonants, breath, vibrato and glides. The signal path here (mono, panned at the end):

    pitch contour at 1 kHz (notes, portamento, scoops, overshoot, vibrato, drift)
      -> phase accumulator with per-period jitter -> band-limited pulse train (closed-form sum of
         cosines up to Nyquist, so nothing aliases) with per-period shimmer -> integrator (1/k harmonics)
      + aspiration noise gated by the glottal cycle, all times the note envelopes
      -> one filter cascade, its coefficients renewed every 1-5 ms (faster while formants move) and
         continued in direct form I: singer's formant, five vowel formants, higher poles, spectral tilt
      -> gentle compression, as on produced vocals
      + unvoiced consonants and breaths, placed where the voicing is off.

The f0 truth is the pitch contour at the frame times wherever the voicing gate is at least
-20 dB, else 0; the audio plays exactly that contour apart from the jitter (a fraction of a percent).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, lfilter, sosfilt

from noisymss.audio.pitch import midi_to_hz
from noisymss.data.synth.score import Note

_CTRL = 1000  # control rate (Hz) of the pitch and loudness contours; frame k is control sample 10 k
_HOP = 0.005  # the vocal-tract filter holds its coefficients for 5 ms at most (less while formants move)
_VOWELS = "aeiou"
# Sung-vowel formants F1-F5 and bandwidths (Hz), rows a e i o u: the tenor and soprano tables of the
# Csound manual's "Formant Values" appendix. The tenor's F3-F5 already cluster near 2.6-3.3 kHz.
_MALE = np.array([
    [[650, 1080, 2650, 2900, 3250], [80, 90, 120, 130, 140]],
    [[400, 1700, 2600, 3200, 3580], [70, 80, 100, 120, 120]],
    [[290, 1870, 2800, 3250, 3540], [40, 90, 100, 120, 120]],
    [[400, 800, 2600, 2800, 3000], [40, 80, 100, 120, 120]],
    [[350, 600, 2700, 2900, 3300], [40, 60, 100, 120, 120]],
], dtype=float)
_FEMALE = np.array([
    [[800, 1150, 2900, 3900, 4950], [80, 90, 120, 130, 140]],
    [[350, 2000, 2800, 3600, 4950], [60, 100, 120, 150, 200]],
    [[270, 2140, 2950, 3900, 4950], [60, 90, 100, 120, 120]],
    [[450, 800, 2830, 3800, 4950], [70, 80, 100, 130, 135]],
    [[325, 700, 2700, 3800, 4950], [50, 60, 170, 180, 200]],
], dtype=float)
# The table's bandwidths are for a parallel (FOF) bank. In this cascade (with the higher poles) its
# F3-F5 stack to an operatic tenor's singer's-formant cluster, whose period a plain YIN tracker takes
# for the voice's (a neighbouring dip, a semitone off). So F3-F5 are widened x8 into one broad hump
# 15-40 dB under F1, closer to non-classical singing; the ring proper is the separate peaking EQ.
# F1/F2 get x1.5: sung F1 bandwidths are ~60-120 Hz, and the table's 40 Hz lets one harmonic dominate.
_WIDEN = np.array([1.5, 1.5, 8.0, 8.0, 8.0])
# Unvoiced sounds as band-passed noise: (low Hz, high Hz, length range s, level dB re the sung vowel,
# range of the silent closure before it, s). Bands follow the usual spectra: /s/ above ~4 kHz, /sh/ from ~2 kHz,
# /f/ flat and weak; plosive bursts are short (/t/ high, /k/ mid, /p/ low) after a silent closure.
_NOISES = {
    "s": (4000, 10000, (0.06, 0.12), -14, (0.0, 0.02)),
    "sh": (2000, 6000, (0.06, 0.12), -14, (0.0, 0.02)),
    "f": (1000, 9000, (0.05, 0.10), -24, (0.0, 0.02)),
    "h": (400, 4000, (0.04, 0.08), -22, (0.0, 0.01)),
    "t": (3000, 8000, (0.012, 0.025), -10, (0.03, 0.06)),
    "k": (1500, 4000, (0.015, 0.03), -10, (0.03, 0.06)),
    "p": (500, 2500, (0.01, 0.02), -14, (0.03, 0.06)),
    "breath": (400, 6000, (0.2, 0.4), -30, (0.0, 0.0)),
}
_ONSETS = ("s", "sh", "f", "h", "t", "k", "p")


@dataclass(frozen=True)
class Singer:
    """One singer's voice; `draw` picks it at random, so every song can have a different singer."""

    male: bool
    formant_scale: float  # vocal-tract length relative to the table (adults differ by roughly +-8%)
    bandwidth_scale: float  # formant bandwidths relative to the table
    tilt_hz: float  # corner of the extra source roll-off: low = dark/soft, high = bright/pressed
    breathiness: float  # aspiration noise relative to the glottal pulse train
    jitter: float  # sd of the per-period f0 perturbation, as a fraction
    shimmer: float  # sd of the per-period amplitude perturbation, as a fraction
    vibrato_rate: float  # Hz, mean over notes
    vibrato_cents: float  # peak deviation, mean over notes
    drift_cents: float  # slow intonation wander
    ring_hz: float  # singer's formant centre
    ring_db: float  # singer's formant boost
    legato: float  # chance that a note following closely is slurred rather than re-articulated
    scoop: float  # chance that a re-articulated note is approached from below
    articulation: float  # seconds a vowel change takes

    @classmethod
    def draw(cls, rng: np.random.Generator, male: bool | None = None) -> Singer:
        male = bool(rng.random() < 0.5) if male is None else male
        return cls(
            male=male,
            formant_scale=float(rng.uniform(0.92, 1.08)),
            bandwidth_scale=float(rng.uniform(1.0, 1.5)),
            tilt_hz=float(rng.uniform(1500, 4000)),
            breathiness=float(rng.uniform(0.03, 0.12) * (1.0 if male else 1.6)),  # women's voices are breathier
            jitter=float(rng.uniform(0.002, 0.006)),  # sung jitter is well below 1 %
            shimmer=float(rng.uniform(0.02, 0.08)),  # about 0.2-0.7 dB
            vibrato_rate=float(rng.uniform(4.8, 6.2)),
            vibrato_cents=float(rng.uniform(25, 55)),
            drift_cents=float(rng.uniform(3, 12)),
            # Sundberg's singer's formant: ~2.8 kHz, stronger in trained male voices than in sopranos
            ring_hz=float(rng.uniform(2500, 3200)),
            ring_db=float(rng.uniform(0, 6) if male else rng.uniform(0, 3)),
            legato=float(rng.uniform(0.4, 0.9)),
            scoop=float(rng.uniform(0.2, 0.7)),
            articulation=float(rng.uniform(0.05, 0.12)),
        )


def sing(notes: list[Note], seconds: float, sample_rate: int, rng: np.random.Generator, pan: int = 64,
         singer: Singer | None = None, vowels: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sings a monophonic line, one syllable per note (sometimes a melisma), with its exact f0.

    Args:
        notes: the line; a male singer sings it an octave lower, as men do with a soprano tune.
        seconds: output length; frames = round(seconds * 100), samples = frames * (sample_rate // 100).
        rng: every random choice (singer, syllables, contour, noise); same seed, same output.
        pan: 0 = left, 127 = right, as in a MIDI pan controller.
        singer: the voice; drawn from `rng` when None.
        vowels: the vowel of each syllable in turn from "aeiou" (repeated); random when None.

    Returns:
        audio (2, samples) float32, the voice at peak 0.5, panned;
        f0 (frames,) in Hz at t = k * 10 ms, 0 = unvoiced.
    """
    if vowels is not None and (not vowels or set(vowels) - set(_VOWELS)):
        raise ValueError(f"vowels {vowels!r}: give letters from {_VOWELS!r}")
    singer = singer or Singer.draw(rng)
    frames = int(round(seconds * 100))
    n = frames * (sample_rate // 100)
    notes = [x for x in sorted(notes, key=lambda x: x.start) if x.start < seconds and min(x.end, seconds) > x.start]
    if not notes:
        return np.zeros((2, n), np.float32), np.zeros(frames)
    on, off, legato, vowel, dip, events = _syllables(notes, seconds, singer, rng, vowels)
    t = np.arange(frames * 10 + 1) / _CTRL
    semis, level, gate = _contours(notes, on, off, legato, dip, singer, rng, t)
    f0c = midi_to_hz(semis)  # semis are sung MIDI pitches, all above 0
    f0 = np.where(gate[:-1:10] >= 0.1, f0c[:-1:10], 0.0)  # voiced: the folds vibrate at >= -20 dB

    ts = np.arange(n) / sample_rate
    source = _source(np.interp(ts, t, f0c), sample_rate, singer, rng)
    source *= np.interp(ts, t, gate * 10 ** (level / 20))
    y = _vocal_tract(source, t, f0c, level, on, vowel, singer, sample_rate)
    loud = np.interp(ts, t, gate) > 0.5
    y = _compress(y, loud, sample_rate)
    ref = np.sqrt(np.mean(y[loud] ** 2)) if loud.any() else 1.0
    for kind, start, dur in events:
        y += _noise(kind, start, dur, ref, n, sample_rate, rng)
    y *= 0.5 / max(np.abs(y).max(), 1e-9)
    angle = np.clip(pan, 0, 127) / 127 * np.pi / 2  # constant-power pan
    return np.stack([np.cos(angle) * y, np.sin(angle) * y]).astype(np.float32), f0


def _syllables(notes, seconds, singer, rng, vowels):
    """Voicing spans, slurs, vowels, voiced-consonant dips and the unvoiced events between notes."""
    on = np.array([x.start for x in notes])
    off = np.array([min(x.end, seconds) for x in notes])
    off[:-1] = np.minimum(off[:-1], on[1:])  # one voice: a note ends where the next begins
    legato, vowel, dip = np.zeros(len(notes), bool), np.zeros(len(notes), int), np.zeros(len(notes))
    events, syllable = [], -1
    for i in range(len(notes)):
        prev_off = off[i - 1] if i else 0.0
        legato[i] = i > 0 and on[i] - prev_off < 0.1 and rng.random() < singer.legato
        if legato[i]:
            off[i - 1] = on[i]  # slurred: the voicing runs on into this note
            if rng.random() < 0.3:  # melisma: the same syllable carries on
                vowel[i] = vowel[i - 1]
                continue
        syllable += 1
        vowel[i] = _VOWELS.index(vowels[syllable % len(vowels)]) if vowels else rng.integers(len(_VOWELS))
        if legato[i]:
            dip[i] = rng.uniform(0.4, 0.8) if rng.random() < 0.5 else 0.0  # a voiced l/m/n between vowels
            continue
        lead = on[i]  # where this syllable's sound begins
        if rng.random() < 0.7:
            kind = _ONSETS[rng.integers(len(_ONSETS))]
            _, _, durs, _, closures = _NOISES[kind]
            dur, closure = rng.uniform(*durs), rng.uniform(*closures)
            cut = on[i] - dur - closure
            # the consonant takes time from the previous note's tail, never more than 40 % of it
            if cut >= (on[i - 1] + 0.6 * (off[i - 1] - on[i - 1]) if i else 0.0):
                if i:
                    off[i - 1] = min(off[i - 1], cut)
                events.append((kind, on[i] - dur, dur))
                lead = cut
        rest = lead - (off[i - 1] if i else 0.0)
        if rest >= 0.4 and rng.random() < 0.5:  # an audible breath in a long rest
            dur = min(rng.uniform(*_NOISES["breath"][2]), rest - 0.15)
            events.append(("breath", lead - 0.05 - dur, dur))
    return on, off, legato, vowel, dip, events


def _contours(notes, on, off, legato, dip, singer, rng, t):
    """Pitch (MIDI, fractional), loudness (dB) and voicing gate (0-1) at the control rate."""
    m = len(t)
    at = lambda s: int(np.clip(round(s * _CTRL), 0, m))  # noqa: E731
    pitch, level = np.full(m, np.nan), np.full(m, np.nan)
    bend, depth, rate = np.zeros(m), np.zeros(m), np.full(m, singer.vibrato_rate)
    gate, dips = np.zeros(m), np.ones(m)
    middle = np.median([x.pitch for x in notes])
    octave = -12 if singer.male else 0
    for i, x in enumerate(notes):
        a, b = at(on[i]), at(off[i])
        if b <= a:
            continue
        tn = t[a:b] - on[i]
        pitch[a:b] = x.pitch + octave + rng.normal(0, 0.08)  # intonation: each note off by ~8 cents (sd)
        # velocity 75-110 spans about +-3 dB; singers get louder as they go up (~0.25 dB per semitone)
        level[a:b] = 3.0 * (x.velocity - 92) / 17 + 0.25 * (x.pitch - middle)
        delay, fade = rng.uniform(0.1, 0.35), rng.uniform(0.15, 0.4)  # vibrato settles in after the onset
        depth[a:b] = np.clip(singer.vibrato_cents * rng.uniform(0.8, 1.2), 20, 60) * np.clip((tn - delay) / fade, 0, 1)
        rate[a:b] = np.clip(singer.vibrato_rate + rng.normal(0, 0.3), 4.5, 6.5)
        if not legato[i] and rng.random() < singer.scoop:  # approach the note from below
            bend[a:b] -= rng.uniform(30, 120) * np.exp(-tn / rng.uniform(0.03, 0.07))
        if dip[i]:
            width = rng.uniform(0.04, 0.08)
            c, d = at(on[i] - width / 2), at(on[i] + width / 2)
            dips[c:d] *= 1 - dip[i] * np.sin(np.linspace(0, np.pi, d - c)) ** 2
    pitch, level = _fill(pitch), _fill(level)
    for i in np.flatnonzero(legato):  # portamento: a smooth glide, mostly before the beat
        a, e = at(on[i]), at(off[i])
        step = pitch[a] - pitch[a - 1]
        span = min(rng.uniform(0.04, 0.1) + 0.01 * abs(step), 0.4 * (off[i] - on[i]), 0.4 * (on[i] - on[i - 1]))
        start = on[i] + (rng.uniform(-0.5, 0.1) - 0.5) * span
        a, b = at(start), min(at(start + span), m - 1)
        if b - a < 2:
            continue
        low, high = pitch[a - 1], pitch[b]
        pitch[a:b] = low + (high - low) * _ramp((t[a:b] - start) / span)
        if step and rng.random() < 0.3:  # overshoot the target, then settle
            tau, x = rng.uniform(0.04, 0.08), t[b:e] - t[b]
            bend[b:e] += np.sign(step) * rng.uniform(10, 40) * (x / tau) * np.exp(1 - x / tau)
    starts = [i for i in range(len(notes)) if not legato[i]]
    for s, e in zip(starts, starts[1:] + [len(notes)]):  # one attack and one release per slurred run
        t0, t1 = on[s], off[e - 1]
        attack, release = min(rng.uniform(0.02, 0.08), (t1 - t0) / 3), min(rng.uniform(0.03, 0.1), (t1 - t0) / 3)
        a, b = at(t0), at(t1)
        gate[a:b] = _ramp((t[a:b] - t0) / attack) * _ramp((t1 - t[a:b]) / release)
    # vibrato runs on one continuous phase; its depth envelope is smoothed across note changes
    vibrato = _smooth(depth, 0.08 * _CTRL) * np.sin(2 * np.pi * np.cumsum(rate) / _CTRL + rng.uniform(0, 2 * np.pi))
    drift = sum(singer.drift_cents * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t + rng.uniform(0, 2 * np.pi))
                for _ in range(3)) / np.sqrt(3)
    swell = sum(1.5 * np.sin(2 * np.pi * rng.uniform(0.08, 0.25) * t + rng.uniform(0, 2 * np.pi)) for _ in range(2))
    level = _smooth(level, 0.03 * _CTRL) + swell + 20 * np.log10(np.maximum(dips, 1e-3))
    return pitch + (bend + vibrato + drift) / 100, level, gate


def _source(f: np.ndarray, sr: int, singer: Singer, rng: np.random.Generator) -> np.ndarray:
    """Glottal source at f (Hz per sample): harmonic k at amplitude 1/k up to Nyquist, plus aspiration."""
    period = (np.cumsum(f) / sr).astype(np.int64)
    jittered = f * (1.0 + rng.normal(0.0, singer.jitter, period[-1] + 2)[period])
    cycles = np.cumsum(jittered) / sr
    phi = 2 * np.pi * (cycles - np.floor(cycles))
    top = sr / (2 * jittered) - 1  # harmonics that fit below Nyquist; the last one fades in, so no clicks
    k = np.floor(top)
    half = np.sin(phi / 2)
    safe = np.abs(half) > 1e-9
    # sum_{j=1..k} cos(j phi) in closed form (the Dirichlet kernel), which is k at phi = 0
    pulses = np.where(safe, (np.sin((k + 0.5) * phi) / np.where(safe, half, 1.0) - 1) / 2, k)
    pulses += (top - k) * np.cos((k + 1) * phi)
    # shimmer: one gain per period, switching half-way between pulses where the train is near zero
    mid = np.floor(cycles + 0.5).astype(np.int64)
    pulses *= 1.0 + rng.normal(0.0, singer.shimmer, mid[-1] + 1)[mid]
    leak = np.exp(-2 * np.pi * 20.0 / sr)  # a leaky integrator (corner 20 Hz) turns the flat comb into 1/k
    glottal = lfilter([2 * np.pi / sr], [1.0, -leak], pulses) * f
    breath = rng.standard_normal(len(f)) * singer.breathiness * (0.2 + 0.8 * half**2)  # mostly in the open phase
    return glottal + breath


def _vocal_tract(source, t, f0c, level, on, vowel, singer, sr) -> np.ndarray:
    """Filters the source: singer's formant, vowel formants, higher poles, spectral tilt, all time-varying."""
    step = max(sr // 1000, 1)  # the filter's parameters are worked out every ~1 ms
    grid = np.arange(0, len(source), step)
    tg = (grid + step / 2) / sr
    vowels = _MALE if singer.male else _FEMALE
    table = vowels[vowel[np.clip(np.searchsorted(on, tg, "right") - 1, 0, None)]]
    table = _smooth(table, singer.articulation * sr / step)  # vowel changes glide over `articulation` seconds
    freqs, bws = table[:, 0] * singer.formant_scale, table[:, 1] * singer.bandwidth_scale * _WIDEN
    freqs[:, 0] = np.maximum(freqs[:, 0], 1.1 * np.interp(tg, t, f0c))  # high notes: F1 tuned above f0 (Sundberg)
    freqs[:, 1] = np.maximum(freqs[:, 1], freqs[:, 0] + 200)
    # louder singing is brighter: the tilt corner rises an octave per 6 dB (a rough voice-source rule)
    corner = np.clip(singer.tilt_hz * 2 ** (np.interp(tg, t, level) / 6), 500, 0.45 * sr)
    # Each coefficient change leaves a small transient, so a block ends after 5 ms, or sooner once a formant
    # has moved 2 % of its bandwidth (or a bandwidth or the tilt corner 2 %): ~1 ms steps in fast transitions.
    moved = np.abs(np.diff(freqs, axis=0) / bws[1:]).max(axis=1) + np.abs(np.diff(np.log(bws), axis=0)).max(axis=1)
    moved = np.maximum(moved, np.abs(np.diff(np.log(corner))))
    first = _block_starts(moved, limit=0.02, longest=int(round(_HOP * sr / step)))
    mid = (first + np.append(first[1:], len(grid))) // 2
    freqs, bws, corner = freqs[mid], bws[mid], corner[mid]
    # Higher poles up to Nyquist, spaced c/2L (~1.0 kHz for a ~17.5 cm tract, ~1.15 kHz for ~15 cm) as in a
    # uniform tube, bandwidth 6 % (losses grow with frequency): without them the cascade would lose
    # 12 dB per octave per formant above F5.
    spacing = (1000.0 if singer.male else 1150.0) * singer.formant_scale
    higher = np.arange(vowels[:, 0, 4].max() * singer.formant_scale + spacing, 0.45 * sr, spacing)
    freqs = np.minimum(np.concatenate([freqs, np.broadcast_to(higher, (len(freqs), len(higher)))], axis=1), 0.45 * sr)
    bws = np.concatenate([bws, np.broadcast_to(0.06 * higher, (len(bws), len(higher)))], axis=1)
    r = np.exp(-np.pi * bws / sr)
    c = -2 * r * np.cos(2 * np.pi * freqs / sr)
    res = np.zeros((len(first), freqs.shape[1], 6))
    res[:, :, 0], res[:, :, 3], res[:, :, 4], res[:, :, 5] = 1 + c + r**2, 1.0, c, r**2  # unity gain at DC
    pole = np.exp(-2 * np.pi * corner / sr)
    tilt = np.zeros((len(first), 1, 6))
    tilt[:, 0, 0], tilt[:, 0, 3], tilt[:, 0, 4] = 1 - pole, 1.0, -pole
    peak = np.broadcast_to(_peaking(min(singer.ring_hz, 0.4 * sr), singer.ring_db, 3.0, sr), (len(first), 1, 6))
    sos = np.concatenate([peak, res, tilt], axis=1)  # the tilt last: _cascade reads back all but the last section
    return _cascade(source, sos, grid[first])


def _block_starts(moved: np.ndarray, limit: float, longest: int) -> np.ndarray:
    """Grid steps that start a block: after `longest` steps, or once `moved` (per step) sums past `limit`."""
    starts, total = [0], 0.0
    for j, m in enumerate(moved.tolist(), start=1):
        total += m
        if total > limit or j - starts[-1] >= longest:
            starts.append(j)
            total = 0.0
    return np.array(starts)


def _cascade(x: np.ndarray, sos: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Runs an SOS cascade whose coefficients change at `starts`, continuing each section in direct form I.

    Carrying scipy's (transposed direct form II) state across a coefficient change makes a click per
    block, a buzz at the block rate that pitch trackers hear. Instead each section's last two inputs and
    outputs are carried, and the state the new coefficients need to continue from them is computed per
    block (direct form I still leaves a small transient, hence the short blocks in fast transitions).
    Every section but the last needs a2 != 0, so its output can be read back from its final state.
    """
    out = np.empty_like(x)
    past = np.zeros((sos.shape[1] + 1, 2))  # samples n-1, n of each section's input (row i) and output (row i+1)
    for b, (s, e) in enumerate(zip(starts, list(starts[1:]) + [len(x)])):
        co = sos[b]
        zi = np.stack([co[:, 1] * past[:-1, 1] - co[:, 4] * past[1:, 1] + co[:, 2] * past[:-1, 0] - co[:, 5] * past[1:, 0],
                       co[:, 2] * past[:-1, 1] - co[:, 5] * past[1:, 1]], axis=1)
        out[s:e], zf = sosfilt(co, x[s:e], zi=zi)
        if e - s < 2:
            break  # only the last block can be this short
        past[0], past[-1] = x[e - 2:e], out[e - 2:e]
        for i, (b0, b1, b2, _, a1, a2) in enumerate(co[:-1].tolist()):  # invert z1 = b2 x - a2 y, z0 = b1 x - a1 y + z1'
            now = (b2 * past[i, 1] - zf[i, 1]) / a2
            past[i + 1] = (b1 * past[i, 1] - a1 * now + b2 * past[i, 0] - zf[i, 0]) / a2, now
    return out


def _compress(y: np.ndarray, loud: np.ndarray, sr: int) -> np.ndarray:
    """Downward compression, 3:1 above the median sung level, as on produced vocals.

    It also evens out the level jumps between notes whose harmonics do or do not hit a formant.
    """
    hop = sr // 100
    frames = len(y) // hop
    if not frames or not loud.any():
        return y
    db = 10 * np.log10(np.mean(y[:frames * hop].reshape(frames, hop) ** 2, axis=1) + 1e-20)
    knee = np.median(db[loud[:frames * hop:hop]]) if loud[:frames * hop:hop].any() else db.max()
    gain_db = _smooth(-(1 - 1 / 3) * np.maximum(db - knee, 0.0), 5)  # over 50 ms, so it does not distort
    return y * 10 ** (np.interp(np.arange(len(y)), (np.arange(frames) + 0.5) * hop, gain_db) / 20)


def _noise(kind, start, dur, ref, n, sr, rng) -> np.ndarray:
    """One consonant or breath: band-passed noise at its level relative to the vowel RMS `ref`."""
    low, high, _, db, _ = _NOISES[kind]
    a, m = int(round(start * sr)), int(round(dur * sr))
    out = np.zeros(n)
    high = min(high, 0.45 * sr)
    if a < 0 or m < 16 or a + m > n or low >= high:
        return out
    burst = sosfilt(butter(2, [low, high], "bandpass", fs=sr, output="sos"), rng.standard_normal(m))
    plosive = kind in ("t", "k", "p")  # a burst that dies away; fricatives and breaths swell and fade
    shape = np.exp(-np.arange(m) / (m / 4)) if plosive else np.sin(np.linspace(0, np.pi, m))
    out[a:a + m] = burst / burst.std() * shape * ref * 10 ** (db / 20)
    return out


def _peaking(freq: float, gain_db: float, q: float, sr: int) -> np.ndarray:
    """A peaking-EQ biquad as one SOS row (the formulas of R. Bristow-Johnson's Audio EQ Cookbook)."""
    amp, w = 10 ** (gain_db / 40), 2 * np.pi * freq / sr
    alpha = np.sin(w) / (2 * q)
    b = np.array([1 + alpha * amp, -2 * np.cos(w), 1 - alpha * amp])
    a = np.array([1 + alpha / amp, -2 * np.cos(w), 1 - alpha / amp])
    return np.concatenate([b, a]) / a[0]


def _ramp(x: np.ndarray) -> np.ndarray:
    """A raised-cosine step: 0 at x <= 0, 1 at x >= 1."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


def _fill(x: np.ndarray) -> np.ndarray:
    """NaNs take the last value before them (the first value, before the first)."""
    ok = ~np.isnan(x)
    if not ok.any():
        return np.zeros_like(x)
    idx = np.maximum.accumulate(np.where(ok, np.arange(len(x)), int(np.argmax(ok))))
    return x[idx]


def _smooth(x: np.ndarray, width: float) -> np.ndarray:
    """Moving average along axis 0 over `width` samples, edges held."""
    k = max(int(round(width)), 1)
    padded = np.pad(x, [(k // 2, k - 1 - k // 2)] + [(0, 0)] * (x.ndim - 1), mode="edge")
    c = np.concatenate([np.zeros_like(padded[:1]), np.cumsum(padded, axis=0)])
    return (c[k:] - c[:-k]) / k
