"""The learning-rate schedule the tasks share: linear warm-up, then cosine decay, per optimiser start.

The TeacherStudent callback restarts the optimiser with every student, so the schedule spans one
iteration: its `setup` sets the module's `schedule_epochs`; without it the schedule spans the fit.
"""
from __future__ import annotations

import math

import lightning as L
import torch

SCHEDULES = ("constant", "cosine")


def warmup_cosine(total_steps: int, warmup: float = 0.05, floor: float = 0.02):
    """Factor of the base rate at step s: linear from ~0 to 1 over the first `warmup` fraction of
    `total_steps`, then a half cosine down to `floor`, and `floor` after the end."""
    warm = max(1, int(round(warmup * total_steps)))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = min(1.0, (step - warm) / max(1, total_steps - warm))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def steps_per_epoch(module: L.LightningModule) -> int:
    """Optimiser steps per training epoch on this rank.

    The loader is asked for directly, not through `trainer.estimated_stepping_batches`: that sets up
    the fit loop's data before a resumed run's loop state is restored, and the resumed fit then
    no longer matched the uninterrupted one bit for bit (tests/callbacks/test_teacher_student.py).
    """
    trainer = module.trainer
    source = trainer.datamodule if trainer.datamodule is not None else module
    batches = math.ceil(len(source.train_dataloader()) / max(1, trainer.world_size))
    limit = trainer.limit_train_batches
    if isinstance(limit, int):
        batches = min(batches, limit)
    elif limit is not None:
        batches = int(batches * limit)
    return max(1, math.ceil(batches / trainer.accumulate_grad_batches))


def with_schedule(module: L.LightningModule, optimizer: torch.optim.Optimizer, schedule: str, warmup: float):
    """What `configure_optimizers` returns: the optimiser alone ('constant'), or with a per-step
    warm-up + cosine schedule over `schedule_epochs` (or all) epochs (see the module docstring)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"lr_schedule='{schedule}': choose one of {', '.join(SCHEDULES)}")
    if schedule == "constant":
        return optimizer
    trainer = module.trainer
    epochs = getattr(module, "schedule_epochs", None) or max(1, trainer.max_epochs or 1)
    total = max(1, steps_per_epoch(module) * epochs)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total, warmup))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
