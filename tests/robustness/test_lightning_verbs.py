"""fit, validate, test, refine and check on mistakes: refused before any work with a clear line, the
run folder never overwritten, and degenerate results never written. Real Trainers, in this process."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from cli_harness import assert_refused, run, save_checkpoint, snapshot, tone, write_wav
from noisymss.cli import main
from noisymss.tasks.classifier import ClassifierTask
from noisymss.tasks.melody import MelodyTask

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _config(catalog: Path, classes=("tone", "noise")) -> dict:
    return {
        "seed_everything": 0,
        "trainer": {"accelerator": "cpu", "devices": 1, "max_epochs": 1, "logger": False, "enable_progress_bar": False,
                    "enable_model_summary": False, "limit_train_batches": 2, "limit_val_batches": 1,
                    "default_root_dir": "run"},
        "model": {"class_path": "noisymss.tasks.classifier.ClassifierTask",
                  "init_args": {"classes": list(classes), "sample_rate": 16000, "size": "tiny"}},
        "data": {"class_path": "noisymss.data.datamodule.MixDataModule",
                 "init_args": {"catalog": str(catalog), "classes": list(classes), "splits": ["train", "valid", "valid"],
                               "recipe": {"segment": 1.0, "sample_rate": 16000, "channels": 1, "class_prob": 0.5},
                               "train_examples": 8, "val_examples": 4, "test_examples": 4, "batch_size": 4}},
    }


@pytest.fixture()
def ws(timbres, tmp_path, monkeypatch) -> Path:
    """A workspace holding a copy of the timbres catalog (data/) and its config (c.yaml)."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(timbres.parent, tmp_path / "data")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(_config(tmp_path / "data" / "catalog.csv")))
    return tmp_path


def _rows(ws: Path) -> list[dict]:
    with open(ws / "data" / "catalog.csv", newline="") as f:
        return list(csv.DictReader(f))


