import csv
import math
from pathlib import Path

import pytest

from noisymss.experiments import real_stems

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.mark.parametrize("name", sorted(real_stems.SETS))
def test_runs_share_one_budget_per_kind_and_differ_in_labels_or_reduction(name, resolve, differing, tmp_path):
    stem_set = real_stems.SETS[name]
    runs = real_stems.runs(stem_set, tmp_path / "noisy.csv", classifier_epochs=16, separator_epochs=20, quick=False)
    resolved = resolve(runs)
    classifiers = {n: r for n, r in resolved.items() if n in real_stems.CLASSIFIERS}
    separators = {n: r for n, r in resolved.items() if n not in real_stems.CLASSIFIERS and n != "mixture"}
    # classifiers: only the labels differ (the noisy one keeps every epoch for its ensemble refine)
    assert differing(classifiers) == {"data.init_args.label_version", "trainer.keep_epochs"}
    assert differing(separators) == {"data.init_args.label_version", "model.init_args.robust",
                                     "model.init_args.quantile_schedule.0", "model.init_args.quantile_schedule.1"}
    for group, epochs in ((classifiers, 16), (separators, 20)):
        for _, cli in group.values():
            assert cli.trainer.max_epochs == epochs and str(cli.datamodule.catalog_path) == str(tmp_path / "noisy.csv")
            assert cli.datamodule.eval_label_version == "true"  # validation and test against the truth
    assert {n: cli.datamodule.label_version for n, (_, cli) in resolved.items() if n != "mixture"} == {
        "clf_noisy": "given", "clf_clean": "true", "clf_refined": "refined_s0", "clean": "true", "noisy": "given",
        "self_refined": "refined_s0", "noisy_truncation": "given", "noisy_masking": "given", "ccom_filtered": "ccom_s0",
        "refined_truncation": "refined_s0"}
    # the classes of each set reach both kinds of model; separators train on single-label stems only
    classes = {"mir1k": ["vocals", "accompaniment"], "bach10": ["violin", "clarinet", "saxophone", "bassoon"]}[name]
    assert all(list(cli.datamodule.classes) == classes for _, cli in resolved.values())
    assert all(cli.datamodule.recipe.multi_label == "exclude" for _, cli in separators.values())
    by_name = {r.name: r for r in runs}
    # self-refining: the noisy classifier's last half of epochs together write the refined version
    assert (by_name["clf_noisy"].refine, by_name["clf_noisy"].refine_epochs) == ("refined_s{seed}", (8, 16))
    assert by_name["clf_noisy"].refine_args == ("--split", "train", "--calibrate", "valid")  # thresholds from clean stems
    assert by_name["noisy_truncation"].refine == "ccom_s{seed}"  # CCOM's filter
    assert {n: r.needs for n, r in by_name.items() if r.needs} == {
        "clf_refined": ("clf_noisy",), "self_refined": ("clf_noisy",), "refined_truncation": ("clf_noisy",),
        "ccom_filtered": ("noisy_truncation",)}
    assert (by_name["mixture"].fit, by_name["mixture"].seeds) == (False, 1)


@pytest.mark.slow  # about 3 minutes: MIR-1K indexed and noised, every run on 3 clips a split
@pytest.mark.skipif(not (SHARED / "mir1k").is_dir(), reason="needs the shared MIR-1K folder")
def test_quick_experiment_on_a_few_mir1k_clips(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    out = tmp_path / "runs"
    args = ["--set", "mir1k", "--quick", "--out", str(out), "--data", str(tmp_path / "data"), "--shared", str(SHARED)]
    assert real_stems.main(args) == 0
    rows = {r["run"]: r for r in csv.DictReader(open(out / "results.csv"))}
    assert set(rows) == {"mixture", *real_stems.CLASSIFIERS, *real_stems.SEPARATORS}
    noise = (tmp_path / "data" / "mir1k_quick_noisy.noise.json")
    assert noise.is_file()  # what was done to which stem, beside the noisy catalog
    for name in ("clf_noisy", "clf_clean"):
        assert 0.0 <= float(rows[name]["test:test/macro_f1"]) <= 100.0
    assert float(rows["clf_clean"]["trained_on:exact_match"]) == 100.0
    assert float(rows["clf_noisy"]["trained_on:exact_match"]) < 100.0  # the injected noise, against the truth
    assert rows["clf_noisy"]["refined:exact_match"]  # its ensemble refine wrote a version, scored on the truth
    for name in ("mixture", "clean", "noisy", "noisy_truncation", "noisy_masking"):
        assert math.isfinite(float(rows[name]["test:test/sdr"])), name
    md = (out / "results.md").read_text()
    assert "| clean − noisy | 1 | " in md
    for name, r in rows.items():  # an untrained filter or refine may leave a source without a stem: said so
        assert bool(r.get("error")) == (f"`{name}` seed 0: noisymss fit: error:" in md), name
