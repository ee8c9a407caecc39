import pickle
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from noisymss.callbacks.teacher_student import TeacherStudent
from noisymss.data.melody import MelodyDataModule
from noisymss.distributed import sharded_map
from noisymss.tasks.melody import MelodyTask

QUIET = dict(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
             reload_dataloaders_every_n_epochs=1)


class _Spy(L.Callback):
    """Records, at each epoch start, the label version, a copy of the pseudo labels and the optimiser itself."""

    def __init__(self):
        self.seen = []

    def on_train_epoch_start(self, trainer, pl_module):
        dm = trainer.datamodule
        self.seen.append((dm.label_version, {k: v[0].copy() for k, v in dm.pseudo.items()}, trainer.optimizers[0],
                          pl_module.iteration))


def _dm(corpus):
    return MelodyDataModule(str(corpus / "catalog.csv"), train_examples=32, batch_size=16, unlabelled_ratio=1.0)


def test_k_iterations_relabel_and_restart_the_optimiser(melody_corpus, tmp_path):
    torch.manual_seed(0)
    ts, spy, dm = TeacherStudent(iterations=2, epochs_per_iteration=1, mode="noisy_student", min_voiced=0.0), _Spy(), _dm(melody_corpus)
    L.Trainer(max_epochs=3, callbacks=[ts, spy], enable_checkpointing=False, default_root_dir=tmp_path, **QUIET).fit(
        MelodyTask(width=0.125), dm)
    versions = [s[0] for s in spy.seen]
    assert versions == ["none", "teacher0", "teacher1"]
    assert [s[3] for s in spy.seen] == [0, 1, 2]
    assert ts.iteration == 2 and len(ts.history) == 2 and dm.noise_mode == "noisy_student"
    assert set(spy.seen[1][1]) == {e.id for e in dm.rows("unlabelled")}
    assert any(not np.array_equal(spy.seen[1][1][k], spy.seen[2][1][k]) for k in spy.seen[1][1])  # a new teacher
    assert len({id(s[2]) for s in spy.seen}) == 3  # a fresh optimiser for every student (kept alive: ids not reused)


class _Phases(L.Callback):
    """Records each epoch's data phase and the share of pseudo-labelled patches the loader gave."""

    def __init__(self):
        self.seen = []

    def on_train_epoch_start(self, trainer, pl_module):
        ds = trainer.train_dataloader.dataset
        self.seen.append((trainer.datamodule.phase, ds.p_unlabelled))


def test_pretraining_on_pseudo_labels_then_fine_tuning_and_selection_by_the_first_teacher(melody_corpus, tmp_path):
    torch.manual_seed(0)
    ts, phases, dm = TeacherStudent(iterations=2, epochs_per_iteration=2, min_voiced=0.0, pretrain_epochs=1), _Phases(), \
        _dm(melody_corpus)
    L.Trainer(max_epochs=6, callbacks=[ts, phases], enable_checkpointing=False, default_root_dir=tmp_path, **QUIET).fit(
        MelodyTask(width=0.125), dm)
    # teacher: labelled only; each student: one epoch of pseudo labels only, then one of labelled only
    assert phases.seen == [("joint", 0.0), ("joint", 0.0), ("pseudo", 1.0), ("labelled", 0.0), ("pseudo", 1.0),
                           ("labelled", 0.0)]
    assert ts.selected == sorted(e.id for e in dm.rows("unlabelled"))
    assert ts.state_dict()["selected"] == ts.selected
    # the first teacher's choice stands: a song it left out is never labelled by a later teacher
    picky = TeacherStudent(iterations=2, epochs_per_iteration=1, min_voiced=0.0)
    picky.selected = ts.selected[:1]
    L.Trainer(max_epochs=3, callbacks=[picky], enable_checkpointing=False, default_root_dir=tmp_path, **QUIET).fit(
        MelodyTask(width=0.125), dm2 := _dm(melody_corpus))
    assert set(dm2.pseudo) == set(ts.selected[:1])
    with pytest.raises(ValueError, match="pretrain_epochs=2 leaves no fine-tuning epoch"):
        L.Trainer(max_epochs=4, callbacks=[TeacherStudent(iterations=1, pretrain_epochs=2)], enable_checkpointing=False,
                  default_root_dir=tmp_path, **QUIET).fit(MelodyTask(width=0.125), _dm(melody_corpus))


