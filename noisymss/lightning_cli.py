"""Lightning's verbs (fit, validate, test) and `refine` through LightningCLI and jsonargparse.

Configs name the task and the data with `class_path` (subclass mode), so one entry point serves
every noisymss task: `noisymss fit --config configs/noisy_student.yaml`. `refine` is a method of
the project's Trainer (noisymss.trainer), registered as one more subcommand.
"""
from __future__ import annotations

import sys


# (data argument, model argument) pairs that must hold the same value
LINKS = (("recipe.segment", "segment"), ("recipe.sample_rate", "sample_rate"), ("recipe.channels", "channels"),
         ("classes", "classes"), ("classes", "sources"))


def run(argv: list[str]) -> int:
    build(argv)
    return 0


def build(argv: list[str] | None, run: bool = True):
    """The LightningCLI over `argv` (None: sys.argv). With `run=False` it only parses the configs and
    instantiates the trainer, model and data (no subcommand): how the tests build every shipped config."""
    import lightning as L
    from lightning.pytorch.cli import LightningCLI

    from noisymss.lightning_compat import CheckpointsSavedFromPython
    from noisymss.trainer import Trainer

    class CLI(CheckpointsSavedFromPython, LightningCLI):
        def add_arguments_to_parser(self, parser) -> None:
            # Values the model and the data must agree on are written once, in the data's config,
            # and copied to the model (a task whose model lacks the argument is skipped). The tasks
            # also check them at fit start, for models built from Python.
            for source, target in LINKS:
                head, _, field = source.partition(".")
                parser.link_arguments(f"data.init_args.{head}", f"model.init_args.{target}", apply_on="parse",
                                      compute_fn=_field(field) if field else None)

        @staticmethod
        def subcommands() -> dict[str, set[str]]:
            # the arguments refine takes from the config's model and data, not from its own flags
            return {**LightningCLI.subcommands(), "refine": {"model", "datamodule"}}

    return CLI(
        L.LightningModule,
        L.LightningDataModule,
        trainer_class=Trainer,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},  # a rerun in the same run folder must not stop on config.yaml
        args=None if argv == sys.argv[1:] else argv,  # from the shell: let Lightning read sys.argv (no warning)
        run=run,
    )


def _field(name: str):
    """Reads `name` of a parsed dataclass value: a jsonargparse Namespace (with or without
    class_path/init_args), a dict or the object."""
    def get(value):
        value = getattr(value, "init_args", value)
        return value.get(name) if isinstance(value, dict) else getattr(value, name, None)
    return get
