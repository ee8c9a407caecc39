"""Melody data: labelled songs (mixture + f0), unlabelled songs (mixtures) with pseudo labels, whole-song evaluation.

Labelled patches are cut from the labelled songs' mixtures or, with `remix`, mixed on the fly from
their stems by the shared Mixer (a song's vocals over accompaniment from any labelled song).

Training items are 31-frame patches of 8 kHz mono audio, drawn as a pure function of
(seed, epoch, index). A labelled patch carries its f0 classes; an unlabelled one carries the
teacher's top-k pitch distribution for its frames. Pseudo labels are state: the label version
name, the teacher iteration and {song id: (top-k classes, top-k probabilities)} are in
`state_dict()`, so a checkpoint resumes with the same teacher labels.

Noise (the three setups of Kum et al. 2020, arXiv:2008.06358), set by the TeacherStudent callback:
    basic                  no augmentation;
    noisy_student          the teacher labels clean audio; student patches get RandAudioAugment;
    noisy_teacher_student  each unlabelled song gets one fixed RandAudioAugment draw per
                           iteration; the teacher labels that audio and the student trains on it.
"""
from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from noisymss.audio.cache import SegmentReader
from noisymss.audio.randaugment import RandAudioAugment
from noisymss.data.catalog import Catalog, CatalogError
from noisymss.data.epochs import EpochSampler, current_epoch, epoch_and_index
from noisymss.data.mixer import Mixer, MixRecipe
from noisymss.data.seeds import generator
from noisymss.data.songs import Songs
from noisymss.data.table import StemTable
from noisymss.data.synth.corpus import SynthSettings
from noisymss.melody.features import HOP, PATCH, SAMPLE_RATE
from noisymss.melody.pitch import hz_to_class

NOISE_MODES = ("basic", "noisy_student", "noisy_teacher_student")
PATCH_SAMPLES = (PATCH - 1) * HOP  # centred STFT frames: 1 + 2400 // 80 = 31 frames


def check_mode(mode: str) -> str:
    if mode not in NOISE_MODES:
        raise ValueError(f"unknown teacher-student mode '{mode}'; choose one of {', '.join(NOISE_MODES)}")
    return mode


class PatchDataset(Dataset):
    """Training patches: labelled with probability 1 / (1 + unlabelled_ratio), else pseudo-labelled.

    A labelled patch is cut from a labelled song's mixture, or, with probability `remix`, drawn
    by `remixer` (a Mixer over the labelled songs' stems at 8 kHz mono that returns f0).
    """

    def __init__(self, labelled: Songs, unlabelled: Songs | None, pseudo: dict, length: int, seed: int,
                 unlabelled_ratio: float, top_k: int, augment_labelled: bool = False, augment_unlabelled: bool = False,
                 remixer: Mixer | None = None, remix: float = 0.0):
        self.remixer, self.remix = remixer, remix if remixer is not None else 0.0
        self.labelled, self.unlabelled, self.pseudo = labelled, unlabelled, pseudo
        self.length, self.seed = length, seed
        self.unlabelled_ids = [i for i, k in enumerate(unlabelled.ids) if k in pseudo] if unlabelled else []
        self.p_unlabelled = unlabelled_ratio / (1 + unlabelled_ratio) if self.unlabelled_ids else 0.0
        self.augment = RandAudioAugment()
        self.augment_labelled, self.augment_unlabelled, self.top_k = augment_labelled, augment_unlabelled, top_k

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = epoch_and_index(key)
        rng = generator(self.seed, "melody/patch", epoch, index)
        idx = np.zeros((PATCH, self.top_k), np.int64)
        prob = np.zeros((PATCH, self.top_k), np.float32)
        if rng.random() < self.p_unlabelled:
            song = self.unlabelled_ids[rng.integers(len(self.unlabelled_ids))]
            audio, start = _patch(self.unlabelled.audio[song], rng)
            k_idx, k_prob = self.pseudo[self.unlabelled.ids[song]]
            frames = slice(start // HOP, start // HOP + PATCH)
            got = k_idx[frames].shape[0]
            idx[:got], prob[:got] = k_idx[frames][:, :self.top_k], k_prob[frames][:, :self.top_k]
            labelled = False
        else:
            if self.remix and rng.random() < self.remix:
                example = self.remixer.example(epoch, index)
                audio, f0 = example.mixture[0, :PATCH_SAMPLES], example.f0[:PATCH]
            else:
                song = int(rng.integers(len(self.labelled)))
                audio, start = _patch(self.labelled.audio[song], rng)
                f0 = self.labelled.f0[song][start // HOP:start // HOP + PATCH]
            known = np.isfinite(f0)  # NaN: the remix holds another annotated melody, so no truth
            idx[:len(f0), 0] = np.where(known, hz_to_class(np.nan_to_num(f0)), 0)
            prob[:len(f0), 0] = known
            labelled = True
        if self.augment_labelled if labelled else self.augment_unlabelled:
            audio = self.augment(audio[None], SAMPLE_RATE, rng)[0]
        mask = prob.sum(axis=1) > 0  # frames with a target (pseudo frames below the confidence floor are 0)
        return {"audio": torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)), "target_idx": torch.from_numpy(idx),
                "target_prob": torch.from_numpy(prob), "mask": torch.from_numpy(mask), "labelled": torch.tensor(labelled)}


