"""Melody benchmark: JDC inference real-time factor per core, the whole-path overhead, multi-file use
of the cores, and training examples/s with and without RandAudioAugment.

What it measures:
    inference   for the full JDC (width 1.0, the published 4.2 M parameters) and the released model
                (noisymss/melody/weights, what `noisymss melody` uses by default), one process, one thread:
                  bare    the forward pass alone over precomputed, normalised 31-frame patches;
                  path    what `noisymss melody` does per file: decode a 44.1 kHz stereo FLAC,
                          resample to 8 kHz mono, features, chunking, forward, median filter;
                and the ratio path / bare (goal <= 1.15). Real-time factor = audio seconds per
                second of compute. Beside it, Essentia's Melodia on the same file when essentia is
                installed (`make bench-extra`); goal: the released model's path >= 2x Melodia's speed.
    memory      peak resident memory of a fresh process running the released model over files of
                1 and 10 minutes: the file is read in blocks, so it should not grow with the length.
    many files  `noisymss melody`'s batch path (`f0_of_files`, then writing) over N files with 1 worker and
                with one worker per core (full JDC; small with --quick): wall time, audio seconds
                per second, and core use = CPU seconds of all processes / (wall seconds x cores).
    training    examples/s of a training step (patch drawn by the melody DataModule's dataset,
                forward, backward, AdamW) at batch 16 for the small JDC, with and without
                RandAudioAugment on every patch; and the loader alone.

Run:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/melody.py            # a few minutes
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/melody.py --quick    # short run
Options: --seconds S (song length, default 60), --files N (default 8), --out results.json,
--memory-minutes 1,10,20 (file lengths of the memory probe), --only-memory.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402


def song(path: Path, seconds: float, seed: int = 0) -> Path:
    """A 44.1 kHz stereo FLAC: a gliding harmonic 'voice' over noise, so every stage has real work."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 44100)) / 44100
    f0 = 220 * 2 ** (np.sin(2 * np.pi * 0.2 * t) + 0.05 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / 44100
    voice = sum(np.sin(k * phase) / k for k in range(1, 8)) * 0.2
    x = np.stack([voice + 0.05 * rng.standard_normal(len(t)), voice + 0.05 * rng.standard_normal(len(t))], axis=1)
    sf.write(str(path), x.astype(np.float32), 44100, subtype="PCM_16")
    return path


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def checkpoint(width: float, folder: Path) -> Path:
    """An untrained MelodyTask checkpoint (speed does not depend on the weights)."""
    import lightning as L

    from noisymss.tasks.melody import MelodyTask

    path = folder / f"jdc_{width}.ckpt"
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=folder)
    trainer.strategy.connect(MelodyTask(width=width))
    trainer.save_checkpoint(path)
    return path


def inference(width: float | None, audio_path: Path, seconds: float, repeat: int, folder: Path) -> dict:
    """Width None: the released model (noisymss/melody/weights), as `noisymss melody` runs it by default."""
    from noisymss.audio.io import read_audio
    from noisymss.melody.features import SAMPLE_RATE, log_magnitude, normalize
    from noisymss.melody.inference import extract_f0, load_melody_model, patch_windows

    torch.set_num_threads(1)
    loaded = load_melody_model(None if width is None else checkpoint(width, folder))
    model, decoding = loaded.jdc, loaded.decoding
    audio = torch.from_numpy(read_audio(audio_path, sample_rate=SAMPLE_RATE, channels=1)[0])
    patches = normalize(log_magnitude(patch_windows(audio)))[:, None]

    @torch.inference_mode()
    def bare():
        for i in range(0, len(patches), 64):
            model(patches[i:i + 64])

    extract_f0(model, audio_path, decoding)  # warm-up (allocator, julius kernels)
    t_bare = _best(bare, repeat)
    t_path = _best(lambda: extract_f0(model, audio_path, decoding), repeat)
    return {"width": "released" if width is None else width, "parameters": sum(p.numel() for p in model.parameters()),
            "bare_s": t_bare, "path_s": t_path, "bare_rtf": seconds / t_bare, "path_rtf": seconds / t_path,
            "path_over_bare": t_path / t_bare}


