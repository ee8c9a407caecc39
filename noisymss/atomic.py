"""Atomic file writes: write to a temp file beside the target, then rename over it.

A reader (or a rerun after `kill -9`) sees either the old file or the complete new one,
never a half-written file. Temp names start with '.' and end with '.part' so scans skip them.
"""
from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temp path in the target's folder; renames it onto `path` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600 files: give results the mode a plain open() would
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def remove_partials(folder: str | os.PathLike, recursive: bool = False) -> int:
    """Deletes the temp files that a killed writer left in `folder` (a command calls this on the folder
    it owns, before it writes there again); returns how many there were."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    found = list(folder.rglob(".*.part") if recursive else folder.glob(".*.part"))
    for path in found:
        path.unlink(missing_ok=True)
    return len(found)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes `text` to `path` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_csv(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Writes a header and rows as CSV ('\n' line ends; None as an empty cell) atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return atomic_write_text(path, buf.getvalue())


def atomic_write_records(path: str | os.PathLike, records: Sequence[Mapping[str, Any]]) -> Path:
    """Writes dicts as CSV rows atomically: a column per key, in the order keys first appear; a
    record without a key leaves its cell empty."""
    columns = list(dict.fromkeys(k for r in records for k in r))
    return atomic_write_csv(path, columns, ([r.get(c, "") for c in columns] for r in records))
