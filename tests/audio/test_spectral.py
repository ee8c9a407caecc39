import numpy as np
import torch

from noisymss.audio.spectral import LogMel, amplitude_to_db, hz_to_mel, mel_filterbank, mel_to_hz, stft


def test_stft_matches_direct_numpy_dft():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(4000).astype(np.float64)
    n_fft, hop = 512, 128
    spec = stft(torch.from_numpy(x), n_fft, hop).numpy()
    padded = np.pad(x, n_fft // 2)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    for j in (0, 5, spec.shape[-1] - 1):
        frame = padded[j * hop:j * hop + n_fft] * window
        np.testing.assert_allclose(spec[:, j], np.fft.rfft(frame), rtol=1e-7, atol=1e-7)


def test_stft_is_batched_over_leading_axes():
    x = torch.randn(3, 2, 2048)
    spec = stft(x, 256, 64)
    assert spec.shape == (3, 2, 129, 33)
    torch.testing.assert_close(spec[1, 0], stft(x[1, 0], 256, 64))


def test_amplitude_to_db_per_item_reference_and_floor():
    mag = torch.tensor([[[1.0, 0.1, 1e-12]], [[10.0, 1.0, 0.0]]])
    db = amplitude_to_db(mag, multiplier=10.0, top_db=80.0)
    torch.testing.assert_close(db[0, 0, :2], torch.tensor([0.0, -10.0]))
    torch.testing.assert_close(db[1, 0, :2], torch.tensor([0.0, -10.0]))
    assert db.min() == -80.0 and db.max() == 0.0


def test_mel_scales_round_trip_and_known_points():
    assert abs(float(hz_to_mel(1000.0, "slaney")) - 15.0) < 1e-9
    assert abs(float(hz_to_mel(1000.0, "htk")) - 999.99) < 0.1
    hz = torch.tensor([50.0, 700.0, 1000.0, 5000.0])
    for scale in ("slaney", "htk"):
        torch.testing.assert_close(mel_to_hz(hz_to_mel(hz, scale), scale), hz.double())


def test_mel_filters_peak_at_their_centres():
    fb = mel_filterbank(2048, 44100, 40, f_min=0.0, f_max=8000.0, scale="htk")
    assert fb.shape == (40, 1025)
    centres = mel_to_hz(torch.linspace(0, float(hz_to_mel(8000.0, "htk")), 42)[1:-1], "htk")
    peaks = fb.argmax(dim=1).double() * 44100 / 2048
    assert torch.all((peaks - centres).abs() <= 44100 / 2048)
    assert torch.all(fb >= 0) and torch.all(fb.sum(dim=1) > 0)


def test_logmel_shapes_and_device_follow_input():
    layer = LogMel(sample_rate=16000, n_fft=512, hop_length=160, n_mels=32)
    out = layer(torch.randn(2, 2, 16000))
    assert out.shape == (2, 32, 101) and torch.isfinite(out).all()
