"""`make exp-separate`: separators trained on clean, noisy and refined stem labels (Koo et al. 2023,
step 4), and on noisy labels with loss truncation (CCOM, SDX'23), on the demo corpus of `make exp-refine`.

Runs (each configs/separator_htdemucs.yaml with the same epochs, examples per epoch and model; only
the label version, or the loss reduction, differs; noisymss.experiments.runner; the `_xumx` rows
change the model only):

    mixture           the baseline: the `mixture` separator untrained (every source = mixture / 4), one seed
    clean             the true labels
    noisy             the given labels (30 % noise: swapped classes and merged stems)
    self_refined      round1_s<seed>: refined by the classifier trained on the noisy labels (same seed)
    clean_refined     clean_refined_s<seed>: refined by the classifier trained on the true labels
    noisy_truncation  the given labels, loss truncation (quantile 0.7, then 0.5 from half-way)
    noisy_masking     the given labels, loss masking (KUIELab, SDX'23: per source, the samples below its
                      batch quantile; the same schedule)
    late_refined      late1_s<seed>: refined by the noisy classifier's last half of epochs together
    ccom_filtered     ccom_s<seed>: CCOM's automatic filter (SDX'23): noisy_truncation's separator hears each
                      training stem alone; a stem keeps its loudest source's label where that source leads every
                      other by 20 dB, else it is left out; retrained on that, with the same truncation
    clean_xumx, noisy_xumx, self_refined_xumx
                      the main comparison with X-UMX (configs/separator_xumx.yaml, the same data and budget)

The label versions come from `make exp-refine` (run first, with as many seeds, when they are
missing). Multi-label stems are excluded from the training pools (the config's `multi_label:
exclude`); a version that leaves a source without a training stem is refused by `noisymss fit` and
reported. Every run is scored by `noisymss test` on held-out songs: a separately rendered clean
corpus, leaving out any chorale the training corpus uses; its museval SDR (median over 1 s frames,
then over songs, then the mean over sources) comes from the results file, SIR / ISR / SAR from
its test_songs.json. Finished runs are kept. Results: OUT/results.csv and OUT/results.md.

    python -m noisymss.experiments.separate --out runs/exp_separate [--epochs 8] [--seeds 3] [--jobs 2] [--quick]
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from noisymss.experiments import refine, runner
from noisymss.experiments.runner import Eval, Run
from noisymss.experiments.summary import Column, bootstrap_ci, interval, paired, table

CONFIG, XUMX_CONFIG = "separator_htdemucs.yaml", "separator_xumx.yaml"
RUNS = {  # name: (label version, loss reduction, what it is)
    "clean": ("true", "mean", "true labels"),
    "noisy": ("given", "mean", "given (30 % noise)"),
    "self_refined": (refine.ROUND1, "mean", "round1 (self-refined)"),
    "clean_refined": (refine.CLEAN_REFINED, "mean", "refined by the clean classifier"),
    "noisy_truncation": ("given", "truncation", "given + loss truncation"),
    "noisy_masking": ("given", "masking", "given + loss masking"),
    "late_refined": (refine.LATE1, "mean", "late1 (refined by the late epochs together)"),
    "ccom_filtered": ("ccom_s{seed}", "truncation", "filtered by noisy_truncation's separator (CCOM) + truncation"),
}
XUMX = {  # the main comparison again with X-UMX (configs/separator_xumx.yaml, the same data and budget)
    "clean_xumx": ("true", "mean", "true labels (X-UMX)"),
    "noisy_xumx": ("given", "mean", "given (X-UMX)"),
    "self_refined_xumx": (refine.ROUND1, "mean", "round1 (X-UMX)"),
}
MADE_HERE = {"ccom_s{seed}": "noisy_truncation"}  # versions a run of this experiment writes: {version: run}
HELD_OUT = dict(songs=10, seconds=20.0, seed=1000, label_noise=0.0)
QUICK = {"data": {"init_args": {"train_examples": 32, "val_examples": 16, "test_examples": 16}}}


def runs(catalog: Path, held_out: Path, epochs: int, quick: bool) -> list[Run]:
    """The runs on the corpus `catalog`, each `epochs` epochs, tested on the songs of `held_out`."""
    budget = runner.merge({"trainer": {"max_epochs": epochs},
                           "data": {"init_args": {"catalog": str(catalog), "demo": None, "num_workers": 0}}},
                          QUICK if quick else {})  # num_workers 0: runs go side by side
    test = (Eval("test", overlay={"data": {"init_args": {"catalog": str(held_out), "label_version": "true"}}}),)
    return (separator_runs(CONFIG, budget, epochs, RUNS, MADE_HERE, test)
            + separator_runs(XUMX_CONFIG, budget, epochs, XUMX, {}, test, baseline=False))


def separator_runs(config: str, budget: dict, epochs: int, table: dict[str, tuple[str, str, str]],
                   writers: dict[str, str], test: tuple[Eval, ...] = (Eval("test"),), baseline: bool = True) -> list[Run]:
    """The untrained `mixture` baseline (unless not `baseline`) and one separator run per entry of
    `table` ({name: (label version, loss reduction, what it is)}), each `config` with the `budget` overlay.

    `writers`: {label version: run} for the versions runs of the experiment write; the run of that
    name refines into it (a separator's: CCOM's filter), and the runs that train on it need it.
    """
    def separator(name: str) -> Run:
        version, robust, _ = table[name]
        model = {"robust": robust}
        if robust in ("truncation", "masking"):
            model["quantile_schedule"] = [[0, 0.7], [max(1, epochs // 2), 0.5]]
        overlay = runner.merge(budget, {"data": {"init_args": {"label_version": version}}, "model": {"init_args": model}})
        writes = next((v for v, by in writers.items() if by == name), None)
        needs = tuple(by for v, by in writers.items() if v == version)
        return Run(name, config, overlay, evals=test, refine=writes, needs=needs,
                   labels={"trained_on": version, **({"refined": writes} if writes else {})})

    mixture = Run("mixture", config, runner.merge(budget, {"model": {"init_args": {"arch": "mixture"}}}), evals=test,
                  fit=False, seeds=1)
    return [mixture] * baseline + [separator(name) for name in table]


def held_out_catalog(data: Path, train_catalog: Path, quick: bool) -> Path:
    """Renders the clean held-out corpus and writes DATA/unseen.csv: its songs whose chorale the
    training corpus does not use."""
    from noisymss.data.catalog import Catalog
    from noisymss.data.synth.corpus import SynthSettings, synthesize

    settings = dict(HELD_OUT, songs=3, seconds=6.0) if quick else HELD_OUT
    cat = synthesize(data, SynthSettings(**settings, splits=(("test", 1.0),)), jobs=os.cpu_count() or 1, progress=False)
    seen = {_chorale(e.song) for e in Catalog.load(train_catalog).stems()}
    unseen = [e for e in cat if _chorale(e.song) not in seen]
    if not unseen:
        raise SystemExit(f"{data}: every held-out chorale is also in {train_catalog}; render more held-out songs")
    path = data / "unseen.csv"
    if not path.is_file():
        Catalog(unseen, cat.root).save(path)
    return path


def _chorale(song: str) -> str:
    return song.split("_", 1)[1]  # songs are named NNNN_<chorale>


def ensure_versions(catalog: Path, data: Path, seeds: int, quick: bool, gpu: bool = False) -> None:
    """Runs the refine experiment when the catalog lacks a label version a run trains on.

    `data` is the folder as given: with `quick` the refine experiment adds its `_quick` itself."""
    from noisymss.data.catalog import Catalog

    needed = {runner.with_seed(v, s) for v, _, _ in RUNS.values() if v not in MADE_HERE for s in range(seeds)} - {"true", "given"}
    have = set(Catalog.load(catalog).label_versions()) if catalog.is_file() else set()
    if needed - have:
        print(f"label versions {sorted(needed - have)} missing: running the refine experiment first", file=sys.stderr)
        status = refine.main(["--data", str(data), "--seeds", str(seeds),
                              "--out", str(Path("runs") / ("exp_refine_quick" if quick else "exp_refine"))]
                             + (["--quick"] if quick else []) + (["--gpu"] if gpu else []))
        if status:
            raise SystemExit(f"the refine experiment failed (exit status {status})")


def tables(rows: list[dict], sources: list[str], table_runs: dict[str, tuple[str, str, str]] = RUNS) -> str:
    columns = [Column("trained on", about={n: what for n, (_, _, what) in table_runs.items()} | {"mixture": "nothing"}),
               Column("label exact match (train stems)", ("trained_on:exact_match",)),
               Column("its filter: exact match", ("refined:exact_match",)),
               *(Column(f"SDR {s}", (f"test:test/sdr/{s}",), digits=2) for s in sources),
               Column("mean SDR", ("test:test/sdr",), digits=2)]
    return table(rows, columns) + "\n\nmuseval SDR in dB (median over 1 s frames and over the held-out songs, mean over sources)."


CLAIMS = (("self_refined", "noisy"), ("self_refined", "clean"), ("clean", "noisy"), ("noisy_truncation", "noisy"),
          ("noisy_masking", "noisy"), ("late_refined", "noisy"), ("late_refined", "self_refined"),
          ("ccom_filtered", "noisy_truncation"), ("ccom_filtered", "noisy"), ("clean_refined", "clean"),
          ("self_refined_xumx", "noisy_xumx"), ("self_refined_xumx", "clean_xumx"), ("clean_xumx", "noisy_xumx"))


def song_sdr(out: Path, name: str, seeds: int) -> dict[int, dict[str, float]]:
    """{seed: {song: SDR}} of a run on the held-out songs: museval's SDR (median over 1 s frames),
    averaged over the sources, from each seed's `noisymss test` songs file."""
    import numpy as np

    found = {}
    for seed in range(seeds):
        scores = runner.song_scores(out / f"{name}-seed{seed}" / "test")
        if scores:
            found[seed] = {song: float(np.nanmean([m["SDR"] for m in by_source.values()]))
                           for song, by_source in scores["songs"].items()}
    return found


