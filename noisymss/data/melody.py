"""The melody view of the data pipeline: JDC's 8 kHz mono patches with per-frame pitch targets, and
whole annotated songs for evaluation.

Every training patch is drawn by a Mixer (`noisymss.data.mixer`), as for the other tasks, from
one of three sources, each a Mixer with its own seed stream:
    labelled    a labelled song's mixture with its f0 annotation (datasets that have only mixtures);
    remix       a labelled song's vocal stem with its f0 over accompaniment stems from any labelled
                song (or the same one), drawn with probability `remix` among labelled patches;
    unlabelled  an unlabelled song's mixture with the current teacher's pseudo labels (its top-k
                pitch distribution per frame), once a teacher has labelled it.
Patches start on the 10 ms frame grid, so frame k of a patch is frame start/10 ms + k of the song
(where teacher labels live). Audio is decoded once at 8 kHz mono into a `SongStore` that
workers share. Pseudo labels are state: the label version, the teacher iteration and
{song id: (top-k classes, top-k probabilities)} are in `state_dict()`.

Noise (the three setups of Kum et al. 2020, arXiv:2008.06358), set by the TeacherStudent callback:
    basic                  no augmentation;
    noisy_student          the teacher labels clean audio; student patches get RandAudioAugment;
    noisy_teacher_student  each unlabelled song gets one fixed RandAudioAugment draw per
                           iteration; the teacher labels that audio and the student trains on it.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from noisymss.audio.randaugment import RandAudioAugment
from noisymss.data.annotations import HOP as F0_HOP
from noisymss.data.annotations import AnnotationError, f0_on_grid, read_f0
from noisymss.data.catalog import CatalogError, Entry
from noisymss.data.datamodule import CatalogDataModule, DemoCorpus
from noisymss.data.epochs import EpochSampler, current_epoch, epoch_and_index
from noisymss.data.mixer import Mixer, MixRecipe
from noisymss.data.preflight import Report, check_rows
from noisymss.data.seeds import generator
from noisymss.data.songs import SongStore
from noisymss.data.table import StemTable
from noisymss.melody.features import PATCH, PATCH_SAMPLES, SAMPLE_RATE

NOISE_MODES = ("basic", "noisy_student", "noisy_teacher_student")
SONG = "song"  # the one class of a Mixer over whole-song mixtures
ROLES = {"fit": ("labelled", "valid"), "validate": ("valid",), "test": ("test",)}  # the songs each stage reads


def check_mode(mode: str) -> str:
    if mode not in NOISE_MODES:
        raise ValueError(f"unknown teacher-student mode '{mode}'; choose one of {', '.join(NOISE_MODES)}")
    return mode


def patch_recipe(class_prob: dict[str, float], with_f0: bool, same_song: bool = False, **kw) -> MixRecipe:
    """A recipe for JDC patches: PATCH frames of f0 (the audio is cut to PATCH_SAMPLES), 8 kHz mono,
    starts on the f0 grid."""
    return MixRecipe(segment=PATCH * F0_HOP, sample_rate=SAMPLE_RATE, channels=1, class_prob=class_prob,
                     same_song=same_song, with_f0=with_f0, f0_class="vocals" if "vocals" in class_prob else SONG,
                     start_grid=F0_HOP, **kw)


class PatchDataset(Dataset):
    """Training patches keyed by (epoch, index): unlabelled with probability unlabelled_ratio / (1 +
    unlabelled_ratio) once pseudo labels exist, else labelled (remixed with probability `remix`).

    Args:
        labelled, remix, unlabelled: the Mixers of the three sources (remix, unlabelled may be None).
        pseudo: {row of `unlabelled`'s table: (top-k classes, top-k probabilities) per song frame}.

    A patch is {'audio': (PATCH_SAMPLES,), 'f0': (PATCH,) Hz of a labelled patch's truth (0 = unvoiced),
    'target_idx', 'target_prob': (PATCH, top_k) a teacher's classes and probabilities (unlabelled
    patches; the prob of a labelled frame is 1 where its truth is known), 'mask': (PATCH,) frames
    with a target, 'labelled': ()}. Truth stays in Hz: the task maps it to its own pitch classes.
    """

    def __init__(self, labelled: Mixer, length: int, seed: int, top_k: int, remix: Mixer | None = None,
                 remix_prob: float = 0.0, unlabelled: Mixer | None = None, pseudo: dict | None = None,
                 unlabelled_ratio: float = 0.0, augment_labelled: float = 0.0, augment_unlabelled: bool = False):
        self.labelled, self.remix, self.unlabelled = labelled, remix, unlabelled
        self.remix_prob = remix_prob if remix is not None else 0.0
        self.pseudo = pseudo or {}
        ratio = 1.0 if unlabelled_ratio == float("inf") else unlabelled_ratio / (1 + unlabelled_ratio)  # inf: pseudo only
        self.p_unlabelled = ratio if unlabelled is not None and self.pseudo else 0.0
        self.length, self.seed, self.top_k = length, seed, top_k
        self.augment_labelled, self.augment_unlabelled = float(augment_labelled), augment_unlabelled
        self.augment = RandAudioAugment()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = epoch_and_index(key)
        rng = generator(self.seed, "melody/patch", epoch, index)  # which source, and the augmentation
        idx = np.zeros((PATCH, self.top_k), np.int64)
        prob = np.zeros((PATCH, self.top_k), np.float32)
        f0 = np.zeros(PATCH, np.float32)
        labelled = not rng.random() < self.p_unlabelled
        if not labelled:
            ex = self.unlabelled.example(epoch, index)
            if ex.stems:  # frame k of the patch is frame start / HOP + k of the song
                k_idx, k_prob = self.pseudo[ex.stems[0]]
                first = int(round(ex.starts[0] / F0_HOP))
                got = k_idx[first:first + PATCH].shape[0]
                idx[:got] = k_idx[first:first + got, :self.top_k]
                prob[:got] = k_prob[first:first + got, :self.top_k]
        else:
            mixer = self.remix if self.remix_prob and rng.random() < self.remix_prob else self.labelled
            ex = mixer.example(epoch, index)
            known = np.isfinite(ex.f0)  # NaN: a remix holds another annotated melody, so no truth
            f0 = np.where(known, ex.f0, 0.0).astype(np.float32)
            prob[:, 0] = known
        audio = ex.mixture[0, :PATCH_SAMPLES]
        p = self.augment_labelled if labelled else float(self.augment_unlabelled)
        if p >= 1.0 or (p > 0.0 and rng.random() < p):  # no draw at 0 or 1: those streams stay as they were
            audio = self.augment(audio[None], SAMPLE_RATE, rng)[0]
        mask = prob.sum(axis=1) > 0  # frames with a target (pseudo frames below the confidence floor are 0)
        return {"audio": torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)),
                "f0": torch.from_numpy(f0), "target_idx": torch.from_numpy(idx), "target_prob": torch.from_numpy(prob),
                "mask": torch.from_numpy(mask), "labelled": torch.tensor(labelled)}


class SongDataset(Dataset):
    """Whole annotated songs for evaluation: {'audio': (samples,), 'f0': (frames,), 'index', 'id'} (batch size 1)."""

    def __init__(self, ids: list[str], audio: list[np.ndarray], f0: list[np.ndarray]):
        self.ids, self.audio, self.f0 = ids, audio, f0

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        return {"audio": torch.from_numpy(self.audio[i]), "f0": torch.from_numpy(self.f0[i]), "index": torch.tensor(i),
                "id": self.ids[i]}


class MelodyDataModule(CatalogDataModule):
    """Labelled + unlabelled songs of a catalog for JDC training, and annotated songs for evaluation.

    Args:
        catalog: catalog CSV; songs are its mixture rows (labelled ones need an f0 annotation).
        labelled_split, unlabelled_split, val_split, test_split: catalog split names
            (unlabelled_split None: supervised only; labelled_split may list several, e.g. a real
            dataset's labelled singers and a synthetic corpus merged into the same catalog). Unlabelled songs' annotations are never read,
            and their audio only when a teacher first asks for it.
        train_examples: patches per epoch; batch_size, num_workers: loader settings.
        unlabelled_ratio: unlabelled patches per labelled patch (once pseudo labels exist).
        unlabelled_songs: use only this many of the unlabelled songs (a draw fixed by `seed`), to
            vary the amount of unlabelled data; None: all.
        top_k: teacher classes kept per frame (soft labels are stored compactly).
        remix: fraction of labelled patches mixed from the labelled songs' stems instead of cut
            from their mixtures: the vocal stem of one song (always) with each other class present
            with probability `remix_accompaniment`, from any labelled song (or the same song with
            `remix_same_song`), so each melody is heard against many backings. Needs the labelled
            split's stems in the catalog, the vocal stems with f0 annotations.
        remix_level_db: (low, high): a remixed vocal stands this many dB (drawn uniformly) over its
            accompaniment (MIR-1K's protocol mixes at -5, 0 and +5 dB); None keeps the stems' levels.
        augment: fraction of labelled patches that get RandAudioAugment in supervised training (the
            noisy teacher-student modes augment every labelled patch whatever this says).
        seed: base seed of the patch streams and the per-song noise.
        demo: the demo corpus `prepare_data` renders if the catalog is missing (see CatalogDataModule).
        skip_bad_rows: leave songs and stems that fail the pre-flight check out instead of stopping.
    """

    def __init__(
        self,
        catalog: str,
        labelled_split: str | list[str] = "labelled",
        unlabelled_split: str | None = "unlabelled",
        val_split: str = "valid",
        test_split: str = "test",
        train_examples: int = 2048,
        batch_size: int = 32,
        num_workers: int = 0,
        unlabelled_ratio: float = 1.0,
        unlabelled_songs: int | None = None,
        top_k: int = 8,
        remix: float = 0.0,
        remix_accompaniment: float = 0.75,
        remix_same_song: bool = False,
        remix_level_db: tuple[float, float] | None = None,
        augment: float = 0.0,
        seed: int = 0,
        demo: DemoCorpus | None = None,
        skip_bad_rows: bool = False,
    ):
        super().__init__(catalog, demo, skip_bad_rows)
        if not 0.0 <= remix <= 1.0:
            raise ValueError(f"remix={remix}: give the fraction of labelled patches to remix, between 0 and 1")
        self.splits = {"labelled": labelled_split, "unlabelled": unlabelled_split, "valid": val_split, "test": test_split}
        self.train_examples, self.batch_size, self.num_workers = train_examples, batch_size, num_workers
        self.unlabelled_ratio, self.top_k, self.seed = unlabelled_ratio, top_k, seed
        if unlabelled_songs is not None and unlabelled_songs < 1:
            raise ValueError(f"unlabelled_songs={unlabelled_songs}: give a number of songs, or null for all")
        self.unlabelled_songs = unlabelled_songs
        self.remix, self.remix_accompaniment, self.remix_same_song = remix, remix_accompaniment, remix_same_song
        self.remix_level_db = tuple(remix_level_db) if remix_level_db is not None else None
        if not 0.0 <= augment <= 1.0:
            raise ValueError(f"augment={augment}: give the fraction of labelled patches to augment, between 0 and 1")
        self.augment = augment
        self.store = SongStore(SAMPLE_RATE, channels=1)
        self._rows: dict[str, list[Entry]] = {}
        self._eval: dict[str, SongDataset] = {}
        self._clean: dict[str, np.ndarray] = {}  # unlabelled songs before a noisy teacher's noise
        self.noise_mode = "basic"
        # What the next epoch draws from (set by TeacherStudent; not state: it follows from the epoch):
        # 'joint' (both, at unlabelled_ratio), 'pseudo' (pseudo-labelled songs only), 'labelled' (no pseudo).
        self.phase = "joint"
        # label state (checkpointed)
        self.label_version = "none"
        self.iteration = 0
        self.pseudo: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._heard_iteration = -1

    # ----------------------------------------------------------------- data
    def setup(self, stage: str | None = None) -> None:
        # Unlabelled songs are decoded when a teacher first asks for them, so a supervised run
        # (no TeacherStudent) never reads them.
        if stage:
            self.preflight(stage)
        for role in ROLES.get(stage or "fit", ("labelled", "valid")):
            self.rows(role) if role == "labelled" else self.songs(role)

    def check(self, stage: str) -> Report:
        report = Report()
        roles = ROLES.get(stage, ())
        if stage == "fit":
            roles += ("unlabelled",) * bool(self.splits["unlabelled"]) + ("remix",) * bool(self.remix)
        for role in roles:
            split = self.splits["labelled" if role == "remix" else role]
            rows = self.catalog.stems(split) if role == "remix" else self.catalog.mixtures(split)
            if role == "remix":
                rows = [e for e in rows if "vocals" not in e.labels or e.annotation]  # the f0 of a vocal stem is its target
                if not any("vocals" in e.labels for e in rows):
                    report.problems.append(f"remix needs stems labelled 'vocals' with f0 annotations in split '{split}'; "
                                           "set remix: 0 to train on the mixtures")
            elif not rows and role != "unlabelled":
                report.problems.append(f"no mixtures in split '{split}' (for {role} songs); "
                                       f"the catalog has {sorted({e.split for e in self.catalog.mixtures()})}")
            check_rows(self.catalog, rows, 1, report, annotation=role in ("labelled", "valid", "test"))
        return report

    def rows(self, source: str) -> list[Entry]:
        """The catalog rows a source draws from ('labelled', 'unlabelled', 'remix', 'valid', 'test'),
        decoded; rows that cannot be used are named and left out (never fatal), found once."""
        if source not in self._rows:
            self._rows[source] = self._stems_to_remix() if source == "remix" else self._songs_of(source)
        return self._rows[source]

    def _songs_of(self, role: str) -> list[Entry]:
        split = self.splits[role]
        rows = self.catalog.mixtures(split) if split else []
        if role == "unlabelled" and self.unlabelled_songs is not None and len(rows) > self.unlabelled_songs:
            keep = generator(self.seed, "melody/unlabelled_songs", 0, 0).choice(len(rows), self.unlabelled_songs, replace=False)
            rows = [rows[i] for i in sorted(keep)]
        if not rows and role != "unlabelled":
            raise CatalogError(f"{self.catalog_path}: no mixtures in split '{split}' (for {role}); "
                               f"have {sorted({e.split for e in self.catalog.mixtures()})}")
        usable = []
        for e in (e for e in rows if e.id not in self.bad_rows):
            if role != "unlabelled" and not e.annotation:  # checked before decoding a song we would not use
                print(f"skipped {role} song {e.id}: no f0 annotation in the catalog")
                continue
            failed = self.store.preload([str(self.catalog.resolve(e.path))])
            if failed:
                print(f"skipped {role} song {e.id}: {failed[0][1]}")
            else:
                usable.append(e)
        return usable

    def _stems_to_remix(self) -> list[Entry]:
        split = self.splits["labelled"]
        stems = self.catalog.stems(split)
        if not any(e.annotation and "vocals" in e.labels for e in stems):
            raise CatalogError(f"{self.catalog_path}: remix needs stems labelled 'vocals' with f0 annotations in "
                               f"split '{split}'; set remix: 0 to train on the mixtures")
        stems = [e for e in stems if e.id not in self.bad_rows]
        failed = self.store.preload(str(self.catalog.resolve(e.path)) for e in stems)
        if failed:
            raise CatalogError(f"{failed[0][0]}: {failed[0][1]} (a stem of split '{split}', needed by remix)")
        return stems

    def mixer(self, source: str, rows: list[Entry] | None = None) -> Mixer:
        """The Mixer of a training source ('labelled', 'remix' or 'unlabelled'), over `rows` (default: all of it)."""
        rows = self.rows(source) if rows is None else rows
        if source == "remix":
            classes = self.catalog.classes()
            table = StemTable.build(self.catalog, rows, classes, self.catalog.labels())
            probs = {c: 1.0 if c == "vocals" else self.remix_accompaniment for c in classes}
            level = {"level_class": "vocals", "level_db": self.remix_level_db} if self.remix_level_db else {}
            recipe = patch_recipe(probs, with_f0=True, same_song=self.remix_same_song, **level)
        else:  # a whole-song patch is used even where it is quiet: silence teaches 'unvoiced'
            table = StemTable.build(self.catalog, rows, [SONG], {e.id: (SONG,) for e in rows})
            recipe = patch_recipe({SONG: 1.0}, with_f0=source == "labelled", silence_db=-np.inf)
        return Mixer(table, recipe, reader=self.store, seed=self.seed, name=f"melody/{source}")

    def songs(self, role: str) -> SongDataset:
        """Whole annotated songs of 'valid' or 'test', f0 on the 10 ms grid (decoded once)."""
        if role not in self._eval:
            ids, audio, f0s = [], [], []
            for e in self.rows(role):
                x = self.store.load(str(self.catalog.resolve(e.path)))[0]
                try:
                    times, hz = read_f0(self.catalog.resolve(e.annotation))
                except (AnnotationError, OSError) as err:
                    print(f"skipped {role} song {e.id}: {err}")
                    continue
                ids.append(e.id)
                audio.append(x)
                f0s.append(f0_on_grid(times, hz, 0.0, int(len(x) / SAMPLE_RATE / F0_HOP) + 1).astype(np.float32))
            self._eval[role] = SongDataset(ids, audio, f0s)
        return self._eval[role]

    # --------------------------------------------------------------- teacher
    def unlabelled_audio(self) -> dict[str, np.ndarray]:
        """{id: 8 kHz mono audio} of the unlabelled songs as the teacher should hear them in this iteration.

        In noisy_teacher_student mode each song gets one fixed RandAudioAugment draw per iteration,
        made once; the student's patches are then cut from that same audio.
        """
        if not self.splits["unlabelled"]:
            return {}
        paths = {e.id: str(self.catalog.resolve(e.path)) for e in self.rows("unlabelled")}
        if self.noise_mode == "noisy_teacher_student" and self._heard_iteration != self.iteration:
            for i, path in enumerate(paths.values()):
                if path not in self._clean:  # the store holds the clean song until its first noise
                    self._clean[path] = self.store.load(path)
                clean = self._clean[path]
                rng = generator(self.seed, "melody/teacher_noise", self.iteration, i)
                self.store.put(path, RandAudioAugment()(clean, SAMPLE_RATE, rng))
            self._heard_iteration = self.iteration
        return {k: self.store.load(p)[0] for k, p in paths.items()}

    def set_labels(self, version: str, labels: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Installs a teacher's labels ({song id: (top-k classes, top-k probabilities) per frame});
        loaders built afterwards train on them. (The label-state protocol of `noisymss.callbacks.relabel`.)"""
        self.label_version, self.pseudo = version, dict(labels)

    # ---------------------------------------------------------------- loaders
    def train_dataloader(self) -> DataLoader:
        remix = self.mixer("remix") if self.remix else None
        unlabelled, pseudo = None, {}
        if self.pseudo and self.splits["unlabelled"] and self.phase != "labelled":
            self.unlabelled_audio()  # decoded (and, for a noisy teacher, noised) before workers fork
            # songs the teacher left out (too little voicing) are not drawn
            rows = [e for e in self.rows("unlabelled") if e.id in self.pseudo]
            if rows:
                unlabelled = self.mixer("unlabelled", rows)
                pseudo = {row: self.pseudo[e.id] for row, e in enumerate(rows)}
        dataset = PatchDataset(self.mixer("labelled"), self.train_examples, self.seed, self.top_k, remix=remix,
                               remix_prob=self.remix, unlabelled=unlabelled, pseudo=pseudo,
                               unlabelled_ratio=float("inf") if self.phase == "pseudo" else self.unlabelled_ratio,
                               augment_labelled=1.0 if self.noise_mode != "basic" else self.augment,
                               augment_unlabelled=self.noise_mode == "noisy_student")
        sampler = EpochSampler(len(dataset), current_epoch(self.trainer))  # new patches every epoch
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers,
                          drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.songs("valid"), batch_size=1)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.songs("test"), batch_size=1)

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict:
        # tensors, not NumPy arrays: checkpoints load with torch.load(weights_only=True)
        pseudo = {k: (torch.from_numpy(i), torch.from_numpy(p)) for k, (i, p) in self.pseudo.items()}
        return {"label_version": self.label_version, "iteration": self.iteration, "pseudo": pseudo,
                "noise_mode": self.noise_mode}

    def load_state_dict(self, state: dict) -> None:
        self.label_version, self.iteration, self.noise_mode = state["label_version"], state["iteration"], state["noise_mode"]
        self.pseudo = {k: (i.numpy(), p.numpy()) for k, (i, p) in state["pseudo"].items()}

