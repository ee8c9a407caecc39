import numpy as np
import torch

from noisymss.melody.features import FLOOR_DB, HOP, N_FFT, PATCH, log_magnitude, to_patches
from noisymss.melody.pitch import N_CLASSES, class_to_hz, decode, gaussian_targets, hz_to_class


def test_class_hz_round_trip():
    classes = np.arange(N_CLASSES)
    np.testing.assert_array_equal(hz_to_class(class_to_hz(classes)), classes)
    assert N_CLASSES == 722
    assert abs(class_to_hz(np.array([1]))[0] - 73.416) < 1e-3 and abs(class_to_hz(np.array([721]))[0] - 987.77) < 1e-2
    assert hz_to_class(np.array([0.0, -5.0, 20.0, 5000.0])).tolist() == [0, 0, 1, 721]


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


def test_patches_pad_the_last_window_with_silence():
    db = torch.zeros(40, 513)
    patches, frames = to_patches(db)
    assert patches.shape == (2, 1, PATCH, 513) and frames == 40
    assert torch.all(patches[1, 0, 40 - PATCH:] == FLOOR_DB) and torch.all(patches[1, 0, :40 - PATCH] == 0)
    short, n = to_patches(torch.zeros(5, 513))
    assert short.shape == (1, 1, PATCH, 513) and n == 5


def test_decode_argmax_unvoiced_and_median():
    logits = torch.full((9, N_CLASSES), -10.0)
    classes = [0, 0, 200, 200, 0, 200, 200, 200, 0]
    logits[torch.arange(9), classes] = 10.0
    hz = decode(logits, median=5)
    assert hz[3] == class_to_hz(np.array([200]))[0] and hz[4] > 0  # the one-frame gap is filtered
    assert decode(logits, median=1)[4] == 0
