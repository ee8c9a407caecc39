"""Separation benchmark: training throughput and Lightning's overhead, separation speed, and the
cost of museval (serial vs sharded, and against the utterance SDR).

What it measures (one thread per process, as `make` runs everything):
    training    examples/s of training steps of the small HTDemucs and X-UMX of the CPU configs
                (22.05 kHz stereo, 2 s, batch 8, their own losses) on the same in-memory batches:
                  bare       a plain torch loop (forward, loss, backward, AdamW step);
                  lightning  SeparatorTask under a Trainer (no logger, checkpoints or bar);
                interleaved rounds; overhead = median lightning / median bare - 1 (goal <= 5 %),
                with the range over rounds, and Lightning's own Python time per step measured
                with the torch profiler (what the overhead is made of). Also the DataModule's own rate
                (mixer + effects of configs/data/separator_demo.yaml on a rendered demo corpus).
    separation  real-time factor (audio seconds per second, one core) of whole-song separation
                in overlap-added 2 s chunks: the model alone on a 22.05 kHz stereo tensor, and
                `noisymss separate`'s whole path from a 44.1 kHz stereo FLAC (decode, resample
                both ways, write one WAV per source).
    museval     BSSEval v4 (1 s frames) of N songs of 4 sources, serially and sharded over 2
                worker processes (goal >= 1.8x on 2 cores, identical values), and the utterance
                SDR of the same songs (one number per source, no frames): the cost ratio.

Run:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/separation.py            # about 6 minutes
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/separation.py --quick    # about 2 minutes
Options: --steps N (training steps timed, default 12), --seconds S (song length, default 60),
--songs N (museval songs, default 6), --out results.json.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

SOURCES = ["vocals", "drums", "bass", "other"]
SR, CHANNELS, SEGMENT, BATCH = 22050, 2, 2.0, 8
ARCHS = {"htdemucs": dict(loss="l1"), "xumx": dict(loss="multi_domain")}


def batches(n: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """In-memory batches of random sources (band-limited noise at different levels) and their sum."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        sources = torch.randn(BATCH, len(SOURCES), CHANNELS, int(SEGMENT * SR), generator=g)
        sources = torch.nn.functional.avg_pool1d(sources.flatten(0, 2)[:, None], 5, 1, 2).reshape(sources.shape)
        sources = sources * torch.tensor([0.2, 0.1, 0.15, 0.05])[None, :, None, None]
        out.append({"mixture": sources.sum(1), "sources": sources})
    return out


def _task(arch: str):
    from noisymss.tasks.separator import SeparatorTask

    torch.manual_seed(0)
    return SeparatorTask(sources=SOURCES, arch=arch, sample_rate=SR, channels=CHANNELS, segment=SEGMENT, lr=1e-3,
                         **ARCHS[arch])


