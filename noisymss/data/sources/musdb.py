"""MUSDB18-HQ (and the SDX'23 sets, `sdx23.py`, in the same layout): one folder per song, one file per stem.

    root/{train,test}/<song>/{mixture,vocals,drums,bass,other}.{wav,flac}   MUSDB18-HQ
    root/<song>/{vocals,drums,bass,other}.wav                                SDX'23 sets

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


def scan(root: Path) -> tuple[list[Plan], list[Skipped]]:
    """MUSDB18-HQ: clean stems, the official validation split."""
    return scan_songs(root, clean=True, validation=validation_tracks())


def validation_tracks() -> frozenset[str]:
    """The names of MUSDB18's 14 validation tracks, from the `musdb` package's own configuration."""
    from importlib.resources import files

    import yaml

    return frozenset(yaml.safe_load((files("musdb") / "configs" / "mus.yaml").read_text())["validation_tracks"])


def scan_songs(root: Path, clean: bool, validation: frozenset[str] = frozenset()) -> tuple[list[Plan], list[Skipped]]:
    """Plans a row for every audio file under root; files not inside a song folder are skipped.

    Args:
        clean: the stems' labels are true (MUSDB18), or not known to be (SDX'23).
        validation: songs of the train split that are the validation split."""
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
    # MUSDB18 (not -HQ) ships .stem.mp4 multitracks, which libsndfile cannot open: say so.
    for path in sorted(root.rglob("*.stem.mp4")):
        if not ignored(path, root):
            skipped.append(Skipped(str(path), "MUSDB18 .stem.mp4 is not supported; "
                                              "use MUSDB18-HQ or decode the stems to WAV"))
    return plans, skipped
