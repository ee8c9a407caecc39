"""The one relabel mechanism: score items with a model, sharded over DDP ranks, gathered everywhere.

Both users go through `relabel()`: the teacher-student callback (pseudo labels for unlabelled
songs) and self-refining (new labels for noisy stems). Each rank scores items rank, rank +
world, ...; the results are gathered with `all_gather_object` (works on gloo and NCCL), and
every rank returns the same dict, so every rank then applies the same update. Call it on all
ranks: it holds a collective.
"""
from __future__ import annotations

from typing import Any, Callable, Hashable, Sequence

import torch


def world() -> tuple[int, int]:
    """(rank, world size) of the current process group; (0, 1) when not distributed."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def gather(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order, on every rank."""
    rank, size = world()
    if size == 1:
        return [obj]
    out: list[Any] = [None] * size
    torch.distributed.all_gather_object(out, obj)
    return out


def relabel(
    keys: Sequence[Hashable],
    score: Callable[[Hashable], Any],
    progress: bool = False,
    desc: str = "relabel",
) -> dict[Hashable, Any]:
    """Scores every key once across ranks and returns {key: result} on every rank.

    Args:
        keys: what to score (e.g. catalog ids), in the same order on every rank.
        score: key -> result (picklable); a result of None means "skipped" and is kept as None.
        progress: show a progress bar on rank 0.

    Returns:
        {key: result} for every key, identical on every rank.
    """
    rank, size = world()
    mine = list(keys)[rank::size]
    if progress and rank == 0:
        from tqdm import tqdm

        mine_iter = tqdm(mine, desc=desc, unit="item")
    else:
        mine_iter = mine
    local = {k: score(k) for k in mine_iter}
    merged: dict[Hashable, Any] = {}
    for part in gather(local):
        merged.update(part)
    return {k: merged[k] for k in keys}
