import csv
import math

import pytest

from noisymss.experiments import separate


def test_runs_share_one_budget_and_differ_in_labels_or_reduction(resolve, differing, tmp_path):
    catalog, held_out = tmp_path / "corpus" / "catalog.csv", tmp_path / "held" / "unseen.csv"
    runs = separate.runs(catalog, held_out, epochs=8, quick=False)
    resolved = resolve(runs)
    trained = {n: r for n, r in resolved.items() if n != "mixture" and n not in separate.XUMX}
    xumx = {n: r for n, r in resolved.items() if n in separate.XUMX}
    # X-UMX: the main comparison again, the same data and budget; only the model (and its loss) differs
    assert {k for k in differing({**xumx, "clean": resolved["clean"]}) if not k.startswith("model.")} == {
        "data.init_args.label_version"}
    assert all(cli.model.hparams.arch == "xumx" for _, cli in xumx.values())
    assert {n: cli.datamodule.label_version for n, (_, cli) in xumx.items()} == {
        "clean_xumx": "true", "noisy_xumx": "given", "self_refined_xumx": "round1_s0"}
    assert differing(trained) == {"data.init_args.label_version", "model.init_args.robust",
                                  "model.init_args.quantile_schedule.0", "model.init_args.quantile_schedule.1"}
    demucs = {n: r for n, r in resolved.items() if n not in separate.XUMX}
    assert differing(demucs) - differing(trained) == {"model.init_args.arch"}  # the baseline: another model only
    assert {n: cli.datamodule.label_version for n, (_, cli) in trained.items()} == {
        "clean": "true", "noisy": "given", "self_refined": "round1_s0", "clean_refined": "clean_refined_s0",
        "noisy_truncation": "given", "noisy_masking": "given", "late_refined": "late1_s0", "ccom_filtered": "ccom_s0"}
    assert {n: cli.model.hparams.robust for n, (_, cli) in trained.items() if cli.model.hparams.robust != "mean"} == {
        "noisy_truncation": "truncation", "noisy_masking": "masking", "ccom_filtered": "truncation"}
    # CCOM: the truncation run's separator filters the stems (its refine), and a run retrains on them
    by_name = {r.name: r for r in runs}
    assert by_name["noisy_truncation"].refine == "ccom_s{seed}" and by_name["ccom_filtered"].needs == ("noisy_truncation",)
    assert all(r.refine is None for r in runs if r.name != "noisy_truncation")
    assert [r.name for r in runs].count("mixture") == 1
    for name in ("noisy_truncation", "noisy_masking", "ccom_filtered"):  # CCOM's and KUIELab's reductions, one schedule
        assert resolved[name][1].model.hparams.quantile_schedule == [[0, 0.7], [4, 0.5]]
    assert all(cli.datamodule.recipe.multi_label == "exclude" for _, cli in resolved.values())
    mixture = runs[0]
    assert (mixture.name, mixture.fit, mixture.seeds) == ("mixture", False, 1)
    assert all(r.evals[0].overlay["data"]["init_args"] == {"catalog": str(held_out), "label_version": "true"} for r in runs)


@pytest.mark.slow
def test_quick_experiment_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.chdir(tmp_path)  # the refine experiment it runs first writes under runs/
    args = ["--quick", "--out", str(tmp_path / "runs" / "sep"), "--data", str(tmp_path / "data" / "exp"),
            "--held-out", str(tmp_path / "data" / "held")]
    assert separate.main(args) == 0
    rows = {r["run"]: r for r in csv.DictReader(open(tmp_path / "runs" / "sep" / "results.csv"))}
    assert set(rows) == {"mixture", *separate.RUNS, *separate.XUMX}
    md = (tmp_path / "runs" / "sep" / "results.md").read_text()
    for name in ["mixture", "clean", "noisy", "noisy_truncation", "noisy_masking", "clean_xumx", "noisy_xumx"]:  # labels with every source: always trained
        assert math.isfinite(float(rows[name]["test:test/sdr"])), name
    # the mean SDR logged by `noisymss test` (float32) is its museval summary's
    assert float(rows["mixture"]["test:museval/mean/SDR"]) == pytest.approx(float(rows["mixture"]["test:test/sdr"]), abs=1e-4)
    # the claims as paired differences with bootstrap intervals, where both runs scored songs
    assert "| clean − noisy | 1 | " in md and "| self_refined − noisy |" in md
    clean, noisy = separate.song_sdr(tmp_path / "runs" / "sep", "clean", 1), separate.song_sdr(tmp_path / "runs" / "sep", "noisy", 1)
    assert clean[0] and set(clean[0]) == set(noisy[0])
    for name, r in rows.items():  # a refined version may leave a source without a stem: refused, and said so
        assert bool(r.get("error")) == (f"`{name}` seed 0: noisymss fit: error:" in md), name
