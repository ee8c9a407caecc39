"""A plain, slow mixer for tests: what `Mixer.example` must return, written the obvious way.

It makes the same random choices in the same order, from `Mixer.rng(epoch, index, stream)`, but
reads each stem with `read_audio` (no cache, no memory map, no `out=`), applies the effects to a
copy, and sums with fresh arrays: sources = zeros + stem, mixture = zeros + a + b + ... in pick
order. Only the Mixer's generator is used; its pools, buffers and readers are not.
"""
from __future__ import annotations

import numpy as np

from noisymss.audio.io import read_audio
from noisymss.data.annotations import HOP, f0_on_grid, read_f0
from noisymss.data.mixer import Example, Mixer


def reference_example(mixer: Mixer, epoch: int, index: int, stream: str = "train") -> Example:
    table, r, effects = mixer.table, mixer.recipe, mixer.effects
    rng = mixer.rng(epoch, index, stream)
    classes = list(table.classes)
    n_classes, length = len(classes), int(round(r.segment * r.sample_rate))
    pools, interference = _pools(table, r)

    # Which classes are present.
    probs = [r.class_prob.get(c, 0.0) if isinstance(r.class_prob, dict) else r.class_prob for c in classes]
    present = rng.random(n_classes) < np.array(probs)
    drawable = np.array([len(p) > 0 for p in pools])
    present &= drawable
    while present.sum() < min(r.min_sources, drawable.sum()):
        present[rng.choice(np.flatnonzero(drawable & ~present))] = True

    # One stem per present class (from one song with same_song), then maybe an interference stem.
    picks = []
    if r.same_song:
        songs = np.unique([table.song[s] for pool in pools for s in pool])
        song = songs[rng.integers(len(songs))]
        for col in np.flatnonzero(present):
            members = [s for s in pools[col] if table.song[s] == song]
            if members:
                picks.append((int(col), members[rng.integers(len(members))]))
    else:
        for col in np.flatnonzero(present):
            picks.append((int(col), pools[col][rng.integers(len(pools[col]))]))
    if interference and rng.random() < r.interference_prob:
        picks.append((-1, interference[rng.integers(len(interference))]))

    same_start = None
    if r.same_song:
        longest = max([float(table.duration[s]) for _, s in picks], default=0.0)
        same_start = _start(r, rng, max(longest - r.segment, 0.0))

    mixture = np.zeros((r.channels, length), np.float32)
    sources = np.zeros((n_classes, r.channels, length), np.float32)
    label = np.zeros(n_classes, np.float32)
    used, starts, f0_parts = [], [], []
    for col, stem in picks:
        audio, start = _audible_segment(table, r, rng, stem, same_start)
        if audio is None:
            continue
        log = None
        if effects is not None:
            audio, log = effects.apply(audio.copy(), r.sample_rate, rng)
        if col >= 0:
            sources[col] = sources[col] + audio
        mixture = (mixture + audio).astype(np.float32)
        label = np.maximum(label, table.labels[stem])
        used.append(stem)
        starts.append(start)
        f0_parts.append((col, stem, start, log))
    f0 = _f0(table, r, f0_parts, length) if r.with_f0 else None
    return Example(mixture, sources, label.astype(np.float32), f0, used, starts)


def _pools(table, r) -> tuple[list[list[int]], list[int]]:
    """Per class, the stems that may be its target; and the interference stems."""
    n_labels = table.labels.sum(axis=1)
    catch = list(table.classes).index(r.catch_all) if r.multi_label == "catch_all" else None
    pools = []
    for col in range(len(table.classes)):
        pool = []
        for s in range(len(table)):
            has = table.labels[s, col] == 1
            if r.multi_label == "all":
                ok = has
            elif col == catch:
                ok = n_labels[s] > 1 or (has and n_labels[s] == 1)
            else:
                ok = has and n_labels[s] == 1
            if ok:
                pool.append(s)
        pools.append(pool)
    interference = [s for s in range(len(table)) if n_labels[s] > 1] if r.multi_label == "interference" else []
    return pools, interference


def _start(r, rng, span: float) -> float:
    """Uniform in [0, span] seconds, or uniform over the multiples of `start_grid` in it."""
    if r.start_grid is None:
        return float(rng.uniform(0, span))
    return float(rng.integers(int(span / r.start_grid + 1e-9) + 1) * r.start_grid)


def _audible_segment(table, r, rng, stem, same_start):
    """(audio, start) of the first audible try, or (None, last start)."""
    span = max(float(table.duration[stem]) - r.segment, 0.0)
    start = 0.0
    for _ in range(1 if same_start is not None else r.max_tries):
        start = same_start if same_start is not None else _start(r, rng, span)
        audio = read_audio(table.paths[stem], start, r.segment, r.sample_rate, r.channels)
        rms = np.sqrt(np.mean(audio.astype(np.float64) ** 2))
        if 20 * np.log10(rms + 1e-12) >= r.silence_db:
            return audio, start
    return None, start


def _f0(table, r, parts, length):
    """f0 of the melody stem; NaN when another melody is present or the stem has no truth; 0 without one."""
    frames = int(np.ceil(length / r.sample_rate / HOP))
    col = list(table.classes).index(r.f0_class) if r.f0_class in table.classes else -1
    melody = [p for p in parts if p[0] == col]
    others = [p for p in parts if p[0] != col and table.annotations[p[1]]]
    if others or (melody and not table.annotations[melody[0][1]]):
        return np.full(frames, np.nan, np.float32)
    if not melody:
        return np.zeros(frames, np.float32)
    _, stem, start, log = melody[0]
    times, f0 = read_f0(table.annotations[stem])
    rate, shift = (log.time_rate, log.semitones) if log is not None else (1.0, 0.0)
    return (f0_on_grid(times, f0, start, frames, hop=HOP * rate) * 2.0 ** (shift / 12.0)).astype(np.float32)
