"""The experiment runner's own decisions, with the `noisymss` verbs replaced by fakes: order and
failures of runs, resuming a killed fit, keeping finished work, seeds, and the summary statistics."""
import json
import threading

import numpy as np
import pytest
import yaml

from noisymss.callbacks.results import results_path
from noisymss.experiments import runner, summary
from noisymss.experiments.runner import Eval, Run, RunFailed


def test_schedule_runs_needs_first_and_skips_what_a_failure_blocks():
    units = [("a", 0), ("b", 0), ("c", 0), ("a", 1), ("b", 1), ("d", 1)]
    needs = {"b": ["a"], "c": ["b"]}
    done = []

    def work(unit):
        if unit == ("a", 0):
            raise RunFailed("noisymss fit: error: no stem", refused=True)
        assert all((n, unit[1]) in done for n in needs.get(unit[0], []))  # its needs finished before it started
        done.append(unit)
        return unit[0]

    outcome = runner.schedule(units, lambda u: [(n, u[1]) for n in needs.get(u[0], [])], work, jobs=2)
    assert [outcome[u] for u in [("a", 1), ("b", 1), ("d", 1)]] == ["a", "b", "d"]
    assert str(outcome[("b", 0)]) == "not started: needs a seed 0, which failed" and outcome[("b", 0)].refused
    assert str(outcome[("c", 0)]) == "not started: needs b seed 0, which failed"
    assert ("b", 0) not in done and ("c", 0) not in done


def test_schedule_runs_jobs_side_by_side_and_lets_bugs_through():
    both = threading.Barrier(2, timeout=10)  # breaks unless two units run at once
    outcome = runner.schedule([("a", 0), ("b", 0)], lambda u: [], lambda u: both.wait(), jobs=2)
    assert set(outcome) == {("a", 0), ("b", 0)}
    with pytest.raises(ZeroDivisionError):
        runner.schedule([("a", 0)], lambda u: [], lambda u: 1 / 0, jobs=1)
    with pytest.raises(ValueError, match="need runs that are not in the experiment"):
        runner.schedule([("b", 0)], lambda u: [("a", 0)], lambda u: None, jobs=1)


def test_a_refusal_is_the_packages_one_line_error():
    log = "Seed set to 1\nTraceback...\nnoisymss fit: error: label version 'r' has no stem that can be a 'bass' target\n"
    assert runner.refusal(log, "fit") == "noisymss fit: error: label version 'r' has no stem that can be a 'bass' target"
    assert runner.refusal("Traceback\nRuntimeError: CUDA\n", "fit") is None
    assert runner.refusal(log, "test") is None


def test_config_args_carry_the_seed_overlay_and_folder(tmp_path):
    run = Run("noisy", "classifier.yaml", {"data": {"init_args": {"label_version": "r_s{seed}"}}},
              ("--trainer.callbacks.init_args.prefix", "p{seed}_"))
    args = runner.config_args(run, 2, tmp_path)
    assert args[:2] == ["--config", str(runner.CONFIGS / "classifier.yaml")] and args[-2:] == [
        "--trainer.callbacks.init_args.prefix", "p2_"]
    overlay = yaml.safe_load(open(args[3]))
    assert overlay == {"data": {"init_args": {"label_version": "r_s2", "seed": 2}}, "seed_everything": 2,
                       "trainer": {"default_root_dir": str(tmp_path / "noisy-seed2")}}


class FakeNoisymss:
    """Stands in for `runner.noisymss`: records each verb; `fit` leaves a last.ckpt (and can be killed
    after it), `test` writes the results file `noisymss test` would."""

    def __init__(self):
        self.calls, self.kill = [], False

    def __call__(self, args, log):
        self.calls.append(args)
        root = log.parent
        if args[0] == "fit":
            ckpt = root / "csv" / f"version_{len(self.calls)}" / "checkpoints" / "last.ckpt"
            ckpt.parent.mkdir(parents=True)
            ckpt.write_text("weights")
            if self.kill:
                raise RunFailed("killed", refused=False)
        if args[0] == "test":
            ckpt = args[args.index("--ckpt_path") + 1] if "--ckpt_path" in args else None
            ckpt = None if ckpt == "untrained" else ckpt  # as the Trainer takes it
            record = {"stage": "test", "checkpoint": ckpt, "written": "now", "metrics": {"test/OA": 50.0}}
            path = results_path(root, record)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(record))


