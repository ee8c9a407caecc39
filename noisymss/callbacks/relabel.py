"""The one relabel lifecycle that TeacherStudent and SelfRefine share.

Every `every_n_epochs` epochs of a fit (while rounds remain, and never after the last epoch) the
model being trained relabels data in eval mode, the DataModule switches to the new labels (the
label-state protocol below), and the round is logged. The round count and the history are
checkpointed here and the labels in the DataModule's state, so a run resumed mid-round trains on
the labels it had. Subclasses say only how to relabel (`relabel`) and what follows (`after_relabel`).
"""
from __future__ import annotations

from typing import Any, Mapping, Protocol, runtime_checkable

import lightning as L


@runtime_checkable
class LabelState(Protocol):
    """What a DataModule offers to be relabelled: the version in use, a setter, and checkpointed state.

    New labels must reach the next epoch's loaders, and must be in `state_dict()` so that a resumed
    run trains on them.
    """

    label_version: str

    def set_labels(self, version: str, labels: Mapping[str, Any]) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class RelabelCallback(L.Callback):
    """Args:
        every_n_epochs: epochs of training between relabels; None: derived from the fit, so that
            the rounds split it evenly (max_epochs = (rounds + 1) * every_n_epochs).
        rounds: relabels in the fit.
    Subclasses set `name` (for messages), `log_prefix` and `round_name` (logged as
    `<log_prefix>/<round_name>`).
    """

    name = "relabel"
    log_prefix = "relabel"
    round_name = "round"

    def __init__(self, every_n_epochs: int | None, rounds: int):
        if (every_n_epochs is not None and every_n_epochs < 1) or rounds < 0:
            raise ValueError(f"{self.name}: every_n_epochs must be at least 1 and rounds at least 0, "
                             f"got {every_n_epochs} and {rounds}")
        self.every_n_epochs, self.rounds = every_n_epochs, rounds
        self.round = 0
        self.history: list[dict] = []

    # -------------------------------------------------------------- checks
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if trainer.reload_dataloaders_every_n_epochs != 1:
            raise ValueError(f"{self.name} needs trainer.reload_dataloaders_every_n_epochs=1 so new labels reach the "
                             "loaders")
        if not isinstance(trainer.datamodule, LabelState):
            raise ValueError(f"{self.name} needs a datamodule with label state (label_version, set_labels, state_dict); "
                             f"{type(trainer.datamodule).__name__} has none")
        if self.every_n_epochs is None:
            epochs = trainer.max_epochs
            if epochs is None or epochs < 0 or epochs % (self.rounds + 1):
                raise ValueError(f"{self.name}: {self.rounds} round(s) split the fit evenly only if trainer.max_epochs "
                                 f"is a multiple of {self.rounds + 1} (got {epochs}); set it, or set every_n_epochs")
            self.every_n_epochs = epochs // (self.rounds + 1)
        last = self.rounds * self.every_n_epochs
        if self.rounds and trainer.max_epochs is not None and 0 <= trainer.max_epochs <= last:
            raise ValueError(f"{self.name}: {self.rounds} round(s) every {self.every_n_epochs} epochs relabel after "
                             f"epoch {last}, so trainer.max_epochs must be above {last} (got {trainer.max_epochs}); "
                             f"e.g. {last + self.every_n_epochs}")

    # ----------------------------------------------------------- lifecycle
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Runs after a resumed run's state is restored, before any training."""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if epoch % self.every_n_epochs or self.round >= self.rounds or epoch >= trainer.max_epochs:
            return
        dm = trainer.datamodule
        was_training = pl_module.training
        pl_module.eval()
        try:
            version, labels, record = self.relabel(trainer, pl_module, epoch)
        finally:
            pl_module.train(was_training)
        self.round += 1
        dm.set_labels(version, labels)
        record = {f"{self.log_prefix}/{self.round_name}": self.round, **record, **self.after_relabel(trainer, pl_module)}
        self.history.append(record)
        for logger in trainer.loggers:
            logger.log_metrics(record, step=trainer.global_step)

    def relabel(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int) -> tuple[str, Mapping[str, Any], dict]:
        """New labels from the model (in eval mode; call on every rank: scoring is sharded and gathered).

        Returns (version name, labels for the DataModule's `set_labels`, metrics to log).
        """
        raise NotImplementedError

    def after_relabel(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict:
        """What follows new labels (e.g. a new student); returns metrics to log."""
        return {}

    # --------------------------------------------------------------- state
    def state_dict(self) -> dict:
        return {"round": self.round, "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        # checkpoints of TeacherStudent before the shared base named the round 'iteration'
        self.round = state["round"] if "round" in state else state["iteration"]
        self.history = state.get("history", [])


def logged_metric(trainer: L.Trainer, name: str) -> float:
    """A metric Lightning has logged (e.g. 'val/OA'), or NaN before it was."""
    value = trainer.callback_metrics.get(name)
    return float(value) if value is not None else float("nan")
