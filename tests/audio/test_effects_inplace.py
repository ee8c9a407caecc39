"""`Chain.apply(..., inplace=True)`: the same result as a copying apply, without the copies."""
from __future__ import annotations

import numpy as np
import pytest

from noisymss.audio import effects as fx
from noisymss.audio.randaugment import RandAudioAugment

SR = 8000


def _audio(channels: int = 2) -> np.ndarray:
    audio = (np.random.default_rng(channels).standard_normal((channels, SR // 2)) * 0.2).astype(np.float32)
    audio[:, 100:300] = 0.0  # silence: Polarity must leave it +0.0
    return audio


CHAINS = {
    "numpy": fx.Chain([fx.Gain(p=0.7), fx.ChannelSwap(p=0.5), fx.Polarity(p=0.5)]),
    "mixed": fx.Chain([fx.Polarity(p=0.5), fx.Reverb(p=0.5), fx.Gain(p=0.5), fx.TimeStretch(p=0.3),
                       fx.ChannelSwap(p=0.5), fx.Distortion(p=0.5)]),
    "randaugment": RandAudioAugment(p=0.5),
}


@pytest.mark.parametrize("channels", [1, 2, 3])
@pytest.mark.parametrize("name", sorted(CHAINS))
def test_inplace_gives_the_copying_result(name, channels):
    chain = CHAINS[name]
    for seed in range(12):
        audio = _audio(channels)
        kept = audio.copy()
        copied, log = chain.apply(audio, SR, np.random.default_rng(seed))
        assert np.array_equal(audio, kept)  # without inplace the input is never touched
        buffer = audio.copy()
        out, log2 = chain.apply(buffer, SR, np.random.default_rng(seed), inplace=True)
        assert out.tobytes() == copied.tobytes() and log2 == log
        assert out.dtype == np.float32 and out.flags.c_contiguous
        if name == "numpy":  # NumPy effects in place write no -0.0 (the mixer relies on it)
            assert not np.signbit(out[out == 0]).any()


def test_untouched_and_numpy_only_stems_stay_in_their_buffer():
    audio = _audio()
    out, _ = fx.Chain([fx.Gain(p=0.0), fx.Reverb(p=0.0)]).apply(audio, SR, np.random.default_rng(0), inplace=True)
    assert out is audio  # nothing fired: no copy
    buffer = audio.copy()
    out, _ = CHAINS["numpy"].apply(buffer, SR, np.random.default_rng(1), inplace=True)
    assert out is buffer
    out, _ = fx.Reverb(p=1.0).apply(buffer, SR, np.random.default_rng(2), inplace=True)
    assert out is not buffer  # pedalboard returns new arrays


def test_polarity_and_swap_in_place():
    audio = _audio()
    out, _ = fx.Polarity(p=1.0).apply(audio.copy(), SR, np.random.default_rng(0), inplace=True)
    assert np.array_equal(out, -audio) and not np.signbit(out[:, 100:300]).any()
    out, _ = fx.ChannelSwap(p=1.0).apply(audio.copy(), SR, np.random.default_rng(0), inplace=True)
    assert np.array_equal(out, audio[::-1])


@pytest.mark.parametrize("make", [
    lambda a: a.astype(np.float64),             # another dtype
    lambda a: np.asfortranarray(a),             # not C-contiguous
    lambda a: a[:, ::2],                        # a strided view
    lambda a: np.lib.stride_tricks.as_strided(a, writeable=False),  # read-only
])
def test_inplace_copies_what_it_may_not_change(make):
    audio = make(_audio())
    kept = np.array(audio, copy=True)
    out, _ = CHAINS["numpy"].apply(audio, SR, np.random.default_rng(3), inplace=True)
    assert out is not audio and np.array_equal(audio, kept)
    expected, _ = CHAINS["numpy"].apply(audio, SR, np.random.default_rng(3))
    assert np.array_equal(out, expected)
