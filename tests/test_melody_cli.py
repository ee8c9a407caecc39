"""The main job from the command line: `noisymss fit/test --config`, then `noisymss melody` (subprocesses)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _small_config(name: str, tmp_path: Path) -> list[str]:
    """`--config` arguments: the repository config, then an overlay with a tiny demo corpus and budget."""
    overlay = {"trainer": {"max_epochs": 3},
               "data": {"init_args": {"train_examples": 32, "num_workers": 0, "demo": {
                   "songs": 6, "seconds": 4.0, "seed": 0,
                   "splits": [["labelled", 2], ["unlabelled", 2], ["valid", 1], ["test", 1]]}}}}
    if name == "noisy_student.yaml":  # 2 iterations of 1 epoch (the list replaces the config's)
        overlay["trainer"]["callbacks"] = [{"class_path": "noisymss.callbacks.teacher_student.TeacherStudent",
                                            "init_args": {"iterations": 2, "epochs_per_iteration": 1}}]
    path = tmp_path / f"small_{name}"
    path.write_text(yaml.safe_dump(overlay))
    return ["--config", str(CONFIGS / name), "--config", str(path)]


def _noisymss(*args, cwd):
    env = dict(os.environ, WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "noisymss", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.parametrize("name", ["noisy_student.yaml", pytest.param("supervised.yaml", marks=pytest.mark.slow)])  # < 10 min
def test_fit_test_and_melody_from_a_fresh_folder(name, tmp_path):
    config = _small_config(name, tmp_path)
    res = _noisymss("fit", *config, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "data/melody_demo/catalog.csv").is_file()  # prepare_data rendered the demo corpus
    ckpt = next((tmp_path / "runs").rglob("last.ckpt"))
    res = _noisymss("test", *config, "--ckpt_path", str(ckpt), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "test/OA" in res.stdout
    songs = sorted((tmp_path / "data/melody_demo/songs").glob("*/mixture.flac"))[:2]
    # two inputs with the same file name, shared by two worker processes: neither result overwrites the other
    res = _noisymss("melody", *map(str, songs), "--ckpt", str(ckpt), "--out", "f0", "--jobs", "2", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    import mir_eval

    written = sorted((tmp_path / "f0").rglob("*.f0.txt"))
    assert [p.relative_to(tmp_path / "f0").as_posix() for p in written] == [f"{s.parent.name}/mixture.f0.txt" for s in songs]
    for path in written:
        times, freqs = mir_eval.io.load_time_series(str(path))
        assert len(times) == 401 and np.allclose(np.diff(times), 0.01) and np.all(freqs >= 0)
    # the same file in one process gives the same f0 as in a worker
    res = _noisymss("melody", str(songs[0]), "--ckpt", str(ckpt), "--out", "one", "--jobs", "1", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "one" / "mixture.f0.txt").read_text() == written[0].read_text()


def test_unknown_teacher_student_mode_fails_before_training(tmp_path):
    config = _small_config("noisy_student.yaml", tmp_path)
    overlay = yaml.safe_load(Path(config[-1]).read_text())
    overlay["trainer"]["callbacks"][0]["init_args"]["mode"] = "loud"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(overlay))
    res = _noisymss("fit", *config[:2], "--config", "bad.yaml", cwd=tmp_path)
    assert res.returncode != 0 and "unknown teacher-student mode 'loud'" in res.stderr
    assert not (tmp_path / "data").exists()  # nothing rendered, nothing trained
