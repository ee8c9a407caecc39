"""Tests for noisymss.audio.effects and .randaugment on audio made at test time (timings: benchmarks/)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from noisymss.audio import effects as fx
from noisymss.audio.randaugment import RandAudioAugment, shelf_slope_to_q

SR = 44100
SR_MELODY = 8000


def _tone(sample_rate: int, channels: int, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """Harmonic tone (different per channel) plus a little noise, (channels, samples)."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(channels):
        f0 = 220.0 * (1 + 0.25 * c)
        tone = sum(0.3 / k * np.sin(2 * np.pi * k * f0 * t + c) for k in range(1, 6))
        rows.append(tone * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t)) + 0.01 * rng.standard_normal(t.size))
    return np.stack(rows).astype(np.float32)


@pytest.fixture(scope="module")
def stereo() -> np.ndarray:
    return _tone(SR, 2)


@pytest.fixture(scope="module")
def mono8k() -> np.ndarray:
    return _tone(SR_MELODY, 1)


# Every effect at p=1, and whether its parameters are random.
EFFECTS = [
    (fx.Gain(p=1.0), True),
    (fx.ChannelSwap(p=1.0), False),
    (fx.Polarity(p=1.0), False),
    (fx.Equalizer(p=1.0), True),
    (fx.Compressor(p=1.0), True),
    (fx.Reverb(p=1.0), True),
    (fx.Chorus(p=1.0), True),
    (fx.Phaser(p=1.0), True),
    (fx.Distortion(p=1.0), True),
    (fx.PitchShift(p=1.0), True),
    (fx.TimeStretch(p=1.0), True),
    (RandAudioAugment(p=1.0), True),
    (RandAudioAugment(p=1.0, as_released=True), True),
]
IDS = [repr(e).split("(")[0] + ("_released" if "as_released=True" in repr(e) else "")
       for e, _ in EFFECTS]


def _check(out: np.ndarray, audio: np.ndarray) -> None:
    assert out.shape == audio.shape
    assert out.dtype == np.float32
    assert np.isfinite(out).all()


@pytest.mark.parametrize(("effect", "random_params"), EFFECTS, ids=IDS)
def test_effect_changes_audio_and_is_reproducible(effect, random_params, stereo):
    original = stereo.copy()
    out = effect(stereo, SR, np.random.default_rng(0))
    _check(out, stereo)
    np.testing.assert_array_equal(stereo, original)  # input untouched
    assert not np.allclose(out, stereo, atol=1e-4)
    again = effect(stereo, SR, np.random.default_rng(0))
    np.testing.assert_array_equal(out, again)
    if random_params:
        other = effect(stereo, SR, np.random.default_rng(1))
        assert not np.allclose(out, other, atol=1e-5)


@pytest.mark.parametrize(("effect", "random_params"), EFFECTS, ids=IDS)
def test_effect_on_mono_8k(effect, random_params, mono8k):
    out = effect(mono8k, SR_MELODY, np.random.default_rng(0))
    _check(out, mono8k)
    if not isinstance(effect, fx.ChannelSwap):
        assert not np.allclose(out, mono8k, atol=1e-4)
    else:
        np.testing.assert_array_equal(out, mono8k)


@pytest.mark.parametrize(("effect", "random_params"), EFFECTS, ids=IDS)
def test_p_zero_is_identity(effect, random_params, stereo):
    effect = type(effect)(p=0.0) if not isinstance(effect, RandAudioAugment) else \
        RandAudioAugment(p=0.0, as_released=effect.as_released)
    out, log = effect.apply(stereo, SR, np.random.default_rng(0))
    np.testing.assert_array_equal(out, stereo)
    assert log == fx.EffectLog()


def test_parameters_do_not_depend_on_p():
    """On/off is one draw whatever p is, so an effect that is on gets the same parameters."""
    for seed in range(20):
        low = fx.Gain(p=0.5).draw(np.random.default_rng(seed), SR)
        high = fx.Gain(p=1.0).draw(np.random.default_rng(seed), SR)
        assert high is not None
        assert low is None or low == high
    # Parameter-free effects consume one draw either way: the next effect is unaffected.
    a = fx.Chain([fx.Polarity(p=0.0), fx.Gain()]).draw(np.random.default_rng(3), SR)
    b = fx.Chain([fx.Polarity(p=1.0), fx.Gain()]).draw(np.random.default_rng(3), SR)
    assert a[-1] == b[-1]


def test_chain_gain_doubles_amplitude(stereo):
    chain = fx.Chain([fx.Gain(db=(6.0, 6.0))])
    out, log = chain.apply(stereo, SR, np.random.default_rng(0))
    np.testing.assert_allclose(out, stereo * 10 ** (6 / 20), rtol=1e-6, atol=1e-7)
    assert out[0, 100] / stereo[0, 100] == pytest.approx(1.995, abs=1e-3)
    assert log == fx.EffectLog()


