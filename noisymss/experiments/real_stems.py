"""`make exp-real-stems`: self-refining of noisy stem labels (Koo et al. 2023, arXiv:2307.12576) on
real stems with injected label noise and the truth kept, beside the SDX'23 methods (arXiv:2308.06979).

    --set mir1k   MIR-1K: each clip's vocal and accompaniment channels (two classes, 16 kHz mono),
                  split by singer
    --set bach10  Bach10: violin, clarinet, saxophone and bassoon of ten chorales (22.05 kHz mono),
                  split by song

The data, made once under --data with the `noisymss` verbs: the set indexed and split (60 % of the
audio to train, 10 % valid, 30 % test), then 30 % of the training stems corrupted by
`noisymss catalog noise` (swap, merge and bleed taking turns, noise seed 0: every run sees the
same noisy stems). Validation and test stems are untouched and scored with their true labels.

Runs (classifiers: configs/<set>_classifier.yaml; separators: configs/<set>_separator_xumx.yaml;
within each kind, the same epochs, examples per epoch and model):

    clf_noisy      classifier on the given (noisy) labels; its last half of epochs together refine
                   the training stems (a temporal ensemble: their mean probability), each class's
                   threshold chosen on the validation stems (`--calibrate valid`) -> refined_s<seed>
    clf_clean      classifier on the true labels
    clf_refined    classifier on refined_s<seed> (the paper's claim: about as good as clf_clean)
    mixture        separator baseline: untrained `mixture` (every source = the mixture / sources)
    clean, noisy, self_refined     separators on true, given, refined_s<seed> labels
    noisy_truncation, noisy_masking   given labels with loss truncation (CCOM) / loss masking (KUIELab)
    ccom_filtered  CCOM's automatic filter: noisy_truncation's separator hears each training stem alone,
                   keeps its loudest source's label where it leads by 20 dB (else the stem is left
                   out) -> ccom_s<seed>; retrained with truncation
    refined_truncation   refined_s<seed> with loss truncation (self-refining and CCOM combined)

Classifiers are scored by `noisymss test` on test-split mixtures (true labels); separators by museval
on the whole test songs, with the claims as paired differences of song SDR (bootstrap over songs and
seeds). Results: OUT/results.csv and OUT/results.md.

    python -m noisymss.experiments.real_stems --set mir1k --out runs/exp_real_mir1k [--seeds 3]
        [--jobs 2] [--shared ../shared/data] [--data data/real_stems] [--quick]
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from noisymss.experiments import runner, separate
from noisymss.experiments.catalogs import few_songs, split_catalog
from noisymss.experiments.runner import Run, noisymss
from noisymss.experiments.summary import Column, table

ROOT = Path(__file__).resolve().parents[2]
SPLIT = "train=0.6,valid=0.1,test=0.3"
NOISE = ["--rate", "0.3", "--kinds", "swap,merge,bleed", "--seed", "0"]
REFINED, CCOM = "refined_s{seed}", "ccom_s{seed}"
# the training stems relabelled, each class's threshold chosen on the (clean) validation stems
REFINE_ARGS = ("--split", "train", "--calibrate", "valid")


@dataclass(frozen=True)
class StemSet:
    """A real-stem set: its folder in the shared data, index format, and run configs."""

    folder: str
    classifier: str
    separator: str


SETS = {"mir1k": StemSet("mir1k", "mir1k_classifier.yaml", "mir1k_separator_xumx.yaml"),
        "bach10": StemSet("bach10", "bach10_classifier.yaml", "bach10_separator_xumx.yaml")}
SEPARATORS = {  # name: (label version, loss reduction, what it is)
    "clean": ("true", "mean", "true labels"),
    "noisy": ("given", "mean", "given (30 % noise)"),
    "self_refined": (REFINED, "mean", "self-refined (clf_noisy's late epochs)"),
    "noisy_truncation": ("given", "truncation", "given + loss truncation"),
    "noisy_masking": ("given", "masking", "given + loss masking"),
    "ccom_filtered": (CCOM, "truncation", "filtered by noisy_truncation's separator (CCOM) + truncation"),
    "refined_truncation": (REFINED, "truncation", "self-refined + loss truncation"),
}
WRITERS = {REFINED: "clf_noisy", CCOM: "noisy_truncation"}  # {label version: the run that writes it}
CLASSIFIERS = {"clf_noisy": "given (noisy)", "clf_clean": "true labels", "clf_refined": "self-refined"}
CLAIMS = (("self_refined", "noisy"), ("self_refined", "clean"), ("clean", "noisy"), ("noisy_truncation", "noisy"),
          ("noisy_masking", "noisy"), ("ccom_filtered", "noisy"), ("refined_truncation", "self_refined"))
QUICK = {"data": {"init_args": {"train_examples": 32, "val_examples": 16, "test_examples": 16}}}


def runs(stem_set: StemSet, catalog: Path, classifier_epochs: int, separator_epochs: int, quick: bool) -> list[Run]:
    """The classifier and separator runs on the noisy `catalog`."""
    def budget(epochs: int) -> dict:
        return runner.merge({"trainer": {"max_epochs": epochs},
                             "data": {"init_args": {"catalog": str(catalog), "num_workers": 0}}},
                            QUICK if quick else {})  # num_workers 0: runs go side by side

    def classifier(name: str, trains_on: str, needs: tuple[str, ...] = ()) -> Run:
        overlay = runner.merge(budget(classifier_epochs), {"data": {"init_args": {"label_version": trains_on}}})
        writes = next((v for v, by in WRITERS.items() if by == name), None)
        if writes:  # keep every epoch: the refine averages the last half
            overlay = runner.merge(overlay, {"trainer": {"keep_epochs": True}})
        return Run(name, stem_set.classifier, overlay, refine=writes, refine_args=REFINE_ARGS if writes else (),
                   needs=needs, refine_epochs=(classifier_epochs // 2, classifier_epochs) if writes else None,
                   labels={"trained_on": trains_on, **({"refined": writes} if writes else {})})

    classifiers = [classifier("clf_noisy", "given"), classifier("clf_clean", "true"),
                   classifier("clf_refined", REFINED, needs=("clf_noisy",))]
    return classifiers + separate.separator_runs(stem_set.separator, budget(separator_epochs), separator_epochs,
                                                 SEPARATORS, WRITERS)


def data(stem_set: StemSet, shared: Path, folder: Path, quick: bool) -> Path:
    """The set indexed, split and noised (each step made once); returns the noisy catalog."""
    name = stem_set.folder + ("_quick" if quick else "")
    noisy = folder / f"{name}_noisy.csv"
    if not noisy.is_file():
        clean = split_catalog(shared / stem_set.folder, stem_set.folder, SPLIT, folder / f"{stem_set.folder}.csv")
        if quick:
            clean = few_songs(clean, folder / f"{name}.csv", per_split=3)
        noisymss(["catalog", "noise", str(clean), *NOISE, "--out", str(noisy)], folder / f"{name}_noisy.log")
    return noisy


def tables(rows: list[dict], sources: list[str], out: Path, seeds: int) -> str:
    trained_on = Column("trained on", about=CLASSIFIERS)
    classifiers = table([r for r in rows if r["run"] in CLASSIFIERS], [
        trained_on,
        Column("its labels: exact match", ("trained_on:exact_match",)),
        Column("macro F1", ("trained_on:macro_f1",)),
        Column("its refine: exact match", ("refined:exact_match",)),
        Column("macro F1", ("refined:macro_f1",)),
        Column("stems changed", ("refined:changed",)),
        *(Column(f"test {m}", (f"test:test/{m}",)) for m in ["exact_match", "macro_f1", "mAP"])])
    separators = separate.tables([r for r in rows if r["run"] not in CLASSIFIERS], sources, SEPARATORS)
    return (f"Classifiers (label versions against the truth of the training stems; `noisymss test` on test-split "
            f"mixtures, true labels):\n\n{classifiers}\n\nSeparators (whole test songs):\n\n{separators}\n\n"
            f"{separate.differences(out, seeds, CLAIMS)}")


def main(argv: list[str] | None = None) -> int:
    ap = runner.parser("python -m noisymss.experiments.real_stems", __doc__, "runs/exp_real_<set>")
    ap.add_argument("--set", required=True, choices=sorted(SETS), help="the real stems: mir1k or bach10")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data", help="the shared data folder")
    ap.add_argument("--data", type=Path, default=Path("data/real_stems"), help="where the catalogs and noisy stems go")
    ap.add_argument("--classifier-epochs", type=int, default=16, help="epochs of every classifier (default 16)")
    ap.add_argument("--separator-epochs", type=int, default=20, help="epochs of every separator (default 20)")
    args = ap.parse_args(argv)
    stem_set = SETS[args.set]
    if not (args.shared / stem_set.folder).is_dir():
        ap.error(f"--shared {args.shared}: no {stem_set.folder} folder there; give the shared data folder")
    out = (Path(f"runs/exp_real_{args.set}") if args.out.name == "exp_real_<set>" else args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    catalog = data(stem_set, args.shared, args.data.resolve(), args.quick)
    epochs = (2, 1) if args.quick else (args.classifier_epochs, args.separator_epochs)
    chosen = runner.select(runs(stem_set, catalog, *epochs, args.quick), args, ap)
    rows, notes, crashed = runner.run_experiment(chosen, out, runner.seeds(args), args.jobs)
    sources = runner.instantiate(["--config", str(runner.CONFIGS / stem_set.separator)]).datamodule.classes
    return runner.finish(out, rows, notes, crashed, tables(rows, sources, out, runner.seeds(args)))


if __name__ == "__main__":
    raise SystemExit(main())
