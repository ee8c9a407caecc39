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