def test_chain_batches_pedalboard_effects_like_separate_calls(stereo):
    effects = [fx.Equalizer(p=1.0), fx.Distortion(p=1.0), fx.Polarity(p=1.0),
               fx.Compressor(p=1.0)]
    out = fx.Chain(effects)(stereo, SR, np.random.default_rng(5))
    rng, ref = np.random.default_rng(5), stereo
    for effect in effects:
        ref = effect(ref, SR, rng)
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_time_stretch_keeps_length_and_logs_rate(stereo):
    for rate in (0.9, 1.1):
        out, log = fx.TimeStretch(p=1.0, rate=(rate, rate)).apply(stereo, SR,
                                                                   np.random.default_rng(0))
        _check(out, stereo)
        assert log.time_rate == pytest.approx(rate)
        assert log.semitones == 0.0
    # The last one (rate 1.1) sped up: its output is shorter, so the end is zero padding.
    assert np.abs(out[:, -100:]).max() == 0.0


def test_pitch_shift_logs_semitones_and_moves_pitch(mono8k):
    out, log = fx.PitchShift(p=1.0, semitones=(2.0, 2.0)).apply(mono8k, SR_MELODY,
                                                                np.random.default_rng(0))
    assert log.semitones == pytest.approx(2.0) and log.time_rate == 1.0
    spec_in = np.abs(np.fft.rfft(mono8k[0]))
    spec_out = np.abs(np.fft.rfft(out[0]))
    freqs = np.fft.rfftfreq(mono8k.shape[-1], 1 / SR_MELODY)
    assert freqs[spec_out.argmax()] / freqs[spec_in.argmax()] == pytest.approx(2 ** (2 / 12),
                                                                               rel=0.02)


def test_effect_log_composes_and_maps_f0():
    log = fx.EffectLog(semitones=1.0).then(fx.EffectLog(time_rate=1.1))
    log = log.then(fx.EffectLog(semitones=1.0, time_rate=2.0))
    assert log == fx.EffectLog(semitones=2.0, time_rate=2.2)
    times, f0 = log.map_f0(np.array([0.0, 2.2]), np.array([0.0, 440.0]))
    np.testing.assert_allclose(times, [0.0, 1.0])
    np.testing.assert_allclose(f0, [0.0, 440.0 * 2 ** (2 / 12)])


