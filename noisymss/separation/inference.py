"""`noisymss separate`: a trained separator on audio files, one file per source per input.

The model is rebuilt from the checkpoint's hyper-parameters (no Lightning, no config). A file is
processed in blocks of `block` seconds, each read with one chunk of context on both sides (so
resampling and chunk edges never fall inside the kept part) and written as it comes, so memory
holds a block, not the song. Input of another sample rate or channel count is converted to the
model's and the estimates are converted back, so the sources of a file sum to about the file.
"""
from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from noisymss.atomic import atomic_path
from noisymss.outputs import inside, output_paths
from noisymss.checkpoints import load_checkpoint
from noisymss.audio.io import AudioError, audio_info, check_finite, convert_channels, fit_length, resample

FORMATS = {"wav": "FLOAT", "flac": "PCM_24"}


@dataclass
class Separator:
    """A separation network and what it expects: (B, C, T) at `sample_rate` → (B, S, C, T)."""

    model: torch.nn.Module
    sources: list[str]
    sample_rate: int
    channels: int
    segment: float
    overlap: float
    device: str = "cpu"

    def __call__(self, mixture: torch.Tensor) -> torch.Tensor:
        """(C, T) at the model's rate → (S, C, T), in overlap-added chunks of the training segment."""
        from noisymss.separation.chunked import separate_chunked

        chunk = int(round(self.segment * self.sample_rate))
        return separate_chunked(self.model, mixture.to(self.device), chunk, overlap=self.overlap)


def load_separator(ckpt: str | os.PathLike, device: str = "cpu", sources: Sequence[str] | None = None) -> Separator:
    """The separator of a SeparatorTask checkpoint; one-line errors for a bad file, another task's
    checkpoint, or (with `sources`) a model of other sources."""
    from noisymss.models.separators import build_separator

    ckpt = load_checkpoint(ckpt)
    hp = ckpt.hparams
    if "arch" not in hp or "sources" not in hp:
        raise ValueError(f"{ckpt.path}: not a separator checkpoint; train one with `noisymss fit --config configs/separator_htdemucs.yaml`")
    if sources is not None and list(sources) != list(hp["sources"]):
        raise ValueError(f"{ckpt.path}: separates {list(hp['sources'])}, not {list(sources)}; use a checkpoint for these sources")
    model = build_separator(hp["arch"], hp["sources"], hp.get("size", "small"), hp["sample_rate"], hp["channels"],
                            hp["segment"], **(hp.get("model_args") or {}))
    model.load_state_dict(ckpt.weights("model."))
    return Separator(model.to(device).eval(), list(hp["sources"]), int(hp["sample_rate"]), int(hp["channels"]),
                     float(hp["segment"]), float(hp.get("overlap", 0.25)), device)


def separate_file(sep: Separator, path: Path, folder: Path, fmt: str = "wav", block: float = 60.0) -> list[Path]:
    """Writes `folder/<source>.<fmt>` for one input (atomically, all or nothing); returns their paths."""
    import soundfile as sf

    info = audio_info(path)
    if info.frames == 0:
        raise AudioError(f"{path}: holds no samples")
    rate, have = info.sample_rate, info.channels
    if have not in (1, sep.channels) and sep.channels != 1:
        raise AudioError(f"{path}: {have} channels; the model takes {sep.channels} (or mono, which is repeated)")
    context = int(np.ceil(sep.segment * rate))
    step = max(int(block * rate), 1)
    targets = [inside(folder, f"{s}.{fmt}") for s in sep.sources]  # source names come from the checkpoint
    folder.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack, sf.SoundFile(str(path)) as src:
        temps = [stack.enter_context(atomic_path(t)) for t in targets]  # renamed into place only if all succeed
        outs = [sf.SoundFile(str(t), "w", rate, have, FORMATS[fmt], format=fmt.upper()) for t in temps]
        try:
            for start in range(0, info.frames, step):
                lo, hi = max(start - context, 0), min(start + step + context, info.frames)
                src.seek(lo)
                x = np.ascontiguousarray(src.read(hi - lo, dtype="float32", always_2d=True).T)
                check_finite(x, path)
                x = convert_channels(resample(x, rate, sep.sample_rate), sep.channels)
                with torch.inference_mode():
                    est = sep(torch.from_numpy(x)).float().cpu().numpy()  # (S, C, t) at the model's rate
                keep = slice(start - lo, start - lo + min(step, info.frames - start))
                for out, e in zip(outs, est):
                    e = fit_length(resample(convert_channels(e, have), sep.sample_rate, rate), hi - lo)
                    out.write(np.ascontiguousarray(e[:, keep].T))
        finally:
            for out in outs:
                out.close()
    return targets


def separate_files(ckpt: str | os.PathLike, paths: Sequence[Path], out: Path, fmt: str = "wav", device: str = "cpu",
                   progress: bool = True) -> list[tuple[Path, str]]:
    """Separates every file into `out/<name>/<source>.<fmt>`; returns the (file, reason) that failed."""
    from tqdm import tqdm

    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    sep = load_separator(ckpt, device)  # a bad checkpoint fails here, before any file is read
    failed = []
    for path, folder in tqdm(list(zip(paths, output_paths(paths, out, ""))), desc="separate", unit="file",
                             disable=not progress):
        try:
            info = audio_info(path)
            if (info.sample_rate, info.channels) != (sep.sample_rate, sep.channels) and progress:
                tqdm.write(f"note: {path} is {info.sample_rate} Hz, {info.channels} ch; separated at the model's "
                           f"{sep.sample_rate} Hz, {sep.channels} ch and written back as the input's")
            separate_file(sep, Path(path), folder, fmt)
        except (AudioError, OSError) as err:
            failed.append((Path(path), str(err)))
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()  # nothing of a failed input is left behind
    return failed
