import csv
import json

import pytest

from noisymss.callbacks.self_refine import SelfRefine
from noisymss.experiments import refine


def test_runs_share_one_budget_and_differ_in_labels(resolve, differing, tmp_path):
    catalog = tmp_path / "corpus" / "catalog.csv"
    runs = refine.runs(catalog, epochs=12, quick=False)
    resolved = resolve(runs)
    classifiers = {n: r for n, r in resolved.items() if n != "in_fit"}
    # keeping every epoch's checkpoint (for the late ensemble) changes no training
    assert differing(classifiers) == {"data.init_args.label_version", "trainer.keep_epochs"}
    assert {k for k in differing(resolved) if not k.startswith("trainer.callbacks")} == {
        "data.init_args.label_version", "trainer.reload_dataloaders_every_n_epochs", "trainer.keep_epochs"}
    trained_on = {n: cli.datamodule.label_version for n, (_, cli) in resolved.items()}
    assert trained_on == {"noisy": "given", "round1": "round1_s0", "round2": "round2_s0", "clean": "true", "in_fit": "given",
                          "noisy_late": "given", "late1": "late1_s0"}
    assert all(cli.datamodule.eval_label_version == "true" and str(cli.datamodule.catalog_path) == str(catalog)
               for _, cli in resolved.values())
    in_fit = resolved["in_fit"][1]
    rounds = [c for c in in_fit.trainer.callbacks if isinstance(c, SelfRefine)]
    assert len(rounds) == 1 and rounds[0].rounds == refine.ROUNDS and rounds[0].every_n_epochs == 4
    assert not any(isinstance(c, SelfRefine) for n, (_, cli) in classifiers.items() for c in cli.trainer.callbacks)
    # each refine feeds the next run of the same seed
    by_name = {r.name: r for r in runs}
    assert (by_name["noisy"].refine, by_name["round1"].refine, by_name["clean"].refine) == (
        refine.ROUND1, refine.ROUND2, refine.CLEAN_REFINED)
    assert by_name["round1"].needs == ("noisy",) and by_name["round2"].needs == ("round1",)
    # the temporal ensemble: the noisy run's last 6 of 12 epochs, kept by the fit, refine together
    assert (by_name["noisy_late"].refine, by_name["noisy_late"].refine_epochs) == (refine.LATE1, (6, 12))
    assert resolved["noisy_late"][1].trainer.checkpoint_callback.save_top_k == -1
    assert by_name["late1"].needs == ("noisy_late",) and by_name["noisy"].refine_epochs is None


@pytest.mark.slow
def test_quick_experiment_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    args = ["--quick", "--out", str(tmp_path / "runs"), "--data", str(tmp_path / "data")]
    assert refine.main(args) == 0
    rows = {r["run"]: r for r in csv.DictReader(open(tmp_path / "runs" / "results.csv"))}
    assert set(rows) == {"noisy", "round1", "round2", "clean", "in_fit", "noisy_late", "late1"}
    assert float(rows["noisy"]["trained_on:changed"]) == 0 and float(rows["clean"]["trained_on:exact_match"]) == 100
    assert rows["round1"]["trained_on:exact_match"] == rows["noisy"]["refined:exact_match"]  # what noisy wrote
    assert rows["late1"]["trained_on:exact_match"] == rows["noisy_late"]["refined:exact_match"]
    late = json.loads((tmp_path / "data_quick" / "catalog.labels" / "late1_s0.json").read_text())["checkpoint"]
    assert late.count(".ckpt") == 2 and "epoch=1-" in late and "epoch=2-" in late  # quick: 3 epochs, the last 2
    assert rows["in_fit"]["round1:refine/exact_match_vs_truth"] and rows["in_fit"]["round2:refine/changed_stems"]
    assert all(0.0 <= float(r["test:test/exact_match"]) <= 100.0 for r in rows.values())
    folder = tmp_path / "runs" / "noisy-seed0"
    assert (folder / "fit.done").is_file() and (folder / "refine.done").is_file()
    written = (folder / "test" / "results" / "test-last.json").stat().st_mtime
    # a rerun keeps finished runs, versions and scores: nothing is trained, refined or tested again
    assert refine.main(args) == 0
    assert (folder / "test" / "results" / "test-last.json").stat().st_mtime == written
    assert (tmp_path / "runs" / "results.csv").read_text().count("\n") == 8
