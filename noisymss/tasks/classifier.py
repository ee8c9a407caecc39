"""Instrument classifier task: BCE on random mixtures labelled with the union of their stems' labels.

The first step of self-refining (Koo et al. 2023, arXiv:2307.12576): the labels are those of the
label version the DataModule is using (noisy given labels, a refined version, or the truth), so
the same task trains the noisy, the refined and the clean classifiers.
"""
from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import (MultilabelAveragePrecision, MultilabelExactMatch, MultilabelF1Score,
                                         MultilabelPrecision, MultilabelRecall)

from noisymss.models.classifier import InstrumentClassifier
from noisymss.tasks.predict import FilePredictions

SIZES = {"small": InstrumentClassifier.small, "tiny": InstrumentClassifier.tiny}


class ClassifierTask(FilePredictions, L.LightningModule):
    """Multi-label instrument recognition on mixtures.

    Args:
        classes: class names, in the DataModule's order (checked at fit start).
        size: 'small' (CPU) or 'tiny' (ConvNeXt-Tiny widths, GPU).
        sample_rate: of the DataModule's audio.
        lr, weight_decay: AdamW settings (the paper does not publish its own; 1e-4 suits the full size).
        label_smoothing: BCE targets become y * (1 - s) + s / 2.
        threshold: probability above which a class counts as present in the metrics.
    """

    # the validation score that picks checkpoints/best.ckpt (noisymss.trainer): threshold-free
    monitor = ("val/mAP", "max")

    def __init__(self, classes: list[str] = ("vocals", "drums", "bass", "other"), size: str = "small",
                 sample_rate: int = 44100, lr: float = 1e-3, weight_decay: float = 0.05, label_smoothing: float = 0.0,
                 threshold: float = 0.5):
        super().__init__()
        if not classes:
            raise ValueError("no classes: the model is built for a fixed list of classes; give them in data.init_args.classes "
                             "(the CLI copies them to the model)")
        if size not in SIZES:
            raise ValueError(f"size '{size}': choose one of {', '.join(SIZES)}")
        self.save_hyperparameters()
        self.classes = list(classes)
        self.model = SIZES[size](len(self.classes), sample_rate=sample_rate)
        n = len(self.classes)
        metrics = MetricCollection({
            "exact_match": MultilabelExactMatch(n, threshold=threshold),
            "macro_f1": MultilabelF1Score(n, threshold=threshold, average="macro"),
            "macro_precision": MultilabelPrecision(n, threshold=threshold, average="macro"),
            "macro_recall": MultilabelRecall(n, threshold=threshold, average="macro"),
            "mAP": MultilabelAveragePrecision(n, average="macro"),
            "f1": MultilabelF1Score(n, threshold=threshold, average=None),
        })
        self.val_metrics, self.test_metrics = metrics.clone(prefix="val/"), metrics.clone(prefix="test/")

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, C, T) audio → (B, n_classes) logits."""
        return self.model(audio)

    def setup(self, stage: str) -> None:
        # every stage: scores of a model whose classes are in another order than the data's are wrong, silently
        dm = self.trainer.datamodule
        if dm is not None and hasattr(dm, "classes") and list(dm.classes) != self.classes:
            raise ValueError(f"model classes {self.classes} differ from the data's {list(dm.classes)}; "
                             "set model.classes to match data.classes")
        rate = getattr(getattr(dm, "recipe", None), "sample_rate", self.hparams.sample_rate)
        if rate != self.hparams.sample_rate:
            raise ValueError(f"data recipe is {rate} Hz but the model's mel filters are for {self.hparams.sample_rate} Hz; "
                             "set model.sample_rate to match data.recipe.sample_rate")

    def model_step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss of a batch and the logits (B, n_classes) it came from: training, validation and benchmarks."""
        s = self.hparams.label_smoothing
        logits = self(batch["mixture"])
        return F.binary_cross_entropy_with_logits(logits, batch["label"] * (1 - s) + s / 2), logits

    def training_step(self, batch: dict[str, torch.Tensor], _) -> torch.Tensor:
        loss, _ = self.model_step(batch)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], _) -> None:
        self._score(batch, self.val_metrics, "val")

    def test_step(self, batch: dict[str, torch.Tensor], _) -> None:
        self._score(batch, self.test_metrics, "test")

    def _score(self, batch: dict[str, torch.Tensor], metrics: MetricCollection, stage: str) -> None:
        loss, logits = self.model_step(batch)
        self.log(f"{stage}/loss", loss, sync_dist=True)
        metrics.update(logits.sigmoid(), batch["label"].int())

    # States are (re)made at each epoch start, in the grad mode that epoch runs in: a state made
    # under `validate`'s inference mode cannot be updated in place by a later fit's validation.
    def on_validation_epoch_start(self) -> None:
        self.val_metrics.reset()

    def on_test_epoch_start(self) -> None:
        self.test_metrics.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_metrics(self.val_metrics)

    def on_test_epoch_end(self) -> None:
        self._log_metrics(self.test_metrics)

    def _log_metrics(self, metrics: MetricCollection) -> None:
        values = metrics.compute()  # torchmetrics syncs the states over ranks
        metrics.reset()
        for name, value in values.items():
            if value.ndim:  # per-class F1
                for cls, v in zip(self.classes, value):
                    self.log(f"{name}/{cls}", 100 * v)
            else:
                self.log(name, 100 * value, prog_bar=name.endswith("exact_match"))

    predict_suffix = ".labels.json"

    def predict_file(self, path: Path, target: Path) -> list[Path]:
        """Writes the classes heard in one file and their probabilities as JSON: {file, status, reason,
        probabilities, labels}. Scored as `noisymss refine` scores a stem, with its default windows
        (3 s every 1.5 s, stereo): the mean over the file's audible windows."""
        from noisymss.atomic import atomic_write_text
        from noisymss.refine import RefineSettings, labels_from, score_stem

        self.eval()
        settings = RefineSettings(sample_rate=self.hparams.sample_rate, threshold=self.hparams.threshold)
        score = score_stem(self, path, settings, self.device)
        probs = dict(zip(self.classes, score.probs)) if score.probs else {}
        result = {"file": str(path), "status": score.status, "reason": score.reason, "probabilities": probs,
                  "labels": list(labels_from(score.probs, self.classes, settings.threshold)) if score.probs else []}
        atomic_write_text(target, json.dumps(result, indent=1) + "\n")
        return [target]

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
