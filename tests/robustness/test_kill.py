"""kill -9 in the middle of `synth`, `refine` and `fit`, again and again, 2-3 s into each attempt: every
rerun resumes, and the result equals an uninterrupted run's, file for file (weights bit for bit)."""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
import torch
import yaml

from cli_harness import save_checkpoint, snapshot
from noisymss.tasks.classifier import ClassifierTask

pytestmark = pytest.mark.slow


def kill_until_done(argv: Callable[[], list[str]], cwd: Path, progress: Callable[[], int], attempts: int = 15) -> int:
    """Runs `noisymss argv()` and kills it (SIGKILL) 2-3 s after it first makes `progress` (a count of
    finished pieces of work), then reruns it, until an attempt finishes; returns how many were killed."""
    rng = random.Random(0)
    env = dict(os.environ, WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    for kills in range(attempts):
        log = open(cwd / f"attempt{kills}.log", "w")
        done = progress()
        proc = subprocess.Popen([sys.executable, "-m", "noisymss", *argv()], cwd=cwd, env=env, stdout=log, stderr=log)
        begun, delay = None, rng.uniform(2.0, 3.0)
        while proc.poll() is None:
            if begun is None and progress() > done:
                begun = time.monotonic()
            if begun is not None and time.monotonic() - begun > delay:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        proc.wait()
        log.close()
        if proc.returncode == 0:
            return kills
        assert proc.returncode == -signal.SIGKILL, (cwd / f"attempt{kills}.log").read_text()[-3000:]
    raise AssertionError(f"still not done after {attempts} attempts")


def count(folder: Path, pattern: str) -> Callable[[], int]:
    return lambda: len(list(folder.glob(pattern))) if folder.is_dir() else 0


def run_once(argv: list[str], cwd: Path) -> None:
    env = dict(os.environ, WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-m", "noisymss", *argv], cwd=cwd, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]


def test_synth_killed_again_and_again_renders_the_same_corpus(tmp_path):
    args = ["--songs", "16", "--seconds", "12", "--seed", "5", "--label-noise", "0.3"]
    run_once(["synth", "--out", "whole", *args], tmp_path)
    kills = kill_until_done(lambda: ["synth", "--out", "killed", *args], tmp_path, count(tmp_path / "killed", "songs/*/meta.json"))
    assert kills >= 1
    assert snapshot(tmp_path / "killed") == snapshot(tmp_path / "whole")  # (no temp file left either)


def test_refine_killed_again_and_again_writes_the_same_labels(demo_corpus, tmp_path):
    for name in ("whole", "killed"):
        shutil.copytree(demo_corpus, tmp_path / name)
    ckpt = save_checkpoint(ClassifierTask(classes=["vocals", "drums", "bass", "other"], sample_rate=22050, size="small"),
                           tmp_path / "c.ckpt")

    def argv(name: str) -> list[str]:
        return ["refine", "--config", str(Path(__file__).resolve().parents[2] / "configs" / "classifier.yaml"),
                "--data.init_args.catalog", f"{name}/catalog.csv", "--data.init_args.recipe.sample_rate", "22050",
                "--trainer.logger", "false", "--trainer.default_root_dir", f"run_{name}", "--ckpt_path", str(ckpt),
                "--version", "v", "--hop", "0.25"]

    run_once(argv("whole"), tmp_path)
    kills = kill_until_done(lambda: argv("killed"), tmp_path, count(tmp_path / "killed" / "catalog.labels" / ".refine-v", "*.json"))
    assert kills >= 1
    versions = [tmp_path / name / "catalog.labels" / "v.csv" for name in ("whole", "killed")]
    assert versions[0].read_text() == versions[1].read_text()
    assert not list((tmp_path / "killed").rglob(".*.part"))


def test_fit_killed_again_and_again_resumes_to_the_same_weights(timbres, tmp_path):
    config = {
        "seed_everything": 0,
        "trainer": {"accelerator": "cpu", "devices": 1, "max_epochs": 8, "logger": False, "enable_progress_bar": False,
                    "limit_val_batches": 1},
        "model": {"class_path": "noisymss.tasks.classifier.ClassifierTask",
                  "init_args": {"classes": ["tone", "noise"], "sample_rate": 16000, "size": "tiny"}},
        "data": {"class_path": "noisymss.data.datamodule.MixDataModule",
                 "init_args": {"catalog": str(timbres), "classes": ["tone", "noise"], "label_version": "true",
                               "recipe": {"segment": 1.0, "sample_rate": 16000, "channels": 1, "class_prob": 0.5},
                               "train_examples": 64, "val_examples": 8, "batch_size": 8}},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))

    def argv(root: str) -> list[str]:  # resume when a checkpoint is there (the first attempt has none)
        resume = ["--ckpt_path", "last"] if (tmp_path / root / "checkpoints" / "last.ckpt").is_file() else []
        return ["fit", "--config", "c.yaml", "--trainer.default_root_dir", root, *resume]

    def epochs_done() -> int:
        return 1 + max((int(p.name.split("-")[0].split("=")[1]) for p in (tmp_path / "killed" / "checkpoints").glob("epoch=*.ckpt")),
                       default=-1)

    run_once(argv("whole"), tmp_path)
    kills = kill_until_done(lambda: argv("killed"), tmp_path, epochs_done)
    assert kills >= 1
    whole, killed = (torch.load(tmp_path / r / "checkpoints" / "last.ckpt", weights_only=True) for r in ("whole", "killed"))
    assert killed["epoch"] == whole["epoch"] == 7
    assert not list((tmp_path / "killed").rglob(".*.part"))
    assert whole["state_dict"].keys() == killed["state_dict"].keys()
    for k, v in whole["state_dict"].items():
        assert torch.equal(v, killed["state_dict"][k]), k
