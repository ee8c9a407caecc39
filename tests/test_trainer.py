"""The project's Trainer keeps the epoch the task's validation score picks, beside the last one."""
from __future__ import annotations

import lightning as L
import torch

from noisymss.data.datamodule import MixDataModule
from noisymss.data.mixer import MixRecipe
from noisymss.tasks.classifier import ClassifierTask
from noisymss.trainer import Trainer


class _Scores(L.Callback):
    def __init__(self):
        self.seen: list[float] = []

    def on_validation_end(self, trainer, pl_module):
        self.seen.append(float(trainer.callback_metrics["val/mAP"]))


def test_best_ckpt_is_the_epoch_with_the_best_validation_score(timbres, tmp_path):
    dm = MixDataModule(str(timbres), classes=["tone", "noise"], label_version="true",
                       recipe=MixRecipe(segment=1.0, sample_rate=16000, channels=1, class_prob=0.5),
                       train_examples=8, val_examples=8, batch_size=8, splits=("train", "valid", "valid"))
    scores = _Scores()
    trainer = Trainer(max_epochs=4, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                      callbacks=[scores], default_root_dir=tmp_path)
    L.seed_everything(0)
    trainer.fit(ClassifierTask(classes=["tone", "noise"], sample_rate=16000, size="tiny", lr=0.01), dm)
    best = torch.load(tmp_path / "checkpoints" / "best.ckpt", weights_only=True)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 3 and len(scores.seen) == 4
    assert best["epoch"] == max(range(4), key=lambda k: (scores.seen[k], -k))  # the first epoch of the best score
