"""The pre-flight check: everything about a catalog's rows that can be known before work starts.

Headers only (no decoding), so a check of thousands of files takes seconds. Each DataModule says
which rows a stage needs and in what format (`CatalogDataModule.check`); this module checks them:
the file exists and opens as audio, holds samples, and its channel count converts to the task's
(any rate is resampled); an annotation, where one is needed, exists. Problems are collected, never
raised one by one, so a user sees every bad row of a dataset at once.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from noisymss.audio.io import AudioError, audio_info, split_channel
from noisymss.data.catalog import Catalog, CatalogError, Entry


@dataclass
class Report:
    """What a check found.

    Attributes:
        bad_rows: {row id: why it cannot be used} (the row's file is named in the reason).
        problems: what no row can fix: an empty split, a class without stems (always fatal).
        notes: worth a word, not fatal: labels outside the classes, scores against noisy labels.
        checked: rows looked at.
    """

    bad_rows: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.bad_rows and not self.problems

    def lines(self, limit: int = 20) -> list[str]:
        """The problems, then up to `limit` bad rows, one per line."""
        rows = list(self.bad_rows.values())
        more = [f"... and {len(rows) - limit} more bad row(s)"] if len(rows) > limit else []
        return self.problems + rows[:limit] + more

    def error(self, catalog: str | Path, skip_option: str) -> CatalogError:
        """The error that stops a run: every problem, and how to go on."""
        what = [f"{len(self.problems)} problem(s)"] * bool(self.problems) + [f"{len(self.bad_rows)} bad row(s)"] * bool(self.bad_rows)
        hint = f"; fix them, or set {skip_option} true to leave the bad rows out" if self.bad_rows and not self.problems else ""
        return CatalogError(f"{catalog}: {' and '.join(what)} found before any work{hint}\n  " + "\n  ".join(self.lines()))


def check_rows(catalog: Catalog, rows: Iterable[Entry], channels: int, report: Report, annotation: bool = False) -> None:
    """Checks each row's file (and annotation, if `annotation`) into `report` (any rate is resampled)."""
    for e in rows:
        if e.id in report.bad_rows:
            continue
        report.checked += 1
        why = _row_problem(catalog, e, channels, annotation)
        if why:
            report.bad_rows[e.id] = why


def _row_problem(catalog: Catalog, e: Entry, channels: int, annotation: bool) -> str:
    path = catalog.resolve(e.path)
    if not Path(split_channel(path)[0]).is_file():
        return f"{path}: missing (row {e.id}); restore it or re-index the dataset"
    try:
        info = audio_info(path)
    except AudioError as err:
        return f"{err} (row {e.id})"
    if info.frames == 0:
        return f"{path}: no samples (row {e.id})"
    if info.channels not in (1, channels) and channels != 1:
        return f"{path}: {info.channels} channels; the task takes {channels} (or mono) (row {e.id})"
    if annotation:
        if not e.annotation:
            return f"{path}: no f0 annotation in the catalog (row {e.id})"
        ref = catalog.resolve(e.annotation.partition("#")[0])
        if not ref.is_file():
            return f"{ref}: annotation missing (row {e.id})"
    return ""


def check_labels(rows: Sequence[Entry], labels: dict[str, Sequence[str]], classes: Sequence[str], split: str,
                 report: Report, fatal: bool = True) -> None:
    """Notes labels outside `classes` (those stems' other labels are still used). A class with no
    stem in `split` is a problem when `fatal` (training an output that never sees an example), else a note."""
    outside = Counter(c for e in rows for c in labels.get(e.id, ()) if c not in classes)
    if outside:
        never = sum(1 for e in rows if labels.get(e.id) and not any(c in classes for c in labels[e.id]))
        report.notes.append(f"split '{split}': labels outside the classes {list(classes)}: "
                            + ", ".join(f"{c!r} on {n} stem(s)" for c, n in outside.most_common())
                            + f"; {never} stem(s) have no other label and are never drawn "
                            "(rename the labels in the catalog, or add the classes)")
    have = Counter(c for e in rows if e.id not in report.bad_rows for c in labels.get(e.id, ()))
    empty = [c for c in classes if not have[c]]
    if empty:
        (report.problems if fatal else report.notes).append(f"split '{split}': no usable stem labelled {', '.join(map(repr, empty))}; "
                               "add stems of that class or leave it out of data.classes")
