"""Lightning's own verbs (fit, validate, test) through LightningCLI and jsonargparse.

Configs name the task and the data with `class_path` (subclass mode), so one entry point serves
every noisymss task: `noisymss fit --config configs/noisy_student.yaml`.
"""
from __future__ import annotations


def run(argv: list[str]) -> int:
    import lightning as L
    from lightning.pytorch.cli import LightningCLI

    LightningCLI(
        L.LightningModule,
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},  # a rerun in the same run folder must not stop on config.yaml
        args=argv,
    )
    return 0
