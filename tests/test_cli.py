import subprocess
import sys


from conftest import tone
from noisymss.audio.io import write_audio
from noisymss.cli import main
from noisymss.data.catalog import Catalog


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "noisymss", *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_help_lists_verbs_without_importing_torch_or_lightning():
    code = ("import sys\nfrom noisymss.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', sorted(m for m in ('torch', 'lightning', 'pedalboard', 'music21') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    for verb in ("synth", "index", "info", "preview"):
        assert verb in out
    assert "HEAVY []" in out


def test_synth_info_preview_end_to_end(tmp_path):
    # relative paths, as `make demo` gives them
    res = _run("synth", "--out", "demo", "--songs", "2", "--seconds", "3", "--seed", "5", "--label-noise", "0.25", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "wrote" in res.stdout and "label version 'given'" in res.stdout
    cat = Catalog.load(tmp_path / "demo" / "catalog.csv")
    assert len(cat.mixtures()) == 2
    res = _run("preview", "demo/catalog.csv", "--batches", "1", "--batch-size", "2", "--segment", "1",
               "--audio-out", "wav", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "batch 0: mixture (2, 2, 44100)" in res.stdout
    assert sorted(p.name for p in (tmp_path / "wav").iterdir()) == ["mixture_0.wav", "mixture_1.wav"]


def test_index_lists_broken_files_and_never_overwrites(tmp_path, capsys):
    for name in ("a", "b"):
        write_audio(tmp_path / "data" / "drums" / f"{name}.wav", tone(seconds=0.2), 44100)
    (tmp_path / "data" / "drums" / "broken.wav").write_text("nope")
    out = tmp_path / "c.csv"
    assert main(["index", str(tmp_path / "data"), "--format", "folder", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "broken.wav" in captured.err and "1 file(s) skipped" in captured.out
    assert [e.labels for e in Catalog.load(out)] == [("drums",), ("drums",)]
    before = out.read_bytes()
    assert main(["index", str(tmp_path / "data"), "--format", "folder", "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err and out.read_bytes() == before


def test_bad_options_exit_with_one_line_errors(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "x"), "--label-noise", "1.5"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--label-noise 1.5" in err
    assert main(["info", str(tmp_path / "missing.csv")]) == 1
    assert "no such catalog file" in capsys.readouterr().err
    assert main(["index", str(tmp_path / "nothing"), "--format", "musdb", "--out", str(tmp_path / "c.csv")]) == 1
    assert not (tmp_path / "c.csv").exists()