def test_resume_in_the_middle_of_iteration_two_keeps_iteration_and_labels(melody_corpus, tmp_path):
    torch.manual_seed(0)
    ts, dm = TeacherStudent(iterations=2, epochs_per_iteration=2, min_voiced=0.0), _dm(melody_corpus)
    trainer = L.Trainer(max_epochs=5, callbacks=[ts], enable_checkpointing=False, default_root_dir=tmp_path, **QUIET)
    trainer.fit(MelodyTask(width=0.125), dm)
    assert ts.iteration == 2 and dm.label_version == "teacher1"
    trainer.save_checkpoint(tmp_path / "mid.ckpt")

    ts2, spy, dm2 = TeacherStudent(iterations=2, epochs_per_iteration=2, min_voiced=0.0), _Spy(), _dm(melody_corpus)
    L.Trainer(max_epochs=6, callbacks=[ts2, spy], enable_checkpointing=False, default_root_dir=tmp_path, **QUIET).fit(
        MelodyTask(width=0.125), dm2, ckpt_path=tmp_path / "mid.ckpt")
    assert ts2.iteration == 2 and len(ts2.history) == 2  # restored, and no relabel after resuming
    assert spy.seen[0][0] == "teacher1" and spy.seen[0][3] == 2
    assert all(np.array_equal(dm.pseudo[k][0], dm2.pseudo[k][0]) for k in dm.pseudo)


