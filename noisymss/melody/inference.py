"""Whole-song melody extraction with a JDC model: decode → 8 kHz mono → features → patches → f0."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from noisymss.audio.io import read_blocks
from noisymss.melody.features import HOP, PATCH, PATCH_SAMPLES, SAMPLE_RATE, log_magnitude, normalize
from noisymss.melody.pitch import JDC_GRID, PitchGrid, median_filter
from noisymss.models.jdc import JDC


def song_logits(model: torch.nn.Module, audio: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Pitch logits for every 10 ms frame of one song, seen as training sees it: in 31-frame patches,
    each patch's features computed from its own audio (its own 0 dB reference, its own edges).

    Args:
        model: a JDC (returns pitch logits first), in eval mode, on the device to use.
        audio: (samples,) mono at 8 kHz.

    Returns:
        (frames, n_classes), frames = 1 + samples // 80 (frame j at t = j * 10 ms).
    """
    return patch_outputs(model, patch_windows(audio), batch_size)[0][:1 + audio.shape[-1] // HOP]


@torch.inference_mode()
def patch_outputs(model: torch.nn.Module, windows: torch.Tensor, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, PATCH_SAMPLES) patch audio → pitch logits (N * PATCH, n_classes) and voicing
    log-probabilities (N * PATCH, 2), frame by frame."""
    device = next(model.parameters()).device
    outs = [model(normalize(log_magnitude(windows[i:i + batch_size].to(device)))[:, None])
            for i in range(0, len(windows), batch_size)]
    pitch = torch.cat([p for p, _ in outs])
    voice = torch.cat([v for _, v in outs])
    return pitch.reshape(-1, pitch.shape[-1]), voice.reshape(-1, 2)


def patch_windows(audio: torch.Tensor, frames: int | None = None) -> torch.Tensor:
    """(samples,) → (N, PATCH_SAMPLES): the audio of patch i starts at i * PATCH * HOP, so its 31
    centred STFT frames are frames 31 i .. 31 i + 30 of the song; the end is padded with silence.
    N covers `frames` frames (default: the song's, 1 + samples // HOP)."""
    stride = PATCH * HOP
    frames = 1 + audio.shape[-1] // HOP if frames is None else frames
    n = max(1, -(-frames // PATCH))
    padded = torch.nn.functional.pad(audio[:n * stride], (0, max(0, n * stride - audio.shape[-1])))
    return padded.reshape(n, stride)[:, :PATCH_SAMPLES]


# the voicing thresholds a calibration tries: JDC's argmax, then 0.50 .. 0.86 on the fused voicing output
VOICING_THRESHOLDS = (None, *[round(0.5 + 0.02 * i, 2) for i in range(19)])


@dataclass(frozen=True)
class Decoding:
    """How the network's outputs become an f0 track.

    Args:
        grid: the pitch classes.
        median: median filter length over the Hz track (5, as JDC).
        voicing_threshold: None: a frame is unvoiced where class 0 has the highest probability
            (JDC's argmax). A value t: a frame is voiced where JDC's fused voicing output gives
            'voiced' a probability above t, at the most likely pitch class; the released model
            carries a t chosen on its validation singers.
    """

    grid: PitchGrid = JDC_GRID
    median: int = 5
    voicing_threshold: float | None = None

    def frame_hz(self, pitch_logits: torch.Tensor, voice_logp: torch.Tensor) -> np.ndarray:
        """(T, n_classes), (T, 2) → (T,) Hz before the median filter (0 = unvoiced)."""
        if self.voicing_threshold is None:
            return self.grid.class_to_hz(pitch_logits.argmax(-1).cpu().numpy())
        pitch = self.grid.class_to_hz(pitch_logits[:, 1:].argmax(-1).cpu().numpy() + 1)
        return np.where(voice_logp[:, 1].exp().cpu().numpy() > self.voicing_threshold, pitch, 0.0)

    def track(self, hz: np.ndarray) -> np.ndarray:
        return median_filter(hz, self.median)


def song_f0(model: torch.nn.Module, audio: torch.Tensor, decoding: Decoding = Decoding()) -> np.ndarray:
    """f0 in Hz every 10 ms (0 = unvoiced) of one 8 kHz mono song (samples,)."""
    frames = 1 + audio.shape[-1] // HOP
    pitch, voice = patch_outputs(model, patch_windows(audio))
    return decoding.track(decoding.frame_hz(pitch[:frames], voice[:frames]))


def extract_f0(model: torch.nn.Module, path: str | os.PathLike, decoding: Decoding = Decoding(),
               block: float = 64 * PATCH * HOP / SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """f0 of an audio file (any format soundfile reads), read `block` seconds at a time: memory holds
    one block of audio, whatever the file's length (and the f0 track, 8 bytes per 10 ms). The
    default block, 64 patches (19.84 s), keeps every block's buffers the same size.

    Returns:
        times (frames,) in seconds at 10 ms, f0 (frames,) in Hz with 0 = unvoiced.
    """
    stride = PATCH * HOP
    hz, carry, samples = [], np.zeros(0, np.float32), 0
    for piece in read_blocks(path, SAMPLE_RATE, channels=1, block=block):
        samples += piece.shape[-1]
        carry = np.concatenate([carry, piece[0]])
        whole = len(carry) // stride * stride  # patches whose audio is all here
        if whole:
            hz.append(_frame_hz(model, carry[:whole], decoding, whole // HOP))
            carry = carry[whole:]
    frames = 1 + samples // HOP
    done = sum(len(h) for h in hz)
    if frames > done:
        hz.append(_frame_hz(model, carry, decoding, frames - done)[:frames - done])
    return np.arange(frames) * 0.01, decoding.track(np.concatenate(hz)[:frames])


def _frame_hz(model: torch.nn.Module, audio: np.ndarray, decoding: Decoding, frames: int) -> np.ndarray:
    """Hz of every frame of the patches covering `frames` frames of `audio`, before the median filter
    (which spans blocks, so it comes after)."""
    return decoding.frame_hz(*patch_outputs(model, patch_windows(torch.from_numpy(audio), frames)))


@dataclass
class MelodyModel:
    """A trained JDC ready for inference (eval mode), and how its outputs are decoded."""

    jdc: JDC
    decoding: Decoding


def load_melody_model(ckpt: str | os.PathLike | None = None, device: str = "cpu") -> MelodyModel:
    """The JDC of a melody-task checkpoint, or of released weights (a .safetensors file; None: the
    model shipped with noisymss), without Lightning (workers start in about a second).

    Raises a one-line error for a missing file, an unreadable one, or another task's checkpoint.
    """
    from noisymss.melody.released import load_weights

    weights, hparams = load_weights(ckpt, device)
    grid = PitchGrid(*hparams.get("pitch_range", (JDC_GRID.low, JDC_GRID.high)))
    jdc = JDC.small(hparams.get("width", 1.0), n_classes=grid.n_classes)
    try:
        jdc.load_state_dict(weights)
    except RuntimeError:
        raise ValueError(f"{ckpt}: its weights do not fit the JDC its settings describe (width "
                         f"{hparams.get('width')}, pitch range {hparams.get('pitch_range')})") from None
    return MelodyModel(jdc.to(device).eval(), Decoding(grid, int(hparams.get("median", 5)), hparams.get("voicing_threshold")))


def f0_of_files(ckpt: str | os.PathLike | None, paths: Sequence[Path], jobs: int = 1, device: str = "cpu",
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
        pool = multiprocessing.get_context("spawn").Pool(jobs, _init_worker, (ckpt and str(ckpt), device))
        results = pool.imap_unordered(_extract_in_worker, paths)
    with tqdm(total=len(paths), desc="melody", unit="file", disable=not progress) as bar:
        for result in results:
            bar.update()
            yield result
    if jobs > 1:
        pool.close()
        pool.join()


_WORKER_MODEL = None


def _init_worker(ckpt: str | None, device: str) -> None:
    global _WORKER_MODEL
    torch.set_num_threads(1)
    _WORKER_MODEL = load_melody_model(ckpt, device)


def _extract_in_worker(path: Path):
    return _extract_one(_WORKER_MODEL, path)


def _extract_one(model: "MelodyModel", path: Path) -> tuple[Path, np.ndarray | None, np.ndarray | None, str]:
    try:
        times, f0 = extract_f0(model.jdc, path, model.decoding)
    except OSError as err:  # unreadable audio: reported, the other files go on
        return path, None, None, str(err)
    return path, times, f0, ""
