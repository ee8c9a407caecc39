"""What the tasks share for `noisymss predict`: one output per input file, written by the task.

The Trainer's `predict` (noisymss.trainer) feeds `InputFiles` batches ({'path', 'target'}); each
task's `predict_file(path, target)` computes and writes its result for one file, atomically, with
the same code as its own command (`noisymss melody`, `noisymss separate`), and returns what it
wrote. Targets come from `noisymss.outputs.output_paths`, so no two inputs write the same output.
"""
from __future__ import annotations

from pathlib import Path


class FilePredictions:
    """Mixin for a LightningModule with `predict_file(path, target) -> list[Path]` and `predict_suffix`
    (what `output_paths` appends to an input's name: '.f0.txt', '' for a folder of stems, ...)."""

    predict_suffix = ""

    def predict_file(self, path: Path, target: Path) -> list[Path]:
        raise NotImplementedError

    def predict_step(self, batch: dict, batch_idx: int = 0) -> list[Path]:
        written: list[Path] = []
        for path, target in zip(batch["path"], batch["target"]):
            written += self.predict_file(Path(path), Path(target))
        return written
