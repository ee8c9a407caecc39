"""Random state in checkpoints, so a resumed run continues as if it had never stopped.

Data draws are pure functions of (seed, epoch, index) (`noisymss.data.seeds`), but dropout, effects
drawn in the model and the loaders' base seeds use the global generators, which `seed_everything`
resets at every start. This callback saves Python's, NumPy's and torch's generator states (CUDA's
too, on each device this rank uses) with every checkpoint, and puts them back when one is loaded.
"""
from __future__ import annotations

import random

import lightning as L
import numpy as np
import torch


class RandomState(L.Callback):
    """Saves the global random generators' states in each checkpoint and restores them on resume."""

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint["random_state"] = {
            "python": random.getstate(),
            "numpy": _plain(np.random.get_state()),  # plain values: checkpoints load with weights_only
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        state = checkpoint.get("random_state")
        if state is None:  # a checkpoint from before this callback: the run resumes, not bit-exact
            return
        random.setstate(_tuples(state["python"]))
        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])


def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, tuple) else value.tolist() if isinstance(value, np.ndarray) else value


def _tuples(value):
    """Python's and NumPy's states are nested tuples; a checkpoint may give them back as lists."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value
