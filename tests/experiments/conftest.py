"""Run lists resolved as `noisymss fit` resolves them, for the tests that compare the runs of an experiment."""
from __future__ import annotations

import pytest

from noisymss.experiments import runner


def flat(value, prefix: str = "") -> dict:
    """{'data.init_args.catalog': ..., 'trainer.callbacks.0.init_args.mode': ...} of a nested config."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)) and any(isinstance(v, (dict, list, tuple)) for v in value):
        items = enumerate(value)
    else:
        return {prefix: value}
    out = {}
    for k, v in items:
        if k not in ("config", "__path__"):  # the config files read, not what they say
            out.update(flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


@pytest.fixture(scope="module")
def resolve(tmp_path_factory):
    """resolve(runs) -> {run: (flat config of seed 0, the instantiated CLI)}: each run's fit arguments,
    parsed and instantiated (nothing trained)."""
    def resolve(runs: list[runner.Run]) -> dict:
        out = tmp_path_factory.mktemp("runs")
        resolved = {}
        for run in runs:
            cli = runner.instantiate(runner.config_args(run, 0, out))
            resolved[run.name] = (flat(cli.config.as_dict()), cli)
        return resolved
    return resolve


def _differing(resolved: dict) -> set[str]:
    """The config fields that are not the same in every run (the run folder aside)."""
    configs = [c for c, _ in resolved.values()]
    keys = set().union(*configs)
    return {k for k in keys if len({repr(c.get(k, "<absent>")) for c in configs}) > 1} - {"trainer.default_root_dir"}


@pytest.fixture()
def differing():
    """differing(resolved) -> the config fields that are not the same in every run (the run folder aside)."""
    return _differing

