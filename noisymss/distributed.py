"""A map sharded over DDP ranks and gathered everywhere: `sharded_map(keys, fn)`.

Each rank computes `fn` for keys rank, rank + world, ...; the results are gathered with
`all_gather_object` (works on gloo and NCCL), and every rank returns the same dict, so every rank
can then apply the same update. Its users: teacher-student pseudo labels, self-refining of stem
labels, and museval scoring of songs. Call it on all ranks: it holds a collective.
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


def shard(keys: Sequence[Hashable]) -> list[Hashable]:
    """This rank's share of `keys`: keys[rank::world size] (all of them when not distributed)."""
    rank, size = world()
    return list(keys)[rank::size]


def sharded_map(
    keys: Sequence[Hashable],
    fn: Callable[[Hashable], Any],
    progress: bool = False,
    desc: str = "map",
) -> dict[Hashable, Any]:
    """Computes `fn` once per key across ranks and returns {key: result} on every rank.

    Args:
        keys: the inputs (e.g. catalog ids), in the same order on every rank.
        fn: key -> result (picklable); a result of None means "skipped" and is kept as None.
        progress: show a progress bar on rank 0.
        desc: the progress bar's label.

    Returns:
        {key: result} for every key, in `keys` order, identical on every rank.
    """
    rank, _ = world()
    mine = shard(keys)
    if progress and rank == 0:
        from tqdm import tqdm

        mine_iter = tqdm(mine, desc=desc, unit="item")
    else:
        mine_iter = mine
    local = {k: fn(k) for k in mine_iter}
    merged: dict[Hashable, Any] = {}
    for part in gather(local):
        merged.update(part)
    return {k: merged[k] for k in keys}
