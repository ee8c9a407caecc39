"""The demo corpus: Bach chorales rendered as vocals / drums / bass / other songs with exact stems.

Each song folder holds one FLAC per stem, the mixture (the exact integer sum of the stems'
16-bit samples), the melody f0 at 10 ms, and `meta.json`. Label noise is planned for the whole
corpus up front from the seed, so a fraction `label_noise` of stems is corrupted, the kinds of
`noise_kinds` taking turns:

- swap:  the stem's given label is another class (a "bass" file that is a guitar);
- merge: the stem absorbs another stem of its song and keeps one label (a "drums" file that
         also holds the bass); the absorbed stem is not written, so the mixture stays the sum;
- bleed: the stem also carries another stem's part 10-20 dB below its own (a "vocals" file
         with the drums in it, as a microphone hears its neighbours); its label is right, its
         audio is not clean (meta.json's `noise` says which stems bleed, from what, how loud).

The truth stays in the catalog's `true_labels` column. Songs are written to a temp folder that
is renamed when complete, so a rerun skips finished songs and never uses a half-written one.

The vocal stem is GM Voice Oohs or the source-filter singer of voice.py, by the `voice` setting
("mix": either, per song, recorded in meta.json); its f0 file is exact for both.
"""
from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from noisymss.atomic import atomic_write_text, remove_partials
from noisymss.data.annotations import write_f0
from noisymss.data.catalog import Catalog, Entry
from noisymss.data.label_noise import KINDS as NOISE_KINDS, bleed_into, plan_noise
from noisymss.data.synth.render import Track, Vibrato, default_soundfont, render
from noisymss.data.synth.score import BACH10_CHORALES, chorale_names, drum_notes, satb_parts, timed_notes

CLASSES = ("vocals", "drums", "bass", "other")
_PROGRAMS = {
    "vocals": (53,),  # Voice Oohs: follows the score within cents; Choir Aahs' slow attack does not
    "bass": (32, 33, 34, 35, 36, 37, 38, 39),
    "other": (0, 1, 2, 4, 5, 6, 16, 17, 19, 24, 25, 26, 27, 40, 41, 42, 48, 49),
}
_LEVEL_DB = {"vocals": (0.0, 1.0), "drums": (-3.0, 2.0), "bass": (-3.0, 2.0), "other": (-3.0, 2.0)}  # mean, sd
# Who sings the vocal stem: GM Voice Oohs, the source-filter singer of voice.py, or either per song.
VOICES = ("oohs", "singer", "mix")


class SynthError(RuntimeError):
    """A demo-corpus request that cannot be carried out; the message says what to do."""


@dataclass(frozen=True)
class SynthSettings:
    """Everything that decides the corpus's content; a rerun must match it to resume."""

    songs: int = 20
    seconds: float = 30.0
    seed: int = 0
    label_noise: float = 0.0
    soundfont: str = ""
    sample_rate: int = 44100
    splits: tuple[tuple[str, float], ...] = (("train", 0.8), ("valid", 0.1), ("test", 0.1))
    include_bach10: bool = False
    voice: str = "mix"
    noise_kinds: tuple[str, ...] = ("swap", "merge")


