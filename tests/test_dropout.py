"""Dropout kernels: the C core and the NumPy reference draw the same mask."""
import numpy as np
import pytest


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9])
@pytest.mark.parametrize("n", [1, 7, 1000, 100_003])
def test_c_mask_equals_reference(c, ref, p, n, rng, n_threads):
    x = rng.standard_normal(n).astype(np.float32)
    key = c.dropout_key(12345, 2, 7)
    assert key == ref.dropout_key(12345, 2, 7)
    yc, yr = np.full(n, np.nan, np.float32), np.full(n, np.nan, np.float32)
    c.dropout_forward(yc, x, p, key)
    ref.dropout_forward(yr, x, p, key)
    np.testing.assert_array_equal(yc, yr)
    dy = rng.standard_normal(n).astype(np.float32)
    dc, dr = np.empty_like(dy), np.empty_like(dy)
    c.dropout_backward(dc, dy, p, key)
    ref.dropout_backward(dr, dy, p, key)
    np.testing.assert_array_equal(dc, dr)
    # backward applies the forward's mask
    np.testing.assert_array_equal(dc == 0, (yc == 0) & (x != 0) | (dy == 0))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_keep_rate_and_scale(backend, p):
    n = 200_000
    x = np.ones(n, np.float32)
    y = np.empty_like(x)
    backend.dropout_forward(y, x, p, backend.dropout_key(0, 0, 1))
    kept = y != 0
    # binomial: 5 standard deviations
    assert abs(kept.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(y[kept], np.float32(1) / (np.float32(1) - np.float32(p)))


def test_keys_differ_by_seed_layer_and_counter(backend):
    keys = {backend.dropout_key(s, l, t) for s in (0, 1) for l in (0, 1) for t in (1, 2)}
    assert len(keys) == 8
    # masks for different keys differ
    x = np.ones(1000, np.float32)
    a, b = np.empty_like(x), np.empty_like(x)
    backend.dropout_forward(a, x, 0.5, backend.dropout_key(0, 0, 1))
    backend.dropout_forward(b, x, 0.5, backend.dropout_key(0, 0, 2))
    assert (a != b).any()


def test_nan_propagates_through_kept_and_dropped(c):
    x = np.full(64, np.nan, np.float32)
    y = np.empty_like(x)
    c.dropout_forward(y, x, 0.5, 99)
    assert np.isnan(y).all()   # x * 0 is NaN, as in PyTorch's x * mask


@pytest.mark.parametrize("p", [-0.1, 1.0, float("nan")])
def test_bad_probability(backend, p):
    x = np.ones(4, np.float32)
    with pytest.raises(ValueError, match="dropout probability"):
        backend.dropout_forward(np.empty_like(x), x, p, 1)
