"""Separation scores: a cheap utterance SDR for validation, museval's BSSEval v4 for test reports.

`utterance_sdr` is the MDX'21 / SDX'23 challenge SDR (one number per source and song, a few
hundred times faster than BSSEval). `bss_eval_song` is museval's BSSEval v4 (1 s frames, median
over frames), the SiSEC 2018 / MUSDB18 convention; `evaluate_songs` runs it over songs, in a
process pool and sharded over DDP ranks; `summarize` takes the median over songs per source
and the mean over sources. museval is imported lazily: it imports musdb, which needs ffmpeg.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import json
import multiprocessing
import os
import warnings
from typing import TYPE_CHECKING, Any, Callable, Hashable, Iterator, Mapping, Sequence

import numpy as np

from noisymss.atomic import atomic_write_csv, atomic_write_text

if TYPE_CHECKING:
    import torch

METRICS = ("SDR", "SIR", "ISR", "SAR")
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def utterance_sdr(est: torch.Tensor | np.ndarray, ref: torch.Tensor | np.ndarray, eps: float = 1e-8) -> torch.Tensor:
    """The MDX'21 / SDX'23 "utterance" SDR of each source, over its channels and whole length.

    SDR = 10 log10((||s||² + eps) / (||s − ŝ||² + eps)), sums over channels and time (Mitsufuji et
    al., "Music Demixing Challenge 2021", and the SDX'23 challenge rules). No projection, no
    frames: a gain error counts as distortion, and a silent reference gives a finite, very low
    value for any non-silent estimate (eps keeps it finite) instead of BSSEval's error.

    Args:
        est: estimates (..., C, T), e.g. (B, S, C, T); numpy arrays are accepted.
        ref: references, same shape.
        eps: added to both energies.

    Returns:
        (...) SDR in dB, e.g. (B, S), in the inputs' float dtype (float32 for integer input).
    """
    import torch

    est, ref = torch.as_tensor(est), torch.as_tensor(ref)
    if est.shape != ref.shape:
        raise ValueError(f"estimate {tuple(est.shape)} and reference {tuple(ref.shape)} differ in shape")
    dtype = torch.promote_types(est.dtype, ref.dtype)
    if not dtype.is_floating_point:
        dtype = torch.float32
    est, ref = est.to(dtype), ref.to(dtype)
    return sdr_of_energies(ref.square().sum(dim=(-2, -1)), (ref - est).square().sum(dim=(-2, -1)), eps)


def sdr_of_energies(signal: torch.Tensor, distortion: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """SDR in dB from energies: 10 log10((‖s‖² + eps) / (‖s − ŝ‖² + eps)), elementwise (any shape).

    The formula of `utterance_sdr`, for callers that already have the energies (X-UMX's loss gets
    them from Gram matrices).
    """
    import torch

    return 10.0 * torch.log10((signal + eps) / (distortion + eps))


def _silent(x: np.ndarray) -> bool:
    """museval's own silence test on one (T, C) source: the sum over channels is zero everywhere.

    Mirroring it (rather than `all(x == 0)`) means museval never rejects what passes here; it
    also calls a stereo source with exactly opposite channels silent, as museval does."""
    return bool(np.all(np.sum(x, axis=-1) == 0))


def bss_eval_song(est: np.ndarray, ref: np.ndarray, sample_rate: int, window: float = 1.0, hop: float = 1.0,
                  sources: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """museval's BSSEval v4 on one song: per source the median over frames of SDR, SIR, ISR, SAR.

    Frames where any evaluated reference or estimate is silent are NaN for every source (museval)
    and left out of the medians, as in SiSEC; all frames NaN gives NaN. The estimate is padded
    or cut to the reference's length (museval's `pad_or_truncate`).

    A silent (all-zero) reference, e.g. an instrument absent from the song, makes museval raise
    for the whole call. Such a source is reported as NaN and left out of the joint evaluation,
    with its estimate. This changes nothing for the others: an all-zero reference adds nothing
    to the span of the references that BSSEval projects each estimate on, so their SDR/ISR are
    identical and their SIR/SAR within 1e-7 dB (checked with museval's checks bypassed);
    keeping it would only make every frame NaN. Its estimate takes part in the others' scores
    only through that frame mask, so dropping it is what keeps a correct silent estimate from
    wiping out the song. A silent estimate of a non-silent reference is refused by museval too;
    that source is reported as NaN (with a warning) and a stand-in estimate (its own reference)
    is evaluated in its place, so the others keep the full set of references: dropping that
    reference would move their interference into artifacts (SIR up, SAR down; SDR and ISR do
    not depend on the other references). With one non-silent source, its SIR is +inf.

    Args:
        est: estimates (S, C, T).
        ref: references (S, C, T').
        sample_rate: Hz; window and hop are in seconds.
        sources: names of the S sources; default "0", "1", ...

    Returns:
        {source: {"SDR", "SIR", "ISR", "SAR": dB}}.
    """
    est, ref = _numpy(est), _numpy(ref)
    if est.ndim != 3 or est.shape[:2] != ref.shape[:2]:
        raise ValueError(f"estimates {est.shape} and references {ref.shape} must be (S, C, T) with the same S and C")
    names = [str(i) for i in range(len(ref))] if sources is None else list(sources)
    if len(names) != len(ref):
        raise ValueError(f"{len(names)} source names for {len(ref)} sources")
    n = ref.shape[-1]
    est = np.pad(est[..., :n], ((0, 0), (0, 0), (0, n - min(n, est.shape[-1]))))
    # museval wants (S, T, C); float64 so that every process computes from the same numbers
    ref = np.ascontiguousarray(ref.transpose(0, 2, 1), dtype=np.float64)
    est = np.ascontiguousarray(est.transpose(0, 2, 1), dtype=np.float64)
    result = {name: dict.fromkeys(METRICS, float("nan")) for name in names}
    keep = [j for j in range(len(ref)) if not _silent(ref[j])]
    if not keep:
        return result
    ests = est[keep].copy()
    for i, j in enumerate(keep):
        if _silent(ests[i]):
            warnings.warn(f"bss_eval_song: the estimate of source {names[j]} is silent; its scores are NaN", RuntimeWarning)
            ests[i] = ref[j]
    import museval

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log10 of 0 on silent frames, all-NaN medians
        sdr, isr, sir, sar = museval.evaluate(ref[keep], ests, win=int(round(window * sample_rate)),
                                              hop=int(round(hop * sample_rate)))
        for i, j in enumerate(keep):
            if _silent(est[j]):
                continue
            framewise = {"SDR": sdr[i], "SIR": sir[i], "ISR": isr[i], "SAR": sar[i]}
            result[names[j]] = {m: float(np.nanmedian(framewise[m])) for m in METRICS}
    return result


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)  # a torch tensor


def _evaluate_one(load: Callable, sample_rate: int, sources: Sequence[str] | None, window: float, hop: float,
                  key: Hashable) -> dict[str, dict[str, float]]:
    est, ref = load(key)
    return bss_eval_song(est, ref, sample_rate, window, hop, sources)


@contextlib.contextmanager
def _single_threaded_children() -> Iterator[None]:
    """Thread-count variables set to 1 while workers are spawned (BLAS and torch read them when
    imported, before any initializer could run); restored afterwards."""
    old = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update(dict.fromkeys(_THREAD_VARS, "1"))
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def evaluate_songs(keys: Sequence[Hashable], load: Callable[[Hashable], tuple[np.ndarray, np.ndarray]],
                   sample_rate: int, jobs: int = 1, progress: bool = False, sources: Sequence[str] | None = None,
                   window: float = 1.0, hop: float = 1.0) -> dict[Hashable, dict[str, dict[str, float]]]:
    """`bss_eval_song` for every song, sharded over DDP ranks and `jobs` worker processes per rank.

    Each rank scores its share of the keys (through `noisymss.distributed.sharded_map`, the
    project's one sharding mechanism) and every rank returns the same merged dict; call it on all ranks.
    With jobs > 1 a spawn-context pool of single-threaded workers runs `load` and museval, so
    `load` must be picklable (a module-level function or a functools.partial of one) and the
    audio never crosses processes. Results are the same floats whatever the sharding, as long as
    the calling process is single-threaded too (OMP_NUM_THREADS=1, as tests and CI set it).

    Args:
        keys: songs, in the same order on every rank.
        load: key -> (estimates (S, C, T), references (S, C, T)).
        sample_rate: Hz.
        jobs: worker processes per rank; 1 scores in this process.
        progress: progress bar on rank 0.
        sources: names of the S sources; default "0", "1", ...
        window, hop: BSSEval frames in seconds.

    Returns:
        {key: {source: {"SDR", "SIR", "ISR", "SAR": dB}}} for every key, in `keys` order.
    """
    # imported here, not at the top: spawned workers import this module, and need no torch
    from noisymss.distributed import shard, sharded_map

    score = functools.partial(_evaluate_one, load, sample_rate, sources, window, hop)
    mine = shard(keys)  # the share sharded_map() will ask this rank for
    if jobs <= 1 or len(mine) <= 1:
        return sharded_map(keys, score, progress, desc="bss_eval")
    ctx = multiprocessing.get_context("spawn")
    with _single_threaded_children(), concurrent.futures.ProcessPoolExecutor(
            min(jobs, len(mine)), mp_context=ctx) as pool:
        futures = {k: pool.submit(score, k) for k in mine}
        return sharded_map(keys, lambda k: futures[k].result(), progress, desc="bss_eval")


def summarize(results: Mapping[Hashable, Mapping[str, Mapping[str, float]]], sources: Sequence[str],
              metrics: Sequence[str] = METRICS) -> dict[str, dict[str, float]]:
    """Median over songs per source (NaN songs left out), then the mean of those medians over sources.

    This is the SiSEC 2018 / SDX'23 convention: median over frames (in `bss_eval_song`), median
    over songs per source, mean over sources. A source that is NaN in every song (absent from
    the whole set) has a NaN median and is left out of the mean.

    Returns:
        {source: {metric: median, "songs": number of songs with a value}, "mean": {metric: mean}}.
    """
    out: dict[str, dict[str, float]] = {}
    for s in sources:
        values = {m: np.array([r[s][m] for r in results.values() if s in r], dtype=np.float64) for m in metrics}
        out[s] = {m: _nan_stat(np.nanmedian, v) for m, v in values.items()}
        out[s]["songs"] = int(np.sum(~np.isnan(values[metrics[0]]))) if metrics else 0
    out["mean"] = {m: _nan_stat(np.nanmean, np.array([out[s][m] for s in sources], dtype=np.float64)) for m in metrics}
    return out


def _nan_stat(fn: Callable, values: np.ndarray) -> float:
    if values.size == 0 or np.all(np.isnan(values)):
        return float("nan")
    return float(fn(values))


def write_results(results: Mapping[Hashable, Mapping[str, Mapping[str, float]]], path_json: str | os.PathLike,
                  path_csv: str | os.PathLike) -> None:
    """Writes per-song scores and their summary as JSON, and one CSV row per song and source, atomically.

    JSON: {"songs": {song: {source: {metric: dB}}}, "summary": summarize(...)}, song keys as
    strings; NaN and inf are written as Python's json writes them (NaN, Infinity), which
    `json.load` and pandas read back. CSV columns: song, source, SDR, SIR, ISR, SAR.
    """
    sources = list(dict.fromkeys(s for r in results.values() for s in r))
    songs = {str(k): {s: dict(v) for s, v in r.items()} for k, r in results.items()}
    doc = {"songs": songs, "summary": summarize(results, sources)}
    atomic_write_text(path_json, json.dumps(doc, indent=1) + "\n")
    atomic_write_csv(path_csv, ["song", "source", *METRICS],
                     ([song, s, *(repr(float(v[m])) for m in METRICS)] for song, r in songs.items() for s, v in r.items()))
