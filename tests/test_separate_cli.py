"""The separator configs end to end: `noisymss fit` (with tiny overrides), `noisymss test` (museval
on whole songs) and `noisymss separate` on the duets corpus (conftest)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _noisymss(*args, cwd):
    env = dict(os.environ, WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "noisymss", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def _tiny(catalog, root):
    """Overrides that shrink a repository separator config to the duets corpus (the model's sources,
    rate, channels and segment follow the data's through the CLI's links)."""
    return ["--trainer.max_epochs", "1", "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
            "--trainer.default_root_dir", str(root),
            "--data.init_args.catalog", str(catalog), "--data.init_args.classes", "[tone, noise]",
            "--data.init_args.label_version", "given", "--data.init_args.eval_label_version", "null",
            "--data.init_args.recipe.segment", "1.0", "--data.init_args.recipe.sample_rate", "16000",
            "--data.init_args.recipe.channels", "1", "--data.init_args.train_examples", "16",
            "--data.init_args.val_examples", "8", "--data.init_args.test_examples", "8",
            "--data.init_args.num_workers", "0", "--data.init_args.cache_dir", str(root / "cache"),
            "--data.init_args.demo", "null"]


@pytest.mark.parametrize("config", ["separator_htdemucs.yaml",
                                    pytest.param("separator_xumx.yaml", marks=pytest.mark.slow)])  # keeps make test < 10 min
def test_fit_test_and_separate_from_the_repository_configs(config, duets, tmp_path):
    pytest.importorskip("museval")
    shutil.copytree(duets.parent, tmp_path / "data")
    catalog, run = tmp_path / "data" / "catalog.csv", tmp_path / "run"
    res = _noisymss("fit", "--config", str(CONFIGS / config), *_tiny(catalog, run), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    ckpt = next(run.rglob("last.ckpt"))

    res = _noisymss("test", "--config", str(CONFIGS / config), *_tiny(catalog, run), "--ckpt_path", str(ckpt),
                    cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    songs = json.loads((run / "results" / "test-last.songs.json").read_text())["songs"]
    assert list(songs) == ["d7"] and all(set(v) == {"SDR", "SIR", "ISR", "SAR"} for v in songs["d7"].values())

    mix = tmp_path / "mix.wav"
    sf.write(mix, sum(sf.read(p)[0] for p in sorted((tmp_path / "data" / "d7").glob("*.wav"))), 16000)
    res = _noisymss("separate", str(mix), "--ckpt", str(ckpt), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    outs = {p.name: sf.read(p)[0] for p in (tmp_path / "out" / "mix").iterdir()}
    assert set(outs) == {"tone.wav", "noise.wav"} and all(len(a) == 32000 for a in outs.values())