def bare_loop(arch: str, data: list[dict], warmup: int, profiler=None) -> float:
    """Seconds of the timed steps of a plain torch loop over the task's own `model_step`."""
    task = _task(arch)
    opt = task.configure_optimizers()
    task.train()
    start = 0.0
    for i, batch in enumerate(data):
        if i == warmup:
            start = time.perf_counter()
            if profiler is not None:
                profiler.start()
        loss, _ = task.model_step(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if profiler is not None:
        profiler.stop()
    return time.perf_counter() - start


def lightning_loop(arch: str, data: list[dict], warmup: int, profiler=None) -> float:
    """Seconds of the same steps under a Lightning Trainer (from the warm-up step's start to the epoch's end)."""
    import lightning as L

    marks: dict[str, float] = {}

    class Clock(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if batch_idx == warmup:
                marks["start"] = time.perf_counter()
                if profiler is not None:
                    profiler.start()

        def on_train_epoch_end(self, trainer, module):
            marks["end"] = time.perf_counter()
            if profiler is not None:
                profiler.stop()

    loader = torch.utils.data.DataLoader(data, batch_size=None, shuffle=False)
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        num_sanity_val_steps=0, callbacks=[Clock()])
    trainer.fit(_task(arch), train_dataloaders=loader)
    return marks["end"] - marks["start"]


def own_time(loop, arch: str, data: list[dict], warmup: int) -> float:
    """CPU seconds per step spent in Python around the operators, inside the optimizer step.

    Lightning runs forward and backward in a closure inside `optimizer.step`, so the profiler's
    self time of that step (time in no operator below it) is Lightning's own per-step work plus
    AdamW's Python; the bare loop's self time of the same record is AdamW's Python alone.
    """
    from torch.profiler import ProfilerActivity, profile

    profiler = profile(activities=[ProfilerActivity.CPU])
    loop(arch, data, warmup, profiler)
    step = [e for e in profiler.key_averages() if e.key.startswith("Optimizer.step#")]
    return sum(e.self_cpu_time_total for e in step) / 1e6 / (len(data) - warmup)


def training(arch: str, steps: int, rounds: int = 3, warmup: int = 2) -> dict:
    """Bare and Lightning runs alternate (order swapped every round, so drift hits both alike)."""
    data = batches(steps + warmup)
    times: dict[str, list[float]] = {"bare": [], "lightning": []}
    loops = {"bare": bare_loop, "lightning": lightning_loop}
    for r in range(rounds):
        for name in (("bare", "lightning") if r % 2 == 0 else ("lightning", "bare")):
            times[name].append(loops[name](arch, data, warmup))
    bare, light = (float(np.median(times[k])) for k in ("bare", "lightning"))
    own = own_time(lightning_loop, arch, data, warmup) - own_time(bare_loop, arch, data, warmup)
    return {"arch": arch, "steps": steps, "rounds": rounds, "bare_ex_s": steps * BATCH / bare,
            "lightning_ex_s": steps * BATCH / light, "overhead": light / bare - 1,
            "overhead_min": min(times["lightning"]) / max(times["bare"]) - 1,
            "overhead_max": max(times["lightning"]) / min(times["bare"]) - 1,
            "step_s": bare / steps, "lightning_own_ms": 1e3 * own, "lightning_own": own / (bare / steps)}


def loader_rate(folder: Path, examples: int) -> dict:
    """Examples/s of the separator config's DataModule (mixer + effects, no workers) on a small demo corpus."""
    import yaml

    from noisymss.data.datamodule import MixDataModule
    from noisymss.data.synth.corpus import SynthSettings, synthesize

    catalog = synthesize(folder / "corpus", SynthSettings(songs=4, seconds=20.0, seed=0, label_noise=0.3),
                         progress=False).path
    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / "data" / "separator_demo.yaml").read_text())
    from jsonargparse import ArgumentParser

    init = dict(config["init_args"], catalog=str(catalog), demo=None, num_workers=0,
                train_examples=examples, cache_dir=str(folder / "cache"))
    parser = ArgumentParser()
    parser.add_argument("--data", type=MixDataModule)
    dm = parser.instantiate(parser.parse_object({"data": {"class_path": config["class_path"], "init_args": init}})).data
    dm.setup("fit")
    loader = dm.train_dataloader()
    next(iter(loader))  # warm the decoded-audio cache, as every epoch after the first
    start = time.perf_counter()
    n = sum(len(b["mixture"]) for b in loader)
    return {"examples": n, "ex_s": n / (time.perf_counter() - start)}


def separation(arch: str, seconds: float, folder: Path) -> dict:
    import soundfile as sf

    from noisymss.separation.inference import load_separator, separate_file

    task = _task(arch).eval()
    ckpt = folder / f"{arch}.ckpt"
    torch.save({"state_dict": task.state_dict(), "hyper_parameters": dict(task.hparams)}, ckpt)
    mixture = batches(1)[0]["mixture"][0].repeat(1, int(np.ceil(seconds / SEGMENT)))[:, : int(seconds * SR)]
    with torch.inference_mode():
        task.separate(mixture[:, : SR])  # warm-up
        start = time.perf_counter()
        task.separate(mixture)
        bare = time.perf_counter() - start
    flac = folder / "song.flac"
    rng = np.random.default_rng(0)
    sf.write(flac, (rng.standard_normal((int(seconds * 44100), 2)) * 0.1).astype(np.float32), 44100, subtype="PCM_16")
    sep = load_separator(ckpt)
    start = time.perf_counter()
    separate_file(sep, flac, folder / "out" / arch)
    path = time.perf_counter() - start
    return {"arch": arch, "seconds": seconds, "model_rtf": seconds / bare, "path_rtf": seconds / path}


