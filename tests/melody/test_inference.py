import numpy as np
import torch

from conftest import tone
from noisymss.audio.io import write_audio
from noisymss.melody.features import PATCH, log_magnitude, normalize
from noisymss.melody.inference import extract_f0, song_logits
from noisymss.models.jdc import JDC


def _model():
    torch.manual_seed(0)
    return JDC.small().eval()


def test_whole_song_chunking_covers_every_frame_once():
    model = _model()
    audio = torch.randn(8000 * 2 + 123) * 0.1  # 2.015 s: 202 frames, the last patch partly padded
    logits = song_logits(model, audio, batch_size=3)
    assert logits.shape == (1 + len(audio) // 80, 722)
    torch.testing.assert_close(logits, song_logits(model, audio, batch_size=64))
    first = model(normalize(log_magnitude(audio[None])[0][:PATCH])[None, None])[0][0]
    torch.testing.assert_close(logits[:PATCH], first)


def test_audio_shorter_than_one_patch():
    logits = song_logits(_model(), torch.zeros(500))
    assert logits.shape == (7, 722) and torch.isfinite(logits).all()


def test_extract_f0_from_any_rate_and_channels(tmp_path):
    path = write_audio(tmp_path / "song.flac", tone(220.0, seconds=1.0, sample_rate=22050, channels=2), 22050)
    times, f0 = extract_f0(_model(), path)
    assert len(times) == len(f0) == 101
    np.testing.assert_allclose(np.diff(times), 0.01)
    assert np.all(f0 >= 0)
