"""The stem catalog: one CSV table of stems and unlabelled mixtures, plus versioned label sets.

Layout on disk, for a catalog `songs.csv`:

    songs.csv                    the table; its `labels` column holds the *given* labels
    songs.labels/refine1.csv     a label version: columns id, labels
    songs.labels/refine1.json    what produced it (command, checkpoint, settings, date, base version)

The given labels are never rewritten: a refine or a teacher writes a new version beside them,
atomically, and refuses to replace an existing one. Paths in the table are relative to the
table's folder (so a corpus can be moved), or absolute.

Columns (`labels` and `true_labels` are '|'-separated class names, empty = none / unknown):
    id, song, path, role (stem | mixture), duration (s), sample_rate, channels, split,
    labels, true_labels, annotation (f0 file, relative like `path`; may end in '#part'),
    group (optional: the singer or artist, which a split never divides; empty = the song)
"""
from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from noisymss.atomic import atomic_write_csv, atomic_write_records, atomic_write_text

COLUMNS = ("id", "song", "path", "role", "duration", "sample_rate", "channels", "split", "labels", "true_labels", "annotation",
           "group")
REQUIRED = ("id", "song", "path", "role", "duration", "sample_rate", "channels", "split", "labels")
ROLES = ("stem", "mixture")
GIVEN = "given"
TRUE = "true"  # the true_labels column as a version (generated corpora know it): for clean baselines and scoring
_VERSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_LABEL_NAME = re.compile(r"^[^|,\s][^|,]*$")


class CatalogError(ValueError):
    """A catalog or label version that cannot be used; the message lists every problem."""


Labels = tuple  # tuple[str, ...]: an entry's classes, in the order given


@dataclass(frozen=True, slots=True)
class Entry:
    """One row of the catalog: a stem or an unlabelled/labelled mixture."""

    id: str
    song: str
    path: str
    role: str
    duration: float
    sample_rate: int
    channels: int
    split: str
    labels: Labels = ()
    true_labels: Labels | None = None  # None: truth unknown
    annotation: str = ""
    group: str = ""  # singer or artist: splits keep a group together (empty: the song)


def join_labels(labels: Iterable[str] | None) -> str:
    return "" if labels is None else "|".join(labels)


def split_labels(text: str) -> Labels:
    return tuple(part.strip() for part in text.split("|") if part.strip())


