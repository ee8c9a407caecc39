"""MUSDB18-HQ, MUSDB18 (and the SDX'23 sets, `sdx23.py`, in the same layout): one folder per song, one
file per stem.

    root/{train,test}/<song>/{mixture,vocals,drums,bass,other}.{wav,flac}   MUSDB18-HQ
    root/{train,test}/<song>.stem.mp4                                        MUSDB18 (AAC, one stream per source)
    root/<song>/{vocals,drums,bass,other}.wav                                SDX'23 sets

A `.stem.mp4` is decoded once (stempeg, through ffmpeg) into 16-bit WAVs in the `decode_to`
folder that `noisymss index` puts beside the catalog it writes (`<catalog>.audio/`), and indexed
from there: the training reader seeks in WAVs, which it cannot do in AAC streams.

Every audio file in a song folder is a stem labelled by its file stem ("vocals.wav" is given
"vocals"); MUSDB18's stems are clean, so their labels are also their true labels (the SDX'23 sets
are noisy on purpose: truth unknown). A file named "mixture" is the song's mixture. The split is
the nearest `train`/`test`/`valid` folder above the song, else "train"; MUSDB18's official
validation tracks (the list the `musdb` package ships) in `train/` become "valid".
"""
from __future__ import annotations

from pathlib import Path

from noisymss.data.sources.probe import Plan, Skipped, audio_files, ignored

SPLITS = ("train", "test", "valid")
MIXTURE = "mixture"


def scan(root: Path, decode_to: Path | None = None) -> tuple[list[Plan], list[Skipped]]:
    """MUSDB18(-HQ): clean stems, the official validation split; `.stem.mp4` files decoded into `decode_to`."""
    return scan_songs(root, clean=True, validation=validation_tracks(), decode_to=decode_to)


def _musdb_config() -> dict:
    """The `musdb` package's own description of the dataset (validation tracks, stream order)."""
    from importlib.resources import files

    import yaml

    return yaml.safe_load((files("musdb") / "configs" / "mus.yaml").read_text())


def validation_tracks() -> frozenset[str]:
    """The names of MUSDB18's 14 validation tracks, from the `musdb` package's own configuration."""
    return frozenset(_musdb_config()["validation_tracks"])


def decode_stem_mp4(path: Path, folder: Path) -> list[Path]:
    """The sources of a MUSDB18 `.stem.mp4` as folder/<source>.wav (16-bit PCM), decoded once (a
    rerun reuses complete files; each is written atomically)."""
    order = sorted(_musdb_config()["stem_ids"].items(), key=lambda kv: kv[1])  # mixture, drums, bass, other, vocals
    targets = [folder / f"{name}.wav" for name, _ in order]
    if all(t.is_file() for t in targets):
        return targets
    import numpy as np
    import stempeg

    from noisymss.audio.io import write_audio

    audio, rate = stempeg.read_stems(str(path), dtype=np.float32)  # (sources, frames, channels)
    if audio.ndim != 3 or len(audio) < len(targets):
        raise ValueError(f"{len(audio) if audio.ndim == 3 else 1} stream(s), MUSDB18 has {len(targets)}")
    for target, source in zip(targets, audio):
        write_audio(target, np.clip(source.T, -1.0, 1.0), int(rate), subtype="PCM_16")
    return targets


def scan_songs(root: Path, clean: bool, validation: frozenset[str] = frozenset(),
               decode_to: Path | None = None) -> tuple[list[Plan], list[Skipped]]:
    """Plans a row for every audio file under root; files not inside a song folder are skipped.

    Args:
        clean: the stems' labels are true (MUSDB18), or not known to be (SDX'23).
        validation: songs of the train split that are the validation split.
        decode_to: where `.stem.mp4` files are decoded (None: they are skipped, with the reason)."""
    plans, skipped = [], []
    for path in audio_files(root):
        parts = path.relative_to(root).parts
        if len(parts) < 2 or (len(parts) == 2 and parts[0].lower() in SPLITS):
            skipped.append(Skipped(str(path), "not in a <song>/ folder"))
            continue
        folders = list(parts[:-1])
        split = next((p.lower() for p in reversed(folders) if p.lower() in SPLITS), "train")
        # The split folder is not part of the song's name, so an SDX copy and MUSDB agree on ids.
        if folders[0].lower() in SPLITS:
            folders = folders[1:]
        song, name = "/".join(folders), path.stem
        if split == "train" and song in validation:
            split = "valid"
        if name.lower() == MIXTURE:
            plans.append(Plan(path, f"{song}/{name}", song, "mixture", split))
        else:
            plans.append(Plan(path, f"{song}/{name}", song, "stem", split, labels=(name,),
                              true_labels=(name,) if clean else None))
    # MUSDB18 (not -HQ) ships .stem.mp4 multitracks, which libsndfile cannot open: decoded first.
    for path in sorted(root.rglob("*.stem.mp4")):
        if ignored(path, root):
            continue
        if decode_to is None:
            skipped.append(Skipped(str(path), "a .stem.mp4 must be decoded first: `noisymss index` does it"))
            continue
        rel = path.relative_to(root)
        song = path.name.removesuffix(".stem.mp4")
        split = next((p.lower() for p in reversed(rel.parts[:-1]) if p.lower() in SPLITS), "train")
        if split == "train" and song in validation:
            split = "valid"
        try:
            files = decode_stem_mp4(path, decode_to / rel.parent / song)
        except Exception as err:  # stempeg/ffmpeg: a broken or foreign file is named, the scan goes on
            skipped.append(Skipped(str(path), f"could not be decoded ({str(err).strip().splitlines()[-1][:120]})"))
            continue
        for file in files:
            name = file.stem
            if name == MIXTURE:
                plans.append(Plan(file, f"{song}/{name}", song, "mixture", split))
            else:
                plans.append(Plan(file, f"{song}/{name}", song, "stem", split, labels=(name,),
                                  true_labels=(name,) if clean else None))
    return plans, skipped
