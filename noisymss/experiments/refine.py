"""`make exp-refine`: self-refining of noisy stem labels (Koo et al. 2023) on a demo corpus with 30 %
label noise (swapped classes and merged stems), against the truth the corpus knows.

Runs (each a `noisymss fit` of configs/classifier.yaml with the label version changed, and the same
epochs, examples per epoch, model and seed; refines are `noisymss refine` with its defaults):

    noisy     trained on the given (noisy) labels      -> refine -> label version round1
    round1    trained on round1                        -> refine -> label version round2
    round2    trained on round2                        (the self-refined classifier after 2 rounds)
    clean     trained on the true labels               -> refine -> label version clean_refined
    in_fit    configs/self_refine.yaml: 2 rounds inside one fit of the same epochs
              (versions in_fit1, in_fit2 written by the callback)

Reported: (a) exact match and macro F1 against the truth of the training stems' labels under each
version; (b) test exact match, macro F1 and mAP of every classifier on seeded mixtures of the test
songs, scored with the true labels; (c) the clean classifier's refine, for comparison with the
paper. The runs go in two lanes (noisy → round1 → round2, and clean → in_fit) side by side.
Finished runs and written versions are kept, so a rerun only does what is missing.
Results: OUT/results.csv and OUT/results.md.

    python -m noisymss.experiments.refine --out runs/exp_refine [--data DIR] [--epochs 12] [--jobs 2] [--quick]
"""
from __future__ import annotations

import argparse
import csv
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import yaml

from noisymss.atomic import atomic_write_text
from noisymss.experiments.common import fit_once, load_config, noisymss, point_run_at, write_results

CLASSES_CONFIG, SELF_REFINE_CONFIG = "classifier.yaml", "self_refine.yaml"
ROUNDS = 2
# run: (label version it trains on, label version its refine writes or None)
CHAIN = {"noisy": ("given", "round1"), "round1": ("round1", "round2"), "round2": ("round2", None)}
CLEAN = {"clean": ("true", "clean_refined")}


def run_config(name: str, out: Path, catalog: Path, epochs: int, quick: bool) -> dict:
    """The repository config of a run, pointed at the corpus and the run folder."""
    config = load_config(SELF_REFINE_CONFIG if name == "in_fit" else CLASSES_CONFIG)
    point_run_at(config, out / name, "exp_refine", name)
    data = config["data"]["init_args"]
    data.update(catalog=str(catalog), demo=None, num_workers=0)  # num_workers 0: two runs go side by side
    if name != "in_fit":
        data["label_version"] = {**CHAIN, **CLEAN}[name][0]
    for callback in config["trainer"].get("callbacks") or []:
        if callback["class_path"].endswith("SelfRefine"):
            callback["init_args"].update(every_n_epochs=max(1, epochs // (ROUNDS + 1)), rounds=ROUNDS,
                                         write_versions=True, prefix="in_fit")
    config["trainer"]["max_epochs"] = epochs
    if quick:
        data.update(train_examples=64, val_examples=32, test_examples=32)
    return config


def refine_once(config: dict, ckpt: Path, version: str, catalog: Path, log: Path) -> None:
    """`noisymss refine` of a checkpoint into `version` (unless that version exists)."""
    from noisymss.data.catalog import Catalog

    cat = Catalog.load(catalog)
    if version in cat.label_versions():
        made_by = str(cat.provenance(version).get("checkpoint", ""))
        if Path(made_by).resolve() != ckpt.resolve():  # another experiment's labels: never train on those silently
            raise RuntimeError(f"label version '{version}' of {catalog} was made by {made_by or 'something else'}, not by "
                               f"{ckpt}; give this experiment its own --data folder")
        return
    config_path = log.with_suffix(".yaml")
    atomic_write_text(config_path, yaml.safe_dump(config, sort_keys=False))
    noisymss(["refine", "--config", str(config_path), "--ckpt_path", str(ckpt), "--version", version], log)


def test_scores(config: dict, ckpt: Path, run_dir: Path) -> dict[str, float]:
    """`noisymss test` of a checkpoint on the test songs (true labels): exact match, macro F1, mAP."""
    config = dict(config, trainer=dict(config["trainer"], callbacks=[], logger=[
        {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(run_dir), "name": "test"}}]))
    config_path = run_dir.parent / f"{run_dir.name}_test.yaml"
    atomic_write_text(config_path, yaml.safe_dump(config, sort_keys=False))
    noisymss(["test", "--config", str(config_path), "--ckpt_path", str(ckpt)], run_dir.parent / f"{run_dir.name}_test.log")
    latest = max(run_dir.glob("test/version_*/metrics.csv"), key=lambda p: p.stat().st_mtime)
    row = [r for r in csv.DictReader(open(latest)) if r.get("test/exact_match")][-1]
    return {k: float(row[f"test/{k}"]) for k in ("exact_match", "macro_f1", "mAP")}


