"""RandAudioAugment (Kum et al., ISMIR 2020): the six SoX effects of the released code, on pedalboard.

Split from `effects` because each SoX effect needs its own mapping (formulas from SoX's C
sources); the general interface (Effect, Chain, EffectLog) lives there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pedalboard
from scipy.signal import lfilter

from noisymss.audio.effects import Chain, Effect, _board, _clamp_hz
from noisymss.audio.io import fit_length

__all__ = ["RandAudioAugment", "shelf_slope_to_q"]


def shelf_slope_to_q(gain_db: float, slope: float) -> float:
    """SoX/RBJ shelf slope S -> biquad Q: 1/Q = sqrt((A + 1/A)(1/S - 1) + 2), A = 10^(g/40)."""
    a = 10.0 ** (gain_db / 40.0)
    return float(1.0 / math.sqrt((a + 1.0 / a) * (1.0 / slope - 1.0) + 2.0))


def _signed_int(rng: np.random.Generator, high: int) -> int:
    """Magnitude U_int{0..high}, then a random sign."""
    magnitude = int(rng.integers(0, high + 1))
    return magnitude if rng.random() < 0.5 else -magnitude


@dataclass
class _Sox(Effect):
    """One of the six SoX effects; ``as_released`` reproduces the 44.1 kHz mislabel."""

    p: float = 0.5
    as_released: bool = False

    def _sox_rate(self, sample_rate: int) -> float:
        """The sample rate SoX believed the audio had."""
        return 44100.0 if self.as_released else float(sample_rate)


@dataclass
class _SoxFilter(_Sox):
    """SoX ``bass`` (lowshelf), ``treble`` (highshelf) or ``equalizer`` (peaking) biquad."""

    kind: str = "lowshelf"

    @property
    def name(self) -> str:
        return self.kind

    def _sample(self, rng, sample_rate):
        k = sample_rate / self._sox_rate(sample_rate)
        if self.kind == "equalizer":
            freq, q = int(rng.integers(100, 3001)), float(rng.uniform(0.5, 1.5))
            gain, slope = _signed_int(rng, 6), None
        else:
            gain = _signed_int(rng, 12)
            lo, hi = (1000, 3000) if self.kind == "highshelf" else (20, 300)
            freq, slope = int(rng.integers(lo, hi + 1)), float(rng.uniform(0.1, 0.7))
            q = shelf_slope_to_q(gain, slope)
        return {"gain_db": float(gain), "freq_hz": _clamp_hz(freq * k, sample_rate),
                "q": q, "slope": slope}

    def _plugins(self, params, sample_rate):
        cls = {"lowshelf": pedalboard.LowShelfFilter, "highshelf": pedalboard.HighShelfFilter,
               "equalizer": pedalboard.PeakFilter}[self.kind]
        return [cls(params["freq_hz"], params["gain_db"], params["q"])]


@dataclass
class _SoxOverdrive(_Sox):
    """SoX ``overdrive gain 40`` exactly (overdrive.c), colour included.

    d = clip3(g x + colour / 200), clip3(d) = d - d^3 / 3 (+-2/3 past +-1); a DC blocker
    (pole 0.995 per sample, as in SoX at any rate) removes the colour bias; out = 0.5 x +
    0.75 d.
    """

    name: ClassVar[str] = "overdrive"

    def _sample(self, rng, sample_rate):
        return {"gain_db": float(rng.integers(3, 8)), "colour": 40.0}

    def _process(self, audio, sample_rate, params):
        d = audio.astype(np.float64) * 10.0 ** (params["gain_db"] / 20.0) + params["colour"] / 200
        d = np.where(d < -1, -2 / 3, np.where(d > 1, 2 / 3, d - d**3 / 3))
        wet = lfilter([1.0, -1.0], [1.0, -0.995], d, axis=-1)  # per-sample pole: rate-free
        return (0.5 * audio + 0.75 * wet).astype(np.float32)


@dataclass
class _SoxPhaser(_Sox):
    """SoX ``phaser 0.9 0.8 1 0.25 2 -s`` approximated by pedalboard's Phaser.

    SoX's phaser is a feedback comb out = g_out (g_in x + decay y(t - D(t))) with D swept
    over 0..1 ms. Mapped to: rate = speed, feedback = decay, centre = first peak 1/(2 delay),
    mix = decay / (1 + decay) (gives SoX's trough/peak ratio (1 - decay)/(1 + decay)), and
    output gain = g_in g_out / (1 - decay) (SoX's gain at the peaks).
    """

    name: ClassVar[str] = "phaser"

    def _sample(self, rng, sample_rate):
        k = sample_rate / self._sox_rate(sample_rate)
        delay_s = 0.001 / k
        return {"rate_hz": 2.0 * k, "delay_s": delay_s,
                "centre_hz": _clamp_hz(1.0 / (2.0 * delay_s), sample_rate), "feedback": 0.25,
                "mix": 0.25 / 1.25, "gain": 0.9 * 0.8 / (1.0 - 0.25)}

    def _plugins(self, params, sample_rate):
        return [pedalboard.Phaser(rate_hz=params["rate_hz"], depth=0.5, mix=params["mix"],
                                  centre_frequency_hz=params["centre_hz"],
                                  feedback=params["feedback"]),
                pedalboard.Gain(20.0 * math.log10(params["gain"]))]


@dataclass
class _SoxReverb(_Sox):
    """SoX ``reverb rev hf room 100 20 wet`` on pedalboard's Reverb (both are Freeverb).

    Feedback and HF damping use SoX's formulas, mapped onto JUCE's room_size/damping.
    SoX's room scale (comb lengths x (0.1 + 0.9 room)) is reproduced by running the reverb
    at that fraction of SoX's rate (this also scales the all-pass lengths, which SoX does
    not). The wet path is delayed by the pre-delay, scaled by the wet gain and added to the
    dry signal; the tail is cut at the input length. Mono stays mono (SoX would output two
    channels with stereo depth 100).
    """

    name: ClassVar[str] = "reverb"

    def _sample(self, rng, sample_rate):
        rev, hf, room = (int(v) for v in rng.integers(30, 71, size=3))
        wet_db = float(rng.integers(1, 7))
        a = -1.0 / math.log(1.0 - 0.3)
        b = 100.0 / (math.log(1.0 - 0.98) * a + 1.0)
        feedback = 1.0 - math.exp((rev - b) / (a * b))  # SoX; JUCE: 0.7 + 0.28 room_size
        sox_rate = self._sox_rate(sample_rate)
        return {"reverberance": rev, "hf_damping": hf, "room_scale": room, "wet_gain_db": wet_db,
                "pre_delay_s": 0.020 * sox_rate / sample_rate,
                "room_size": float(np.clip((feedback - 0.7) / 0.28, 0.0, 1.0)),
                "damping": min(1.0, (hf / 100 * 0.3 + 0.2) / 0.4),  # JUCE: 0.4 damping, max 1
                "wet_level": 10.0 ** (wet_db / 20.0) / 3.0,  # JUCE scales wet by 3
                "reverb_rate": sox_rate * (0.1 + 0.9 * room / 100)}

    def _process(self, audio, sample_rate, params):
        plugin = pedalboard.Reverb(room_size=params["room_size"], damping=params["damping"],
                                   wet_level=params["wet_level"], dry_level=0.0, width=1.0)
        wet = _board([plugin], audio, params["reverb_rate"])
        shift = min(int(round(params["pre_delay_s"] * sample_rate)), audio.shape[-1])
        return audio + fit_length(np.pad(wet, ((0, 0), (shift, 0))), audio.shape[-1])


class RandAudioAugment(Chain):
    """RandAudioAugment of Kum et al., ISMIR 2020: six SoX effects, each on with prob. p.

    Exact ranges from the authors' released code for arXiv:2008.06358: low
    shelf (±U_int{0..12} dB, U_int{20..300} Hz, slope U(0.1, 0.7)), high shelf (±U_int{0..12}
    dB, U_int{1000..3000} Hz, slope U(0.1, 0.7)), peaking EQ (U_int{100..3000} Hz, Q U(0.5,
    1.5), ±U_int{0..6} dB), overdrive (U_int{3..7} dB, colour 40), phaser (0.9 0.8 1 ms 0.25
    2 Hz), reverb (reverberance, HF damping, room scale U_int{30..70} %, pre-delay 20 ms, wet
    gain U_int{1..6} dB, dry kept). The number of effects is Binomial(6, p).

    Mapping: shelves and EQ are the same RBJ biquads as SoX (shelf slope -> Q with
    ``shelf_slope_to_q``); overdrive is SoX's formula; reverb is Freeverb like SoX's, with
    SoX's feedback/damping/room-scale/pre-delay/wet-gain formulas; the phaser is
    approximated (see ``_SoxPhaser``). Frequencies are clamped to 0.45 * sample_rate.
    ``draw(rng, sample_rate)`` lists the (name, params) that ``apply`` would use.

    Args:
        p: probability of each effect.
        as_released: reproduce the released code's quirk, where SoX was told the 8 kHz audio
            was 44.1 kHz: every frequency is scaled by sample_rate / 44100 and every time
            (pre-delay, phaser delay, reverb delay lines) by 44100 / sample_rate. False
            applies the intended values at the audio's true rate.
    """

    def __init__(self, p: float = 0.5, as_released: bool = False):
        self.p, self.as_released = p, as_released
        kw = {"p": p, "as_released": as_released}
        filters = [_SoxFilter(kind=k, **kw) for k in ("lowshelf", "highshelf", "equalizer")]
        super().__init__([*filters, _SoxOverdrive(**kw), _SoxPhaser(**kw), _SoxReverb(**kw)])

    def __repr__(self) -> str:
        return f"RandAudioAugment(p={self.p}, as_released={self.as_released})"
