"""The project's Trainer: Lightning's, plus `refine`, which LightningCLI exposes as `noisymss refine`.

`refine` takes the same `--config` as `fit` (model, data, trainer), a `--ckpt_path`, and its own
settings. It runs under the Trainer's strategy, so `--trainer.devices 2 --trainer.strategy ddp`
shards the stems over two processes (the launcher starts them; each scores its share and the
scores are gathered on every rank); rank 0 writes the label version and the report.
"""
from __future__ import annotations

import copy
import glob
import json
import os
from pathlib import Path
from typing import Iterable

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import Logger

from noisymss.atomic import atomic_path, atomic_write_records, remove_partials
from noisymss.checkpoints import check_fits, load_checkpoint
from noisymss.lightning_compat import run_as_entry_point
from noisymss.loggers import run_loggers
from noisymss.refine import ProbabilityMean, check_thresholds, check_version

CHECKPOINTS = "checkpoints"  # the run folder's checkpoint folder
UNTRAINED = "untrained"  # --ckpt_path of validate/test scoring a model as its config builds it (a baseline)


class Trainer(L.Trainer):
    """Lightning's Trainer with the defaults every noisymss run shares, so configs don't repeat them.

    - `default_root_dir` is the run folder, named in this one place: unless `logger` is given (or
      False), the run logs there to W&B (offline unless logged in) and CSV (`noisymss.loggers`).
    - A checkpoint is written atomically at the end of every epoch into `<run folder>/checkpoints/`
      (`last.ckpt` and the latest epoch), with the random generators' states (`RandomState`), unless
      `callbacks` hold a ModelCheckpoint of their own or `enable_checkpointing` is False; and
      `best.ckpt`, the epoch with the best validation score the task names (its `monitor`).
      `keep_epochs` keeps every epoch's checkpoint (e.g. for a refine by the last epochs together).
    - `fit` in a run folder that holds checkpoints is refused (they would be overwritten) unless it
      resumes them: `ckpt_path="last"` picks the folder's `last.ckpt`, and is an error when there is none.
    - No sanity validation steps (a run's first validation comes after its first epoch).
    """

    def __init__(self, *, logger: Logger | Iterable[Logger] | bool | None = None,
                 callbacks: list[Callback] | Callback | None = None, num_sanity_val_steps: int | None = 0,
                 keep_epochs: bool = False, **kwargs):
        root = kwargs.get("default_root_dir") or os.getcwd()
        if logger is None or logger is True:
            logger = run_loggers(root)
        callbacks = list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks] if callbacks else []
        if kwargs.get("enable_checkpointing") is not False and not any(isinstance(c, ModelCheckpoint) for c in callbacks):
            callbacks.append(ModelCheckpoint(dirpath=os.path.join(root, CHECKPOINTS), save_last=True,
                                             save_top_k=-1 if keep_epochs else 1))
        from noisymss.callbacks.random_state import RandomState
        from noisymss.callbacks.results import RunResults  # test/validate scores as results/<stage>-<ckpt>.json

        for default in (RandomState, RunResults):
            if not any(isinstance(c, default) for c in callbacks):
                callbacks.append(default())
        super().__init__(logger=logger, callbacks=callbacks, num_sanity_val_steps=num_sanity_val_steps, **kwargs)

    def fit(self, model: L.LightningModule, train_dataloaders=None, val_dataloaders=None,
            datamodule: L.LightningDataModule | None = None, ckpt_path: str | None = None, weights_only: bool | None = None):
        """Lightning's `fit`; refuses to overwrite an earlier run's checkpoints (see the class docstring)."""
        ckpt_path = self._resume_path(ckpt_path)
        if self.is_global_zero:  # a checkpoint save cut short by a kill left its temp file
            for callback in self.checkpoint_callbacks:
                if isinstance(callback, ModelCheckpoint) and callback.dirpath:
                    remove_partials(callback.dirpath)
        _check_fits(model, ckpt_path)
        self._add_best_checkpoint(model)
        return super().fit(model, train_dataloaders, val_dataloaders, datamodule, ckpt_path, weights_only)

    def _add_best_checkpoint(self, model: L.LightningModule) -> None:
        """With our per-epoch checkpoint in place, also keep `checkpoints/best.ckpt`: the epoch with the best
        validation score the task names (`monitor = (metric, 'max' | 'min')`), so a score that swings from
        epoch to epoch never leaves the user with a bad last epoch only."""
        metric, mode = getattr(model, "monitor", (None, None))
        ours = [c for c in self.checkpoint_callbacks if isinstance(c, ModelCheckpoint) and c.dirpath]
        if not metric or not ours or any(isinstance(c, ModelCheckpoint) and c.monitor for c in self.checkpoint_callbacks):
            return
        self.callbacks.append(ModelCheckpoint(dirpath=ours[0].dirpath, filename="best", monitor=metric, mode=mode,
                                              save_top_k=1, auto_insert_metric_name=False, enable_version_counter=False))

    def validate(self, model: L.LightningModule | None = None, dataloaders=None, ckpt_path: str | None = None,
                 verbose: bool = True, datamodule: L.LightningDataModule | None = None, weights_only: bool | None = None):
        ckpt_path = self._resume_path(ckpt_path, fresh=False)
        _check_fits(model, ckpt_path)
        return super().validate(model, dataloaders, ckpt_path, verbose, datamodule, weights_only)

    def test(self, model: L.LightningModule | None = None, dataloaders=None, ckpt_path: str | None = None,
             verbose: bool = True, datamodule: L.LightningDataModule | None = None, weights_only: bool | None = None):
        ckpt_path = self._resume_path(ckpt_path, fresh=False)
        _check_fits(model, ckpt_path)
        return super().test(model, dataloaders, ckpt_path, verbose, datamodule, weights_only)

    def check(self, model: L.LightningModule, datamodule: L.LightningDataModule, ckpt_path: str | None = None,
              stage: str = "fit") -> bool:
        """The pre-flight check of a config, without training (`noisymss check --config ...`).

        Checks, from headers only, every catalog row `stage` needs (the file opens as audio, holds
        samples, converts to the task's channels; annotations exist), that every label is a class
        (or is reported) and every class and split has data; with `ckpt_path`, that the checkpoint
        is one of this task, size and classes. Prints every problem at once.

        Args:
            stage: what to check for: fit, validate, test or refine.

        Returns:
            True when a run of `stage` would start; otherwise a CatalogError lists every problem.
        """
        if stage not in ("fit", "validate", "test", "refine"):
            raise ValueError(f"--stage {stage}: choose fit, validate, test or refine")
        if ckpt_path:
            _check_fits(model, self._resume_path(ckpt_path, fresh=False))
        if not datamodule.catalog_path.is_file() and getattr(datamodule, "demo", None) is not None:
            datamodule.prepare_data()  # a missing demo catalog is rendered, as fit would; a mistyped path is refused
        report = datamodule.preflight(stage)  # what fit, test ... run first: the same notes, errors, skip_bad_rows
        print(f"ok: {report.checked} row(s) of {datamodule.catalog_path} checked for {stage}"
              + (f"; checkpoint {ckpt_path} fits the task" if ckpt_path else ""))
        return True

    def save_checkpoint(self, filepath, weights_only: bool | None = None, storage_options=None) -> None:
        """Lightning's `save_checkpoint`, written to a temp file beside `filepath` and renamed onto it.

        (Lightning saves through fsspec, whose local "transaction" writes in the system temp folder
        and moves the file: a copy, which a kill can cut short, when that is another file system.)
        """
        from lightning.fabric.plugins import TorchCheckpointIO

        # only rank 0 writes; remote stores and sharded (folder) checkpoints do their own
        if not self.is_global_zero or "://" in str(filepath) or type(self.strategy.checkpoint_io) is not TorchCheckpointIO:
            return super().save_checkpoint(filepath, weights_only, storage_options)
        with atomic_path(filepath) as tmp:
            super().save_checkpoint(tmp, weights_only, storage_options)

    def _resume_path(self, ckpt_path: str | None, fresh: bool = True) -> str | None:
        """`ckpt_path` with 'last' made the run folder's last.ckpt (an error when there is none) and
        'untrained' made None (scoring asked for explicitly, without weights: a baseline); for a
        `fresh` fit (no ckpt_path), an error when the run folder holds an earlier run's checkpoints."""
        folders = [Path(c.dirpath) for c in self.checkpoint_callbacks if isinstance(c, ModelCheckpoint) and c.dirpath]
        if ckpt_path == UNTRAINED:
            if fresh:
                raise ValueError(f"--ckpt_path {UNTRAINED}: only validate and test take it (a baseline scored as the "
                                 "config builds it); leave it out to start a new run")
            return None
        if ckpt_path == "last":
            found = [f / "last.ckpt" for f in folders if (f / "last.ckpt").is_file()]
            if not found:
                where = folders[0] if folders else self.default_root_dir
                raise ValueError(f"--ckpt_path last: no last.ckpt in {where}; "
                                 + ("leave --ckpt_path out to start a new run" if fresh else "give the checkpoint's path"))
            return str(max(found, key=lambda p: p.stat().st_mtime))
        if ckpt_path is None and fresh:
            for folder in folders:
                if folder.is_dir() and any(folder.glob("*.ckpt")):
                    raise ValueError(f"{folder}: holds the checkpoints of an earlier run; resume it with --ckpt_path last, "
                                     "or give this run its own --trainer.default_root_dir")
        return ckpt_path

    def predict(self, model: L.LightningModule | None = None, dataloaders=None, datamodule: L.LightningDataModule | None = None,
                return_predictions: bool | None = None, ckpt_path: str | None = None, weights_only: bool | None = None,
                files: list[str] | None = None, out: str = "predictions", overwrite: bool = False):
        """Lightning's `predict`; with `files`, writes the task's result for each audio file under `out`.

        Args:
            files: audio files to predict (melody: `<name>.f0.txt`; separator: `<name>/<source>.wav`;
                classifier: `<name>.labels.json`); inputs sharing a name keep their folders apart.
            out: the output folder.
            overwrite: replace results already in `out` (default: refuse before any work).
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
        ckpt_path = self._resume_path(ckpt_path, fresh=False)
        _check_fits(model, ckpt_path)
        loader = DataLoader(InputFiles(files, out, model.predict_suffix, overwrite), batch_size=1)
        written = super().predict(model, loader, None, True, ckpt_path, weights_only)
        if self.is_global_zero:
            count = sum(len(paths) for paths in written or [])
            print(f"wrote {count} file(s) for {len(files)} input(s) under {out}")
        return written

    def refine(
        self,
        model: L.LightningModule,
        datamodule: L.LightningDataModule,
        ckpt_path: str | list[str] | None = None,
        version: str = "refined",
        threshold: float | dict[str, float] = 0.5,
        window: float | None = None,
        hop: float | None = None,
        aggregate: str = "mean",
        silence_db: float = -50.0,
        split: str | None = None,
        batch_size: int = 16,
        margin_db: float = 20.0,
        calibrate: str | None = None,
    ) -> list[dict] | None:
        """Relabels every stem of the data's catalog with a trained classifier, as a new label version;
        or filters them with a trained separator (CCOM's automatic filter, SDX'23: each stem alone
        through the separator keeps its loudest source's label where that source is `margin_db`
        louder than every other, and gets none, so it is left out of training, where it is not).

        Args:
            model: the classifier task (its `classes` must be the data's), or a separator task (its
                `sources` must be).
            datamodule: a MixDataModule; its catalog is relabelled, its recipe gives rate and channels.
            ckpt_path: the trained classifier; or several (a list, or a glob pattern such as
                'runs/c/checkpoints/epoch=1[0-9]-*.ckpt'), whose probabilities are averaged: a
                temporal ensemble of a fit's late epochs (`--trainer.keep_epochs true` keeps them)
                steadies labels that single epochs flip back and forth.
            version: name of the new label version (an existing one is never replaced).
            threshold: probability above which a class is in the new label; one value or {class: value}.
            window, hop: seconds per scored window and between windows (default: the training
                segment, and half of it).
            aggregate: mean or max of the window probabilities.
            silence_db: windows quieter than this are not scored; a stem with none keeps its labels.
            split: relabel only this split's stems (default: all).
            batch_size: windows per forward pass.
            margin_db: the separator filter's margin (CCOM: 20 dB).
            calibrate: a split with trustworthy labels (the data's `eval_label_version`, e.g. the truth
                of a clean validation split): its stems are scored too, and each class's threshold is
                the one with the best F1 on them (`threshold` is then unused); those stems keep their labels.

        Returns:
            the report rows (per class, then 'all') on rank 0; None on other ranks.
        """
        from noisymss.refine import RefineSettings

        if not ckpt_path:
            raise ValueError("refine needs --ckpt_path: the trained classifier that relabels the stems")
        paths = checkpoint_list(ckpt_path) if not isinstance(ckpt_path, str) or set("*?[") & set(ckpt_path) else \
            [self._resume_path(ckpt_path, fresh=False)]  # 'last': the run folder's last.ckpt
        ckpt_path = " + ".join(str(p) for p in paths)  # the provenance of the version
        # everything that can be checked is checked before a stem is scored or a folder made
        datamodule.setup("refine")  # the pre-flight check of every stem
        catalog, classes = datamodule.catalog, list(datamodule.classes)
        splits = sorted({e.split for e in catalog.stems()})
        if split is not None and split not in splits:
            raise ValueError(f"--split {split}: no stems in that split of {catalog.path}; choose one of {', '.join(splits)}")
        check_thresholds(threshold, classes)
        if calibrate is not None and calibrate not in splits:
            raise ValueError(f"--calibrate {calibrate}: no stems in that split of {catalog.path}; choose one of {', '.join(splits)}")
        if calibrate is not None and calibrate == split:
            raise ValueError(f"--calibrate {calibrate}: the thresholds must come from other stems than those relabelled "
                             "(--split); give a validation split")
        recipe = datamodule.recipe
        window = window or recipe.segment
        settings = RefineSettings(sample_rate=recipe.sample_rate, channels=recipe.channels, window=window,
                                  hop=hop or window / 2, silence_db=silence_db, aggregate=aggregate, threshold=threshold,
                                  batch_size=batch_size, margin_db=margin_db, calibrate=calibrate)
        if check_version(catalog, version, {"checkpoint": str(ckpt_path)}, settings, classes, split):
            print(f"label version '{version}' was written by this same refine (same checkpoint, settings and split); "
                  "its report is made again from the kept scores")
        separator = hasattr(model, "sources")
        if separator and len(paths) > 1:
            raise ValueError("--ckpt_path: a separator filters with one checkpoint; give one")
        members = []
        for path in paths:
            ckpt = load_checkpoint(path)
            trained = list(ckpt.hparams.get("sources" if separator else "classes", []))
            if trained != classes:
                raise ValueError(f"{path}: its {'sources' if separator else 'classes'} {trained} differ from the "
                                 f"catalog's {classes}; use a checkpoint trained on these classes or set data.classes")
            check_fits(ckpt, model)
            member = copy.deepcopy(model) if len(paths) > 1 else model
            member.load_state_dict(ckpt.state_dict)
            members.append(member)
        model = members[0] if len(members) == 1 else ProbabilityMean(members)
        return run_as_entry_point(self, self._refine_impl, model, datamodule, str(ckpt_path), version, settings, split,
                                  classes)

    def _refine_impl(self, model, datamodule, ckpt_path, version, settings, split, classes) -> list[dict] | None:
        from noisymss.refine import flip_table, format_report, refine_catalog, refine_report, score_stem, separator_levels

        self.strategy.setup_environment()  # DDP: joins the process group the launcher set up
        model = model.to(self.strategy.root_device).eval()
        catalog = datamodule.catalog
        scorer = separator_levels if hasattr(model, "sources") else score_stem
        trusted = catalog.labels(getattr(datamodule, "eval_label_version", None) or datamodule.label_version) \
            if settings.calibrate else None
        labels, scores = refine_catalog(model, catalog, classes, settings, version, {"checkpoint": ckpt_path}, split=split,
                                        device=self.strategy.root_device, progress=self.is_global_zero,
                                        write=self.is_global_zero, scorer=scorer, trusted=trusted)
        if not self.is_global_zero:
            return None
        rows = refine_report(catalog, classes, labels, scores)
        flips = flip_table(catalog.labels(), labels, sorted(scores))
        chosen = catalog.provenance(version).get("thresholds") if settings.calibrate else None
        print((f"thresholds chosen on split '{settings.calibrate}': {chosen}\n" if chosen else "") +
              f"wrote label version '{version}' beside {catalog.path} (with {version}.probs.csv and {version}.flips.csv)\n"
              f"{format_report(rows)}\n\nstems from given -> refined labels\n{format_report(flips)}")
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


def _check_fits(model: L.LightningModule | None, ckpt_path: str | None) -> None:
    """Refuses, before any work, a checkpoint file whose weights do not fit `model`."""
    if model is not None and ckpt_path and ckpt_path not in ("last", "best", "hpc") and os.path.isfile(ckpt_path):
        check_fits(load_checkpoint(ckpt_path, mmap=True), model)  # shapes only: Lightning reads it for real


def _changed(catalog, labels, scores, settings, listen: int = 16, seconds: float = 10.0) -> tuple[list[list], list]:
    """Rows (id, given, refined, probabilities) of the stems whose labels changed, and the first
    `seconds` of the first `listen` of them as (id, (channels, samples) audio)."""
    from noisymss.audio.io import read_audio

    given = catalog.labels()
    paths = {e.id: e.path for e in catalog.stems()}
    changed = [k for k in scores if set(labels[k]) != set(given[k])]
    rows = [[k, "|".join(given[k]), "|".join(labels[k]), json.dumps(scores[k].probs or scores[k].levels_db)] for k in changed]
    clips = [(k, read_audio(catalog.resolve(paths[k]), 0.0, seconds, settings.sample_rate)) for k in changed[:listen]]
    return rows, clips


def checkpoint_list(ckpt_path: str | list[str]) -> list[str]:
    """The checkpoints a list or glob pattern names, sorted; a one-line error for a pattern or path
    that names none."""
    paths = []
    for item in [ckpt_path] if isinstance(ckpt_path, str) else list(ckpt_path):
        found = sorted(glob.glob(item)) if set("*?[") & set(item) else [item]
        if not found or not all(Path(f).is_file() for f in found):
            raise ValueError(f"--ckpt_path {item}: no checkpoint there; give existing .ckpt paths or a glob pattern")
        paths += found
    return paths
