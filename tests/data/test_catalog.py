import json

import pytest

from noisymss.data.catalog import Catalog, CatalogError, Entry


def _catalog(tmp_path) -> Catalog:
    (tmp_path / "audio").mkdir(exist_ok=True)
    entries = [
        Entry("s1/vocals", "s1", str(tmp_path / "audio/v.flac"), "stem", 10.0, 44100, 2, "train", ("vocals",), ("vocals",),
              str(tmp_path / "audio/v.f0.txt")),
        Entry("s1/drums", "s1", str(tmp_path / "audio/d.flac"), "stem", 10.0, 44100, 2, "train", ("drums",), ("drums", "bass")),
        Entry("s1/mix", "s1", str(tmp_path / "audio/m.flac"), "mixture", 10.0, 44100, 2, "train"),
        Entry("s2/x", "s2", "/elsewhere/x.wav", "stem", 3.5, 22050, 1, "test", ("other", "bass"), None, "/elsewhere/x.mat#2"),
    ]
    return Catalog(entries, tmp_path)


def test_round_trip_keeps_every_field_and_makes_paths_relative(tmp_path):
    cat = _catalog(tmp_path)
    path = cat.save(tmp_path / "c.csv")
    loaded = Catalog.load(path)
    assert [e.id for e in loaded] == [e.id for e in cat]
    first = loaded["s1/vocals"]
    assert first.path == "audio/v.flac" and first.annotation == "audio/v.f0.txt"
    assert loaded.resolve(first.path) == tmp_path / "audio/v.flac"
    assert loaded["s2/x"].path == "/elsewhere/x.wav" and loaded["s2/x"].annotation == "/elsewhere/x.mat#2"
    assert loaded["s2/x"].labels == ("other", "bass") and loaded["s2/x"].true_labels is None
    assert loaded["s1/drums"].true_labels == ("drums", "bass")
    assert loaded["s1/mix"].role == "mixture" and loaded["s1/mix"].labels == ()
    assert loaded.classes() == ["vocals", "drums", "bass", "other"]


def test_saving_elsewhere_rebases_relative_paths(tmp_path):
    cat = _catalog(tmp_path)
    cat.save(tmp_path / "c.csv")
    moved = Catalog.load(tmp_path / "c.csv")
    (tmp_path / "sub").mkdir()
    moved.save(tmp_path / "sub" / "c2.csv")
    again = Catalog.load(tmp_path / "sub" / "c2.csv")
    assert again.resolve(again["s1/vocals"].path).resolve() == (tmp_path / "audio/v.flac").resolve()


def test_save_refuses_to_overwrite(tmp_path):
    cat = _catalog(tmp_path)
    cat.save(tmp_path / "c.csv")
    with pytest.raises(CatalogError, match="exists"):
        _catalog(tmp_path).save(tmp_path / "c.csv")


def test_load_reports_every_problem_row(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "id,song,path,role,duration,sample_rate,channels,split,labels,true_labels,annotation\n"
        "a,s,a.wav,stem,1.0,44100,2,train,vocals,,\n"
        "b,s,b.wav,track,1.0,44100,2,train,vocals,,\n"
        "c,s,c.wav,stem,abc,44100,2,train,drums,,\n"
        "a,s,d.wav,stem,1.0,44100,2,train,bass,,\n"
        "e,s,,stem,1.0,0,2,train,bass,,\n"
    )
    with pytest.raises(CatalogError) as err:
        Catalog.load(bad)
    text = str(err.value)
    assert "4 invalid row(s)" in text
    assert "line 3 (id=b): role 'track'" in text
    assert "line 4 (id=c): duration 'abc' is not a number" in text
    assert "line 5 (id=a): duplicate id (first on line 2)" in text
    assert "line 6 (id=e): empty path; sample_rate 0 is not positive" in text


def test_missing_columns_and_missing_file_are_one_line_errors(tmp_path):
    (tmp_path / "c.csv").write_text("id,song,path\nx,y,z\n")
    with pytest.raises(CatalogError, match="missing column"):
        Catalog.load(tmp_path / "c.csv")
    with pytest.raises(CatalogError, match="no such catalog file"):
        Catalog.load(tmp_path / "nope.csv")


def test_label_versions_are_written_beside_and_never_touch_given_labels(tmp_path):
    cat = _catalog(tmp_path)
    path = cat.save(tmp_path / "c.csv")
    before = path.read_bytes()
    new = {"s1/vocals": ("vocals",), "s1/drums": ("drums", "bass"), "s2/x": ("other",)}
    cat.write_labels("refine1", new, {"producer": "test", "threshold": 0.5})
    assert path.read_bytes() == before
    loaded = Catalog.load(path)
    assert loaded.label_versions() == ["given", "refine1"]
    assert loaded.labels("refine1") == new
    assert loaded.labels("given")["s1/drums"] == ("drums",)
    meta = loaded.provenance("refine1")
    assert meta["producer"] == "test" and meta["threshold"] == 0.5 and "created" in meta
    assert sorted(p.name for p in (tmp_path / "c.labels").iterdir()) == ["refine1.csv", "refine1.json"]
    assert loaded.next_version_name("refine") == "refine2"


def test_label_versions_are_never_replaced_and_must_cover_every_stem(tmp_path):
    cat = _catalog(tmp_path)
    cat.save(tmp_path / "c.csv")
    full = {"s1/vocals": ("vocals",), "s1/drums": ("drums",), "s2/x": ("other",)}
    cat.write_labels("v1", full, {})
    with pytest.raises(CatalogError, match="exists"):
        cat.write_labels("v1", full, {})
    with pytest.raises(CatalogError, match="1 stem\\(s\\) without labels"):
        cat.write_labels("v2", {k: v for k, v in full.items() if k != "s2/x"}, {})
    with pytest.raises(CatalogError, match="not stems"):
        cat.write_labels("v3", {**full, "s1/mix": ("vocals",)}, {})
    with pytest.raises(CatalogError, match="reserved or invalid"):
        cat.write_labels("given", full, {})
    with pytest.raises(CatalogError, match="no label version 'nope'"):
        cat.labels("nope")
    assert cat.label_versions() == ["given", "v1"]  # failed writes left nothing behind
    assert json.loads((tmp_path / "c.labels" / "v1.json").read_text())["version"] == "v1"


def test_unsaved_catalog_cannot_hold_versions(tmp_path):
    with pytest.raises(CatalogError, match="save it"):
        _catalog(tmp_path).write_labels("v1", {}, {})
