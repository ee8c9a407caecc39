import csv

import pytest

from noisymss.experiments.separate import RUNS, main, run_config


def test_runs_share_one_budget_and_differ_in_labels_or_reduction(tmp_path):
    catalog = tmp_path / "corpus" / "catalog.csv"
    configs = {n: run_config(n, tmp_path, catalog, epochs=8, quick=False) for n in RUNS}
    budgets = {(c["trainer"]["max_epochs"], c["data"]["init_args"]["train_examples"], c["model"]["init_args"]["arch"],
                c["model"]["init_args"]["size"], c["seed_everything"]) for c in configs.values()}
    assert len(budgets) == 1
    assert {n: c["data"]["init_args"]["label_version"] for n, c in configs.items()} == {
        "clean": "true", "noisy": "given", "self_refined": "round1", "clean_refined": "clean_refined",
        "noisy_truncation": "given"}
    assert {n for n, c in configs.items() if c["model"]["init_args"]["robust"] != "mean"} == {"noisy_truncation"}
    assert configs["noisy_truncation"]["model"]["init_args"]["quantile_schedule"] == [[0, 0.7], [4, 0.5]]
    assert all(c["data"]["init_args"]["recipe"]["multi_label"] == "exclude"
               for c in configs.values())


@pytest.mark.slow
def test_quick_experiment_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.chdir(tmp_path)  # the refine experiment it runs first writes under runs/
    args = ["--quick", "--out", str(tmp_path / "runs" / "sep"), "--data", str(tmp_path / "data" / "exp"),
            "--held-out", str(tmp_path / "data" / "held")]
    assert main(args) == 0
    rows = {r["run"]: r for r in csv.DictReader(open(tmp_path / "runs" / "sep" / "results.csv"))}
    assert set(rows) == {"mixture", *RUNS}
    # a run is NaN only when its label version left a source without a training stem, and says so
    md = (tmp_path / "runs" / "sep" / "results.md").read_text()
    for name in ["mixture", "clean", "noisy", "noisy_truncation"]:
        assert float(rows[name]["sdr_mean"]) == float(rows[name]["sdr_mean"]), name
    for name, r in rows.items():
        assert (float(r["sdr_mean"]) != float(r["sdr_mean"])) == (f"{name}: not trained" in md), name


def test_a_version_without_a_stem_for_some_source_is_named(duets):
    from noisymss.experiments.separate import missing_target

    assert missing_target(duets, "true", ["tone", "noise"]) is None
    assert missing_target(duets, "true", ["tone", "noise", "vocals"]) == "no training stem labelled only 'vocals'"
