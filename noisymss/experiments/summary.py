"""The summary tables of the experiments: per run, each metric's mean over seeds with a 95 %
confidence interval (Student's t with n - 1 degrees of freedom), from the rows of results.csv."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

FOOTNOTE = ("Cells: mean ± half-width of the 95 % confidence interval over seeds (Student's t, n − 1 degrees of "
            "freedom); a single seed has no interval. Several values (a → b): one per round or iteration.")


@dataclass(frozen=True)
class Column:
    """A column of a summary table.

    Args:
        header: its heading.
        keys: the row fields it shows; with several, the means of those present are joined by ' → '
            (e.g. one per teacher-student iteration). Empty: the run's text from `about`.
        digits: decimals.
        about: {run: text}, for a text column.
    """

    header: str
    keys: tuple[str, ...] = ()
    digits: int = 1
    about: Mapping[str, str] = field(default_factory=dict)


def mean_ci(values: Sequence[float]) -> tuple[float, float, int]:
    """(mean, half-width of its 95 % t interval, n) of the finite values; NaN where undefined (n < 2)."""
    from scipy import stats

    x = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if len(x) == 0:
        return float("nan"), float("nan"), 0
    if len(x) == 1:
        return float(x[0]), float("nan"), 1
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean()), float(half), len(x)


def cell(values: Sequence[float], digits: int = 1) -> str:
    """'36.8 ± 2.1' (several seeds), '36.8' (one), '–' (none)."""
    mean, half, n = mean_ci(values)
    if n == 0:
        return "–"
    return f"{mean:.{digits}f}" + (f" ± {half:.{digits}f}" if n > 1 else "")


def table(rows: list[dict], columns: Sequence[Column], runs: Sequence[str] | None = None) -> str:
    """A markdown table, one line per run (in `runs` order, default: first appearance in `rows`):
    its name, the seeds it has results for, then the columns."""
    names = list(runs) if runs is not None else list(dict.fromkeys(r["run"] for r in rows))
    head = ["run", "seeds", *(c.header for c in columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        mine = [r for r in rows if r["run"] == name and "error" not in r]
        cells = [name, str(len(mine))]
        for c in columns:
            if not c.keys:
                cells.append(c.about.get(name, ""))
                continue
            shown = [cell([r.get(k) for r in mine], c.digits) for k in c.keys if any(k in r for r in mine)]
            cells.append(" → ".join(shown) if shown else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bootstrap_ci(values: Mapping[int, Mapping[str, float]], draws: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """The mean of {seed: {song: value}} over seeds and songs, and its 95 % bootstrap interval.

    Each draw resamples the seeds and, once for all of them, the songs (every seed scores the
    same songs), with replacement; the interval is the 2.5 and 97.5 percentiles of the draws'
    means. Missing or NaN cells are left out of a mean. Returns (mean, low, high); NaN without data.
    """
    seeds = sorted(values)
    songs = sorted({song for per_song in values.values() for song in per_song})
    grid = np.array([[values[k].get(song, np.nan) for song in songs] for k in seeds], dtype=np.float64)
    if not np.isfinite(grid).any():
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    rows = rng.integers(len(seeds), size=(draws, len(seeds)))
    cols = rng.integers(len(songs), size=(draws, len(songs)))
    picked = grid[rows[:, :, None], cols[:, None, :]]  # (draws, seeds, songs)
    finite = np.isfinite(picked)
    sums, counts = np.where(finite, picked, 0.0).sum(axis=(1, 2)), finite.sum(axis=(1, 2))
    means = sums[counts > 0] / counts[counts > 0]
    low, high = np.percentile(means, [2.5, 97.5])
    return float(np.nanmean(grid)), float(low), float(high)


def paired(a: Mapping[int, Mapping[str, float]], b: Mapping[int, Mapping[str, float]]) -> dict[int, dict[str, float]]:
    """a − b for every (seed, song) both have: the paired differences a claim rests on."""
    return {k: {song: a[k][song] - b[k][song] for song in a[k] if song in b[k]} for k in a if k in b}


def interval(mean: float, low: float, high: float, digits: int = 2) -> str:
    """'+0.41 [0.12, 0.70]', or '–' without data."""
    if not math.isfinite(mean):
        return "–"
    return f"{mean:+.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
