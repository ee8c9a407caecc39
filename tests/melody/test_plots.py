import numpy as np

from noisymss.melody.plots import f0_figure


def _cyan(img: np.ndarray) -> int:
    r, g, b = (img[..., k].astype(int) for k in range(3))
    return int(np.sum((r < 80) & (g > 180) & (b > 180)))


def test_f0_figure_draws_the_reference_only_where_voiced():
    db = np.full((300, 513), -80.0)
    voiced = np.where(np.arange(300) < 150, 440.0, 0.0)
    img = f0_figure(db, voiced, np.zeros(300))
    assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8
    silent = f0_figure(db, np.zeros(300), np.zeros(300))
    assert _cyan(img) > 100 and _cyan(silent) < _cyan(img) // 10  # the legend's sample stroke is all that is left
    # the line sits at 440 Hz: its rows are in the lower half of the 0-1200 Hz axis
    rows = np.flatnonzero(((img[..., 0] < 80) & (img[..., 1] > 180) & (img[..., 2] > 180)).sum(axis=1) > 50)
    assert len(rows) and rows.mean() > img.shape[0] * 0.4
