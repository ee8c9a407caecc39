"""`synth`, `index`, `info` and `preview` on bad input and mistakes: one clear line, the right exit
code, and nothing outside the output folder changed."""
from __future__ import annotations

from pathlib import Path

import pytest

from cli_harness import assert_refused, run, snapshot, tone, write_wav


@pytest.fixture()
def ws(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("the user's file")
    return tmp_path


@pytest.mark.parametrize("args, message", [
    (["--splits", "train=0.8,valid"], "--splits train=0.8,valid: give name=fraction pairs"),
    (["--splits", "train=0.8,valid=-1"], "positive fraction"),
    (["--songs", "0"], "--songs and --seconds must be positive"),
    (["--seconds", "-3"], "--songs and --seconds must be positive"),
    (["--label-noise", "1.5"], "--label-noise 1.5"),
    (["--voice", "choir"], "invalid choice: 'choir'"),
])
def test_synth_refuses_impossible_settings_before_writing(args, message, ws, capsys):
    before = snapshot(ws)
    res = run(capsys, "synth", "--out", "corpus", *args)
    assert_refused(res, message)
    assert snapshot(ws) == before and not (ws / "corpus").exists()


@pytest.mark.parametrize("out, message", [("notes.txt", "is a file"), ("full", "not empty and is not a demo corpus")])
def test_synth_never_writes_into_a_users_file_or_folder(out, message, ws, capsys):
    (ws / "full").mkdir()
    (ws / "full" / "mine.wav").write_text("x")
    before = snapshot(ws)
    res = run(capsys, "synth", "--out", out, "--songs", "1", "--seconds", "1")
    assert_refused(res, message, code=1)
    assert snapshot(ws) == before


def _dataset(ws: Path) -> Path:
    root = ws / "dataset"
    for song in ("a", "b"):
        for stem in ("vocals", "drums"):
            write_wav(root / song / f"{stem}.wav", tone(0.5))
    (root / "b" / "drums.wav").write_bytes(b"RIFF broken")
    return root


def test_index_names_every_broken_file_and_keeps_the_rest(ws, capsys):
    _dataset(ws)
    res = run(capsys, "index", "dataset", "--format", "folder", "--out", "cat.csv")
    assert res.code == 0, res.err
    assert "b/drums.wav" in res.err and "1 file(s) skipped" in res.out
    assert (ws / "cat.csv").is_file()


@pytest.mark.parametrize("args, message, code", [
    (["nope", "--format", "folder", "--out", "cat.csv"], "not a folder", 1),
    (["dataset", "--format", "folders", "--out", "cat.csv"], "invalid choice: 'folders'", 2),
    (["dataset", "--format", "folder", "--out", "notes.txt"], "exists; choose another --out", 1),
])
def test_index_mistakes(args, message, code, ws, capsys):
    _dataset(ws)
    before = snapshot(ws)
    res = run(capsys, "index", *args)
    assert_refused(res, message, code=code)
    assert snapshot(ws) == before


@pytest.mark.parametrize("content, message", [
    (None, "no such catalog file"),
    ("id,path\nx,a.wav\n", "missing"),
    ("", "missing"),
])
def test_info_names_a_missing_or_malformed_catalog(content, message, ws, capsys):
    if content is not None:
        (ws / "cat.csv").write_text(content)
    res = run(capsys, "info", "cat.csv")
    assert_refused(res, "cat.csv", message, code=1)


def test_preview_never_overwrites_files_in_audio_out(ws, demo_corpus, capsys):
    (ws / "listen").mkdir()
    (ws / "listen" / "mixture_0.wav").write_text("the user's file")
    res = run(capsys, "preview", demo_corpus / "catalog.csv", "--batches", "1", "--batch-size", "2", "--audio-out", "listen")
    assert_refused(res, "mixture_0.wav: exists", code=1)
    assert (ws / "listen" / "mixture_0.wav").read_text() == "the user's file"


def test_no_verb_and_an_unknown_option_are_short(ws, capsys):
    res = run(capsys, "info", "cat.csv", "--verbose")
    assert_refused(res, "unrecognized arguments: --verbose", code=2)
    assert "usage:" not in res.err