def synthesize(out: str | os.PathLike, settings: SynthSettings, jobs: int = 1, progress: bool = True) -> Catalog:
    """Renders (or resumes) a demo corpus in `out` and writes `out/catalog.csv`.

    Returns:
        the corpus catalog.
    """
    out = Path(out).resolve()
    if not 0.0 <= settings.label_noise <= 1.0:
        raise SynthError(f"--label-noise {settings.label_noise}: give a fraction between 0 and 1")
    if settings.songs < 1 or settings.seconds <= 0:
        raise SynthError("--songs and --seconds must be positive")
    if settings.voice not in VOICES:
        raise SynthError(f"--voice {settings.voice}: choose one of {', '.join(VOICES)}")
    if not settings.noise_kinds or set(settings.noise_kinds) - set(NOISE_KINDS):
        raise SynthError(f"--noise-kinds {','.join(settings.noise_kinds)}: choose among {', '.join(NOISE_KINDS)}")
    settings = _with_soundfont(settings)
    _claim_folder(out, settings)
    remove_partials(out, recursive=True)  # files a killed run was writing
    plans = plan_songs(settings)
    todo = [p for p in plans if not (out / "songs" / p["song"] / "meta.json").is_file()]
    from tqdm import tqdm

    bar = tqdm(total=len(plans), initial=len(plans) - len(todo), desc="synth", unit="song", disable=not progress)
    if jobs > 1 and len(todo) > 1:
        with ProcessPoolExecutor(jobs) as pool:
            for _ in pool.map(_render_song, [(out, settings, p) for p in todo]):
                bar.update()
    else:
        for p in todo:
            _render_song((out, settings, p))
            bar.update()
    bar.close()
    catalog = Catalog([e for p in plans for e in _entries(out, p["song"], settings)], out)
    catalog.save(out / "catalog.csv", overwrite=True)  # the generator's own table: same settings, same content
    return catalog


def plan_songs(settings: SynthSettings) -> list[dict]:
    """Chooses every song's chorale, tempo, programs, voice, split and label noise from the seed alone."""
    rng = np.random.default_rng([settings.seed, 0])
    names = [n for n in chorale_names() if settings.include_bach10 or n not in BACH10_CHORALES]
    order = list(rng.permutation(len(names)))
    plans, cursor = [], 0
    while len(plans) < settings.songs:
        if cursor >= 2 * len(order) or not order:
            raise SynthError("no four-part chorale found in music21's corpus; is music21 installed completely?")
        name = names[order[cursor % len(order)]]
        parts = satb_parts(name)
        cursor += 1
        if parts is None:
            continue
        song_rng = np.random.default_rng([settings.seed, 1, len(plans)])
        plans.append({
            "song": f"{len(plans):04d}_{name}",
            "chorale": name,
            "parts": parts,
            "bpm": float(song_rng.uniform(64, 100)),
            "transpose": int(song_rng.integers(-2, 3)),
            "programs": {c: int(song_rng.choice(p)) for c, p in _PROGRAMS.items()} | {"other2": int(song_rng.choice(_PROGRAMS["other"]))},
            "levels_db": {c: float(song_rng.normal(*_LEVEL_DB[c])) for c in CLASSES},
            "pans": {c: int(np.clip(song_rng.normal(64, 20), 20, 108)) for c in CLASSES},
            "render_seed": int(song_rng.integers(2**31)),
            "voice": _pick_voice(settings, len(plans)),
            "noise": {},
        })
    _assign_splits(plans, settings, rng)
    _plan_label_noise(plans, settings.label_noise, rng, settings.noise_kinds)
    return plans


def _pick_voice(settings: SynthSettings, index: int) -> str:
    if settings.voice != "mix":
        return settings.voice
    # a stream of its own, so adding the choice left every other planned draw as it was
    return "singer" if np.random.default_rng([settings.seed, 3, index]).random() < 0.5 else "oohs"


def _assign_splits(plans: list[dict], settings: SynthSettings, rng: np.random.Generator) -> None:
    total = sum(f for _, f in settings.splits)
    counts = [int(round(f / total * len(plans))) for _, f in settings.splits]
    counts[0] += len(plans) - sum(counts)  # rounding goes to the first split
    names = [n for (n, _), c in zip(settings.splits, counts) for _ in range(c)]
    for plan, idx in zip(plans, rng.permutation(len(plans))):
        plan["split"] = names[idx]


def _plan_label_noise(plans: list[dict], rate: float, rng: np.random.Generator, kinds: Sequence[str] = ("swap", "merge")) -> None:
    """Corrupts exactly round(rate * stems) stems of the corpus (`noisymss.data.label_noise.plan_noise`)."""
    songs = {i: [(c, c) for c in CLASSES] for i in range(len(plans))}
    for (i, cls), noise in plan_noise(songs, CLASSES, rate, kinds, rng).items():
        plans[i]["noise"][cls] = noise


