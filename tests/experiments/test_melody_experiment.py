import csv

import pytest

from noisymss.experiments.melody import RUNS, main, run_config


def test_run_configs_change_only_mode_corpus_and_folders(tmp_path):
    corpora = {"mix": tmp_path / "mix", "oohs": tmp_path / "oohs"}
    configs = {name: run_config(name, tmp_path, corpora, quick=False) for name in RUNS}
    budgets = {(c["trainer"]["max_epochs"], c["data"]["init_args"]["train_examples"], c["model"]["init_args"]["width"])
               for c in configs.values()}
    assert len(budgets) == 1  # the same budget and model for every run
    modes = {name: [cb["init_args"]["mode"] for cb in c["trainer"].get("callbacks") or [] if cb["class_path"].endswith("TeacherStudent")]
             for name, c in configs.items()}
    assert modes["supervised"] == [] and modes["noisy_student"] == ["noisy_student"] and modes["basic"] == ["basic"]
    assert configs["noisy_student_oohs"]["data"]["init_args"]["catalog"] == str(tmp_path / "oohs" / "catalog.csv")
    assert all(c["trainer"]["default_root_dir"] == str(tmp_path / name) for name, c in configs.items())


@pytest.mark.slow
def test_quick_experiment_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert main(["--quick", "--runs", "supervised,noisy_student", "--out", str(tmp_path / "runs"),
                 "--data", str(tmp_path / "data")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "runs" / "results.csv")))
    assert [r["run"] for r in rows] == ["supervised", "noisy_student"]
    assert all(0.0 <= float(r["demo_OA"]) <= 100.0 for r in rows)
    assert len(rows[1]["val_oa_per_iteration"].split()) == 3  # teacher, student 1, student 2
    with pytest.raises(SystemExit):
        main(["--runs", "nope"])
