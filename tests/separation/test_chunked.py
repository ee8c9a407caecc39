"""Chunked separation: exact reconstruction through overlap-add, shapes, and what the separator is fed."""
import numpy as np
import pytest
import torch

from noisymss.separation.chunked import chunk_positions, crossfade_window, separate_chunked

CHUNK = 64


class Recorder:
    """Returns the input as `len(gains)` sources scaled by `gains`, and records every input shape."""

    def __init__(self, gains=(1.0,)):
        self.gains = torch.tensor(gains)
        self.shapes = []

    def __call__(self, x):
        self.shapes.append(tuple(x.shape))
        assert not torch.is_grad_enabled()
        return x[:, None] * self.gains[None, :, None, None].to(x.dtype)


def _mixture(length, channels=2, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((channels, length)).astype(np.float32))


@pytest.mark.parametrize("length", [1, 37, CHUNK, CHUNK + 1, 5 * CHUNK - 7, 1000])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 0.8])
@pytest.mark.parametrize("batch", [1, 3])
def test_identity_separator_reconstructs_the_mixture_exactly(length, overlap, batch):
    mix = _mixture(length)
    sep = Recorder()
    out = separate_chunked(sep, mix, CHUNK, overlap=overlap, batch=batch)
    assert out.shape == (1, 2, length) and out.dtype == torch.float32
    torch.testing.assert_close(out[0], mix, rtol=1e-6, atol=1e-6)
    # the separator only ever sees full chunks, at most `batch` at a time
    assert all(s[1:] == (2, CHUNK) and 1 <= s[0] <= batch for s in sep.shapes)
    assert sum(s[0] for s in sep.shapes) == len(chunk_positions(length, CHUNK, CHUNK - round(overlap * CHUNK)))


def test_two_sources_are_scaled_copies_and_numpy_input_works():
    mix = _mixture(300, channels=1).numpy()
    out = separate_chunked(Recorder((1.0, 2.0)), mix, CHUNK, overlap=0.25, batch=2)
    assert out.shape == (2, 1, 300)
    np.testing.assert_allclose(out[0].numpy(), mix, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out[1].numpy(), 2 * mix, rtol=1e-6, atol=1e-6)


def test_a_chunk_dependent_separator_is_cross_faded_with_the_right_weights():
    """Each call returns a constant per chunk (its start sample); the output is the weight-averaged start."""
    starts = []

    def sep(x):
        # the chunk's start is recoverable from the mixture, which is the sample index
        s = x[:, 0, 0]
        starts.extend(s.tolist())
        return s[:, None, None, None].expand(-1, 1, 1, x.shape[-1]).clone()

    length, fade = 200, 16
    mix = torch.arange(length, dtype=torch.float32)[None]
    out = separate_chunked(sep, mix, CHUNK, overlap=fade / CHUNK)
    hop = CHUNK - fade
    assert starts == list(chunk_positions(length, CHUNK, hop))
    w = crossfade_window(CHUNK, fade)
    # inside the overlap of chunks 0 and 1 the two constants are cross-faded with weights summing to 1
    i = torch.arange(hop, CHUNK)
    expected = (0 * w[i] + hop * w[i - hop]) / (w[i] + w[i - hop])
    torch.testing.assert_close(out[0, 0, hop:CHUNK], expected)
    torch.testing.assert_close(w[i] + w[i - hop], torch.ones(fade))
    assert torch.all(out[0, 0, :hop] == 0) and torch.all(out[0, 0, CHUNK:2 * hop] == hop)


def test_window_and_positions():
    w = crossfade_window(10, 3)
    torch.testing.assert_close(w, torch.tensor([1, 2, 3, 4, 4, 4, 4, 3, 2, 1]) / 4)
    assert (crossfade_window(10, 9) > 0).all()  # overlap above half: a triangle, never zero
    assert list(chunk_positions(5, 10, 8)) == [0]
    assert list(chunk_positions(10, 10, 8)) == [0]
    assert list(chunk_positions(11, 10, 8)) == [0, 8]
    assert list(chunk_positions(26, 10, 8)) == [0, 8, 16]
    assert list(chunk_positions(27, 10, 8)) == [0, 8, 16, 24]


def test_out_buffer_is_overwritten_and_numpy_out_shares_memory():
    mix = _mixture(150)
    out = np.full((2, 2, 150), 7.0, dtype=np.float64)
    res = separate_chunked(Recorder((1.0, -1.0)), mix, CHUNK, overlap=0.5, out=out)
    np.testing.assert_allclose(out[0], mix.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out[1], -mix.numpy(), rtol=1e-6, atol=1e-6)
    assert np.shares_memory(res.numpy(), out)
    with pytest.raises(ValueError, match="out is"):
        separate_chunked(Recorder(), mix, CHUNK, out=torch.zeros(2, 2, 150))


def test_bad_separator_output_is_reported():
    with pytest.raises(ValueError, match="expected \\(B, S, C, T\\)"):
        separate_chunked(lambda x: x, _mixture(100), CHUNK)
