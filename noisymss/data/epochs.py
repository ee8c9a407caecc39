"""Training draws that change every epoch, whatever the Trainer's flags.

A training example is a pure function of (epoch, index). The epoch must therefore reach the
dataset, and it must not depend on Lightning rebuilding the loaders each epoch
(`reload_dataloaders_every_n_epochs`): a config without that flag would silently train every
epoch on epoch 0's examples. So the epoch travels with the index: `EpochSampler` yields
`(epoch, index)` keys, and Lightning calls its `set_epoch` at the start of every training epoch
(directly, or forwarded by the `DistributedSamplerWrapper` it puts around it under DDP). The key
is made in the main process when a batch is asked for, so loader workers, persistent or not, see
the right epoch.
"""
from __future__ import annotations

from typing import Iterator

from torch.utils.data import Sampler


class EpochSampler(Sampler):
    """Yields (epoch, index) for index in range(length), in order, for the epoch last set.

    Args:
        length: examples per epoch.
        epoch: the first epoch (a loader built by a resumed run starts at the run's epoch).
    """

    def __init__(self, length: int, epoch: int = 0):
        self.length, self.epoch = length, epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[tuple[int, int]]:
        # read at every step, not once: Lightning may create the iterator before it sets the epoch
        for index in range(self.length):
            yield self.epoch, index


def epoch_and_index(key: int | tuple[int, int]) -> tuple[int, int]:
    """A dataset key as (epoch, index): evaluation loaders index plainly (epoch 0)."""
    if isinstance(key, tuple):
        return int(key[0]), int(key[1])
    return 0, int(key)


def current_epoch(trainer) -> int:
    """The epoch a training loader built now starts at: a resumed run's, not 0 (0 without a Trainer)."""
    return trainer.current_epoch if trainer is not None else 0
