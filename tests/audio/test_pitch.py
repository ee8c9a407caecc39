"""MIDI ↔ Hz: A4 = 440 Hz, round trips, and 0 = unvoiced both ways."""
import numpy as np

from noisymss.audio.pitch import hz_to_midi, midi_to_hz


def test_midi_hz_round_trip():
    midi = np.array([0.0, 38.0, 69.0, 83.5])
    np.testing.assert_allclose(hz_to_midi(midi_to_hz(midi)), midi)
    assert midi_to_hz(np.array([69.0]))[0] == 440.0


def test_unvoiced_stays_zero_without_warnings():
    with np.errstate(all="raise"):
        assert np.all(hz_to_midi(np.array([0.0, -1.0])) == 0.0)
        assert np.all(midi_to_hz(np.array([0.0, -3.0])) == 0.0)
