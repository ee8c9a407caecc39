import lightning as L
import numpy as np
import pytest
import torch

from noisymss.data.melody import MelodyDataModule
from noisymss.melody.pitch import JDC_GRID, PitchGrid
from noisymss.tasks.melody import MelodyTask, melody_loss


N_CLASSES = JDC_GRID.n_classes
gaussian_targets = JDC_GRID.gaussian_targets


def test_loss_against_hand_computed_values():
    logits = torch.zeros(1, 2, N_CLASSES)  # uniform pitch distribution
    voice = torch.log(torch.tensor([[[0.25, 0.75], [0.5, 0.5]]]))
    target = torch.zeros(1, 2, N_CLASSES)
    target[0, 0, 10] = 1.0  # voiced frame
    target[0, 1, 0] = 1.0  # unvoiced frame
    weight = torch.tensor([[1.0, 0.0]])
    loss = melody_loss(logits, voice, target, weight, alpha=0.5)
    expected = np.log(N_CLASSES) + 0.5 * -np.log(0.75)
    assert abs(float(loss) - expected) < 1e-5
    both = melody_loss(logits, voice, target, torch.ones(1, 2), alpha=0.5)
    assert abs(float(both) - (expected + np.log(N_CLASSES) + 0.5 * -np.log(0.5)) / 2) < 1e-5


def test_targets_for_labelled_soft_and_hard_pseudo_frames():
    idx = torch.zeros(2, 3, 4, dtype=torch.long)
    prob = torch.zeros(2, 3, 4)
    f0 = torch.zeros(2, 3)
    f0[0] = torch.from_numpy(JDC_GRID.class_to_hz(np.array([0, 50, 51])))  # labelled truth comes in Hz
    prob[0, :, 0] = 1.0
    idx[1, :, :2] = torch.tensor([60, 70])
    prob[1, :, :2] = torch.tensor([0.3, 0.5])
    batch = {"f0": f0, "target_idx": idx, "target_prob": prob, "labelled": torch.tensor([True, False]),
             "mask": torch.tensor([[True] * 3, [True, True, False]])}
    task = MelodyTask(width=0.125, unlabelled_weight=0.5)
    target, weight = task.targets(batch)
    torch.testing.assert_close(target[0], gaussian_targets(torch.tensor([0, 50, 51])))
    assert abs(float(target[1, 0, 60]) - 0.375) < 1e-6 and abs(float(target[1, 0, 70]) - 0.625) < 1e-6
    torch.testing.assert_close(weight, torch.tensor([[1.0, 1.0, 1.0], [0.5, 0.5, 0.0]]))
    hard, _ = MelodyTask(width=0.125, hard_pseudo_labels=True).targets(batch)
    torch.testing.assert_close(hard[1], gaussian_targets(torch.full((3,), 70)))
    wide = MelodyTask(width=0.125, pitch_range=(36.0, 84.0))  # the same Hz, its own classes
    target, _ = wide.targets(batch)
    assert target.shape[-1] == wide.grid.n_classes == PitchGrid(36.0, 84.0).n_classes
    torch.testing.assert_close(target[0], wide.grid.gaussian_targets(torch.tensor([0, 50 + 32, 51 + 32])))
    assert wide(torch.zeros(1, 2400))[0].shape == (1, 31, wide.grid.n_classes)


@pytest.mark.slow  # 35 s; make test stays under 10 minutes (the melody CLI and teacher-student tests still train)
def test_a_small_model_learns_one_demo_song(melody_corpus, tmp_path):
    """Overfit the labelled songs and score on one of them: OA must rise well above the untrained model."""
    torch.manual_seed(0)
    dm = MelodyDataModule(str(melody_corpus / "catalog.csv"), unlabelled_split=None, val_split="labelled",
                          train_examples=256, batch_size=16)
    task = MelodyTask(width=0.125, lr=3e-3)
    quiet = dict(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                 enable_model_summary=False, default_root_dir=tmp_path)
    score = lambda: L.Trainer(**quiet).validate(task, dm, verbose=False)[0]["val/OA"]  # noqa: E731
    before = score()
    L.Trainer(max_epochs=12, limit_val_batches=0, **quiet).fit(task, dm)
    after = score()
    assert after > before + 30 and after > 50, (before, after)


def test_validation_logs_spectrogram_with_f0_to_offline_wandb(melody_corpus, tmp_path, monkeypatch):
    """A real W&B run in offline mode receives one picture per plotted validation song."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    from noisymss.loggers import AutoWandbLogger

    logger = AutoWandbLogger(save_dir=str(tmp_path), name="plots")
    dm = MelodyDataModule(str(melody_corpus / "catalog.csv"), unlabelled_split=None, val_split="labelled")
    trainer = L.Trainer(accelerator="cpu", logger=logger, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    trainer.validate(MelodyTask(width=0.125, plot_songs=1), dm, verbose=False)
    logger.experiment.finish()
    pictures = list(tmp_path.glob("wandb/offline-run-*/files/media/images/val/f0_*.png"))
    assert len(pictures) == 1, sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.png"))
