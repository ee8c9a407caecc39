"""`noisymss refine` end to end: a classifier trained by `noisymss fit`, then refine in 1 and in 2 DDP processes."""
import csv
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml


def _config(catalog, root, classes=("tone", "noise")):
    return {
        "seed_everything": 0,
        "trainer": {"accelerator": "cpu", "devices": 1, "max_epochs": 3, "logger": False, "enable_progress_bar": False,
                    "num_sanity_val_steps": 0, "default_root_dir": str(root / "run")},
        "model": {"class_path": "noisymss.tasks.classifier.ClassifierTask",
                  "init_args": {"classes": list(classes), "sample_rate": 16000, "lr": 0.003}},
        "data": {"class_path": "noisymss.data.datamodule.MixDataModule",
                 "init_args": {"catalog": str(catalog), "classes": list(classes), "label_version": "true",
                               "recipe": {"segment": 1.0, "sample_rate": 16000, "channels": 1, "class_prob": 0.5},
                               "train_examples": 96, "val_examples": 16, "batch_size": 16}},
    }


def _noisymss(*args, cwd):
    env = dict(os.environ, WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "noisymss", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def trained(timbres, tmp_path_factory):
    """A classifier checkpoint trained on the timbres corpus (clean labels), and its config."""
    root = tmp_path_factory.mktemp("refine_cli")
    shutil.copytree(timbres.parent, root / "data")
    config = root / "classifier.yaml"
    config.write_text(yaml.safe_dump(_config(root / "data" / "catalog.csv", root)))
    res = _noisymss("fit", "--config", str(config), "--trainer.keep_epochs", "true", cwd=root)
    assert res.returncode == 0, res.stderr[-3000:]
    return root, config, root / "run" / "checkpoints" / "last.ckpt"


def _labels(path):
    return {r["id"]: r["labels"] for r in csv.DictReader(open(path))}


def test_refine_writes_a_version_and_a_report_and_two_ddp_processes_agree(trained):
    root, config, ckpt = trained
    res = _noisymss("refine", "--config", str(config), "--ckpt_path", str(ckpt), "--version", "one", cwd=root)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "wrote label version 'one'" in res.stdout and "refined_exact_match" in res.stdout
    assert "stems from given -> refined labels" in res.stdout and (root / "data" / "catalog.labels" / "one.flips.csv").is_file()
    versions = root / "data" / "catalog.labels"
    one = _labels(versions / "one.csv")
    assert one["s1/noise"] == "noise"  # the mislabelled stem is fixed by a classifier trained on clean labels
    report = {r["class"]: r for r in csv.DictReader(open(versions / "one.report.csv"))}
    assert float(report["all"]["refined_exact_match"]) > float(report["all"]["given_exact_match"])
    res = _noisymss("refine", "--config", str(config), "--ckpt_path", str(ckpt), "--version", "two",
                    "--trainer.devices", "2", "--trainer.strategy", "ddp", cwd=root)
    assert res.returncode == 0, res.stderr[-3000:]
    assert _labels(versions / "two.csv") == one
    # every stem's probabilities were scored once, in one of the two processes, equal to the 1-process ones
    import json

    scores = lambda v: {json.loads(p.read_text())["id"]: json.loads(p.read_text())["score"]  # noqa: E731
                        for p in (versions / f".refine-{v}").glob("*.json") if p.name != "settings.json"}
    assert scores("two") == scores("one") and len(scores("one")) == 12


def test_refine_takes_a_checkpoint_saved_from_python(trained, tmp_path):
    """A checkpoint from Trainer.save_checkpoint (no '_class_path' in its hyper-parameters) works with the CLI."""
    import lightning as L

    from noisymss.tasks.classifier import ClassifierTask

    root, config, _ = trained
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    trainer.strategy.connect(ClassifierTask(classes=["tone", "noise"], sample_rate=16000))
    trainer.save_checkpoint(tmp_path / "py.ckpt")
    res = _noisymss("refine", "--config", str(config), "--ckpt_path", str(tmp_path / "py.ckpt"), "--version", "py", cwd=root)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (root / "data" / "catalog.labels" / "py.csv").is_file()


def test_refine_logs_changed_stems_with_audio_to_offline_wandb(trained, tmp_path, monkeypatch):
    """A real W&B run in offline mode gets the table of changed stems, each with its audio."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    from noisymss.data.datamodule import MixDataModule
    from noisymss.data.mixer import MixRecipe
    from noisymss.loggers import AutoWandbLogger
    from noisymss.tasks.classifier import ClassifierTask
    from noisymss.trainer import Trainer

    root, _, ckpt = trained
    shutil.copytree(root / "data", tmp_path / "data", ignore=shutil.ignore_patterns("catalog.labels"))
    dm = MixDataModule(str(tmp_path / "data" / "catalog.csv"), classes=["tone", "noise"],
                       recipe=MixRecipe(segment=1.0, sample_rate=16000, channels=1))
    logger = AutoWandbLogger(save_dir=str(tmp_path / "runs"), name="refine")
    rows = Trainer(accelerator="cpu", logger=logger, enable_progress_bar=False).refine(
        ClassifierTask(classes=["tone", "noise"], sample_rate=16000), dm, ckpt_path=str(ckpt), version="w")
    assert rows[-1]["changed_stems"] >= 1
    run = next((tmp_path / "runs" / "wandb").glob("offline-run-*"))
    assert list(run.glob("files/media/table/refine/changed_stems*.table.json"))
    assert len(list(run.glob("files/media/audio/**/*.wav"))) == min(rows[-1]["changed_stems"], 16)


@pytest.mark.slow  # five refines in subprocesses (~1 min); test_refine.py checks the ensemble in-process
def test_refine_by_several_epochs_averages_their_probabilities(trained):
    root, config, _ = trained
    epochs = sorted((root / "run" / "checkpoints").glob("epoch=*.ckpt"))
    assert len(epochs) == 3  # keep_epochs kept every epoch's checkpoint
    versions = root / "data" / "catalog.labels"

    def probs(version):
        with open(versions / f"{version}.probs.csv", newline="") as f:
            return {r["id"]: [float(r["tone"]), float(r["noise"])] for r in csv.DictReader(f)}

    for i, ckpt in enumerate(epochs[1:]):
        res = _noisymss("refine", "--config", str(config), "--ckpt_path", str(ckpt), "--version", f"single{i}", cwd=root)
        assert res.returncode == 0, res.stderr[-3000:]
    pattern = str(root / "run" / "checkpoints" / "epoch=[12]-*.ckpt")
    res = _noisymss("refine", "--config", str(config), "--ckpt_path", pattern, "--version", "late", cwd=root)
    assert res.returncode == 0, res.stderr[-3000:]
    listed = json.dumps([str(p) for p in epochs[1:]])  # the same two as a list
    res = _noisymss("refine", "--config", str(config), "--ckpt_path", listed, "--version", "late_list", cwd=root)
    assert res.returncode == 0, res.stderr[-3000:]
    assert probs("late_list") == probs("late")
    late, a, b = probs("late"), probs("single0"), probs("single1")
    for key in late:
        assert late[key] == pytest.approx([(x + y) / 2 for x, y in zip(a[key], b[key])], abs=2e-4)
    assert json.loads((versions / "late.json").read_text())["checkpoint"] == " + ".join(str(p) for p in epochs[1:])
    res = _noisymss("refine", "--config", str(config), "--ckpt_path", str(root / "run" / "nothing-*.ckpt"), "--version", "x",
                    cwd=root)
    assert res.returncode != 0 and "no checkpoint there" in res.stderr


def test_refine_with_a_separator_checkpoint_filters(trained, tmp_path):
    """`refine` given a separator: CCOM's filter. The baseline separator with its gains set so that
    source 0 is 40 dB over source 1 puts every stem under 'tone'; classes are checked against its sources."""
    import lightning as L
    import torch

    from noisymss.data.datamodule import MixDataModule
    from noisymss.data.mixer import MixRecipe
    from noisymss.tasks.separator import SeparatorTask
    from noisymss.trainer import Trainer

    root, _, _ = trained
    shutil.copytree(root / "data", tmp_path / "data", ignore=shutil.ignore_patterns("catalog.labels"))

    def task(sources):
        model = SeparatorTask(sources=sources, arch="mixture", sample_rate=16000, channels=1, segment=1.0)
        with torch.no_grad():
            model.model.gain.copy_(torch.tensor([1.0, 0.01]))
        return model

    def checkpoint(model, path):
        trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, max_epochs=0)
        trainer.strategy.connect(model)
        trainer.save_checkpoint(path)
        return str(path)

    dm = lambda: MixDataModule(str(tmp_path / "data" / "catalog.csv"), classes=["tone", "noise"],  # noqa: E731
                               recipe=MixRecipe(segment=1.0, sample_rate=16000, channels=1))
    ckpt = checkpoint(task(["tone", "noise"]), tmp_path / "sep.ckpt")
    rows = Trainer(accelerator="cpu", logger=False, enable_progress_bar=False).refine(task(["tone", "noise"]), dm(),
                                                                                     ckpt_path=ckpt, version="ccom")
    labels = _labels(tmp_path / "data" / "catalog.labels" / "ccom.csv")
    assert set(labels.values()) == {"tone"} and rows[-1]["not_scored"] == 0
    with open(tmp_path / "data" / "catalog.labels" / "ccom.probs.csv", newline="") as f:
        levels = [(float(r["tone"]), float(r["noise"])) for r in csv.DictReader(f)]
    assert all(t - n == pytest.approx(40.0, abs=0.01) for t, n in levels)
    other = checkpoint(task(["noise", "tone"]), tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="its sources \\['noise', 'tone'\\] differ"):
        Trainer(accelerator="cpu", logger=False).refine(task(["tone", "noise"]), dm(), ckpt_path=other, version="x")


def test_refine_calibrated_on_the_validation_split(trained):
    root, config, ckpt = trained
    base = ["refine", "--config", str(config), "--ckpt_path", str(ckpt)]
    res = _noisymss(*base, "--version", "cal", "--calibrate", "valid", "--split", "train", cwd=root)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "thresholds chosen on split 'valid': {'tone': " in res.stdout
    record = json.loads((root / "data" / "catalog.labels" / "cal.json").read_text())
    assert set(record["thresholds"]) == {"tone", "noise"} and record["settings"]["calibrate"] == "valid"
    given, cal = _labels(root / "data" / "catalog.csv"), _labels(root / "data" / "catalog.labels" / "cal.csv")
    valid = {r["id"] for r in csv.DictReader(open(root / "data" / "catalog.csv")) if r["split"] == "valid"}
    assert valid and all(cal[k] == given[k] for k in valid)  # the stems that chose the thresholds keep their labels
    for args, message in [(["--calibrate", "nope"], "--calibrate nope: no stems in that split"),
                          (["--calibrate", "train", "--split", "train"], "other stems than those relabelled")]:
        res = _noisymss(*base, "--version", "bad", *args, cwd=root)
        assert res.returncode != 0 and message in res.stderr and "Traceback" not in res.stderr, res.stderr[-2000:]
