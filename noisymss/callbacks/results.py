"""Every `noisymss test` and `noisymss validate` leaves its scores in the run folder, as data.

At the end of `test` (and of a `validate` run, not of the validations inside `fit`) rank 0 writes

    <default_root_dir>/results/<stage>-<checkpoint stem>.json      e.g. results/test-last.json

(`untrained` for the stem when no `--ckpt_path` was given: the model as the config builds it),
atomically, holding every metric the run logged (`trainer.callback_metrics`, as floats; NaN as
Python's json writes it) and what it scored: the checkpoint, the data catalog, the label versions
and the seeds. A file of that name that records another checkpoint, catalog or label versions is
another run's result and is kept: the new one becomes `<stage>-<stem>-2.json`, `-3`, ... The same
test run again (same checkpoint, catalog and labels) replaces its own file.
"""
from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from itertools import count
from pathlib import Path

import lightning as L
from lightning.pytorch.trainer.states import TrainerFn

from noisymss.atomic import atomic_write_text

# the fields that say which run a results file belongs to
IDENTITY = ("stage", "checkpoint", "catalog", "label_version", "eval_label_version")


class RunResults(L.Callback):
    """Writes `results/<stage>-<checkpoint stem>.json` at the end of `test` and `validate` (rank 0)."""

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer, "test")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING:  # not the validations of a fit
            self._write(trainer, "validate")

    def _write(self, trainer: L.Trainer, stage: str) -> None:
        if not trainer.is_global_zero:
            return
        record = run_record(trainer, stage)
        path = results_path(trainer.default_root_dir, record)
        atomic_write_text(path, json.dumps(record, indent=1) + "\n")
        print(f"{stage} results: {path}")


def run_record(trainer: L.Trainer, stage: str) -> dict:
    """What a test or validate run scored, and with what."""
    dm = trainer.datamodule
    catalog = getattr(dm, "catalog_path", None)
    seed = os.environ.get("PL_GLOBAL_SEED")  # what seed_everything set
    return {
        "stage": stage,
        "checkpoint": _absolute(trainer.ckpt_path),
        "catalog": _absolute(catalog),
        "label_version": getattr(dm, "label_version", None),
        "eval_label_version": getattr(dm, "eval_label_version", None),
        "seed": int(seed) if seed is not None else None,
        "data_seed": getattr(dm, "seed", None),
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "metrics": {k: float(v) for k, v in sorted(trainer.callback_metrics.items())},
    }


def results_path(root: str | os.PathLike, record: dict) -> Path:
    """Where `record` goes: its base name, or the first `-N` name that is free or holds the same run."""
    base = Path(root) / "results" / f"{record['stage']}-{_stem(record['checkpoint'])}"
    for n in count(1):
        path = base.with_name(base.name + (f"-{n}" if n > 1 else "") + ".json")
        if not path.is_file() or _same_run(json.loads(path.read_text()), record):
            return path
    raise AssertionError("unreachable")


def find_results(root: str | os.PathLike, stage: str, checkpoint: str | os.PathLike | None) -> dict | None:
    """The newest results a `stage` run of `checkpoint` (None: untrained) wrote under `root`, or None."""
    folder = Path(root) / "results"
    base = f"{stage}-{_stem(_absolute(checkpoint))}"
    # name or name-N only: a side file such as test-last.songs.json shares the prefix
    ours = [p for p in folder.glob(f"{base}*.json") if re.fullmatch(rf"{re.escape(base)}(-\d+)?\.json", p.name)]
    found = [json.loads(p.read_text()) for p in ours] if folder.is_dir() else []
    mine = [r for r in found if r["stage"] == stage and r["checkpoint"] == _absolute(checkpoint)]
    return max(mine, key=lambda r: r["written"], default=None)


def _same_run(a: dict, b: dict) -> bool:
    return all(a.get(k) == b.get(k) for k in IDENTITY)


def _stem(checkpoint: str | None) -> str:
    return Path(checkpoint).stem if checkpoint else "untrained"


def _absolute(path: str | os.PathLike | None) -> str | None:
    return str(Path(path).resolve()) if path else None
