"""Catalog tools: each makes a new catalog from others and never changes its inputs (`noisymss catalog ...`).

    merge     several catalogs into one: ids and songs kept unique, every path still valid
    split     assign splits by group (singer, artist, song: a group never spans two splits), by
              fractions of audio with a seed, or from a list of (group, split) lines
    withhold  clear the labels of one split to make it unlabelled; the truth stays for scoring
    map       rename labels through a taxonomy table (an empty target drops the label)
    filter    keep the rows of some splits, roles or labels

Rows are `Entry`s; `group` is the row's group column, or its song where that is empty.
"""
from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from noisymss.data.catalog import Catalog, CatalogError, Entry


def group_of(e: Entry) -> str:
    """The unit a split never divides: the row's group (singer, artist) or, without one, its song."""
    return e.group or e.song


def merge(catalogs: Sequence[Catalog], names: Sequence[str]) -> Catalog:
    """One catalog of all rows. Ids and songs that occur in more than one input are prefixed with that
    input's name (`names[i]/...`); paths become absolute, so they stay valid wherever it is saved."""
    counts = Counter(song for cat in catalogs for song in {e.song for e in cat})
    entries = []
    for cat, name in zip(catalogs, names):
        for e in cat:
            clash = counts[e.song] > 1
            entries.append(replace(
                e, id=f"{name}/{e.id}" if clash else e.id, song=f"{name}/{e.song}" if clash else e.song,
                group=(f"{name}/{e.group}" if clash and e.group else e.group), path=str(cat.resolve(e.path)),
                annotation=_resolved(cat, e.annotation)))
    ids = Counter(e.id for e in entries)
    twice = [k for k, n in ids.items() if n > 1]
    if twice:
        raise CatalogError(f"ids {twice[:3]} occur twice across the inputs; give them different --names")
    return Catalog(entries, Path.cwd())


def split_by_fractions(catalog: Catalog, fractions: Mapping[str, float], seed: int = 0) -> Catalog:
    """Every group to one split, at random (seeded), so that each split holds about its fraction of the
    audio (a song counts for its longest row)."""
    if not fractions or any(f <= 0 for f in fractions.values()):
        raise CatalogError("give each split a positive fraction, e.g. train=0.8,valid=0.1,test=0.1")
    song_seconds: dict[tuple[str, str], float] = {}
    for e in catalog:
        key = (group_of(e), e.song)
        song_seconds[key] = max(song_seconds.get(key, 0.0), e.duration)
    seconds: Counter = Counter()
    for (group, _), length in song_seconds.items():
        seconds[group] += length
    groups = sorted(seconds)
    order = np.random.default_rng(seed).permutation(len(groups))
    total, names = sum(seconds.values()), list(fractions)
    want = np.array([fractions[n] for n in names], float) / sum(fractions.values()) * total
    have = np.zeros(len(names))
    chosen = {}
    for i in order:  # each group to the split furthest below its share
        k = int(np.argmax(want - have))
        chosen[groups[i]] = names[k]
        have[k] += seconds[groups[i]]
    return Catalog([replace(e, split=chosen[group_of(e)]) for e in catalog], catalog.root, None)


def split_from_list(catalog: Catalog, table: Mapping[str, str]) -> Catalog:
    """Splits from a {group or song: split} table; every group must be listed."""
    missing = sorted({group_of(e) for e in catalog} - set(table))
    if missing:
        raise CatalogError(f"{len(missing)} group(s) not in the list, e.g. {missing[:3]}; list every group (or song)")
    return Catalog([replace(e, split=table[group_of(e)]) for e in catalog], catalog.root, None)


def withhold(catalog: Catalog, split: str) -> Catalog:
    """The rows of `split` without their given labels (an unlabelled split); their truth is kept in
    `true_labels` (the given labels become it where the truth was unknown), for scoring only."""
    if not any(e.split == split for e in catalog):
        raise CatalogError(f"no rows in split '{split}'; have {sorted({e.split for e in catalog})}")
    return Catalog([replace(e, labels=(), true_labels=e.true_labels if e.true_labels is not None else e.labels)
                    if e.split == split else e for e in catalog], catalog.root, None)


def map_labels(catalog: Catalog, table: Mapping[str, str]) -> tuple[Catalog, Counter]:
    """Labels (given and true) renamed through `table` ({from: to}; to '' drops the label). Labels not
    in the table are kept; returns them with their counts, for the caller to report."""
    unmapped: Counter = Counter()

    def mapped(labels):
        if labels is None:
            return None
        out = []
        for c in labels:
            if c not in table:
                unmapped[c] += 1
            target = table.get(c, c)
            if target and target not in out:
                out.append(target)
        return tuple(out)

    entries = [replace(e, labels=mapped(e.labels), true_labels=mapped(e.true_labels)) for e in catalog]
    return Catalog(entries, catalog.root, None), unmapped


def filter_rows(catalog: Catalog, splits: Sequence[str] = (), roles: Sequence[str] = (), labels: Sequence[str] = ()) -> Catalog:
    """The rows in any of `splits`, of any of `roles`, carrying any of `labels` (an empty list keeps all)."""
    keep = [e for e in catalog if (not splits or e.split in splits) and (not roles or e.role in roles)
            and (not labels or set(e.labels) & set(labels))]
    if not keep:
        raise CatalogError("no row is left by this filter; check the split, role and label names")
    return Catalog(keep, catalog.root, None)


def read_table(path: str | os.PathLike) -> dict[str, str]:
    """A two-column CSV (with or without a header) as {first: second}: a taxonomy or a split list."""
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"{path}: no such table file")
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    bad = [i + 1 for i, r in enumerate(rows) if len(r) != 2]
    if bad:
        raise CatalogError(f"{path}: line(s) {bad[:5]} do not hold two columns (from,to)")
    return {a.strip(): b.strip() for a, b in rows}


def _resolved(catalog: Catalog, annotation: str) -> str:
    if not annotation:
        return ""
    base, hash_, part = annotation.partition("#")
    return str(catalog.resolve(base)) + hash_ + part
