"""MedleyDB 1.x: multitrack songs with instrument metadata and melody annotations.

    root/Audio/<Song>/<Song>_METADATA.yaml          (or root/Metadata/<Song>_METADATA.yaml)
    root/Audio/<Song>/<Song>_MIX.wav
    root/Audio/<Song>/<Song>_STEMS/<Song>_STEM_NN.wav
    root/Annotations/Melody_Annotations/MELODY2/<Song>_MELODY2.csv   (or root/Annotations/, or the song folder)
    root/Annotations/Pitch_Annotations/<Song>_STEM_NN.csv            (optional, per-stem f0)

Stems are labelled by mapping MedleyDB's instrument names onto the project's default classes
(`to_class`); a stem with several instruments gets each class once. The metadata is curated,
so true labels equal the given ones, except in songs marked `has_bleed: yes`, where other
instruments leak into stems and the truth is unknown. Raw tracks (`<Song>_RAW/`) are not
indexed: they are the pieces the stems were mixed from. Split "train"; the artist (the metadata's,
else the name before the first '_') is the group, so splits keep an artist's songs together.

The MELODY2 annotation goes where the melody is: on the mix when the metadata says the song is
sung (`instrumental: no`), else on the stem that carries the melody (`component: melody`), so a
vocal-melody model never learns an instrument's line as the voice. A song without readable
metadata gets no melody annotation (whether it is sung is unknown).
"""
from __future__ import annotations

from pathlib import Path

import yaml

from noisymss.data.sources.probe import Plan, Skipped, audio_files, is_audio

SPLIT = "train"
# Exact MedleyDB taxonomy names (medleydb/resources/taxonomy.yaml) → class. Pitched
# percussion (vibraphone, timpani ...) and low winds/brass (tuba, bassoon, bass clarinet)
# stay "other", as in MUSDB, whose "bass" means bass guitar, double bass and synth bass.
VOCALS = {"male singer", "female singer", "male speaker", "female speaker", "male rapper", "female rapper",
          "beatboxing", "vocalists", "choir", "male screamer", "female screamer"}
DRUMS = {"drum set", "kick drum", "snare drum", "bass drum", "toms", "cymbal", "high hat", "hi-hat",
         "drum machine", "auxiliary percussion", "tambourine", "bongo", "conga", "darbuka", "doumbek",
         "tabla", "claps", "shaker", "maracas", "cowbell", "cabasa", "triangle", "sleigh bells", "gong",
         "guiro", "gu", "castanet", "rattle"}
BASS = {"electric bass", "double bass", "bass guitar", "bass synthesizer", "synth bass", "fretless bass"}


def to_class(instrument: str) -> str:
    """Maps one MedleyDB instrument name to vocals / drums / bass / other (see `guessed`)."""
    return _mapped(instrument)[0]


def guessed(instrument: str) -> bool:
    """True when `to_class` mapped a name outside the tables by a keyword in it (reported by the index)."""
    return _mapped(instrument)[1]


def _mapped(instrument: str) -> tuple[str, bool]:
    # Names outside the tables fall back to keywords, drums first so "bass drum" is not bass.
    name = instrument.strip().lower()
    for cls, names in (("vocals", VOCALS), ("drums", DRUMS), ("bass", BASS)):
        if name in names:
            return cls, False
    if any(k in name for k in ("drum", "percussion", "cymbal", "hi-hat", "high hat")):
        return "drums", True
    if any(k in name for k in ("singer", "vocal", "rapper", "choir", "voice")):
        return "vocals", True
    if name.endswith(" bass") or name.startswith(("bass guitar", "bass synth")):
        return "bass", True
    return "other", False


def scan(root: Path) -> tuple[list[Plan], list[Skipped]]:
    """Plans each song's mix and the stems its metadata lists; root may also be the Audio folder."""
    audio_dir = root / "Audio" if (root / "Audio").is_dir() else root
    plans, skipped = [], []
    for song_dir in sorted(d for d in audio_dir.iterdir() if d.is_dir() and not d.name.startswith(".")):
        p, s = _scan_song(root, song_dir)
        plans += p
        skipped += s
    return plans, skipped