def many_files(width: float, files: list[Path], seconds: float, folder: Path) -> list[dict]:
    from noisymss.outputs import output_paths
    from noisymss.data.annotations import write_f0
    from noisymss.melody.inference import f0_of_files

    ckpt = checkpoint(width, folder)
    cores = os.cpu_count() or 1
    rows = []
    for jobs in sorted({1, cores}):
        torch.set_num_threads(1)
        before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        targets = dict(zip(files, output_paths(files, folder / f"f0_{jobs}", ".f0.txt")))
        failed = []
        for path, times, f0, reason in f0_of_files(ckpt, files, jobs=jobs, progress=False):  # as `noisymss melody`
            failed += [reason] if reason else []
            if not reason:
                write_f0(targets[path], times, f0)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = sum((a.ru_utime + a.ru_stime) - (b.ru_utime + b.ru_stime) for a, b in zip(after, before))
        assert not failed, failed
        rows.append({"width": width, "jobs": jobs, "files": len(files), "wall_s": wall, "audio_per_s": len(files) * seconds / wall,
                     "core_use": cpu / (wall * cores)})
    return rows


def training(width: float, steps: int, augment: bool, folder: Path) -> dict:
    from noisymss.audio.io import write_audio
    from noisymss.data.annotations import write_f0
    from noisymss.data.catalog import Catalog, Entry
    from noisymss.data.melody import MelodyDataModule
    from noisymss.tasks.melody import MelodyTask

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    entries = []  # four 20 s labelled songs of noise at 8 kHz, with a constant 330 Hz f0
    for i in range(4):
        write_audio(folder / f"s{i}.wav", rng.standard_normal((1, 8000 * 20)).astype(np.float32) * 0.1, 8000)
        write_f0(folder / f"s{i}.f0.txt", np.arange(2001) * 0.01, np.full(2001, 330.0))
        entries.append(Entry(f"s{i}", f"s{i}", f"s{i}.wav", "mixture", 20.0, 8000, 1, "labelled", (), None, f"s{i}.f0.txt"))
    Catalog(entries, folder).save(folder / "melody.csv", overwrite=True)
    batch = 16
    dm = MelodyDataModule(str(folder / "melody.csv"), unlabelled_split=None, train_examples=steps * batch, batch_size=batch)
    dm.noise_mode = "noisy_student" if augment else "basic"  # the student's RandAudioAugment on every labelled patch
    loader = dm.train_dataloader()
    t = time.perf_counter()
    for _ in loader:
        pass
    t_loader = time.perf_counter() - t
    task = MelodyTask(width=width, lr_schedule="constant")  # the bare optimiser: no Trainer here
    task.train()
    opt = task.configure_optimizers()
    t = time.perf_counter()
    for b in loader:
        loss, _ = task.model_step(b)
        opt.zero_grad()
        loss.backward()
        opt.step()
    t_step = time.perf_counter() - t
    n = steps * batch
    return {"width": width, "augment": augment, "examples": n, "loader_ex_s": n / t_loader, "train_ex_s": n / t_step}


def melodia(audio_path: Path, seconds: float, repeat: int) -> dict | None:
    """Essentia's Melodia on the same file, one thread (None when essentia is not installed)."""
    from noisymss.melody import melodia as peer

    if not peer.available():
        return None
    peer.melodia_f0(audio_path)  # warm-up
    t = _best(lambda: peer.melodia_f0(audio_path), repeat)
    return {"path_s": t, "path_rtf": seconds / t}


MEMORY_PROBE = """
import sys, torch
torch.set_num_threads(1)
from noisymss.melody.inference import extract_f0, load_melody_model
m = load_melody_model(None)
if sys.argv[1] != "-":
    extract_f0(m.jdc, sys.argv[1], m.decoding)
# VmHWM: this process's own peak (ru_maxrss would carry the parent's peak across fork + exec)
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) / 1024)
"""


