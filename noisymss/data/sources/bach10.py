"""Bach10 (Duan & Pardo): 10 real chorale recordings, each with four clean instrument stems.

    root/NN-Name/NN-Name.{flac,wav}                 the mix
    root/NN-Name/NN-Name-<instrument>.{flac,wav}    violin, clarinet, saxphone (sic), bassoon
    root/NN-Name/NN-Name-GTF0s.mat                  f0 ground truth, one row per part in that order

The stems are real and clean, so given and true labels are both the instrument. Each stem's
annotation is its row of the GTF0s file ('...-GTF0s.mat#k'); the mix gets the violin row (#0),
which carries the melody. Everything is split "test": Bach10 is the project's real test set.
"""
from __future__ import annotations

from pathlib import Path

from noisymss.data.sources.probe import Plan, Skipped, audio_files

# File-name spelling → (label, row in GTF0s). The dataset spells saxophone "saxphone".
PARTS = {
    "violin": ("violin", 0),
    "clarinet": ("clarinet", 1),
    "saxphone": ("saxophone", 2),
    "saxophone": ("saxophone", 2),
    "bassoon": ("bassoon", 3),
}
SPLIT = "test"


def scan(root: Path) -> tuple[list[Plan], list[Skipped]]:
    """Plans the mix and the four parts of every song folder (a folder named like its files)."""
    plans, skipped = [], []
    for path in audio_files(root):
        folder = path.parent
        name, stem = folder.name, path.stem
        song = folder.relative_to(root).as_posix() if folder != root else name
        gtf0s = folder / f"{name}-GTF0s.mat"
        # A missing GTF0s file leaves the rows without annotation rather than pointing at nothing.
        ref = (lambda k: f"{gtf0s}#{k}") if gtf0s.is_file() else (lambda k: "")
        if stem == name and folder != root:
            plans.append(Plan(path, f"{song}/mix", song, "mixture", SPLIT, annotation=ref(0)))
            continue
        part = stem[len(name) + 1:].lower() if stem.startswith(f"{name}-") else None
        if part not in PARTS or folder == root:
            skipped.append(Skipped(str(path), "not a Bach10 mix or part (expected <song>/<song>.flac or "
                                              "<song>/<song>-<violin|clarinet|saxphone|bassoon>.flac)"))
            continue
        label, row = PARTS[part]
        plans.append(Plan(path, f"{song}/{label}", song, "stem", SPLIT, labels=(label,), true_labels=(label,),
                          annotation=ref(row)))
    return plans, skipped
