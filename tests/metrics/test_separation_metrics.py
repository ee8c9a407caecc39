"""Separation metrics: utterance SDR by hand, museval's BSSEval v4 per song (silent sources included),
identical results serial / process pool / 2-process CPU DDP, and the SiSEC summary."""
import json
import math
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from ddp_separation_eval import SOURCES, SR, song

from noisymss.metrics.separation import bss_eval_song, evaluate_songs, summarize, utterance_sdr, write_results

KEYS = ["a", "b-silent", "c", "d"]


def test_utterance_sdr_by_hand():
    ref = torch.tensor([[[3.0, 4.0]], [[1.0, 0.0]]])  # (S=2, C=1, T=2)
    est = torch.tensor([[[3.0, 3.0]], [[0.0, 0.0]]])
    # source 0: ||s||² = 25, ||s - ŝ||² = 1; source 1: 1 and 1
    torch.testing.assert_close(utterance_sdr(est, ref, eps=0.0), torch.tensor([13.979400086720377, 0.0]))
    torch.testing.assert_close(utterance_sdr(est, ref), torch.tensor([10 * math.log10((25 + 1e-8) / (1 + 1e-8)), 0.0]))
    # a perfect estimate is limited by eps only: 10 log10(25 / 1e-8)
    assert utterance_sdr(ref, ref)[0].item() == pytest.approx(93.979, abs=1e-3)
    # silent reference and estimate: eps / eps = 0 dB
    assert utterance_sdr(torch.zeros(1, 2, 5), torch.zeros(1, 2, 5)).item() == 0.0


def test_utterance_sdr_is_batched_over_leading_dims_and_takes_numpy():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((2, 3, 2, 100)).astype(np.float32)
    est = ref + 0.1 * rng.standard_normal(ref.shape).astype(np.float32)
    sdr = utterance_sdr(est, ref)
    assert sdr.shape == (2, 3) and sdr.dtype == torch.float32
    e64, r64 = est.astype(np.float64), ref.astype(np.float64)
    by_hand = 10 * np.log10(((r64**2).sum((-2, -1)) + 1e-8) / (((r64 - e64) ** 2).sum((-2, -1)) + 1e-8))
    np.testing.assert_allclose(sdr.numpy(), by_hand, rtol=1e-5)
    assert 17 < by_hand.min() and by_hand.max() < 23  # noise 20 dB below the references
    with pytest.raises(ValueError, match="differ in shape"):
        utterance_sdr(est[:1], ref)


def _refs(seconds=3.0):
    _, refs = song("x", seconds)
    return refs.astype(np.float64)


def test_bss_eval_perfect_noisy_and_interfered_estimates():
    refs = _refs()
    rng = np.random.default_rng(1)
    perfect = bss_eval_song(refs, refs, SR, sources=SOURCES)
    noise = rng.standard_normal(refs.shape) * np.sqrt((refs**2).mean(axis=(1, 2), keepdims=True)) * 0.1
    noisy = bss_eval_song(refs + noise, refs, SR, sources=SOURCES)  # white noise 20 dB down: artifacts
    leaky = bss_eval_song(refs + 0.3 * refs[[1, 2, 0]], refs, SR, sources=SOURCES)  # 0.3 of another source: interference
    for j, s in enumerate(SOURCES):
        assert perfect[s]["SDR"] > 100  # the projection recovers the estimate exactly: inf here
        assert 19 < noisy[s]["SDR"] < 21  # a 512-tap projection absorbs almost none of the noise
        # pure leakage is all interference, its SIR the energy ratio; no artifacts (SIR and SAR not swapped)
        leak = 10 * np.log10((refs[j] ** 2).sum() / ((0.3 * refs[(j + 1) % 3]) ** 2).sum())
        assert leaky[s]["SIR"] == pytest.approx(leak, abs=0.3) and leaky[s]["SAR"] > 100
        assert leaky[s]["SDR"] == pytest.approx(leaky[s]["SIR"], abs=0.3)


def test_bss_eval_is_the_median_of_museval_frames_ignoring_silent_frames():
    import museval

    est, ref = song("a", 4.0)
    ref[2, :, :SR] = 0.0  # the noise starts after 1 s: the first frame is NaN for every source
    ours = bss_eval_song(est, ref, SR, sources=SOURCES)
    sdr, isr, sir, sar = museval.evaluate(ref.transpose(0, 2, 1).astype(np.float64),
                                          est.transpose(0, 2, 1).astype(np.float64), win=SR, hop=SR)
    assert np.isnan(sdr[:, 0]).all() and np.isfinite(sdr[:, 1:]).all()
    for j, s in enumerate(SOURCES):
        for name, frames in {"SDR": sdr, "ISR": isr, "SIR": sir, "SAR": sar}.items():
            assert ours[s][name] == np.median(frames[j, 1:])