class Catalog:
    """An in-memory catalog: the entries and the folder their relative paths start from.

    Args:
        entries: rows; ids must be unique.
        root: folder that relative `path` and `annotation` values are resolved against.
        path: the CSV file this catalog lives in (None until saved), which locates label versions.
    """

    def __init__(self, entries: Sequence[Entry], root: str | os.PathLike, path: str | os.PathLike | None = None):
        self.entries = list(entries)
        self.root = Path(root)
        self.path = Path(path) if path is not None else None
        self._index = {e.id: i for i, e in enumerate(self.entries)}
        if len(self._index) != len(self.entries):
            seen: set[str] = set()
            dupes = [e.id for e in self.entries if e.id in seen or seen.add(e.id)]
            raise CatalogError(f"duplicate ids in catalog: {dupes[:5]}")

    # ------------------------------------------------------------------ table
    @classmethod
    def load(cls, path: str | os.PathLike) -> "Catalog":
        """Reads and validates a catalog CSV; raises CatalogError listing every problem row."""
        path = Path(path)
        if not path.is_file():
            raise CatalogError(f"{path}: no such catalog file; create one with `noisymss index` or `noisymss synth`")
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise CatalogError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
            entries, problems, seen = [], [], {}
            for line, row in enumerate(reader, start=2):
                entry, errors = _parse_row(row)
                if entry is not None and entry.id in seen:
                    errors.append(f"duplicate id (first on line {seen[entry.id]})")
                if errors:
                    problems.append(f"  line {line} (id={row.get('id') or '?'}): " + "; ".join(errors))
                else:
                    seen[entry.id] = line
                    entries.append(entry)
        if problems:
            more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
            raise CatalogError(f"{path}: {len(problems)} invalid row(s):\n" + "\n".join(problems[:50]) + more)
        return cls(entries, path.parent, path)

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Writes the table atomically; paths are stored relative to the new file's folder where possible."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise CatalogError(f"{path}: exists; choose another --out or remove it first (a catalog holds given labels)")
        folder = path.parent
        moved = [
            replace(e, path=_relative(self.resolve(e.path), folder),
                    annotation=_relative(self.resolve(e.annotation), folder) if e.annotation else "")
            for e in self.entries
        ]
        atomic_write_csv(path, COLUMNS, ([
            e.id, e.song, e.path, e.role, f"{e.duration:.6f}", e.sample_rate, e.channels, e.split,
            join_labels(e.labels), join_labels(e.true_labels), e.annotation, e.group,
        ] for e in moved))
        self.entries, self.root, self.path = moved, folder, path
        return path

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def __getitem__(self, entry_id: str) -> Entry:
        return self.entries[self._index[entry_id]]

    def resolve(self, relpath: str) -> Path:
        """Absolute path of a `path` or `annotation` value (a '#part' suffix is kept)."""
        p = Path(relpath)
        return p if p.is_absolute() else (self.root / p)

    def stems(self, split: str | Sequence[str] | None = None) -> list[Entry]:
        """Stem rows of one split, of several (a list), or of all (None)."""
        return [e for e in self.entries if e.role == "stem" and _in_split(e, split)]

    def mixtures(self, split: str | Sequence[str] | None = None) -> list[Entry]:
        """Mixture rows of one split, of several (a list), or of all (None)."""
        return [e for e in self.entries if e.role == "mixture" and _in_split(e, split)]

    def classes(self) -> list[str]:
        """Every class named in given or true labels, in order of first appearance."""
        seen: dict[str, None] = {}
        for e in self.entries:
            for c in e.labels + (e.true_labels or ()):
                seen.setdefault(c, None)
        return list(seen)

    def missing_files(self) -> list[Entry]:
        """Entries whose audio file does not exist (a stat per row; not done on load)."""
        return [e for e in self.entries if not Path(str(self.resolve(e.path)).partition("#")[0]).is_file()]

    # --------------------------------------------------------- label versions
    @property
    def versions_dir(self) -> Path:
        if self.path is None:
            raise CatalogError("catalog has no file yet: save it before writing label versions")
        return self.path.with_name(self.path.stem + ".labels")

    def label_versions(self) -> list[str]:
        """'given' and every version written beside this catalog, oldest first."""
        if self.path is None or not self.versions_dir.is_dir():
            return [GIVEN]
        found = sorted(self.versions_dir.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name))
        return [GIVEN] + [p.stem for p in found if p.with_suffix(".csv").is_file()]

    def labels(self, version: str = GIVEN) -> dict[str, Labels]:
        """Labels of every stem under a version: {id: classes}."""
        if version == GIVEN:
            return {e.id: e.labels for e in self.entries if e.role == "stem"}
        if version == TRUE:
            unknown = [e.id for e in self.entries if e.role == "stem" and not e.true_labels]
            if unknown:
                raise CatalogError(f"{self.path}: label version 'true' needs true_labels on every stem; "
                                   f"{len(unknown)} lack them (first: {unknown[0]}); this dataset's truth is unknown: "
                                   "set data.init_args.eval_label_version null to score against the given labels")
            return {e.id: e.true_labels for e in self.entries if e.role == "stem"}
        csv_path = self.versions_dir / f"{version}.csv"
        if not csv_path.is_file():
            raise CatalogError(f"{csv_path}: no label version '{version}'; have {', '.join(self.label_versions())}")
        with open(csv_path, newline="", encoding="utf-8") as f:
            rows = {r["id"]: split_labels(r["labels"]) for r in csv.DictReader(f)}
        self._check_cover(rows, csv_path)
        return rows

    def provenance(self, version: str) -> dict:
        """What produced a label version (the JSON sidecar); {'producer': 'given'} for the given labels."""
        if version in (GIVEN, TRUE):
            return {"producer": version}
        return json.loads((self.versions_dir / f"{version}.json").read_text(encoding="utf-8"))

    def check_new_version(self, version: str) -> None:
        """A CatalogError unless `version` is a valid name that no version of this catalog has yet."""
        if version in (GIVEN, TRUE) or not _VERSION_NAME.match(version):
            raise CatalogError(f"label version name '{version}' is reserved or invalid; use letters, digits, '_', '.', '-'")
        if version in self.label_versions() or (self.versions_dir / f"{version}.csv").exists():
            raise CatalogError(f"label version '{version}' exists beside {self.path} (versions are never replaced); "
                               "choose another name")

    def write_labels(self, version: str, labels: Mapping[str, Sequence[str]], provenance: Mapping,
                     companions: Mapping[str, Sequence[Mapping]] | None = None) -> Path:
        """Writes a new label version atomically (companions and CSV first, then its sidecar, which
        marks it complete).

        Args:
            version: new name (letters, digits, '_', '.', '-'); an existing version is never replaced.
            labels: {id: classes} for every stem of the catalog.
            provenance: what produced it (producer, checkpoint, settings ...); a date is added.
            companions: {name: records} written beside it as `<version>.<name>.csv` (e.g. the
                probabilities the labels were thresholded from).
        """
        self.check_new_version(version)
        csv_path, json_path = self.versions_dir / f"{version}.csv", self.versions_dir / f"{version}.json"
        rows = {k: tuple(v) for k, v in labels.items()}
        self._check_cover(rows, csv_path)
        for name, records in (companions or {}).items():
            atomic_write_records(self.versions_dir / f"{version}.{name}.csv", records)
        atomic_write_csv(csv_path, ("id", "labels"), ((e.id, join_labels(rows[e.id])) for e in self.entries if e.id in rows))
        meta = {"version": version, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **provenance}
        atomic_write_text(json_path, json.dumps(meta, indent=2, default=str) + "\n")
        return csv_path

    def next_version_name(self, prefix: str) -> str:
        """The first free name `prefix1`, `prefix2`, ... ."""
        taken = set(self.label_versions())
        return next(f"{prefix}{i}" for i in range(1, len(taken) + 2) if f"{prefix}{i}" not in taken)

    def _check_cover(self, rows: Mapping[str, Labels], where: Path) -> None:
        stem_ids = {e.id for e in self.entries if e.role == "stem"}
        unknown = sorted(set(rows) - stem_ids)
        missing = sorted(stem_ids - set(rows))
        bad = [f"{k}: {c!r}" for k, v in rows.items() for c in v if not _LABEL_NAME.match(c)]
        problems = []
        if unknown:
            problems.append(f"{len(unknown)} id(s) not stems of the catalog, e.g. {unknown[:3]}")
        if missing:
            problems.append(f"{len(missing)} stem(s) without labels, e.g. {missing[:3]}")
        if bad:
            problems.append(f"invalid class names, e.g. {bad[:3]}")
        if problems:
            raise CatalogError(f"{where}: " + "; ".join(problems))


