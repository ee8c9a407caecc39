"""Catalog tools: merge, group splits, withheld labels, label maps and filters make new catalogs and
never touch their inputs; through `noisymss catalog` too."""
from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

import pytest

from noisymss.cli import main
from noisymss.data.catalog import Catalog, CatalogError, Entry
from noisymss.data.catalog_ops import filter_rows, map_labels, merge, split_by_fractions, split_from_list, withhold


def _catalog(root: Path, name: str, singers: int = 6, songs_each: int = 3) -> Catalog:
    """Mixtures with vocal and accompaniment stems, `songs_each` songs per singer (paths need not exist)."""
    entries = []
    for s in range(singers):
        for k in range(songs_each):
            song = f"singer{s}_{k}"
            for role, label in (("mixture", ""), ("stem", "vocals"), ("stem", "accompaniment")):
                rid = f"{song}/{label or 'mix'}"
                entries.append(Entry(rid, song, f"{song}_{label or 'mix'}.wav", role, 10.0 + k, 16000, 1, "train",
                                     (label,) if label else (), None, f"{song}.pv" if role == "mixture" else "",
                                     group=f"singer{s}"))
    cat = Catalog(entries, root)
    cat.save(root / f"{name}.csv")
    return cat


def _digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def test_group_splits_never_divide_a_group_and_follow_the_fractions(tmp_path):
    cat = split_by_fractions(_catalog(tmp_path, "a", singers=20), {"labelled": 0.2, "unlabelled": 0.5, "valid": 0.15,
                                                                     "test": 0.15}, seed=3)
    splits = defaultdict(set)
    for e in cat:
        splits[e.group].add(e.split)
    assert all(len(s) == 1 for s in splits.values())  # a singer is in one split only
    share = {name: sum(e.duration for e in cat if e.split == name and e.role == "mixture") for name in
             ("labelled", "unlabelled", "valid", "test")}
    total = sum(share.values())
    assert abs(share["unlabelled"] / total - 0.5) < 0.1 and all(v > 0 for v in share.values())
    again = split_by_fractions(_catalog(tmp_path, "b", singers=20), {"labelled": 0.2, "unlabelled": 0.5, "valid": 0.15,
                                                                       "test": 0.15}, seed=3)
    assert [e.split for e in again] == [e.split for e in cat]  # same seed, same splits


def test_a_split_list_must_name_every_group(tmp_path):
    cat = _catalog(tmp_path, "a", singers=2)
    listed = split_from_list(cat, {"singer0": "test", "singer1": "train"})
    assert {e.split for e in listed if e.group == "singer0"} == {"test"}
    with pytest.raises(CatalogError, match="1 group\\(s\\) not in the list"):
        split_from_list(cat, {"singer0": "test"})


def test_withheld_labels_keep_their_truth(tmp_path):
    cat = split_by_fractions(_catalog(tmp_path, "a"), {"train": 0.5, "unlabelled": 0.5}, seed=0)
    out = withhold(cat, "unlabelled")
    for before, after in zip(cat, out):
        if before.split == "unlabelled":
            assert after.labels == () and after.true_labels == before.labels
        else:
            assert after == before
    with pytest.raises(CatalogError, match="no rows in split 'nope'"):
        withhold(cat, "nope")


def test_merge_keeps_ids_unique_and_paths_valid(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    a, b = _catalog(tmp_path / "x", "a", singers=1), _catalog(tmp_path / "y", "b", singers=1)
    merged = merge([a, b], ["a", "b"])
    assert len(merged) == len(a) + len(b) and len({e.id for e in merged}) == len(merged)
    merged.save(tmp_path / "m.csv")
    back = Catalog.load(tmp_path / "m.csv")
    assert back.resolve(back["a/singer0_0/vocals"].path) == tmp_path / "x" / "singer0_0_vocals.wav"
    assert back["b/singer0_0/mix"].annotation.endswith("y/singer0_0.pv")


def test_map_renames_drops_and_reports(tmp_path):
    cat, unmapped = map_labels(_catalog(tmp_path, "a", singers=1), {"vocals": "voice", "accompaniment": ""})
    assert {e.labels for e in cat if e.role == "stem"} == {("voice",), ()} and not unmapped
    _, unmapped = map_labels(cat, {"guitar": "other"})
    assert unmapped == {"voice": 3}


def test_filter_keeps_what_is_asked(tmp_path):
    cat = filter_rows(_catalog(tmp_path, "a", singers=1), roles=["stem"], labels=["vocals"])
    assert len(cat) == 3 and all(e.labels == ("vocals",) for e in cat)
    with pytest.raises(CatalogError, match="no row is left"):
        filter_rows(cat, splits=["test"])


def test_the_command_writes_new_catalogs_and_never_its_inputs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _catalog(tmp_path, "a", singers=8)
    before = _digest(tmp_path / "a.csv")
    assert main(["catalog", "split", "a.csv", "--fractions", "labelled=0.25,unlabelled=0.5,valid=0.25", "--seed", "1",
                 "--out", "s.csv"]) == 0
    assert main(["catalog", "withhold", "s.csv", "--split", "unlabelled", "--out", "w.csv"]) == 0
    assert main(["catalog", "merge", "a.csv", "w.csv", "--out", "m.csv"]) == 0
    (tmp_path / "map.csv").write_text("from,to\nvocals,voice\n")
    assert main(["catalog", "map", "w.csv", "--table", "map.csv", "--out", "v.csv"]) == 0
    assert "'accompaniment' on" in capsys.readouterr().out  # labels the table does not name are reported
    assert main(["catalog", "filter", "w.csv", "--split", "valid", "--out", "f.csv"]) == 0
    assert _digest(tmp_path / "a.csv") == before
    w = Catalog.load(tmp_path / "w.csv")
    assert all(e.labels == () for e in w if e.split == "unlabelled")
    assert {e.split for e in Catalog.load(tmp_path / "f.csv")} == {"valid"}
    assert main(["catalog", "withhold", "s.csv", "--split", "unlabelled", "--out", "w.csv"]) == 1  # never overwritten
    assert "exists" in capsys.readouterr().err
