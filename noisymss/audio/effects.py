"""Random audio effects behind the project's own interface (pedalboard inside).

Audio is NumPy float32 of shape (channels, samples), in and out. pedalboard (GPL-3.0) is
used only inside this module, so the rest of the package never sees it.

Randomness: every effect draws from the ``np.random.Generator`` it is given. Each effect
first draws its on/off decision (one ``rng.random()``, always, even for p = 0 or 1), then
its parameters only when on. So the same rng state gives the same output, and an effect
that is on draws the same parameters whatever its ``p`` (raising p only turns more on).

In place: ``apply(..., inplace=True)`` lets a chain work in the caller's buffer. NumPy effects
(gain, channel swap, polarity) then change it where it is, and a stem that no effect touches is
not copied at all; pedalboard effects still return new arrays. A loader that mixes several 6 s
stems per example otherwise spends as long copying them as these effects take.

Annotations: ``apply`` returns ``(audio, EffectLog)``. The log says how pitch and time were
changed (only PitchShift and TimeStretch change them) so a caller can move a melody f0
annotation along; ``__call__`` returns the audio only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
import pedalboard

__all__ = [
    "EffectLog", "Effect", "Chain", "Gain", "ChannelSwap", "Polarity", "Equalizer",
    "Compressor", "Reverb", "Chorus", "Phaser", "Distortion", "PitchShift", "TimeStretch",
]

Params = dict[str, Any]
_ZERO = np.float32(0.0)


@dataclass(frozen=True)
class EffectLog:
    """What a chain did to pitch and time.

    Attributes:
        semitones: total pitch shift; f0 is multiplied by ``2 ** (semitones / 12)``.
        time_rate: speed factor; content at input time ``t`` is at output time ``t / rate``.
    """

    semitones: float = 0.0
    time_rate: float = 1.0

    def then(self, other: EffectLog) -> EffectLog:
        """Log of this change followed by ``other``."""
        return EffectLog(self.semitones + other.semitones, self.time_rate * other.time_rate)

    def map_f0(self, times_s: np.ndarray, f0_hz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(frames,) times and f0 of the input -> the same on the output (0 Hz stays 0).

        Times past the audio's end are the caller's to drop (TimeStretch keeps the length).
        """
        return times_s / self.time_rate, f0_hz * 2.0 ** (self.semitones / 12.0)


def _board(plugins: list, audio: np.ndarray, sample_rate: float) -> np.ndarray:
    """Run plugins as one fresh pedalboard (state reset), (C, T) -> (C, T)."""
    if not plugins:
        return audio
    return pedalboard.Pedalboard(plugins)(np.ascontiguousarray(audio), sample_rate, reset=True)


def _clamp_hz(freq: float, sample_rate: float) -> float:
    """Keep a filter frequency below Nyquist (0.45 * sample_rate)."""
    return float(min(freq, 0.45 * sample_rate))


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(math.exp(rng.uniform(math.log(bounds[0]), math.log(bounds[1]))))


def _fit_length(audio: np.ndarray, n: int) -> np.ndarray:
    """Crop or zero-pad (at the end) to ``n`` samples."""
    if audio.shape[-1] >= n:
        return audio[..., :n]
    return np.pad(audio, ((0, 0), (0, n - audio.shape[-1])))


class Effect:
    """Base class: a randomly parameterised effect applied with probability ``p``.

    Subclasses are dataclasses whose first field is ``p`` (then plain-typed parameter
    ranges, so configs can build them). They implement ``_sample`` (parameters) and either
    ``_plugins`` (pedalboard plugins, batched by Chain into one call) or ``_process``
    (NumPy). The base is not a dataclass so jsonargparse accepts subclasses for ``Effect``.
    """

    p: float = 1.0

    @property
    def name(self) -> str:
        return type(self).__name__

    def draw(self, rng: np.random.Generator, sample_rate: int) -> Params | None:
        """On/off first (one draw), then the parameters; None when off."""
        if rng.random() >= self.p:
            return None
        return self._sample(rng, sample_rate)

    def _sample(self, rng: np.random.Generator, sample_rate: int) -> Params:
        return {}

    def _plugins(self, params: Params, sample_rate: int) -> list | None:
        return None

    def _process(self, audio: np.ndarray, sample_rate: int, params: Params) -> np.ndarray:
        """NumPy effects: the result, which may be `audio` changed in place (the chain owns it)."""
        raise NotImplementedError

    def _log(self, params: Params) -> EffectLog:
        return EffectLog()

    def apply(self, audio: np.ndarray, sample_rate: int, rng: np.random.Generator,
              inplace: bool = False) -> tuple[np.ndarray, EffectLog]:
        """Apply with probability p. audio: (C, T) -> ((C, T) float32, EffectLog); see `Chain.apply`."""
        return Chain([self]).apply(audio, sample_rate, rng, inplace)

    def __call__(self, audio: np.ndarray, sample_rate: int,
                 rng: np.random.Generator) -> np.ndarray:
        """Apply with probability p. audio: (C, T) -> (C, T) float32."""
        return self.apply(audio, sample_rate, rng)[0]


