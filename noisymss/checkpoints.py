"""Reading Lightning checkpoints without Lightning: weights and hyper-parameters, safely.

Every checkpoint the project reads goes through `load_checkpoint`: `torch.load(weights_only=True)`
(a checkpoint from elsewhere cannot run code when it is read), and a missing, unreadable or
non-Lightning file is a one-line error naming it, which the command line prints as it is.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class Checkpoint:
    """A Lightning checkpoint's contents.

    Attributes:
        path: the file it was read from (for messages).
        hparams: the LightningModule's saved hyper-parameters ({} when it saved none).
        state_dict: the LightningModule's weights, {name: tensor}.
    """

    path: Path
    hparams: dict[str, Any]
    state_dict: dict[str, torch.Tensor]

    def weights(self, prefix: str = "model.") -> dict[str, torch.Tensor]:
        """The weights under `prefix` (a submodule of the LightningModule), with the prefix removed."""
        return {k[len(prefix):]: v for k, v in self.state_dict.items() if k.startswith(prefix)}


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu", mmap: bool = False) -> Checkpoint:
    """Reads a Lightning checkpoint (`torch.load(weights_only=True)`), its tensors on `map_location`
    (`mmap`: mapped from the file, read only where used).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a readable Lightning checkpoint (a config, a truncated file,
            another format), in one line naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as err:  # a config, a truncated file, another format: all one-line errors
        raise ValueError(f"{path}: not a readable Lightning checkpoint ({type(err).__name__})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a Lightning checkpoint (it holds a {type(state).__name__}, not a dict)")
    return Checkpoint(path, dict(state.get("hyper_parameters") or {}), dict(state.get("state_dict") or {}))


def check_fits(ckpt: Checkpoint, model: torch.nn.Module) -> None:
    """A one-line ValueError unless `ckpt`'s weights load into `model` (same names and shapes):
    a checkpoint of another task, size or class list is refused before any work."""
    for key in ("classes", "sources"):  # same shapes, other order: every score would be silently wrong
        trained, built = ckpt.hparams.get(key), dict(getattr(model, "hparams", {})).get(key)
        if trained is not None and built is not None and list(trained) != list(built):
            raise ValueError(f"{ckpt.path}: trained for {key} {list(trained)}, but the config's model has {list(built)}; "
                             f"set data.init_args.classes to {list(trained)}")
    want = model.state_dict()
    have = ckpt.state_dict
    missing = [k for k in want if k not in have]
    unexpected = [k for k in have if k not in want]
    shapes = [k for k in want if k in have and tuple(have[k].shape) != tuple(want[k].shape)]
    if missing or unexpected or shapes:
        example = (shapes or missing or unexpected)[0]
        raise ValueError(f"{ckpt.path}: its weights do not fit the config's {type(model).__name__} "
                         f"({len(missing)} missing, {len(unexpected)} unexpected, {len(shapes)} of another shape, e.g. "
                         f"{example!r}); use the config it was trained with (model size, classes or sources)")