def _write_rows(ws: Path, rows: list[dict]) -> None:
    with open(ws / "data" / "catalog.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_a_run_folder_is_resumed_never_overwritten(ws, capsys):
    res = run(capsys, "fit", "--config", "c.yaml", "--ckpt_path", "last")
    assert_refused(res, "--ckpt_path last: no last.ckpt in", code=1)
    assert run(capsys, "fit", "--config", "c.yaml").code == 0
    assert (ws / "run" / "checkpoints" / "last.ckpt").is_file()
    first = snapshot(ws / "run")
    res = run(capsys, "fit", "--config", "c.yaml")  # the same folder again, by mistake
    assert_refused(res, "holds the checkpoints of an earlier run", "--ckpt_path last", code=1)
    assert snapshot(ws / "run") == first
    # resuming for a second epoch keeps the first config and adds its own
    res = run(capsys, "fit", "--config", "c.yaml", "--ckpt_path", "last", "--trainer.max_epochs", "2")
    assert res.code == 0, res.err[-2000:]
    assert snapshot(ws / "run")["config.yaml"] == first["config.yaml"]
    assert "max_epochs: 2" in (ws / "run" / "config-2.yaml").read_text()
    res = run(capsys, "test", "--config", "c.yaml", "--ckpt_path", "last")
    assert res.code == 0, res.err[-2000:]
    assert (ws / "run" / "results" / "test-last.json").is_file() and (ws / "run" / "config-3.yaml").is_file()


@pytest.mark.parametrize("verb", ["test", "validate", "predict"])
def test_scoring_without_a_checkpoint_is_refused(verb, ws, capsys):
    res = run(capsys, verb, "--config", "c.yaml", *(["--files", '["x.wav"]'] if verb == "predict" else []))
    assert_refused(res, f"{verb} needs --ckpt_path", code=1)
    assert not (ws / "run").exists()


def test_a_baseline_is_scored_untrained_only_when_asked(ws, capsys):
    res = run(capsys, "test", "--config", "c.yaml", "--ckpt_path", "untrained")
    assert res.code == 0, res.err[-2000:]
    assert json.loads((ws / "run" / "results" / "test-untrained.json").read_text())["checkpoint"] is None
    res = run(capsys, "fit", "--config", "c.yaml", "--ckpt_path", "untrained")
    assert_refused(res, "--ckpt_path untrained: only validate and test take it", code=1)


def test_a_checkpoint_of_another_task_or_size_is_refused(ws, capsys):
    save_checkpoint(MelodyTask(width=0.125), ws / "melody.ckpt")
    res = run(capsys, "test", "--config", "c.yaml", "--ckpt_path", "melody.ckpt")
    assert_refused(res, "melody.ckpt: its weights do not fit the config's ClassifierTask", code=1)
    assert run(capsys, "fit", "--config", "c.yaml").code == 0
    ckpt = ws / "run" / "checkpoints" / "last.ckpt"
    res = run(capsys, "test", "--config", CONFIGS / "supervised.yaml", "--ckpt_path", ckpt,
              "--trainer.default_root_dir", "other")
    assert_refused(res, "a checkpoint of ClassifierTask, but the config's model is MelodyTask", code=1)
    bigger = save_checkpoint(ClassifierTask(classes=["tone", "noise"], sample_rate=16000, size="small"), ws / "small.ckpt")
    res = run(capsys, "test", "--config", "c.yaml", "--ckpt_path", bigger, "--trainer.default_root_dir", "other")
    assert_refused(res, "small.ckpt: its weights do not fit", code=1)


def test_a_mistyped_catalog_never_renders_the_demo_corpus(ws, capsys):
    res = run(capsys, "check", "--config", CONFIGS / "classifier.yaml", "--data.init_args.catalog", "data/clasifier_demo/catalog.csv")
    assert_refused(res, "data/clasifier_demo/catalog.csv: no such catalog", "demo corpus renders only", code=1)
    assert not (ws / "data" / "clasifier_demo").exists()


def test_check_passes_a_good_config_and_fit_then_starts(ws, capsys):
    res = run(capsys, "check", "--config", "c.yaml")
    assert res.code == 0 and "ok: 12 row(s)" in res.out, res.err[-2000:]


def _break(ws: Path, kind: str) -> str:
    """Damages the catalog copy one way; returns what the check must say."""
    rows = _rows(ws)
    if kind == "deleted":
        (ws / "data" / "s2.wav").unlink()
        return "s2.wav: missing"
    if kind == "six_channels":  # (a mono task takes any channel count: its mean)
        write_wav(ws / "data" / "s2.wav", tone(2.0, 96000, channels=6), rate=96000)
        config = yaml.safe_load((ws / "c.yaml").read_text())
        config["data"]["init_args"]["recipe"]["channels"] = 2
        (ws / "c.yaml").write_text(yaml.safe_dump(config))
        return "s2.wav: 6 channels; the task takes 2"
    if kind == "not_audio":
        (ws / "data" / "s2.wav").write_text("oops")
        return "s2.wav: not readable audio"
    if kind == "zero_frames":
        write_wav(ws / "data" / "s2.wav", np.zeros((1, 0), np.float32), rate=16000)
        return "s2.wav: no samples"
    if kind == "class_without_stems":
        for r in rows:
            if r["split"] == "train" and r["labels"] == "noise":
                r["labels"] = "Noise"
        _write_rows(ws, rows)
        return "split 'train': no usable stem labelled 'noise'"
    if kind == "no_truth":  # a config that scores against the truth, on a dataset that has none
        for r in rows:
            r["true_labels"] = ""
        _write_rows(ws, rows)
        config = yaml.safe_load((ws / "c.yaml").read_text())
        config["data"]["init_args"]["eval_label_version"] = "true"
        (ws / "c.yaml").write_text(yaml.safe_dump(config))
        return "set data.init_args.eval_label_version null"
    if kind == "empty_split":
        for r in rows:
            r["split"] = "train"
        _write_rows(ws, rows)
        return "no stems in split 'valid'"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["deleted", "six_channels", "not_audio", "zero_frames", "class_without_stems", "empty_split",
                                  "no_truth"])
def test_check_and_fit_name_every_problem_before_any_work(kind, ws, capsys):
    message = _break(ws, kind)
    res = run(capsys, "check", "--config", "c.yaml")
    assert_refused(res, message, code=1)
    res = run(capsys, "fit", "--config", "c.yaml")
    assert_refused(res, message, "before any work", code=1)
    assert not (ws / "run" / "checkpoints").exists()


def test_bad_rows_can_be_left_out_with_a_count(ws, capsys):
    _break(ws, "deleted")
    res = run(capsys, "fit", "--config", "c.yaml", "--data.init_args.skip_bad_rows", "true")
    assert res.code == 0, res.err[-2000:]
    assert "left out 1 bad row(s) of 12" in res.out and "s2.wav: missing" in res.out


def test_labels_outside_the_classes_are_reported(ws, capsys):
    rows = _rows(ws)
    rows[0]["labels"] = "Vocals"
    _write_rows(ws, rows)
    res = run(capsys, "check", "--config", "c.yaml")
    assert res.code == 0, res.err[-2000:]
    assert "'Vocals' on 1 stem(s)" in res.out and "1 stem(s) have no other label and are never drawn" in res.out