class Chain:
    """Effects applied in order, each switched on with its own ``p``.

    Consecutive pedalboard-backed effects run as one pedalboard call.

    Args:
        effects: the effects, in order.
    """

    def __init__(self, effects: list[Effect]):
        self.effects = list(effects)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.effects!r})"

    def _steps(self, rng: np.random.Generator, sample_rate: int) -> list[tuple[Effect, Params]]:
        steps = [(e, e.draw(rng, sample_rate)) for e in self.effects]
        return [(e, params) for e, params in steps if params is not None]

    def draw(self, rng: np.random.Generator, sample_rate: int) -> list[tuple[str, Params]]:
        """(name, params) of the effects that would be applied, consuming ``rng`` as apply."""
        return [(e.name, params) for e, params in self._steps(rng, sample_rate)]

    def apply(self, audio: np.ndarray, sample_rate: int, rng: np.random.Generator,
              inplace: bool = False) -> tuple[np.ndarray, EffectLog]:
        """audio: (C, T) -> ((C, T) float32, EffectLog).

        Args:
            inplace: `audio` may be overwritten, and is itself returned when every effect that
                fires works in place (none, or only NumPy ones); else the input is not modified.
                Needs a writeable C-contiguous float32 array (anything else is copied first).
        """
        owned = (inplace and isinstance(audio, np.ndarray) and audio.dtype == np.float32
                 and audio.flags.c_contiguous and audio.flags.writeable)
        x = audio if owned else np.array(audio, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"audio must be (channels, samples), got shape {x.shape}")
        log, pending = EffectLog(), []
        for effect, params in self._steps(rng, sample_rate):
            plugins = effect._plugins(params, sample_rate)
            if plugins is None:
                x, pending = _board(pending, x, sample_rate), []
                x = effect._process(x, sample_rate, params)
            else:
                pending += plugins
            log = log.then(effect._log(params))
        x = _board(pending, x, sample_rate)
        return np.ascontiguousarray(x, dtype=np.float32), log

    def __call__(self, audio: np.ndarray, sample_rate: int,
                 rng: np.random.Generator) -> np.ndarray:
        """audio: (C, T) -> (C, T) float32."""
        return self.apply(audio, sample_rate, rng)[0]


# ----------------------------------------------------------------- general effects

@dataclass
class _Uniform(Effect):
    """Base: each range field feeds the pedalboard plugin keyword of the same name.

    Fields are drawn U(lo, hi); those named in ``_log_hz`` log-uniform, below Nyquist.
    """

    _plugin: ClassVar[str] = ""
    _extra: ClassVar[dict[str, float]] = {}
    _log_hz: ClassVar[tuple[str, ...]] = ()

    def _sample(self, rng, sample_rate):
        draw = lambda k, b: (_clamp_hz(_log_uniform(rng, b), sample_rate)  # noqa: E731
                             if k in self._log_hz else _uniform(rng, b))
        return {f.name: draw(f.name, getattr(self, f.name)) for f in fields(self)[1:]}

    def _plugins(self, params, sample_rate):
        return [getattr(pedalboard, self._plugin)(**params, **self._extra)]


@dataclass
class Gain(Effect):
    """Gain by U(db) decibels."""

    p: float = 1.0
    db: tuple[float, float] = (-6.0, 6.0)

    def _sample(self, rng, sample_rate):
        return {"db": _uniform(rng, self.db)}

    def _process(self, audio, sample_rate, params):
        return np.multiply(audio, np.float32(10.0 ** (params["db"] / 20.0)), out=audio)


