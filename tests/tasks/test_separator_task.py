"""SeparatorTask with real Trainers on the duets corpus (conftest): a harmonic 'tone' stem and a noise
stem per song, 16 kHz mono."""
import json
import shutil

import lightning as L
import pytest
import torch

from noisymss.data.catalog import Catalog
from noisymss.data.datamodule import MixDataModule
from noisymss.data.mixer import MixRecipe
from noisymss.tasks.separator import SeparatorTask

SR = 16000
SOURCES = ["tone", "noise"]
QUIET = dict(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
             enable_model_summary=False)


def _dm(catalog, multi_label="exclude", **kw):
    recipe = MixRecipe(segment=1.0, sample_rate=SR, channels=1, class_prob=0.9, multi_label=multi_label)
    kw = {"label_version": "true", "eval_label_version": "true", "train_examples": 64, "val_examples": 16,
          "test_examples": 8, "batch_size": 8, **kw}
    return MixDataModule(str(catalog), classes=SOURCES, recipe=recipe, outputs=("mixture", "sources"), **kw)


def _task(**kw):
    kw = {"sources": SOURCES, "sample_rate": SR, "channels": 1, "segment": 1.0, "lr": 3e-3, **kw}
    return SeparatorTask(**kw)


def _learns(task, dm, tmp_path, epochs):
    before = L.Trainer(default_root_dir=tmp_path, **QUIET).validate(task, dm, verbose=False)[0]
    L.Trainer(max_epochs=epochs, num_sanity_val_steps=0, default_root_dir=tmp_path, **QUIET).fit(task, dm)
    return before, L.Trainer(default_root_dir=tmp_path, **QUIET).validate(task, dm, verbose=False)[0]


def test_xumx_learns_to_split_the_training_songs(duets, tmp_path):
    torch.manual_seed(0)
    task = _task(arch="xumx", loss="multi_domain")
    assert task.loss_fn.n_fft == 1024  # the small model's own STFT, not the published 4096
    # validation mixtures drawn from the training songs: with five tones to learn from, a frame-wise
    # X-UMX this small fits them but does not generalise to new pitches (HTDemucs does, below)
    before, after = _learns(task, _dm(duets, splits=("train", "train", "test")), tmp_path, epochs=15)
    # the untrained masks are about 1/2 of the mixture for both sources
    assert after["val/usdr"] > before["val/usdr"] + 5.0, (before, after)
    assert after["val/usdr/noise"] > before["val/usdr/noise"] + 8.0, (before, after)


@pytest.mark.slow
def test_htdemucs_separates_songs_it_has_not_heard(duets, tmp_path):
    torch.manual_seed(0)
    before, after = _learns(_task(arch="htdemucs"), _dm(duets), tmp_path, epochs=15)
    assert after["val/usdr"] > 8.0 and after["val/usdr/noise"] > 4.0, (before, after)


@pytest.mark.parametrize("robust, expect_kept", [("mean", 1.0), ("truncation", 0.5), ("masking", 0.5)])
def test_noise_robust_losses_drop_the_worst_examples(duets, tmp_path, robust, expect_kept):
    task = _task(arch="mixture", robust=robust, quantile_schedule=[[0, 1.0], [1, 0.5]])
    trainer = L.Trainer(max_epochs=2, num_sanity_val_steps=0, limit_val_batches=0, default_root_dir=tmp_path, **QUIET)
    trainer.fit(task, _dm(duets))
    kept = float(trainer.callback_metrics["train/kept"])  # of the last epoch: quantile 0.5
    assert kept == pytest.approx(expect_kept, abs=0.15)