def label_scores(catalog: Path, version: str, classes: list[str], split: str = "train") -> dict[str, float]:
    """Exact match and macro F1 (in %) of one label version against the truth, over one split's stems."""
    from noisymss.data.catalog import Catalog
    from noisymss.refine import f1_percent

    cat = Catalog.load(catalog)
    labels, stems = cat.labels(version), cat.stems(split)
    given = cat.labels("given")
    f1 = [f1_percent([c in labels[e.id] for e in stems], [c in e.true_labels for e in stems]) for c in classes]
    return {"exact_match": float(100 * np.mean([set(labels[e.id]) == set(e.true_labels) for e in stems])),
            "macro_f1": float(np.nanmean(f1)),
            "changed": int(sum(set(labels[e.id]) != set(given[e.id]) for e in stems)), "stems": len(stems)}


def corpus_settings(quick: bool):
    """The demo corpus of configs/classifier.yaml (30 % label noise)."""
    from noisymss.data.synth.corpus import SynthSettings

    demo = dict(load_config(CLASSES_CONFIG)["data"]["init_args"]["demo"])
    if quick:
        demo.update(songs=10, seconds=6.0)
    return SynthSettings(**demo)


VERSIONS = [  # (label version, how it was made)
    ("given", "given (30 % noise)"), ("round1", "refined by `noisy` (round 1)"),
    ("round2", "refined by `round1` (round 2)"), ("in_fit1", "in-fit round 1"), ("in_fit2", "in-fit round 2"),
    ("clean_refined", "refined by `clean` (c)"),
]
TRAINED_ON = {"clean": "true labels", "noisy": "given (noisy)", "round1": "round1", "round2": "round2 (self-refined)",
              "in_fit": "given, refined in the fit twice"}


def tables(labels: dict[str, dict], tests: dict[str, dict]) -> str:
    lines = ["| label version | made by | exact match vs truth (train stems) | macro F1 | stems changed |", "|---|---|---|---|---|"]
    for version, made_by in VERSIONS:
        if version in labels:
            s = labels[version]
            lines.append(f"| {version} | {made_by} | {s['exact_match']:.1f} | {s['macro_f1']:.1f} | {s['changed']} of {s['stems']} |")
    lines += ["", "| classifier | trained on | test exact match | test macro F1 | test mAP |", "|---|---|---|---|---|"]
    for run, s in tests.items():
        lines.append(f"| {run} | {TRAINED_ON[run]} | {s['exact_match']:.1f} | {s['macro_f1']:.1f} | {s['mAP']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m noisymss.experiments.refine", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/exp_refine"))
    ap.add_argument("--data", type=Path, default=Path("data/refine_exp"), help="where the demo corpus is rendered")
    ap.add_argument("--epochs", type=int, default=12, help="epochs of every classifier (same budget for all)")
    ap.add_argument("--jobs", type=int, default=2, help="lanes of runs side by side (each uses one core)")
    ap.add_argument("--quick", action="store_true", help="tiny corpus and budget: checks the pipeline, not the method")
    args = ap.parse_args(argv)
    if args.epochs < ROUNDS + 1:
        ap.error(f"--epochs {args.epochs}: give at least {ROUNDS + 1} (the in-fit run needs one epoch per round and after)")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    from noisymss.data.synth.corpus import synthesize

    data = (args.data.parent / f"{args.data.name}_quick" if args.quick else args.data).resolve()
    catalog = synthesize(data, corpus_settings(args.quick), jobs=os.cpu_count() or 1).path
    epochs = ROUNDS + 1 if args.quick else args.epochs
    configs = {n: run_config(n, out, catalog, epochs, args.quick) for n in [*CHAIN, *CLEAN, "in_fit"]}
    ckpts: dict[str, Path] = {}

    def lane(names: list[str]) -> None:
        for name in names:
            ckpts[name] = fit_once(configs[name], out / name, name)
            writes = {**CHAIN, **CLEAN}.get(name, (None, None))[1]
            if writes:
                refine_once(configs[name], ckpts[name], writes, catalog, out / f"{name}_refine.log")

    lanes = [list(CHAIN), [*CLEAN, "in_fit"]]
    if args.jobs > 1:
        with ThreadPoolExecutor(2) as pool:  # threads only wait on the `noisymss` processes
            list(pool.map(lane, lanes))
    else:
        for names in lanes:
            lane(names)

    classes = configs["noisy"]["data"]["init_args"]["classes"]
    labels = {v: label_scores(catalog, v, classes) for v, _ in VERSIONS}
    tests = {n: test_scores(configs[n], ckpts[n], out / n) for n in ["clean", *CHAIN, "in_fit"]}
    rows = [{"kind": "labels", "name": v, **s} for v, s in labels.items()] + \
           [{"kind": "classifier", "name": n, **{f"test_{k}": v for k, v in s.items()}} for n, s in tests.items()]
    md = tables(labels, tests)
    write_results(out, rows, md)
    print("\n" + md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
