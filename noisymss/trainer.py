"""The project's Trainer: Lightning's, plus `refine`, which LightningCLI exposes as `noisymss refine`.

`refine` takes the same `--config` as `fit` (model, data, trainer), a `--ckpt_path`, and its own
settings. It runs under the Trainer's strategy, so `--trainer.devices 2 --trainer.strategy ddp`
shards the stems over two processes (the launcher starts them; each scores its share and the
scores are gathered on every rank); rank 0 writes the label version and the report.
"""
from __future__ import annotations

import json
import os
from typing import Iterable

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import Logger

from noisymss.atomic import atomic_write_records
from noisymss.checkpoints import load_checkpoint
from noisymss.lightning_compat import run_as_entry_point
from noisymss.loggers import run_loggers


class Trainer(L.Trainer):
    """Lightning's Trainer with the defaults every noisymss run shares, so configs don't repeat them.

    - `default_root_dir` is the one place a run's folder is named: unless `logger` is given (or
      False), the run logs there to W&B (offline unless logged in) and CSV (`noisymss.loggers`).
    - A checkpoint is written at the end of every epoch (`last.ckpt` and the latest epoch), unless
      `callbacks` hold a ModelCheckpoint of their own or `enable_checkpointing` is False.
    - No sanity validation steps (a run's first validation comes after its first epoch).
    """

    def __init__(self, *, logger: Logger | Iterable[Logger] | bool | None = None,
                 callbacks: list[Callback] | Callback | None = None, num_sanity_val_steps: int | None = 0, **kwargs):
        if logger is None or logger is True:
            logger = run_loggers(kwargs.get("default_root_dir") or os.getcwd())
        callbacks = list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks] if callbacks else []
        if kwargs.get("enable_checkpointing") is not False and not any(isinstance(c, ModelCheckpoint) for c in callbacks):
            callbacks.append(ModelCheckpoint(save_last=True))
        from noisymss.callbacks.results import RunResults  # test/validate scores as results/<stage>-<ckpt>.json

        if not any(isinstance(c, RunResults) for c in callbacks):
            callbacks.append(RunResults())
        super().__init__(logger=logger, callbacks=callbacks, num_sanity_val_steps=num_sanity_val_steps, **kwargs)

    def predict(self, model: L.LightningModule | None = None, dataloaders=None, datamodule: L.LightningDataModule | None = None,
                return_predictions: bool | None = None, ckpt_path: str | None = None, weights_only: bool | None = None,
                files: list[str] | None = None, out: str = "predictions"):
        """Lightning's `predict`; with `files`, writes the task's result for each audio file under `out`.

        Args:
            files: audio files to predict (melody: `<name>.f0.txt`; separator: `<name>/<source>.wav`;
                classifier: `<name>.labels.json`); inputs sharing a name keep their folders apart.
            out: the output folder.
            ckpt_path: the trained model (required with `files`: predictions of random weights are refused).
        """
        if not files:
            return super().predict(model, dataloaders, datamodule, return_predictions, ckpt_path, weights_only)
        from torch.utils.data import DataLoader

        from noisymss.data.files import InputFiles

        if not ckpt_path:
            raise ValueError("predict needs --ckpt_path: the trained model whose predictions to write")
        if not hasattr(model, "predict_file"):
            raise ValueError(f"{type(model).__name__} writes no predictions for files")
        loader = DataLoader(InputFiles(files, out, model.predict_suffix), batch_size=1)
        written = super().predict(model, loader, None, True, ckpt_path, weights_only)
        if self.is_global_zero:
            count = sum(len(paths) for paths in written or [])
            print(f"wrote {count} file(s) for {len(files)} input(s) under {out}")
        return written

    def refine(
        self,
        model: L.LightningModule,
        datamodule: L.LightningDataModule,
        ckpt_path: str | None = None,
        version: str = "refined",
        threshold: float | dict[str, float] = 0.5,
        window: float | None = None,
        hop: float | None = None,
        aggregate: str = "mean",
        silence_db: float = -50.0,
        split: str | None = None,
        batch_size: int = 16,
    ) -> list[dict] | None:
        """Relabels every stem of the data's catalog with a trained classifier, as a new label version.

        Args:
            model: the classifier task (its `classes` must be the data's).
            datamodule: a MixDataModule; its catalog is relabelled, its recipe gives rate and channels.
            ckpt_path: the trained classifier.
            version: name of the new label version (an existing one is never replaced).
            threshold: probability above which a class is in the new label; one value or {class: value}.
            window, hop: seconds per scored window and between windows (default: the training
                segment, and half of it).
            aggregate: mean or max of the window probabilities.
            silence_db: windows quieter than this are not scored; a stem with none keeps its labels.
            split: relabel only this split's stems (default: all).
            batch_size: windows per forward pass.

        Returns:
            the report rows (per class, then 'all') on rank 0; None on other ranks.
        """
        from noisymss.refine import RefineSettings

        if not ckpt_path:
            raise ValueError("refine needs --ckpt_path: the trained classifier that relabels the stems")
        ckpt = load_checkpoint(ckpt_path)
        classes = list(ckpt.hparams.get("classes", []))
        datamodule.setup()
        if classes != list(datamodule.classes):
            raise ValueError(f"{ckpt_path}: classifier classes {classes} differ from the catalog's {list(datamodule.classes)}; "
                             "use a checkpoint trained on these classes or set data.classes")
        model.load_state_dict(ckpt.state_dict)
        recipe = datamodule.recipe
        window = window or recipe.segment
        settings = RefineSettings(sample_rate=recipe.sample_rate, channels=recipe.channels, window=window,
                                  hop=hop or window / 2, silence_db=silence_db, aggregate=aggregate, threshold=threshold,
                                  batch_size=batch_size)
        return run_as_entry_point(self, self._refine_impl, model, datamodule, str(ckpt_path), version, settings, split,
                                  classes)

    def _refine_impl(self, model, datamodule, ckpt_path, version, settings, split, classes) -> list[dict] | None:
        from noisymss.refine import format_report, refine_catalog, refine_report

        self.strategy.setup_environment()  # DDP: joins the process group the launcher set up
        model = model.to(self.strategy.root_device).eval()
        catalog = datamodule.catalog
        labels, scores = refine_catalog(model, catalog, classes, settings, version, {"checkpoint": ckpt_path}, split=split,
                                        device=self.strategy.root_device, progress=self.is_global_zero,
                                        write=self.is_global_zero)
        if not self.is_global_zero:
            return None
        rows = refine_report(catalog, classes, labels, scores)
        print(f"wrote label version '{version}' beside {catalog.path}\n{format_report(rows)}")
        report = catalog.versions_dir / f"{version}.report.csv"
        atomic_write_records(report, rows)
        for logger in self.loggers:
            logger.log_metrics({f"refine/{k}": float(v) for k, v in rows[-1].items() if isinstance(v, (int, float))})
            if hasattr(logger, "log_table"):  # W&B: the stems whose labels changed, and a listen to a few
                table, clips = _changed(catalog, labels, scores, settings)
                logger.log_table("refine/changed_stems", columns=["id", "given", "refined", "probabilities"], data=table)
                if clips and hasattr(logger, "log_audio"):  # (W&B tables store audio cells as a bare name)
                    logger.log_audio("refine/changed_stems_audio", [c.T for _, c in clips],
                                     sample_rate=[settings.sample_rate] * len(clips),
                                     caption=[f"{k}: {r[1]} -> {r[2]}" for (k, _), r in zip(clips, table)])
            logger.finalize("success")
        return rows


def _changed(catalog, labels, scores, settings, listen: int = 16, seconds: float = 10.0) -> tuple[list[list], list]:
    """Rows (id, given, refined, probabilities) of the stems whose labels changed, and the first
    `seconds` of the first `listen` of them as (id, (channels, samples) audio)."""
    from noisymss.audio.io import read_audio

    given = catalog.labels()
    paths = {e.id: e.path for e in catalog.stems()}
    changed = [k for k in scores if set(labels[k]) != set(given[k])]
    rows = [[k, "|".join(given[k]), "|".join(labels[k]), json.dumps(scores[k].probs)] for k in changed]
    clips = [(k, read_audio(catalog.resolve(paths[k]), 0.0, seconds, settings.sample_rate)) for k in changed[:listen]]
    return rows, clips