class SongDataset(Dataset):
    """Whole songs for evaluation: {'audio': (samples,), 'f0': (frames,), 'index', 'id'} (batch size 1)."""

    def __init__(self, songs: Songs):
        self.songs = songs

    def __len__(self) -> int:
        return len(self.songs)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"audio": torch.from_numpy(self.songs.audio[i]), "f0": torch.from_numpy(self.songs.f0[i]), "index": torch.tensor(i),
                "id": self.songs.ids[i]}


def _patch(audio: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A PATCH-frame window starting on a frame boundary (zero-padded for short songs)."""
    frames = max(len(audio) // HOP - PATCH + 1, 1)
    start = int(rng.integers(frames)) * HOP
    seg = audio[start:start + PATCH_SAMPLES]
    if len(seg) < PATCH_SAMPLES:
        seg = np.pad(seg, (0, PATCH_SAMPLES - len(seg)))
    return seg, start


class MelodyDataModule(L.LightningDataModule):
    """Labelled + unlabelled songs of a catalog for JDC training, and annotated songs for evaluation.

    Args:
        catalog: catalog CSV; songs are its mixture rows (labelled ones need an f0 annotation).
        labelled_split, unlabelled_split, val_split, test_split: catalog split names
            (unlabelled_split None: supervised only). Unlabelled songs' annotations are never read.
        train_examples: patches per epoch; batch_size, num_workers: loader settings.
        unlabelled_ratio: unlabelled patches per labelled patch (once pseudo labels exist).
        top_k: teacher classes kept per frame (soft labels are stored compactly).
        remix: fraction of labelled patches mixed on the fly from the labelled songs' stems instead
            of cut from their mixtures: the vocal stem of one song (always) with each other class
            present with probability `remix_accompaniment`, taken from any labelled song (or the
            same song with `remix_same_song`), so each melody is heard against many backings.
            Needs the labelled split's stems in the catalog, the vocal stems with f0 annotations.
        cache_dir: decoded-audio cache for the remixed stems (None: seek and decode every read).
        seed: base seed of the patch streams and the per-song noise.
        demo: if set and the catalog is missing, `prepare_data` renders this demo corpus next to it.
    """

    def __init__(
        self,
        catalog: str,
        labelled_split: str = "labelled",
        unlabelled_split: str | None = "unlabelled",
        val_split: str = "valid",
        test_split: str = "test",
        train_examples: int = 2048,
        batch_size: int = 32,
        num_workers: int = 0,
        unlabelled_ratio: float = 1.0,
        top_k: int = 8,
        remix: float = 0.0,
        remix_accompaniment: float = 0.75,
        remix_same_song: bool = False,
        cache_dir: str | None = None,
        seed: int = 0,
        demo: SynthSettings | None = None,
    ):
        super().__init__()
        self.catalog_path = Path(catalog)
        self.splits = {"labelled": labelled_split, "unlabelled": unlabelled_split, "valid": val_split, "test": test_split}
        self.train_examples, self.batch_size, self.num_workers = train_examples, batch_size, num_workers
        self.unlabelled_ratio, self.top_k, self.seed, self.demo = unlabelled_ratio, top_k, seed, demo
        if not 0.0 <= remix <= 1.0:
            raise ValueError(f"remix={remix}: give the fraction of labelled patches to remix, between 0 and 1")
        self.remix, self.remix_accompaniment, self.remix_same_song = remix, remix_accompaniment, remix_same_song
        self.cache_dir = cache_dir
        self._remixer: Mixer | None = None
        self.songs: dict[str, Songs] = {}
        self._catalog: Catalog | None = None
        self.noise_mode = "basic"
        # label state (checkpointed)
        self.label_version = "none"
        self.iteration = 0
        self.pseudo: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._heard: tuple[int, dict] = (-1, {})

    def prepare_data(self) -> None:
        if not self.catalog_path.is_file() and self.demo is not None:
            from noisymss.data.synth.corpus import synthesize

            synthesize(self.catalog_path.parent, self.demo)

    def setup(self, stage: str | None = None) -> None:
        # Unlabelled songs are decoded when a teacher first asks for them (`unlabelled_audio`), so a
        # supervised run (no TeacherStudent) never reads them.
        roles = {"fit": ("labelled", "valid"), "validate": ("valid",), "test": ("test",)}
        for role in roles.get(stage or "fit", ("labelled", "valid")):
            self.load(role)

    def load(self, role: str) -> Songs | None:
        """The songs of one role (labelled, unlabelled, valid, test), decoded on first use."""
        split = self.splits[role]
        if role in self.songs or split is None:
            return self.songs.get(role)
        if self._catalog is None:
            self._catalog = Catalog.load(self.catalog_path)
        rows = self._catalog.mixtures(split)
        if not rows and role != "unlabelled":
            raise CatalogError(f"{self.catalog_path}: no mixtures in split '{split}' (for {role}); "
                               f"have {sorted({e.split for e in self._catalog.mixtures()})}")
        songs = Songs.load(self._catalog, rows, SAMPLE_RATE, with_f0=role != "unlabelled")
        for song_id, reason in songs.skipped:
            print(f"skipped {role} song {song_id}: {reason}")
        self.songs[role] = songs
        return songs

    # --------------------------------------------------------------- teacher
    def unlabelled_audio(self) -> dict[str, np.ndarray]:
        """{id: 8 kHz mono audio} of the unlabelled songs as the teacher should hear them in this iteration."""
        songs = self.load("unlabelled")
        if songs is None:
            return {}
        if self.noise_mode != "noisy_teacher_student":
            return dict(zip(songs.ids, songs.audio))
        if self._heard[0] != self.iteration:  # one fixed draw per song and iteration, made once
            self._heard = (self.iteration, {k: self._fixed_noise(i, x) for i, (k, x) in enumerate(zip(songs.ids, songs.audio))})
        return self._heard[1]

    def _fixed_noise(self, song: int, audio: np.ndarray) -> np.ndarray:
        rng = generator(self.seed, "melody/teacher_noise", self.iteration, song)
        return RandAudioAugment()(audio[None], SAMPLE_RATE, rng)[0]

    def set_labels(self, version: str, labels: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Installs a teacher's labels ({song id: (top-k classes, top-k probabilities) per frame});
        loaders built afterwards train on them. (The label-state protocol of `noisymss.callbacks.relabel`.)"""
        self.label_version, self.pseudo = version, dict(labels)

    # ---------------------------------------------------------------- loaders
    def train_dataloader(self) -> DataLoader:
        unlabelled = self.load("unlabelled") if self.pseudo else None
        if unlabelled is not None and self.noise_mode == "noisy_teacher_student" and self.pseudo:
            heard = self.unlabelled_audio()
            unlabelled = Songs(list(heard), list(heard.values()), [None] * len(heard), SAMPLE_RATE)
        noisy = self.noise_mode != "basic"
        dataset = PatchDataset(self.load("labelled"), unlabelled, self.pseudo, self.train_examples, self.seed,
                               self.unlabelled_ratio, self.top_k, augment_labelled=noisy,
                               augment_unlabelled=self.noise_mode == "noisy_student",
                               remixer=self.remixer() if self.remix else None, remix=self.remix)
        sampler = EpochSampler(len(dataset), current_epoch(self.trainer))  # new patches every epoch
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers,
                          drop_last=True)

    def remixer(self) -> Mixer:
        """The Mixer over the labelled split's stems that remixed patches come from (built once)."""
        if self._remixer is None:
            self.load("labelled")  # loads the catalog
            split = self.splits["labelled"]
            stems = self._catalog.stems(split)
            classes = self._catalog.classes()
            if not any(e.annotation and "vocals" in e.labels for e in stems):
                raise CatalogError(f"{self.catalog_path}: remix needs stems labelled 'vocals' with f0 annotations in "
                                   f"split '{split}'; set remix: 0 to train on the mixtures")
            recipe = MixRecipe(segment=PATCH * HOP / SAMPLE_RATE, sample_rate=SAMPLE_RATE, channels=1,
                               class_prob={c: 1.0 if c == "vocals" else self.remix_accompaniment for c in classes},
                               same_song=self.remix_same_song, with_f0=True, f0_class="vocals")
            table = StemTable.build(self._catalog, stems, classes, self._catalog.labels())
            self._remixer = Mixer(table, recipe, reader=SegmentReader(self.cache_dir), seed=self.seed)
        return self._remixer

    def val_dataloader(self) -> DataLoader:
        return DataLoader(SongDataset(self.load("valid")), batch_size=1)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(SongDataset(self.load("test")), batch_size=1)

    def state_dict(self) -> dict:
        # tensors, not NumPy arrays: checkpoints load with torch.load(weights_only=True)
        pseudo = {k: (torch.from_numpy(i), torch.from_numpy(p)) for k, (i, p) in self.pseudo.items()}
        return {"label_version": self.label_version, "iteration": self.iteration, "pseudo": pseudo,
                "noise_mode": self.noise_mode}

    def load_state_dict(self, state: dict) -> None:
        self.label_version, self.iteration, self.noise_mode = state["label_version"], state["iteration"], state["noise_mode"]
        self.pseudo = {k: (i.numpy(), p.numpy()) for k, (i, p) in state["pseudo"].items()}
