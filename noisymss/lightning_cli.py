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


# verbs that refuse to run without a trained model, and what they would do with it
NEEDS_CHECKPOINT = {"validate": "score", "test": "score", "predict": "predict with", "refine": "relabel with"}


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

        def before_instantiate_classes(self) -> None:
            # before anything is built: scoring or predicting random weights is refused
            verb = self.config.get("subcommand")
            if verb in NEEDS_CHECKPOINT and not self.config[verb].get("ckpt_path"):
                baseline = ", or 'untrained' to score a baseline as the config builds it" if verb in ("validate", "test") else ""
                raise ValueError(f"{verb} needs --ckpt_path: the trained model to {NEEDS_CHECKPOINT[verb]} "
                                 f"(a path, or 'last' for the run folder's last.ckpt{baseline})")

        @staticmethod
        def subcommands() -> dict[str, set[str]]:
            # the arguments refine takes from the config's model and data, not from its own flags
            return {**LightningCLI.subcommands(), "refine": {"model", "datamodule"}, "check": {"model", "datamodule"}}

    return CLI(
        L.LightningModule,
        L.LightningDataModule,
        trainer_class=Trainer,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        save_config_callback=_run_config(),
        # a mistyped option is one error line (noisymss.cli), not the usage; and a prefix of an option
        # is a typo, not an abbreviation (--trainer.max_epoch would silently set max_epochs)
        parser_kwargs={"exit_on_error": False, "allow_abbrev": False},
        args=None if argv == sys.argv[1:] else argv,  # from the shell: let Lightning read sys.argv (no warning)
        run=run,
    )


def _run_config():
    """SaveConfigCallback that keeps every command's config in the run folder, none over another."""
    from lightning.pytorch.cli import SaveConfigCallback

    class RunConfig(SaveConfigCallback):
        """Writes the full config of each fit/validate/test/predict to the run folder (`default_root_dir`)
        as config.yaml, or config-2.yaml, -3, ... when earlier commands wrote those; atomically, rank 0."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "save_to_log_dir": False})

        def save_config(self, trainer, pl_module, stage: str) -> None:
            from itertools import count
            from pathlib import Path

            from noisymss.atomic import atomic_write_text

            root = Path(trainer.default_root_dir)
            path = next(p for n in count(1) if not (p := root / ("config.yaml" if n == 1 else f"config-{n}.yaml")).exists())
            atomic_write_text(path, self.parser.dump(self.config, skip_none=False))

    return RunConfig


def _field(name: str):
    """Reads `name` of a parsed dataclass value: a jsonargparse Namespace (with or without
    class_path/init_args), a dict or the object."""
    def get(value):
        value = getattr(value, "init_args", value)
        return value.get(name) if isinstance(value, dict) else getattr(value, name, None)
    return get
