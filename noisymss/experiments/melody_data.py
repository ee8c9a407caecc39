"""Real melody data for the experiments and the released model: catalogs made from the shared data with
the `noisymss` verbs, and scoring of whole clips (our model, and Essentia's Melodia beside it)."""
from __future__ import annotations

import time
from pathlib import Path

from noisymss.experiments.catalogs import split_catalog
from noisymss.experiments.runner import noisymss

# MIR-1K by singer, seed 0: the split of configs/data/melody_mir1k.yaml, the experiments and the release
MIR1K_SPLIT = "labelled=0.2,unlabelled=0.5,valid=0.1,test=0.2"


def mir1k_catalog(shared: Path, data: Path) -> Path:
    """data/mir1k/catalog.csv: MIR-1K indexed and split by singer (made once)."""
    return split_catalog(shared / "mir1k", "mir1k", MIR1K_SPLIT, data / "mir1k" / "catalog.csv")


def synth_catalog(data: Path, quick: bool = False) -> Path:
    """data/synth_vocal/catalog.csv: 200 synthetic 30 s songs, both voices, all in split `synth` (made
    once); `quick`: 2 songs of 4 s in data/synth_vocal_quick."""
    folder = data / ("synth_vocal_quick" if quick else "synth_vocal")
    if not (folder / "catalog.csv").is_file():
        size = ["--songs", "2", "--seconds", "4"] if quick else ["--songs", "200", "--seconds", "30"]
        noisymss(["synth", "--out", str(folder), *size, "--seed", "1", "--splits", "synth=1.0", "--voice", "mix"],
                 folder.with_suffix(".log"))
    return folder / "catalog.csv"


def score_split(model, catalog_path: Path, split: str, melodia: bool) -> dict:
    """mir_eval scores per clip of a catalog split's mixtures, for a loaded melody model (and Melodia):
    {'scores': {method: [per-clip scores]}, 'cpu': {method: CPU seconds}, 'audio': seconds of audio}."""
    from noisymss.audio.io import audio_info
    from noisymss.data.annotations import f0_on_grid, read_f0
    from noisymss.data.catalog import Catalog
    from noisymss.melody.inference import extract_f0
    from noisymss.metrics.melody import melody_scores

    cat = Catalog.load(catalog_path)
    methods = (("noisymss",) if model is not None else ()) + (("Melodia",) if melodia else ())
    scores: dict[str, list[dict]] = {m: [] for m in methods}
    cpu = dict.fromkeys(methods, 0.0)
    audio = 0.0
    for e in cat.mixtures(split):
        path = cat.resolve(e.path)
        info = audio_info(path)
        audio += info.duration
        times, hz = read_f0(cat.resolve(e.annotation))
        ref = f0_on_grid(times, hz, 0.0, 1 + int(info.duration / 0.01))
        if model is not None:
            t = time.process_time()
            _, est = extract_f0(model.jdc, path, model.decoding)
            cpu["noisymss"] += time.process_time() - t
            scores["noisymss"].append(melody_scores(ref, est[:len(ref)]))
        if melodia:
            from noisymss.melody.melodia import melodia_f0

            t = time.process_time()
            other = melodia_f0(path)
            cpu["Melodia"] += time.process_time() - t
            scores["Melodia"].append(melody_scores(ref, other[:len(ref)]))
    return {"scores": scores, "cpu": cpu, "audio": audio}


def calibrate_voicing(model, catalog_path: Path, split: str) -> tuple[float | None, dict]:
    """The voicing threshold with the best mean OA on a split's clips (None: JDC's argmax), and the mean
    OA of every candidate. The network runs once per clip; only the decoding changes."""
    import dataclasses

    import numpy as np
    import torch

    from noisymss.audio.io import read_audio
    from noisymss.data.annotations import f0_on_grid, read_f0
    from noisymss.data.catalog import Catalog
    from noisymss.melody.features import HOP, SAMPLE_RATE
    from noisymss.melody.inference import VOICING_THRESHOLDS, patch_outputs, patch_windows
    from noisymss.metrics.melody import melody_scores

    cat = Catalog.load(catalog_path)
    clips = []
    for e in cat.mixtures(split):
        audio = torch.from_numpy(read_audio(cat.resolve(e.path), sample_rate=SAMPLE_RATE, channels=1)[0])
        frames = 1 + audio.shape[-1] // HOP
        pitch, voice = patch_outputs(model.jdc, patch_windows(audio))
        times, hz = read_f0(cat.resolve(e.annotation))
        clips.append((pitch[:frames], voice[:frames], f0_on_grid(times, hz, 0.0, frames)))
    oa = {}
    for t in VOICING_THRESHOLDS:
        decoding = dataclasses.replace(model.decoding, voicing_threshold=t)
        oa[t] = float(np.mean([melody_scores(ref, decoding.track(decoding.frame_hz(p, v)))["OA"] for p, v, ref in clips]))
    return max(oa, key=lambda t: oa[t]), oa


def voicing_vs_activity(model, catalog_path: Path, melodia: bool) -> dict:
    """Voicing recall and false alarm (percent) per song against a vocal-activity annotation (`#activity`,
    e.g. Jamendo's lyrics lines: coarse, pauses inside a line count as active), for songs without f0:
    {'scores': {method: [{'VR', 'VFA'} per song]}}."""
    from noisymss.data.annotations import read_activity
    from noisymss.data.catalog import Catalog
    from noisymss.melody.inference import extract_f0

    cat = Catalog.load(catalog_path)
    scores: dict[str, list[dict]] = {"noisymss": []} | ({"Melodia": []} if melodia else {})
    for e in cat.mixtures():
        if not str(e.annotation).endswith("#activity"):
            continue
        path = cat.resolve(e.path)
        _, active = read_activity(cat.resolve(e.annotation))
        estimates = {"noisymss": extract_f0(model.jdc, path, model.decoding)[1]}
        if melodia:
            from noisymss.melody.melodia import melodia_f0

            estimates["Melodia"] = melodia_f0(path)
        for method, est in estimates.items():
            n = min(len(active), len(est))
            voiced, truth = est[:n] > 0, active[:n]
            scores[method].append({"VR": 100.0 * (voiced & truth).sum() / max(truth.sum(), 1),
                                   "VFA": 100.0 * (voiced & ~truth).sum() / max((~truth).sum(), 1)})
    return {"scores": scores}
