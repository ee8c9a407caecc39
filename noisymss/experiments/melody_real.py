"""`make exp-melody-real`: Kum et al. 2020 (arXiv:2008.06358) on real singing, MIR-1K split by singer.

Labelled: the `labelled` singers (20 %); unlabelled: the `unlabelled` singers' clips (50 %; the
DataModule never reads their pitch labels) and the ten Jamendo songs; the checkpoint is chosen on
the `valid` singers (10 %, checkpoints/best.ckpt) and scored once on the `test` singers (20 %) and
on Bach10 (the melody is the violin).

Every run starts from one model pretrained on 200 synthetic songs only (configs/melody_synth_pretrain.yaml,
OUT/pretrain-seed0: it never saw a MIR-1K label; without it, a first teacher trained on 16 k
patches of the labelled singers still called every frame unvoiced, so it had nothing to teach),
then trains the same epochs of the same number of patches (configs/mir1k_supervised.yaml,
configs/mir1k_noisy_student.yaml, at the pretrained model's pitch range); only how those epochs
are spent differs:

    supervised             labelled clips only
    basic                  teacher-student, k = 2, no noise
    noisy_teacher_student  k = 2, the teacher and student hear the same fixed noise
    noisy_student          k = 2, clean teacher, noised student (the main row)
    noisy_student_k1/_k3   k = 1 or 3 in the same epochs (6 or 3 per iteration instead of 4)
    noisy_student_pretrain each student: 2 epochs on pseudo labels only, then 2 on labelled clips
                           (the paper's pretraining then fine-tuning; the others train jointly)
    noisy_student_quarter     a quarter of the unlabelled clips (a fixed draw per seed)
    noisy_student_unfiltered  every unlabelled clip, whatever its share of voiced frames
                           (the others keep those the first teacher finds >= 20 % voiced)

Melodia (Essentia) is scored on the same clips as a peer row when essentia is installed.

    python -m noisymss.experiments.melody_real --out runs/exp_melody_real [--seeds 3] [--jobs 2]
        [--shared ../shared/data] [--runs a,b] [--quick]
"""
from __future__ import annotations

import sys
from pathlib import Path

from noisymss.experiments import runner
from noisymss.experiments.catalogs import few_songs, one_split_catalog
from noisymss.experiments.melody_data import mir1k_catalog, score_split, synth_catalog
from noisymss.experiments.runner import Eval, Run, noisymss
from noisymss.experiments.summary import Column, mean_ci, table

ROOT = Path(__file__).resolve().parents[2]
TS = "--trainer.callbacks.init_args."
RUNS = {  # name: (config, CLI overrides of the TeacherStudent callback and the data)
    "supervised": ("mir1k_supervised.yaml", ()),
    "basic": ("mir1k_noisy_student.yaml", (TS + "mode", "basic")),
    "noisy_teacher_student": ("mir1k_noisy_student.yaml", (TS + "mode", "noisy_teacher_student")),
    "noisy_student": ("mir1k_noisy_student.yaml", ()),
    "noisy_student_k1": ("mir1k_noisy_student.yaml", (TS + "iterations", "1")),
    "noisy_student_k3": ("mir1k_noisy_student.yaml", (TS + "iterations", "3")),
    "noisy_student_pretrain": ("mir1k_noisy_student.yaml", (TS + "pretrain_epochs", "2")),
    "noisy_student_quarter": ("mir1k_noisy_student.yaml", ("--data.init_args.unlabelled_songs", "130")),
    "noisy_student_unfiltered": ("mir1k_noisy_student.yaml", (TS + "min_voiced", "0.0")),
}
QUICK = {"trainer": {"max_epochs": 3}, "data": {"init_args": {"train_examples": 32, "batch_size": 8}}}
QUICK_ARGS = {"noisy_student_k3": (TS + "iterations", "2"), "noisy_student_pretrain": (TS + "pretrain_epochs", "0")}


PITCH_RANGE = [36.0, 84.0]  # configs/melody_synth_pretrain.yaml's


def pretraining(catalog: Path, quick: bool) -> Run:
    """The synthetic-only pretraining every run starts from (one, seed 0: the runs differ after it)."""
    data = {"catalog": str(catalog), "num_workers": 0}
    return Run("pretrain", "melody_synth_pretrain.yaml", runner.merge({"data": {"init_args": data}}, QUICK if quick else {}),
               evals=())


def runs(catalog: Path, bach10: Path | None, quick: bool, pretrained: Path | None = None) -> list[Run]:
    """The runs; `pretrained`: the checkpoint they start from (the pretraining's best)."""
    evals = (Eval("validate", "validate", checkpoint="best"), Eval("test", checkpoint="best"))
    if bach10:
        evals += (Eval("bach10", overlay={"data": {"init_args": {"catalog": str(bach10), "labelled_split": "test",
                                                                 "val_split": "test", "test_split": "test",
                                                                 "unlabelled_split": None}}}, checkpoint="best"),)
    out = []
    for name, (config, args) in RUNS.items():
        data = {"catalog": str(catalog), "num_workers": 0}  # 0: runs side by side, one core each
        model = {"pitch_range": PITCH_RANGE, "pretrained": str(pretrained) if pretrained else None}
        overlay = runner.merge({"data": {"init_args": data}, "model": {"init_args": model}}, QUICK if quick else {})
        if quick:
            args = QUICK_ARGS.get(name, args) + ((TS + "epochs_per_iteration", "1") if "noisy" in config else ())
        out.append(Run(name, config, overlay, tuple(args), evals))
    return out


