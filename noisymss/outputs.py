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

from noisymss.atomic import remove_partials


class OutputError(ValueError):
    """An output that would leave its folder, collide or replace a result; the message says what to do."""


_UNSAFE = re.compile(r"[\x00-\x1f/\\:]")


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


def check_inputs(paths: Sequence[str | os.PathLike]) -> None:
    """A one-line FileNotFoundError naming the first missing input (and how many more), before any work."""
    missing = [Path(p) for p in paths if not Path(p).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise FileNotFoundError(f"{missing[0]}: no such input file{more}")


def claim_outputs(targets: Sequence[Path], overwrite: bool = False) -> None:
    """Readies the output files or folders of one command: temp files a killed run left beside or in
    them are removed, and targets that exist are refused unless `overwrite`."""
    for folder in {t.parent for t in targets} | {t for t in targets if t.is_dir()}:
        remove_partials(folder)
    if not overwrite:
        refuse_existing(targets)


def refuse_existing(paths: Iterable[Path], hint: str = "choose another --out, or pass --overwrite to replace them") -> None:
    """A one-line OutputError if any of `paths` exists (a file, or a non-empty folder), ending in `hint`."""
    there = [p for p in paths if p.is_file() or (p.is_dir() and any(p.iterdir()))]
    if there:
        more = f" (and {len(there) - 1} more)" if len(there) > 1 else ""
        raise OutputError(f"{there[0]}{more}: exists; {hint}")
