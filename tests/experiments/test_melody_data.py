import numpy as np

from noisymss.data.annotations import read_f0
from noisymss.data.catalog import Catalog, Entry
from noisymss.experiments.melody_data import voicing_vs_activity
from noisymss.melody.inference import load_melody_model


def _spans(voiced: np.ndarray, hop: float = 0.01) -> list[tuple[float, float]]:
    edges = np.flatnonzero(np.diff(np.r_[0, voiced.astype(int), 0]))
    return [(a * hop, b * hop) for a, b in zip(edges[::2], edges[1::2])]


def test_voicing_is_scored_against_activity_on_the_right_frames(melody_corpus, tmp_path):
    """A demo song whose activity spans are its own sung spans: the shipped model's voicing follows them;
    the same spans shifted by two seconds do not."""
    cat = Catalog.load(melody_corpus / "catalog.csv")
    song = cat.mixtures("labelled")[0]
    times, hz = read_f0(cat.resolve(song.annotation))
    entries = []
    for name, shift in (("aligned", 0.0), ("shifted", 2.0)):
        lines = tmp_path / f"{name}.csv"
        lines.write_text("".join(f"{a + shift:.2f},{b + shift:.2f},la\n" for a, b in _spans(hz > 0)))
        entries.append(Entry(name, name, str(cat.resolve(song.path)), "mixture", song.duration, song.sample_rate,
                             song.channels, "test", (), None, f"{lines}#activity"))
    Catalog(entries, tmp_path).save(tmp_path / "songs.csv")
    got = voicing_vs_activity(load_melody_model(None), tmp_path / "songs.csv", melodia=False)["scores"]["noisymss"]
    aligned, shifted = got
    assert aligned["VR"] > 60
    assert aligned["VR"] - aligned["VFA"] > shifted["VR"] - shifted["VFA"] + 20
