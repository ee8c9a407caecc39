"""`make release-melody`: rebuilds the melody model shipped with noisymss from the shared data, and its card.

Steps, each skipped when its result is there (a rerun after an interruption resumes):
    1. the catalog: MIR-1K indexed and split by singer (seed 0, the split of every MIR-1K config:
       labelled / unlabelled / valid / test singers), 200 synthetic songs, merged;
    2. `noisymss fit --config configs/release_melody.yaml`, resumed from its last checkpoint;
    3. the checkpoint best on the validation singers exported without pickle to
       noisymss/melody/weights/jdc_vocal.safetensors;
    4. its voicing threshold chosen on the validation singers (the one with the best mean OA; JDC's
       argmax is a candidate), kept in the release's settings;
    5. scored once on the held-out MIR-1K test singers, on the validation singers and on Bach10 (its
       melody is the violin), and for voicing on the ten Jamendo songs (real polyphonic songs with
       vocal activity from their lyrics lines), with Essentia's Melodia on the same audio when
       essentia is installed;
    6. the card docs/melody_model.md (and its curves docs/figures/melody_release.png) written.

    python -m noisymss.experiments.release_melody [--shared ../shared/data] [--data data] [--run runs/release_melody]
"""
from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
from pathlib import Path

import numpy as np

from noisymss.atomic import atomic_path, atomic_write_text
from noisymss.experiments.catalogs import one_split_catalog
from noisymss.experiments.melody_data import (calibrate_voicing, mir1k_catalog, score_split, synth_catalog,
                                              voicing_vs_activity)
from noisymss.experiments.runner import CONFIGS, noisymss
from noisymss.experiments.summary import mean_ci
from noisymss.melody.released import SHIPPED, export

ROOT = Path(__file__).resolve().parents[2]
CONFIG = CONFIGS / "release_melody.yaml"
METRICS = ("OA", "VR", "VFA", "RPA", "RCA")


def catalog(shared: Path, data: Path) -> Path:
    """data/melody_release/catalog.csv: MIR-1K split by singer + the synthetic songs (made once)."""
    merged = data / "melody_release" / "catalog.csv"
    if merged.is_file():
        return merged
    noisymss(["catalog", "merge", str(mir1k_catalog(shared, data)), str(synth_catalog(data)), "--out", str(merged)],
             data / "melody_release.log")
    return merged


def train(run: Path) -> Path:
    """The fit (resumed after an interruption, skipped when finished); its best checkpoint."""
    best = run / "checkpoints" / "best.ckpt"
    if not (run / "fit.done").is_file():
        last = run / "checkpoints" / "last.ckpt"
        noisymss(["fit", "--config", str(CONFIG), "--trainer.default_root_dir", str(run),
                  *(["--ckpt_path", str(last)] if last.is_file() else [])], run / "fit.log")
        atomic_write_text(run / "fit.done", f"{best}\n")
    if not best.is_file():
        raise SystemExit(f"{best}: the fit kept no best checkpoint; see {run / 'fit.log'}")
    return best


def curves(run: Path, figure: Path) -> list[tuple[int, float, float]]:
    """(epoch, mean training loss, validation OA) per epoch from the run's CSV log; plotted to `figure`."""
    import csv

    rows = []
    for log in sorted(run.glob("csv/version_*/metrics.csv")):
        with open(log) as f:
            rows += list(csv.DictReader(f))
    loss: dict[int, list[float]] = {}
    oa: dict[int, float] = {}
    for r in rows:
        epoch = int(float(r["epoch"])) if r.get("epoch") else None
        if epoch is None:
            continue
        if r.get("train/loss"):
            loss.setdefault(epoch, []).append(float(r["train/loss"]))
        if r.get("val/OA"):
            oa[epoch] = float(r["val/OA"])
    table = [(e, float(np.mean(loss.get(e, [np.nan]))), oa[e]) for e in sorted(oa)]
    if table:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, left = plt.subplots(figsize=(6, 3))
        epochs = [e for e, *_ in table]
        left.plot(epochs, [x for _, x, _ in table], color="tab:blue")
        left.set_xlabel("epoch")
        left.set_ylabel("training loss", color="tab:blue")
        right = left.twinx()
        right.plot(epochs, [x for *_, x in table], color="tab:red")
        right.set_ylabel("validation OA (%)", color="tab:red")
        fig.tight_layout()
        figure.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(figure) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        plt.close(fig)
    return table


def _voicing_line(voicing: dict) -> str:
    chosen = max(voicing, key=lambda t: voicing[t])
    how = "JDC's argmax (class 0 = unvoiced)" if chosen is None else f"voiced where the fused voicing output is above {chosen:g}"
    return (f"{how}, chosen on the validation singers among {len(voicing)} candidates (mean validation OA "
            f"{voicing[chosen]:.1f}; JDC's argmax {voicing[None]:.1f}). The validation rows below were used for "
            "this choice and the checkpoint's, so they are optimistic.")


def trained_epochs(best: Path) -> str:
    """'17 of 30': the epochs behind the best checkpoint, of the config's."""
    import torch
    import yaml

    state = torch.load(best, map_location="cpu", weights_only=True, mmap=True)
    return f"{state['epoch'] + 1} of {yaml.safe_load(CONFIG.read_text())['trainer']['max_epochs']}"