def make_entry(**values) -> Entry:
    """Builds an Entry from already-typed values (importers, synth)."""
    known = {f.name for f in fields(Entry)}
    return Entry(**{k: v for k, v in values.items() if k in known})


def entry_dict(entry: Entry) -> dict:
    return asdict(entry)


def _parse_row(row: Mapping[str, str]) -> tuple[Entry | None, list[str]]:
    errors = []
    get = lambda key: (row.get(key) or "").strip()  # noqa: E731
    for key in ("id", "song", "path", "split"):
        if not get(key):
            errors.append(f"empty {key}")
    if get("role") not in ROLES:
        errors.append(f"role '{get('role')}' is not one of {', '.join(ROLES)}")
    numbers = {}
    for key, kind in (("duration", float), ("sample_rate", int), ("channels", int)):
        try:
            numbers[key] = kind(float(get(key))) if kind is int else kind(get(key))
            if not numbers[key] > 0:
                errors.append(f"{key} {get(key)} is not positive")
        except ValueError:
            errors.append(f"{key} '{get(key)}' is not a number")
    labels, true_labels = split_labels(get("labels")), split_labels(get("true_labels"))
    for c in labels + true_labels:
        if not _LABEL_NAME.match(c):
            errors.append(f"invalid class name {c!r}")
    if errors:
        return None, errors
    entry = Entry(
        id=get("id"), song=get("song"), path=get("path"), role=get("role"), duration=numbers["duration"],
        sample_rate=numbers["sample_rate"], channels=numbers["channels"], split=get("split"), labels=labels,
        true_labels=true_labels or None, annotation=get("annotation"), group=get("group"),
    )
    return entry, []


def _relative(path: Path, folder: Path) -> str:
    """`path` relative to `folder` when it lies below it, else absolute; a '#part' suffix is kept."""
    base, hash_, part = str(path).partition("#")
    full, folder = Path(base).resolve(), folder.resolve()
    text = full.relative_to(folder).as_posix() if full.is_relative_to(folder) else str(full)
    return text + hash_ + part


def _in_split(entry: Entry, split: str | Sequence[str] | None) -> bool:
    return split is None or (entry.split == split if isinstance(split, str) else entry.split in split)
