"""`noisymss separate` with the mixture baseline (each source = gain × mixture, gains 1/S): the
written sources must sum to the input, whatever its rate, channels and length."""
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from noisymss.audio.io import write_audio
from noisymss.separation.inference import load_separator, separate_file, separate_files


def _checkpoint(path, arch="mixture", sources=("tone", "noise")):
    from noisymss.tasks.separator import SeparatorTask

    task = SeparatorTask(sources=list(sources), arch=arch, sample_rate=16000, channels=2, segment=1.0)
    torch.save({"state_dict": task.state_dict(), "hyper_parameters": dict(task.hparams)}, path)
    return path


@pytest.fixture
def ckpt(tmp_path):
    return _checkpoint(tmp_path / "mixture.ckpt")


def _noise(seconds, rate, channels, seed=0):
    return (np.random.default_rng(seed).standard_normal((channels, int(seconds * rate))) * 0.1).astype(np.float32)


def test_sources_sum_to_the_input_in_blocks(ckpt, tmp_path):
    x = _noise(3.3, 16000, 2)
    path = write_audio(tmp_path / "song.wav", x, 16000)
    sep = load_separator(ckpt)
    whole = separate_file(sep, path, tmp_path / "whole", block=60.0)
    blocks = separate_file(sep, path, tmp_path / "blocks", block=0.7)  # 5 blocks, each with a chunk of context
    assert [p.name for p in whole] == ["tone.wav", "noise.wav"]
    total = sum(sf.read(p, dtype="float32", always_2d=True)[0] for p in whole).T
    np.testing.assert_allclose(total, x, atol=1e-4)  # float32 gains 1/S
    for a, b in zip(whole, blocks):
        np.testing.assert_allclose(sf.read(a)[0], sf.read(b)[0], atol=1e-6)
    assert not list((tmp_path / "whole").glob(".*part"))  # no temp files left


def test_other_rates_and_channels_are_converted_back(ckpt, tmp_path):
    t = np.arange(66150) / 44100
    mono = write_audio(tmp_path / "mono.flac", (0.3 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32), 44100,
                       subtype="PCM_24")
    failed = separate_files(ckpt, [mono], tmp_path / "out", fmt="flac", progress=False)
    assert failed == []
    outs = sorted((tmp_path / "out" / "mono").glob("*.flac"))
    assert [p.name for p in outs] == ["noise.flac", "tone.flac"]
    data = [sf.read(p, dtype="float32", always_2d=True) for p in outs]
    assert all(rate == 44100 and a.shape == (66150, 1) for a, rate in data)
    x = sf.read(mono, dtype="float32", always_2d=True)[0]
    # a 440 Hz tone survives the trip through the model's 16 kHz stereo and back; the first and last
    # 5 ms are left out: the sinc resampler has no signal beyond the file's ends to work with
    edge = 220
    np.testing.assert_allclose((data[0][0] + data[1][0])[edge:-edge], x[edge:-edge], atol=3e-3)


def test_bad_checkpoints_are_one_line_errors(tmp_path):
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"classes": ["a"]}}, other)
    with pytest.raises(ValueError, match="not a separator checkpoint"):
        load_separator(other)
    with pytest.raises(ValueError, match="separates"):
        load_separator(_checkpoint(tmp_path / "m.ckpt"), sources=["vocals", "drums"])
    with pytest.raises(FileNotFoundError):
        load_separator(tmp_path / "missing.ckpt")


def test_cli_separates_files_and_lists_failures(ckpt, tmp_path):
    good = write_audio(tmp_path / "a" / "mix.wav", _noise(1.0, 16000, 2), 16000)
    same_name = write_audio(tmp_path / "b" / "mix.wav", _noise(1.0, 16000, 2, seed=2), 16000)
    broken = tmp_path / "broken.wav"
    broken.write_text("not audio")
    res = subprocess.run([sys.executable, "-m", "noisymss", "separate", str(good), str(same_name), str(broken),
                          "--ckpt", str(ckpt), "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert res.returncode == 1 and "broken.wav" in res.stderr and "separated 2 file(s)" in res.stdout
    assert (tmp_path / "out" / "a" / "mix" / "tone.wav").is_file() and (tmp_path / "out" / "b" / "mix" / "noise.wav").is_file()
