"""What every robustness test checks: a command's exit code, its message, and that nothing outside the
folder it was given changed (every file under the workspace is hashed before and after)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import soundfile as sf

from noisymss.cli import main


@dataclass
class Result:
    code: int
    out: str
    err: str


def run(capsys, *argv: str) -> Result:
    """`noisymss argv...` in this process (as the shell would run it, minus the interpreter start)."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as stop:  # argparse and --help exit
        code = stop.code if isinstance(stop.code, int) else 1
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def snapshot(root: Path, skip: tuple[Path, ...] = (), decode: bool = False) -> dict[str, str]:
    """{relative path: content hash} of every file under `root` outside the `skip` folders.

    With `decode`, audio files are hashed by their samples and rate: libsndfile stamps a float WAV's
    PEAK chunk with the time of writing, so two identical results written a second apart differ in bytes.
    """
    files = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not any(p.is_relative_to(s) for s in skip):
            if decode and p.suffix in (".wav", ".flac"):
                samples, rate = sf.read(p, dtype="float32")
                content = samples.tobytes() + str(rate).encode()
            else:
                content = p.read_bytes()
            files[p.relative_to(root).as_posix()] = hashlib.sha1(content).hexdigest()
    return files


def assert_refused(result: Result, *fragments: str, code: int | None = None) -> None:
    """Non-zero exit, no traceback, an error line holding every fragment."""
    assert result.code != 0 if code is None else result.code == code, (result.code, result.err[-2000:])
    assert "Traceback" not in result.err, result.err[-3000:]
    for fragment in fragments:
        assert fragment in result.err, (fragment, result.err[-2000:])


def write_wav(path: Path, audio: np.ndarray, rate: int = 22050, subtype: str = "FLOAT") -> Path:
    """Writes (channels, samples) as it is (NaN and all), bypassing the project's writers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(audio, np.float32).T, rate, subtype=subtype, format="WAV")
    return path


def tone(seconds: float = 1.0, rate: int = 22050, channels: int = 2, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return np.repeat((0.3 * np.sin(2 * np.pi * freq * t))[None], channels, axis=0).astype(np.float32)


def save_checkpoint(model: L.LightningModule, path: Path) -> Path:
    """A checkpoint of `model` as it is (untrained weights stand for trained ones here)."""
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, max_epochs=0)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    return path
