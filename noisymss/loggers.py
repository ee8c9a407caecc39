"""Weights & Biases logging that works with no account and no network.

`AutoWandbLogger` runs online only when the user is logged in (WANDB_API_KEY or a wandb entry in
~/.netrc) and offline otherwise (`wandb sync <dir>` uploads later); WANDB_MODE, when set, wins
(tests set it to 'disabled'). `save_dir` is always given, so runs land under the run folder.
"""
from __future__ import annotations

import os
from pathlib import Path

from lightning.pytorch.loggers import WandbLogger


def wandb_mode() -> str:
    """'online', 'offline' or 'disabled' for this machine and environment."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    netrc = Path.home() / ".netrc"
    logged_in = bool(os.environ.get("WANDB_API_KEY")) or (netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore"))
    return "online" if logged_in else "offline"


class AutoWandbLogger(WandbLogger):
    """WandbLogger that picks online/offline itself (see module docstring).

    Args:
        save_dir: folder for the local run files (created).
        project, name, group: W&B run identity; `group` gathers the runs of one experiment.
    """

    def __init__(self, save_dir: str = "runs", project: str = "noisymss", name: str | None = None, group: str | None = None,
                 **kwargs):
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        mode = wandb_mode()
        super().__init__(save_dir=save_dir, project=project, name=name, group=group, mode=mode,
                         offline=mode == "offline", **kwargs)


def run_loggers(run_dir: str) -> list:
    """The loggers of a run folder: W&B (offline unless logged in; named after the folder) and CSV."""
    from lightning.pytorch.loggers import CSVLogger

    return [AutoWandbLogger(save_dir=run_dir, name=Path(run_dir).name), CSVLogger(save_dir=run_dir, name="csv")]
