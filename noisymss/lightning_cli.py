"""Lightning's verbs (fit, validate, test) and `refine` through LightningCLI and jsonargparse.

Configs name the task and the data with `class_path` (subclass mode), so one entry point serves
every noisymss task: `noisymss fit --config configs/noisy_student.yaml`. `refine` is a method of
the project's Trainer (noisymss.trainer), registered as one more subcommand.
"""
from __future__ import annotations

import sys


def run(argv: list[str]) -> int:
    import lightning as L
    from lightning.pytorch.cli import LightningCLI

    from noisymss.trainer import Trainer

    class CLI(LightningCLI):
        @staticmethod
        def subcommands() -> dict[str, set[str]]:
            # the arguments refine takes from the config's model and data, not from its own flags
            return {**LightningCLI.subcommands(), "refine": {"model", "datamodule"}}

    CLI(
        L.LightningModule,
        L.LightningDataModule,
        trainer_class=Trainer,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},  # a rerun in the same run folder must not stop on config.yaml
        args=None if argv == sys.argv[1:] else argv,  # from the shell: let Lightning read sys.argv (no warning)
    )
    return 0
