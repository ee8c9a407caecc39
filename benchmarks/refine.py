"""Refine benchmark: stem-seconds scored per second per CPU core, and the 1-vs-2-rank speed-up.

What it measures, on a 20-song demo corpus (80 stems of 30 s, 44.1 kHz stereo FLAC) with the
small classifier (speed does not depend on the weights, so it is untrained):
    per core    `refine_catalog` in this process with one torch thread: decoding, windowing
                (3 s windows, 1.5 s hop), silence test, forward, aggregation; stem-seconds per
                second of wall time = "× real time" on one core. Goal: >= 200×.
    ranks       `noisymss refine` from the shell with --trainer.devices 1 and with 2 (CPU DDP,
                gloo), OMP_NUM_THREADS=1, whole commands timed (process start included) and,
                from each run's own log, the scoring alone; the two label versions must be equal.
                Goal: >= 1.8× with identical output.

Run:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/refine.py    # about 3 minutes
Options: --data DIR (corpus folder, made on first use; default /tmp/noisymss-bench-refine).
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import yaml  # noqa: E402


def corpus(data: Path) -> Path:
    from noisymss.data.synth.corpus import SynthSettings, synthesize

    if not (data / "catalog.csv").is_file():
        synthesize(data, SynthSettings(songs=20, seconds=30.0, seed=0, voice="oohs"), jobs=os.cpu_count() or 1, progress=False)
    return data / "catalog.csv"


def checkpoint(folder: Path) -> Path:
    import lightning as L

    from noisymss.tasks.classifier import ClassifierTask

    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=folder)
    trainer.strategy.connect(ClassifierTask())
    trainer.save_checkpoint(folder / "classifier.ckpt")
    return folder / "classifier.ckpt"


def per_core(catalog_path: Path, ckpt: Path) -> dict:
    from noisymss.checkpoints import load_checkpoint
    from noisymss.data.catalog import Catalog
    from noisymss.refine import RefineSettings, refine_catalog
    from noisymss.tasks.classifier import ClassifierTask

    torch.set_num_threads(1)
    task = ClassifierTask()
    task.load_state_dict(load_checkpoint(ckpt).state_dict)
    cat = Catalog.load(catalog_path)
    seconds = sum(e.duration for e in cat.stems())
    t = time.perf_counter()
    refine_catalog(task.eval(), cat, task.classes, RefineSettings(), None, {}, progress=False, resumable=False)
    wall = time.perf_counter() - t
    return {"stems": len(cat.stems()), "stem_seconds": seconds, "wall_s": wall, "x_real_time": seconds / wall}


def ranks(catalog_path: Path, ckpt: Path, folder: Path) -> list[dict]:
    config = {
        "trainer": {"accelerator": "cpu", "logger": False, "enable_progress_bar": False, "default_root_dir": str(folder)},
        "model": {"class_path": "noisymss.tasks.classifier.ClassifierTask"},
        "data": {"class_path": "noisymss.data.datamodule.MixDataModule",
                 "init_args": {"catalog": str(catalog_path), "classes": ["vocals", "drums", "bass", "other"],
                               "recipe": {"segment": 3.0}}},
    }
    (folder / "refine.yaml").write_text(yaml.safe_dump(config))
    rows = []
    for devices in (1, 2):
        version = f"bench{devices}_{int(time.time())}"
        cmd = [sys.executable, "-m", "noisymss", "refine", "--config", str(folder / "refine.yaml"), "--ckpt_path", str(ckpt),
               "--version", version, "--trainer.devices", str(devices)] + (["--trainer.strategy", "ddp"] if devices > 1 else [])
        env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled")
        t = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t
        if res.returncode != 0:
            raise SystemExit(res.stderr[-3000:])
        bar = re.findall(r"refine: 100%.*?\[(\d+):(\d+)<", res.stderr)  # tqdm's elapsed time of rank 0's share
        scoring = int(bar[-1][0]) * 60 + int(bar[-1][1]) if bar else float("nan")
        rows.append({"devices": devices, "wall_s": wall, "scoring_s": scoring,
                     "labels": (catalog_path.parent / "catalog.labels" / f"{version}.csv").read_text().splitlines()})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "noisymss-bench-refine")
    args = ap.parse_args()
    catalog_path = corpus(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = checkpoint(Path(tmp))
        core = per_core(catalog_path, ckpt)
        by_rank = ranks(catalog_path, ckpt, Path(tmp))
    print(f"\nrefine, small classifier, {core['stems']} stems, {core['stem_seconds']:.0f} stem-seconds (44.1 kHz stereo FLAC):")
    print(f"  one process, one thread: {core['wall_s']:.1f} s = {core['x_real_time']:.0f}x real time per core "
          f"(goal >= 200x: {'met' if core['x_real_time'] >= 200 else 'MISSED'})")
    one, two = by_rank
    same = one["labels"] == two["labels"]
    print(f"  noisymss refine, 1 device: {one['wall_s']:.1f} s (scoring {one['scoring_s']:.0f} s); "
          f"2 DDP processes: {two['wall_s']:.1f} s (scoring {two['scoring_s']:.0f} s)")
    print(f"  speed-up: {one['wall_s'] / two['wall_s']:.2f}x whole command, "
          f"{one['scoring_s'] / max(two['scoring_s'], 1e-9):.2f}x scoring (goal >= 1.8x); identical label versions: "
          f"{'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
