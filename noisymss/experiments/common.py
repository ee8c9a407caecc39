"""What the `make exp-*` experiments share: running `noisymss` verbs as logged subprocesses, finding a
run's last checkpoint, and writing results tables atomically."""
from __future__ import annotations

import copy
import functools
import os
import subprocess
import sys
from pathlib import Path

import yaml

from noisymss.atomic import atomic_write_records, atomic_write_text

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def load_config(name: str) -> dict:
    """A repository config (configs/NAME) as one dict, its pieces resolved as `noisymss fit` reads them."""
    return copy.deepcopy(_resolved(name))


@functools.lru_cache(maxsize=None)
def _resolved(name: str) -> dict:
    res = subprocess.run([sys.executable, "-m", "noisymss", "fit", "--config", str(CONFIGS / name), "--print_config"],
                         capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    if res.returncode != 0:
        raise RuntimeError(f"configs/{name} does not parse: {res.stderr.strip().splitlines()[-1:]}")
    return yaml.safe_load(res.stdout)


def point_run_at(config: dict, run_dir: Path, group: str, name: str) -> None:
    """Sends a config's checkpoints and logs to `run_dir` (W&B: group and run name)."""
    trainer = config["trainer"]
    trainer["default_root_dir"] = str(run_dir)
    for logger in trainer.get("logger") or []:
        logger["init_args"]["save_dir"] = str(run_dir)
        if "group" in logger["init_args"]:
            logger["init_args"].update(group=group, name=name)


def noisymss(args: list[str], log: Path) -> None:
    """Runs `noisymss ARGS` (one thread), output to `log`; raises naming the log when it fails."""
    with open(log, "w") as f:
        res = subprocess.run([sys.executable, "-m", "noisymss", *args], stdout=f, stderr=subprocess.STDOUT,
                             env=dict(os.environ, OMP_NUM_THREADS="1"))
    if res.returncode != 0:
        raise RuntimeError(f"noisymss {args[0]} failed; see {log}")


def fit_once(config: dict, run_dir: Path, name: str) -> Path:
    """`noisymss fit` of a config (unless it finished before); returns its last checkpoint."""
    done = run_dir / "last.ckpt.path"  # written when the run finished: a killed run is redone
    if done.is_file():
        return Path(done.read_text().strip())
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir.parent / f"{name}.yaml"
    atomic_write_text(config_path, yaml.safe_dump(config, sort_keys=False))
    noisymss(["fit", "--config", str(config_path)], run_dir.parent / f"{name}.log")
    ckpts = sorted(run_dir.rglob("last.ckpt"), key=lambda p: p.stat().st_mtime)  # under the first logger's folder
    if not ckpts:
        raise RuntimeError(f"run {name} left no last.ckpt; see {run_dir.parent / f'{name}.log'}")
    atomic_write_text(done, f"{ckpts[-1]}\n")
    return ckpts[-1]


def write_results(out: Path, rows: list[dict], markdown: str) -> None:
    """OUT/results.csv (flat rows) and OUT/results.md, each written atomically."""
    atomic_write_records(out / "results.csv", rows)
    atomic_write_text(out / "results.md", markdown + "\n")