def differences(out: Path, seeds: int, claims: tuple[tuple[str, str], ...] = CLAIMS) -> str:
    """The claims (pairs of runs) as paired differences of song SDR (same seed, same song), with 95 %
    bootstrap intervals over songs and seeds."""
    lines = ["| difference | seeds | songs | mean SDR difference [95 % interval], dB |", "|---|---|---|---|"]
    sdr = {name: song_sdr(out, name, seeds) for name in dict.fromkeys(n for pair in claims for n in pair)}  # read once
    for a, b in claims:
        diff = paired(sdr[a], sdr[b])
        songs = len({s for per in diff.values() for s in per})
        lines.append(f"| {a} − {b} | {len(diff)} | {songs} | {interval(*bootstrap_ci(diff))} |")
    return ("\n".join(lines) + "\n\nPer song, the mean over sources of museval SDR; differences paired by seed and song; "
            "interval: 2.5 and 97.5 percentiles of 2,000 draws resampling seeds and songs.")


def main(argv: list[str] | None = None) -> int:
    ap = runner.parser("python -m noisymss.experiments.separate", __doc__, "runs/exp_separate")
    ap.add_argument("--data", type=Path, default=Path("data/refine_exp"),
                    help="the corpus of `make exp-refine` (its label versions are trained on)")
    ap.add_argument("--held-out", type=Path, default=Path("data/separate_heldout"), help="where held-out songs are rendered")
    ap.add_argument("--epochs", type=int, default=8, help="epochs of every separator (same budget for all)")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = (args.data.parent / f"{args.data.name}_quick" if args.quick else args.data).resolve()
    catalog = data / "catalog.csv"
    ensure_versions(catalog, args.data, runner.seeds(args), args.quick, args.gpu)
    held_out = (args.held_out.parent / f"{args.held_out.name}_quick" if args.quick else args.held_out).resolve()
    held_catalog = held_out_catalog(held_out, catalog, args.quick)
    chosen = runner.select(runs(catalog, held_catalog, 1 if args.quick else args.epochs, args.quick), args, ap)
    rows, notes, crashed = runner.run_experiment(chosen, out, runner.seeds(args), args.jobs)
    sources = runner.instantiate(["--config", str(runner.CONFIGS / CONFIG)]).datamodule.classes
    return runner.finish(out, rows, notes, crashed,
                         tables(rows, sources, RUNS | XUMX) + "\n\n" + differences(out, runner.seeds(args)))


if __name__ == "__main__":
    raise SystemExit(main())
