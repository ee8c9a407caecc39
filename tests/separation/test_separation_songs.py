import numpy as np

from noisymss.audio.io import read_audio
from noisymss.data.catalog import Catalog
from noisymss.separation.songs import load_song, scorable_songs


def test_only_songs_with_exact_references_are_scorable(duets):
    cat = Catalog.load(duets)
    ok, skipped = scorable_songs(cat, "test", ["tone", "noise"], cat.labels("true"))
    assert ok == [] and list(skipped) == ["d7"] and "noise+tone" in skipped["d7"]
    ok, skipped = scorable_songs(cat, "valid", ["tone", "noise"], cat.labels("true"))
    assert ok == ["d5", "d6"] and not skipped
    ok, skipped = scorable_songs(cat, "valid", ["tone"], cat.labels("true"))  # a class outside the sources
    assert ok == [] and set(skipped) == {"d5", "d6"}


def test_a_song_is_the_sum_of_its_references_in_source_order(duets):
    cat = Catalog.load(duets)
    ref = load_song(cat, "d5", ["noise", "tone"], cat.labels("true"), 16000, 2)
    assert ref.references.shape == (2, 2, 32000) and ref.mixture.shape == (2, 32000)
    tone = read_audio(cat.resolve("d5/tone.wav"), channels=2)
    np.testing.assert_array_equal(ref.references[1], tone)
    np.testing.assert_allclose(ref.mixture, ref.references.sum(axis=0), atol=1e-7)
    # under the given labels, d1's noise stem is a 'tone': both stems land in the tone reference
    given = load_song(cat, "d1", ["noise", "tone"], cat.labels("given"), 16000, 1)
    assert np.abs(given.references[0]).max() == 0.0
