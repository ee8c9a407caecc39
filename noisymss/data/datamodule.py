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

from dataclasses import replace
from pathlib import Path
from typing import Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from noisymss.audio.cache import SegmentReader
from noisymss.audio.effects import Chain, Effect
from noisymss.data.catalog import GIVEN, Catalog, CatalogError
from noisymss.data.epochs import EpochSampler, current_epoch, epoch_and_index
from noisymss.data.mixer import Mixer, MixRecipe
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


class CatalogDataModule(L.LightningDataModule):
    """What every noisymss DataModule shares: a catalog, loaded once, which `prepare_data` renders as a
    demo corpus when the file is missing and `demo` is set.

    Args:
        catalog: the catalog CSV.
        demo: settings of the demo corpus to render next to `catalog` if it is missing (None: never).
    """

    def __init__(self, catalog: str, demo: SynthSettings | None = None):
        super().__init__()
        self.catalog_path, self.demo = Path(catalog), demo
        self._catalog: Catalog | None = None

    def prepare_data(self) -> None:
        if not self.catalog_path.is_file() and self.demo is not None:
            from noisymss.data.synth.corpus import synthesize

            synthesize(self.catalog_path.parent, self.demo)
            if not self.catalog_path.is_file():
                raise CatalogError(f"{self.catalog_path}: the demo corpus writes catalog.csv; point `catalog` at it")

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = Catalog.load(self.catalog_path)
        return self._catalog


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
        demo: if set and the catalog is missing, `prepare_data` renders this demo corpus next to it.
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
        demo: SynthSettings | None = None,
    ):
        super().__init__(catalog, demo)
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
        stems = self.catalog.stems(name)
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
