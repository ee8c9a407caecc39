"""Released melody weights: exported from a checkpoint, read without pickle, used by `noisymss melody` when no
--ckpt is given, and a starting point for `fit` (`pretrained`)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from noisymss.melody.inference import load_melody_model, song_logits
from noisymss.melody.pitch import PitchGrid
from noisymss.melody.released import SHIPPED, export, load_weights
from noisymss.tasks.melody import MelodyTask


def _checkpoint(tmp_path, **hparams):
    import lightning as L

    torch.manual_seed(3)
    task = MelodyTask(**hparams).eval()
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    trainer.strategy.connect(task)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    return task, tmp_path / "m.ckpt"


def _no_pickle(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("torch.load (pickle) was called")

    monkeypatch.setattr(torch, "load", refuse)


def test_an_exported_release_is_the_trained_network_read_without_pickle(tmp_path, monkeypatch):
    from safetensors import safe_open

    task, ckpt = _checkpoint(tmp_path, width=0.125, pitch_range=(36.0, 84.0), median=7)
    out = export(ckpt, tmp_path / "rel" / "jdc.safetensors", source="a test")
    with safe_open(str(out), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "noisymss-jdc" and meta["source"] == "a test"
    assert json.loads(meta["settings"]) == {"width": 0.125, "pitch_range": [36.0, 84.0], "median": 7,
                                            "voicing_threshold": None}
    _no_pickle(monkeypatch)
    model = load_melody_model(out)
    assert model.decoding.grid == PitchGrid(36.0, 84.0) and model.decoding.median == 7 and not model.jdc.training
    audio = torch.randn(8000) * 0.1
    torch.testing.assert_close(song_logits(model.jdc, audio), song_logits(task.model, audio))


def test_the_shipped_model_loads_without_pickle(monkeypatch):
    assert SHIPPED.is_file() and SHIPPED.stat().st_size < 5e6  # a few MB at most, inside the package
    _no_pickle(monkeypatch)
    weights, settings = load_weights(None)
    assert {"width", "pitch_range", "median"} <= set(settings) and all(torch.isfinite(w).all() for w in weights.values())
    model = load_melody_model(None)
    assert model.decoding.grid == PitchGrid(*settings["pitch_range"])


def test_fit_starts_from_released_weights_of_the_same_shape_only(tmp_path):
    task, ckpt = _checkpoint(tmp_path, width=0.125, pitch_range=(36.0, 84.0))
    release = export(ckpt, tmp_path / "jdc.safetensors")
    for source in (release, ckpt):
        started = MelodyTask(width=0.125, pitch_range=(36.0, 84.0), pretrained=str(source))
        for name, value in task.model.state_dict().items():
            torch.testing.assert_close(started.model.state_dict()[name], value)
    with pytest.raises(ValueError, match="pretrained=.*width.*0.25"):
        MelodyTask(width=0.25, pitch_range=(36.0, 84.0), pretrained=str(release))
    with pytest.raises(ValueError, match="pitch_range"):
        MelodyTask(width=0.125, pretrained=str(release))
    shipped = load_weights(None)[1]
    MelodyTask(width=shipped["width"], pitch_range=tuple(shipped["pitch_range"]), pretrained="released")


def test_other_files_are_refused_in_one_line(tmp_path):
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not a noisymss melody release"):
        load_melody_model(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_text("not tensors")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_melody_model(tmp_path / "junk.safetensors")
    with pytest.raises(FileNotFoundError, match="released weights not found"):
        load_melody_model(tmp_path / "none.safetensors")
