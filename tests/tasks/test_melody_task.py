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


def test_calibrated_voicing_is_chosen_on_validation_kept_by_the_checkpoint_and_used_by_test(melody_corpus, tmp_path):
    import dataclasses

    from noisymss.melody.inference import VOICING_THRESHOLDS
    from noisymss.metrics.melody import melody_scores

    torch.manual_seed(0)
    dm = MelodyDataModule(str(melody_corpus / "catalog.csv"), unlabelled_split=None, val_split="labelled",
                          test_split="labelled", train_examples=64, batch_size=16)
    quiet = dict(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                 default_root_dir=tmp_path)
    task = MelodyTask(width=0.125, lr=3e-3, calibrate_voicing=True)
    trainer = L.Trainer(max_epochs=2, num_sanity_val_steps=0, **quiet)
    trainer.fit(task, dm)
    chosen = task.hparams.voicing_threshold
    # by hand: the mean OA of every candidate over the validation songs; the logged OA is the best one's
    dm.setup("validate")
    oa = {t: [] for t in VOICING_THRESHOLDS}
    task.eval()
    for batch in dm.val_dataloader():
        pitch, voice = task._song_outputs(batch["audio"][0])
        for t in VOICING_THRESHOLDS:
            decoding = dataclasses.replace(task.decoding, voicing_threshold=t)
            oa[t].append(melody_scores(batch["f0"][0].numpy(), decoding.track(decoding.frame_hz(pitch, voice)))["OA"])
    mean = {t: float(np.mean(v)) for t, v in oa.items()}
    assert mean[chosen] == pytest.approx(max(mean.values()), abs=1e-4)
    assert trainer.callback_metrics["val/OA"].item() == pytest.approx(mean[chosen], abs=1e-4)
    # a fresh task built from the config (threshold None) takes the checkpoint's, and test does not re-choose it
    ckpt = tmp_path / "calibrated.ckpt"
    trainer.save_checkpoint(ckpt)
    fresh = MelodyTask(width=0.125, calibrate_voicing=True)
    tested = L.Trainer(**quiet).test(fresh, dm, ckpt_path=ckpt, verbose=False)[0]
    assert fresh.hparams.voicing_threshold == chosen and "test/voicing_threshold" not in tested
    assert tested["test/OA"] == pytest.approx(mean[chosen], abs=1e-4)


def test_pseudo_labels_follow_the_teachers_calibrated_voicing():
    torch.manual_seed(0)
    audio = np.random.default_rng(0).standard_normal(8000 * 3).astype(np.float32) * 0.1
    task = MelodyTask(width=0.125, voicing_threshold=0.5).eval()
    _, voice = task._song_outputs(torch.from_numpy(audio))
    task.hparams.voicing_threshold = float(voice[:, 1].exp().median())  # half the frames on each side
    idx, prob, voiced_share = task.pseudo_label(audio, top_k=4)
    voiced = (voice[:, 1].exp() > task.hparams.voicing_threshold).numpy()
    assert 0 < voiced.sum() < len(voiced) and voiced_share == pytest.approx(voiced.mean())
    prob = prob.astype(np.float32)
    # unvoiced frames: all mass on class 0; voiced frames: none on class 0, the teacher's pitch distribution
    assert np.all(idx[~voiced, 0] == 0) and np.allclose(prob[~voiced, 0], 1.0) and np.allclose(prob[~voiced, 1:], 0.0)
    assert not np.any((idx[voiced] == 0) & (prob[voiced] > 0))
    argmax_voiced = task.pseudo_label  # without a threshold: the pitch softmax as it is, voicing by its argmax
    task.hparams.voicing_threshold = None
    idx0, prob0, share0 = argmax_voiced(audio, top_k=4)
    assert share0 == pytest.approx(float((idx0[:, 0] != 0).mean()))
