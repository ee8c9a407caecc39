"""Separating a long mixture in overlapping chunks, cross-faded and overlap-added in place.

A separator trained on short segments is run on chunks of that length; consecutive chunks
overlap and their outputs are cross-faded, since a network's output is worst near the edges of
its input, where it lacks context. The output is divided by the sum of the weights each sample
received, so any positive window reconstructs exactly what the separator returns, including at
the ends of the song where only one chunk covers a sample. Memory is the output, one weight per
sample and `batch` chunks: chunks are cut from the mixture as they are needed.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch


def chunk_positions(length: int, chunk: int, hop: int) -> range:
    """Start samples of the chunks that cover `length` samples: 0, hop, 2·hop, ... (at least one).

    The last chunk is the first one that reaches `length`; it runs past the end (zero-padded).
    """
    if chunk < 1 or hop < 1:
        raise ValueError(f"chunk ({chunk}) and hop ({hop}) must be positive")
    n = 1 if length <= chunk else math.ceil((length - chunk) / hop) + 1
    return range(0, n * hop, hop)


def crossfade_window(chunk: int, fade: int) -> torch.Tensor:
    """(chunk,) weights: linear ramps of `fade` samples at both ends, 1 in between.

    The ramps go (1 .. fade) / (fade + 1), so no weight is zero (a sample covered by one chunk
    only, at the song's ends, still gets a weight) and a ramp down plus the next chunk's ramp up
    sum to 1 when chunks overlap by `fade`. With fade > chunk / 2 the ramps meet (a triangle);
    the division by the accumulated weights keeps it exact anyway.
    """
    i = torch.arange(chunk, dtype=torch.float64)
    ramp = torch.minimum(i + 1, chunk - i).clamp(max=fade + 1) / (fade + 1)
    return ramp.float()


def separate_chunked(
    separate: Callable[[torch.Tensor], torch.Tensor],
    mixture: torch.Tensor | np.ndarray,
    chunk: int,
    overlap: float = 0.25,
    batch: int = 1,
    out: torch.Tensor | np.ndarray | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Runs `separate` on overlapping chunks of `mixture` and overlap-adds the cross-faded outputs.

    Args:
        separate: (B, C, chunk) -> (B, S, C, chunk), e.g. a model in eval mode. It is called
            under `torch.no_grad()` with at most `batch` chunks, always `chunk` samples long; it
            sees chunks on the mixture's device and in its float dtype.
        mixture: (C, T), torch or numpy.
        chunk: chunk length in samples.
        overlap: fraction of a chunk shared with the next one, in [0, 1).
        batch: chunks per call.
        out: optional (S, C, T) tensor or numpy array (e.g. a memmap) to write into; it is
            overwritten. Default: a new float32 tensor on the mixture's device.
        progress: show a progress bar over the calls.

    Returns:
        (S, C, T) estimates (`out` as a tensor when given; a numpy `out` shares its memory).
    """
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if batch < 1:
        raise ValueError(f"batch must be positive, got {batch}")
    mixture = torch.from_numpy(np.asarray(mixture)) if not isinstance(mixture, torch.Tensor) else mixture
    if mixture.ndim != 2:
        raise ValueError(f"mixture must be (C, T), got {tuple(mixture.shape)}")
    if not mixture.dtype.is_floating_point:
        mixture = mixture.float()
    channels, length = mixture.shape
    fade = min(int(round(overlap * chunk)), chunk - 1)
    starts = chunk_positions(length, chunk, chunk - fade)
    if isinstance(out, np.ndarray):
        out = torch.from_numpy(out)
    device = mixture.device if out is None else out.device
    window = crossfade_window(chunk, fade).to(device)
    weight = torch.zeros(length, device=device)
    for s in starts:
        n = min(chunk, length - s)
        weight[s:s + n] += window[:n]
    batches = [starts[i:i + batch] for i in range(0, len(starts), batch)]
    with torch.no_grad():
        for i, group in enumerate(_progress(batches) if progress else batches):
            x = mixture.new_zeros(len(group), channels, chunk)  # the last chunk's tail stays zero
            for b, s in enumerate(group):
                n = min(chunk, length - s)
                x[b, :, :n] = mixture[:, s:s + n]
            y = separate(x)
            if y.ndim != 4 or y.shape[0] != len(group) or y.shape[2:] != (channels, chunk):
                raise ValueError(f"separate() returned {tuple(y.shape)} for input {tuple(x.shape)}: expected (B, S, C, T)")
            if out is None:
                out = torch.zeros(y.shape[1], channels, length, device=device)
            elif i == 0:
                if out.shape != (y.shape[1], channels, length):
                    raise ValueError(f"out is {tuple(out.shape)}, expected {(y.shape[1], channels, length)}")
                out.zero_()
            y = y.to(device, out.dtype) * window
            for b, s in enumerate(group):
                n = min(chunk, length - s)
                out[..., s:s + n] += y[b, ..., :n]
        out /= weight
    return out


def _progress(batches: list) -> list:
    from tqdm import tqdm

    return tqdm(batches, desc="separate", unit="batch")
