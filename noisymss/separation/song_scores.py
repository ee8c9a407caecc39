"""`noisymss test` of a separator on whole songs: each test song is separated in overlap-added
chunks and scored with museval (BSSEval v4, 1 s windows, median over frames), sharded over DDP
ranks; per source the median over songs, then the mean over sources (the SiSEC/SDX convention).
Results go to `<default_root_dir>/results/test-<checkpoint stem>.songs.{json,csv}` (beside the run's
results file), the test metrics, and a W&B table with
audio of the first songs' estimates."""
from __future__ import annotations

from typing import Mapping, Sequence

import lightning as L
import numpy as np
import torch

from noisymss.data.catalog import Catalog
from noisymss.separation.songs import load_song, scorable_songs

LISTEN_SECONDS = 10.0


def score_test_songs(task: L.LightningModule) -> dict | None:
    """Scores the DataModule's test songs with `task`; returns {song: {source: metrics}} (None without data)."""
    from noisymss.callbacks.results import results_path, run_record
    from noisymss.metrics.separation import evaluate_songs, summarize, write_results

    dm = task.trainer.datamodule
    if dm is None or not hasattr(dm, "split_labels"):  # not a DataModule of catalog stems
        return None
    split, labels = dm.split_labels("test")
    catalog = dm.catalog
    hp = task.hparams
    songs, skipped = scorable_songs(catalog, split, task.sources, labels)
    for song, why in skipped.items():
        task.print(f"test songs: skipped {song}: {why}")
    if not songs:
        task.print(f"test songs: none of split '{split}' can be scored; whole-song SDR left out")
        return None

    def load(song: str) -> tuple[np.ndarray, np.ndarray]:
        ref = load_song(catalog, song, task.sources, labels, hp.sample_rate, hp.channels)
        with torch.inference_mode():
            est = task.separate(torch.from_numpy(ref.mixture)).float().cpu().numpy()
        return est, ref.references

    results = evaluate_songs(songs, load, hp.sample_rate, progress=task.trainer.is_global_zero, sources=task.sources)
    summary = summarize(results, task.sources)
    for source in task.sources:
        if np.isfinite(summary[source]["SDR"]):
            task.log(f"test/sdr/{source}", float(summary[source]["SDR"]))
    task.log("test/sdr", float(summary["mean"]["SDR"]))
    if task.trainer.is_global_zero:
        # beside the run's results file (callbacks/results.py), so another checkpoint's are kept
        base = results_path(task.trainer.default_root_dir, run_record(task.trainer, "test")).with_suffix("")
        write_results(results, base.with_name(base.name + ".songs.json"), base.with_name(base.name + ".songs.csv"))
        _log_table(task, catalog, songs, results, labels)
    return results


def _log_table(task: L.LightningModule, catalog: Catalog, songs: list[str], results: dict,
               labels: Mapping[str, Sequence[str]]) -> None:
    """W&B: a table of per-song SDR and the first songs' estimates as audio."""
    hp = task.hparams
    rows = [[song] + [float(results[song][s]["SDR"]) for s in task.sources] for song in songs]
    listen = songs[:hp.log_audio_songs]
    for logger in task.loggers:
        if not hasattr(logger, "log_table"):
            continue
        logger.log_table("test/songs", columns=["song"] + [f"SDR {s}" for s in task.sources], data=rows)
        if listen and hasattr(logger, "log_audio"):
            clips, captions = [], []
            n = int(LISTEN_SECONDS * hp.sample_rate)
            for song in listen:
                mixture = load_song(catalog, song, task.sources, labels, hp.sample_rate, hp.channels).mixture[:, :n]
                est = task.separate(torch.from_numpy(mixture)).float().cpu().numpy()
                clips += [mixture.T] + [e.T for e in est]
                captions += [f"{song}: mixture"] + [f"{song}: {s}" for s in task.sources]
            logger.log_audio("test/estimates", clips, sample_rate=[hp.sample_rate] * len(clips), caption=captions)
