"""Instrument classifier task: BCE on random mixtures labelled with the union of their stems' labels.

The first step of self-refining (Koo et al. 2023, arXiv:2307.12576): the labels are those of the
label version the DataModule is using (noisy given labels, a refined version, or the truth), so
the same task trains the noisy, the refined and the clean classifiers.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import (MultilabelAveragePrecision, MultilabelExactMatch, MultilabelF1Score,
                                         MultilabelPrecision, MultilabelRecall)

from noisymss.models.classifier import InstrumentClassifier
from noisymss.tasks.predict import FilePredictions
from noisymss.tasks.robust import REDUCTIONS, quantile_at, reduce_loss

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
        robust: how the (B, n_classes) BCE losses of a training batch are reduced: mean (plain) |
            masking (per class, the examples above its batch quantile are left out: small-loss
            selection, as co-teaching's, Han et al. 2018, arXiv:1804.06872, so that a mislabelled
            stem's class is not learnt; the separators' KUIELab masking) | truncation (whole examples).
        quantile_schedule: [[epoch, keep quantile], ...] of the robust modes, e.g. [[0, 1.0], [3, 0.8]]:
            all kept while the model learns the clean majority, then the top 20 % left out.
    """

    # the validation score that picks checkpoints/best.ckpt (noisymss.trainer): threshold-free
    monitor = ("val/mAP", "max")

    def __init__(self, classes: list[str] = ("vocals", "drums", "bass", "other"), size: str = "small",
                 sample_rate: int = 44100, lr: float = 1e-3, weight_decay: float = 0.05, label_smoothing: float = 0.0,
                 threshold: float = 0.5, robust: str = "mean", quantile_schedule: Sequence[Sequence[float]] = ((0, 1.0),)):
        super().__init__()
        if robust not in REDUCTIONS:
            raise ValueError(f"robust '{robust}': choose one of {', '.join(REDUCTIONS)}")
        for _, q in quantile_schedule:  # a bad schedule fails here, not epochs into training
            reduce_loss(torch.zeros(2, 2), robust, q)
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
        loss, logits, _ = self._losses(batch, robust=False)
        return loss, logits

    def _losses(self, batch: dict[str, torch.Tensor], robust: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, logits, (B, n_classes) keep mask): the plain mean, or with `robust` the training reduction."""
        s = self.hparams.label_smoothing
        logits = self(batch["mixture"])
        losses = F.binary_cross_entropy_with_logits(logits, batch["label"] * (1 - s) + s / 2, reduction="none")
        if not robust:
            return losses.mean(), logits, torch.ones_like(losses, dtype=torch.bool)
        quantile = quantile_at(self.current_epoch, self.hparams.get("quantile_schedule", ((0, 1.0),)))
        loss, keep = reduce_loss(losses, self.hparams.get("robust", "mean"), quantile)
        return loss, logits, keep

    def training_step(self, batch: dict[str, torch.Tensor], _) -> torch.Tensor:
        loss, _, keep = self._losses(batch, robust=True)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/kept", keep.float().mean())
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