def test_data_that_cannot_train_the_sources_is_a_clear_error(duets, tmp_path):
    with pytest.raises(ValueError, match="set model.sources to match data.classes"):
        L.Trainer(max_epochs=1, default_root_dir=tmp_path, **QUIET).fit(_task(sources=["noise", "tone"], arch="mixture"),
                                                                        _dm(duets))
    with pytest.raises(ValueError, match="60000 Hz, 1 ch but the model is 16000 Hz"):
        dm = _dm(duets)
        dm.recipe = MixRecipe(segment=1.0, sample_rate=60000, channels=1)
        L.Trainer(max_epochs=1, default_root_dir=tmp_path, **QUIET).fit(_task(arch="mixture"), dm)
    # a version in which every noise stem is labelled noise+tone: no 'noise' target is left
    root = shutil.copytree(duets.parent, tmp_path / "copy")
    cat = Catalog.load(root / "catalog.csv")
    both = {e.id: ("noise", "tone") if "noise" in labels else labels for e in cat.stems()
            for labels in [cat.labels("true")[e.id]]}
    cat.write_labels("both", both, {"producer": "test"})
    with pytest.raises(ValueError, match="no stem that can be a 'noise' target"):
        L.Trainer(max_epochs=1, default_root_dir=tmp_path, **QUIET).fit(_task(arch="mixture"),
                                                                        _dm(root / "catalog.csv", label_version="both"))
    with pytest.raises(ValueError, match="multi_label"):
        L.Trainer(max_epochs=1, default_root_dir=tmp_path, **QUIET).fit(
            _task(arch="mixture"), _dm(root / "catalog.csv", multi_label="all", label_version="both"))
    with pytest.raises(ValueError, match="loss 'mse'"):
        _task(loss="mse")
    with pytest.raises(ValueError, match="robust"):
        _task(robust="median")


def test_testing_scores_whole_songs_with_museval(duets, tmp_path):
    pytest.importorskip("museval")
    task = _task(arch="mixture")
    # under the truth the test song d7 has a noise+tone stem (no exact reference): it is skipped
    trainer = L.Trainer(default_root_dir=tmp_path / "truth", **QUIET)
    metrics = trainer.test(task, _dm(duets), verbose=False)[0]
    assert "test/usdr" in metrics and "test/sdr" not in metrics
    assert not list((tmp_path / "truth").rglob("*.songs.json"))
    # under the given labels it is scorable: museval's SDR of the mixture baseline, per source
    trainer = L.Trainer(default_root_dir=tmp_path / "given", **QUIET)
    metrics = trainer.test(task, _dm(duets, label_version="given", eval_label_version=None), verbose=False)[0]
    # beside the run's results file, named after it (no checkpoint: 'untrained')
    songs = json.loads((tmp_path / "given" / "results" / "test-untrained.songs.json").read_text())["songs"]
    assert list(songs) == ["d7"] and set(songs["d7"]) == set(SOURCES)
    assert metrics["test/sdr"] == pytest.approx((songs["d7"]["tone"]["SDR"] + songs["d7"]["noise"]["SDR"]) / 2, abs=1e-3)
    assert (tmp_path / "given" / "results" / "test-untrained.songs.csv").is_file()


def test_test_songs_go_to_offline_wandb_as_a_table_with_audio(duets, tmp_path, monkeypatch):
    """A real W&B run in offline mode gets the per-song SDR table and the estimates of the first songs."""
    pytest.importorskip("museval")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    from noisymss.loggers import AutoWandbLogger

    logger = AutoWandbLogger(save_dir=str(tmp_path), name="separator")
    trainer = L.Trainer(accelerator="cpu", logger=logger, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    task = _task(arch="mixture", log_audio_songs=1)
    task.model.gain.data = torch.tensor([0.7, 0.3])  # distinct estimates: W&B stores identical clips once
    trainer.test(task, _dm(duets, label_version="given", eval_label_version=None), verbose=False)
    logger.experiment.finish()
    run = next(tmp_path.glob("wandb/offline-run-*"))
    assert list(run.glob("files/media/table/test/songs*.table.json"))
    assert len(list(run.glob("files/media/audio/**/*.wav"))) == 1 + len(SOURCES)  # the mixture and each estimate
