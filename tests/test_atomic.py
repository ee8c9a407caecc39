"""Atomic CSV writers: what they write, and that a failed write leaves the old file."""
import csv

import pytest

from noisymss.atomic import atomic_write_csv, atomic_write_records


def test_records_take_every_key_in_first_seen_order_and_leave_missing_cells_empty(tmp_path):
    path = atomic_write_records(tmp_path / "out.csv", [{"a": 1, "b": 0.5}, {"a": 2, "c": None}])
    assert path.read_text() == "a,b,c\n1,0.5,\n2,,\n"
    assert list(csv.DictReader(open(path))) == [{"a": "1", "b": "0.5", "c": ""}, {"a": "2", "b": "", "c": ""}]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = atomic_write_csv(tmp_path / "out.csv", ["x"], [[1]])

    def rows():
        yield [2]
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        atomic_write_csv(path, ["x"], rows())
    assert path.read_text() == "x\n1\n" and [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_results_get_the_mode_a_plain_open_gives(tmp_path):
    import os

    from noisymss.atomic import atomic_write_text

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    written = atomic_write_text(tmp_path / "atomic.txt", "x")
    assert os.stat(written).st_mode & 0o777 == os.stat(plain).st_mode & 0o777  # not mkstemp's 0600
