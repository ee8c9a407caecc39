import csv
from pathlib import Path

import pytest

from noisymss.callbacks.teacher_student import TeacherStudent
from noisymss.experiments import melody_real

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
CALLBACKS = "trainer.callbacks.0.init_args"


def test_runs_share_one_budget_and_differ_only_where_intended(resolve, differing, tmp_path):
    pretrained = tmp_path / "pretrain-seed0" / "checkpoints" / "best.ckpt"
    runs = melody_real.runs(tmp_path / "catalog.csv", tmp_path / "bach10.csv", quick=False, pretrained=pretrained)
    for run in runs:  # every run starts from the one pretrained model, at its pitch range
        assert run.overlay["model"]["init_args"] == {"pitch_range": [36.0, 84.0], "pretrained": str(pretrained)}
    runs = [type(r)(r.name, r.config, {**r.overlay, "model": {"init_args": {"pitch_range": [36.0, 84.0]}}}, r.args, r.evals)
            for r in runs]  # (resolved without the file, which a test does not train)
    resolved = resolve(runs)
    ts = {n: r for n, r in resolved.items() if n != "supervised"}
    # one model, data and budget (epochs x patches) everywhere; the supervised run has no teacher
    assert {k for k in differing(resolved) if not k.startswith("trainer.callbacks")} == {
        "trainer.reload_dataloaders_every_n_epochs", "data.init_args.unlabelled_songs"}
    assert differing(ts) == {f"{CALLBACKS}.mode", f"{CALLBACKS}.iterations", f"{CALLBACKS}.pretrain_epochs",
                             f"{CALLBACKS}.min_voiced", "data.init_args.unlabelled_songs"}
    for name, (_, cli) in resolved.items():
        assert cli.trainer.max_epochs == 12 and cli.datamodule.train_examples == 4096
        assert str(cli.datamodule.catalog_path) == str(tmp_path / "catalog.csv")
        callbacks = [c for c in cli.trainer.callbacks if isinstance(c, TeacherStudent)]
        assert len(callbacks) == (name != "supervised")
        for c in callbacks:  # the iterations split the same 12 epochs
            assert 12 % (c.iterations + 1) == 0
    iterations = {n: c.iterations for n, (_, cli) in ts.items() for c in cli.trainer.callbacks if isinstance(c, TeacherStudent)}
    assert iterations["noisy_student_k1"] == 1 and iterations["noisy_student_k3"] == 3 and iterations["noisy_student"] == 2
    assert all(e.checkpoint == "best" for r in runs for e in r.evals)  # chosen on the validation singers
    pre = resolve([melody_real.pretraining(tmp_path / "catalog.csv", quick=False)])["pretrain"][1]
    assert pre.datamodule.splits["labelled"] == "synth" and pre.datamodule.splits["unlabelled"] is None
    assert list(pre.model.hparams.pitch_range) == [36.0, 84.0] and pre.model.hparams.width == 0.125


@pytest.mark.slow  # about a minute: two runs' fits and scores in subprocesses, and MIR-1K indexed
@pytest.mark.skipif(not (SHARED / "mir1k").is_dir(), reason="needs the shared MIR-1K folder")
def test_quick_experiment_on_a_few_mir1k_clips(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    args = ["--quick", "--runs", "supervised,noisy_student", "--out", str(tmp_path / "runs"),
            "--data", str(tmp_path / "data" / "melody_real"), "--shared", str(SHARED)]
    assert melody_real.main(args) == 0
    rows = list(csv.DictReader(open(tmp_path / "runs" / "results.csv")))
    assert [(r["run"], r["seed"]) for r in rows] == [("supervised", "0"), ("noisy_student", "0")]
    assert all(0.0 <= float(r["test:test/OA"]) <= 100.0 and r["checkpoint"] for r in rows)
    assert rows[1]["round1:ts/teacher_val_OA"] and rows[1]["round2:ts/teacher_val_OA"]
    assert (tmp_path / "runs" / "pretrain-seed0" / "checkpoints" / "best.ckpt").is_file()
    config = (tmp_path / "runs" / "noisy_student-seed0" / "overlay.yaml").read_text()
    assert "pretrain-seed0/checkpoints/best.ckpt" in config
    md = (tmp_path / "runs" / "results.md").read_text()
    assert "| noisy_student | 1 |" in md and "noisy_student − supervised" in md