def test_a_killed_fit_resumes_from_its_last_checkpoint_and_a_finished_one_is_kept(tmp_path, monkeypatch):
    fake = FakeNoisymss()
    monkeypatch.setattr(runner, "noisymss", fake)
    run = Run("r", "classifier.yaml")
    fake.kill = True
    with pytest.raises(RunFailed):
        runner.fit(run, 0, tmp_path)
    first = tmp_path / "r-seed0" / "csv" / "version_1" / "checkpoints" / "last.ckpt"
    assert "--ckpt_path" not in fake.calls[0]
    fake.kill = False
    ckpt = runner.fit(run, 0, tmp_path)
    assert fake.calls[1][-2:] == ["--ckpt_path", str(first)]  # resumed where it was killed
    assert ckpt == tmp_path / "r-seed0" / "csv" / "version_2" / "checkpoints" / "last.ckpt"
    assert runner.fit(run, 0, tmp_path) == ckpt and len(fake.calls) == 2  # finished: not redone


def test_evaluations_are_read_from_the_results_file_and_kept(tmp_path, monkeypatch):
    fake = FakeNoisymss()
    monkeypatch.setattr(runner, "noisymss", fake)
    ckpt = tmp_path / "last.ckpt"
    ev = Eval("bach10", overlay={"data": {"init_args": {"catalog": "b.csv"}}})
    record = runner.evaluate(Run("r", "supervised.yaml"), 1, tmp_path, ev, ckpt)
    assert record["metrics"] == {"test/OA": 50.0} and len(fake.calls) == 1
    overlay = yaml.safe_load(open(tmp_path / "r-seed1" / "bach10" / "overlay.yaml"))
    assert overlay["data"]["init_args"] == {"catalog": "b.csv", "seed": runner.EVAL_SEED}  # every seed: the same examples
    assert fake.calls[0][-2:] == ["--ckpt_path", str(ckpt)]
    assert runner.evaluate(Run("r", "supervised.yaml"), 1, tmp_path, ev, ckpt) == record and len(fake.calls) == 1
    runner.evaluate(Run("base", "supervised.yaml", fit=False), 0, tmp_path, Eval("test"), None)  # a baseline: no checkpoint
    assert fake.calls[-1][-2:] == ["--ckpt_path", "untrained"]  # asked for explicitly: scoring without weights


def test_select_brings_the_runs_a_run_needs():
    runs = [Run("a", "x.yaml"), Run("b", "x.yaml", needs=("a",)), Run("c", "x.yaml", needs=("b",)), Run("d", "x.yaml")]
    ap = runner.parser("p", "doc", "out")
    assert [r.name for r in runner.select(runs, ap.parse_args(["--runs", "c"]), ap)] == ["a", "b", "c"]
    assert [r.name for r in runner.select(runs, ap.parse_args([]), ap)] == ["a", "b", "c", "d"]
    with pytest.raises(SystemExit):
        runner.select(runs, ap.parse_args(["--runs", "e"]), ap)


def test_gpu_runs_read_their_config_s_gpu_overlay_before_the_experiment_s(tmp_path):
    ap = runner.parser("p", "doc", "out")
    runs = [Run("c", "classifier.yaml", {"trainer": {"max_epochs": 3}}), Run("s", "bach10_separator_xumx.yaml")]
    on_gpu = runner.select(runs, ap.parse_args(["--gpu"]), ap)
    assert [r.overlays for r in on_gpu] == [("gpu/classifier.yaml",), ("gpu/separator_xumx.yaml",)]
    args = runner.config_args(on_gpu[0], 0, tmp_path)
    configs = [args[i + 1] for i, a in enumerate(args) if a == "--config"]
    assert configs == [str(runner.CONFIGS / "classifier.yaml"), str(runner.CONFIGS / "gpu" / "classifier.yaml"),
                       str(tmp_path / "c-seed0" / "overlay.yaml")]  # the experiment's budget and data come last
    cli = runner.instantiate([*args, "--trainer.accelerator", "cpu", "--trainer.devices", "1",
                              "--trainer.precision", "32-true"])  # (this machine may have no GPU)
    assert cli.trainer.max_epochs == 3 and cli.model.hparams.size == "tiny"  # the GPU size, the experiment's epochs
    assert runner.select(runs, ap.parse_args([]), ap) == runs  # no overlay without --gpu


