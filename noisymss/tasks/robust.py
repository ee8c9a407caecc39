"""Noise-robust reductions of a batch's (B, S) losses (one per example and source or class), shared by
the separator and classifier tasks: with noisy labels the highest losses are often the mislabelled
stems, so they are left out, by whole examples (loss truncation) or by cells per column (loss
masking: small-loss selection per source or class), at a keep quantile that follows an epoch schedule.
"""
from __future__ import annotations

import torch

REDUCTIONS = ("mean", "truncation", "masking")


def _check_quantile(quantile: float) -> None:
    if not 0.0 < quantile <= 1.0:
        raise ValueError(f"quantile={quantile}: must lie in (0, 1]")


def _for_quantile(x: torch.Tensor) -> torch.Tensor:
    # torch.quantile takes float32 / float64 only; thresholds and values share one dtype so that
    # quantile 1.0 (the maximum) keeps the maximum.
    x = x.detach()
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def loss_truncation(losses: torch.Tensor, quantile: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the examples with the highest loss (CCOM, SDX'23 label-noise track, 1st place).

    An example's loss is its mean over sources; examples strictly above the batch's `quantile`
    (torch.quantile, linear interpolation) get zero weight. With 4 examples the threshold lies
    between sorted losses, so 0.7 / 0.5 / 0.3 drop exactly 1 / 2 / 3 (distinct losses); 1.0 keeps all.

    Args:
        losses: (B, S).
        quantile: in (0, 1].

    Returns:
        The mean loss over kept examples (scalar), and the (B,) boolean keep mask.
    """
    _check_quantile(quantile)
    per_example = losses.mean(1)
    # The choice of examples is not differentiated: only the kept losses are.
    values = _for_quantile(per_example)
    keep = values <= torch.quantile(values, quantile)
    return (per_example * keep).sum() / keep.sum().clamp(min=1), keep


def loss_masking(losses: torch.Tensor, quantile: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask the highest losses per source (KUIELab, SDX'23 label-noise track).

    For each source separately, cells whose loss is above that source's batch `quantile` are
    masked: a stem that looks mislabelled is dropped without dropping the example's other stems.

    Args:
        losses: (B, S).
        quantile: in (0, 1].

    Returns:
        The mean over kept (example, source) cells (scalar), and the (B, S) boolean keep mask.
    """
    _check_quantile(quantile)
    values = _for_quantile(losses)
    keep = values <= torch.quantile(values, quantile, dim=0, keepdim=True)  # thresholds (1, S)
    return (losses * keep).sum() / keep.sum().clamp(min=1), keep


def reduce_loss(losses: torch.Tensor, mode: str = "mean", quantile: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, S) losses → the scalar to optimise and the (B, S) boolean mask of cells it counts.

    Args:
        mode: "mean" (every cell), "truncation" (`loss_truncation`: whole examples) or "masking"
            (`loss_masking`: cells per source).
        quantile: the keep quantile of the robust modes (1.0 keeps all).
    """
    if mode == "mean":
        return losses.mean(), torch.ones_like(losses, dtype=torch.bool)
    if mode == "truncation":
        loss, keep = loss_truncation(losses, quantile)
        return loss, keep[:, None].expand_as(losses)
    if mode == "masking":
        return loss_masking(losses, quantile)
    raise ValueError(f"mode={mode!r}: expected one of {REDUCTIONS}")


def quantile_at(epoch: int, schedule: list[tuple[int, float]] | list[list[float]]) -> float:
    """The keep quantile in force at `epoch` under a step schedule.

    Args:
        schedule: (first epoch, quantile) pairs, e.g. [[0, 1.0], [10, 0.7], [20, 0.5]]: keep all for
            epochs 0–9, 0.7 for 10–19, 0.5 from 20 on (a model first fits the easy examples, then the
            suspected-noisy ones are dropped). Before the first entry: 1.0.
    """
    entries = sorted((int(start), float(q)) for start, q in schedule)
    for _, q in entries:
        _check_quantile(q)
    current = 1.0
    for start, q in entries:
        if epoch < start:
            break
        current = q
    return current
