"""`noisymss predict` writes each task's result per file, through LightningCLI, from a real checkpoint."""
import json
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import mir_eval
import numpy as np
import pytest

from noisymss.audio.io import write_audio
from noisymss.tasks.classifier import ClassifierTask
from noisymss.tasks.melody import MelodyTask
from noisymss.tasks.separator import SeparatorTask

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _noisymss(*args, cwd):
    env = dict(os.environ, WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "noisymss", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def _checkpoint(model: L.LightningModule, path: Path) -> Path:
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, max_epochs=0)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    return path


def _inputs(tmp_path: Path, rate: int = 44100) -> list[Path]:
    """Two 2 s songs with the same name in two folders, and one more."""
    t = np.arange(2 * rate) / rate
    songs = []
    for i, name in enumerate(["a/mix.wav", "b/mix.wav", "c.flac"]):
        tone = (0.3 * np.sin(2 * np.pi * 220 * (i + 1) * t)).astype(np.float32)
        songs.append(write_audio(tmp_path / "in" / name, np.stack([tone, tone]), rate))
    return songs


@pytest.mark.parametrize("config, model, expected", [
    ("noisy_student.yaml", lambda: MelodyTask(width=0.125), ["a/mix.f0.txt", "b/mix.f0.txt", "c.f0.txt"]),
    ("classifier.yaml", lambda: ClassifierTask(), ["a/mix.labels.json", "b/mix.labels.json", "c.labels.json"]),
    ("separator_htdemucs.yaml",
     lambda: SeparatorTask(arch="htdemucs", sample_rate=22050, segment=2.0),
     [f"{d}/{s}.wav" for d in ("a/mix", "b/mix", "c") for s in ("bass", "drums", "other", "vocals")]),
], ids=["melody", "classifier", "separator"])
def test_predict_writes_one_result_per_input(config, model, expected, tmp_path):
    songs = _inputs(tmp_path)
    ckpt = _checkpoint(model(), tmp_path / "model.ckpt")
    res = _noisymss("predict", "--config", str(CONFIGS / config), "--ckpt_path", str(ckpt), "--trainer.logger", "false",
                    "--files", json.dumps([str(s) for s in songs]), "--out", "out", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == sorted(expected)
    first = tmp_path / "out" / expected[0]
    if first.suffix == ".txt":
        times, freqs = mir_eval.io.load_time_series(str(first))
        assert len(times) == 201 and np.all(freqs >= 0)
    elif first.suffix == ".json":
        result = json.loads(first.read_text())
        assert result["status"] == "ok" and set(result["probabilities"]) == {"vocals", "drums", "bass", "other"}
    else:
        import soundfile as sf

        info = sf.info(str(first))
        assert (info.samplerate, info.channels, info.frames) == (44100, 2, 2 * 44100)  # the input's format


@pytest.mark.slow  # (in-process in tests/robustness, which make test runs)
def test_predict_refuses_random_weights_and_missing_files(tmp_path):
    songs = _inputs(tmp_path)
    res = _noisymss("predict", "--config", str(CONFIGS / "noisy_student.yaml"), "--trainer.logger", "false",
                    "--files", json.dumps([str(songs[0])]), "--out", "out", cwd=tmp_path)
    assert res.returncode == 1 and "predict needs --ckpt_path" in res.stderr
    ckpt = _checkpoint(MelodyTask(width=0.125), tmp_path / "model.ckpt")
    res = _noisymss("predict", "--config", str(CONFIGS / "noisy_student.yaml"), "--ckpt_path", str(ckpt),
                    "--trainer.logger", "false", "--files", json.dumps(["nope.wav"]), "--out", "out", cwd=tmp_path)
    assert res.returncode == 1 and "nope.wav: no such input file" in res.stderr
    assert not (tmp_path / "out").exists()
