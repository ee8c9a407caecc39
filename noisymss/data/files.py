"""Input files for `noisymss predict`: each item names a file and where its result goes."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from torch.utils.data import Dataset

from noisymss.outputs import check_inputs, claim_outputs, output_paths


class InputFiles(Dataset):
    """{'path': str, 'target': str} per input; targets are `out/<name><suffix>`, kept apart for
    inputs that share a name (`noisymss.outputs.output_paths`).

    Args:
        paths: the input files.
        out: the output folder.
        suffix: appended to each input's name to make its target.
        overwrite: replace targets that exist (default: refuse them, before any work).
    """

    def __init__(self, paths: Sequence[str | Path], out: str | Path, suffix: str, overwrite: bool = False):
        self.paths = [Path(p) for p in paths]
        check_inputs(self.paths)
        self.targets = output_paths(self.paths, Path(out), suffix)
        claim_outputs(self.targets, overwrite)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict[str, str]:
        return {"path": str(self.paths[i]), "target": str(self.targets[i])}
