"""What the relabelling callbacks (TeacherStudent, SelfRefine) share."""
from __future__ import annotations

import lightning as L


def check_relabel_fit(trainer: L.Trainer, who: str, needs: str, datamodule_hint: str) -> None:
    """Fails before training unless loaders are rebuilt every epoch and the datamodule can take new labels.

    Args:
        who: the callback's name, for the message.
        needs: the datamodule method that installs new labels.
        datamodule_hint: which datamodule to use instead.
    """
    if trainer.reload_dataloaders_every_n_epochs != 1:
        raise ValueError(f"{who} needs trainer.reload_dataloaders_every_n_epochs=1 so new labels reach the loaders")
    if not hasattr(trainer.datamodule, needs):
        raise ValueError(f"{who} needs {datamodule_hint}")
