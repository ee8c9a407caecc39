"""Teacher-student self-training (Kum et al. 2020; Noisy Student, Xie et al. 2020) inside one `fit`.

Epochs [0, E) train the first teacher on labelled songs; at the end of every E epochs the
iteration's best validated weights (or its last, `teacher: last`) become the teacher: it labels
the unlabelled songs (eval mode, sharded over DDP ranks, the same labels on every rank), the
labels become the DataModule's new version, the student is re-initialised or continued from the
teacher, and the optimiser restarts. k iterations need
`max_epochs = (k + 1) * E`; without E, it is derived from max_epochs. The lifecycle (schedule,
eval mode, state, logging) is `RelabelCallback`'s; the pseudo labels are in the DataModule's state.
"""
from __future__ import annotations

import lightning as L

from noisymss.callbacks.relabel import RelabelCallback, logged_metric
from noisymss.distributed import sharded_map
from noisymss.lightning_compat import rewrap_ddp
from noisymss.data.melody import check_mode


class TeacherStudent(RelabelCallback):
    """Args:
        iterations: teacher → student rounds (k).
        epochs_per_iteration: epochs of training per teacher or student (E); None: max_epochs / (k + 1).
        mode: basic | noisy_student | noisy_teacher_student: who hears noise (see
            `noisymss.data.melody`).
        reinit_student: start each student from scratch (True) or continue from the teacher.
        student_growth: each student's width is its teacher's times this (Noisy Student's
            equal-or-larger student, Xie et al. 2020); above 1 needs reinit_student.
        confidence: frames whose top teacher probability is below this carry no target.
        min_voiced: keep only unlabelled songs whose share of voiced frames is at least this
            (unlabelled audio that holds no singing teaches nothing about melody). The share is
            measured once, by the first teacher (trained on labelled songs only, so never on
            these); later teachers label the same songs.
        pretrain_epochs: 0: each student trains on labelled and pseudo-labelled patches together
            (joint training). P > 0: its first P epochs on pseudo-labelled patches only, the rest
            on labelled ones only (Kum et al.'s pretraining on pseudo labels, then fine-tuning).
        top_k: teacher classes kept per frame.
        seed: seeds student re-initialisation (same on every rank).
        teacher: 'best': the teacher is the iteration's weights with the best validation OA (and,
            under calibrate_voicing, their voicing threshold), which the next student also starts
            from; 'last': its weights at the iteration's end. On real singing the validation OA
            of one epoch swings by several points, and a student that learns a worse epoch's
            labels starts behind.
    """

    name, log_prefix, round_name = "TeacherStudent", "ts", "iteration"

    def __init__(self, iterations: int = 2, epochs_per_iteration: int | None = None, mode: str = "noisy_student",
                 reinit_student: bool = False, student_growth: float = 1.0, confidence: float = 0.0,
                 min_voiced: float = 0.2, top_k: int = 8, seed: int = 0, pretrain_epochs: int = 0,
                 teacher: str = "best"):
        super().__init__(epochs_per_iteration, iterations)
        self.mode = check_mode(mode)  # an unknown mode fails here, before any training
        if student_growth < 1.0 or (student_growth > 1.0 and not reinit_student):
            raise ValueError(f"student_growth {student_growth}: give 1.0, or a value above 1 with reinit_student: true "
                             "(a larger student cannot continue from its teacher's weights)")
        self.student_growth = student_growth
        self.reinit_student, self.confidence, self.min_voiced, self.top_k, self.seed = (
            reinit_student, confidence, min_voiced, top_k, seed)
        if pretrain_epochs < 0:
            raise ValueError(f"pretrain_epochs={pretrain_epochs}: give 0 (joint training) or a number of epochs")
        self.pretrain_epochs = pretrain_epochs
        if teacher not in ("best", "last"):
            raise ValueError(f"teacher={teacher!r}: give 'best' (the iteration's best validation OA) or 'last'")
        self.teacher = teacher
        self.best: dict | None = None  # this iteration's best so far: {"OA", "weights", "voicing_threshold"}
        self.selected: list[str] | None = None  # the unlabelled songs the first teacher kept

    @property
    def iterations(self) -> int:
        return self.rounds

    @property
    def iteration(self) -> int:
        return self.round

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage == "fit":  # each student's optimiser starts afresh, so its LR schedule spans one iteration
            pl_module.schedule_epochs = self.every_n_epochs
            if self.pretrain_epochs >= self.every_n_epochs:
                raise ValueError(f"pretrain_epochs={self.pretrain_epochs} leaves no fine-tuning epoch in a student's "
                                 f"{self.every_n_epochs}; give fewer")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.iteration = self.round
        self._set_phase(trainer, trainer.current_epoch)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self._set_phase(trainer, trainer.current_epoch + 1)  # loaders are rebuilt before the next epoch starts

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.teacher != "best" or trainer.sanity_checking or self.round >= self.rounds:
            return
        oa = logged_metric(trainer, "val/OA")  # synced over ranks: every rank keeps the same epoch
        if oa == oa and (self.best is None or oa > self.best["OA"]):
            self.best = {"OA": oa, "voicing_threshold": pl_module.hparams.get("voicing_threshold"),
                         "weights": {k: v.detach().to("cpu", copy=True) for k, v in pl_module.state_dict().items()}}

    def _set_phase(self, trainer: L.Trainer, epoch: int) -> None:
        if not self.pretrain_epochs or not self.round:
            return  # joint training, or the first teacher (labelled songs only)
        into = epoch - self.round * self.every_n_epochs  # epochs into this student
        trainer.datamodule.phase = "pseudo" if into < self.pretrain_epochs else "labelled"

    def relabel(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int):
        teacher_oa = logged_metric(trainer, "val/OA")
        if self.best is not None:  # the iteration's best epoch teaches (and the student starts from it)
            pl_module.load_state_dict(self.best["weights"])
            pl_module.hparams.voicing_threshold = self.best["voicing_threshold"]
            teacher_oa, self.best = self.best["OA"], None
        dm = trainer.datamodule
        dm.noise_mode, dm.iteration = self.mode, self.round + 1  # what the next student (and a noisy teacher) hears
        heard = dm.unlabelled_audio()
        songs = list(heard) if self.selected is None else [k for k in heard if k in set(self.selected)]
        scored = sharded_map(songs, lambda k: pl_module.pseudo_label(heard[k], self.top_k, self.confidence),
                             progress=True, desc=f"teacher {self.round}")
        if self.selected is None:  # the first teacher, never trained on these songs, chooses them
            self.selected = sorted(k for k, (*_, voiced) in scored.items() if voiced >= self.min_voiced)
        kept = {k: (idx, prob) for k, (idx, prob, _) in scored.items() if k in set(self.selected)}
        record = {"ts/pseudo_labelled_songs": len(kept), "ts/unlabelled_songs": len(heard),
                  "ts/mean_voiced": sum(v for *_, v in scored.values()) / max(len(scored), 1),
                  "ts/teacher_val_OA": teacher_oa}
        return f"teacher{self.round}", kept, record

    def after_relabel(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict:
        pl_module.iteration = self.round
        if self.reinit_student:
            width = pl_module.hparams.width * self.student_growth
            pl_module.reset_student(self.seed + self.round, width)
            if self.student_growth != 1.0:
                rewrap_ddp(trainer)
        trainer.strategy.setup_optimizers(trainer)  # the student's optimiser and schedule start afresh
        return {"ts/student_width": float(pl_module.hparams.width)}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "selected": self.selected, "best": self.best}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.selected = state.get("selected")
        self.best = state.get("best")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            print(self.summary(logged_metric(trainer, "val/OA")))

    def summary(self, final_oa: float) -> str:
        """Validation OA at the end of every iteration: the first teacher, then each student."""
        rows = [r["ts/teacher_val_OA"] for r in self.history] + [final_oa]
        names = ["teacher (labelled only)"] + [f"student {i}" for i in range(1, len(rows))]
        return "\n".join([f"teacher-student ({self.mode}): validation OA per iteration"] +
                         [f"  iteration {i} {n:<24} OA {oa:5.1f}" for i, (n, oa) in enumerate(zip(names, rows))])

