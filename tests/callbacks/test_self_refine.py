import re
import shutil

import lightning as L
import pytest
import torch

from noisymss.callbacks.self_refine import SelfRefine
from noisymss.data.datamodule import MixDataModule
from noisymss.data.mixer import MixRecipe

QUIET = dict(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
             reload_dataloaders_every_n_epochs=1, enable_checkpointing=False)


class PeakinessTask(L.LightningModule):
    """A perfect tone/noise scorer (see tests/test_refine.py) with one trainable weight: the point is the plumbing."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, audio):
        power = torch.fft.rfft(audio.mean(1)).abs().pow(2)
        top = power.topk(power.shape[-1] // 100, dim=-1).values.sum(-1) / power.sum(-1).clamp(min=1e-12)
        return torch.stack([(top - 0.5) * 20, (0.5 - top) * 20], dim=-1) + 0 * self.w

    def training_step(self, batch, _):
        return (self.w - 1).pow(2).sum() + 0 * batch["label"].sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _Spy(L.Callback):
    """Records, at each epoch start, the label version and the labels the training mixtures are drawn with."""

    def __init__(self):
        self.seen = []

    def on_train_epoch_start(self, trainer, pl_module):
        dm = trainer.datamodule
        self.seen.append((dm.label_version, dict(dm.labels)))


def _dm(root):
    recipe = MixRecipe(segment=1.0, sample_rate=16000, channels=1, class_prob=0.5)
    return MixDataModule(str(root / "catalog.csv"), classes=["tone", "noise"], recipe=recipe, train_examples=16, batch_size=8)


def test_rounds_inside_fit_relabel_the_stems_and_survive_a_checkpoint(timbres, tmp_path, capsys):
    shutil.copytree(timbres.parent, tmp_path / "data")
    spy, refine = _Spy(), SelfRefine(every_n_epochs=1, rounds=1, write_versions=True, prefix="sr")
    dm = _dm(tmp_path / "data")
    trainer = L.Trainer(max_epochs=3, callbacks=[refine, spy], default_root_dir=tmp_path, **QUIET)
    trainer.fit(PeakinessTask(), dm)
    assert [v for v, _ in spy.seen] == ["given", "sr1", "sr1"]  # one round, after epoch 1
    assert spy.seen[0][1]["s1/noise"] == ("tone",) and spy.seen[1][1]["s1/noise"] == ("noise",)
    train_ids = {e.id for e in dm.catalog.stems("train")}
    assert all(dm.labels[e.id] == e.true_labels for e in dm.catalog.stems() if e.id in train_ids)
    assert dm.catalog.labels("sr1") == dm.labels and refine.history[0]["refine/exact_match_vs_truth"] == 100.0
    # the round's flip table: printed, and written beside its version with the probabilities
    printed = capsys.readouterr().out
    assert "self-refine round 1 (epoch 1)" in printed and re.search(r"tone\s+noise\s+1\n", printed)
    assert (tmp_path / "data" / "catalog.labels" / "sr1.flips.csv").read_text().splitlines()[1] == "tone,noise,1"
    assert (tmp_path / "data" / "catalog.labels" / "sr1.probs.csv").is_file()
    trainer.save_checkpoint(tmp_path / "r.ckpt")

    spy2, dm2 = _Spy(), _dm(tmp_path / "data")
    again = SelfRefine(every_n_epochs=1, rounds=1, write_versions=True, prefix="sr")
    L.Trainer(max_epochs=4, callbacks=[again, spy2], default_root_dir=tmp_path, **QUIET).fit(
        PeakinessTask(), dm2, ckpt_path=tmp_path / "r.ckpt")
    assert again.round == 1 and spy2.seen[0][0] == "sr1" and spy2.seen[0][1] == dm.labels  # no second relabel

    with pytest.raises(ValueError, match="exist beside"):
        L.Trainer(max_epochs=2, callbacks=[SelfRefine(every_n_epochs=1, prefix="sr", write_versions=True)],
                  default_root_dir=tmp_path, **QUIET).fit(PeakinessTask(), _dm(tmp_path / "data"))
    with pytest.raises(ValueError, match="max_epochs must be above 4 \\(got 4\\)"):  # the last round would never run
        L.Trainer(max_epochs=4, callbacks=[SelfRefine(every_n_epochs=2, rounds=2)], default_root_dir=tmp_path,
                  **QUIET).fit(PeakinessTask(), _dm(tmp_path / "data"))
    with pytest.raises(ValueError, match="aggregate 'median'"):
        SelfRefine(aggregate="median")
