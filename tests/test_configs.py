"""Every YAML under configs/ builds the objects it names (jsonargparse, as LightningCLI reads them)."""
from pathlib import Path

import pytest
import yaml
from jsonargparse import ArgumentParser

from noisymss.audio.effects import Chain
from noisymss.data.datamodule import MixDataModule
from noisymss.data.mixer import MULTI_LABEL_POLICIES

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted((CONFIGS / "data").glob("*.yaml")), ids=lambda p: p.name)
def test_data_configs_build_a_datamodule(path, tmp_path):
    parser = ArgumentParser()
    parser.add_argument("--data", type=MixDataModule)
    config = yaml.safe_load(path.read_text())
    config["init_args"]["catalog"] = str(tmp_path / "catalog.csv")  # build without touching data/
    dm = parser.instantiate(parser.parse_object({"data": config})).data
    assert isinstance(dm, MixDataModule)
    assert dm.recipe.multi_label in MULTI_LABEL_POLICIES
    assert dm.effects is None or isinstance(dm.effects, Chain)
    assert dm.demo is None or dm.demo.songs > 0


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_run_configs_parse_with_lightning_cli(path):
    """Every run config parses as `noisymss fit --config` would read it (no training, no data needed)."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "noisymss", "fit", "--config", str(path), "--print_config"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    printed = yaml.safe_load(res.stdout)
    assert printed["model"]["class_path"].startswith("noisymss.") and printed["data"]["class_path"].startswith("noisymss.")
