"""Shared fixtures: tiny real audio and a tiny demo corpus, made at test time."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

BACH10 = Path(__file__).resolve().parents[2] / "shared" / "data" / "bach10"


def tone(freq: float = 440.0, seconds: float = 1.0, sample_rate: int = 44100, channels: int = 2) -> np.ndarray:
    """A harmonic tone, (channels, samples) float32, each channel slightly different."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    wave = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, 5)) * 0.2
    return np.stack([wave * (1.0 - 0.1 * c) for c in range(channels)]).astype(np.float32)


def yin(x: np.ndarray, sample_rate: int, times: np.ndarray, fmin: float = 60.0, fmax: float = 1200.0, win: int = 2048) -> np.ndarray:
    """A plain YIN pitch tracker (cumulative mean normalised difference, threshold 0.15)."""
    lo, hi = int(sample_rate / fmax), int(sample_rate / fmin)
    out = np.zeros(len(times))
    for i, t in enumerate(times):
        c = int(t * sample_rate)
        seg = x[max(c - win // 2, 0):c + win // 2]
        if len(seg) < win:
            continue
        w = win - hi
        d = np.array([np.sum((seg[:w] - seg[tau:tau + w]) ** 2) for tau in range(1, hi)])
        cmnd = d * np.arange(1, hi) / np.maximum(np.cumsum(d), 1e-12)
        below = np.flatnonzero(cmnd[lo:] < 0.15)
        if len(below):
            tau = below[0] + lo
            while tau + 1 < len(cmnd) and cmnd[tau + 1] < cmnd[tau]:
                tau += 1
        else:
            tau = int(np.argmin(cmnd[lo:])) + lo
        out[i] = sample_rate / (tau + 1)
    return out


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory) -> Path:
    """A 6-song, 8-second demo corpus with 50% label noise (about 3 s to render)."""
    from noisymss.data.synth.corpus import SynthSettings, synthesize

    out = tmp_path_factory.mktemp("demo")
    synthesize(out, SynthSettings(songs=6, seconds=8.0, seed=3, label_noise=0.5,
                                  splits=(("train", 0.67), ("valid", 0.17), ("test", 0.16))), progress=False)
    return out


@pytest.fixture(scope="session")
def melody_corpus(tmp_path_factory) -> Path:
    """6 demo songs of 6 s split into labelled (2), unlabelled (3) and valid (1) mixtures with f0."""
    from noisymss.data.synth.corpus import SynthSettings, synthesize

    out = tmp_path_factory.mktemp("melody")
    synthesize(out, SynthSettings(songs=6, seconds=6.0, seed=11, splits=(("labelled", 2), ("unlabelled", 3), ("valid", 1))),
               progress=False)
    return out


def _tone(f0: float, t: np.ndarray) -> np.ndarray:
    """Five harmonics of f0 with 1/k amplitudes."""
    return sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * 0.2


def _noise(rng: np.random.Generator, n: int, width: int, scale: float) -> np.ndarray:
    """White noise low-passed by a Hann window of `width` samples."""
    return np.convolve(rng.standard_normal(n), np.hanning(width), "same") * scale


@pytest.fixture(scope="session")
def timbres(tmp_path_factory):
    """Two timbres as stems: harmonic tones ('tone') and band-passed noise ('noise'); one 'noise' stem is given as 'tone'."""
    from noisymss.audio.io import write_audio
    from noisymss.data.catalog import Catalog, Entry

    SR = 16000
    root = tmp_path_factory.mktemp("timbres")
    rng = np.random.default_rng(0)
    t = np.arange(2 * SR) / SR
    entries = []
    for i in range(12):
        split = "train" if i < 8 else "valid"
        if i % 2 == 0:
            audio, true = _tone(rng.uniform(150, 600), t), ("tone",)
        else:
            audio, true = _noise(rng, len(t), width=9, scale=0.03), ("noise",)  # tones stay audible in mixes
        given = ("tone",) if i == 1 else true  # one mislabelled training stem
        path = write_audio(root / f"s{i}.wav", audio[None].astype(np.float32), SR)
        entries.append(Entry(f"s{i}/{true[0]}", f"s{i}", str(path), "stem", 2.0, SR, 1, split, given, true))
    Catalog(entries, root).save(root / "catalog.csv")
    return root / "catalog.csv"


@pytest.fixture(scope="session")
def duets(tmp_path_factory):
    """8 two-stem songs of 2 s at 16 kHz mono: a harmonic 'tone' stem and a noise stem each.

    Splits train (5), valid (2), test (1); in song d1 the noise stem is given as 'tone' (a
    mislabel), and song d7 (test) has a stem labelled with both classes (no exact reference).
    """
    from noisymss.audio.io import write_audio
    from noisymss.data.catalog import Catalog, Entry

    SR = 16000
    root = tmp_path_factory.mktemp("duets")
    rng = np.random.default_rng(1)
    t = np.arange(2 * SR) / SR
    entries = []
    for i in range(8):
        split = "train" if i < 5 else "valid" if i < 7 else "test"
        tone_audio = _tone(rng.uniform(150, 500), t).astype(np.float32)
        noise_audio = _noise(rng, len(t), width=5, scale=0.05).astype(np.float32)
        song = f"d{i}"
        noise_given = ("tone",) if i == 1 else ("noise",)
        tone_path = write_audio(root / song / "tone.wav", tone_audio[None], SR)
        noise_path = write_audio(root / song / "noise.wav", noise_audio[None], SR)
        entries.append(Entry(f"{song}/tone", song, str(tone_path), "stem", 2.0, SR, 1, split, ("tone",), ("tone",)))
        noise_true = ("noise", "tone") if i == 7 else ("noise",)
        entries.append(Entry(f"{song}/noise", song, str(noise_path), "stem", 2.0, SR, 1, split, noise_given, noise_true))
    Catalog(entries, root).save(root / "catalog.csv")
    return root / "catalog.csv"


@pytest.fixture(scope="session")
def bach10_stems(tmp_path_factory) -> Path:
    """A Bach10-like catalog: 3 songs of 2 s at 22.05 kHz mono, a tone per instrument (violin,
    clarinet, saxophone, bassoon), one song per split train / valid / test, labels true."""
    from noisymss.audio.io import write_audio
    from noisymss.data.catalog import Catalog, Entry

    SR = 22050
    root = tmp_path_factory.mktemp("bach10_stems")
    t = np.arange(2 * SR) / SR
    entries = []
    for k, split in enumerate(("train", "valid", "test")):
        song = f"0{k}-Chorale"
        for j, part in enumerate(("violin", "clarinet", "saxophone", "bassoon")):
            path = write_audio(root / song / f"{part}.wav", _tone(660.0 / (j + 1) + 10 * k, t)[None].astype(np.float32), SR)
            entries.append(Entry(f"{song}/{part}", song, str(path), "stem", 2.0, SR, 1, split, (part,), (part,)))
    Catalog(entries, root).save(root / "catalog.csv")
    return root / "catalog.csv"


# Run lists resolved as `noisymss fit` resolves them, for the tests that compare the runs of an experiment.
def flat(value, prefix: str = "") -> dict:
    """{'data.init_args.catalog': ..., 'trainer.callbacks.0.init_args.mode': ...} of a nested config."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)) and any(isinstance(v, (dict, list, tuple)) for v in value):
        items = enumerate(value)
    else:
        return {prefix: value}
    out = {}
    for k, v in items:
        if k not in ("config", "__path__"):  # the config files read, not what they say
            out.update(flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


@pytest.fixture(scope="module")
def resolve(tmp_path_factory):
    """resolve(runs) -> {run: (flat config of seed 0, the instantiated CLI)}: each run's fit arguments,
    parsed and instantiated (nothing trained)."""
    from noisymss.experiments import runner

    def resolve(runs: list) -> dict:
        out = tmp_path_factory.mktemp("runs")
        resolved = {}
        for run in runs:
            cli = runner.instantiate(runner.config_args(run, 0, out))
            resolved[run.name] = (flat(cli.config.as_dict()), cli)
        return resolved
    return resolve


def _differing(resolved: dict) -> set[str]:
    """The config fields that are not the same in every run (the run folder aside)."""
    configs = [c for c, _ in resolved.values()]
    keys = set().union(*configs)
    return {k for k in keys if len({repr(c.get(k, "<absent>")) for c in configs}) > 1} - {"trainer.default_root_dir"}


@pytest.fixture()
def differing():
    """differing(resolved) -> the config fields that are not the same in every run (the run folder aside)."""
    return _differing



def mir1k_clip(root: Path, name: str, midi: list[float], rate: int = 16000) -> None:
    """A MIR-1K-layout clip whose vocal (right) channel sings exactly where `midi` is voiced (a 40 ms
    frame every 20 ms, frame k centred at 0.02 (k + 1) s), over a steady accompaniment (left)."""
    frames = len(midi)
    n = 640 + 320 * (frames - 1)  # MIR-1K: floor((n - 640) / 320) + 1 frames
    t = np.arange(n) / rate
    voice = np.zeros(n)
    for k, m in enumerate(midi):
        if m > 0:
            centre = int(0.02 * (k + 1) * rate)
            lo, hi = max(centre - 160, 0), min(centre + 160, n)
            voice[lo:hi] = 0.4 * np.sin(2 * np.pi * 440 * 2 ** ((m - 69) / 12) * t[lo:hi])
    accompaniment = 0.1 * np.sin(2 * np.pi * 110 * t)
    (root / "Wavfile").mkdir(parents=True, exist_ok=True)
    (root / "PitchLabel").mkdir(exist_ok=True)
    sf.write(root / "Wavfile" / f"{name}.wav", np.stack([accompaniment, voice], axis=1).astype(np.float32), rate)
    (root / "PitchLabel" / f"{name}.pv").write_text("".join(f"{m}\n" for m in midi))


@pytest.fixture(scope="session")
def vocal_clips(tmp_path_factory) -> dict[str, Path]:
    """A MIR-1K-layout corpus (4 singers x 2 clips of 2 s), indexed and split by singer two ways:
    {'melody': labelled / unlabelled / valid / test, 'separation': train / valid / test} catalogs."""
    from noisymss.data import catalog_ops
    from noisymss.data.sources import index_dir

    root = tmp_path_factory.mktemp("vocal_clips")
    rng = np.random.default_rng(0)
    for singer in ("ann", "bo", "cy", "di"):
        for k in range(2):
            mir1k_clip(root / "MIR-1K", f"{singer}_{k}_01", [0.0 if rng.random() < 0.3 else float(m)
                                                             for m in rng.integers(55, 72, size=100)])
    catalog, skipped = index_dir(root / "MIR-1K", "mir1k", progress=False)
    assert not skipped
    splits = {"melody": {"ann": "labelled", "bo": "unlabelled", "cy": "valid", "di": "test"},
              "separation": {"ann": "train", "bo": "train", "cy": "valid", "di": "test"}}
    return {name: catalog_ops.split_from_list(catalog, table).save(root / f"{name}.csv") for name, table in splits.items()}
