"""Whole-song melody extraction with a JDC model: decode → 8 kHz mono → features → patches → f0."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from noisymss.checkpoints import load_checkpoint
from noisymss.audio.io import read_audio
from noisymss.melody.features import SAMPLE_RATE, log_magnitude, normalize, to_patches
from noisymss.melody.pitch import decode
from noisymss.models.jdc import JDC


@torch.inference_mode()
def song_logits(model: torch.nn.Module, audio: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Pitch logits for every 10 ms frame of one song.

    Args:
        model: a JDC (returns pitch logits first), in eval mode, on the device to use.
        audio: (samples,) mono at 8 kHz.

    Returns:
        (frames, n_classes), frames = 1 + samples // 80 (frame j at t = j * 10 ms).
    """
    device = next(model.parameters()).device
    db = log_magnitude(audio.to(device)[None])[0]  # the reference max is the whole song's, as JDC
    patches, frames = to_patches(db)
    outs = [model(normalize(patches[i:i + batch_size]))[0] for i in range(0, len(patches), batch_size)]
    return torch.cat(outs).reshape(-1, outs[0].shape[-1])[:frames]


def song_f0(model: torch.nn.Module, audio: torch.Tensor, median: int = 5) -> np.ndarray:
    """f0 in Hz every 10 ms (0 = unvoiced) of one 8 kHz mono song (samples,): argmax, then median filter."""
    return decode(song_logits(model, audio), median=median)


def extract_f0(model: torch.nn.Module, path: str | os.PathLike, median: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """f0 of an audio file (any format soundfile reads).

    Returns:
        times (frames,) in seconds at 10 ms, f0 (frames,) in Hz with 0 = unvoiced.
    """
    audio = torch.from_numpy(read_audio(path, sample_rate=SAMPLE_RATE, channels=1)[0])
    hz = song_f0(model, audio, median)
    return np.arange(len(hz)) * 0.01, hz


@dataclass
class MelodyModel:
    """A trained JDC ready for inference (eval mode) and its decoding setting."""

    jdc: JDC
    median: int


def load_melody_model(ckpt: str | os.PathLike, device: str = "cpu") -> MelodyModel:
    """The JDC of a melody-task checkpoint, without Lightning (workers start in about a second).

    Raises a one-line error for a missing file, an unreadable one, or another task's checkpoint.
    """
    ckpt = load_checkpoint(ckpt, map_location=device)
    weights = ckpt.weights("model.")
    if not any(k.startswith("pitch_head") for k in weights):
        raise ValueError(f"{ckpt.path}: not a melody (JDC) checkpoint; train one with `noisymss fit --config configs/noisy_student.yaml`")
    jdc = JDC.small(ckpt.hparams.get("width", 1.0))
    jdc.load_state_dict(weights)
    return MelodyModel(jdc.to(device).eval(), int(ckpt.hparams.get("median", 5)))


def f0_of_files(ckpt: str | os.PathLike, paths: Sequence[Path], jobs: int = 1, device: str = "cpu",
                progress: bool = True) -> Iterator[tuple[Path, np.ndarray | None, np.ndarray | None, str]]:
    """(file, times, f0, "") for every audio file that could be read, (file, None, None, reason) for the
    others, in the order they finish. Writing them is the caller's (`noisymss melody`, `predict`).

    With `jobs` > 1 the files are shared among that many worker processes of one thread each
    (the CRNN's small per-file batches keep one core busy far better than they use several).
    A bad checkpoint fails here, before any file is read.
    """
    model = load_melody_model(ckpt, device)
    return _f0_of_files(model, ckpt, list(paths), max(1, min(jobs, len(paths))), device, progress)


def _f0_of_files(model, ckpt, paths, jobs, device, progress):
    from tqdm import tqdm

    if jobs == 1:
        results = (_extract_one(model, p) for p in paths)
    else:
        import multiprocessing

        # spawn: a forked child would inherit the parent's OpenMP thread pool, which can hang.
        pool = multiprocessing.get_context("spawn").Pool(jobs, _init_worker, (str(ckpt), device))
        results = pool.imap_unordered(_extract_in_worker, paths)
    with tqdm(total=len(paths), desc="melody", unit="file", disable=not progress) as bar:
        for result in results:
            bar.update()
            yield result
    if jobs > 1:
        pool.close()
        pool.join()


_WORKER_MODEL = None


def _init_worker(ckpt: str, device: str) -> None:
    global _WORKER_MODEL
    torch.set_num_threads(1)
    _WORKER_MODEL = load_melody_model(ckpt, device)


def _extract_in_worker(path: Path):
    return _extract_one(_WORKER_MODEL, path)


def _extract_one(model: "MelodyModel", path: Path) -> tuple[Path, np.ndarray | None, np.ndarray | None, str]:
    try:
        times, f0 = extract_f0(model.jdc, path, median=model.median)
    except OSError as err:  # unreadable audio: reported, the other files go on
        return path, None, None, str(err)
    return path, times, f0, ""
