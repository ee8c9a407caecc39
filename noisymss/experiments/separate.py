"""`make exp-separate`: separators trained on clean, noisy and refined stem labels (Koo et al. 2023,
step 4), and on noisy labels with loss truncation (CCOM, SDX'23), on the demo corpus of `make exp-refine`.

Runs (each a `noisymss fit` of configs/separator_htdemucs.yaml with the same epochs, examples per
epoch, model and seed; only the label version, or the loss reduction, differs):

    clean             the true labels
    noisy             the given labels (30 % noise: swapped classes and merged stems)
    self_refined      round1: refined by the classifier trained on the noisy labels
    clean_refined     refined by the classifier trained on the true labels
    noisy_truncation  the given labels, loss truncation (quantile 0.7, then 0.5 from half-way)

The label versions come from `make exp-refine` (run first when they are missing). Multi-label
stems are excluded from the training pools (the configs' `multi_label: exclude`). Scored with
museval (median over 1 s frames, then over songs, then the mean over sources) on held-out demo songs:
a separately rendered clean corpus, leaving out any chorale the training corpus uses. A
`mixture / S` row (every source = the mixture's share) is the floor. Finished runs are kept.
Results: OUT/results.csv and OUT/results.md.

    python -m noisymss.experiments.separate --out runs/exp_separate [--epochs 8] [--jobs 2] [--quick]
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from noisymss.experiments.common import fit_once, load_config, point_run_at, write_results

CONFIG = "separator_htdemucs.yaml"
RUNS = {  # name: (label version, loss reduction, what it is)
    "clean": ("true", "mean", "true labels"),
    "noisy": ("given", "mean", "given (30 % noise)"),
    "self_refined": ("round1", "mean", "round1 (self-refined)"),
    "clean_refined": ("clean_refined", "mean", "refined by the clean classifier"),
    "noisy_truncation": ("given", "truncation", "given + loss truncation"),
}
HELD_OUT = dict(songs=10, seconds=20.0, seed=1000, label_noise=0.0)


def run_config(name: str, out: Path, catalog: Path, epochs: int, quick: bool) -> dict:
    """The repository config of a run, pointed at the corpus and the run folder."""
    version, robust, _ = RUNS[name]
    config = load_config(CONFIG)
    point_run_at(config, out / name, "exp_separate", name)
    data, model = config["data"]["init_args"], config["model"]["init_args"]
    data.update(catalog=str(catalog), demo=None, num_workers=0, label_version=version)  # two runs side by side
    model["robust"] = robust
    if robust == "truncation":
        model["quantile_schedule"] = [[0, 0.7], [max(1, epochs // 2), 0.5]]
    config["trainer"]["max_epochs"] = epochs
    if quick:
        data.update(train_examples=32, val_examples=16, test_examples=16)
    return config


def held_out_songs(data: Path, train_catalog: Path, quick: bool) -> tuple[Path, list[str]]:
    """Renders the clean held-out corpus; returns its catalog and the songs whose chorale the
    training corpus does not use."""
    from noisymss.data.catalog import Catalog
    from noisymss.data.synth.corpus import SynthSettings, synthesize

    settings = dict(HELD_OUT, songs=3, seconds=6.0) if quick else HELD_OUT
    cat = synthesize(data, SynthSettings(**settings, splits=(("test", 1.0),)), jobs=os.cpu_count() or 1, progress=False)
    seen = {_chorale(e.song) for e in Catalog.load(train_catalog).stems()}
    return cat.path, sorted({e.song for e in cat.stems() if _chorale(e.song) not in seen})


def _chorale(song: str) -> str:
    return song.split("_", 1)[1]  # songs are named NNNN_<chorale>


@functools.lru_cache(maxsize=2)
def _catalog(path: str):
    from noisymss.data.catalog import Catalog

    return Catalog.load(path)


@functools.lru_cache(maxsize=2)
def _separator(ckpt: str):
    from noisymss.separation.inference import load_separator

    return load_separator(ckpt)


def estimate(ckpt: str | None, catalog: str, sources: tuple[str, ...], sample_rate: int, channels: int,
             song: str) -> tuple[np.ndarray, np.ndarray]:
    """(estimates, references) of one held-out song; ckpt None: every source is mixture / S."""
    import torch

    from noisymss.separation.songs import load_song

    cat = _catalog(catalog)
    ref = load_song(cat, song, sources, cat.labels("true"), sample_rate, channels)
    if ckpt is None:
        return np.repeat(ref.mixture[None] / len(sources), len(sources), axis=0), ref.references
    with torch.inference_mode():
        return _separator(ckpt)(torch.from_numpy(ref.mixture)).float().numpy(), ref.references


def score(ckpt: Path | None, catalog: Path, songs: list[str], config: dict, jobs: int) -> dict[str, dict[str, float]]:
    """museval summary (per source and mean) of one checkpoint over the held-out songs."""
    from noisymss.metrics.separation import evaluate_songs, summarize

    m = config["model"]["init_args"]
    sources = tuple(m["sources"])
    load = functools.partial(estimate, None if ckpt is None else str(ckpt), str(catalog), sources, m["sample_rate"],
                             m["channels"])
    results = evaluate_songs(songs, load, m["sample_rate"], jobs=jobs, sources=sources)
    return summarize(results, sources)


def missing_target(catalog: Path, version: str, sources: list[str]) -> str | None:
    """Why a label version cannot train the separator (a source with no single-label training
    stem: multi-label stems are excluded), or None."""
    from noisymss.data.catalog import Catalog

    cat = Catalog.load(catalog)
    labels = cat.labels(version)
    have = {labels[e.id][0] for e in cat.stems("train") if len(labels[e.id]) == 1}
    lacking = [s for s in sources if s not in have]
    return f"no training stem labelled only '{lacking[0]}'" if lacking else None


def table(summaries: dict[str, dict], accuracy: dict[str, float], sources: list[str], n_songs: int) -> str:
    head = ["run", "trained on", "label exact match (train stems)", *[f"SDR {s}" for s in sources], "mean SDR"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in summaries.items():
        what = RUNS[name][2] if name in RUNS else "nothing (every source = mixture / 4)"
        acc = f"{accuracy[name]:.1f}" if name in accuracy else "–"
        lines.append(f"| {name} | {what} | {acc} | " + " | ".join(f"{s[src]['SDR']:.2f}" for src in sources)
                     + f" | **{s['mean']['SDR']:.2f}** |")
    lines.append(f"\nmuseval SDR in dB (median over 1 s frames and over {n_songs} held-out songs, mean over sources).")
    return "\n".join(lines)


def ensure_versions(catalog: Path, data: Path, quick: bool) -> None:
    """Runs the refine experiment when the catalog lacks a label version the runs train on.

    `data` is the folder as given: with `quick` the refine experiment adds its `_quick` itself."""
    from noisymss.data.catalog import Catalog

    needed = {v for v, _, _ in RUNS.values()} - {"true", "given"}
    have = set(Catalog.load(catalog).label_versions()) if catalog.is_file() else set()
    if needed - have:
        from noisymss.experiments import refine

        print(f"label versions {sorted(needed - have)} missing: running the refine experiment first", file=sys.stderr)
        refine.main(["--data", str(data), "--out", str(Path("runs") / ("exp_refine_quick" if quick else "exp_refine"))]
                    + (["--quick"] if quick else []))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m noisymss.experiments.separate", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/exp_separate"))
    ap.add_argument("--data", type=Path, default=Path("data/refine_exp"),
                    help="the corpus of `make exp-refine` (its label versions are trained on)")
    ap.add_argument("--held-out", type=Path, default=Path("data/separate_heldout"), help="where held-out songs are rendered")
    ap.add_argument("--epochs", type=int, default=8, help="epochs of every separator (same budget for all)")
    ap.add_argument("--jobs", type=int, default=2, help="runs side by side, and museval processes")
    ap.add_argument("--quick", action="store_true", help="tiny corpus and budget: checks the pipeline, not the method")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = (args.data.parent / f"{args.data.name}_quick" if args.quick else args.data).resolve()
    catalog = data / "catalog.csv"
    ensure_versions(catalog, args.data, args.quick)
    held_out = (args.held_out.parent / f"{args.held_out.name}_quick" if args.quick else args.held_out).resolve()
    held_catalog, songs = held_out_songs(held_out, catalog, args.quick)
    if not songs:
        raise SystemExit(f"{held_out}: every held-out chorale is also in {catalog}; render more held-out songs")

    epochs = 1 if args.quick else args.epochs
    configs = {n: run_config(n, out, catalog, epochs, args.quick) for n in RUNS}
    any_config = configs["clean"]
    sources = list(any_config["model"]["init_args"]["sources"])
    # A refine can leave a source with no single-label stem (a weak classifier labels every vocal
    # stem vocals+other): that run cannot train, and is reported rather than stopping the rest.
    skipped = {n: why for n in RUNS if (why := missing_target(catalog, RUNS[n][0], sources))}
    for name, why in skipped.items():
        print(f"{name}: skipped, label version '{RUNS[name][0]}' has {why}", file=sys.stderr)
    trained = [n for n in RUNS if n not in skipped]
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:  # threads only wait on the `noisymss fit` processes
        ckpts = dict(zip(trained, pool.map(lambda n: fit_once(configs[n], out / n, n), trained)))

    nan = {"SDR": float("nan")}
    summaries = {"mixture": score(None, held_catalog, songs, any_config, args.jobs)}
    summaries.update({n: score(ckpts[n], held_catalog, songs, configs[n], args.jobs) if n in ckpts
                      else {**{s: nan for s in sources}, "mean": nan} for n in RUNS})
    from noisymss.experiments.refine import label_scores

    accuracy = {n: label_scores(catalog, RUNS[n][0], sources)["exact_match"] for n in RUNS}
    rows = [{"run": n, "label_exact_match": accuracy.get(n, float("nan")),
             **{f"sdr_{s}": v[s]["SDR"] for s in sources}, "sdr_mean": v["mean"]["SDR"], "songs": len(songs)}
            for n, v in summaries.items()]
    md = table(summaries, accuracy, sources, len(songs))
    if skipped:
        md += "\n" + "\n".join(f"{n}: not trained, label version '{RUNS[n][0]}' has {why}." for n, why in skipped.items())
    write_results(out, rows, md)
    print("\n" + md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
