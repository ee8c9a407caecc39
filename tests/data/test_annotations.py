import numpy as np
import pytest

from conftest import BACH10
from noisymss.data.annotations import AnnotationError, f0_on_grid, read_f0, write_f0


def test_two_column_text_round_trip_and_unvoiced(tmp_path):
    times = np.arange(5) * 0.01
    f0 = np.array([0.0, 220.0, 220.5, 0.0, 440.0])
    write_f0(tmp_path / "a.txt", times, f0)
    t, f = read_f0(tmp_path / "a.txt")
    np.testing.assert_allclose(t, times)
    np.testing.assert_allclose(f, f0, atol=1e-3)


def test_comma_csv_header_and_negative_unvoiced(tmp_path):
    (tmp_path / "m.csv").write_text("time,frequency\n0.0,-110.0\n0.0058,110.0\n0.0116,111.0\n")
    t, f = read_f0(tmp_path / "m.csv")
    assert list(f) == [0.0, 110.0, 111.0] and t[1] == pytest.approx(0.0058)


def test_unsorted_or_garbled_annotations_are_rejected_with_the_file_name(tmp_path):
    (tmp_path / "u.txt").write_text("0.02 100\n0.01 100\n")
    with pytest.raises(AnnotationError, match="u.txt: times are not strictly increasing"):
        read_f0(tmp_path / "u.txt")
    (tmp_path / "g.txt").write_text("0.00 100\nhello\n")
    with pytest.raises(AnnotationError, match="g.txt:2"):
        read_f0(tmp_path / "g.txt")
    with pytest.raises(AnnotationError, match="not found"):
        read_f0(tmp_path / "missing.txt")


def test_grid_resampling_from_another_hop():
    times = np.arange(0, 1, 0.0058)  # MedleyDB's 256/44100 s hop
    f0 = np.where(times < 0.5, 200.0, 0.0)
    grid = f0_on_grid(times, f0, start=0.2, frames=50)
    assert np.all(grid[:29] == 200.0) and np.all(grid[31:] == 0.0)
    assert np.all(f0_on_grid(times, f0, start=2.0, frames=10) == 0.0)  # past the end: unvoiced


@pytest.mark.skipif(not BACH10.is_dir(), reason="Bach10 not present in ../shared/data")
def test_bach10_gtf0s_parts():
    mat = BACH10 / "01-AchGottundHerr" / "01-AchGottundHerr-GTF0s.mat"
    t, violin = read_f0(f"{mat}#0")
    _, bassoon = read_f0(f"{mat}#3")
    assert t[0] == pytest.approx(0.023) and np.allclose(np.diff(t), 0.01)
    assert np.median(violin[violin > 0]) > 2 * np.median(bassoon[bassoon > 0])
    with pytest.raises(AnnotationError, match="out of range"):
        read_f0(f"{mat}#7")


def test_jamendo_line_alignment_is_vocal_activity_never_pitch(tmp_path):
    from noisymss.data.annotations import AnnotationError, read_activity

    lines = tmp_path / "song.csv"
    lines.write_text("start_time,end_time,lyrics_line\n0.10,0.30,here we go\n0.50,0.52,hey\n")
    times, active = read_activity(f"{lines}#activity")
    assert times[1] - times[0] == pytest.approx(0.01) and times[-1] == pytest.approx(0.52)
    assert active[np.searchsorted(times, 0.2)] and not active[np.searchsorted(times, 0.4)]
    assert active.sum() == 20 + 2
    with pytest.raises(AnnotationError, match="vocal activity without pitch"):
        read_f0(f"{lines}#activity")
