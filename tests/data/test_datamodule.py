import lightning as L
import pytest
import torch
from torch import nn

from noisymss.data.catalog import CatalogError
from noisymss.data.datamodule import MixDataModule
from noisymss.data.mixer import MixRecipe

RECIPE = MixRecipe(segment=0.5, sample_rate=16000, channels=1)


def _dm(corpus, **kw):
    args = dict(recipe=RECIPE, classes=["vocals", "drums", "bass", "other"], batch_size=4, train_examples=8,
                val_examples=4, seed=1)
    return MixDataModule(str(corpus / "catalog.csv"), **(args | kw))


def test_two_runs_give_the_same_batches(demo_corpus):
    runs = []
    for _ in range(2):
        dm = _dm(demo_corpus, outputs=("mixture", "sources", "label", "f0"))
        dm.setup("fit")
        runs.append(list(dm.train_dataloader()) + list(dm.val_dataloader()))
    for a, b in zip(*runs):
        assert a.keys() == b.keys() == {"mixture", "sources", "label", "f0"}
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, equal_nan=True)
    assert runs[0][0]["mixture"].shape == (4, 1, 8000) and runs[0][0]["f0"].shape == (4, 50)


def test_labels_are_state_and_setup_never_resets_them(demo_corpus):
    dm = _dm(demo_corpus)
    dm.setup("fit")
    assert dm.label_version == "given"
    dm.set_labels("mine", {k: ("other",) for k in dm.labels})
    dm.setup("fit")  # Lightning calls setup again on every fit
    assert dm.label_version == "mine"
    state = dm.state_dict()
    fresh = _dm(demo_corpus)
    fresh.load_state_dict(state)
    fresh.setup("fit")
    assert fresh.labels == dm.labels and fresh.label_version == "mine"
    batch = next(iter(fresh.train_dataloader()))
    assert torch.all(batch["label"][:, :3] == 0) and torch.all(batch["label"][:, 3] == 1)


def test_split_labels_name_the_catalog_split_and_the_labels_its_mixtures_use(demo_corpus):
    dm = _dm(demo_corpus, eval_label_version="given")
    dm.setup("fit")
    dm.set_labels("mine", {k: ("other",) for k in dm.labels})
    assert dm.split_labels("train") == ("train", dm.labels)
    assert dm.split_labels("test") == ("test", dm.catalog.labels("given"))
    assert _dm(demo_corpus, splits=("train", "valid", "valid")).split_labels("test")[0] == "valid"


def test_bad_options_are_one_line_errors(demo_corpus, tmp_path):
    with pytest.raises(ValueError, match="outputs \\['spectrogram'\\]"):
        _dm(demo_corpus, outputs=("spectrogram",))
    with pytest.raises(CatalogError, match="no such catalog file"):
        MixDataModule(str(tmp_path / "none.csv")).setup()
    with pytest.raises(CatalogError, match="no stems in split 'nope'"):
        _dm(demo_corpus, splits=("nope", "valid", "test")).train_dataloader()


class _Recorder(L.LightningModule):
    """A one-weight model that records the labels it trained on, per epoch."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(1, 4)
        self.seen: dict[int, list[torch.Tensor]] = {}

    def training_step(self, batch, _):
        self.seen.setdefault(self.current_epoch, []).append(batch["label"])
        level = batch["mixture"].pow(2).mean(dim=(1, 2))[:, None]
        return nn.functional.binary_cross_entropy_with_logits(self.head(level), batch["label"])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _RelabelAfterFirstEpoch(L.Callback):
    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == 0:
            dm = trainer.datamodule
            dm.set_labels("everything-other", {k: ("other",) for k in dm.labels})


def test_new_labels_reach_the_next_epoch_and_survive_a_checkpoint(demo_corpus, tmp_path):
    """Loaders are rebuilt before on_train_epoch_start: relabel at epoch end, loaders rebuilt, state checkpointed."""
    kw = dict(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
              limit_val_batches=0, reload_dataloaders_every_n_epochs=1, default_root_dir=tmp_path)
    model, dm = _Recorder(), _dm(demo_corpus)
    trainer = L.Trainer(max_epochs=2, callbacks=[_RelabelAfterFirstEpoch()], enable_checkpointing=False, **kw)
    trainer.fit(model, dm)
    first, second = torch.cat(model.seen[0]), torch.cat(model.seen[1])
    assert first[:, :3].sum() > 0
    assert torch.all(second[:, :3] == 0) and torch.all(second[:, 3] == 1)
    ckpt = tmp_path / "last.ckpt"
    trainer.save_checkpoint(ckpt)

    resumed_model, resumed_dm = _Recorder(), _dm(demo_corpus)
    L.Trainer(max_epochs=3, enable_checkpointing=False, **kw).fit(resumed_model, resumed_dm, ckpt_path=ckpt)
    assert resumed_dm.label_version == "everything-other"
    assert list(resumed_model.seen) == [2]
    assert torch.all(torch.cat(resumed_model.seen[2])[:, 3] == 1)


class _MixtureRecorder(_Recorder):
    """Records the mixtures it trained on, per epoch."""

    def training_step(self, batch, _):
        self.seen.setdefault(self.current_epoch, []).append(batch["mixture"].clone())
        level = batch["mixture"].pow(2).mean(dim=(1, 2))[:, None]
        return nn.functional.binary_cross_entropy_with_logits(self.head(level), batch["label"])


@pytest.mark.parametrize("workers", [0, 1])
def test_each_epoch_draws_new_examples_without_reloading_loaders(demo_corpus, tmp_path, workers):
    """No Trainer flag needed: epochs 0 and 1 differ, and a run resumed at epoch 1 draws epoch 1's examples."""
    kw = dict(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
              limit_val_batches=0, default_root_dir=tmp_path, enable_checkpointing=False)
    model = _MixtureRecorder()
    trainer = L.Trainer(max_epochs=2, **kw)
    trainer.fit(model, _dm(demo_corpus, num_workers=workers))
    first, second = torch.cat(model.seen[0]), torch.cat(model.seen[1])
    assert first.shape == second.shape and not torch.equal(first, second)

    once = _MixtureRecorder()
    stop = L.Trainer(max_epochs=1, **kw)
    stop.fit(once, _dm(demo_corpus, num_workers=workers))
    stop.save_checkpoint(tmp_path / "epoch1.ckpt")
    resumed = _MixtureRecorder()
    L.Trainer(max_epochs=2, **kw).fit(resumed, _dm(demo_corpus, num_workers=workers), ckpt_path=tmp_path / "epoch1.ckpt")
    assert list(resumed.seen) == [1]
    torch.testing.assert_close(torch.cat(resumed.seen[1]), second, rtol=0, atol=0)
