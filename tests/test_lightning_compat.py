"""The private Lightning APIs noisymss/lightning_compat.py relies on are still there (fails first on an upgrade)."""
from __future__ import annotations

import inspect

import lightning as L
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.trainer import call

from noisymss.lightning_compat import CheckpointsSavedFromPython, rewrap_ddp, run_as_entry_point


def test_the_private_apis_exist_with_the_signatures_used():
    assert list(inspect.signature(call._call_and_handle_interrupt).parameters) == ["trainer", "trainer_fn", "args",
                                                                                  "kwargs"]
    assert list(inspect.signature(DDPStrategy._setup_model).parameters) == ["self", "model"]
    assert list(inspect.signature(LightningCLI._parse_ckpt_path).parameters) == ["self"]
    assert CheckpointsSavedFromPython._parse_ckpt_path.__name__ == LightningCLI._parse_ckpt_path.__name__


def test_entry_point_runs_the_function_and_rewrap_leaves_a_single_process_alone():
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    assert run_as_entry_point(trainer, lambda a, b=0: a + b, 1, b=2) == 3
    rewrap_ddp(trainer)  # no DDP wrapper: nothing to do
