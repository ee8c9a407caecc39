"""The mixer: random mixtures of catalog stems with per-stem effects, one example per (seed, epoch, index).

Pure NumPy (no Lightning, no torch state): every random choice comes from a generator seeded by
(seed, stream, epoch, index), so an example is the same on any worker, rank or rerun.

Multi-label stems (a stem whose labels in the version in use name several classes) follow
`MixRecipe.multi_label`:
    "all"           the stem may be drawn for any of its classes and its label counts them all;
    "exclude"       never drawn;
    "interference"  never a target, but with probability `interference_prob` one is added to the
                    mixture: its classes join the label (they are audible) and its audio goes to
                    no source, so then mixture = sum(sources) + interference.
    "catch_all"     a target only of the catch-all class (`MixRecipe.catch_all`, default "other",
                    as MUSDB's "other" holds every other instrument), with all its classes in
                    the label: every stem is used and mixture = sum(sources) still holds, at the
                    cost of teaching the catch-all source some of the named sources' sounds.
For separation, "all" is wrong (a {vocals, bass} stem would be a whole vocals target); the
separator task refuses it when such stems exist.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from noisymss.audio.cache import SegmentReader
from noisymss.data.annotations import HOP, f0_on_grid, read_f0
from noisymss.data.seeds import generator
from noisymss.data.table import StemTable

MULTI_LABEL_POLICIES = ("all", "exclude", "interference", "catch_all")
STREAMS = ("train", "valid", "test", "predict")
_ZERO = np.float32(0.0)


@dataclass
class MixRecipe:
    """How examples are drawn.

    Args:
        segment: example length in seconds.
        sample_rate, channels: output format (stems are converted on read).
        class_prob: probability that each class is present; one value or {class: p}.
        min_sources: if fewer classes come up, random absent ones are added.
        same_song: draw all stems of an example from one song, at one start (a moment of the song;
            a stem silent there is left out), instead of from any songs.
        multi_label: policy for multi-label stems (see module docstring).
        interference_prob: chance of one interference stem per example (policy "interference").
        catch_all: the class whose target multi-label stems become (policy "catch_all").
        silence_db: a stem segment quieter than this (RMS, dBFS) is redrawn, and after `max_tries`
            dropped (it would teach a label for something inaudible).
        max_tries: segment draws per stem before giving up on it.
        with_f0: also return the melody f0 (from annotations) at 10 ms.
        f0_class: the class whose stem carries the melody annotation.
        start_grid: if set, segment starts are multiples of this many seconds (e.g. the 10 ms f0
            grid, so a segment's frames are frames of its song); None: any start.
        level_class, level_db: if set, the level (RMS) of `level_class`'s source over that of all
            the other sources together is drawn uniformly from `level_db` (low, high) dB, by scaling
            the others (the vocal-to-accompaniment ratio of MIR-1K's -5 / 0 / +5 dB protocol).
            Examples without that class, or with nothing else, are left as read.
    """

    segment: float = 6.0
    sample_rate: int = 44100
    channels: int = 2
    class_prob: float | dict[str, float] = 0.5
    min_sources: int = 1
    same_song: bool = False
    multi_label: str = "all"
    interference_prob: float = 0.5
    catch_all: str = "other"
    silence_db: float = -50.0
    max_tries: int = 8
    with_f0: bool = False
    f0_class: str = "vocals"
    start_grid: float | None = None
    level_class: str | None = None
    level_db: tuple[float, float] = (-5.0, 5.0)

    def __post_init__(self):
        if self.multi_label not in MULTI_LABEL_POLICIES:
            raise ValueError(f"multi_label='{self.multi_label}': choose one of {', '.join(MULTI_LABEL_POLICIES)}")
        if self.level_class is not None and not self.level_db[0] <= self.level_db[1]:
            raise ValueError(f"level_db={tuple(self.level_db)}: give (low, high) in dB with low <= high, e.g. (-5, 5)")


@dataclass
class Example:
    """One mixture.

    Attributes:
        mixture: (C, T) float32.
        sources: (S, C, T) float32, one per class (zeros where absent).
        label: (S,) float32 multi-hot: the classes audible in the mixture, under the label version in use.
        f0: (frames,) float32 Hz at 10 ms (0 = unvoiced, NaN = unknown), or None without `with_f0`.
        stems: indices into the StemTable of the stems used.
        starts: where in each of those stems its segment starts, seconds.
    """

    mixture: np.ndarray
    sources: np.ndarray
    label: np.ndarray
    f0: np.ndarray | None = None
    stems: list[int] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)


class Mixer:
    """Draws examples from a StemTable.

    Args:
        table: the stems and their labels.
        recipe: what to draw.
        effects: per-stem effect chain (anything with `apply(audio, sr, rng) -> (audio, log)`), or None.
            One whose `apply` takes `inplace` (a `Chain`) gets each target stem in its source slot
            to change in place; what it leaves there must hold no -0.0 (a Chain's NumPy effects
            write none, short of a gain below 1/2 rounding a negative subnormal sample to -0.0).
        reader: segment reader (e.g. with a decoded-audio cache); plain seeking reads by default.
        seed: base seed of the example streams.
        name: names this Mixer's seed streams (`<name>/<stream>`): Mixers drawing for different
            purposes with one seed get different names, so they never share random numbers.
    """

    def __init__(self, table: StemTable, recipe: MixRecipe, effects=None, reader: SegmentReader | None = None, seed: int = 0,
                 name: str = "mix"):
        self.table, self.recipe, self.effects, self.seed, self.name = table, recipe, effects, seed, name
        self.reader = reader or SegmentReader()
        classes = table.classes
        probs = recipe.class_prob
        self.class_prob = np.array([probs.get(c, 0.0) if isinstance(probs, dict) else probs for c in classes])
        n_labels = table.labels.sum(axis=1)
        target_ok = n_labels >= 1 if recipe.multi_label == "all" else n_labels == 1
        # Per class, the stems that may be drawn as its target.
        self.pool = [np.flatnonzero(target_ok & (table.labels[:, j] == 1)).astype(np.int32) for j in range(len(classes))]
        if recipe.multi_label == "catch_all":
            if recipe.catch_all not in classes:
                raise ValueError(f"multi_label='catch_all' needs the catch-all class '{recipe.catch_all}' among the "
                                 f"classes {', '.join(classes)}; set recipe.catch_all to one of them")
            j = classes.index(recipe.catch_all)
            self.pool[j] = np.flatnonzero((n_labels > 1) | (target_ok & (table.labels[:, j] == 1))).astype(np.int32)
        self.interference = np.flatnonzero(n_labels > 1).astype(np.int32) if recipe.multi_label == "interference" else np.zeros(0, np.int32)
        drawable = np.unique(np.concatenate(self.pool))
        if not len(drawable):
            raise ValueError(f"no stem can be drawn: no stem is labelled with any of {', '.join(classes)} under this policy")
        self.songs = np.unique(table.song[drawable])
        self.f0_col = classes.index(recipe.f0_class) if recipe.f0_class in classes else -1
        self._drawable = np.array([len(p) > 0 for p in self.pool])
        self._n_drawable = int(self._drawable.sum())
        # SegmentReader writes a stem straight into its source slot (`out=`), never as -0.0; other
        # readers' arrays are copied in.
        self._reads_into = type(self.reader).read is SegmentReader.read
        self._effects_inplace = effects is not None and "inplace" in inspect.signature(effects.apply).parameters
        self.level_col = classes.index(recipe.level_class) if recipe.level_class in classes else -1
        if recipe.level_class is not None and self.level_col < 0:
            raise ValueError(f"level_class '{recipe.level_class}' is none of the classes {', '.join(classes)}")

    def example(self, epoch: int, index: int, stream: str = "train") -> Example:
        """The example for (seed, stream, epoch, index); the same every time it is asked for."""
        rng = self.rng(epoch, index, stream)
        r = self.recipe
        length = int(round(r.segment * r.sample_rate))
        present = rng.random(len(self.class_prob)) < self.class_prob
        drawable = self._drawable
        present &= drawable
        while present.sum() < min(r.min_sources, self._n_drawable):
            present[rng.choice(np.flatnonzero(drawable & ~present))] = True
        picks = self._pick_stems(rng, np.flatnonzero(present))  # [(class column or -1, stem index)]
        starts = self._same_song_start(rng, picks) if r.same_song else None

        # Hot path: every sample is written once where it ends up, and few large buffers come and
        # go (fresh ones cost page faults). A target stem is read straight into its source slot;
        # effects work on it there when they can (`inplace`), else their result is copied back;
        # slots left empty are zeroed at the end. The mixture is summed from the slots at the end, in
        # blocks that stay in cache, in pick order from +0.0, exactly as `zeros + a + b + ...`;
        # anything that would break that (a class drawn twice, effects returning another dtype)
        # switches to adding each stem as it comes.
        n_classes = len(self.class_prob)
        sources = np.empty((n_classes, r.channels, length), dtype=np.float32)
        mixture = np.empty((r.channels, length), dtype=np.float32)
        label = np.zeros(n_classes, dtype=np.float32)
        filled = [False] * n_classes
        targets = [col for col, _ in picks if col >= 0]
        deferred = len(set(targets)) == len(targets)
        parts, mixed = [], False  # deferred: what the mixture sums, in pick order
        f0_parts, used, starts_used, interference = [], [], [], []
        for col, stem in picks:
            into = sources[col] if deferred and col >= 0 and self._reads_into else None
            audio, start = self._segment(rng, stem, starts, into)
            if audio is None:
                continue  # silent wherever we looked: not audible, so not in the label
            log = None
            if self.effects is not None:
                if audio is into and self._effects_inplace:
                    audio, log = self.effects.apply(audio, r.sample_rate, rng, inplace=True)
                else:
                    audio, log = self.effects.apply(audio, r.sample_rate, rng)
                if deferred and getattr(audio, "dtype", None) != np.float32:
                    if parts:
                        _sum_into(mixture, parts)
                        mixed = True
                    deferred, parts = False, []
            if col >= 0:
                if filled[col]:
                    np.add(sources[col], audio, out=sources[col])
                elif audio is not into:
                    np.add(audio, _ZERO, out=sources[col])  # a copy that writes -0.0 as +0.0
                filled[col] = True
            if col < 0 and self.level_col >= 0:
                interference.append(audio)
            if deferred:
                parts.append(sources[col] if col >= 0 else audio)
            elif mixed:
                np.add(mixture, audio, out=mixture)
            else:
                np.add(audio, _ZERO, out=mixture)
                mixed = True
            np.maximum(label, self.table.labels[stem], out=label)
            used.append(stem)
            starts_used.append(start)
            if r.with_f0:
                f0_parts.append((col, stem, start, log))
        for col in range(n_classes):
            if not filled[col]:
                sources[col] = 0.0
        if self.level_col >= 0 and self._set_level(rng, sources, filled) and mixed:
            _sum_into(mixture, [sources[c] for c in range(n_classes) if filled[c]] + interference)
        elif not mixed:
            # Slots never hold -0.0 (readers, in-place effects and the copies above write +0.0), so
            # 0 + slot == slot.
            _sum_into(mixture, parts, zero_first=not parts or parts[0].base is not sources)
        f0 = self._f0(f0_parts, length) if r.with_f0 else None
        return Example(mixture, sources, label, f0, used, starts_used)

    def _set_level(self, rng: np.random.Generator, sources: np.ndarray, filled: list[bool]) -> bool:
        """Scales the sources other than `level_class`'s so that it stands at a drawn level over them;
        True if anything was scaled."""
        low, high = self.recipe.level_db
        ratio_db = rng.uniform(low, high)  # drawn for every example, so the stream does not shift
        others = [c for c in range(len(filled)) if filled[c] and c != self.level_col]
        if not filled[self.level_col] or not others:
            return False
        target = float(np.sqrt(np.mean(np.square(sources[self.level_col], dtype=np.float64))))
        rest = np.sum(sources[others], axis=0, dtype=np.float64)
        level = float(np.sqrt(np.mean(np.square(rest))))
        if level == 0.0:
            return False
        gain = np.float32(target / level / 10.0 ** (ratio_db / 20.0))
        for c in others:
            np.multiply(sources[c], gain, out=sources[c])
        return True

    def rng(self, epoch: int, index: int, stream: str = "train") -> np.random.Generator:
        """The generator every random choice of example (epoch, index) of `stream` comes from."""
        if stream not in STREAMS:
            raise ValueError(f"unknown example stream '{stream}'; choose one of {', '.join(STREAMS)}")
        return generator(self.seed, f"{self.name}/{stream}", max(epoch, 0), index)

    def _pick_stems(self, rng: np.random.Generator, columns: np.ndarray) -> list[tuple[int, int]]:
        picks = []
        if self.recipe.same_song:
            song = self.songs[rng.integers(len(self.songs))]
            for col in columns:
                members = self.pool[col][self.table.song[self.pool[col]] == song]
                if len(members):
                    picks.append((int(col), int(members[rng.integers(len(members))])))
        else:
            picks = [(int(col), int(self.pool[col][rng.integers(len(self.pool[col]))])) for col in columns]
        if len(self.interference) and rng.random() < self.recipe.interference_prob:
            picks.append((-1, int(self.interference[rng.integers(len(self.interference))])))
        return picks

    def _same_song_start(self, rng: np.random.Generator, picks: list[tuple[int, int]]) -> list[float]:
        # One start for every stem: a same-song example is a moment of the song, so a stem that is
        # silent there is left out (as it is in the song), not read from another moment.
        longest = max((float(self.table.duration[s]) for _, s in picks), default=0.0)
        return [self._start(rng, max(longest - self.recipe.segment, 0.0))]

    def _start(self, rng: np.random.Generator, span: float) -> float:
        """A segment start in [0, span] seconds: uniform, or uniform over the recipe's start grid."""
        grid = self.recipe.start_grid
        if grid is None:
            return float(rng.uniform(0, span))
        return float(rng.integers(int(span / grid + 1e-9) + 1) * grid)

    def _segment(self, rng: np.random.Generator, stem: int, starts: list[float] | None,
                 out: np.ndarray | None = None) -> tuple[np.ndarray | None, float]:
        """Reads a non-silent segment of `stem`: (audio (C, T), start) or (None, start) if all tries were silent.

        With `out`, segments are read into it (and the audio returned is `out`).
        """
        r = self.recipe
        span = max(float(self.table.duration[stem]) - r.segment, 0.0)
        path = self.table.paths[stem]
        start = 0.0
        for attempt in range(r.max_tries if starts is None else len(starts)):
            start = starts[attempt] if starts is not None else self._start(rng, span)
            if out is not None:
                audio = self.reader.read(path, start, r.segment, r.sample_rate, r.channels, out=out)
            else:
                audio = self.reader.read(path, start, r.segment, r.sample_rate, r.channels)
            if _audible(audio, r.silence_db):
                return audio, start
        return None, start

    def _f0(self, parts: list, length: int) -> np.ndarray:
        """Melody f0 of the example: from the stem drawn for `f0_class`; unknown (NaN) when ambiguous."""
        frames = int(np.ceil(length / self.recipe.sample_rate / HOP))
        target = [p for p in parts if p[0] == self.f0_col]
        others_annotated = [p for p in parts if p[0] != self.f0_col and self.table.annotations[p[1]]]
        if others_annotated or (target and not self.table.annotations[target[0][1]]):
            return np.full(frames, np.nan, dtype=np.float32)  # another melody is present, or no truth for this one
        if not target:
            return np.zeros(frames, dtype=np.float32)  # no melody stem in the mixture: unvoiced throughout
        _, stem, start, log = target[0]
        times, f0 = _load_f0(self.table.annotations[stem])
        rate, shift = (log.time_rate, log.semitones) if log is not None else (1.0, 0.0)
        out = f0_on_grid(times, f0, start, frames, hop=HOP * rate) * 2.0 ** (shift / 12.0)
        return out.astype(np.float32)


def _sum_into(out: np.ndarray, parts: list[np.ndarray], zero_first: bool = True, block: int = 65536) -> None:
    """out = ((0 + parts[0]) + parts[1]) + ..., elementwise, in blocks that stay in cache.

    With `zero_first` False the caller promises parts[0] holds no -0.0, so 0 + parts[0] is
    parts[0] itself and the first two parts are added in one pass.
    """
    if not parts:
        out[...] = 0.0
        return
    for a in range(0, out.shape[-1], block):
        o = out[..., a:a + block]
        if zero_first or len(parts) == 1:
            np.add(parts[0][..., a:a + block], _ZERO, out=o)
            rest = parts[1:]
        else:
            np.add(parts[0][..., a:a + block], parts[1][..., a:a + block], out=o)
            rest = parts[2:]
        for p in rest:
            np.add(o, p[..., a:a + block], out=o)


def _audible(audio: np.ndarray, threshold_db: float) -> bool:
    """RMS level (dBFS) >= threshold_db, decided exactly as the float64 mean of squares decides it.

    The mean square is first taken as a float32 BLAS dot (one pass, no temporary). Its rounding
    error is at most n * 2**-24 relative (n samples, any summation order), so outside that margin
    of the threshold the answer is certain; inside it the float64 mean is computed, as before.
    """
    flat = audio.reshape(-1)
    n = flat.size
    if n:
        level = 20.0 * math.log10(math.sqrt(max(float(np.dot(flat, flat)), 0.0) / n) + 1e-12)
        if abs(level - threshold_db) > 10.0 * math.log10(1.0 + 2.0 * n * 2.0**-24) + 1e-3:
            return level >= threshold_db
    rms = float(np.sqrt(np.mean(np.square(audio), dtype=np.float64)))
    return bool(20 * np.log10(rms + 1e-12) >= threshold_db)


@lru_cache(maxsize=4096)
def _load_f0(reference: str) -> tuple[np.ndarray, np.ndarray]:
    return read_f0(reference)