def test_a_resumed_noisy_student_run_is_bit_for_bit_the_uninterrupted_one(melody_corpus, tmp_path):
    """The project's Trainer checkpoints the random state: resuming in iteration two (before the next relabel)
    gives the weights of the run that never stopped, noise and dropout included."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from noisymss.trainer import Trainer

    def fit(root, ckpt_path=None, keep_all=False):
        L.seed_everything(0)
        callbacks = [TeacherStudent(iterations=2, epochs_per_iteration=2, min_voiced=0.0, mode="noisy_student")]
        if keep_all:
            callbacks.append(ModelCheckpoint(dirpath=tmp_path / root / "checkpoints", save_top_k=-1, save_last=True))
        task = MelodyTask(width=0.125)  # with its warm-up + cosine schedule
        Trainer(max_epochs=6, callbacks=callbacks, default_root_dir=tmp_path / root, **QUIET).fit(
            task, _dm(melody_corpus), ckpt_path=ckpt_path)
        return task.state_dict()

    whole = fit("whole", keep_all=True)
    third = next((tmp_path / "whole" / "checkpoints").glob("epoch=2-*.ckpt"))  # mid iteration two; a relabel to come
    resumed = fit("resumed", ckpt_path=str(third))
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_unknown_mode_and_missing_reload_fail_before_training(melody_corpus, tmp_path):
    with pytest.raises(ValueError, match="unknown teacher-student mode 'loud'"):
        TeacherStudent(mode="loud")
    kw = {k: v for k, v in QUIET.items() if k != "reload_dataloaders_every_n_epochs"}
    with pytest.raises(ValueError, match="reload_dataloaders_every_n_epochs=1"):
        L.Trainer(max_epochs=1, callbacks=[TeacherStudent()], default_root_dir=tmp_path, **kw).fit(
            MelodyTask(width=0.125), _dm(melody_corpus))


def test_a_larger_student_is_trained_checkpointed_and_resumed(melody_corpus, tmp_path):
    from noisymss.melody.inference import load_melody_model

    torch.manual_seed(0)
    ts, spy, task = TeacherStudent(iterations=2, epochs_per_iteration=1, reinit_student=True, student_growth=2.0,
                                   min_voiced=0.0), _Spy(), MelodyTask(width=0.125)
    teacher_size = sum(p.numel() for p in task.parameters())
    trainer = L.Trainer(max_epochs=3, callbacks=[ts, spy], enable_checkpointing=False, default_root_dir=tmp_path, **QUIET)
    trainer.fit(task, _dm(melody_corpus))
    assert task.hparams.width == 0.5 and [r["ts/student_width"] for r in ts.history] == [0.25, 0.5]
    assert sum(p.numel() for p in task.parameters()) > 4 * teacher_size
    assert trainer.optimizers[0].param_groups[0]["params"][0] is next(task.parameters())  # the optimiser trains the new net
    trainer.save_checkpoint(tmp_path / "grown.ckpt")
    assert load_melody_model(tmp_path / "grown.ckpt").jdc.pitch_head.lstm.hidden_size == task.model.pitch_head.lstm.hidden_size
    # resuming builds the grown size from the checkpoint although the config says 0.125
    resumed = MelodyTask(width=0.125)
    L.Trainer(max_epochs=4, callbacks=[TeacherStudent(iterations=2, epochs_per_iteration=1, reinit_student=True,
                                                      student_growth=2.0, min_voiced=0.0)],
              enable_checkpointing=False, default_root_dir=tmp_path, **QUIET).fit(resumed, _dm(melody_corpus),
                                                                               ckpt_path=tmp_path / "grown.ckpt")
    assert resumed.hparams.width == 0.5
    with pytest.raises(ValueError, match="reinit_student"):
        TeacherStudent(student_growth=1.5)


def test_reset_student_is_deterministic():
    a, b = MelodyTask(width=0.125), MelodyTask(width=0.125)
    a.reset_student(5)
    b.reset_student(5)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb)


@pytest.mark.parametrize("growth", [1.0, pytest.param(1.5, marks=pytest.mark.slow)], ids=["continued-student", "larger-student"])
def test_two_process_ddp_gives_identical_pseudo_labels(melody_corpus, tmp_path, growth):
    """A real 2-process CPU DDP run (gloo): every rank ends with the same labels, equal to a 1-process relabel,
    and the same trained parameters (a larger student is trained by DDP too, not by each rank alone;
    BatchNorm running statistics are per-rank buffers, so they are not compared)."""
    script = Path(__file__).with_name("ddp_teacher_student.py")
    res = subprocess.run([sys.executable, str(script), str(melody_corpus / "catalog.csv"), str(tmp_path), str(growth)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    ranks = [pickle.loads((tmp_path / f"rank{r}.pkl").read_bytes()) for r in (0, 1)]
    assert ranks[0]["version"] == ranks[1]["version"] == "teacher1"
    assert ranks[0]["width"] == ranks[1]["width"] == pytest.approx(0.125 * growth**2)
    for k, w in ranks[0]["weights"].items():
        torch.testing.assert_close(w, ranks[1]["weights"][k], msg=k)
    assert ranks[0]["pseudo"].keys() == ranks[1]["pseudo"].keys() and ranks[0]["pseudo"]
    for k in ranks[0]["pseudo"]:
        for a, b in zip(ranks[0]["pseudo"][k], ranks[1]["pseudo"][k]):
            np.testing.assert_array_equal(a, b)
    # the sharded relabel of a fixed model equals scoring every song in one process
    dm = _dm(melody_corpus)
    dm.setup()
    heard = dm.unlabelled_audio()
    torch.manual_seed(123)
    fixed = MelodyTask(width=0.125).eval()
    single = sharded_map(list(heard), lambda k: fixed.pseudo_label(heard[k]))
    assert ranks[0]["fixed"].keys() == single.keys()
    for k in single:
        np.testing.assert_array_equal(ranks[0]["fixed"][k][0], single[k][0])
        np.testing.assert_array_equal(ranks[1]["fixed"][k][1], single[k][1])


class _Weights(L.Callback):
    """Records the weights each validation saw and each epoch started from."""

    def __init__(self):
        self.validated, self.started = [], []

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.validated.append({k: v.clone() for k, v in pl_module.state_dict().items()})

    def on_train_epoch_start(self, trainer, pl_module):
        self.started.append({k: v.clone() for k, v in pl_module.state_dict().items()})


@pytest.mark.parametrize("teacher,teaches", [("best", 1), ("last", 2)])
def test_the_teacher_is_the_iterations_best_validated_epoch(melody_corpus, tmp_path, monkeypatch, teacher, teaches):
    import noisymss.callbacks.teacher_student as module

    scores = {0: 10.0, 1: 30.0, 2: 20.0}  # validation OA by epoch: epoch 1 is the first teacher's best
    monkeypatch.setattr(module, "logged_metric", lambda trainer, name: scores.get(trainer.current_epoch, 5.0))
    torch.manual_seed(0)
    weights = _Weights()
    ts = TeacherStudent(iterations=1, epochs_per_iteration=3, min_voiced=0.0, teacher=teacher)
    quiet = {**QUIET, "limit_val_batches": 1, "num_sanity_val_steps": 0}
    L.Trainer(max_epochs=4, callbacks=[weights, ts], enable_checkpointing=False, default_root_dir=tmp_path, **quiet).fit(
        MelodyTask(width=0.125, lr=1e-2), _dm(melody_corpus))
    student_start = weights.started[3]
    for k, v in weights.validated[teaches].items():
        torch.testing.assert_close(student_start[k], v)
    assert any(not torch.equal(student_start[k], v) for k, v in weights.validated[3 - teaches].items())
    assert ts.history[0]["ts/teacher_val_OA"] == scores[teaches]
    with pytest.raises(ValueError, match="teacher='first'"):
        TeacherStudent(teacher="first")
