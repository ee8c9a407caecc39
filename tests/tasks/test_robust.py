"""The robust reductions' choices: which examples or cells each keeps, and what gradient reaches them."""
from __future__ import annotations

import pytest
import torch

from noisymss.tasks.robust import loss_masking, loss_truncation, quantile_at, reduce_loss

# per-example means 1, 4, 2, 3 (row 3's sources differ, so the example mean, not a source, decides)
TRUNC = torch.tensor([[0.5, 1.5], [4.0, 4.0], [2.0, 2.0], [1.0, 5.0]])


@pytest.mark.parametrize("quantile, kept, mean", [
    (1.0, [True, True, True, True], 2.5),
    (0.7, [True, False, True, True], 2.0),  # drops 1 of 4: the 4
    (0.5, [True, False, True, False], 1.5),  # drops 2 of 4: the 4 and the 3
    (0.3, [True, False, False, False], 1.0),  # drops 3 of 4
])
def test_loss_truncation_drops_the_largest(quantile, kept, mean):
    losses = TRUNC.clone().requires_grad_()
    loss, keep = loss_truncation(losses, quantile)
    assert keep.tolist() == kept
    assert loss.item() == pytest.approx(mean)
    loss.backward()
    assert (losses.grad[~keep] == 0).all() and (losses.grad[keep] > 0).all()


def test_loss_truncation_count_does_not_depend_on_order():
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        losses = torch.rand(4, 3, generator=g)
        for quantile, dropped in [(0.7, 1), (0.5, 2), (0.3, 3)]:
            _, keep = loss_truncation(losses, quantile)
            assert (~keep).sum().item() == dropped
            assert losses.mean(1)[~keep].min() > losses.mean(1)[keep].max()


def test_loss_masking_per_source():
    losses = torch.tensor([[1.0, 4.0], [2.0, 3.0], [3.0, 2.0], [4.0, 1.0]])
    loss, keep = loss_masking(losses, 0.5)  # thresholds 2.5 in both columns
    assert keep.tolist() == [[True, False], [True, False], [False, True], [False, True]]
    assert loss.item() == pytest.approx((1 + 2 + 2 + 1) / 4)
    loss, keep = loss_masking(losses, 0.3)  # thresholds 1.9: one cell per source
    assert keep.tolist() == [[True, False], [False, False], [False, False], [False, True]]
    assert loss.item() == pytest.approx(1.0)
    loss, keep = loss_masking(losses, 1.0)
    assert keep.all() and loss.item() == pytest.approx(2.5)


def test_reduce_loss_modes():
    loss, keep = reduce_loss(TRUNC, "mean")
    assert loss.item() == pytest.approx(2.5) and keep.shape == (4, 2) and keep.all()
    loss, keep = reduce_loss(TRUNC, "truncation", 0.5)
    assert loss.item() == pytest.approx(1.5)
    assert keep.tolist() == [[True, True], [False, False], [True, True], [False, False]]
    loss, keep = reduce_loss(TRUNC, "masking", 1.0)
    assert keep.all() and loss.item() == pytest.approx(2.5)
    with pytest.raises(ValueError):
        reduce_loss(TRUNC, "median")
    with pytest.raises(ValueError):
        reduce_loss(TRUNC, "truncation", 0.0)


def test_quantile_schedule():
    schedule = [[0, 1.0], [10, 0.7], [20, 0.5]]
    assert [quantile_at(e, schedule) for e in (0, 9, 10, 19, 20, 100)] == [1.0, 1.0, 0.7, 0.7, 0.5, 0.5]
    assert quantile_at(3, [(5, 0.7)]) == 1.0  # before the first entry: keep all
    assert quantile_at(12, [(20, 0.5), (10, 0.7)]) == 0.7  # order of entries does not matter
    with pytest.raises(ValueError):
        quantile_at(0, [(0, 1.5)])
