"""Melody extraction scores with mir_eval (VR, VFA, RPA, RCA, OA, in percent)."""
from __future__ import annotations

import warnings

import numpy as np

METRICS = ("VR", "VFA", "RPA", "RCA", "OA")
_MIR_EVAL_NAMES = {
    "VR": "Voicing Recall", "VFA": "Voicing False Alarm", "RPA": "Raw Pitch Accuracy",
    "RCA": "Raw Chroma Accuracy", "OA": "Overall Accuracy",
}


def melody_scores(ref_f0: np.ndarray, est_f0: np.ndarray, hop: float = 0.01) -> dict[str, float]:
    """Scores an estimate against a reference, both f0 tracks in Hz on the same hop (0 = unvoiced).

    mir_eval resamples both to 10 ms and uses its 50-cent tolerance. A reference with no voiced
    (or no unvoiced) frame leaves VR/RPA/RCA (or VFA) undefined: mir_eval reports 0 and warns;
    those warnings are silenced here since short test songs hit them on purpose.
    """
    import mir_eval

    n = max(len(ref_f0), len(est_f0))
    ref = np.pad(np.asarray(ref_f0, dtype=np.float64), (0, n - len(ref_f0)))
    est = np.pad(np.asarray(est_f0, dtype=np.float64), (0, n - len(est_f0)))
    times = np.arange(n) * hop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = mir_eval.melody.evaluate(times, ref, times, est)
    return {k: 100.0 * float(result[v]) for k, v in _MIR_EVAL_NAMES.items()}