@pytest.fixture(scope="module")
def classifier(timbres, tmp_path_factory) -> Path:
    """A classifier trained by `noisymss fit` on the timbres (once for the module)."""
    root = tmp_path_factory.mktemp("classifier")
    (root / "c.yaml").write_text(yaml.safe_dump(_config(timbres) | {"trainer": _config(timbres)["trainer"] | {
        "default_root_dir": str(root / "run")}}))
    assert main(["fit", "--config", str(root / "c.yaml")]) == 0
    return root / "run" / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize("args, message", [
    (["--threshold", "1.5"], "--threshold 1.5: a probability threshold must lie strictly between 0 and 1"),
    (["--threshold", "0"], "strictly between 0 and 1"),
    (["--threshold", '{"tone": 0.5, "tones": 0.5}'], "unknown class(es) ['tones']"),
    (["--split", "tarin"], "--split tarin: no stems in that split"),
    (["--version", "../../escaped"], "label version name '../../escaped' is reserved or invalid"),
    (["--version", "given"], "reserved or invalid"),
    (["--data.init_args.classes", "[noise, tone]"], "differ from the catalog's ['noise', 'tone']"),
])
def test_refine_refuses_impossible_versions_before_any_work(args, message, ws, classifier, capsys):
    before = snapshot(ws, skip=(ws / "run",))
    res = run(capsys, "refine", "--config", "c.yaml", "--ckpt_path", classifier, *args)
    assert_refused(res, message, code=1)
    assert snapshot(ws, skip=(ws / "run",)) == before  # refused before a stem was scored: not even a score folder


def test_refine_refuses_to_write_a_version_without_labels(ws, capsys):
    task = ClassifierTask(classes=["tone", "noise"], sample_rate=16000, size="tiny")
    last = [m for m in task.model.modules() if isinstance(m, torch.nn.Linear)][-1]
    torch.nn.init.constant_(last.bias, -30.0)  # every probability ~0: every stem would lose every label
    ckpt = save_checkpoint(task, ws / "mute.ckpt")
    res = run(capsys, "refine", "--config", "c.yaml", "--ckpt_path", ckpt, "--version", "mute")
    assert_refused(res, "every scored stem (12) lost every label", "no label version written", code=1)
    assert "mute" not in [p.stem for p in (ws / "data" / "catalog.labels").glob("*.csv")]


def test_refine_never_replaces_a_version(ws, classifier, capsys):
    assert run(capsys, "refine", "--config", "c.yaml", "--ckpt_path", classifier, "--version", "v1").code == 0
    version = (ws / "data" / "catalog.labels" / "v1.csv").read_bytes()
    res = run(capsys, "refine", "--config", "c.yaml", "--ckpt_path", classifier, "--version", "v1", "--threshold", "0.3")
    assert_refused(res, "label version 'v1' exists", code=1)
    assert (ws / "data" / "catalog.labels" / "v1.csv").read_bytes() == version


@pytest.mark.parametrize("args, message, code", [
    (["--trainer.max_epocs", "3"], "max_epocs", 2),
    (["--trainer.max_epoch", "3"], "max_epoch", 2),  # no abbreviations: a prefix is a typo too
    (["--config", "nope.yaml"], "nope.yaml", 2),
    (["--data.init_args.batch_size", "many"], "batch_size", 2),
])
def test_config_mistakes_are_short(args, message, code, ws, capsys):
    res = run(capsys, "fit", "--config", "c.yaml", *args)
    assert_refused(res, message, "--help", code=code)
    assert "usage:" not in res.err and len(res.err.strip().splitlines()) <= 6
    assert not (ws / "run").exists()


def test_scoring_with_the_classes_in_another_order_is_refused(ws, classifier, capsys):
    res = run(capsys, "test", "--config", "c.yaml", "--ckpt_path", classifier, "--data.init_args.classes", "[noise, tone]")
    assert_refused(res, "trained for classes ['tone', 'noise'], but the config's model has ['noise', 'tone']", code=1)
    assert not (ws / "run" / "results").exists()


def test_predict_keeps_results_already_there_unless_overwrite(ws, capsys):
    ckpt = save_checkpoint(MelodyTask(width=0.125), ws / "m.ckpt")
    write_wav(ws / "in" / "a.wav", tone(1.0, 8000, channels=1), rate=8000)
    args = ["predict", "--config", CONFIGS / "supervised.yaml", "--ckpt_path", ckpt, "--trainer.logger", "false",
            "--trainer.default_root_dir", "run", "--files", '["in/a.wav"]', "--out", "out"]
    missing = [a if a != '["in/a.wav"]' else '["in/a.wav", "in/nope.wav"]' for a in args]
    assert_refused(run(capsys, *missing), "in/nope.wav: no such input file", code=1)
    assert not (ws / "out").exists()
    assert run(capsys, *args).code == 0
    (ws / "out" / "a.f0.txt").write_text("the user's edit")
    assert_refused(run(capsys, *args), "a.f0.txt: exists", code=1)
    assert (ws / "out" / "a.f0.txt").read_text() == "the user's edit"
    assert run(capsys, *args, "--overwrite", "true").code == 0
    assert (ws / "out" / "a.f0.txt").read_text() != "the user's edit"
