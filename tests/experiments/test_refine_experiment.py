import csv

import pytest

from noisymss.experiments.refine import CHAIN, CLEAN, ROUNDS, main, run_config


def test_run_configs_share_one_budget_and_differ_in_labels(tmp_path):
    catalog = tmp_path / "corpus" / "catalog.csv"
    configs = {n: run_config(n, tmp_path, catalog, epochs=12, quick=False) for n in [*CHAIN, *CLEAN, "in_fit"]}
    budgets = {(c["trainer"]["max_epochs"], c["data"]["init_args"]["train_examples"], c["model"]["init_args"]["size"],
                c["seed_everything"]) for c in configs.values()}
    assert len(budgets) == 1
    trained_on = {n: c["data"]["init_args"]["label_version"] for n, c in configs.items()}
    assert trained_on == {"noisy": "given", "round1": "round1", "round2": "round2", "clean": "true", "in_fit": "given"}
    assert all(c["data"]["init_args"]["eval_label_version"] == "true" for c in configs.values())
    refine = [cb["init_args"] for cb in configs["in_fit"]["trainer"]["callbacks"] if cb["class_path"].endswith("SelfRefine")]
    assert len(refine) == 1 and refine[0]["rounds"] == ROUNDS and refine[0]["every_n_epochs"] == 4
    assert all(c["data"]["init_args"]["catalog"] == str(catalog) for c in configs.values())


@pytest.mark.slow
def test_quick_experiment_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert main(["--quick", "--out", str(tmp_path / "runs"), "--data", str(tmp_path / "data")]) == 0
    rows = {r["name"]: r for r in csv.DictReader(open(tmp_path / "runs" / "results.csv"))}
    assert {"given", "round1", "round2", "in_fit1", "in_fit2", "clean_refined"} <= set(rows)
    assert {"clean", "noisy", "round1", "round2", "in_fit"} <= set(rows)
    assert float(rows["given"]["changed"]) == 0
    assert all(0.0 <= float(rows[n]["test_exact_match"]) <= 100.0 for n in ["clean", "noisy", "round2"])
    # a rerun keeps finished runs and versions: it only tests again
    assert main(["--quick", "--out", str(tmp_path / "runs"), "--data", str(tmp_path / "data")]) == 0
