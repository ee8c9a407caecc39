"""Test songs for the separation metrics, and (run as a script by test_separation_metrics.py) one rank of a
2-process CPU DDP run (gloo, torchrun-style environment) of `evaluate_songs`; each rank pickles what it got.

usage: RANK=r WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=p python ddp_separation_eval.py OUT_DIR JOBS KEY...
"""
import os
import pickle
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

SR = 8000
SOURCES = ("tone", "low", "noise")


def song(key: str, seconds: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """(estimates, references), both (3, 1, T) at 8 kHz: two tones and noise; estimates leak and are noisy.

    A key ending in "-silent" has no "low" source (its reference is all zeros)."""
    rng = np.random.default_rng(sum(map(ord, key)))
    t = np.arange(int(seconds * SR)) / SR
    f = rng.uniform(300, 600)
    refs = np.stack([
        sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 4)) * 0.3,
        np.sin(2 * np.pi * rng.uniform(60, 120) * t) * 0.5,
        rng.standard_normal(len(t)) * 0.1,
    ])[:, None]
    if key.endswith("-silent"):
        refs[1] = 0.0
    est = refs + 0.2 * refs[[1, 2, 0]] + rng.uniform(0.01, 0.05) * rng.standard_normal(refs.shape)
    return est.astype(np.float32), refs.astype(np.float32)


if __name__ == "__main__":
    import torch

    from noisymss.metrics.separation import evaluate_songs

    out, jobs, keys = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    torch.distributed.init_process_group("gloo")
    results = evaluate_songs(keys, song, SR, jobs=jobs, sources=SOURCES)
    with open(os.path.join(out, f"rank{torch.distributed.get_rank()}.pkl"), "wb") as f:
        pickle.dump(results, f)
    torch.distributed.destroy_process_group()
