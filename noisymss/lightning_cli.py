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

        def _parse_ckpt_path(self) -> None:
            # Lightning reads a checkpoint's hyper-parameters into the model config, which in
            # subclass mode needs the '_class_path' that only CLI-trained checkpoints record; for
            # one saved from Python (Trainer.save_checkpoint) the config names the model instead.
            from pathlib import Path

            import torch

            ckpt = self.config[self.config.subcommand].get("ckpt_path") if self.config.get("subcommand") else None
            if ckpt and Path(ckpt).is_file():
                hparams = torch.load(ckpt, weights_only=True, map_location="cpu").get("hyper_parameters", {})
                if hparams and "_class_path" not in hparams:
                    return
            super()._parse_ckpt_path()

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
