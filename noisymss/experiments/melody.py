"""`make exp-melody`: supervised-only vs the three teacher-student setups, same budget, scored on
held-out demo songs and on real Bach10 recordings (melody = the violin part).

Runs (each a `noisymss fit` of a repository config with one thing changed):

    supervised             configs/supervised.yaml            labelled songs only
    basic                  configs/noisy_student.yaml         mode basic (no noise)
    noisy_teacher_student  configs/noisy_student.yaml         mode noisy_teacher_student
    noisy_student          configs/noisy_student.yaml         mode noisy_student
    supervised_oohs        as supervised,    on a corpus whose vocals are all GM "Voice Oohs"
    noisy_student_oohs     as noisy_student, on that corpus   (what the synthetic singer changes)
    noisy_student_remix    as noisy_student, half the labelled patches remixed from stems
                           (each melody over other songs' accompaniment)

Every run has the same epochs, examples per epoch, model and seed; the teacher-student runs spend
their epochs as (iterations + 1) x epochs_per_iteration. Each finished run's last checkpoint is
scored on the demo corpus's test split and on Bach10 (when the folder exists) with mir_eval; the
validation OA of every iteration comes from the run's CSV log. Finished runs are kept, so a rerun
only does what is missing. Results: OUT/results.csv and OUT/results.md.

    python -m noisymss.experiments.melody --out runs/exp_melody [--data DIR] [--jobs 2] [--bach10 DIR] [--quick]
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from noisymss.experiments.common import fit_once, load_config, point_run_at, write_results

DEFAULT_BACH10 = Path(__file__).resolve().parents[3] / "shared" / "data" / "bach10"
RUNS = {  # name: (config, teacher-student mode or None, singing voice of the corpus, data settings changed)
    "supervised": ("supervised.yaml", None, "mix", {}),
    "basic": ("noisy_student.yaml", "basic", "mix", {}),
    "noisy_teacher_student": ("noisy_student.yaml", "noisy_teacher_student", "mix", {}),
    "noisy_student": ("noisy_student.yaml", "noisy_student", "mix", {}),
    "supervised_oohs": ("supervised.yaml", None, "oohs", {}),
    "noisy_student_oohs": ("noisy_student.yaml", "noisy_student", "oohs", {}),
    "noisy_student_remix": ("noisy_student.yaml", "noisy_student", "mix", {"remix": 0.5, "cache_dir": "data/cache"}),
}


def run_config(name: str, out: Path, corpora: dict[str, Path], quick: bool) -> dict:
    """The repository config of a run, pointed at its corpus and run folder."""
    config_name, mode, voice, data_changes = RUNS[name]
    config = load_config(config_name)
    trainer, data = config["trainer"], config["data"]["init_args"]
    point_run_at(config, out / name, "exp_melody", name)
    for callback in trainer.get("callbacks") or []:
        if callback["class_path"].endswith("TeacherStudent"):
            callback["init_args"]["mode"] = mode
            if quick:
                callback["init_args"]["epochs_per_iteration"] = 1
    data.update(catalog=str(corpora[voice] / "catalog.csv"), demo=None, num_workers=0, **data_changes)  # num_workers 0: runs go side by side
    if quick:
        trainer["max_epochs"] = 3
        data["train_examples"] = 64
    return config


def corpus_settings(voice: str, quick: bool):
    """The demo corpus of the melody configs, with the given singing voice."""
    from noisymss.data.synth.corpus import SynthSettings

    demo = dict(load_config("noisy_student.yaml")["data"]["init_args"]["demo"])
    if quick:
        demo.update(songs=8, seconds=6.0, splits=[["labelled", 2], ["unlabelled", 2], ["valid", 2], ["test", 2]])
    demo["splits"] = tuple(tuple(s) for s in demo["splits"])
    return SynthSettings(**demo, voice=voice)


def score(ckpt: Path, catalog: Path, split: str) -> dict[str, float]:
    """Mean mir_eval scores of a checkpoint over the mixtures of one catalog split."""
    import torch

    from noisymss.data.catalog import Catalog
    from noisymss.data.songs import Songs
    from noisymss.melody.features import SAMPLE_RATE
    from noisymss.melody.inference import load_melody_model, song_f0
    from noisymss.metrics.melody import METRICS, melody_scores

    model = load_melody_model(ckpt)
    cat = Catalog.load(catalog)
    songs = Songs.load(cat, cat.mixtures(split), SAMPLE_RATE, with_f0=True)
    per_song = [melody_scores(f0, song_f0(model.jdc, torch.from_numpy(x), model.median))
                for x, f0 in zip(songs.audio, songs.f0)]
    return {m: float(np.mean([s[m] for s in per_song])) for m in METRICS} | {"songs": len(per_song)}


def iteration_oa(run_dir: Path) -> list[float]:
    """Validation OA at the end of each teacher-student iteration (one value for supervised runs)."""
    rows = list(csv.DictReader(open(next(run_dir.glob("csv/version_*/metrics.csv")))))
    found = []
    for i in range(10):
        values = [r[f"val_iter{i}/OA"] for r in rows if r.get(f"val_iter{i}/OA")]
        if values:
            found.append(float(values[-1]))
    return found


def table(results: list[dict], has_bach10: bool) -> str:
    head = "| run | voice | demo test OA | VR | VFA | RPA | RCA |" + (" Bach10 OA | VR | VFA | RPA |" if has_bach10 else "") + \
        " validation OA per iteration |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        d, b = r["demo"], r.get("bach10")
        row = f"| {r['run']} | {r['voice']} | {d['OA']:.1f} | {d['VR']:.1f} | {d['VFA']:.1f} | {d['RPA']:.1f} | {d['RCA']:.1f} |"
        if has_bach10:
            row += f" {b['OA']:.1f} | {b['VR']:.1f} | {b['VFA']:.1f} | {b['RPA']:.1f} |"
        lines.append(row + " " + " → ".join(f"{v:.1f}" for v in r["val_oa"]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m noisymss.experiments.melody", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/exp_melody"))
    ap.add_argument("--data", type=Path, default=Path("data/melody_exp"), help="where the two demo corpora are rendered")
    ap.add_argument("--jobs", type=int, default=2, help="runs trained side by side (each uses one core)")
    ap.add_argument("--bach10", type=Path, default=DEFAULT_BACH10, help="Bach10 folder (skipped when absent)")
    ap.add_argument("--runs", default=",".join(RUNS), help="comma-separated subset of: " + ", ".join(RUNS))
    ap.add_argument("--quick", action="store_true", help="tiny corpus and budget: checks the pipeline, not the method")
    args = ap.parse_args(argv)
    names = [n for n in args.runs.split(",") if n]
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        ap.error(f"--runs: unknown run(s) {', '.join(unknown)}; choose from {', '.join(RUNS)}")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    from noisymss.data.synth.corpus import synthesize

    corpora = {}
    for voice in sorted({RUNS[n][2] for n in names}):
        base = args.data.parent / f"{args.data.name}_quick" if args.quick else args.data  # other settings, other folder
        corpora[voice] = base / voice
        synthesize(corpora[voice].resolve(), corpus_settings(voice, args.quick), jobs=os.cpu_count() or 1)
    bach10 = None
    if args.bach10.is_dir():
        from noisymss.data.sources import index_dir

        bach10 = out / "bach10.csv"
        if not bach10.is_file():
            index_dir(args.bach10, "bach10", progress=False)[0].save(bach10)
    else:
        print(f"{args.bach10}: not found; Bach10 columns left out", file=sys.stderr)

    with ThreadPoolExecutor(max(1, args.jobs)) as pool:  # threads only wait on the `noisymss fit` processes
        ckpts = dict(zip(names, pool.map(lambda n: fit_once(run_config(n, out, corpora, args.quick), out / n, n), names)))
    results = []
    for name in names:
        voice = RUNS[name][2]
        r = {"run": name, "voice": voice, "demo": score(ckpts[name], corpora[voice] / "catalog.csv", "test"),
             "val_oa": iteration_oa(out / name)}
        if bach10:
            r["bach10"] = score(ckpts[name], bach10, "test")
        results.append(r)
        print(f"{name}: demo OA {r['demo']['OA']:.1f}" + (f", Bach10 OA {r['bach10']['OA']:.1f}" if bach10 else ""))
    flat = [{"run": r["run"], "voice": r["voice"], **{f"demo_{k}": v for k, v in r["demo"].items()},
             **{f"bach10_{k}": v for k, v in r.get("bach10", {}).items()},
             "val_oa_per_iteration": " ".join(f"{v:.2f}" for v in r["val_oa"])} for r in results]
    md = table(results, bach10 is not None)
    write_results(out, flat, md)
    print("\n" + md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