def data(shared: Path, folder: Path, quick: bool) -> Path:
    """MIR-1K by singer, the Jamendo songs as more unlabelled audio, and the synthetic songs of the
    pretraining (split `synth`), in one catalog (made once); --quick: 2 clips a split, 2 short songs."""
    name = "catalog_quick.csv" if quick else "catalog.csv"
    catalog = folder / name
    if catalog.is_file():
        return catalog
    parts = [mir1k_catalog(shared, folder.parent)]
    if quick:
        parts = [few_songs(parts[0], folder / "mir1k_quick.csv")]
    elif (shared / "jamendo").is_dir():
        parts.append(one_split_catalog(shared / "jamendo", "mixtures", "unlabelled", folder / "jamendo.csv"))
    parts.append(synth_catalog(folder.parent, quick))
    noisymss(["catalog", "merge", *map(str, parts), "--out", str(catalog)], folder / "catalog.log")
    return catalog


def melodia_rows(catalog: Path, bach10: Path | None) -> list[dict]:
    """Melodia's scores on the test singers and Bach10, as one row (nothing random: one seed)."""
    from noisymss.melody import melodia

    if not melodia.available():
        print("essentia is not installed: no Melodia row (pip install essentia)", file=sys.stderr)
        return []
    row = {"run": "Melodia (essentia)", "seed": 0}
    for name, (path, split) in {"test": (catalog, "test"), "bach10": (bach10, "test")}.items():
        if path is None:
            continue
        scores = score_split(None, path, split, melodia=True)["scores"]["Melodia"]
        for metric in ("OA", "VR", "VFA", "RPA", "RCA"):
            row[f"{name}:test/{metric}"] = sum(s[metric] for s in scores) / len(scores)
    return [row]


def paired(rows: list[dict], a: str, b: str, key: str = "test:test/OA") -> str:
    """'a − b' per seed on one metric, mean ± 95 % interval (the seeds pair the runs: same data draw)."""
    by_seed = {name: {r["seed"]: r.get(key) for r in rows if r["run"] == name and "error" not in r} for name in (a, b)}
    diffs = [by_seed[a][s] - by_seed[b][s] for s in by_seed[a] if s in by_seed[b] and None not in (by_seed[a][s], by_seed[b][s])]
    mean, half, n = mean_ci(diffs)
    return f"{a} − {b}, {key.split(':')[0]} OA, paired by seed: " + (
        f"{mean:+.1f} ± {half:.1f} (n = {n})" if n > 1 else (f"{mean:+.1f} (one seed)" if n else "no pairs yet"))


def tables(rows: list[dict], has_bach10: bool) -> str:
    def scores(header: str, ev: str, metrics: list[str]) -> list[Column]:
        return [Column(f"{header} {m}", (f"{ev}:test/{m}",)) for m in metrics]

    columns = [*scores("test singers", "test", ["OA", "VR", "VFA", "RPA", "RCA"]),
               *(scores("Bach10", "bach10", ["OA", "RPA"]) if has_bach10 else []),
               Column("valid OA (best checkpoint)", ("validate:val/OA",)),
               Column("valid OA per iteration", ("round1:ts/teacher_val_OA", "round2:ts/teacher_val_OA",
                                                 "round3:ts/teacher_val_OA"))]
    lines = [table(rows, columns), ""]
    lines += [f"- {paired(rows, name, 'supervised')}" for name in RUNS if name != "supervised"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = runner.parser("python -m noisymss.experiments.melody_real", __doc__, "runs/exp_melody_real")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data", help="the shared data folder")
    ap.add_argument("--data", type=Path, default=Path("data/melody_real"), help="where the catalogs go")
    args = ap.parse_args(argv)
    if not (args.shared / "mir1k").is_dir():
        ap.error(f"--shared {args.shared}: no mir1k folder there; give the shared data folder")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    catalog = data(args.shared, args.data.resolve(), args.quick)
    bach10 = None
    if (args.shared / "bach10").is_dir() and not args.quick:
        bach10 = one_split_catalog(args.shared / "bach10", "bach10", "test", args.data.resolve() / "bach10.csv")
    pre = pretraining(catalog, args.quick)
    pretrained = runner.fit(runner.on_gpu([pre])[0] if args.gpu else pre, 0, out).parent / "best.ckpt"
    chosen = runner.select(runs(catalog, bach10, args.quick, pretrained), args, ap)
    rows, notes, crashed = runner.run_experiment(chosen, out, runner.seeds(args), args.jobs)
    if not args.quick:
        rows += melodia_rows(catalog, bach10)
    return runner.finish(out, rows, notes, crashed, tables(rows, bach10 is not None))


if __name__ == "__main__":
    raise SystemExit(main())