@dataclass
class ChannelSwap(Effect):
    """Reverse the channel order (left <-> right); a no-op for mono."""

    p: float = 0.5

    def _process(self, audio, sample_rate, params):
        # Row by row in place (one row's copy); a reversed view would cost a whole copy later.
        for top in range(audio.shape[0] // 2):
            bottom = audio.shape[0] - 1 - top
            row = audio[top].copy()
            audio[top] = audio[bottom]
            audio[bottom] = row
        return audio


@dataclass
class Polarity(Effect):
    """Invert the polarity (multiply by -1)."""

    p: float = 0.5

    def _process(self, audio, sample_rate, params):
        # 0 - x rather than -x: the same for every other sample, but silence stays +0.0, so
        # a stem left in its buffer still sums exactly as `zeros + stem` (see data.mixer).
        return np.subtract(_ZERO, audio, out=audio)


@dataclass
class Equalizer(Effect):
    """A peaking filter plus low and high shelves; frequencies log-uniform, below Nyquist."""

    p: float = 0.5
    peak_hz: tuple[float, float] = (100.0, 8000.0)
    peak_db: tuple[float, float] = (-9.0, 9.0)
    peak_q: tuple[float, float] = (0.5, 2.0)
    low_shelf_hz: tuple[float, float] = (60.0, 300.0)
    high_shelf_hz: tuple[float, float] = (2000.0, 8000.0)
    shelf_db: tuple[float, float] = (-6.0, 6.0)

    def _sample(self, rng, sample_rate):
        hz = lambda bounds: _clamp_hz(_log_uniform(rng, bounds), sample_rate)  # noqa: E731
        return {"peak_hz": hz(self.peak_hz), "peak_db": _uniform(rng, self.peak_db),
                "peak_q": _uniform(rng, self.peak_q), "low_hz": hz(self.low_shelf_hz),
                "low_db": _uniform(rng, self.shelf_db), "high_hz": hz(self.high_shelf_hz),
                "high_db": _uniform(rng, self.shelf_db)}

    def _plugins(self, params, sample_rate):
        return [pedalboard.PeakFilter(params["peak_hz"], params["peak_db"], params["peak_q"]),
                pedalboard.LowShelfFilter(params["low_hz"], params["low_db"]),
                pedalboard.HighShelfFilter(params["high_hz"], params["high_db"])]


@dataclass
class Compressor(_Uniform):
    """Dynamic range compressor (no make-up gain)."""

    p: float = 0.3
    threshold_db: tuple[float, float] = (-30.0, -10.0)
    ratio: tuple[float, float] = (1.5, 6.0)
    attack_ms: tuple[float, float] = (1.0, 20.0)
    release_ms: tuple[float, float] = (50.0, 300.0)
    _plugin: ClassVar[str] = "Compressor"


@dataclass
class Reverb(_Uniform):
    """Freeverb room reverb added to the dry signal (unity); the tail is cut at the end."""

    p: float = 0.3
    room_size: tuple[float, float] = (0.1, 0.8)
    damping: tuple[float, float] = (0.2, 0.8)
    wet_level: tuple[float, float] = (0.05, 0.3)
    _plugin: ClassVar[str] = "Reverb"
    _extra: ClassVar[dict[str, float]] = {"dry_level": 0.5}  # JUCE scales dry by 2


@dataclass
class Chorus(_Uniform):
    """Chorus (modulated delay with feedback)."""

    p: float = 0.2
    rate_hz: tuple[float, float] = (0.5, 3.0)
    depth: tuple[float, float] = (0.1, 0.5)
    centre_delay_ms: tuple[float, float] = (5.0, 15.0)
    feedback: tuple[float, float] = (0.0, 0.3)
    mix: tuple[float, float] = (0.2, 0.5)
    _plugin: ClassVar[str] = "Chorus"


@dataclass
class Phaser(_Uniform):
    """Phaser (swept all-pass stages); centre log-uniform, below Nyquist."""

    p: float = 0.2
    rate_hz: tuple[float, float] = (0.2, 2.0)
    depth: tuple[float, float] = (0.3, 0.8)
    centre_frequency_hz: tuple[float, float] = (400.0, 2500.0)
    feedback: tuple[float, float] = (0.0, 0.5)
    mix: tuple[float, float] = (0.3, 0.6)
    _plugin: ClassVar[str] = "Phaser"
    _log_hz: ClassVar[tuple[str, ...]] = ("centre_frequency_hz",)


@dataclass
class Distortion(_Uniform):
    """tanh waveshaper after a drive of U(drive_db) dB."""

    p: float = 0.2
    drive_db: tuple[float, float] = (3.0, 15.0)
    _plugin: ClassVar[str] = "Distortion"


@dataclass
class PitchShift(_Uniform):
    """Pitch shift by U(semitones), same duration; expensive. Logged as ``semitones``."""

    p: float = 0.05
    semitones: tuple[float, float] = (-2.0, 2.0)
    _plugin: ClassVar[str] = "PitchShift"

    def _log(self, params):
        return EffectLog(semitones=params["semitones"])


@dataclass
class TimeStretch(_Uniform):
    """Speed change by U(rate) (> 1 is faster), pitch kept; expensive. Logged as ``time_rate``.

    The output is cropped or zero-padded at the end to the input length.
    """

    p: float = 0.05
    rate: tuple[float, float] = (0.9, 1.1)

    def _plugins(self, params, sample_rate):
        return None

    def _process(self, audio, sample_rate, params):
        out = pedalboard.time_stretch(np.ascontiguousarray(audio), float(sample_rate),
                                      stretch_factor=params["rate"])
        return _fit_length(out, audio.shape[-1])

    def _log(self, params):
        return EffectLog(time_rate=params["rate"])