def memory(folder: Path, minutes: tuple[float, ...]) -> list[dict]:
    """Peak resident memory (MB) of a fresh process running the released model on one file of each
    length (44.1 kHz stereo FLAC), and of one that only loads the model."""
    import subprocess
    import sys

    rows = []
    for m in (0.0, *minutes):
        path = "-" if m == 0 else str(song(folder / f"long{m:g}.flac", m * 60, seed=1))
        out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, path], capture_output=True, text=True, check=True)
        rows.append({"minutes": m, "peak_mb": float(out.stdout.split()[-1])})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--files", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--memory-minutes", default=None, help="file lengths of the memory probe (default 1,10; 1,5 --quick)")
    ap.add_argument("--only-memory", action="store_true", help="run the memory probe alone")
    args = ap.parse_args()
    minutes = tuple(float(m) for m in args.memory_minutes.split(",")) if args.memory_minutes else (
        (1.0, 5.0) if args.quick else (1.0, 10.0))
    if args.only_memory:
        with tempfile.TemporaryDirectory() as tmp:
            rows = memory(Path(tmp), minutes)
        print("Peak memory of `noisymss melody` with the released model, one file per process (44.1 kHz stereo FLAC):")
        for r in rows:
            print(f"  {r['minutes']:>7g} min {r['peak_mb']:>8.0f} MB")
        return
    seconds = args.seconds or (20.0 if args.quick else 60.0)
    n_files = args.files or (4 if args.quick else 8)
    repeat = 1 if args.quick else 3
    results: dict = {"inference": [], "many_files": [], "training": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = song(folder / "song.flac", seconds)
        for width in (1.0, None):
            results["inference"].append(inference(width, path, seconds, repeat, folder))
        results["melodia"] = melodia(path, seconds, repeat)
        results["memory"] = memory(folder, minutes)
        files = [song(folder / f"file{i}.flac", seconds / 2, seed=i) for i in range(n_files)]
        # the full JDC: with the small one a 30 s file takes less than a worker's start (~2 s: importing torch)
        results["many_files"] += many_files(0.125 if args.quick else 1.0, files, seconds / 2, folder)
        for augment in (False, True):
            results["training"].append(training(0.125, 5 if args.quick else 20, augment, folder))

    print(f"\nJDC inference, one process, one thread, {seconds:.0f} s song (44.1 kHz stereo FLAC):")
    print(f"  {'width':>16} {'params':>10} {'bare s':>8} {'bare xRT':>9} {'path s':>8} {'path xRT':>9} {'path/bare':>10}  goal <= 1.15")
    for r in results["inference"]:
        print(f"  {str(r['width']):>16} {r['parameters']:>10,} {r['bare_s']:>8.2f} {r['bare_rtf']:>9.1f} {r['path_s']:>8.2f} "
              f"{r['path_rtf']:>9.1f} {r['path_over_bare']:>10.3f}  {'met' if r['path_over_bare'] <= 1.15 else 'MISSED'}")
    peer = results["melodia"]
    if peer is None:
        print("  Melodia: essentia is not installed (make bench-extra), so no side-by-side row")
    else:
        ours = next(r for r in results["inference"] if r["width"] == "released")
        ratio = ours["path_rtf"] / peer["path_rtf"]
        print(f"  {'Melodia (essentia)':>16} {peer['path_s']:>8.2f} {peer['path_rtf']:>9.1f}   released model / Melodia: "
              f"{ratio:.2f}x  goal >= 2: {'met' if ratio >= 2 else 'MISSED'}")
    print("\nPeak memory of `noisymss melody` with the released model, one file per process (44.1 kHz stereo FLAC):")
    print(f"  {'minutes':>7} {'peak MB':>8}")
    for r in results["memory"]:
        print(f"  {r['minutes']:>7g} {r['peak_mb']:>8.0f}" + ("  (model loaded, no file)" if r["minutes"] == 0 else ""))
    width = results["many_files"][0]["width"]
    print(f"\n`noisymss melody` over {n_files} files of {seconds / 2:.0f} s, JDC width {width}, {os.cpu_count()} cores:")
    print(f"  {'jobs':>4} {'wall s':>8} {'audio s/s':>10} {'core use':>9}")
    for r in results["many_files"]:
        print(f"  {r['jobs']:>4} {r['wall_s']:>8.2f} {r['audio_per_s']:>10.1f} {r['core_use']:>8.0%}")
    print("\nTraining, small JDC, batch 16, one thread (examples = 31-frame patches):")
    print(f"  {'RandAudioAugment':>16} {'loader ex/s':>12} {'train step ex/s':>16}")
    for r in results["training"]:
        print(f"  {'on' if r['augment'] else 'off':>16} {r['loader_ex_s']:>12.1f} {r['train_ex_s']:>16.1f}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
