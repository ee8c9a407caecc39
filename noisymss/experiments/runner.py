"""The one runner of the `make exp-*` experiments. An experiment is data: a list of `Run`s, each a
repository run config with an overlay; this module trains, refines and scores every run for every
seed with the `noisymss` verbs, and gathers what those verbs wrote into one row per run and seed.

Per run and seed, in OUT/<run>-seed<s>/ (the folder is the run's `default_root_dir`):

    overlay.yaml      the run's overlay, its seeds (`seed_everything` and the data seed) and the
                      folder; every verb reads the run config, then this, then the run's CLI args
    fit.log           `noisymss fit`; a killed fit resumes from the newest last.ckpt (--ckpt_path)
    fit.done          names the last checkpoint once the fit returned: a rerun never redoes it
    refine.log        `noisymss refine` of that checkpoint into a label version; refine.done once written
    <eval>/           each `noisymss test` / `validate` of it, in its own folder, scored on
                      the data seed EVAL_SEED (every seed sees the same examples); its
                      results/<stage>-<checkpoint stem>.json (noisymss.callbacks.results) is read,
                      and kept, so a rerun only scores what is missing

A verb that fails is reported with the reason from its log, and the runs that need it are not
started; the others go on. Nothing here scores anything itself: metrics come from the results
files, relabel rounds from the last checkpoint's relabel-callback state (found by type in the
instantiated config), and label versions against the truth from `noisymss.refine.refine_report`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from noisymss.atomic import atomic_write_records, atomic_write_text
from noisymss.experiments.summary import FOOTNOTE

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
EVAL_SEED = 0
SEP = ":"  # row fields are <eval or label column or round><SEP><metric>, e.g. "test:test/OA"


@dataclass(frozen=True)
class Eval:
    """A `noisymss test` (or `validate`) of a run's last checkpoint (or, `checkpoint="best"`, the one
    its fit kept as best on validation, checkpoints/best.ckpt), with its own overlay (e.g. other data)."""

    name: str
    verb: str = "test"
    overlay: dict = field(default_factory=dict)
    checkpoint: str = "last"


@dataclass(frozen=True)
class Run:
    """One row of an experiment.

    Args:
        name: the row; its folders are OUT/<name>-seed<s>.
        config: a run config in configs/, e.g. "classifier.yaml".
        overlay: merged into the run's overlay.yaml (an extra --config); "{seed}" in a string
            becomes the seed (e.g. a label version per seed).
        args: plain CLI overrides after the configs, e.g. ("--trainer.callbacks.init_args.mode",
            "basic") (the last callback of the config's list); "{seed}" as in `overlay`.
        evals: what scores the run; each `noisymss <verb>` of its last checkpoint.
        refine: a label version `noisymss refine` of the last checkpoint writes ("{seed}" as above).
        refine_args: more `noisymss refine` arguments, e.g. ("--calibrate", "valid").
        refine_epochs: (a, b): the refine averages the checkpoints of epochs a..b-1 instead (a
            temporal ensemble; the run's overlay must keep every epoch: trainer.keep_epochs).
        needs: runs of the same seed that must finish first (e.g. the one whose refine it trains on).
        labels: {column: label version} scored against the truth on the training stems.
        fit: False for a baseline: no training; the evals score the model as the config builds it.
        seeds: 1 for a run with nothing random in it; None: the experiment's number of seeds.
        overlays: more configs in configs/ read right after `config` (e.g. its GPU overlay, `on_gpu`).
    """

    name: str
    config: str
    overlay: dict = field(default_factory=dict)
    args: tuple[str, ...] = ()
    evals: tuple[Eval, ...] = (Eval("test"),)
    refine: str | None = None
    refine_args: tuple[str, ...] = ()
    refine_epochs: tuple[int, int] | None = None
    needs: tuple[str, ...] = ()
    labels: dict = field(default_factory=dict)
    fit: bool = True
    seeds: int | None = None
    overlays: tuple[str, ...] = ()


# The GPU overlay of every run config (configs/gpu/): the full-size model, more examples, GPU trainer flags.
GPU_OVERLAYS = {"noisy_student.yaml": "melody.yaml", "supervised.yaml": "melody.yaml",
                "mir1k_noisy_student.yaml": "melody.yaml", "mir1k_supervised.yaml": "melody.yaml",
                "release_melody.yaml": "melody_small.yaml", "melody_synth_pretrain.yaml": "melody_small.yaml",
                "classifier.yaml": "classifier.yaml", "self_refine.yaml": "classifier.yaml",
                "sdx23_classifier.yaml": "classifier.yaml", "mir1k_classifier.yaml": "classifier.yaml",
                "bach10_classifier.yaml": "classifier.yaml",
                "separator_htdemucs.yaml": "separator_htdemucs.yaml", "musdb_separator_htdemucs.yaml": "separator_htdemucs.yaml",
                "separator_xumx.yaml": "separator_xumx.yaml", "mir1k_separator_xumx.yaml": "separator_xumx.yaml",
                "bach10_separator_xumx.yaml": "separator_xumx.yaml"}


def on_gpu(runs: list[Run]) -> list[Run]:
    """The runs with their configs' GPU overlays (`--gpu`): the experiment's own overlay (its data,
    epochs and label versions) still comes after them."""
    return [replace(r, overlays=(*r.overlays, f"gpu/{GPU_OVERLAYS[r.config]}")) for r in runs]


class RunFailed(RuntimeError):
    """A verb of a run failed. `refused`: the package declined the inputs with its own one-line error
    (e.g. a label version with no stem for a source), rather than crashing."""

    def __init__(self, reason: str, refused: bool):
        super().__init__(reason)
        self.refused = refused


# ------------------------------------------------------------------ one run and seed
def folder(out: Path, run: Run, seed: int) -> Path:
    return out / f"{run.name}-seed{seed}"


def config_args(run: Run, seed: int, out: Path) -> list[str]:
    """The arguments every verb of a run gets: the run config, its overlay.yaml (written here), its args."""
    where = folder(out, run, seed)
    overlay = merge(with_seed(run.overlay, seed), {"seed_everything": seed, "trainer": {"default_root_dir": str(where)},
                                                   "data": {"init_args": {"seed": seed}}})
    path = atomic_write_text(where / "overlay.yaml", yaml.safe_dump(overlay, sort_keys=False))
    configs = [a for name in (run.config, *run.overlays) for a in ("--config", str(CONFIGS / name))]
    return [*configs, "--config", str(path), *with_seed(list(run.args), seed)]


def fit(run: Run, seed: int, out: Path) -> Path:
    """`noisymss fit` of a run (resumed when it was killed, skipped when it finished); its last checkpoint."""
    where = folder(out, run, seed)
    done = where / "fit.done"
    if done.is_file():
        return Path(done.read_text().strip())
    args = config_args(run, seed, out)
    resume = newest_last_checkpoint(where)
    noisymss(["fit", *args, *(["--ckpt_path", str(resume)] if resume else [])], where / "fit.log")
    ckpt = newest_last_checkpoint(where)
    if ckpt is None:
        raise RunFailed(f"fit left no last.ckpt; see {where / 'fit.log'}", refused=False)
    atomic_write_text(done, f"{ckpt}\n")
    return ckpt


def chosen(last: Path | None, ev: Eval) -> Path | None:
    """The checkpoint an eval scores: the fit's last, or the best on validation kept beside it."""
    if last is None or ev.checkpoint == "last":
        return last
    best = last.parent / "best.ckpt"
    if not best.is_file():
        raise RunFailed(f"{best}: no best checkpoint beside {last.name}", refused=False)
    return best


def newest_last_checkpoint(where: Path) -> Path | None:
    # the run folder's checkpoints/last.ckpt (the newest, should a custom config keep checkpoints elsewhere too)
    found = sorted(where.rglob("last.ckpt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def refine(run: Run, seed: int, out: Path, ckpt: Path) -> None:
    """`noisymss refine` of a checkpoint into the run's label version (once: refine.done marks it written).

    A version of that name made by anything else is refused by `noisymss refine` itself (versions are
    never replaced), so an experiment never trains on another experiment's labels silently."""
    where = folder(out, run, seed)
    done = where / "refine.done"
    if done.is_file():
        return
    version = with_seed(run.refine, seed)
    checkpoints = str(ckpt)
    if run.refine_epochs:  # the fit kept every epoch beside last.ckpt, as epoch=<e>-step=<n>.ckpt
        checkpoints = json.dumps([str(ckpt.parent / f"epoch={e}-*.ckpt") for e in range(*run.refine_epochs)])
    noisymss(["refine", *config_args(run, seed, out), "--ckpt_path", checkpoints, "--version", version, *run.refine_args],
             where / "refine.log")
    atomic_write_text(done, f"{version}\n")


def evaluate(run: Run, seed: int, out: Path, ev: Eval, ckpt: Path | None) -> dict:
    """The results record `noisymss <verb>` of the checkpoint wrote (scored now unless it was before)."""
    from noisymss.callbacks.results import find_results
    from noisymss.trainer import UNTRAINED

    where = folder(out, run, seed) / ev.name
    stage = "validate" if ev.verb == "validate" else "test"
    record = find_results(where, stage, ckpt)
    if record is None:
        overlay = merge(with_seed(ev.overlay, seed), {"trainer": {"default_root_dir": str(where)},
                                                      "data": {"init_args": {"seed": EVAL_SEED}}})
        path = atomic_write_text(where / "overlay.yaml", yaml.safe_dump(overlay, sort_keys=False))
        args = [ev.verb, *config_args(run, seed, out), "--config", str(path)]
        noisymss(args + ["--ckpt_path", str(ckpt) if ckpt else UNTRAINED], where / f"{ev.verb}.log")
        record = find_results(where, stage, ckpt)
    if record is None:
        raise RunFailed(f"{ev.verb} wrote no results; see {where / f'{ev.verb}.log'}", refused=False)
    return record


def noisymss(args: list[str], log: Path) -> None:
    """Runs `noisymss ARGS` (one thread), appending its output to `log`; raises RunFailed with the reason."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        res = subprocess.run([sys.executable, "-m", "noisymss", *args], stdout=f, stderr=subprocess.STDOUT,
                             env=dict(os.environ, OMP_NUM_THREADS="1"))
    if res.returncode != 0:
        reason = refusal(log.read_text(errors="replace"), args[0])
        raise RunFailed(f"{reason or f'noisymss {args[0]} failed'} (see {log})", refused=reason is not None)


def refusal(log_text: str, verb: str) -> str | None:
    """The one-line error the `noisymss` command prints for the package's own errors, or None (a crash)."""
    lines = [line for line in log_text.splitlines() if line.startswith(f"noisymss {verb}: error: ")]
    return lines[-1] if lines else None


# ------------------------------------------------------------------ many runs and seeds
def schedule(units: list[tuple[str, int]], needs: Callable[[tuple[str, int]], Iterable[tuple[str, int]]],
             work: Callable[[tuple[str, int]], Any], jobs: int) -> dict[tuple[str, int], Any]:
    """Runs `work` on every unit, `jobs` at a time, each after the units it needs, in list order.

    Returns {unit: what work returned, or the RunFailed it raised}; a unit whose need failed gets
    a RunFailed saying so and is not started. Other exceptions (bugs) propagate.
    """
    outcome: dict[tuple[str, int], Any] = {}
    pending, running = list(units), {}
    with ThreadPoolExecutor(max(1, jobs)) as pool:  # threads only wait on `noisymss` processes
        while pending or running:
            for unit in list(pending):
                wanted = list(needs(unit))
                failed = [n for n in wanted if isinstance(outcome.get(n), RunFailed)]
                if failed:
                    pending.remove(unit)
                    outcome[unit] = RunFailed(f"not started: needs {failed[0][0]} seed {failed[0][1]}, which failed",
                                              outcome[failed[0]].refused)
                elif len(running) < max(1, jobs) and all(n in outcome for n in wanted):
                    pending.remove(unit)
                    running[pool.submit(work, unit)] = unit
            if not running:
                if pending:
                    raise ValueError(f"runs {sorted({u[0] for u in pending})} need runs that are not in the experiment")
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                unit = running.pop(future)
                try:
                    outcome[unit] = future.result()
                except RunFailed as err:
                    outcome[unit] = err
    return outcome


def run_experiment(runs: list[Run], out: Path, seeds: int, jobs: int) -> tuple[list[dict], list[str], bool]:
    """Every run for every seed; returns (rows, notes on what failed, whether anything crashed)."""
    by_name = {r.name: r for r in runs}
    units = [(r.name, s) for s in range(seeds) for r in runs if s < (r.seeds or seeds)]

    def work(unit: tuple[str, int]) -> dict:
        run, seed = by_name[unit[0]], unit[1]
        ckpt = fit(run, seed, out) if run.fit else None
        done = {"checkpoint": ckpt, "evals": {ev.name: evaluate(run, seed, out, ev, chosen(ckpt, ev)) for ev in run.evals}}
        if run.refine:
            try:
                refine(run, seed, out, ckpt)
            except RunFailed as err:  # refused (e.g. a filter that kept no stem): the run's own scores stand,
                if not err.refused:   # and the runs that train on its version are refused for lack of it
                    raise
                done["refine_refused"] = str(err)
        return done

    outcome = schedule(units, lambda u: [(n, u[1]) for n in by_name[u[0]].needs], work, jobs)
    rows, notes = [], []
    for name, seed in units:
        got = outcome[(name, seed)]
        if isinstance(got, RunFailed):
            rows.append({"run": name, "seed": seed, "error": str(got)})
            notes.append(f"- `{name}` seed {seed}: {got}")
        else:
            rows.append({"run": name, "seed": seed, **collect(by_name[name], seed, out, got)})
            if got.get("refine_refused"):
                notes.append(f"- `{name}` seed {seed}: its scores stand; {got['refine_refused']}")
    return rows, notes, any(isinstance(o, RunFailed) and not o.refused for o in outcome.values())


# ------------------------------------------------------------------ what the verbs wrote
def collect(run: Run, seed: int, out: Path, got: dict) -> dict:
    """One row: every eval's metrics, the relabel rounds of the fit, the label versions against the truth."""
    row: dict[str, Any] = {"checkpoint": str(got["checkpoint"] or "")}
    for name, record in got["evals"].items():
        row.update({f"{name}{SEP}{k}": v for k, v in record["metrics"].items()})
        songs = song_scores(folder(out, run, seed) / name)
        if songs:
            summary = songs["summary"]
            row.update({f"{name}{SEP}museval/{src}/{m}": v for src, s in summary.items() for m, v in s.items()})
    if run.fit or run.labels:
        cli = instantiate(config_args(run, seed, out))
        if got["checkpoint"]:
            row.update(relabel_rounds(cli, got["checkpoint"]))
        if run.labels:
            from noisymss.data.catalog import Catalog

            catalog, classes = Catalog.load(cli.datamodule.catalog_path), list(cli.datamodule.classes)
            for column, version in run.labels.items():
                version = with_seed(version, seed)
                if version in catalog.label_versions() or version == "true":  # a refused refine wrote none
                    row.update({f"{column}{SEP}{k}": v for k, v in label_scores(catalog, version, classes).items()})
    return row


def song_scores(where: Path) -> dict | None:
    """A separator's museval scores that `noisymss test` wrote beside its results file in the eval
    folder `where` (separation/song_scores.py: {"songs": ..., "summary": ...}), the newest; None without."""
    found = sorted((where / "results").glob("test-*.songs.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(found[-1].read_text()) if found else None


def instantiate(args: list[str]):
    """The LightningCLI of a run's arguments, parsed and instantiated but not run (no loggers)."""
    from noisymss.lightning_cli import build

    return build([*args, "--trainer.logger", "false"], run=False)


def relabel_rounds(cli, ckpt: Path) -> dict[str, float]:
    """The history of the run's relabel callbacks (teacher-student iterations, self-refining rounds)
    as checkpointed at the end of its fit: {"round<r>:<metric>": value}."""
    import torch

    from noisymss.callbacks.relabel import RelabelCallback

    states = torch.load(ckpt, map_location="cpu", weights_only=True).get("callbacks", {})
    row = {}
    for callback in (c for c in cli.trainer.callbacks if isinstance(c, RelabelCallback)):
        if callback.state_key in states:
            callback.load_state_dict(states[callback.state_key])
            row.update({f"round{r}{SEP}{k}": float(v) for r, rec in enumerate(callback.history, 1) for k, v in rec.items()})
    return row


def label_scores(catalog, version: str, classes: list[str], split: str = "train") -> dict[str, float]:
    """A label version against the truth on one split's stems, as `noisymss refine` reports its own
    (`refine_report`, every stem of the split counted as scored): exact match, macro F1, stems changed."""
    import numpy as np

    from noisymss.refine import StemScore, refine_report

    rows = refine_report(catalog, classes, catalog.labels(version), {e.id: StemScore("ok") for e in catalog.stems(split)})
    total = rows[-1]
    return {"exact_match": total.get("refined_exact_match", float("nan")),
            "macro_f1": float(np.nanmean([r.get("refined_f1", float("nan")) for r in rows[:-1]])),
            "changed": float(total["changed_stems"])}


# ------------------------------------------------------------------ small pieces
def merge(base: dict, over: dict) -> dict:
    """`over` merged into a copy of `base`, nested dicts key by key (as a later --config overlays)."""
    merged = dict(base)
    for k, v in over.items():
        merged[k] = merge(merged[k], v) if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
    return merged


def with_seed(value: Any, seed: int) -> Any:
    """`value` with "{seed}" in every string replaced by the seed."""
    if isinstance(value, str):
        return value.replace("{seed}", str(seed))
    if isinstance(value, dict):
        return {k: with_seed(v, seed) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(with_seed(v, seed) for v in value)
    return value


def parser(prog: str, doc: str, out: str) -> argparse.ArgumentParser:
    """The options every experiment takes; each adds its own."""
    ap = argparse.ArgumentParser(prog=prog, description=doc.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path(out), help="experiment folder (default %(default)s)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per run: 0, 1, ... (default 3; 1 with --quick)")
    ap.add_argument("--jobs", type=int, default=2, help="runs side by side, each one process of one thread (default 2)")
    ap.add_argument("--runs", default="", help="comma-separated runs to do (default all; the runs they need come too)")
    ap.add_argument("--quick", action="store_true", help="tiny corpus and budget: checks the pipeline, not the method")
    ap.add_argument("--gpu", action="store_true", help="every run with its config's GPU overlay (configs/gpu/): "
                    "full-size models, more examples per epoch; give the epochs for that size too")
    return ap


def seeds(args: argparse.Namespace) -> int:
    return args.seeds or (1 if args.quick else 3)


def select(runs: list[Run], args: argparse.Namespace, ap: argparse.ArgumentParser) -> list[Run]:
    """The runs named in `args.runs` (all when empty) and those they need, in experiment order; with
    their GPU overlays under `args.gpu`."""
    wanted = [n for n in args.runs.split(",") if n]
    unknown = [n for n in wanted if n not in {r.name for r in runs}]
    if unknown:
        ap.error(f"--runs: unknown run(s) {', '.join(unknown)}; choose from {', '.join(r.name for r in runs)}")
    keep = set(wanted or (r.name for r in runs))
    for run in reversed(runs):  # needs come earlier in the list
        if run.name in keep:
            keep.update(run.needs)
    chosen = [r for r in runs if r.name in keep]
    return on_gpu(chosen) if getattr(args, "gpu", False) else chosen


def finish(out: Path, rows: list[dict], notes: list[str], crashed: bool, markdown: str) -> int:
    """Writes the results, prints the summary (and what failed); exit status 1 when a run crashed."""
    md = markdown + "\n\n" + FOOTNOTE + ("\n\nNot done:\n\n" + "\n".join(notes) if notes else "")
    write_results(out, rows, md)
    print("\n" + md)
    for note in notes:
        print(note, file=sys.stderr)
    return 1 if crashed else 0


def write_results(out: Path, rows: list[dict], markdown: str) -> None:
    """OUT/results.csv (one row per run and seed) and OUT/results.md (the summary), each written atomically."""
    atomic_write_records(out / "results.csv", rows)
    atomic_write_text(out / "results.md", markdown + "\n")
