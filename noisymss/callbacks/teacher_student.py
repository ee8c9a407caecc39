"""Teacher-student self-training (Kum et al. 2020; Noisy Student, Xie et al. 2020) inside one `fit`.

Epochs [0, E) train the first teacher on labelled songs; at the end of every E epochs the
current model becomes the teacher: it labels the unlabelled songs (eval mode, sharded over DDP
ranks through `noisymss.relabel`, the same labels on every rank), the labels become the
DataModule's new version, the student is re-initialised or continued, and the optimiser
restarts. k iterations need `max_epochs = (k + 1) * E`.

State: the iteration count is checkpointed here and the pseudo labels in the DataModule, so a
run resumed in the middle of an iteration continues with the same teacher labels.
"""
from __future__ import annotations

import lightning as L

from noisymss.callbacks.common import check_relabel_fit
from noisymss.melody.data import check_mode
from noisymss.relabel import relabel


class TeacherStudent(L.Callback):
    """Args:
        iterations: teacher → student rounds (k).
        epochs_per_iteration: epochs of training per teacher or student (E).
        mode: basic | noisy_student | noisy_teacher_student (papers.md §2.3).
        reinit_student: start each student from scratch (True) or continue from the teacher.
        student_growth: each student's width is its teacher's times this (Noisy Student's
            equal-or-larger student, Xie et al. 2020); above 1 needs reinit_student.
        confidence: frames whose top teacher probability is below this carry no target.
        min_voiced: keep only unlabelled songs whose teacher voicing ratio is at least this
            (the papers stress that unlabelled audio must contain singing).
        top_k: teacher classes kept per frame.
        seed: seeds student re-initialisation (same on every rank).
    """

    def __init__(self, iterations: int = 2, epochs_per_iteration: int = 3, mode: str = "noisy_student",
                 reinit_student: bool = False, student_growth: float = 1.0, confidence: float = 0.0,
                 min_voiced: float = 0.2, top_k: int = 8, seed: int = 0):
        self.mode = check_mode(mode)  # an unknown mode fails here, before any training
        if student_growth < 1.0 or (student_growth > 1.0 and not reinit_student):
            raise ValueError(f"student_growth {student_growth}: give 1.0, or a value above 1 with reinit_student: true "
                             "(a larger student cannot continue from its teacher's weights)")
        self.student_growth = student_growth
        self.iterations, self.epochs_per_iteration = iterations, epochs_per_iteration
        self.reinit_student, self.confidence, self.min_voiced, self.top_k, self.seed = (
            reinit_student, confidence, min_voiced, top_k, seed)
        self.iteration = 0
        self.history: list[dict] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        check_relabel_fit(trainer, "TeacherStudent", "set_pseudo_labels",
                          "a datamodule with unlabelled songs (noisymss.melody.data.MelodyDataModule)")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.iteration = self.iteration

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if epoch % self.epochs_per_iteration or self.iteration >= self.iterations or epoch >= trainer.max_epochs:
            return
        dm = trainer.datamodule
        dm.noise_mode, dm.iteration = self.mode, self.iteration + 1  # what the next student (and a noisy teacher) hears
        heard = dm.unlabelled_audio()
        was_training = pl_module.training
        pl_module.eval()
        scored = relabel(list(heard), lambda k: pl_module.pseudo_label(heard[k], self.top_k, self.confidence),
                         progress=True, desc=f"teacher {self.iteration}")
        pl_module.train(was_training)
        kept = {k: (idx, prob) for k, (idx, prob, voiced) in scored.items() if voiced >= self.min_voiced}
        self.iteration += 1
        dm.set_pseudo_labels(f"teacher{self.iteration - 1}", self.iteration, kept)
        pl_module.iteration = self.iteration
        if self.reinit_student:
            width = pl_module.hparams.width * self.student_growth
            pl_module.reset_student(self.seed + self.iteration, width)
            if self.student_growth != 1.0:
                _rewrap_ddp(trainer)
        trainer.strategy.setup_optimizers(trainer)  # the student's optimiser and schedule start afresh
        record = {"ts/iteration": self.iteration, "ts/pseudo_labelled_songs": len(kept), "ts/unlabelled_songs": len(heard),
                  "ts/mean_voiced": sum(v for *_, v in scored.values()) / max(len(scored), 1),
                  "ts/teacher_val_OA": _metric(trainer, "val/OA"), "ts/student_width": float(pl_module.hparams.width)}
        self.history.append(record)
        for logger in trainer.loggers:
            logger.log_metrics(record, step=trainer.global_step)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            print(self.summary(_metric(trainer, "val/OA")))

    def summary(self, final_oa: float) -> str:
        """Validation OA at the end of every iteration: the first teacher, then each student."""
        rows = [r["ts/teacher_val_OA"] for r in self.history] + [final_oa]
        names = ["teacher (labelled only)"] + [f"student {i}" for i in range(1, len(rows))]
        return "\n".join([f"teacher-student ({self.mode}): validation OA per iteration"] +
                         [f"  iteration {i} {n:<24} OA {oa:5.1f}" for i, (n, oa) in enumerate(zip(names, rows))])

    def state_dict(self) -> dict:
        return {"iteration": self.iteration, "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        self.iteration, self.history = state["iteration"], state.get("history", [])


def _rewrap_ddp(trainer: L.Trainer) -> None:
    """Wraps the module in a new DistributedDataParallel after its network was replaced.

    DDP registers gradient hooks on the parameters it was built with; without a new wrapper the
    new network's gradients would never be averaged and the ranks would drift apart. Lightning
    has no public call for this; `_setup_model` is what its DDP strategy wraps with.
    """
    from torch.nn.parallel import DistributedDataParallel

    strategy = trainer.strategy
    if isinstance(strategy.model, DistributedDataParallel):
        strategy.model = strategy._setup_model(trainer.lightning_module)


def _metric(trainer: L.Trainer, name: str) -> float:
    value = trainer.callback_metrics.get(name)
    return float(value) if value is not None else float("nan")