def test_label_scores_are_refine_reports_of_a_version(timbres):
    from noisymss.data.catalog import Catalog

    catalog = Catalog.load(timbres)  # one of its 8 training stems is given the wrong label
    assert runner.label_scores(catalog, "given", ["tone", "noise"]) == pytest.approx(
        {"exact_match": 87.5, "macro_f1": (100 * 8 / 9 + 100 * 6 / 7) / 2, "changed": 0.0})
    assert runner.label_scores(catalog, "true", ["tone", "noise"]) == {"exact_match": 100.0, "macro_f1": 100.0, "changed": 1.0}


def test_summary_cells_are_means_with_t_intervals():
    mean, half, n = summary.mean_ci([1.0, 2.0, 3.0, float("nan")])
    assert (mean, n) == (2.0, 3) and half == pytest.approx(4.302653 / 3 ** 0.5)  # t(0.975, 2) * s / sqrt(n)
    assert summary.cell([4.0, 6.0]) == "5.0 ± 12.7" and summary.cell([5.0], 2) == "5.00" and summary.cell([]) == "–"
    rows = [{"run": "ts", "seed": 0, "r1": 1.0, "v": 3.0}, {"run": "ts", "seed": 1, "r1": 2.0, "v": 5.0},
            {"run": "sup", "seed": 0, "v": 4.0}, {"run": "sup", "seed": 1, "error": "refused"}]
    md = summary.table(rows, [summary.Column("about", about={"ts": "teacher"}), summary.Column("OA", ("r1", "v"))])
    assert md.splitlines()[2:] == ["| ts | 2 | teacher | 1.5 ± 6.4 → 4.0 ± 12.7 |", "| sup | 1 |  | 4.0 |"]


def test_bootstrap_interval_over_songs_and_seeds_and_paired_differences():
    rng = np.random.default_rng(0)
    songs = [f"s{i}" for i in range(30)]
    # song difficulty shared by every seed, a small seed effect, and noise
    level = {s: rng.normal(5.0, 2.0) for s in songs}
    a = {k: {s: level[s] + 0.1 * k + rng.normal(0, 0.3) for s in songs} for k in range(3)}
    b = {k: {s: a[k][s] - 0.5 + rng.normal(0, 0.1) for s in songs} for k in range(3)}
    mean, low, high = summary.bootstrap_ci(a)
    assert mean == pytest.approx(np.mean([list(v.values()) for v in a.values()]))
    assert low < mean < high and 0.8 < high - low < 3.0  # the songs' spread (sd 2 over 30 songs) dominates
    diff = summary.paired(a, b)
    d_mean, d_low, d_high = summary.bootstrap_ci(diff)
    assert d_low < 0.5 < d_high and d_high - d_low < 0.2  # pairing removes the songs' spread
    assert summary.bootstrap_ci(a) == (mean, low, high)  # seeded: the same interval every time
    one_song_missing = {k: {s: v for s, v in per.items() if s != "s0"} for k, per in b.items()}
    assert set(summary.paired(a, one_song_missing)[0]) == set(songs) - {"s0"}
    constant = {k: {s: 2.0 for s in songs} for k in range(2)}
    assert summary.bootstrap_ci(constant) == (2.0, 2.0, 2.0)
    assert all(np.isnan(summary.bootstrap_ci({0: {"s": float("nan")}})))
    assert summary.interval(0.4123, 0.1, 0.7) == "+0.41 [0.10, 0.70]" and summary.interval(float("nan"), 0, 0) == "–"
