"""Label noise of the SDX'23 kinds, planned for the demo corpus and injected into any catalog.

`plan_noise` picks exactly round(rate * stems) stems and corrupts them, the kinds taking turns:

    swap   the stem is labelled as another class (its audio untouched)
    merge  the stem absorbs another stem of its song and keeps its own label (the absorbed stem is
           dropped; falls back to a swap when the song has no stem left to absorb)
    bleed  the stem also carries another stem of its song 10-20 dB below its own level, as a
           microphone hears its neighbours; labelled as its own (falls back to a swap alone)

`inject` applies a plan to a catalog of real stems with their truth kept (`noisymss catalog noise`):
the new catalog is written to OUT (a CSV path), corrupted audio as new files under `<OUT stem>_audio/`
beside it, every other row keeps pointing at its file, the input catalog and its files are never
changed, and `<OUT stem>.noise.json` records what was done to which stem. `noisymss synth`
plans its corpus's noise with the same function.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from noisymss.atomic import atomic_write_text
from noisymss.audio.io import read_audio, write_audio
from noisymss.data.catalog import Catalog, CatalogError

KINDS = ("swap", "merge", "bleed")
BLEED_DB = (-20.0, -10.0)


def plan_noise(songs: Mapping[str, Sequence[tuple[str, str]]], classes: Sequence[str], rate: float,
               kinds: Sequence[str], rng: np.random.Generator) -> dict[tuple[str, str], dict]:
    """{(song, stem): what is done to it} for round(rate * stems) stems.

    Args:
        songs: {song: [(stem key, its class), ...]}, in a fixed order (the plan depends on it).
        classes: the classes a swapped label is drawn from.
        rate: the fraction of stems corrupted.
        kinds: the kinds, taking turns over the chosen stems.
    """
    if not kinds or set(kinds) - set(KINDS):
        raise ValueError(f"noise kinds {list(kinds)}: choose among {', '.join(KINDS)}")
    slots = [(song, key, label) for song, stems in songs.items() for key, label in stems]
    n_noisy = int(round(rate * len(slots)))
    chosen = [slots[k] for k in rng.choice(len(slots), n_noisy, replace=False)] if n_noisy else []
    noisy = {(song, key) for song, key, _ in chosen}
    absorbed: set[tuple[str, str]] = set()
    plan = {}
    for turn, (song, key, label) in enumerate(chosen):
        kind = kinds[turn % len(kinds)]
        others = [k for k, _ in songs[song] if k != key]
        free = [k for k in others if (song, k) not in noisy and (song, k) not in absorbed]
        if kind == "merge" and free:
            other = str(rng.choice(free))
            absorbed.add((song, other))
            plan[(song, key)] = {"kind": "merge", "absorbs": other}
        elif kind == "bleed" and others:
            plan[(song, key)] = {"kind": "bleed", "from": str(rng.choice(others)), "db": float(rng.uniform(*BLEED_DB))}
        else:
            plan[(song, key)] = {"kind": "swap", "label": str(rng.choice([c for c in classes if c != label]))}
    return plan


def bleed_into(own: np.ndarray, other: np.ndarray, db: float) -> np.ndarray:
    """`own` plus `other` scaled to sit `db` below own's RMS level (shapes (channels, samples))."""
    gain = 10 ** (db / 20) * np.sqrt(np.mean(own ** 2)) / (np.sqrt(np.mean(other ** 2)) + 1e-9)
    return own + gain * other


def inject(catalog: Catalog, out: str | Path, rate: float, kinds: Sequence[str] = ("swap", "merge"), seed: int = 0,
           splits: Sequence[str] = ("train",)) -> Catalog:
    """A copy of `catalog`, saved as OUT (a CSV path), with the stems of `splits` corrupted (see the
    module doc); the truth goes to `true_labels` (a merged stem's: both classes). Stems must carry
    one label each (the truth to corrupt)."""
    out = Path(out)
    audio_dir, record_path = out.with_name(f"{out.stem}_audio"), out.with_name(f"{out.stem}.noise.json")
    taken = [p for p in (out, audio_dir, record_path) if p.exists()]
    if taken:
        raise CatalogError(f"{taken[0]}: exists; choose another --out (nothing is overwritten)")
    if not 0.0 <= rate <= 1.0:
        raise CatalogError(f"--rate {rate}: give a fraction between 0 and 1")
    stems = [e for e in catalog.stems() if e.split in splits]
    if not stems:
        raise CatalogError(f"no stems in split(s) {list(splits)}; have {sorted({e.split for e in catalog.stems()})}")
    multi = [e.id for e in stems if len(e.labels) != 1]
    if multi:
        raise CatalogError(f"{len(multi)} stem(s) without exactly one label, e.g. {multi[:3]}; inject noise into "
                           "single-label stems (map or filter the catalog first)")
    songs: dict[str, list[tuple[str, str]]] = {}
    for e in stems:
        songs.setdefault(e.song, []).append((e.id, e.labels[0]))
    classes = sorted({e.labels[0] for e in stems})
    try:
        plan = plan_noise(songs, classes, rate, kinds, np.random.default_rng(seed))
    except ValueError as err:
        raise CatalogError(str(err)) from None
    by_id = {e.id: e for e in catalog}
    dropped = {n["absorbs"] for n in plan.values() if n["kind"] == "merge"}
    rows = []
    for e in catalog:
        e = replace(e, path=str(catalog.resolve(e.path)), annotation=str(catalog.resolve(e.annotation)) if e.annotation else "",
                    true_labels=e.true_labels if e.true_labels is not None else e.labels)
        noise = plan.get((e.song, e.id))
        if e.id in dropped:
            continue
        if noise and noise["kind"] == "swap":
            rows.append(replace(e, labels=(noise["label"],)))
        elif noise:  # new audio: merge or bleed
            own = read_audio(e.path)
            partner = by_id[noise.get("absorbs") or noise["from"]]
            other = _like(read_audio(catalog.resolve(partner.path), sample_rate=e.sample_rate, channels=own.shape[0]), own)
            audio = own + other if noise["kind"] == "merge" else bleed_into(own, other, noise["db"])
            target = audio_dir / e.song / f"{Path(e.id).name}.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            write_audio(target, audio, e.sample_rate, subtype="FLOAT")  # float: a sum may exceed full scale
            truth = e.true_labels + tuple(c for c in partner.labels if noise["kind"] == "merge" and c not in e.true_labels)
            rows.append(replace(e, path=str(target.resolve()), channels=own.shape[0], true_labels=truth))
        else:
            rows.append(e)
    record = {"rate": rate, "kinds": list(kinds), "seed": seed, "splits": list(splits), "source": str(catalog.path),
              "noise": {key: n for (_, key), n in sorted(plan.items())}}
    atomic_write_text(record_path, json.dumps(record, indent=1) + "\n")
    Catalog(rows, out.resolve().parent).save(out)
    return Catalog.load(out)


def _like(audio: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """`audio` cut or zero-padded to `ref`'s length."""
    n = ref.shape[1]
    return audio[:, :n] if audio.shape[1] >= n else np.pad(audio, ((0, 0), (0, n - audio.shape[1])))

