"""The DataModule family: CatalogDataModule (what every noisymss DataModule shares) and MixDataModule,
the classifier and separator view over the Mixer (the melody view is `noisymss.data.melody`).

Labels are state: the label version in use (name + {id: classes}) lives in `state_dict()`, so a
checkpoint resumes with the labels it was trained on, and `setup()` (which Lightning calls on
every `fit`) never resets them. Datasets are rebuilt in `train_dataloader()`, so new labels from
a relabel step take effect when Lightning reloads loaders (`reload_dataloaders_every_n_epochs=1`).
New examples every epoch do not depend on that flag: the training sampler carries the epoch
(`noisymss.data.epochs`).
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from noisymss.audio.cache import SegmentReader
from noisymss.audio.effects import Chain, Effect
from noisymss.data.catalog import GIVEN, TRUE, Catalog, CatalogError
from noisymss.data.epochs import EpochSampler, current_epoch, epoch_and_index
from noisymss.data.mixer import Mixer, MixRecipe
from noisymss.data.preflight import Report, check_labels, check_rows
from noisymss.data.synth.corpus import SynthSettings
from noisymss.data.table import StemTable

OUTPUTS = ("mixture", "sources", "label", "f0")


class MixDataset(Dataset):
    """`length` examples of one stream from a Mixer, as dicts of tensors; keyed by index or (epoch, index)."""

    def __init__(self, mixer: Mixer, length: int, stream: str, outputs: Sequence[str]):
        self.mixer, self.length, self.stream, self.outputs = mixer, length, stream, tuple(outputs)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        ex = self.mixer.example(*epoch_and_index(key), self.stream)
        values = {"mixture": ex.mixture, "sources": ex.sources, "label": ex.label, "f0": ex.f0}
        return {k: torch.from_numpy(values[k]) for k in self.outputs}


@dataclass(frozen=True)
class DemoCorpus(SynthSettings):
    """A demo corpus a data config may render: the synth settings, and the one catalog it renders.

    `catalog` must equal the DataModule's catalog for the demo to be rendered, so a mistyped
    catalog path is an error, not a fresh demo corpus in a new folder."""

    catalog: str = ""

    def synth_settings(self) -> SynthSettings:
        """The settings `synthesize` renders with (everything but `catalog`)."""
        return SynthSettings(**{f.name: getattr(self, f.name) for f in fields(SynthSettings)})


class CatalogDataModule(L.LightningDataModule):
    """What every noisymss DataModule shares: a catalog, loaded once; the demo corpus that
    `prepare_data` renders when the catalog is missing; and the pre-flight check of the rows a
    stage needs (`noisymss.data.preflight`), run by `setup(stage)` before any work.

    Args:
        catalog: the catalog CSV.
        demo: the demo corpus to render if `catalog` is missing and is `demo.catalog` (None: never).
        skip_bad_rows: leave rows that fail the check out (counted and listed) instead of stopping.
    """

    def __init__(self, catalog: str, demo: DemoCorpus | None = None, skip_bad_rows: bool = False):
        super().__init__()
        self.catalog_path, self.demo, self.skip_bad_rows = Path(catalog), demo, skip_bad_rows
        self._catalog: Catalog | None = None
        self.bad_rows: dict[str, str] = {}  # {row id: why}, rows left out under skip_bad_rows
        self._checked: set[str] = set()

    def prepare_data(self) -> None:
        if self.catalog_path.is_file() or self.demo is None:
            return
        if Path(self.demo.catalog).resolve() != self.catalog_path.resolve():
            raise CatalogError(f"{self.catalog_path}: no such catalog (the config's demo corpus renders only "
                               f"{self.demo.catalog or '(demo.catalog not set)'}); check the path, or make one with `noisymss index`")
        from noisymss.data.synth.corpus import synthesize

        synthesize(self.catalog_path.parent, self.demo.synth_settings())
        if not self.catalog_path.is_file():
            raise CatalogError(f"{self.catalog_path}: the demo corpus writes catalog.csv; point `catalog` at it")

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = Catalog.load(self.catalog_path)
        return self._catalog

    def check(self, stage: str) -> Report:
        """The pre-flight report of what `stage` ('fit', 'validate', 'test', 'refine') needs."""
        raise NotImplementedError

    def preflight(self, stage: str) -> Report | None:
        """Runs `check(stage)` once per stage: prints its notes, and raises a CatalogError listing every
        problem (bad rows too, unless `skip_bad_rows`, which leaves them out with a count).

        Returns:
            the report (None when this stage was checked before, or needs no catalog: predict).
        """
        if stage in self._checked or stage == "predict":
            return None
        report = self.check(stage)
        loud = self.trainer is None or self.trainer.is_global_zero
        for note in report.notes * loud:
            print(f"note: {note}")
        if report.problems or (report.bad_rows and not self.skip_bad_rows):
            raise report.error(self.catalog_path, "data.init_args.skip_bad_rows")
        if report.bad_rows and loud:
            print(f"left out {len(report.bad_rows)} bad row(s) of {report.checked} (skip_bad_rows):\n  " + "\n  ".join(report.lines()))
        self.bad_rows.update(report.bad_rows)
        self._checked.add(stage)
        return report


class MixDataModule(CatalogDataModule):
    """Random mixtures of a catalog's stems for training, validation and testing.

    Args:
        catalog: the catalog CSV.
        classes: class names, in output order (the catalog's classes when None).
        label_version: label version to start from ('given', 'true' where the catalog knows the truth,
            or a version written beside the catalog).
        eval_label_version: labels of validation and test mixtures (None: the training labels, as
            one has with only noisy data; 'true' scores against the truth).
        recipe: how examples are drawn (same recipe for every split; validation/test use fixed seeds).
        effects: per-stem effects applied to training examples only.
        outputs: which of mixture, sources, label, f0 the batches hold (sources are large: ask only if needed).
        splits: catalog split names for train, validation and test.
        train_examples, val_examples, test_examples: examples per epoch / in the fixed sets.
        batch_size, num_workers: loader settings.
        seed: base seed; train examples depend on (seed, epoch, index), validation/test on (seed, index).
        cache_dir: decoded-audio cache folder (None reads the files directly).
        demo: the demo corpus `prepare_data` renders if the catalog is missing (see CatalogDataModule).
        skip_bad_rows: leave stems that fail the pre-flight check out instead of stopping.
    """

    def __init__(
        self,
        catalog: str,
        classes: Sequence[str] | None = None,
        label_version: str = GIVEN,
        eval_label_version: str | None = None,
        recipe: MixRecipe | None = None,
        effects: list[Effect] | None = None,
        outputs: Sequence[str] = ("mixture", "label"),
        splits: tuple[str, str, str] = ("train", "valid", "test"),
        train_examples: int = 1000,
        val_examples: int = 64,
        test_examples: int = 64,
        batch_size: int = 8,
        num_workers: int = 0,
        seed: int = 0,
        cache_dir: str | None = None,
        demo: DemoCorpus | None = None,
        skip_bad_rows: bool = False,
    ):
        super().__init__(catalog, demo, skip_bad_rows)
        unknown = [o for o in outputs if o not in OUTPUTS]
        if unknown:
            raise ValueError(f"outputs {unknown}: choose from {', '.join(OUTPUTS)}")
        self.requested_classes = list(classes) if classes else None
        self.recipe = recipe or MixRecipe()
        if "f0" in outputs and not self.recipe.with_f0:
            self.recipe = replace(self.recipe, with_f0=True)
        self.effects = Chain(effects) if effects else None
        self.outputs = tuple(outputs)
        self.splits = splits
        self.sizes = {"train": train_examples, "valid": val_examples, "test": test_examples}
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.cache_dir = cache_dir
        self.label_version, self.eval_label_version = label_version, eval_label_version
        self.labels: dict[str, tuple[str, ...]] | None = None  # set in setup() or restored from a checkpoint

    # ------------------------------------------------------------------ data
    def setup(self, stage: str | None = None) -> None:
        if self.labels is None:  # never reset labels a relabel step or a checkpoint has set
            self.labels = self.catalog.labels(self.label_version)
        if stage:
            self.preflight(stage)

    def check(self, stage: str) -> Report:
        report = Report()
        needs = {"fit": ("train", "valid"), "validate": ("valid",), "test": ("test",)}.get(stage)
        if needs is None:  # refine: every stem of the catalog
            check_rows(self.catalog, self.catalog.stems(), self.recipe.channels, report)
            return report
        scored = [e for e in self.catalog.stems() if e.split in {self.splits[1], self.splits[2]}]
        if self.eval_label_version is None and scored and not all(e.true_labels for e in scored):
            report.notes.append("validation and test score against the training labels (eval_label_version null) "
                                "and the catalog does not know the truth: where the labels are noisy, so are the scores")
        for split in needs:
            try:
                name, labels = self.split_labels(split)
            except CatalogError as err:  # e.g. scoring against a truth the catalog does not have
                report.problems.append(str(err))
                continue
            stems = self.catalog.stems(name)
            if not stems:
                report.problems.append(f"no stems in split '{name}' (data.init_args.splits); "
                                       f"the catalog has {sorted({e.split for e in self.catalog.stems()})}")
                continue
            check_rows(self.catalog, stems, self.recipe.channels, report)
            # a class without stems stops training on a catalog's labels; under labels a relabel step
            # made (restored from a checkpoint) it is reported, as that step's own result
            fatal = split == "train" and self.label_version in (GIVEN, TRUE, *self.catalog.label_versions())
            check_labels(stems, labels, self.classes, name, report, fatal=fatal)
        return report

    @property
    def classes(self) -> list[str]:
        if self.requested_classes:
            return self.requested_classes
        return self.catalog.classes()

    def set_labels(self, version: str, labels: dict[str, Sequence[str]]) -> None:
        """Switches to new labels (from a refine or a teacher); loaders built afterwards use them."""
        self.label_version, self.labels = version, {k: tuple(v) for k, v in labels.items()}

    def mixer(self, split: str) -> Mixer:
        """A Mixer over the stems of `split` ('train', 'valid' or 'test') under the current labels."""
        name, labels = self.split_labels(split)
        stems = [e for e in self.catalog.stems(name) if e.id not in self.bad_rows]
        if not stems:
            raise CatalogError(f"{self.catalog_path}: no stems in split '{name}'; have {sorted({e.split for e in self.catalog})}")
        table = StemTable.build(self.catalog, stems, self.classes, labels)
        effects = self.effects if split == "train" else None
        return Mixer(table, self.recipe, effects, SegmentReader(self.cache_dir), seed=self.seed)

    def _loader(self, split: str) -> DataLoader:
        dataset = MixDataset(self.mixer(split), self.sizes[split], split, self.outputs)
        # Examples are already random draws: in-order keys keep them a pure function of the key, and
        # under DDP Lightning's distributed sampler gives each rank disjoint keys. Training keys
        # carry the epoch; validation and test sets are fixed.
        sampler = EpochSampler(len(dataset), current_epoch(self.trainer)) if split == "train" else None
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, shuffle=False,
                          num_workers=self.num_workers, persistent_workers=False, drop_last=split == "train")

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("valid")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict:
        return {"label_version": self.label_version, "labels": {k: "|".join(v) for k, v in (self.labels or {}).items()}}

    def load_state_dict(self, state: dict) -> None:
        self.label_version = state["label_version"]
        self.labels = {k: tuple(x for x in v.split("|") if x) for k, v in state["labels"].items()}

    def split_labels(self, split: str) -> tuple[str, dict[str, tuple[str, ...]]]:
        """The catalog split behind `split` ('train', 'valid' or 'test') and the labels its mixtures are
        made with: the labels in use for training; `eval_label_version`'s, when set, for valid and test."""
        self.setup()
        name = dict(zip(("train", "valid", "test"), self.splits))[split]
        labels = self.labels if split == "train" or not self.eval_label_version else self.catalog.labels(self.eval_label_version)
        return name, labels


def describe_batch(batch: dict[str, torch.Tensor], classes: Sequence[str]) -> str:
    """One line per example: the classes in its label and its mixture level, for summaries."""
    lines = []
    for i in range(len(batch["mixture"])):
        names = [c for c, on in zip(classes, batch["label"][i].tolist()) if on] if "label" in batch else []
        rms = float(batch["mixture"][i].pow(2).mean().sqrt())
        lines.append(f"  [{i}] {'+'.join(names) or '(none)':<28} rms {20 * np.log10(rms + 1e-12):6.1f} dBFS")
    return "\n".join(lines)
