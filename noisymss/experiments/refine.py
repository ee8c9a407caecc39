"""`make exp-refine`: self-refining of noisy stem labels (Koo et al. 2023) on a demo corpus with 30 %
label noise (swapped classes and merged stems), against the truth the corpus knows.

Runs (each configs/classifier.yaml with the label version changed, and the same epochs, examples
per epoch and model; refines are `noisymss refine` with its defaults; noisymss.experiments.runner):

    noisy     trained on the given (noisy) labels      -> refine -> label version round1_s<seed>
    round1    trained on round1_s<seed>                -> refine -> label version round2_s<seed>
    round2    trained on round2_s<seed>                (the self-refined classifier after 2 rounds)
    clean     trained on the true labels               -> refine -> label version clean_refined_s<seed>
    in_fit    configs/self_refine.yaml: 2 rounds inside one fit of the same epochs
    noisy_late  noisy's training, refined by its last half of epochs together -> label version late1_s<seed>
              (a temporal ensemble: the mean of those checkpoints' probabilities)
    late1     trained on late1_s<seed>                 (the self-refined classifier, ensemble refine)

Each seed refines into its own label versions, so seed s of round1 trains on what seed s of noisy
refined. Reported, as mean and 95 % interval over seeds: (a) exact match, macro F1 and stems
changed against the truth of the training stems, for the labels each run trains on and those its
refine (or its in-fit rounds) wrote; (b) `noisymss test` of every classifier: exact match, macro F1
and mAP on the seeded test mixtures of the test songs, labelled with the truth. Finished runs and
written versions are kept, so a rerun only does what is missing; a version of the same name made
by anything else is refused (give each experiment its own --data).
Results: OUT/results.csv and OUT/results.md.

    python -m noisymss.experiments.refine --out runs/exp_refine [--data DIR] [--epochs 12] [--seeds 3]
        [--jobs 2] [--quick]
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from noisymss.experiments import runner
from noisymss.experiments.runner import Run
from noisymss.experiments.summary import Column, table

ROUNDS = 2  # of the in-fit run
ROUND1, ROUND2, CLEAN_REFINED, LATE1 = "round1_s{seed}", "round2_s{seed}", "clean_refined_s{seed}", "late1_s{seed}"
QUICK = {"data": {"init_args": {"train_examples": 64, "val_examples": 32, "test_examples": 32}}}
TRAINED_ON = {"noisy": "given (noisy)", "round1": "round1", "round2": "round2 (self-refined)", "clean": "true labels",
              "in_fit": "given, refined in the fit twice", "noisy_late": "given (noisy)", "late1": "late1 (self-refined)"}


def runs(catalog: Path, epochs: int, quick: bool) -> list[Run]:
    """The runs on the corpus `catalog`, each `epochs` epochs."""
    budget = runner.merge({"trainer": {"max_epochs": epochs},
                           "data": {"init_args": {"catalog": str(catalog), "demo": None, "num_workers": 0}}},
                          QUICK if quick else {})  # num_workers 0: runs go side by side

    def classifier(name: str, trains_on: str, writes: str | None = None, needs: tuple[str, ...] = (),
                   late: bool = False) -> Run:
        overlay = runner.merge(budget, {"data": {"init_args": {"label_version": trains_on}}})
        labels = {"trained_on": trains_on, **({"refined": writes} if writes else {})}
        if late:  # keep every epoch; the refine averages the last half
            overlay = runner.merge(overlay, {"trainer": {"keep_epochs": True}})
        return Run(name, "classifier.yaml", overlay, refine=writes, needs=needs, labels=labels,
                   refine_epochs=(epochs // 2, epochs) if late else None)

    every = str(epochs // (ROUNDS + 1))
    in_fit = Run("in_fit", "self_refine.yaml", runner.merge(budget, {"data": {"init_args": {"label_version": "given"}}}),
                 ("--trainer.callbacks.init_args.every_n_epochs", every, "--trainer.callbacks.init_args.rounds", str(ROUNDS)),
                 labels={"trained_on": "given"})
    return [classifier("noisy", "given", ROUND1), classifier("round1", ROUND1, ROUND2, ("noisy",)),
            classifier("round2", ROUND2, needs=("round1",)), classifier("clean", "true", CLEAN_REFINED), in_fit,
            classifier("noisy_late", "given", LATE1, late=True), classifier("late1", LATE1, needs=("noisy_late",))]


def corpus_settings(quick: bool):
    """The demo corpus of configs/classifier.yaml (30 % label noise)."""
    demo = runner.instantiate(["--config", str(runner.CONFIGS / "classifier.yaml")]).datamodule.demo
    return (dataclasses.replace(demo, songs=10, seconds=6.0) if quick else demo).synth_settings()


def tables(rows: list[dict]) -> str:
    trained_on = Column("trained on", about=TRAINED_ON)
    rounds = lambda metric: tuple(f"round{r}:refine/{metric}" for r in range(1, ROUNDS + 1))  # noqa: E731
    labels = table(rows, [
        trained_on,
        Column("its labels: exact match", ("trained_on:exact_match",)),
        Column("macro F1", ("trained_on:macro_f1",)),
        Column("its refine (in-fit rounds): exact match", ("refined:exact_match", *rounds("exact_match_vs_truth"))),
        Column("macro F1", ("refined:macro_f1",)),
        Column("stems changed", ("refined:changed", *rounds("changed_stems"))),
    ])
    tests = table(rows, [trained_on, *(Column(f"test {m}", (f"test:test/{m}",)) for m in ["exact_match", "macro_f1", "mAP"])])
    return (f"Label versions against the truth (training stems):\n\n{labels}\n\n"
            f"Classifiers (`noisymss test`: test mixtures, true labels):\n\n{tests}")


def main(argv: list[str] | None = None) -> int:
    ap = runner.parser("python -m noisymss.experiments.refine", __doc__, "runs/exp_refine")
    ap.add_argument("--data", type=Path, default=Path("data/refine_exp"), help="where the demo corpus is rendered")
    ap.add_argument("--epochs", type=int, default=12, help="epochs of every classifier (same budget for all)")
    args = ap.parse_args(argv)
    if args.epochs < ROUNDS + 1:
        ap.error(f"--epochs {args.epochs}: give at least {ROUNDS + 1} (the in-fit run needs one epoch per round and after)")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    from noisymss.data.synth.corpus import synthesize

    data = (args.data.parent / f"{args.data.name}_quick" if args.quick else args.data).resolve()
    catalog = synthesize(data, corpus_settings(args.quick), jobs=os.cpu_count() or 1).path
    chosen = runner.select(runs(catalog, ROUNDS + 1 if args.quick else args.epochs, args.quick), args, ap)
    rows, notes, crashed = runner.run_experiment(chosen, out, runner.seeds(args), args.jobs)
    return runner.finish(out, rows, notes, crashed, tables(rows))


if __name__ == "__main__":
    raise SystemExit(main())