def test_chain_log_from_pitch_and_time(stereo):
    chain = fx.Chain([fx.PitchShift(p=1.0, semitones=(-1.0, -1.0)),
                      fx.TimeStretch(p=1.0, rate=(1.05, 1.05))])
    _, log = chain.apply(stereo[:, : SR // 4], SR, np.random.default_rng(0))
    assert log.semitones == pytest.approx(-1.0) and log.time_rate == pytest.approx(1.05)


def test_rejects_non_2d_audio():
    with pytest.raises(ValueError):
        fx.Gain()(np.zeros(100, dtype=np.float32), SR, np.random.default_rng(0))


# ------------------------------------------------------------------ RandAudioAugment

NAMES = ["lowshelf", "highshelf", "equalizer", "overdrive", "phaser", "reverb"]


def test_rand_audio_augment_all_six_in_order(mono8k):
    aug = RandAudioAugment(p=1.0)
    drawn = aug.draw(np.random.default_rng(0), SR_MELODY)
    assert [name for name, _ in drawn] == NAMES
    out = aug(mono8k, SR_MELODY, np.random.default_rng(0))
    _check(out, mono8k)
    assert not np.allclose(out, mono8k, atol=1e-3)


def test_rand_audio_augment_ranges():
    aug = RandAudioAugment(p=1.0)
    rng = np.random.default_rng(0)
    seen = {n: [] for n in NAMES}
    for _ in range(300):
        for name, params in aug.draw(rng, SR):
            seen[name].append(params)
    low = seen["lowshelf"]
    assert {p["gain_db"] for p in low} == set(range(-12, 13))
    assert all(20 <= p["freq_hz"] <= 300 and 0.1 <= p["slope"] <= 0.7 for p in low)
    assert all(1000 <= p["freq_hz"] <= 3000 for p in seen["highshelf"])
    eq = seen["equalizer"]
    assert {p["gain_db"] for p in eq} == set(range(-6, 7))
    assert all(100 <= p["freq_hz"] <= 3000 and 0.5 <= p["q"] <= 1.5 for p in eq)
    assert {p["gain_db"] for p in seen["overdrive"]} == {3, 4, 5, 6, 7}
    rev = seen["reverb"]
    for key in ("reverberance", "hf_damping", "room_scale"):
        assert {p[key] for p in rev} == set(range(30, 71))
    assert {p["wet_gain_db"] for p in rev} == {1, 2, 3, 4, 5, 6}
    assert all(p["pre_delay_s"] == pytest.approx(0.020) for p in rev)
    assert all(p["rate_hz"] == 2.0 and p["delay_s"] == 0.001 for p in seen["phaser"])


def test_rand_audio_augment_p_zero_is_identity(mono8k):
    aug = RandAudioAugment(p=0.0)
    assert aug.draw(np.random.default_rng(0), SR_MELODY) == []
    np.testing.assert_array_equal(aug(mono8k, SR_MELODY, np.random.default_rng(0)), mono8k)


def test_rand_audio_augment_count_is_binomial():
    aug, rng = RandAudioAugment(p=0.5), np.random.default_rng(0)
    counts = np.array([len(aug.draw(rng, SR_MELODY)) for _ in range(4000)])
    assert counts.mean() == pytest.approx(3.0, abs=0.1)  # Binomial(6, 0.5): sd of mean 0.02
    assert counts.var() == pytest.approx(1.5, abs=0.15)
    assert counts.min() == 0 and counts.max() == 6


def test_rand_audio_augment_as_released_scales_frequencies_and_times():
    intended = RandAudioAugment(p=1.0).draw(np.random.default_rng(7), SR_MELODY)
    released = RandAudioAugment(p=1.0, as_released=True).draw(np.random.default_rng(7),
                                                                 SR_MELODY)
    k = SR_MELODY / 44100
    for (name, a), (name_b, b) in zip(intended, released):
        assert name == name_b
        for key in ("freq_hz", "rate_hz", "centre_hz"):
            if key in a:
                assert b[key] == pytest.approx(a[key] * k)
        for key in ("delay_s", "pre_delay_s", "reverb_rate"):
            if key in a:
                assert b[key] == pytest.approx(a[key] / k)
    reverb = dict(released)["reverb"]
    assert reverb["pre_delay_s"] == pytest.approx(0.020 * 44100 / 8000)  # 110 ms
    x = _tone(SR_MELODY, 1)
    a = RandAudioAugment(p=1.0)(x, SR_MELODY, np.random.default_rng(7))
    b = RandAudioAugment(p=1.0, as_released=True)(x, SR_MELODY, np.random.default_rng(7))
    assert not np.allclose(a, b, atol=1e-3)


@pytest.mark.parametrize("as_released", [False, True])
def test_sox_reverb_pre_delay_and_dry_path(as_released):
    """Click in: the output equals the dry input until the pre-delay, then the tail starts."""
    x = np.zeros((1, SR_MELODY), dtype=np.float32)
    x[0, 0] = 1.0
    reverb = RandAudioAugment(p=1.0, as_released=as_released).effects[5]
    params = reverb.draw(np.random.default_rng(0), SR_MELODY)
    out = reverb._process(x, SR_MELODY, params)
    shift = round(params["pre_delay_s"] * SR_MELODY)
    assert shift == (882 if as_released else 160)
    np.testing.assert_array_equal(out[:, :shift], x[:, :shift])
    assert np.abs(out[0, shift:]).max() > 1e-3


def test_high_frequencies_clamped_below_nyquist():
    rng = np.random.default_rng(0)
    for _ in range(50):
        for name, params in RandAudioAugment(p=1.0).draw(rng, 4000):
            if "freq_hz" in params:
                assert params["freq_hz"] <= 0.45 * 4000
    out = RandAudioAugment(p=1.0)(_tone(4000, 1), 4000, np.random.default_rng(0))
    assert np.isfinite(out).all()


def test_shelf_slope_to_q_hand_computed():
    # gain 12 dB: A = 10^(12/40) = 1.99526; S = 0.5: (A + 1/A)(1/S - 1) + 2 = 4.49645
    assert shelf_slope_to_q(12.0, 0.5) == pytest.approx(1 / math.sqrt(4.49645), rel=1e-5)
    # S = 1 is the steepest monotonic shelf: Q = 1/sqrt(2) for any gain
    assert shelf_slope_to_q(-7.0, 1.0) == pytest.approx(1 / math.sqrt(2))
    # 0 dB: A = 1, so 1/Q^2 = 2/S
    assert shelf_slope_to_q(0.0, 0.3) == pytest.approx(math.sqrt(0.3 / 2))


def test_sox_overdrive_matches_reference_loop():
    """The vectorised overdrive equals SoX's per-sample loop (overdrive.c)."""
    x = _tone(SR_MELODY, 1, seconds=0.05)
    od = RandAudioAugment(p=1.0).effects[3]
    params = {"gain_db": 5.0, "colour": 40.0}
    out = od._process(x, SR_MELODY, params)
    gain, colour, last_in, last_out, ref = 10 ** (5 / 20), 40 / 200, 0.0, 0.0, []
    for s in x[0].astype(np.float64):
        d = s * gain + colour
        d = -2 / 3 if d < -1 else 2 / 3 if d > 1 else d - d**3 / 3
        last_out = d - last_in + 0.995 * last_out
        last_in = d
        ref.append(s * 0.5 + last_out * 0.75)
    np.testing.assert_allclose(out[0], ref, atol=1e-6)
