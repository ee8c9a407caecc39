"""`noisymss melody` and `noisymss separate` on bad input: a clear answer, the right exit code, nothing
written outside --out, nothing there replaced unless asked, and no result for a file that failed."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cli_harness import assert_refused, run, save_checkpoint, snapshot, tone, write_wav
from noisymss.tasks.melody import MelodyTask
from noisymss.tasks.separator import SeparatorTask


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ckpts")
    return {"melody": save_checkpoint(MelodyTask(width=0.125), folder / "melody.ckpt"),
            "separator": save_checkpoint(SeparatorTask(arch="xumx", sample_rate=22050, segment=1.0), folder / "sep.ckpt")}


@pytest.fixture()
def ws(tmp_path, monkeypatch) -> Path:
    """A workspace with one good song; commands run inside it."""
    monkeypatch.chdir(tmp_path)
    write_wav(tmp_path / "in" / "good.wav", tone())
    return tmp_path


def bad_file(ws: Path, kind: str) -> Path:
    """One bad input of each kind the suite knows."""
    path = ws / "in" / f"{kind}.wav"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "not_audio":
        path.write_text("title,artist\nsong,someone\n")
    elif kind == "truncated_header":
        path.write_bytes((ws / "in" / "good.wav").read_bytes()[:30])
    elif kind == "nan":
        x = tone()
        x[:, 100:200] = np.nan
        write_wav(path, x)
    elif kind == "inf":
        x = tone()
        x[0, 5] = np.inf
        write_wav(path, x)
    elif kind == "zero_frames":
        write_wav(path, np.zeros((2, 0), np.float32))
    return path


VERBS = {"melody": ["--jobs", "1", "--device", "cpu"], "separate": ["--device", "cpu"]}
BAD = {"empty": "not readable audio", "not_audio": "not readable audio", "truncated_header": "not readable audio",
       "nan": "NaN or infinite", "inf": "NaN or infinite", "zero_frames": "no samples"}


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("kind", BAD)
def test_a_bad_file_is_named_and_leaves_no_result_while_good_ones_are_written(verb, kind, ws, ckpts, capsys):
    path = bad_file(ws, kind)
    before = snapshot(ws, skip=(ws / "out",))
    ckpt = ckpts["melody" if verb == "melody" else "separator"]
    res = run(capsys, verb, "in/good.wav", path, "--ckpt", ckpt, "--out", "out", *VERBS[verb])
    assert_refused(res, f"{path.name}", BAD[kind], code=1)
    assert "1 failed" in res.out
    assert snapshot(ws, skip=(ws / "out",)) == before
    written = sorted(p.relative_to(ws / "out").as_posix() for p in (ws / "out").rglob("*"))
    if verb == "melody":
        assert written == ["good.f0.txt"]
    else:  # the good file's stems, and no folder at all for the bad one
        assert written == ["good"] + [f"good/{s}.wav" for s in ("bass", "drums", "other", "vocals")]


@pytest.mark.parametrize("verb", VERBS)
def test_hostile_and_clashing_names_stay_inside_out_and_apart(verb, ws, ckpts, capsys):
    (ws / "P").mkdir()
    names = ["in/...wav", "in/x.wav", "in/x.flac", "in/sub/x.wav"]
    for name in names:
        write_wav(ws / name, tone(0.5)) if name.endswith(".wav") else (ws / name).write_bytes((ws / "in/x.wav").read_bytes())
    before = snapshot(ws, skip=(ws / "P" / "out",))
    ckpt = ckpts["melody" if verb == "melody" else "separator"]
    res = run(capsys, verb, *names, "--ckpt", ckpt, "--out", "P/out", *VERBS[verb])
    assert res.code == 0, res.err[-2000:]
    assert snapshot(ws, skip=(ws / "P" / "out",)) == before  # nothing beside P/out, e.g. in P/ for '...wav'
    files = [p for p in (ws / "P" / "out").rglob("*") if p.is_file()]
    assert len(files) == len(names) * (1 if verb == "melody" else 4)  # four inputs, four results, none shared


@pytest.mark.parametrize("verb", VERBS)
def test_results_already_there_are_kept_unless_overwrite(verb, ws, ckpts, capsys):
    ckpt = ckpts["melody" if verb == "melody" else "separator"]
    args = [verb, "in/good.wav", "--ckpt", ckpt, "--out", "out", *VERBS[verb]]
    assert run(capsys, *args).code == 0
    first = snapshot(ws / "out", decode=True)
    target = next((ws / "out").rglob("*.*"))
    target.write_text("the user's edit")
    res = run(capsys, *args)
    assert_refused(res, "exists", "--overwrite", code=1)
    assert target.read_text() == "the user's edit"
    assert run(capsys, *args, "--overwrite").code == 0
    assert snapshot(ws / "out", decode=True) == first


@pytest.mark.parametrize("verb", VERBS)
def test_the_same_file_twice_is_refused(verb, ws, ckpts, capsys):
    ckpt = ckpts["melody" if verb == "melody" else "separator"]
    res = run(capsys, verb, "in/good.wav", "in/../in/good.wav", "--ckpt", ckpt, "--out", "out", *VERBS[verb])
    assert_refused(res, "given more than once", code=1)
    assert not (ws / "out").exists()


@pytest.mark.parametrize("verb", VERBS)
def test_a_missing_input_is_named_before_any_work(verb, ws, ckpts, capsys):
    ckpt = ckpts["melody" if verb == "melody" else "separator"]
    res = run(capsys, verb, "in/good.wav", "in/nope.wav", "--ckpt", ckpt, "--out", "out", *VERBS[verb])
    assert_refused(res, "in/nope.wav: no such input file", code=1)
    assert not (ws / "out").exists()


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("ckpt, message", [("other", "not a"), ("text", "not a readable Lightning checkpoint"),
                                           ("missing", "checkpoint not found")])
def test_a_wrong_checkpoint_is_refused_before_any_file_is_read(verb, ckpt, message, ws, ckpts, capsys):
    paths = {"other": ckpts["separator" if verb == "melody" else "melody"], "text": ws / "t.ckpt", "missing": ws / "no.ckpt"}
    (ws / "t.ckpt").write_text("model: {}\n")
    res = run(capsys, verb, "in/good.wav", "--ckpt", paths[ckpt], "--out", "out", *VERBS[verb])
    assert_refused(res, message, code=1)
    assert not (ws / "out").exists()


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("device, message", [("cuda", "CUDA device"), ("cuda:7", "CUDA device"), ("tpu", "not a device")])
def test_a_device_this_machine_lacks_is_one_line(verb, device, message, ws, ckpts, capsys):
    if device.startswith("cuda") and torch.cuda.device_count() > int(device.partition(":")[2] or 0):
        pytest.skip("this machine has that CUDA device")
    ckpt = ckpts["melody" if verb == "melody" else "separator"]
    res = run(capsys, verb, "in/good.wav", "--ckpt", ckpt, "--out", "out", "--device", device)
    assert_refused(res, f"--device {device}", message, code=1)
    assert len(res.err.strip().splitlines()) == 1


def test_separate_names_a_channel_count_it_cannot_convert(ws, ckpts, capsys):
    write_wav(ws / "in" / "six.wav", tone(channels=6), rate=96000)
    res = run(capsys, "separate", "in/six.wav", "--ckpt", ckpts["separator"], "--out", "out", "--device", "cpu")
    assert_refused(res, "six.wav: 6 channels", code=1)
    assert not any((ws / "out").rglob("*.wav"))


def test_melody_takes_a_96k_six_channel_file_and_silence(ws, ckpts, capsys):
    write_wav(ws / "in" / "six.wav", tone(channels=6), rate=96000)
    write_wav(ws / "in" / "silent.wav", np.zeros((2, 22050), np.float32))
    res = run(capsys, "melody", "in/six.wav", "in/silent.wav", "--ckpt", ckpts["melody"], "--out", "out", *VERBS["melody"])
    assert res.code == 0, res.err[-2000:]
    assert (ws / "out" / "six.f0.txt").is_file() and (ws / "out" / "silent.f0.txt").is_file()


@pytest.mark.parametrize("argv, message", [
    (["separate", "in/good.wav", "--ckpt", "x", "--out", "o", "--format", "mp3"], "invalid choice: 'mp3'"),
    (["melody", "in/good.wav", "--ckpt", "x", "--out", "o", "--jobs", "two"], "invalid int value: 'two'"),
    (["separate", "in/good.wav", "--out", "o"], "--ckpt"),
    (["separte", "in/good.wav"], "invalid choice: 'separte'"),
])
def test_a_typo_is_the_error_line_and_a_hint_not_the_usage(argv, message, ws, capsys):
    res = run(capsys, *argv)
    assert_refused(res, message, "--help", code=2)
    assert len(res.err.strip().splitlines()) == 2 and "usage:" not in res.err


@pytest.mark.parametrize("verb", VERBS)
def test_what_a_killed_run_was_writing_is_cleaned_not_mistaken_for_a_result(verb, ws, ckpts, capsys):
    folder = ws / "out" / ("" if verb == "melody" else "good")
    folder.mkdir(parents=True)
    (folder / ".good.f0.txt.x1y2.part").write_text("half")  # as atomic_path names its temp files
    ckpt = ckpts["melody" if verb == "melody" else "separator"]
    res = run(capsys, verb, "in/good.wav", "--ckpt", ckpt, "--out", "out", *VERBS[verb])
    assert res.code == 0, res.err[-2000:]
    assert not list((ws / "out").rglob("*.part"))


def test_melody_without_ckpt_uses_the_shipped_model(ws, capsys, monkeypatch):
    from noisymss.melody.released import SHIPPED

    assert SHIPPED.is_file()
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load (pickle) was called"))
    res = run(capsys, "melody", "in/good.wav", "--out", "out", *VERBS["melody"])
    assert res.code == 0, res.err
    rows = np.loadtxt(ws / "out" / "good.f0.txt", ndmin=2)
    assert rows.shape == (101, 2) and np.allclose(np.diff(rows[:, 0]), 0.01)