def song_pair(seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(estimates, references) of a synthetic 4-source song: references plus 10 % error."""
    rng = np.random.default_rng(seed)
    refs = (rng.standard_normal((4, CHANNELS, int(seconds * SR))) * 0.1).astype(np.float32)
    est = refs + 0.1 * rng.standard_normal(refs.shape).astype(np.float32) * refs.std()
    return est, refs


def museval_cost(songs: int, seconds: float) -> dict:
    import functools

    from noisymss.metrics.separation import evaluate_songs, utterance_sdr

    load = functools.partial(_load, seconds)
    keys = list(range(songs))
    start = time.perf_counter()
    serial = evaluate_songs(keys, load, SR, jobs=1, sources=SOURCES)
    t_serial = time.perf_counter() - start
    start = time.perf_counter()
    sharded = evaluate_songs(keys, load, SR, jobs=2, sources=SOURCES)
    t_sharded = time.perf_counter() - start
    pairs = [song_pair(seconds, k) for k in keys]
    start = time.perf_counter()
    for est, ref in pairs:
        utterance_sdr(torch.from_numpy(est), torch.from_numpy(ref))
    t_usdr = time.perf_counter() - start
    same = all(serial[k][s][m] == sharded[k][s][m] or (np.isnan(serial[k][s][m]) and np.isnan(sharded[k][s][m]))
               for k in keys for s in SOURCES for m in serial[k][s])
    return {"songs": songs, "seconds": seconds, "serial_s": t_serial, "sharded_s": t_sharded,
            "speedup": t_serial / t_sharded, "identical": same, "usdr_s": t_usdr, "museval_per_usdr": t_serial / t_usdr}


def _load(seconds: float, key: int) -> tuple[np.ndarray, np.ndarray]:
    return song_pair(seconds, key)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--songs", type=int, default=6)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    steps, seconds, songs = (4, 20.0, 2) if args.quick else (args.steps, args.seconds, args.songs)
    torch.set_num_threads(1)
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results["training"] = [training(a, steps, 2 if args.quick else 5) for a in ARCHS]
        results["loader"] = loader_rate(folder, 16 if args.quick else 64)
        results["separation"] = [separation(a, seconds, folder) for a in ARCHS]
    results["museval"] = museval_cost(songs, 20.0 if args.quick else 30.0)

    print(f"\nTraining, small models of the CPU configs ({SR} Hz stereo, {SEGMENT:.0f} s, batch {BATCH}), one thread, "
          f"{steps} timed steps:")
    print(f"  {'arch':>9} {'bare ex/s':>10} {'Lightning ex/s':>15} {'overhead (range)':>22} {'Lightning own ms/step':>22}"
          "  goal <= 5 %")
    for r in results["training"]:
        spread = f"{r['overhead']:.1%} ({r['overhead_min']:+.1%}..{r['overhead_max']:+.1%})"
        own = f"{r['lightning_own_ms']:.1f} ({r['lightning_own']:.1%})"
        verdict = "met" if r["overhead"] <= 0.05 else "MISSED"
        print(f"  {r['arch']:>9} {r['bare_ex_s']:>10.2f} {r['lightning_ex_s']:>15.2f} {spread:>22} {own:>22}  {verdict}")
    print("  (medians of interleaved rounds; range: worst and best pairing; own: Lightning's Python per step,"
          " from the profiler, as a share of a bare step)")
    r = results["loader"]
    print(f"  DataModule alone (mixer + effects of data/separator_demo.yaml, no workers): {r['ex_s']:.1f} ex/s")
    print(f"\nSeparation of a {seconds:.0f} s song, one thread (x real time):")
    print(f"  {'arch':>9} {'model':>8} {'noisymss separate (44.1 kHz FLAC in, WAVs out)':>48}")
    for r in results["separation"]:
        print(f"  {r['arch']:>9} {r['model_rtf']:>8.1f} {r['path_rtf']:>48.1f}")
    r = results["museval"]
    print(f"\nmuseval BSSEval v4 (1 s frames), {r['songs']} songs of {r['seconds']:.0f} s, 4 stereo sources at {SR} Hz:")
    print(f"  serial {r['serial_s']:.1f} s, 2 processes {r['sharded_s']:.1f} s: {r['speedup']:.2f}x (goal >= 1.8x), "
          f"identical values: {r['identical']}")
    print(f"  utterance SDR of the same songs: {r['usdr_s'] * 1000:.1f} ms, museval costs {r['museval_per_usdr']:,.0f}x more")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
