"""`make exp-melody`: supervised-only vs the three teacher-student setups, same budget, scored on
held-out demo songs and on real Bach10 recordings (melody = the violin part).

Runs (each a repository run config with one thing changed; noisymss.experiments.runner):

    supervised             configs/supervised.yaml            labelled songs only
    basic                  configs/noisy_student.yaml         mode basic (no noise)
    noisy_teacher_student  configs/noisy_student.yaml         mode noisy_teacher_student
    noisy_student          configs/noisy_student.yaml         mode noisy_student
    supervised_oohs        as supervised,    on a corpus whose vocals are all GM "Voice Oohs"
    noisy_student_oohs     as noisy_student, on that corpus   (what the synthetic singer changes)
    noisy_student_remix    as noisy_student, half the labelled patches remixed from stems
                           (each melody over other songs' accompaniment)

Every run has the same epochs, examples per epoch and model; the teacher-student runs spend their
epochs as (iterations + 1) x epochs_per_iteration. Each seed's last checkpoint is scored by
`noisymss validate` (validation songs), `noisymss test` (the corpus's test songs) and `noisymss
test` on Bach10 (when the folder exists); the validation OA of the earlier iterations comes from
the TeacherStudent state in the checkpoint. Results: OUT/results.csv (one row per run and seed)
and OUT/results.md (mean and 95 % interval over seeds).

    python -m noisymss.experiments.melody --out runs/exp_melody [--data DIR] [--seeds 3] [--jobs 2]
        [--bach10 DIR] [--runs a,b] [--quick]
"""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

from noisymss.experiments import runner
from noisymss.experiments.runner import Eval, Run
from noisymss.experiments.summary import Column, table

DEFAULT_BACH10 = Path(__file__).resolve().parents[3] / "shared" / "data" / "bach10"
VOICE = {"supervised_oohs": "oohs", "noisy_student_oohs": "oohs"}  # the others sing with the corpus's own mix
MODE = {"basic": "basic", "noisy_teacher_student": "noisy_teacher_student", "noisy_student": "noisy_student",
        "noisy_student_oohs": "noisy_student", "noisy_student_remix": "noisy_student"}  # the TeacherStudent mode
QUICK = {"trainer": {"max_epochs": 3}, "data": {"init_args": {"train_examples": 64}}}
NAMES = ["supervised", "basic", "noisy_teacher_student", "noisy_student", "supervised_oohs", "noisy_student_oohs",
         "noisy_student_remix"]


def runs(corpora: dict[str, Path], bach10: Path | None, quick: bool) -> list[Run]:
    """The runs, on the rendered corpora ({voice: catalog}) and, where given, scored on Bach10 too."""
    evals = (Eval("validate", "validate"), Eval("demo"))
    if bach10:
        evals += (Eval("bach10", overlay={"data": {"init_args": {"catalog": str(bach10)}}}),)

    def run(name: str) -> Run:
        data = {"catalog": str(corpora[VOICE.get(name, "mix")]), "demo": None, "num_workers": 0}  # 0: runs side by side
        if name.endswith("remix"):
            data["remix"] = 0.5
        overlay = runner.merge({"data": {"init_args": data}}, QUICK if quick else {})
        args: tuple[str, ...] = ()
        if name in MODE:
            args = ("--trainer.callbacks.init_args.mode", MODE[name])
            if quick:
                args += ("--trainer.callbacks.init_args.epochs_per_iteration", "1")
        return Run(name, "supervised.yaml" if name.startswith("supervised") else "noisy_student.yaml", overlay, args, evals)

    return [run(name) for name in NAMES]


def corpus_settings(voice: str, quick: bool):
    """The demo corpus of configs/noisy_student.yaml, with the given singing voice."""
    demo = runner.instantiate(["--config", str(runner.CONFIGS / "noisy_student.yaml")]).datamodule.demo
    if quick:
        demo = dataclasses.replace(demo, songs=8, seconds=6.0,
                                   splits=(("labelled", 2), ("unlabelled", 2), ("valid", 2), ("test", 2)))
    return (dataclasses.replace(demo, voice=voice)).synth_settings()


def tables(rows: list[dict], has_bach10: bool) -> str:
    def scores(header: str, ev: str, metrics: list[str]) -> list[Column]:
        return [Column(f"{header} {m}", (f"{ev}:test/{m}",)) for m in metrics]

    columns = [Column("voice", about={n: VOICE.get(n, "mix") for n in NAMES}),
               *scores("demo test", "demo", ["OA", "VR", "VFA", "RPA", "RCA"]),
               *(scores("Bach10", "bach10", ["OA", "VR", "VFA", "RPA"]) if has_bach10 else []),
               Column("validation OA per iteration", ("round1:ts/teacher_val_OA", "round2:ts/teacher_val_OA",
                                                      "validate:val/OA"))]
    return table(rows, columns)


def bach10_catalog(folder: Path, out: Path) -> Path | None:
    """OUT/bach10.csv, indexed from the Bach10 folder once; None (and a note) when the folder is absent."""
    if not folder.is_dir():
        print(f"{folder}: not found; Bach10 columns left out", file=sys.stderr)
        return None
    catalog = out / "bach10.csv"
    if not catalog.is_file():
        from noisymss.data.sources import index_dir

        index_dir(folder, "bach10", progress=False)[0].save(catalog)
    return catalog


def main(argv: list[str] | None = None) -> int:
    ap = runner.parser("python -m noisymss.experiments.melody", __doc__, "runs/exp_melody")
    ap.add_argument("--data", type=Path, default=Path("data/melody_exp"), help="where the two demo corpora are rendered")
    ap.add_argument("--bach10", type=Path, default=DEFAULT_BACH10, help="Bach10 folder (skipped when absent)")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    base = (args.data.parent / f"{args.data.name}_quick" if args.quick else args.data).resolve()  # other settings, other folder
    bach10 = bach10_catalog(args.bach10, out)
    chosen = runner.select(runs({v: base / v / "catalog.csv" for v in ("mix", "oohs")}, bach10, args.quick), args, ap)

    from noisymss.data.synth.corpus import synthesize

    for voice in sorted({VOICE.get(r.name, "mix") for r in chosen}):
        synthesize(base / voice, corpus_settings(voice, args.quick), jobs=os.cpu_count() or 1)
    rows, notes, crashed = runner.run_experiment(chosen, out, runner.seeds(args), args.jobs)
    return runner.finish(out, rows, notes, crashed, tables(rows, bach10 is not None))


if __name__ == "__main__":
    raise SystemExit(main())
