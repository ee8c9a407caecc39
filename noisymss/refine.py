"""Self-refining of stem labels (Koo et al. 2023, step 2): score every stem alone with a classifier,
threshold the probabilities into new multi-hot labels, write them as a new label version.

No Lightning here: `refine_catalog` takes any module mapping audio (B, C, T) to logits (B, classes)
and goes through the sharded map over DDP ranks (`noisymss.distributed`), so under DDP each rank scores
its shard and every rank gets every score. Scores are kept one small JSON file per stem, written
atomically, in a folder beside the catalog: a rerun (after a crash or `kill -9`) reuses them and
never reads a half-written one. The given labels are never touched. Beside each version go the
probabilities its labels were thresholded from (`<version>.probs.csv`) and its flip table
(`<version>.flips.csv`: how many stems went from which labels to which).

A classifier trained on noisy labels is biased towards the classes the noise adds (on MIR-1K with
30 % noise, accompaniment stems get a mean vocal probability of 0.49), so a fixed 0.5 threshold can
relabel worse than the given labels. `calibrate` chooses each class's threshold instead on a split
whose labels can be trusted (a clean validation split), as a decision threshold is tuned on
validation data rather than on the data being labelled.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from noisymss.atomic import atomic_write_text, remove_partials
from noisymss.audio.io import AudioError, read_audio
from noisymss.data.catalog import Catalog
from noisymss.distributed import sharded_map

AGGREGATES = ("mean", "max")


@dataclass(frozen=True)
class RefineSettings:
    """How stems are scored and labelled; recorded with the version and checked on resume.

    Args:
        sample_rate, channels: the classifier's input format.
        window, hop: seconds per scored window and between windows.
        silence_db: windows quieter than this (RMS, dBFS) are not scored.
        aggregate: how window probabilities combine: mean or max.
        threshold: probability above which a class is in the new label; one value or {class: value}.
        batch_size: windows per forward pass.
        margin_db: a separator's filter (CCOM, SDX'23): a stem keeps one label, its loudest output
            source's, only where that source is this much louder than every other; else it gets
            none (left out of training).
        calibrate: a split whose stems, scored too, choose each class's threshold (`calibrated_thresholds`
            against their evaluation labels); `threshold` is then unused.
    """

    sample_rate: int = 44100
    channels: int = 2
    window: float = 3.0
    hop: float = 1.5
    silence_db: float = -50.0
    aggregate: str = "mean"
    threshold: float | dict[str, float] = 0.5
    batch_size: int = 16
    margin_db: float = 20.0
    calibrate: str | None = None

    def __post_init__(self):
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"aggregate '{self.aggregate}': choose one of {', '.join(AGGREGATES)}")
        if self.window <= 0 or self.hop <= 0:
            raise ValueError("window and hop must be positive seconds")


class ProbabilityMean(torch.nn.Module):
    """Several classifiers as one: (B, C, T) audio → the logit of their mean probability per class
    (B, classes), so that a stem is scored by an ensemble exactly as by one model."""

    def __init__(self, members: Sequence[torch.nn.Module]):
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([m(audio).float().sigmoid() for m in self.members]).mean(0)
        return torch.logit(probs, eps=1e-7)


@dataclass
class StemScore:
    """One stem's scores: `status` ok (probabilities over classes from a classifier, or the level in
    dB of every source a separator put out), silent, or unreadable (with the reason)."""

    status: str
    probs: list[float] | None = None
    levels_db: list[float] | None = None
    windows: int = 0
    reason: str = ""


def audible_windows(path: str | Path, s: RefineSettings) -> np.ndarray | StemScore:
    """A stem's windows (n, channels, samples) louder than `s.silence_db`, or the StemScore of a
    stem that cannot be scored (unreadable, silent)."""
    try:
        audio = read_audio(path, sample_rate=s.sample_rate, channels=s.channels)
    except (AudioError, OSError) as err:
        return StemScore("unreadable", reason=str(err))
    win, hop = int(round(s.window * s.sample_rate)), int(round(s.hop * s.sample_rate))
    n = max(1, math.ceil(max(audio.shape[1] - win, 0) / hop) + 1)
    padded = np.zeros((audio.shape[0], (n - 1) * hop + win), np.float32)  # the last window padded with silence
    padded[:, :audio.shape[1]] = audio[:, :padded.shape[1]]
    windows = np.stack([padded[:, i * hop:i * hop + win] for i in range(n)])
    rms = np.sqrt(np.mean(windows.astype(np.float64) ** 2, axis=(1, 2)))
    audible = windows[20 * np.log10(rms + 1e-12) >= s.silence_db]
    return audible if len(audible) else StemScore("silent", reason=f"no window above {s.silence_db:g} dBFS")


@torch.inference_mode()
def score_stem(model: torch.nn.Module, path: str | Path, s: RefineSettings, device: torch.device | str = "cpu") -> StemScore:
    """Scores one stem alone with a classifier: every audible window, probabilities aggregated over windows."""
    audible = audible_windows(path, s)
    if isinstance(audible, StemScore):
        return audible
    probs = torch.cat([model(torch.from_numpy(audible[i:i + s.batch_size]).to(device)).float().sigmoid().cpu()
                       for i in range(0, len(audible), s.batch_size)])
    agg = probs.mean(0) if s.aggregate == "mean" else probs.max(0).values
    return StemScore("ok", [round(float(p), 6) for p in agg], windows=len(audible))


@torch.inference_mode()
def separator_levels(model: torch.nn.Module, path: str | Path, s: RefineSettings,
                     device: torch.device | str = "cpu") -> StemScore:
    """CCOM's automatic filter's view of one stem (SDX'23): the stem fed alone to a separator
    ((B, C, T) → (B, S, C, T)), the level 20·log10 Σ|x| of each source it puts out over the
    audible windows."""
    audible = audible_windows(path, s)
    if isinstance(audible, StemScore):
        return audible
    total = sum(model(torch.from_numpy(audible[i:i + s.batch_size]).to(device)).float().abs().sum(dim=(0, 2, 3)).cpu()
                for i in range(0, len(audible), s.batch_size))
    return StemScore("ok", levels_db=[round(float(20 * np.log10(float(v) + 1e-12)), 3) for v in total],
                     windows=len(audible))


def labels_from_levels(levels_db: Sequence[float], classes: Sequence[str], margin_db: float) -> tuple[str, ...]:
    """The loudest source's class where it is `margin_db` louder than every other; else no label."""
    order = np.argsort(levels_db)[::-1]
    clear = len(order) < 2 or levels_db[order[0]] - levels_db[order[1]] >= margin_db
    return (classes[int(order[0])],) if clear else ()


def check_thresholds(threshold: float | Mapping[str, float], classes: Sequence[str]) -> None:
    """One-line errors for a threshold no probability can cross (not in (0, 1)) or a class not in `classes`."""
    values = threshold if isinstance(threshold, Mapping) else {"": threshold}
    unknown = [c for c in values if c and c not in classes]
    if unknown:
        raise ValueError(f"--threshold: unknown class(es) {unknown}; the classes are {list(classes)}")
    for c, v in values.items():
        if not 0.0 < float(v) < 1.0:
            raise ValueError(f"--threshold {(c + '=') if c else ''}{v}: a probability threshold must lie strictly "
                             "between 0 and 1 (0.5 is the usual)")


def check_version(catalog: Catalog, version: str, provenance: Mapping, settings: RefineSettings,
                  classes: Sequence[str], split: str | None) -> bool:
    """True if label version `version` was written by this same refine (checkpoint, settings, classes,
    split); raises a CatalogError if the name is invalid or taken by anything else; False if it is free."""
    if version in catalog.label_versions():
        have = catalog.provenance(version)
        mine = {"checkpoint": str(provenance.get("checkpoint", "")), "settings": json.loads(json.dumps(asdict(settings))),
                "classes": list(classes), "split": split, "producer": "noisymss refine"}
        if all(have.get(k) == v for k, v in mine.items()):
            return True
    catalog.check_new_version(version)
    return False


THRESHOLD_GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 0.05 .. 0.95


def calibrated_thresholds(scores: Mapping[str, StemScore], labels: Mapping[str, Sequence[str]],
                          classes: Sequence[str]) -> dict[str, float]:
    """Per class, the threshold of `THRESHOLD_GRID` whose decisions on the scored stems of `labels`
    have the best F1 against those labels (ties: the one nearest 0.5); 0.5 for a class with no
    positive among them."""
    ids = [k for k in labels if k in scores and scores[k].status == "ok" and scores[k].probs is not None]
    chosen = {}
    for j, c in enumerate(classes):
        truth = [c in labels[k] for k in ids]
        if not any(truth):
            chosen[c] = 0.5
            continue
        f1 = {t: f1_percent([scores[k].probs[j] > t for k in ids], truth) for t in THRESHOLD_GRID}
        chosen[c] = max(THRESHOLD_GRID, key=lambda t: (f1[t], -abs(t - 0.5)))
    return chosen


def labels_from(probs: Sequence[float], classes: Sequence[str], threshold: float | Mapping[str, float]) -> tuple[str, ...]:
    """The classes whose probability is above the threshold (one for all, or per class)."""
    limit = (lambda c: threshold.get(c, 0.5)) if isinstance(threshold, Mapping) else (lambda c: threshold)
    return tuple(c for c, p in zip(classes, probs) if p > limit(c))


class ScoreCache:
    """Finished stem scores, one JSON file per stem, written atomically (resume after any crash)."""

    def __init__(self, folder: Path, settings: dict):
        self.folder = folder
        record = folder / "settings.json"
        if record.is_file():
            have = json.loads(record.read_text())
            if have != settings:
                raise ValueError(f"{folder}: holds scores made with other settings or another checkpoint; "
                                 "choose another --version or delete that folder")
        else:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(record, json.dumps(settings, indent=1, sort_keys=True))

    def _path(self, key: str) -> Path:
        return self.folder / f"{hashlib.sha1(key.encode()).hexdigest()}.json"

    def get(self, key: str) -> StemScore | None:
        path = self._path(key)
        return StemScore(**json.loads(path.read_text())["score"]) if path.is_file() else None

    def put(self, key: str, score: StemScore) -> None:
        atomic_write_text(self._path(key), json.dumps({"id": key, "score": asdict(score)}))


def refine_catalog(
    model: torch.nn.Module,
    catalog: Catalog,
    classes: Sequence[str],
    settings: RefineSettings,
    version: str | None,
    provenance: Mapping,
    split: str | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    write: bool = True,
    resumable: bool = True,
    scorer: Callable[[torch.nn.Module, str, RefineSettings, torch.device | str], StemScore] = score_stem,
    trusted: Mapping[str, Sequence[str]] | None = None,
) -> tuple[dict[str, tuple[str, ...]], dict[str, StemScore]]:
    """Relabels every stem (of one split, or all) and writes the result as label version `version`.

    Stems that are silent or unreadable keep their given labels and are reported. Stems outside
    `split` keep their given labels too. With `settings.calibrate`, the stems of that split are
    scored instead and, with their `trusted` labels (e.g. the truth), choose the thresholds. Call on every rank (the sharded scoring is a collective);
    pass `write` only on one. `version` None: labels are returned, nothing is written.
    `resumable` keeps per-stem scores for a rerun (off for a model that is still training).

    Returns:
        (new labels of every stem, scores of the stems scored).
    """
    # before any work: a valid name, never another refine's version (this same refine's, written
    # before a crash cut the run short, is made again from the kept scores and not rewritten)
    finished = version is not None and check_version(catalog, version, provenance, settings, classes, split)
    cache = None
    if resumable and version is not None:
        cache = ScoreCache(catalog.versions_dir / f".refine-{version}",
                           {"settings": json.loads(json.dumps(asdict(settings))), "classes": list(classes),
                            "checkpoint": str(provenance.get("checkpoint", ""))})
    stems = [e for e in catalog.stems() if (split is None or e.split == split) and e.split != settings.calibrate]
    calibration = catalog.stems(settings.calibrate) if settings.calibrate else []  # they keep their labels
    by_id = {e.id: e for e in stems + calibration}

    def score(key: str) -> StemScore:
        done = cache.get(key) if cache else None
        if done is None:
            done = scorer(model, str(catalog.resolve(by_id[key].path)), settings, device)
            if cache:
                cache.put(key, done)
        return done

    scores = sharded_map(list(by_id), score, progress=progress, desc="refine")
    if cache and write:  # every rank has finished writing: what a killed run left half-written can go
        remove_partials(cache.folder)
    threshold = settings.threshold
    if settings.calibrate:
        if trusted is None:
            raise ValueError("refine: calibrate needs the trusted labels of its split")
        threshold = calibrated_thresholds(scores, {e.id: trusted[e.id] for e in catalog.stems(settings.calibrate)}, classes)
        scores = {e.id: scores[e.id] for e in stems}  # the calibration stems only chose the thresholds
    given = catalog.labels()
    labels = {e.id: given[e.id] for e in catalog.stems()}
    for key, s in scores.items():
        if s.status == "ok" and s.probs is not None:
            labels[key] = labels_from(s.probs, classes, threshold)
        elif s.status == "ok":  # a separator's levels
            labels[key] = labels_from_levels(s.levels_db, classes, settings.margin_db)
    scored = [k for k, s in scores.items() if s.status == "ok"]
    if not scored:
        raise ValueError(f"refine: none of {len(stems)} stems could be scored (silent or unreadable); "
                         "no label version written; check the catalog with `noisymss check`")
    if not any(labels[k] for k in scored):
        rule = (f"margin {settings.margin_db:g} dB; lower --margin_db or check the separator checkpoint"
                if scores[scored[0]].probs is None else
                f"threshold {threshold}; lower --threshold or check the classifier checkpoint")
        raise ValueError(f"refine: every scored stem ({len(scored)}) lost every label at {rule}; no label version written")
    if write and version is not None and not finished:
        record = dict(provenance) | {"producer": "noisymss refine", "settings": asdict(settings), "classes": list(classes),
                                     "split": split, "scored": len(scores), "thresholds": threshold,
                                     "not_scored": {k: f"{s.status}: {s.reason}" for k, s in scores.items() if s.status != "ok"}}
        companions = {"probs": probability_rows(scores, classes),
                      "flips": flip_table(given, labels, [e.id for e in stems])}
        catalog.write_labels(version, labels, record, companions)
    return labels, scores


def probability_rows(scores: Mapping[str, StemScore], classes: Sequence[str]) -> list[dict]:
    """One row per scored stem: id, status, windows, what the scores are (a classifier's
    probability, or a separator's level in dB), and every class's (empty when the stem was not
    scored), rounded to 4 decimals."""
    rows = []
    for k, s in sorted(scores.items()):
        values = s.probs if s.probs is not None else s.levels_db
        rows.append({"id": k, "status": s.status, "windows": s.windows,
                     "score": "probability" if s.probs is not None else "level_db" if values else "",
                     **{c: round(float(v), 4) if values else "" for c, v in zip(classes, values or [None] * len(classes))}})
    return rows


def flip_table(before: Mapping[str, Sequence[str]], after: Mapping[str, Sequence[str]], ids: Sequence[str]) -> list[dict]:
    """How many of `ids` went from each label set to each other: rows {from, to, stems}, the
    changes first, most stems first; labels joined with '+', '(none)' for none."""
    name = lambda labels: "+".join(sorted(labels)) or "(none)"  # noqa: E731
    counts = Counter((name(before[k]), name(after[k])) for k in ids)
    order = sorted(counts, key=lambda pair: (pair[0] == pair[1], -counts[pair], pair))
    return [{"from": a, "to": b, "stems": counts[(a, b)]} for a, b in order]


def refine_report(catalog: Catalog, classes: Sequence[str], refined: Mapping[str, Sequence[str]],
                  scores: Mapping[str, StemScore]) -> list[dict]:
    """Per class: labels added and removed; where the truth is known, per-class F1 of given and refined
    labels, and a final 'all' row with exact-match accuracy and the stems left unscored."""
    given = catalog.labels()
    stems = [e for e in catalog.stems() if e.id in scores]
    known = [e for e in stems if e.true_labels]  # stems whose truth the catalog knows
    rows = []
    for c in classes:
        row = {"class": c, "added": sum(c in refined[e.id] and c not in given[e.id] for e in stems),
               "removed": sum(c not in refined[e.id] and c in given[e.id] for e in stems)}
        if known:
            row["given_f1"] = f1_percent([c in given[e.id] for e in known], [c in e.true_labels for e in known])
            row["refined_f1"] = f1_percent([c in refined[e.id] for e in known], [c in e.true_labels for e in known])
        rows.append(row)
    total = {"class": "all", "added": sum(r["added"] for r in rows), "removed": sum(r["removed"] for r in rows),
             "changed_stems": sum(set(refined[e.id]) != set(given[e.id]) for e in stems),
             "not_scored": sum(s.status != "ok" for s in scores.values())}
    if known:
        total["given_exact_match"] = float(100 * np.mean([set(given[e.id]) == set(e.true_labels) for e in known]))
        total["refined_exact_match"] = float(100 * np.mean([set(refined[e.id]) == set(e.true_labels) for e in known]))
    return rows + [total]


def f1_percent(pred: list[bool], true: list[bool]) -> float:
    """F1 (in %) of boolean predictions against the truth; NaN when neither has a positive."""
    tp = sum(p and t for p, t in zip(pred, true))
    fp = sum(p and not t for p, t in zip(pred, true))
    fn = sum(t and not p for p, t in zip(pred, true))
    return 100.0 * 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")


def format_report(rows: list[dict]) -> str:
    """The report as a text table."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    cell = lambda v: f"{v:.1f}" if isinstance(v, float) else str(v)  # noqa: E731
    widths = [max(len(c), *(len(cell(r.get(c, ""))) for r in rows)) for c in cols]
    lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(cell(r.get(c, "")).rjust(w) for c, w in zip(cols, widths)) for r in rows]
    return "\n".join(lines)