def _scan_song(root: Path, song_dir: Path) -> tuple[list[Plan], list[Skipped]]:
    song = song_dir.name
    meta, problem = _metadata(root, song_dir)
    mix = song_dir / (meta.get("mix_filename") or f"{song}_MIX.wav")
    stem_dir = song_dir / (meta.get("stem_dir") or f"{song}_STEMS")
    melody = _first_file(root / "Annotations/Melody_Annotations/MELODY2" / f"{song}_MELODY2.csv",
                         root / "Annotations" / f"{song}_MELODY2.csv", song_dir / f"{song}_MELODY2.csv")
    plans, skipped = [], []
    artist = str(meta.get("artist") or song.split("_")[0])
    sung = not problem and str(meta.get("instrumental", "no")).lower() not in ("yes", "true")
    # The mix needs no metadata, so it is indexed even when the YAML is missing or broken.
    if mix.is_file():
        plans.append(Plan(mix, f"{song}/{mix.stem}", song, "mixture", SPLIT,
                          annotation=str(melody) if melody and sung else "", group=artist))
    stem_files = audio_files(stem_dir, root) if stem_dir.is_dir() else []
    if problem:
        return plans, skipped + [Skipped(str(f), problem) for f in stem_files]
    truth_known = str(meta.get("has_bleed", "no")).lower() not in ("yes", "true")
    stems = meta.get("stems") or {}
    melody_stems = [k for k, v in stems.items() if isinstance(v, dict) and v.get("component") == "melody"]
    listed = set()
    for key, stem in sorted(stems.items()):
        stem = stem if isinstance(stem, dict) else {}
        path = stem_dir / str(stem.get("filename") or f"{song}_STEM_{str(key).lstrip('S')}.wav")
        listed.add(path.name)
        if not path.is_file():
            skipped.append(Skipped(str(path), f"listed in metadata as {key} but missing"))
            continue
        names = stem.get("instrument") or []
        names = [str(n) for n in names] if isinstance(names, list) else [str(names)]
        labels = tuple(dict.fromkeys(to_class(n) for n in names if n.strip()))
        for n in names:
            if n.strip() and guessed(n):
                skipped.append(Skipped(str(path), f"instrument {n!r} is in no table: labelled '{to_class(n)}' by its "
                                                  "name (`noisymss catalog map` renames it)", kept=True))
        if not labels:
            skipped.append(Skipped(str(path), f"no instrument for {key} in metadata"))
            continue
        pitch = root / "Annotations/Pitch_Annotations" / f"{path.stem}.csv"
        annotation = str(pitch) if pitch.is_file() else ""
        if melody and not sung and melody_stems == [key]:  # an instrumental song's melody, on its one melody stem
            annotation = str(melody)
        plans.append(Plan(path, f"{song}/{path.stem}", song, "stem", SPLIT, labels=labels,
                          true_labels=labels if truth_known else None, annotation=annotation, group=artist))
    skipped += [Skipped(str(f), "stem not listed in metadata") for f in stem_files if f.name not in listed]
    skipped += [Skipped(str(f), "neither the mix nor in the stems folder")
                for f in sorted(song_dir.iterdir()) if f.is_file() and is_audio(f) and f != mix
                and not f.name.startswith(".") and not f.name.endswith(".part")]
    return plans, skipped


def _metadata(root: Path, song_dir: Path) -> tuple[dict, str]:
    """The song's metadata and '' or ({}, why it is unusable)."""
    name = f"{song_dir.name}_METADATA.yaml"
    path = _first_file(song_dir / name, root / "Metadata" / name)
    if path is None:
        return {}, f"no {name}: stems cannot be labelled"
    try:
        meta = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        return {}, f"unreadable {name} ({str(err).splitlines()[0][:120]})"
    if not isinstance(meta, dict) or not isinstance(meta.get("stems") or {}, dict):
        return {}, f"{name} is not MedleyDB metadata (no 'stems' mapping)"
    return meta, ""


def _first_file(*paths: Path) -> Path | None:
    return next((p for p in paths if p.is_file()), None)
