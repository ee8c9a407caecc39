"""Pictures of a melody estimate: the song's spectrogram with the reference and estimated f0 over it."""
from __future__ import annotations

import numpy as np

from noisymss.melody.features import FLOOR_DB, HOP, N_FFT, SAMPLE_RATE


def f0_figure(db: np.ndarray, ref_hz: np.ndarray, est_hz: np.ndarray, title: str = "",
              max_hz: float = 1200.0, dpi: int = 80) -> np.ndarray:
    """Draws one song as an RGB image (what loggers take).

    Args:
        db: (frames, 513) JDC log-magnitude features in dB, frame j at j * 10 ms.
        ref_hz, est_hz: (frames,) f0 in Hz, 0 = unvoiced (drawn as gaps); lengths may differ.
        max_hz: upper edge of the plotted band (the melody range ends at 988 Hz).

    Returns:
        (height, width, 3) uint8 image.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # renders off-screen: no display needed
    from matplotlib.figure import Figure

    bins = int(max_hz / (SAMPLE_RATE / N_FFT)) + 1
    seconds = db.shape[0] * HOP / SAMPLE_RATE
    fig = Figure(figsize=(10, 3.2), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(db[:, :bins].T, origin="lower", aspect="auto", cmap="magma", vmin=FLOOR_DB, vmax=0.0,
              extent=(0.0, seconds, 0.0, bins * SAMPLE_RATE / N_FFT))
    for hz, style, label in ((ref_hz, dict(color="cyan", lw=2.5, alpha=0.8), "reference"),
                             (est_hz, dict(color="lime", lw=1.0), "estimate")):
        t = np.arange(len(hz)) * HOP / SAMPLE_RATE
        ax.plot(t, np.where(hz > 0, hz, np.nan), label=label, **style)  # NaN breaks the line where unvoiced
    ax.set(xlabel="time (s)", ylabel="Hz", title=title, ylim=(0, max_hz))
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
