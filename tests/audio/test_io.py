import numpy as np
import pytest
import soundfile as sf

from conftest import tone
from noisymss.audio.io import AudioError, audio_info, convert_channels, read_audio, resample, write_audio


@pytest.mark.parametrize("ext", ["wav", "flac"])
def test_segment_read_equals_slice_of_whole_file(tmp_path, ext):
    audio = tone(seconds=2.0)
    path = write_audio(tmp_path / f"t.{ext}", audio, 44100, subtype="PCM_16")
    whole = read_audio(path)
    seg = read_audio(path, start=0.5, duration=0.25)
    assert seg.shape == (2, 11025)
    np.testing.assert_array_equal(seg, whole[:, 22050:22050 + 11025])


def test_segment_past_the_end_is_zero_padded(tmp_path):
    path = write_audio(tmp_path / "t.wav", tone(seconds=1.0), 44100)
    seg = read_audio(path, start=0.9, duration=0.5)
    assert seg.shape == (2, 22050)
    assert np.abs(seg[:, :4410]).max() > 0.1 and np.all(seg[:, 4500:] == 0)
    assert np.all(read_audio(path, start=5.0, duration=0.1) == 0)


def test_resample_keeps_frequency_and_length(tmp_path):
    sr = 44100
    x = np.sin(2 * np.pi * 1000 * np.arange(sr) / sr).astype(np.float32)[None]
    y = resample(x, sr, 8000)
    assert y.shape == (1, 8000)
    spectrum = np.abs(np.fft.rfft(y[0] * np.hanning(8000)))
    assert abs(np.argmax(spectrum) * 8000 / 8000 - 1000) <= 1
    path = write_audio(tmp_path / "s.flac", x, sr)
    seg = read_audio(path, start=0.25, duration=0.5, sample_rate=8000, channels=2)
    assert seg.shape == (2, 4000)


def test_channel_conversion():
    stereo = tone(channels=2, seconds=0.1)
    np.testing.assert_allclose(convert_channels(stereo, 1)[0], stereo.mean(0), rtol=1e-6)
    assert convert_channels(stereo[:1], 2).shape == (2, 4410)
    with pytest.raises(AudioError, match="cannot convert 3 channels"):
        convert_channels(np.zeros((3, 10), np.float32), 2)


def test_not_audio_names_the_file(tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    with pytest.raises(AudioError, match="notes.wav"):
        audio_info(bad)
    with pytest.raises(AudioError, match="notes.wav"):
        read_audio(bad)


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path):
    path = write_audio(tmp_path / "out.flac", tone(seconds=0.2), 44100)
    assert sf.info(str(path)).frames == 8820
    assert [p.name for p in tmp_path.iterdir()] == ["out.flac"]
    with pytest.raises(Exception):  # an unknown format fails before anything replaces the target
        write_audio(tmp_path / "out.xyz", tone(seconds=0.2), 44100)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.flac"]
