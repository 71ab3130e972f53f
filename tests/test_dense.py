"""Dense layer: C (float32, built on fnn_sgemm) against the float64 reference.

Bound per element (the standard forward error bound of a float32 GEMM): a
K-term float32 dot product plus an added term c0 satisfies
|C - ref| <= (3K + 1) eps32 (|a| |b| + |c0|), eps32 = 2^-23.
"""
import numpy as np
import pytest

import fastnn._core as core
import fastnn.reference as reference

EPS32 = 2.0 ** -23
SHAPES = [(1, 1, 1), (1, 7, 3), (5, 3, 1), (0, 4, 3), (4, 0, 3), (4, 3, 0),
          (33, 65, 17), (128, 256, 100)]   # (N, IN, OUT)


def assert_within(actual, expected, k, scale):
    bound = (3 * k + 1) * EPS32 * scale
    err = np.abs(actual.astype(np.float64) - expected)
    assert np.all(err <= bound), f"max excess {np.max(err - bound)}"


def data(rng, N, IN, OUT):
    f = lambda *s: rng.standard_normal(s).astype(np.float32)
    return f(N, IN), f(IN, OUT), f(OUT), f(N, OUT)


def f64(*arrays):
    return [None if a is None else a.astype(np.float64) for a in arrays]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("N,IN,OUT", SHAPES)
def test_forward_matches_reference(N, IN, OUT, bias, rng, n_threads):
    x, w, b, _ = data(rng, N, IN, OUT)
    b = b if bias else None
    y = np.full((N, OUT), np.nan, np.float32)        # output memory must not be read
    core.dense_forward(y, x, w, b)
    y64 = np.empty((N, OUT))
    x64, w64, b64 = f64(x, w, b)
    reference.dense_forward(y64, x64, w64, b64)
    scale = np.abs(x64) @ np.abs(w64) + (np.abs(b64) if bias else 0)
    assert_within(y, y64, IN + 1, scale)


@pytest.mark.parametrize("N,IN,OUT", SHAPES)
def test_backward_matches_reference(N, IN, OUT, rng, n_threads):
    x, w, _, dy = data(rng, N, IN, OUT)
    dw0 = rng.standard_normal((IN, OUT)).astype(np.float32)
    db0 = rng.standard_normal(OUT).astype(np.float32)
    dx = np.full((N, IN), np.nan, np.float32)          # overwritten, never read
    dw, db = dw0.copy(), db0.copy()
    core.dense_backward(dx, dw, db, dy, x, w)
    x64, w64, dy64, dw64, db64 = f64(x, w, dy, dw0, db0)
    dx64 = np.empty((N, IN))
    reference.dense_backward(dx64, dw64, db64, dy64, x64, w64)
    assert_within(dx, dx64, OUT, np.abs(dy64) @ np.abs(w64).T)
    assert_within(dw, dw64, N, np.abs(x64).T @ np.abs(dy64) + np.abs(dw0))
    assert_within(db, db64, N, np.abs(dy64).sum(axis=0) + np.abs(db0))


def test_exact_small_integers(backend):
    """Integer data: every product and sum is exact, on either backend."""
    x = np.array([[1, 2], [3, 4], [5, 6]], np.float32)
    w = np.array([[1, 0, -1], [2, 1, 0]], np.float32)
    b = np.array([10, 20, 30], np.float32)
    y = np.empty((3, 3), np.float32)
    backend.dense_forward(y, x, w, b)
    np.testing.assert_array_equal(y, [[15, 22, 29], [21, 24, 27], [27, 26, 25]])
    dy = np.ones((3, 3), np.float32)
    dx, dw, db = np.empty((3, 2), np.float32), np.zeros((2, 3), np.float32), np.zeros(3, np.float32)
    backend.dense_backward(dx, dw, db, dy, x, w)
    np.testing.assert_array_equal(dx, [[0, 3]] * 3)
    np.testing.assert_array_equal(dw, [[9, 9, 9], [12, 12, 12]])
    np.testing.assert_array_equal(db, [3, 3, 3])


def test_in_zero_gives_bias(backend):
    y = np.full((3, 2), np.nan, np.float32)
    backend.dense_forward(y, np.empty((3, 0), np.float32), np.empty((0, 2), np.float32),
                          np.array([1.5, -2], np.float32))
    np.testing.assert_array_equal(y, [[1.5, -2]] * 3)


def test_gradients_accumulate(backend, rng):
    """dw, db accumulate (+=): two calls give twice one call; dx is overwritten."""
    x, w, _, dy = data(rng, 20, 13, 7)
    dx = np.empty((20, 13), np.float32)
    dw, db = np.zeros((13, 7), np.float32), np.zeros(7, np.float32)
    backend.dense_backward(dx, dw, db, dy, x, w)
    dx1, dw1, db1 = dx.copy(), dw.copy(), db.copy()
    backend.dense_backward(dx, dw, db, dy, x, w)
    np.testing.assert_array_equal(dx, dx1)
    np.testing.assert_allclose(dw, 2 * dw1, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(db, 2 * db1)


def test_dx_none_and_db_none(backend, rng):
    x, w, _, dy = data(rng, 6, 5, 4)
    dw_a, dw_b = np.zeros((5, 4), np.float32), np.zeros((5, 4), np.float32)
    backend.dense_backward(None, dw_a, None, dy, x, w)
    backend.dense_backward(np.empty((6, 5), np.float32), dw_b, np.zeros(4, np.float32),
                           dy, x, w)
    np.testing.assert_array_equal(dw_a, dw_b)


def test_nan_propagates(rng):
    x, w, b, dy = data(rng, 4, 3, 2)
    x[1, 2] = np.nan
    y = np.empty((4, 2), np.float32)
    core.dense_forward(y, x, w, b)
    assert np.isnan(y[1]).all() and np.isfinite(np.delete(y, 1, axis=0)).all()


def test_threads_bitwise(rng):
    x, w, b, dy = data(rng, 300, 200, 150)
    old = core.get_num_threads()
    res = []
    try:
        for nt in (1, 2):
            core.set_num_threads(nt)
            y = np.empty((300, 150), np.float32)
            core.dense_forward(y, x, w, b)
            dx, dw, db = (np.empty((300, 200), np.float32), np.zeros((200, 150), np.float32),
                          np.zeros(150, np.float32))
            core.dense_backward(dx, dw, db, dy, x, w)
            res.append((y, dx, dw, db))
    finally:
        core.set_num_threads(old)
    for a, b2 in zip(*res):
        np.testing.assert_array_equal(a, b2)


def test_shape_mismatch_raises(backend, rng):
    x, w, b, _ = data(rng, 4, 3, 2)
    with pytest.raises(ValueError):
        backend.dense_forward(np.empty((4, 2), np.float32), x, w.T.copy(), b)
