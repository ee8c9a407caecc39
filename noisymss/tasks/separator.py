"""Source separation task: any network mapping a mixture (B, C, T) to sources (B, S, C, T), trained
on random mixtures of catalog stems under a chosen label version (Koo et al. 2023, step 4).

Noise-robust training beside refinement (the leading SDX'23 label-noise entries): per-sample, per-source losses are reduced
with loss truncation (CCOM, SDX'23 1st: drop the samples above a batch quantile) or loss masking
(KUIELab: per source, keep the samples below its batch quantile), the quantile following an epoch
schedule. Validation scores a fixed seeded set of mixtures with the cheap utterance SDR; `test`
also separates the test songs whole (overlap-added chunks) and scores them with museval.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import lightning as L
import torch
from torchmetrics import MeanMetric

from noisymss.models.separators import build_separator
from noisymss.tasks.predict import FilePredictions
from noisymss.separation.losses import MultiDomainLoss, l1_loss
from noisymss.tasks.robust import REDUCTIONS, quantile_at, reduce_loss

LOSSES = ("l1", "multi_domain")
SILENT_RMS = 1e-4  # -80 dBFS: a reference this quiet is an absent source, left out of the SDR means


class SeparatorTask(FilePredictions, L.LightningModule):
    """Args:
        sources: source names, in the DataModule's class order (checked at fit start).
        arch: htdemucs | hdemucs | xumx (noisymss.models.separators).
        size: small (CPU) | published.
        sample_rate, channels: of the DataModule's audio (checked at fit start).
        segment: training segment in seconds (the DataModule's recipe segment); also the chunk
            length when whole songs are separated.
        model_args: constructor arguments replacing the size's.
        loss: l1 (Demucs) | multi_domain (X-UMX: spectrogram MSE + time SDR + combinations).
        loss_args: arguments of the loss (multi_domain: alpha, combination, n_fft, hop).
        robust: mean (plain) | truncation (CCOM) | masking (KUIELab).
        quantile_schedule: [[epoch, quantile], ...]: from each epoch on, the batch quantile that
            truncation/masking keep below (1.0 keeps all).
        lr, weight_decay: Adam(W) settings.
        overlap: fraction of overlap between chunks of whole-song separation.
        log_audio_songs: test songs whose estimates are logged as audio (W&B).
    """

    # the validation score that picks checkpoints/best.ckpt (noisymss.trainer)
    monitor = ("val/usdr", "max")

    def __init__(self, sources: Sequence[str] = ("vocals", "drums", "bass", "other"), arch: str = "htdemucs",
                 size: str = "small", sample_rate: int = 44100, channels: int = 2, segment: float = 3.0,
                 model_args: dict[str, Any] | None = None, loss: str = "l1", loss_args: dict[str, Any] | None = None,
                 robust: str = "mean", quantile_schedule: Sequence[Sequence[float]] = ((0, 1.0),), lr: float = 3e-4,
                 weight_decay: float = 0.0, overlap: float = 0.25, log_audio_songs: int = 2):
        super().__init__()
        if not sources:
            raise ValueError("no sources: the model is built for a fixed list of classes; give them in data.init_args.classes "
                             "(the CLI copies them to the model)")
        if loss not in LOSSES:
            raise ValueError(f"loss '{loss}': choose one of {', '.join(LOSSES)}")
        if loss_args and loss != "multi_domain":
            raise ValueError(f"loss_args {loss_args} do nothing with loss '{loss}' (only multi_domain takes arguments); "
                             "remove them")
        if robust not in REDUCTIONS:
            raise ValueError(f"robust '{robust}': choose one of {', '.join(REDUCTIONS)}")
        for _, q in quantile_schedule:  # a bad schedule fails here, not epochs into training
            reduce_loss(torch.zeros(2, len(sources)), robust, q)
        self.save_hyperparameters()
        self.sources = list(sources)
        self.model = build_separator(arch, self.sources, size, sample_rate, channels, segment, **(model_args or {}))
        # X-UMX's loss is computed on the model's own STFT (its magnitudes, before the inverse STFT)
        self.magnitudes = loss == "multi_domain" and hasattr(self.model, "forward_with_magnitudes")
        stft_args = {"n_fft": self.model.n_fft, "hop": self.model.hop} if self.magnitudes else {}
        self.loss_fn = MultiDomainLoss(**{**stft_args, **(loss_args or {})}) if loss == "multi_domain" else l1_loss
        self.val_sdr = torch.nn.ModuleList(MeanMetric(nan_strategy="ignore") for _ in self.sources)
        self.test_sdr = torch.nn.ModuleList(MeanMetric(nan_strategy="ignore") for _ in self.sources)

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        """(B, C, T) mixture → (B, S, C, T) sources."""
        return self.model(mixture)

    def setup(self, stage: str) -> None:
        # every stage: a model of other sources, rate or segment than the data's would score wrong, silently
        dm = self.trainer.datamodule
        if dm is None or not hasattr(dm, "mixer"):
            return
        if list(dm.classes) != self.sources:
            raise ValueError(f"model sources {self.sources} differ from the data's classes {list(dm.classes)}; "
                             "set model.sources to match data.classes")
        recipe = dm.recipe
        if (recipe.sample_rate, recipe.channels) != (self.hparams.sample_rate, self.hparams.channels):
            raise ValueError(f"data recipe is {recipe.sample_rate} Hz, {recipe.channels} ch but the model is "
                             f"{self.hparams.sample_rate} Hz, {self.hparams.channels} ch; set model.sample_rate/channels")
        if recipe.segment != self.hparams.segment:
            raise ValueError(f"data recipe segment is {recipe.segment} s but the model's is {self.hparams.segment} s "
                             "(its training and whole-song chunk length); set model.segment to match")

    def on_fit_start(self) -> None:
        dm = self.trainer.datamodule
        if dm is None or not hasattr(dm, "mixer"):
            return
        recipe, mixer = dm.recipe, dm.mixer("train")
        if recipe.multi_label == "all" and (mixer.table.labels.sum(axis=1) > 1).any():
            raise ValueError(f"label version '{dm.label_version}' of {dm.catalog_path} has stems labelled with several "
                             "classes, which have no single source to be the target of; set data.recipe.multi_label "
                             "to exclude, interference or catch_all")
        pool = mixer.pool
        empty = [s for s, p in zip(self.sources, pool) if not len(p)]
        if empty:
            raise ValueError(f"label version '{dm.label_version}' of {dm.catalog_path} has no stem that can be a "
                             f"'{empty[0]}' target (multi_label policy '{recipe.multi_label}'); use a version with "
                             f"'{empty[0]}' stems or drop it from data.classes and model.sources")

    def quantile(self) -> float:
        return quantile_at(self.current_epoch, self.hparams.quantile_schedule)

    def model_step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The (robustly reduced) loss of a batch, and {'estimates': (B, S, C, T), 'kept': (B, S) bool}.

        Used by training, validation and the benchmarks, so all of them time and score one step.
        """
        if self.magnitudes:
            est, mag = self.model.forward_with_magnitudes(batch["mixture"])
            losses = self.loss_fn(est, batch["sources"], mag)  # (B, S)
        else:
            est = self(batch["mixture"])
            losses = self.loss_fn(est, batch["sources"])
        loss, keep = reduce_loss(losses, self.hparams.robust, self.quantile())
        return loss, {"estimates": est, "kept": keep}

    def training_step(self, batch: dict[str, torch.Tensor], _) -> torch.Tensor:
        loss, out = self.model_step(batch)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/kept", out["kept"].float().mean())
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], _) -> None:
        self._score(batch, self.val_sdr, "val")

    def test_step(self, batch: dict[str, torch.Tensor], _) -> None:
        self._score(batch, self.test_sdr, "test")

    def _score(self, batch: dict[str, torch.Tensor], metrics: torch.nn.ModuleList, stage: str) -> None:
        from noisymss.metrics.separation import utterance_sdr

        loss, out = self.model_step(batch)
        self.log(f"{stage}/loss", loss, sync_dist=True)
        refs = batch["sources"]
        sdr = utterance_sdr(out["estimates"], refs)  # (B, S)
        present = refs.pow(2).mean(dim=(-2, -1)).sqrt() > SILENT_RMS
        for s, metric in enumerate(metrics):
            metric.update(sdr[:, s][present[:, s]])

    # States are (re)made at each epoch start, in the grad mode that epoch runs in: a state made
    # under `validate`'s inference mode cannot be updated in place by a later fit's validation.
    def on_validation_epoch_start(self) -> None:
        for metric in self.val_sdr:
            metric.reset()

    def on_test_epoch_start(self) -> None:
        for metric in self.test_sdr:
            metric.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_sdr(self.val_sdr, "val/usdr")

    def on_test_epoch_end(self) -> None:
        self._log_sdr(self.test_sdr, "test/usdr")
        from noisymss.separation.song_scores import score_test_songs

        score_test_songs(self)

    def _log_sdr(self, metrics: torch.nn.ModuleList, prefix: str) -> None:
        values = []
        for name, metric in zip(self.sources, metrics):
            value = metric.compute()  # synced over ranks; NaN when the source was absent from every example
            metric.reset()
            if torch.isfinite(value):
                self.log(f"{prefix}/{name}", value)
                values.append(value)
        if values:
            self.log(prefix, torch.stack(values).mean(), prog_bar=prefix.startswith("val"))

    def separate(self, mixture: torch.Tensor, overlap: float | None = None, progress: bool = False) -> torch.Tensor:
        """Whole-song separation in overlap-added chunks of the training segment: (C, T) → (S, C, T)."""
        from noisymss.separation.chunked import separate_chunked

        chunk = int(round(self.hparams.segment * self.hparams.sample_rate))
        overlap = self.hparams.overlap if overlap is None else overlap
        was_training = self.training
        self.eval()
        try:
            return separate_chunked(self.model, mixture.to(self.device), chunk, overlap=overlap, progress=progress)
        finally:
            self.train(was_training)

    predict_suffix = ""  # a folder of stems per input

    def predict_file(self, path: Path, target: Path) -> list[Path]:
        """Writes `target/<source>.wav` for one input, at the input's rate and channels (as `noisymss separate`)."""
        from noisymss.separation.inference import Separator, separate_file

        hp = self.hparams
        self.eval()
        sep = Separator(self.model, self.sources, hp.sample_rate, hp.channels, hp.segment, hp.overlap, str(self.device))
        return separate_file(sep, path, target)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
