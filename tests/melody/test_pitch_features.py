import numpy as np
import torch

import pytest

from noisymss.melody.features import HOP, N_FFT, PATCH, PATCH_SAMPLES, log_magnitude
from noisymss.melody.inference import Decoding, patch_windows
from noisymss.melody.pitch import JDC_GRID, PitchGrid

N_CLASSES = JDC_GRID.n_classes
class_to_hz, hz_to_class, gaussian_targets = JDC_GRID.class_to_hz, JDC_GRID.hz_to_class, JDC_GRID.gaussian_targets


def decode(logits, median, voice=None, threshold=None):
    voice = torch.zeros(len(logits), 2) if voice is None else voice
    decoding = Decoding(JDC_GRID, median, threshold)
    return decoding.track(decoding.frame_hz(logits, voice))


def test_class_hz_round_trip():
    classes = np.arange(N_CLASSES)
    np.testing.assert_array_equal(hz_to_class(class_to_hz(classes)), classes)
    assert N_CLASSES == 722
    assert abs(class_to_hz(np.array([1]))[0] - 73.416) < 1e-3 and abs(class_to_hz(np.array([721]))[0] - 987.77) < 1e-2
    assert hz_to_class(np.array([0.0, -5.0, 20.0, 5000.0])).tolist() == [0, 0, 1, 721]


def test_a_wider_pitch_range_covers_low_singers():
    wide = PitchGrid(36.0, 84.0)
    assert wide.n_classes == 48 * 16 + 2
    low = 440.0 * 2 ** ((36.5 - 69) / 12)  # MIDI 36.5: below JDC's range, as MIR-1K's lowest voices
    assert hz_to_class(np.array([low]))[0] == 1  # clipped to JDC's lowest class
    k = wide.hz_to_class(np.array([low]))[0]
    assert k == 1 + 8 and abs(wide.class_to_hz(np.array([k]))[0] - low) < 1e-6  # kept exactly
    np.testing.assert_array_equal(wide.hz_to_class(wide.class_to_hz(np.arange(wide.n_classes))), np.arange(wide.n_classes))
    assert wide.gaussian_targets(torch.tensor([k])).shape == (1, wide.n_classes)
    with pytest.raises(ValueError, match="low < high"):
        PitchGrid(84.0, 36.0)


def test_gaussian_target_values():
    t = gaussian_targets(torch.tensor([100]), normalize=False)[0]
    np.testing.assert_allclose(t[97:104].numpy(), [0.0111, 0.1353, 0.6065, 1.0, 0.6065, 0.1353, 0.0111], atol=1e-4)
    assert t[96] == 0 and t[104] == 0
    norm = gaussian_targets(torch.tensor([100, 0, 2]))
    torch.testing.assert_close(norm.sum(-1), torch.ones(3))
    assert norm[1, 0] == 1.0 and norm[2, 0] == 0.0  # blur never spills onto non-voice


def test_log_magnitude_matches_direct_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(4000) * np.linspace(0, 1, 4000)
    db = log_magnitude(torch.from_numpy(x)[None]).numpy()[0]
    padded = np.pad(x, N_FFT // 2)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)
    frames = np.stack([np.abs(np.fft.rfft(padded[j * HOP:j * HOP + N_FFT] * window)) for j in range(db.shape[0])])
    expected = np.maximum(10 * np.log10(np.maximum(frames, 1e-10) / frames.max()), -80.0)
    assert db.shape == (51, 513)
    np.testing.assert_allclose(db, expected, atol=1e-4)


def test_patch_windows_are_training_patches_of_the_song():
    audio = torch.arange(10_000, dtype=torch.float32)
    windows = patch_windows(audio)
    frames = 1 + 10_000 // HOP  # 126 frames -> 5 patches of 31
    assert windows.shape == (5, PATCH_SAMPLES)
    for i in range(5):  # patch i's frame j is centred on sample (31 i + j) * 80, as a training patch at that start
        start = i * PATCH * HOP
        expected = torch.nn.functional.pad(audio[start:start + PATCH_SAMPLES], (0, max(0, start + PATCH_SAMPLES - 10_000)))
        torch.testing.assert_close(windows[i], expected)
    assert windows.shape[0] * PATCH >= frames > (windows.shape[0] - 1) * PATCH


def test_decode_argmax_unvoiced_and_median():
    logits = torch.full((9, N_CLASSES), -10.0)
    classes = [0, 0, 200, 200, 0, 200, 200, 200, 0]
    logits[torch.arange(9), classes] = 10.0
    hz = decode(logits, median=5)
    assert hz[3] == class_to_hz(np.array([200]))[0] and hz[4] > 0  # the one-frame gap is filtered
    assert decode(logits, median=1)[4] == 0


def test_a_voicing_threshold_lets_the_voicing_output_decide():
    logits = torch.full((4, N_CLASSES), -10.0)
    logits[:, 0] = 5.0  # class 0 wins every argmax...
    logits[:, 300] = 4.0  # ...with this pitch second
    p_voiced = torch.tensor([0.9, 0.7, 0.5, 0.2])
    voice = torch.stack([1 - p_voiced, p_voiced], dim=-1).log()
    assert (decode(logits, 1, voice) == 0).all()  # argmax: all unvoiced
    hz = decode(logits, 1, voice, threshold=0.6)
    assert hz.tolist() == [class_to_hz(np.array([300]))[0]] * 2 + [0.0, 0.0]