def test_silent_reference_is_nan_and_leaves_the_others_unchanged():
    est, ref = song("b-silent")
    assert not ref[1].any()
    with pytest.raises(ValueError, match="non-silent"):  # what museval does on its own
        import museval

        museval.evaluate(ref.transpose(0, 2, 1), est.transpose(0, 2, 1), win=SR, hop=SR)
    res = bss_eval_song(est, ref, SR, sources=SOURCES)
    assert all(math.isnan(v) for v in res["low"].values())
    alone = bss_eval_song(est[[0, 2]], ref[[0, 2]], SR, sources=["tone", "noise"])
    assert res["tone"] == alone["tone"] and res["noise"] == alone["noise"]
    assert all(np.isfinite(list(res[s].values())).all() for s in ("tone", "noise"))
    # a silent estimate of the absent source (the right answer) changes nothing either
    est[1] = 0.0
    _same({"b": bss_eval_song(est, ref, SR, sources=SOURCES)}, {"b": res})
    nothing = bss_eval_song(est, np.zeros_like(ref), SR)
    assert set(nothing) == {"0", "1", "2"} and all(math.isnan(v) for r in nothing.values() for v in r.values())


def test_silent_estimate_of_a_present_source_is_nan_with_a_warning_and_the_others_unchanged():
    est, ref = song("c")
    full = bss_eval_song(est, ref, SR, sources=SOURCES)
    est[0] = 0.0
    with pytest.warns(RuntimeWarning, match="estimate of source tone is silent"):
        res = bss_eval_song(est, ref, SR, sources=SOURCES)
    assert all(math.isnan(v) for v in res["tone"].values())
    assert res["low"] == full["low"] and res["noise"] == full["noise"]


def test_estimate_is_padded_or_cut_to_the_reference_length():
    est, ref = song("d")
    short = bss_eval_song(est[..., :-100], ref, SR)
    padded = np.concatenate([est[..., :-100], np.zeros_like(est[..., -100:])], axis=-1)
    assert short == bss_eval_song(padded, ref, SR)
    assert bss_eval_song(np.concatenate([est, est], axis=-1), ref, SR) == bss_eval_song(est, ref, SR)


def _serial():
    return evaluate_songs(KEYS, song, SR, sources=SOURCES)


@pytest.fixture(scope="module")
def serial():
    return _serial()


def test_process_pool_gives_the_same_floats(serial):
    assert list(serial) == KEYS
    assert math.isnan(serial["b-silent"]["low"]["SDR"]) and np.isfinite(serial["a"]["low"]["SDR"])
    _same(evaluate_songs(KEYS, song, SR, jobs=2, sources=SOURCES), serial)


def _same(a, b):
    """Exact equality of {song: {source: {metric: float}}}, NaN equal to NaN."""
    assert list(a) == list(b)
    for k in a:
        assert a[k].keys() == b[k].keys()
        for s in a[k]:
            assert a[k][s].keys() == b[k][s].keys()
            for m, v in a[k][s].items():
                assert (math.isnan(v) and math.isnan(b[k][s][m])) or v == b[k][s][m], (k, s, m, v, b[k][s][m])


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_gives_every_rank_the_serial_result(serial, tmp_path):
    """A real 2-process CPU DDP run (gloo, torchrun-style environment), each rank with a pool of 2."""
    script = Path(__file__).with_name("ddp_separation_eval.py")
    port = str(_free_port())
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=port, OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen([sys.executable, str(script), str(tmp_path), "2", *KEYS], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    for rank in range(2):
        got = pickle.loads((tmp_path / f"rank{rank}.pkl").read_bytes())
        assert list(got) == KEYS
        _same(got, serial)


def test_summarize_takes_medians_over_songs_then_the_mean_over_sources():
    nan = float("nan")

    def r(sdr):
        return {"SDR": sdr, "SIR": sdr + 1, "ISR": sdr + 2, "SAR": sdr + 3}

    results = {
        "s1": {"v": r(1.0), "d": r(10.0), "b": r(nan)},
        "s2": {"v": r(2.0), "d": r(nan), "b": r(nan)},
        "s3": {"v": r(9.0), "d": r(20.0), "b": r(nan)},
    }
    out = summarize(results, ["v", "d", "b"])
    assert out["v"]["SDR"] == 2.0 and out["v"]["songs"] == 3  # median of 1, 2, 9 (not the mean, 4)
    assert out["d"]["SDR"] == 15.0 and out["d"]["songs"] == 2  # NaN song left out
    assert math.isnan(out["b"]["SDR"]) and out["b"]["songs"] == 0
    assert out["mean"]["SDR"] == 8.5 and out["mean"]["SAR"] == 11.5  # (2 + 15) / 2: the all-NaN source left out


def test_write_results_round_trips(serial, tmp_path):
    write_results(serial, tmp_path / "r" / "songs.json", tmp_path / "r" / "songs.csv")
    doc = json.loads((tmp_path / "r" / "songs.json").read_text())
    _same(doc["songs"], serial)
    assert doc["summary"]["mean"]["SDR"] == summarize(serial, SOURCES)["mean"]["SDR"]
    rows = (tmp_path / "r" / "songs.csv").read_text().splitlines()
    assert rows[0] == "song,source,SDR,SIR,ISR,SAR" and len(rows) == 1 + len(KEYS) * len(SOURCES)
    song_, source, *values = rows[1 + 3 + 1].split(",")  # b-silent, low
    assert (song_, source) == ("b-silent", "low") and all(math.isnan(float(v)) for v in values)
    song_, source, sdr, *_ = rows[1].split(",")
    assert float(sdr) == serial["a"]["tone"]["SDR"]
    assert not list((tmp_path / "r").glob(".*.part"))