def card(results: dict, table: list, run: Path, figure: Path, best: Path, voicing: dict) -> str:
    from noisymss.checkpoints import load_checkpoint

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    hp = load_checkpoint(best).hparams
    # the first fit saved config.yaml as it started; the last checkpoint is the end (pauses included)
    span = (run / "checkpoints" / "last.ckpt").stat().st_mtime - (run / "config.yaml").stat().st_mtime
    lines = [
        "# The released melody model (`jdc_vocal`)",
        "",
        f"Written by `make release-melody` (`python -m noisymss.experiments.release_melody`) on "
        f"{datetime.date.today()}, from a working tree at commit {commit}. Every number below comes from that "
        "command.",
        "",
        "## What it is",
        "",
        f"JDC (Kum & Nam 2019, joint melody and voicing CRNN) at width {hp.get('width')}, pitch classes "
        f"MIDI {hp.get('pitch_range')[0]:g}-{hp.get('pitch_range')[1]:g} in 1/16 semitone "
        f"({SHIPPED.stat().st_size / 1e6:.1f} MB of safetensors, loaded without pickle). "
        "`noisymss melody song.wav` uses it when no `--ckpt` is given; "
        "`noisymss fit ... --model.init_args.pretrained released` starts from it.",
        "",
        "## Data and training",
        "",
        "- Labelled: MIR-1K's clips of the singers in its `labelled` and `unlabelled` splits (split by singer, seed 0; "
        "their pitch labels used), and 200 synthetic 30-second songs (`noisymss synth`, both voices).",
        "- Half of the patches are remixed: one vocal stem with its f0 over other clips' accompaniment at "
        "-5..+5 dB; half of all patches go through RandAudioAugment.",
        "- Checkpoint kept: the best validation OA on MIR-1K's `valid` singers. The `test` singers and Bach10 "
        "were scored once, below, and never used to choose anything.",
        f"- Voicing: {_voicing_line(voicing)}",
        f"- Command: `noisymss fit --config configs/release_melody.yaml`; the best checkpoint after "
        f"{trained_epochs(best)} epochs; {span / 60:.0f} minutes of wall time on a 2-core CPU (from the "
        "first fit's start to its last checkpoint).",
        "",
        "## Scores",
        "",
        "mir_eval, percent, mean ± 95 % t-interval over clips (one model: the interval is over clips, not seeds). "
        "The Jamendo songs have no f0: only voicing is scored, against the spans of their lyrics lines, which "
        "also cover the short pauses inside a line (so no method reaches 100 % recall there).",
        "",
        "| set | clips | method | " + " | ".join(METRICS) + " | × real time (CPU) |",
        "|---|---|---|" + "---|" * (len(METRICS) + 1),
    ]
    for name, got in results.items():
        for method, scores in got["scores"].items():
            cells = []
            for m in METRICS:
                mean, half, n = mean_ci([s[m] for s in scores if m in s])
                cells.append(f"{mean:.1f} ± {half:.1f}" if n else "–")
            speed = f"{got['audio'] / max(got['cpu'][method], 1e-9):.0f}" if "cpu" in got else "–"
            lines.append(f"| {name} | {len(scores)} | {method} | " + " | ".join(cells) + f" | {speed} |")
    lines += ["", "## Training curves", "", f"![loss and validation OA per epoch](figures/{figure.name})", "",
              "| epoch | training loss | validation OA |", "|---|---|---|"]
    lines += [f"| {e} | {loss:.3f} | {oa:.1f} |" for e, loss, oa in table]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m noisymss.experiments.release_melody", description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data", help="the shared data folder")
    ap.add_argument("--data", type=Path, default=Path("data"), help="where catalogs and the synthetic songs go")
    ap.add_argument("--run", type=Path, default=Path("runs/release_melody"), help="the training run folder")
    ap.add_argument("--card", type=Path, default=ROOT / "docs" / "melody_model.md")
    args = ap.parse_args(argv)
    if not (args.shared / "mir1k").is_dir():
        ap.error(f"--shared {args.shared}: no mir1k folder there; give the shared data folder")
    merged = catalog(args.shared, args.data)
    best = train(args.run)
    from noisymss.melody import melodia
    from noisymss.melody.inference import load_melody_model

    threshold, voicing = calibrate_voicing(load_melody_model(best), merged, "valid")
    export(best, SHIPPED, settings={"voicing_threshold": threshold}, source=str(best), config="configs/release_melody.yaml")
    model = load_melody_model(SHIPPED)
    peer = melodia.available()
    if not peer:
        print("essentia is not installed: no Melodia rows (pip install essentia)", file=sys.stderr)
    sets = {"MIR-1K test singers": (merged, "test"), "MIR-1K validation singers": (merged, "valid")}
    if (args.shared / "bach10").is_dir():
        sets["Bach10 (violin melody)"] = (one_split_catalog(args.shared / "bach10", "bach10", "test", args.data / "bach10.csv"),
                                          "test")
    results = {}
    for name, (path, split) in sets.items():
        results[name] = score_split(model, path, split, peer)
        print(name, {m: round(float(np.mean([s["OA"] for s in v])), 1) for m, v in results[name]["scores"].items()})
    if (args.shared / "jamendo").is_dir():  # real polyphonic songs: no f0, but vocal activity from their lyrics lines
        jamendo = one_split_catalog(args.shared / "jamendo", "mixtures", "test", args.data / "jamendo_test.csv")
        results["Jamendo, 10 real songs (voicing vs lyrics-line activity)"] = voicing_vs_activity(model, jamendo, peer)
    figure = args.card.parent / "figures" / "melody_release.png"
    text = card(results, curves(args.run, figure), args.run, figure, best, voicing)
    atomic_write_text(args.card, text)
    print(f"wrote {SHIPPED} and {args.card}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
