"""The default RunResults callback: `test` and `validate` leave results/<stage>-<checkpoint stem>.json."""
import json

import lightning as L
import pytest
import torch
from lightning.pytorch.strategies import SingleDeviceStrategy
from torch.utils.data import DataLoader, TensorDataset

from noisymss.callbacks.results import RunResults, find_results
from noisymss.trainer import Trainer


class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, _):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, _):
        self.log("val/out", self.layer(batch[0]).mean())

    def test_step(self, batch, _):
        self.log("test/out", self.layer(batch[0]).mean())

    def on_test_epoch_end(self):
        self.log("test/constant", 7.0)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Data(L.LightningDataModule):
    """Carries what a catalog DataModule says of itself: catalog, label versions, seed."""

    def __init__(self, catalog, label_version="given"):
        super().__init__()
        self.catalog_path, self.label_version, self.eval_label_version, self.seed = catalog, label_version, "true", 5
        self.data = TensorDataset(torch.arange(16, dtype=torch.float32).reshape(8, 2))

    def train_dataloader(self):
        return DataLoader(self.data, batch_size=4)

    val_dataloader = test_dataloader = train_dataloader


def _trainer(root, **kw):
    return Trainer(default_root_dir=root, logger=False, enable_progress_bar=False, enable_model_summary=False, **kw)


@pytest.fixture()
def fitted(tmp_path):
    """A run folder after a 2-epoch fit: its last checkpoint and the one of epoch 0."""
    trainer = _trainer(tmp_path, max_epochs=2, callbacks=[L.pytorch.callbacks.ModelCheckpoint(save_last=True, save_top_k=-1)])
    trainer.fit(Tiny(), datamodule=Data(tmp_path / "catalog.csv"))
    assert not (tmp_path / "results").exists()  # the validations of a fit write nothing
    ckpts = sorted((tmp_path / "checkpoints").glob("*.ckpt"))
    return tmp_path, {p.stem: p for p in ckpts}


def test_trainer_registers_it_once(tmp_path):
    assert sum(isinstance(c, RunResults) for c in _trainer(tmp_path).callbacks) == 1
    assert sum(isinstance(c, RunResults) for c in _trainer(tmp_path, callbacks=[RunResults()]).callbacks) == 1


def test_test_writes_every_metric_and_what_was_scored(fitted):
    root, ckpts = fitted
    _trainer(root).test(Tiny(), datamodule=Data(root / "catalog.csv"), ckpt_path=ckpts["last"])
    record = json.loads((root / "results" / "test-last.json").read_text())
    assert set(record["metrics"]) == {"test/out", "test/constant"} and record["metrics"]["test/constant"] == 7.0
    assert record["checkpoint"] == str(ckpts["last"].resolve()) and record["catalog"] == str(root / "catalog.csv")
    assert (record["label_version"], record["eval_label_version"], record["data_seed"]) == ("given", "true", 5)
    assert find_results(root, "test", ckpts["last"]) == record
    assert find_results(root, "validate", ckpts["last"]) is None
    # a side file sharing the name's prefix (per-song scores) is not a results record
    (root / "results" / "test-last.songs.json").write_text(json.dumps({"song": {"SDR": 1.0}}))
    assert find_results(root, "test", ckpts["last"]) == record


def test_validate_writes_its_own_file(fitted):
    root, ckpts = fitted
    _trainer(root).validate(Tiny(), datamodule=Data(root / "catalog.csv"), ckpt_path=ckpts["last"])
    assert set(json.loads((root / "results" / "validate-last.json").read_text())["metrics"]) == {"val/out"}


def test_two_checkpoints_and_two_runs_never_collide(fitted, tmp_path_factory):
    root, ckpts = fitted
    first = next(k for k in ckpts if k.startswith("epoch=0"))
    for ckpt in [ckpts["last"], ckpts[first]]:
        _trainer(root).test(Tiny(), datamodule=Data(root / "catalog.csv"), ckpt_path=ckpt)
    assert sorted(p.name for p in (root / "results").iterdir()) == sorted([f"test-{first}.json", "test-last.json"])
    # another run's last.ckpt, tested in the same folder: its own file, the first one kept
    other = tmp_path_factory.mktemp("other")
    trainer = _trainer(other, max_epochs=1)
    trainer.fit(Tiny(), datamodule=Data(other / "catalog.csv"))
    kept = (root / "results" / "test-last.json").read_text()
    _trainer(root).test(Tiny(), datamodule=Data(root / "catalog.csv"), ckpt_path=trainer.checkpoint_callback.last_model_path)
    assert (root / "results" / "test-last.json").read_text() == kept
    second = json.loads((root / "results" / "test-last-2.json").read_text())
    assert second["checkpoint"] == str(other / "checkpoints" / "last.ckpt")
    # the same checkpoint on other labels is another result too; the same test again replaces its own
    _trainer(root).test(Tiny(), datamodule=Data(root / "catalog.csv", "refined"), ckpt_path=ckpts["last"])
    _trainer(root).test(Tiny(), datamodule=Data(root / "catalog.csv", "refined"), ckpt_path=ckpts["last"])
    assert json.loads((root / "results" / "test-last-3.json").read_text())["label_version"] == "refined"
    assert len(list((root / "results").iterdir())) == 4


def test_untrained_model_and_other_ranks(tmp_path, monkeypatch):
    _trainer(tmp_path).test(Tiny(), datamodule=Data(tmp_path / "catalog.csv"))
    assert json.loads((tmp_path / "results" / "test-untrained.json").read_text())["checkpoint"] is None
    assert find_results(tmp_path, "test", None)["stage"] == "test"
    monkeypatch.setattr(SingleDeviceStrategy, "is_global_zero", property(lambda self: False))
    _trainer(tmp_path / "rank1").test(Tiny(), datamodule=Data(tmp_path / "catalog.csv"))
    assert not (tmp_path / "rank1" / "results").exists()