def _render_song(args: tuple[Path, SynthSettings, dict]) -> None:
    out, settings, plan = args
    final = out / "songs" / plan["song"]
    tmp = out / "songs" / f".tmp-{plan['song']}"
    shutil.rmtree(tmp, ignore_errors=True)  # a previous run killed mid-song
    tmp.mkdir(parents=True)
    rng = np.random.default_rng(plan["render_seed"])
    seconds, spq = settings.seconds, 60.0 / plan["bpm"]
    voice = lambda v: [(o, d, p + plan["transpose"]) for o, d, p in plan["parts"][v]]  # noqa: E731
    sop = timed_notes(voice("soprano"), spq, seconds, rng)
    vib = Vibrato(depth=float(rng.uniform(0.15, 0.35)), rate=float(rng.uniform(4.8, 6.2)))
    tracks = {
        "vocals": [Track(sop, plan["programs"]["vocals"], pan=plan["pans"]["vocals"], vibrato=vib,
                         vibrato_phases=list(rng.uniform(0, 2 * np.pi, len(sop))))],
        "bass": [Track(timed_notes(voice("bass"), spq, seconds, rng), plan["programs"]["bass"], pan=plan["pans"]["bass"])],
        "other": [Track(timed_notes(voice("alto"), spq, seconds, rng), plan["programs"]["other"], pan=plan["pans"]["other"]),
                  Track(timed_notes(voice("tenor"), spq, seconds, rng), plan["programs"]["other2"], pan=127 - plan["pans"]["other"])],
        "drums": [Track(drum_notes(spq, seconds, rng), is_drums=True, pan=plan["pans"]["drums"])],
    }
    stems, f0 = {}, None
    for cls in CLASSES:
        if cls == "vocals" and plan["voice"] == "singer":
            from noisymss.data.synth.voice import sing  # here: scipy.signal takes ~0.7 s to import

            # its own stream too: the other stems come out the same whoever sings
            singer_rng = np.random.default_rng([plan["render_seed"], 1])
            audio, track_f0 = sing(sop, seconds, settings.sample_rate, singer_rng, pan=plan["pans"]["vocals"])
        else:
            audio, track_f0 = render(tracks[cls], seconds, settings.soundfont, settings.sample_rate, f0_track=0 if cls == "vocals" else None)
        rms = np.sqrt(np.mean(audio**2)) + 1e-9
        stems[cls] = audio * (10 ** (plan["levels_db"][cls] / 20) * 0.1 / rms)
        f0 = track_f0 if cls == "vocals" else f0
    # Label noise that changes audio: a merged stem holds two instruments; the absorbed one is dropped.
    # A bleeding stem carries another's part at a level relative to its own (both as rendered,
    # before the song's one scale), and the mixture is the sum of the stems as written, bleed
    # included, as when a microphone's bleed is in the mix.
    clean = dict(stems)
    for cls, noise in plan["noise"].items():
        if noise["kind"] == "bleed":
            stems[cls] = bleed_into(clean[cls], clean[noise["from"]], noise["db"])
    files = []  # (class slot, given labels, true labels)
    for cls in CLASSES:
        noise = plan["noise"].get(cls)
        if any(n.get("absorbs") == cls for n in plan["noise"].values()):
            continue
        if noise and noise["kind"] == "merge":
            stems[cls] = stems[cls] + stems[noise["absorbs"]]
            files.append((cls, (cls,), tuple(c for c in CLASSES if c in (cls, noise["absorbs"]))))
        elif noise and noise["kind"] == "swap":
            files.append((cls, (noise["label"],), (cls,)))
        else:
            files.append((cls, (cls,), (cls,)))
    # One scale for the song keeps the mix balance: mixture peak <= 0.9, every stem <= 0.99.
    mix_peak = np.abs(sum(stems[c] for c, _, _ in files)).max()
    stem_peak = max(np.abs(stems[c]).max() for c, _, _ in files)
    scale = min(0.9 / max(mix_peak, 1e-9), 0.99 / max(stem_peak, 1e-9))
    ints = {c: np.round(stems[c] * scale * 32767).astype(np.int32) for c, _, _ in files}
    mixture = sum(ints.values())
    if np.abs(mixture).max() > 32767:
        raise SynthError(f"{plan['song']}: mixture clips after quantisation; report this as a bug")
    import soundfile as sf

    meta_stems, used = [], set()
    for cls, given, true in files:
        # Files are named by their given label, as in real noisy sets ("bass.wav" that is a guitar).
        name = next(n for n in [given[0]] + [f"{given[0]}-{k}" for k in range(2, 10)] if n not in used)
        used.add(name)
        sf.write(tmp / f"{name}.flac", ints[cls].T.astype(np.int16), settings.sample_rate, subtype="PCM_16")
        meta_stems.append({"file": f"{name}.flac", "labels": list(given), "true_labels": list(true)})
    sf.write(tmp / "mixture.flac", mixture.T.astype(np.int16), settings.sample_rate, subtype="PCM_16")
    write_f0(tmp / "melody.f0.txt", np.arange(len(f0)) * 0.01, f0)
    meta = {k: plan[k] for k in ("song", "chorale", "bpm", "transpose", "programs", "voice", "split", "noise")}
    meta |= {"stems": meta_stems, "mixture": "mixture.flac", "f0": "melody.f0.txt"}
    atomic_write_text(tmp / "meta.json", json.dumps(meta, indent=1) + "\n")
    shutil.rmtree(final, ignore_errors=True)  # only reached when meta.json was missing: an incomplete song
    os.replace(tmp, final)


