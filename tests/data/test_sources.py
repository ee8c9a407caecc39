"""Dataset importers: tiny real layouts with broken files in them, built at test time."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from noisymss.audio.io import AudioError
from noisymss.data.annotations import read_f0
from noisymss.data.catalog import Catalog
from noisymss.data.sources import FORMATS, Skipped, index_dir, probe_audio
from noisymss.data.sources.medleydb import to_class

BACH10 = Path(__file__).resolve().parents[2].parent / "shared/data/bach10"


# ------------------------------------------------------------------ audio makers
def good(path: Path, sr: int = 16000, channels: int = 1, seconds: float = 0.2) -> dict:
    """Writes a short sine; returns what the catalog should say about it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(sr * seconds)
    tone = 0.1 * np.sin(2 * np.pi * 440 * np.arange(n) / sr)
    fmt = Path(path.name.removesuffix(".part")).suffix[1:].upper()  # temp names end in .part
    sf.write(path, np.repeat(tone[:, None], channels, axis=1).astype(np.float32), sr, format=fmt)
    return {"sample_rate": sr, "channels": channels, "duration": round(n / sr, 6)}


def truncated(path: Path) -> None:
    """A valid file with its last bytes cut off (as an interrupted download leaves it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sr, n = 16000, 16000  # several FLAC frames, so the cut lands inside the stream
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, (n, 2)).astype(np.float32)
    sf.write(path, noise, sr)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 700])


def empty(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros((0, 1), np.float32), 16000)


def text(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("this is not audio\n")


def nan(path: Path, frames: int = 3200, at: int = 1000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.zeros((frames, 1), np.float32)
    x[at] = np.nan
    sf.write(path, x, 16000, subtype="FLOAT")


# What the Skipped reason must mention for each kind of broken file.
BROKEN = {"truncated": (truncated, "truncated"), "empty": (empty, "empty"),
          "text": (text, "not readable audio"), "nan": (nan, "NaN")}


def breakage(root: Path, layout: dict[str, str]) -> dict[str, str]:
    """Writes {relative path: kind} broken files; returns {relative path: expected reason word}."""
    for rel, kind in layout.items():
        BROKEN[kind][0](root / rel)
    return {rel: BROKEN[kind][1] for rel, kind in layout.items()}


def check(cat: Catalog, skipped: list[Skipped], root: Path, want: dict[str, dict], broken: dict[str, str],
          tmp_path: Path) -> dict[str, object]:
    """Every good file is in the catalog as expected, every broken one skipped for its reason."""
    assert cat.root == root.absolute()
    rows = {(root / e.path).resolve(): e for e in cat}
    assert all(not Path(e.path).is_absolute() for e in cat)
    assert len(rows) == len(cat) == len(want), sorted(e.path for e in cat)
    for rel, expected in want.items():
        entry = rows[(root / rel).resolve()]
        for key, value in expected.items():
            assert getattr(entry, key) == value, (rel, key, getattr(entry, key), value)
    reasons = {Path(s.path).resolve(): s.reason for s in skipped}
    assert len(reasons) == len(skipped) == len(broken), skipped
    for rel, word in broken.items():
        assert word in reasons[(root / rel).resolve()], (rel, reasons[(root / rel).resolve()])
    # Round trip through the CSV, saved outside the dataset folder.
    saved = cat.save(tmp_path / "out" / "c.csv")
    loaded = Catalog.load(saved)
    assert loaded.entries == cat.entries
    assert all(loaded.resolve(e.path).is_file() for e in loaded)
    return {e.id: e for e in loaded}


# ------------------------------------------------------------------ probe
@pytest.mark.parametrize("suffix", [".flac", ".wav"])
def test_truncation_is_real_and_caught(tmp_path, suffix):
    path = tmp_path / f"cut{suffix}"
    truncated(path)
    # Precondition: libsndfile itself errors or reports fewer frames than were written.
    try:
        with sf.SoundFile(path) as f:
            decoded = sum(len(b) for b in f.blocks(blocksize=4096))
        assert decoded < 16000
    except sf.LibsndfileError:
        pass
    with pytest.raises(AudioError, match="truncated"):
        probe_audio(path)


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_probe_rejects_broken(tmp_path, kind):
    writer, word = BROKEN[kind]
    path = tmp_path / f"{kind}.{'flac' if kind == 'truncated' else 'wav'}"
    writer(path)
    with pytest.raises(AudioError, match=word) as err:
        probe_audio(path)
    assert str(err.value).startswith(str(path))


def test_probe_reads_every_block(tmp_path):
    nan(tmp_path / "late.wav", frames=70000, at=69990)  # NaN in the second 65536-frame block
    with pytest.raises(AudioError, match="NaN"):
        probe_audio(tmp_path / "late.wav")
    expected = good(tmp_path / "ok.flac", sr=8000, channels=2, seconds=9.0)
    info = probe_audio(tmp_path / "ok.flac")
    assert (info.sample_rate, info.channels, round(info.duration, 6)) == (8000, 2, expected["duration"])


# ------------------------------------------------------------------ index_dir
def test_index_dir_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="known formats: musdb, sdx23, folder") as err:
        index_dir(tmp_path, "musdb18")
    assert "\n" not in str(err.value)
    (tmp_path / "file.txt").write_text("x")
    for root in (tmp_path / "file.txt", tmp_path / "missing"):
        with pytest.raises(ValueError, match="not a folder"):
            index_dir(root, "musdb")
    from noisymss.cli import _parser  # the command lists every format (without importing them)

    index = _parser()._subparsers._group_actions[0].choices["index"]
    assert set(next(a.choices for a in index._actions if a.dest == "format")) == set(FORMATS)


def test_progress_goes_to_stderr_only_when_asked(tmp_path, capsys):
    good(tmp_path / "a.wav")
    index_dir(tmp_path, "mixtures", progress=False)
    assert capsys.readouterr().err == ""
    index_dir(tmp_path, "mixtures", progress=True)
    captured = capsys.readouterr()
    assert "1/1" in captured.err and captured.out == ""


def test_musdb(tmp_path):
    root = tmp_path / "musdb"
    want = {}
    for name in ("mixture", "vocals", "drums", "bass", "other"):
        want[f"train/Song A/{name}.wav"] = {**good(root / f"train/Song A/{name}.wav", 8000, 2), "song": "Song A",
                                           "split": "train", "id": f"Song A/{name}"}
    for name in ("vocals", "drums", "bass", "other", "piano"):  # piano: an extra stem, kept
        want[f"test/Song B/{name}.flac"] = {**good(root / f"test/Song B/{name}.flac", 16000, 1), "split": "test"}
    for name in ("vocals", "drums"):  # SDX'23 layout: no split folder
        want[f"Song C/{name}.wav"] = {**good(root / f"Song C/{name}.wav"), "split": "train", "song": "Song C"}
    for rel, row in want.items():
        name = Path(rel).stem
        is_mix = name == "mixture"
        row.update(role="mixture" if is_mix else "stem", labels=() if is_mix else (name,),
                   true_labels=None if is_mix else (name,))  # MUSDB18's stems are clean
    broken = breakage(root, {"train/Song D/vocals.flac": "truncated", "train/Song D/drums.wav": "truncated",
                             "train/Song D/bass.wav": "empty", "train/Song D/other.wav": "text",
                             "Song C/bass.wav": "nan"})
    good(root / "train/Song A/.vocals.wav")  # hidden and temp files are not data
    good(root / "train/Song A/vocals.wav.part")
    good(root / ".trash/Song E/vocals.wav")
    good(root / "loose.wav")
    good(root / "test/loose.wav")
    good(root / "test/Song B/vocals.wav")  # same stem as vocals.flac: one is kept
    (root / "train/Song F.stem.mp4").write_bytes(b"MUSDB18 (not HQ) multitrack")
    broken["train/Song F.stem.mp4"] = "must be decoded first"
    broken.update({"loose.wav": "not in a <song>/ folder", "test/loose.wav": "not in a <song>/ folder",
                   "test/Song B/vocals.wav": "duplicate"})
    cat, skipped = index_dir(root, "musdb", progress=False)
    rows = check(cat, skipped, root, want, broken, tmp_path)
    assert rows["Song B/piano"].labels == ("piano",)


def test_musdb_official_validation_tracks_and_sdx23_without_truth(tmp_path):
    root = tmp_path / "musdb"
    for song in ("train/Actions - One Minute Smile", "train/Other Song", "test/Test Song"):
        for name in ("mixture", "vocals", "drums"):
            good(root / song / f"{name}.wav")
    cat, _ = index_dir(root, "musdb", progress=False)
    assert {e.song: e.split for e in cat} == {"Actions - One Minute Smile": "valid", "Other Song": "train",
                                              "Test Song": "test"}
    sdx, _ = index_dir(root, "sdx23", progress=False)
    assert all(e.true_labels is None for e in sdx) and {e.split for e in sdx} == {"train", "test"}


def test_folder(tmp_path):
    root = tmp_path / "by_query"
    want = {
        "vocals/a.wav": {**good(root / "vocals/a.wav"), "song": "vocals/a", "labels": ("vocals",)},
        "vocals/deep/b.flac": {**good(root / "vocals/deep/b.flac", 8000, 2), "song": "vocals/deep/b",
                               "labels": ("vocals",)},
        "drums/a.wav": {**good(root / "drums/a.wav"), "song": "drums/a", "labels": ("drums",)},
    }
    for row in want.values():
        row.update(role="stem", split="train", true_labels=None, id=row["song"])
    broken = breakage(root, {"drums/x.wav": "empty", "bass/t.flac": "truncated", "bass/n.wav": "nan",
                             "other/fake.wav": "text"})
    good(root / "loose.wav")
    broken["loose.wav"] = "not under a <label>/ folder"
    good(root / ".hidden/c.wav")
    good(root / "vocals/.d.wav")
    (root / "vocals/notes.txt").write_text("ignored: not an audio extension")
    cat, skipped = index_dir(root, "folder", progress=False)
    check(cat, skipped, root, want, broken, tmp_path)


def test_mixtures(tmp_path):
    root = tmp_path / "mixes"
    want = {rel: {**good(root / rel), "role": "mixture", "labels": (), "true_labels": None, "split": "train",
                  "song": rel.rsplit(".", 1)[0], "id": rel.rsplit(".", 1)[0], "annotation": ""}
            for rel in ("a.wav", "album/b.flac", "album/disc 2/c.WAV")}
    broken = breakage(root, {"album/n.wav": "nan", "d.wav": "text", "cut.flac": "truncated", "e.wav": "empty"})
    good(root / "album/.f.wav.part")
    cat, skipped = index_dir(root, "mixtures", progress=False)
    check(cat, skipped, root, want, broken, tmp_path)


def test_bach10_layout(tmp_path):
    from scipy.io import savemat

    root = tmp_path / "bach10"
    song = "01-Foo"
    midi = np.zeros((4, 30))
    midi[0, 5:20], midi[3, 5:20] = 72.0, 48.0
    (root / song).mkdir(parents=True)
    savemat(root / song / f"{song}-GTF0s.mat", {"GTF0s": midi})
    files = {"": ("mix", None, 0), "-violin": ("violin", "violin", 0), "-clarinet": ("clarinet", "clarinet", 1),
             "-saxphone": ("saxophone", "saxophone", 2), "-bassoon": ("bassoon", "bassoon", 3)}
    want = {}
    for suffix, (key, label, row) in files.items():
        rel = f"{song}/{song}{suffix}.{'wav' if key == 'clarinet' else 'flac'}"
        want[rel] = {**good(root / rel, 44100 if key == "mix" else 22050), "id": f"{song}/{key}", "song": song,
                     "split": "test", "role": "mixture" if label is None else "stem",
                     "labels": (label,) if label else (), "true_labels": (label,) if label else None,
                     "annotation": f"{song}/{song}-GTF0s.mat#{row}"}
    # A second song without GTF0s: its good mix has no annotation; its parts are all broken.
    want["02-Bar/02-Bar.wav"] = {**good(root / "02-Bar/02-Bar.wav"), "role": "mixture", "annotation": ""}
    broken = breakage(root, {"02-Bar/02-Bar-violin.flac": "truncated", "02-Bar/02-Bar-clarinet.wav": "nan",
                             "02-Bar/02-Bar-saxphone.wav": "empty", "02-Bar/02-Bar-bassoon.wav": "text"})
    good(root / "02-Bar/02-Bar-piano.wav")
    broken["02-Bar/02-Bar-piano.wav"] = "not a Bach10 mix or part"
    cat, skipped = index_dir(root, "bach10", progress=False)
    rows = check(cat, skipped, root, want, broken, tmp_path)
    loaded = Catalog.load(tmp_path / "out" / "c.csv")
    times, f0 = read_f0(loaded.resolve(rows[f"{song}/violin"].annotation))
    assert np.allclose(f0[5:20], 523.2511, atol=0.01) and f0[0] == 0
    _, f0 = read_f0(loaded.resolve(rows[f"{song}/bassoon"].annotation))
    assert np.allclose(f0[5:20], 130.8128, atol=0.01)


def test_medleydb_layout(tmp_path):
    root = tmp_path / "MedleyDB"
    audio = root / "Audio"
    want = {}

    def stem(song, n, labels, truth=True, annotation=""):
        rel = f"Audio/{song}/{song}_STEMS/{song}_STEM_{n:02d}.wav"
        want[rel] = {**good(root / rel), "role": "stem", "labels": labels, "split": "train", "song": song,
                     "true_labels": labels if truth else None, "id": f"{song}/{song}_STEM_{n:02d}",
                     "annotation": annotation}

    def meta(song, stems, **extra):
        body = {"mix_filename": f"{song}_MIX.wav", "stem_dir": f"{song}_STEMS", **extra,
                "stems": {f"S{n:02d}": {"component": "", "filename": f"{song}_STEM_{n:02d}.wav", "instrument": inst}
                          for n, inst in stems.items()}}
        (audio / song).mkdir(parents=True, exist_ok=True)
        (audio / song / f"{song}_METADATA.yaml").write_text(yaml.safe_dump(body))

    melody = root / "Annotations/Melody_Annotations/MELODY2/SongA_MELODY2.csv"
    melody.parent.mkdir(parents=True)
    melody.write_text("0.0,0.0\n0.0058,220.0\n0.0116,221.0\n")
    pitch = root / "Annotations/Pitch_Annotations/SongA_STEM_01.csv"
    pitch.parent.mkdir(parents=True)
    pitch.write_text("0.0,220.0\n0.0058,221.0\n")
    meta("SongA", {1: "female singer", 2: "drum set", 3: "electric bass", 4: ["clean electric guitar", "male singer"],
                   5: "bass drum", 6: "tuba", 7: "double bass", 8: "piano"}, has_bleed="no", instrumental="no",
         artist="Artist A")
    want["Audio/SongA/SongA_MIX.wav"] = {**good(audio / "SongA/SongA_MIX.wav", 44100, 2), "role": "mixture",
                                        "labels": (), "annotation": melody.relative_to(root).as_posix()}
    stem("SongA", 1, ("vocals",), annotation="Annotations/Pitch_Annotations/SongA_STEM_01.csv")
    stem("SongA", 2, ("drums",))
    stem("SongA", 3, ("bass",))
    stem("SongA", 4, ("other", "vocals"))
    stem("SongA", 5, ("drums",))
    stem("SongA", 6, ("other",))
    broken = breakage(root, {"Audio/SongA/SongA_STEMS/SongA_STEM_07.wav": "truncated",
                             "Audio/SongA/SongA_STEMS/SongA_STEM_09.wav": "text"})  # 08: listed, missing
    broken["Audio/SongA/SongA_STEMS/SongA_STEM_08.wav"] = "missing"
    broken["Audio/SongA/SongA_STEMS/SongA_STEM_09.wav"] = "not listed in metadata"
    good(audio / "SongA/SongA_RAW/SongA_RAW_01_01.wav")  # raw tracks are not indexed

    # Bleeding song: truth unknown; melody file in the song folder; its mix is broken.
    meta("SongB", {1: "tuba", 2: ["male rapper"]}, has_bleed="yes")
    (audio / "SongB/SongB_MELODY2.csv").write_text("0.0,100.0\n")
    stem("SongB", 1, ("other",), truth=False)
    broken.update(breakage(root, {"Audio/SongB/SongB_MIX.wav": "text",
                                  "Audio/SongB/SongB_STEMS/SongB_STEM_02.wav": "nan"}))
    # No metadata: the mix is still indexed, the stems cannot be labelled.
    want["Audio/SongC/SongC_MIX.wav"] = {**good(audio / "SongC/SongC_MIX.wav"), "role": "mixture", "annotation": ""}
    good(audio / "SongC/SongC_STEMS/SongC_STEM_01.wav")
    broken["Audio/SongC/SongC_STEMS/SongC_STEM_01.wav"] = "no SongC_METADATA.yaml"
    # Broken YAML.
    good(audio / "SongD/SongD_STEMS/SongD_STEM_01.wav")
    (audio / "SongD/SongD_METADATA.yaml").write_text("stems: [unclosed\n")
    broken["Audio/SongD/SongD_STEMS/SongD_STEM_01.wav"] = "unreadable SongD_METADATA.yaml"

    # An instrumental song: its melody is the melody stem's line, not a voice on the mix.
    meta("SongE", {1: "flute", 2: "electric drum kit"}, instrumental="yes")
    (audio / "SongE" / "SongE_STEMS").mkdir(parents=True)
    body = yaml.safe_load((audio / "SongE/SongE_METADATA.yaml").read_text())
    body["stems"]["S01"]["component"] = "melody"
    (audio / "SongE/SongE_METADATA.yaml").write_text(yaml.safe_dump(body))
    (audio / "SongE/SongE_MELODY2.csv").write_text("0.0,500.0\n")
    want["Audio/SongE/SongE_MIX.wav"] = {**good(audio / "SongE/SongE_MIX.wav"), "role": "mixture", "annotation": ""}
    stem("SongE", 1, ("other",), annotation="Audio/SongE/SongE_MELODY2.csv")
    stem("SongE", 2, ("drums",))  # a name in no table, labelled by a keyword in it: indexed, with a note
    broken["Audio/SongE/SongE_STEMS/SongE_STEM_02.wav"] = "'electric drum kit' is in no table"

    cat, skipped = index_dir(root, "medleydb", progress=False)
    rows = check(cat, skipped, root, want, broken, tmp_path)
    assert [Path(s.path).name for s in skipped if s.kept] == ["SongE_STEM_02.wav"]
    loaded = Catalog.load(tmp_path / "out" / "c.csv")
    _, f0 = read_f0(loaded.resolve(rows["SongA/SongA_MIX"].annotation))
    assert f0.tolist() == [0.0, 220.0, 221.0]
    assert {e.group for e in cat if e.song == "SongA"} == {"Artist A"} and cat["SongE/SongE_MIX"].group == "SongE"


def test_medleydb_instrument_table():
    assert [to_class(n) for n in ("female singer", "vocalists", "Male Rapper", "choir")] == ["vocals"] * 4
    assert [to_class(n) for n in ("drum set", "kick drum", "bass drum", "drum machine", "auxiliary percussion",
                                  "high hat", "toms", "cymbal")] == ["drums"] * 8
    assert [to_class(n) for n in ("electric bass", "double bass", "bass synthesizer")] == ["bass"] * 3
    assert [to_class(n) for n in ("tuba", "bassoon", "bass clarinet", "piano", "vibraphone", "synthesizer")] \
        == ["other"] * 6


# ------------------------------------------------------------------ the real Bach10
def test_bach10_real():
    if not BACH10.is_dir():
        pytest.skip(f"{BACH10} not present")
    cat, skipped = index_dir(BACH10, "bach10", progress=False)
    assert skipped == []
    assert len(cat.mixtures("test")) == 10 and len(cat.stems("test")) == 40
    instruments = ("violin", "clarinet", "saxophone", "bassoon")
    for name in instruments:
        rows = [e for e in cat.stems() if e.labels == (name,)]
        assert len(rows) == 10 and all(e.true_labels == (name,) for e in rows)
        assert all(e.annotation.endswith(f"#{instruments.index(name)}") for e in rows)
    for mix in cat.mixtures():
        assert mix.annotation.endswith("-GTF0s.mat#0") and 20 < mix.duration < 60 and mix.sample_rate == 44100
        times, f0 = read_f0(cat.resolve(mix.annotation))
        voiced = f0[f0 > 0]
        assert voiced.size > 0.5 * f0.size and 200 <= voiced.min() and voiced.max() <= 1000
        assert abs(times[-1] - mix.duration) < 2.0


def test_musdb18_stem_mp4_is_decoded_beside_the_catalog_once(tmp_path, monkeypatch):
    stempeg = pytest.importorskip("stempeg")
    t = np.arange(22050) / 44100
    freqs = [220.0, 330.0, 440.0, 550.0, 660.0]  # one tone per stream: mixture, drums, bass, other, vocals
    sources = np.stack([np.repeat((0.3 * np.sin(2 * np.pi * f * t))[:, None], 2, 1) for f in freqs]).astype(np.float32)
    (tmp_path / "musdb18" / "train").mkdir(parents=True)
    stempeg.write_stems(str(tmp_path / "musdb18/train/Actions - One Minute Smile.stem.mp4"), sources, sample_rate=44100,
                        writer=stempeg.StreamsWriter(codec="aac"))
    (tmp_path / "musdb18/train/Broken.stem.mp4").write_bytes(b"not an mp4")
    monkeypatch.chdir(tmp_path)
    from noisymss.cli import main

    assert main(["index", "musdb18", "--format", "musdb", "--out", "out/musdb.csv"]) == 0
    cat = Catalog.load(tmp_path / "out" / "musdb.csv")
    song = "Actions - One Minute Smile"
    assert {e.id for e in cat} == {f"{song}/{n}" for n in ("mixture", "drums", "bass", "other", "vocals")}
    assert {e.split for e in cat} == {"valid"} and cat[f"{song}/vocals"].true_labels == ("vocals",)
    assert all(cat.resolve(e.path).is_relative_to(tmp_path / "out" / "musdb.audio") for e in cat)
    decoded, _ = sf.read(cat.resolve(cat[f"{song}/vocals"].path), dtype="float32")
    spectrum = np.abs(np.fft.rfft(decoded[:, 0]))
    assert np.fft.rfftfreq(len(decoded), 1 / 44100)[np.argmax(spectrum)] == pytest.approx(660.0, abs=3)  # the vocals
    from noisymss.data.sources.musdb import decode_stem_mp4

    vocals = cat.resolve(cat[f"{song}/vocals"].path)
    before = vocals.stat().st_mtime_ns
    decode_stem_mp4(tmp_path / f"musdb18/train/{song}.stem.mp4", vocals.parent)  # complete: not decoded again
    assert vocals.stat().st_mtime_ns == before
