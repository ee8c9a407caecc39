import csv

import pytest

from noisymss.callbacks.teacher_student import TeacherStudent
from noisymss.experiments import melody

CALLBACKS = "trainer.callbacks"


def _runs(tmp_path, quick=False):
    corpora = {"mix": tmp_path / "mix" / "catalog.csv", "oohs": tmp_path / "oohs" / "catalog.csv"}
    return melody.runs(corpora, tmp_path / "bach10.csv", quick)


@pytest.mark.parametrize("quick", [False, True], ids=["full", "quick"])
def test_runs_share_one_budget_and_differ_only_where_intended(resolve, differing, tmp_path, quick):
    runs = _runs(tmp_path, quick)
    resolved = resolve(runs)
    teacher_student = {n: r for n, r in resolved.items() if n in melody.MODE}
    supervised = {n: r for n, r in resolved.items() if n not in melody.MODE}
    # one budget and model everywhere; supervised runs lack only the teacher (and its loader reloads)
    assert {k for k in differing(resolved) if not k.startswith(CALLBACKS)} == {
        "data.init_args.catalog", "data.init_args.remix", "trainer.reload_dataloaders_every_n_epochs"}
    assert differing(teacher_student) == {"data.init_args.catalog", "data.init_args.remix", f"{CALLBACKS}.0.init_args.mode"}
    assert differing(supervised) == {"data.init_args.catalog"}
    modes = {n: [c.mode for c in cli.trainer.callbacks if isinstance(c, TeacherStudent)] for n, (_, cli) in resolved.items()}
    assert modes == {n: [melody.MODE[n]] if n in melody.MODE else [] for n in melody.NAMES}
    for _, cli in resolved.values():  # the teacher-student schedule spends exactly the budget
        for c in (c for c in cli.trainer.callbacks if isinstance(c, TeacherStudent)):
            if c.every_n_epochs is None:  # derived at fit start: the iterations split max_epochs evenly
                assert cli.trainer.max_epochs % (c.iterations + 1) == 0
            else:
                assert (c.iterations + 1) * c.every_n_epochs == cli.trainer.max_epochs
    catalogs = {n: str(cli.datamodule.catalog_path) for n, (_, cli) in resolved.items()}
    assert catalogs["noisy_student_oohs"] == str(tmp_path / "oohs" / "catalog.csv")
    assert catalogs["noisy_student"] == str(tmp_path / "mix" / "catalog.csv")
    assert resolved["noisy_student_remix"][1].datamodule.remix == 0.5
    assert all([e.name for e in r.evals] == ["validate", "demo", "bach10"] for r in runs)
    assert runs[0].evals[2].overlay["data"]["init_args"]["catalog"] == str(tmp_path / "bach10.csv")


@pytest.mark.slow
def test_quick_experiment_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    args = ["--quick", "--runs", "supervised,noisy_student", "--out", str(tmp_path / "runs"), "--data", str(tmp_path / "data")]
    assert melody.main(args) == 0
    rows = list(csv.DictReader(open(tmp_path / "runs" / "results.csv")))
    assert [(r["run"], r["seed"]) for r in rows] == [("supervised", "0"), ("noisy_student", "0")]
    assert all(0.0 <= float(r["demo:test/OA"]) <= 100.0 for r in rows)
    if melody.DEFAULT_BACH10.is_dir():
        assert all(0.0 <= float(r["bach10:test/OA"]) <= 100.0 for r in rows)
    # teacher, student 1 (from the checkpointed TeacherStudent state), then the final validation
    assert rows[1]["round1:ts/teacher_val_OA"] and rows[1]["round2:ts/teacher_val_OA"] and rows[1]["validate:val/OA"]
    assert not rows[0].get("round1:ts/teacher_val_OA")
    md = (tmp_path / "runs" / "results.md").read_text()
    assert md.count(" → ") >= 2 and "| noisy_student | 1 |" in md
    with pytest.raises(SystemExit):
        melody.main(["--runs", "nope", "--out", str(tmp_path / "runs")])