def _entries(out: Path, song: str, settings: SynthSettings) -> list[Entry]:
    folder = out / "songs" / song
    meta = json.loads((folder / "meta.json").read_text())
    common = dict(song=song, duration=float(settings.seconds), sample_rate=settings.sample_rate, channels=2, split=meta["split"])
    f0 = str(folder / meta["f0"])
    rows = [Entry(id=f"{song}/mixture", path=str(folder / meta["mixture"]), role="mixture", annotation=f0, **common)]
    for stem in meta["stems"]:
        rows.append(Entry(
            id=f"{song}/{Path(stem['file']).stem}", path=str(folder / stem["file"]), role="stem",
            labels=tuple(stem["labels"]), true_labels=tuple(stem["true_labels"]),
            annotation=f0 if "vocals" in stem["true_labels"] else "", **common,
        ))
    return rows


def _with_soundfont(settings: SynthSettings) -> SynthSettings:
    path = Path(settings.soundfont) if settings.soundfont else default_soundfont()
    if not path.is_file():
        raise SynthError(f"--soundfont {path}: file not found; give a General MIDI .sf2 file")
    return replace(settings, soundfont=str(path.resolve()))


def _claim_folder(out: Path, settings: SynthSettings) -> None:
    """Records the settings in out/synth.json, refusing to resume a corpus made with other settings."""
    record = out / "synth.json"
    wanted = json.loads(json.dumps({f.name: getattr(settings, f.name) for f in fields(SynthSettings)}))  # not a subclass's extras
    wanted.pop("soundfont")
    wanted["soundfont_name"] = Path(settings.soundfont).name
    if out.exists() and not out.is_dir():
        raise SynthError(f"{out}: is a file; give --out a folder")
    if record.is_file():
        # a corpus recorded before a setting existed was made with that setting's default
        have = json.loads(json.dumps(asdict(SynthSettings()))) | json.loads(record.read_text())
        have.pop("soundfont", None)
        if have != wanted:
            diff = ", ".join(f"{k}: {have.get(k)} -> {wanted.get(k)}" for k in wanted if have.get(k) != wanted.get(k))
            raise SynthError(f"{out}: holds a corpus made with other settings ({diff}); use a new --out")
    elif out.exists() and any(p for p in out.iterdir() if not p.name.startswith(".")):
        raise SynthError(f"{out}: folder is not empty and is not a demo corpus; use a new --out")
    else:
        atomic_write_text(record, json.dumps(wanted, indent=1) + "\n")
