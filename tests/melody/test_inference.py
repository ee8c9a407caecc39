import numpy as np
import torch

from conftest import tone
from noisymss.audio.io import write_audio
from noisymss.melody.features import PATCH, PATCH_SAMPLES, log_magnitude, normalize
from noisymss.melody.inference import extract_f0, load_melody_model, song_f0, song_logits
from noisymss.melody.pitch import JDC_GRID, PitchGrid
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
    # each patch as a training patch: its own features from its own PATCH_SAMPLES of audio
    first = model(normalize(log_magnitude(audio[None, :PATCH_SAMPLES]))[:, None])[0][0]
    torch.testing.assert_close(logits[:PATCH], first)
    second = model(normalize(log_magnitude(audio[None, PATCH * 80:PATCH * 80 + PATCH_SAMPLES]))[:, None])[0][0]
    torch.testing.assert_close(logits[PATCH:2 * PATCH], second)


def test_audio_shorter_than_one_patch():
    logits = song_logits(_model(), torch.zeros(500))
    assert logits.shape == (7, 722) and torch.isfinite(logits).all()


def test_extract_f0_from_any_rate_and_channels(tmp_path):
    path = write_audio(tmp_path / "song.flac", tone(220.0, seconds=1.0, sample_rate=22050, channels=2), 22050)
    times, f0 = extract_f0(_model(), path)
    assert len(times) == len(f0) == 101
    np.testing.assert_allclose(np.diff(times), 0.01)
    assert np.all(f0 >= 0)


def test_a_file_read_in_blocks_gives_the_whole_song_f0(melody_corpus):
    from noisymss.audio.io import read_audio
    from noisymss.data.catalog import Catalog

    cat = Catalog.load(melody_corpus / "catalog.csv")
    path = cat.resolve(cat.mixtures("labelled")[0].path)  # a demo song: a synthetic singer over a band
    shipped = load_melody_model(None)  # a trained model: an f0 track that varies, so misplaced frames show
    whole = song_f0(shipped.jdc, torch.from_numpy(read_audio(path, sample_rate=8000, channels=1)[0]), shipped.decoding)
    assert (whole > 0).mean() > 0.2 and len(np.unique(whole)) > 10
    for block in (0.31, 0.5, 1.0, 60.0):  # blocks of whole patches, blocks that cut patches anywhere, one block
        times, f0 = extract_f0(shipped.jdc, path, shipped.decoding, block=block)
        assert len(f0) == len(whole) == 1 + int(round(cat.mixtures("labelled")[0].duration * 8000)) // 80
        np.testing.assert_allclose(f0, whole, rtol=1e-5)


def test_a_checkpoint_loads_without_lightning_as_the_trained_network(tmp_path):
    import lightning as L

    from noisymss.melody.inference import load_melody_model
    from noisymss.tasks.melody import MelodyTask

    torch.manual_seed(1)
    task = MelodyTask(width=0.125, median=7, pitch_range=(36.0, 84.0)).eval()
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    trainer.strategy.connect(task)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded = load_melody_model(tmp_path / "m.ckpt")
    assert loaded.decoding.median == 7 and not loaded.jdc.training and loaded.decoding.grid == PitchGrid(36.0, 84.0)
    audio = torch.randn(8000) * 0.1
    torch.testing.assert_close(song_logits(loaded.jdc, audio), song_logits(task.model, audio))


def test_output_names_keep_inputs_with_the_same_name_apart(tmp_path):
    from pathlib import Path

    from noisymss.outputs import output_paths

    out = Path("/out")
    assert output_paths([tmp_path / "a.wav", tmp_path / "b.flac"], out, ".f0.txt") == [out / "a.f0.txt", out / "b.f0.txt"]
    same = output_paths([tmp_path / "x" / "mix.wav", tmp_path / "y" / "z" / "mix.flac"], out, ".f0.txt")
    assert same == [out / "x" / "mix.f0.txt", out / "y" / "z" / "mix.f0.txt"]
