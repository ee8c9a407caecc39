"""Every use of a private Lightning API, in one place, so that a Lightning upgrade is checked here.

Checked on lightning 2.6.6, the version the tests run on (pyproject.toml pins `lightning>=2.6,<2.7`;
check each again before widening the pin). Each is used because Lightning has no public call for it:

- `lightning.pytorch.trainer.call._call_and_handle_interrupt(trainer, fn, *args)`: what `fit` and
  `test` run through. It starts `fn` under the strategy's launcher (so `Trainer.refine` under
  `--trainer.strategy ddp` starts the same processes as `fit`) and tears the run down cleanly on
  Ctrl-C or an error. `run_as_entry_point` wraps it.
- `DDPStrategy._setup_model(module)`: wraps a module in DistributedDataParallel with the strategy's
  settings. A module whose network was replaced mid-fit needs a new wrapper (DDP hooks the
  parameters it was built with). `rewrap_ddp` wraps it.
- `LightningCLI._parse_ckpt_path()`: the step where LightningCLI reads `--ckpt_path`'s
  hyper-parameters into the model config; there is no public hook to skip it.
  `CheckpointsSavedFromPython` overrides it.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import lightning as L


def run_as_entry_point(trainer: L.Trainer, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Runs `fn(*args, **kwargs)` as a Trainer entry point (like `fit`): under the strategy's launcher
    (one process per device for DDP), with Lightning's teardown on interrupt or error."""
    from lightning.pytorch.trainer import call

    return call._call_and_handle_interrupt(trainer, fn, *args, **kwargs)


def rewrap_ddp(trainer: L.Trainer) -> None:
    """Wraps the module in a new DistributedDataParallel after its network was replaced.

    DDP registers gradient hooks on the parameters it was built with; without a new wrapper the
    new network's gradients would never be averaged and the ranks would drift apart. Lightning
    has no public call for this; `_setup_model` is what its DDP strategy wraps with. Does
    nothing when the module is not wrapped (one process, or another strategy).
    """
    from torch.nn.parallel import DistributedDataParallel

    strategy = trainer.strategy
    if isinstance(strategy.model, DistributedDataParallel):
        strategy.model = strategy._setup_model(trainer.lightning_module)


class CheckpointsSavedFromPython:
    """A LightningCLI mixin (list it before LightningCLI) that accepts `--ckpt_path` checkpoints saved
    from Python.

    Lightning reads a checkpoint's hyper-parameters into the model config, which in subclass mode
    needs the '_class_path' that only CLI-trained checkpoints record; for one saved from Python
    (`Trainer.save_checkpoint`) the config names the model instead, so the step is skipped. A
    checkpoint of another task than the config's is refused here, before anything is built.
    """

    def _parse_ckpt_path(self) -> None:
        from noisymss.checkpoints import load_checkpoint

        subcommand = self.config.get("subcommand")
        ckpt = self.config[subcommand].get("ckpt_path") if subcommand else None
        several = not isinstance(ckpt, (str, type(None)))  # refine by several checkpoints: a list
        for one in ckpt if several else [ckpt]:
            if one and Path(one).is_file():
                hparams = load_checkpoint(one).hparams
                if hparams and "_class_path" not in hparams:
                    return
                # Lightning would build the checkpoint's task in place of the config's: refuse a mismatch
                trained, wanted = hparams.get("_class_path"), self.config[subcommand].model.get("class_path")
                if trained and wanted and trained != wanted:
                    raise ValueError(f"{one}: a checkpoint of {trained.rpartition('.')[2]}, but the config's model is "
                                     f"{wanted.rpartition('.')[2]}; use a checkpoint of that task, or the config it was "
                                     "trained with")
        if not several:  # Lightning reads one checkpoint's hyper-parameters into the config
            super()._parse_ckpt_path()
