"""Where commands write: every output path the project makes from a user's or a dataset's names.

Three promises, kept here for every command: nothing is written outside the folder the command was
given, whatever a file, song or version name holds (`..`, `/`, an absolute path); no two inputs
write the same output; and results already in the folder are replaced only when asked.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence


class OutputError(ValueError):
    """An output that would leave its folder, collide or replace a result; the message says what to do."""


_UNSAFE = re.compile(r"[\x00-\x1f/\\:]")


def check_name(name: str, what: str) -> str:
    """`name` if it is safe as one file name (a label version, a run name), else a one-line OutputError.

    Args:
        what: how the message names it, e.g. '--version'.
    """
    if not name or name in (".", "..") or name.startswith(".") or _UNSAFE.search(name) or len(name) > 200:
        raise OutputError(f"{what} {name!r}: not a usable name; use letters, digits, '_', '-' and '.' "
                          "(no '/', '\\', ':' or leading '.')")
    return name


def safe_part(name: str) -> str:
    """A dataset-given name (song, file stem) made safe as one path component: separators and control
    characters become '_', and leading dots are dropped ('..' becomes '_')."""
    return _UNSAFE.sub("_", name).lstrip(".") or "_"


def inside(root: str | os.PathLike, *parts: str) -> Path:
    """`root / parts...`, refused unless it stays inside `root` (after resolving links and '..')."""
    root = Path(root)
    path = root.joinpath(*parts)
    if not path.resolve().is_relative_to(root.resolve()):
        raise OutputError(f"{path}: would be written outside {root}; rename the input")
    return path


def output_paths(inputs: Sequence[str | os.PathLike], out: str | os.PathLike, suffix: str) -> list[Path]:
    """One `<name><suffix>` under `out` per input file, never shared, never outside `out`.

    Names are the inputs' stems (`song.wav` → `out/song<suffix>`). Inputs that would share one keep
    their folders (`a/mix.wav`, `b/mix.wav` → `out/a/mix…`, `out/b/mix…`) and, when still equal, their
    extensions (`x.wav`, `x.flac` → `out/x.wav…`, `out/x.flac…`). The same file given twice is refused.
    """
    out = Path(out)
    resolved = [Path(p).resolve() for p in inputs]
    twice = [p for p, n in Counter(resolved).items() if n > 1]
    if twice:
        raise OutputError(f"{twice[0]}: given more than once; list each input once")
    root = Path(os.path.commonpath([p.parent for p in resolved])) if resolved else out
    folders = [[safe_part(s) for s in p.parent.relative_to(root).parts] for p in resolved]
    for names in (
        [[safe_part(p.stem)] for p in resolved],  # song.f0.txt
        [f + [safe_part(p.stem)] for f, p in zip(folders, resolved)],  # a/song.f0.txt
        [f + [safe_part(p.name)] for f, p in zip(folders, resolved)],  # a/song.wav.f0.txt
    ):
        targets = [out.joinpath(*n[:-1], n[-1] + suffix) for n in names]
        if len(set(targets)) == len(targets):
            return [inside(out, *t.relative_to(out).parts) for t in targets]
    # names that differ only in characters made safe: number them, in input order
    seen: Counter = Counter()
    numbered = []
    for t in targets:
        seen[t] += 1
        numbered.append(t if seen[t] == 1 else t.with_name(f"{t.name}-{seen[t]}"))
    return [inside(out, *t.relative_to(out).parts) for t in numbered]


def refuse_existing(paths: Iterable[Path], hint: str = "choose another --out, or pass --overwrite to replace them") -> None:
    """A one-line OutputError if any of `paths` exists (a file, or a non-empty folder), ending in `hint`."""
    there = [p for p in paths if p.is_file() or (p.is_dir() and any(p.iterdir()))]
    if there:
        more = f" (and {len(there) - 1} more)" if len(there) > 1 else ""
        raise OutputError(f"{there[0]}{more}: exists; {hint}")
