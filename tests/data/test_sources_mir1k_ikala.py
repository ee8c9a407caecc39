"""The MIR-1K and iKala importers (vocals and accompaniment as the channels of one file), on generated
layouts and on the real trees in ../shared/data (skipped when absent)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import mir1k_clip
from noisymss.audio.io import read_audio
from noisymss.data.annotations import read_f0
from noisymss.data.sources import index_dir

MIR1K = Path(__file__).resolve().parents[2].parent / "shared/data/mir1k"


def test_three_rows_per_clip_singer_groups_and_pitch_at_the_datasets_frame_times(tmp_path):
    mir1k_clip(tmp_path, "amy_1_01", [0, 0, 57.0, 57.0, 69.0, 0])
    mir1k_clip(tmp_path, "amy_2_01", [60.0] * 5)
    mir1k_clip(tmp_path, "bobon_1_01", [0, 62.0, 0])
    (tmp_path / "Wavfile" / "notes.wav").write_bytes(b"x")
    cat, skipped = index_dir(tmp_path, "mir1k", progress=False)
    assert [s.path.endswith("notes.wav") for s in skipped] == [True]
    assert len(cat.mixtures()) == 3 and len(cat.stems()) == 6
    assert {e.group for e in cat} == {"amy", "bobon"}
    vocals = cat["amy_1_01/vocals"]
    assert vocals.labels == vocals.true_labels == ("vocals",) and vocals.channels == 1
    times, hz = read_f0(cat.resolve(vocals.annotation))
    np.testing.assert_allclose(times, 0.02 * (np.arange(6) + 1))  # frame k at 0.02 (k + 1) s
    np.testing.assert_allclose(hz, [0, 0, 220.0, 220.0, 440.0, 0], rtol=1e-6)  # MIDI to Hz; 0 is unvoiced
    assert cat["amy_1_01/accompaniment"].annotation == "" and cat["amy_1_01/mixture"].annotation == vocals.annotation
    voice = read_audio(cat.resolve(vocals.path))[0]
    backing = read_audio(cat.resolve(cat["amy_1_01/accompaniment"].path))[0]
    assert np.abs(voice[:300]).max() == 0 and np.abs(voice).max() > 0.3  # the right channel is the voice
    assert np.abs(backing).max() == pytest.approx(0.1, abs=1e-3)


@pytest.mark.slow  # (indexes all 1,000 clips; the next test checks one real clip in make test)
@pytest.mark.skipif(not MIR1K.is_dir(), reason="MIR-1K not present in ../shared/data")
def test_the_whole_real_mir1k():
    cat, skipped = index_dir(MIR1K, "mir1k", progress=False)
    assert not skipped and len(cat.mixtures()) == 1000 and len(cat.stems()) == 2000
    assert len({e.group for e in cat}) == 19


@pytest.mark.skipif(not MIR1K.is_dir(), reason="MIR-1K not present in ../shared/data")
def test_a_real_mir1kmir1k_clip(tmp_path):
    for folder, name in (("Wavfile", "abjones_1_01.ogg"), ("PitchLabel", "abjones_1_01.pv")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).symlink_to(MIR1K / folder / name)
    cat, skipped = index_dir(tmp_path, "mir1k", progress=False)
    assert not skipped and cat["abjones_1_01/mixture"].group == "abjones"
    clip = cat["abjones_1_01/vocals"]
    frames = int(round(clip.duration * 16000))
    times, hz = read_f0(cat.resolve(clip.annotation))
    assert len(times) == (frames - 640) // 320 + 1 and times[0] == pytest.approx(0.02)
    # the voice is the right channel: it is louder where the labels say voiced than where they say unvoiced
    audio = read_audio(cat.resolve(clip.path))[0]
    rms = np.array([np.sqrt(np.mean(audio[max(int(t * 16000) - 320, 0):int(t * 16000) + 320] ** 2)) for t in times])
    voiced = hz > 0
    assert rms[voiced].mean() > 2 * rms[~voiced].mean()


IKALA = Path(__file__).resolve().parents[2].parent / "shared/data/layouts/ikala"


def test_ikala_takes_the_singer_from_its_mapping_and_its_own_frame_times(tmp_path):
    mir1k_clip(tmp_path, "10161_chorus", [0, 60.0, 60.0])
    mir1k_clip(tmp_path, "99999_verse", [60.0])  # a song the mapping does not know
    (tmp_path / "id_mapping.txt").write_text("singer\tsongid\n1\t10161\n")
    cat, skipped = index_dir(tmp_path, "ikala", progress=False)
    assert [Path(s.path).name for s in skipped] == ["99999_verse.wav"]
    assert {e.group for e in cat} == {"singer1"} and len(cat) == 3
    times, hz = read_f0(cat.resolve(cat["10161_chorus/vocals"].annotation))
    np.testing.assert_allclose(times, [0.016, 0.048, 0.080])
    assert cat["10161_chorus/vocals"].path.endswith("#ch1")


@pytest.mark.skipif(not IKALA.is_dir(), reason="iKala layout not present in ../shared/data")
def test_the_real_ikala_layout():
    cat, skipped = index_dir(IKALA, "ikala", progress=False)
    assert not skipped and len(cat.mixtures()) == 1 and {e.group for e in cat} == {"singer1"}
    assert cat["10161_chorus/vocals"].annotation == "PitchLabel/10161_chorus.pv#ikala"
