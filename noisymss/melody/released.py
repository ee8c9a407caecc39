"""Melody weights without pickle: the model shipped inside the package, and exporting a checkpoint to one.

A released model is a safetensors file (tensors only: reading it cannot run code) of the JDC's
weights, with the settings that rebuild it (width, pitch range, median filter) as JSON in its
metadata. `noisymss melody` uses the shipped one when no --ckpt is given; a MelodyTask starts
from one with `pretrained` (docs/melody_model.md is its card).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from noisymss.atomic import atomic_path

FORMAT = "noisymss-jdc"
SHIPPED = Path(__file__).parent / "weights" / "jdc_vocal.safetensors"
SETTINGS = ("width", "pitch_range", "median", "voicing_threshold")  # what rebuilds the network and decodes its output


def load_weights(path: str | os.PathLike | None, device: str = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """({name: tensor} of the JDC, its settings) from a .safetensors release, a melody-task checkpoint,
    or (None) the model shipped with noisymss. One-line errors name the file."""
    if path is None:
        if not SHIPPED.is_file():
            raise FileNotFoundError(f"{SHIPPED}: this install has no released melody model; give --ckpt, "
                                    "or rebuild it with `make release-melody`")
        path = SHIPPED
    path = Path(path)
    if path.suffix == ".safetensors":
        return _read_release(path, device)
    from noisymss.checkpoints import load_checkpoint

    ckpt = load_checkpoint(path, map_location=device)
    weights = ckpt.weights("model.")
    if not any(k.startswith("pitch_head") for k in weights):
        raise ValueError(f"{ckpt.path}: not a melody (JDC) checkpoint; train one with "
                         "`noisymss fit --config configs/noisy_student.yaml`")
    return weights, {k: ckpt.hparams[k] for k in SETTINGS if k in ckpt.hparams}


def _read_release(path: Path, device: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise FileNotFoundError(f"{path}: released weights not found")
    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            meta = f.metadata() or {}
            weights = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a noisymss melody release (metadata format {meta.get('format')!r}, "
                         f"expected {FORMAT!r})")
    return weights, json.loads(meta.get("settings", "{}"))


def export(ckpt: str | os.PathLike, out: str | os.PathLike, settings: dict | None = None, **info: str) -> Path:
    """Writes a melody checkpoint's JDC as a release (atomically): weights, settings (the checkpoint's,
    updated with `settings`, e.g. a voicing threshold chosen on validation), and `info` (free text
    such as the training command) in the metadata."""
    from safetensors.torch import save_file

    weights, found = load_weights(ckpt)
    settings = {**found, **(settings or {})}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "settings": json.dumps(settings), **{k: str(v) for k, v in info.items()}}
    with atomic_path(out) as tmp:
        save_file({k: v.contiguous() for k, v in weights.items()}, str(tmp), metadata=meta)
    return out
