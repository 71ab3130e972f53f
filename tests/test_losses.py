"""Loss kernels: C (float32 inputs, double accumulation) vs the float64 reference.

The C loss is accumulated in double from the same float32 inputs, so it
matches the float64 oracle to ~1e-12 relative; we assert 1e-9. dpred is
rounded to float32 once: rtol 1e-6, atol 1e-6 x the largest gradient.
"""
import numpy as np
import pytest

import fastnn._core as core
import fastnn.reference as reference

SHAPES = [(1, 1), (1, 10), (7, 3), (0, 3), (64, 10), (1000, 37)]
LOSS_RTOL = 1e-9


def call(backend, name, pred, target, *extra, fill=np.nan):
    """Return (loss, dpred) of one loss call; dpred is pre-filled with `fill`."""
    dpred = np.full(pred.shape, fill, pred.dtype)
    loss = getattr(backend, name)(dpred, pred, target, *extra)
    assert isinstance(loss, float)
    return loss, dpred


def compare(name, pred, target, *extra):
    """C vs float64 reference; returns the C (loss, dpred)."""
    loss, d = call(core, name, pred, target, *extra)
    e64 = [a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype == np.float32
           else a for a in extra]
    t64 = target.astype(np.float64) if target.dtype == np.float32 else target
    loss64, d64 = call(reference, name, pred.astype(np.float64), t64, *e64)
    np.testing.assert_allclose(loss, loss64, rtol=LOSS_RTOL, atol=1e-12)
    scale = np.abs(d64).max() if d64.size else 0.0
    np.testing.assert_allclose(d, d64, rtol=1e-6, atol=1e-6 * scale)
    return loss, d


def regression_data(rng, shape):
    return (rng.standard_normal(shape) * 2).astype(np.float32), \
        rng.standard_normal(shape).astype(np.float32)


def bce_data(rng, shape):
    return (rng.standard_normal(shape) * 4).astype(np.float32), \
        rng.uniform(0, 1, shape).astype(np.float32)


def ce_data(rng, shape, ignore=None):
    logits = (rng.standard_normal(shape) * 3).astype(np.float32)
    labels = rng.integers(0, max(shape[1], 1), shape[0]).astype(np.int64)
    if ignore is not None and shape[0] > 1:
        labels[::3] = ignore
    return logits, labels


# ------------------------------------------------------- C vs reference

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name,extra", [("mse_loss", ()), ("mae_loss", ()),
                                        ("huber_loss", (1.0,)), ("huber_loss", (0.25,))])
def test_regression_matches_reference(name, extra, shape, rng, n_threads):
    pred, target = regression_data(rng, shape)
    loss, _ = compare(name, pred, target, *extra)
    assert loss >= 0


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("pos_weight", [False, True])
def test_bce_matches_reference(shape, pos_weight, rng, n_threads):
    z, t = bce_data(rng, shape)
    pw = rng.uniform(0.2, 5, shape[1]).astype(np.float32) if pos_weight else None
    loss, _ = compare("bce_with_logits_loss", z, t, pw)
    assert loss >= 0


@pytest.mark.parametrize("shape", [(1, 1), (1, 10), (7, 3), (0, 4), (64, 10), (500, 1000)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, 1])
def test_cross_entropy_matches_reference(shape, weighted, ignore_index, rng, n_threads):
    logits, labels = ce_data(rng, shape, ignore=ignore_index)
    weight = rng.uniform(0.1, 3, shape[1]).astype(np.float32) if weighted else None
    loss, d = compare("cross_entropy_loss", logits, labels, weight, ignore_index)
    assert loss >= 0
    ignored = labels == ignore_index
    assert np.all(d[ignored] == 0)
    if shape[0]:
        np.testing.assert_allclose(d.sum(axis=1), 0, atol=1e-6)


# ------------------------------------------------------- hand-computed values

def test_regression_literal_values(backend):
    p = np.array([[1.0, -2.0], [0.5, 4.0]], np.float32)
    t = np.array([[0.0, 0.0], [0.5, 1.0]], np.float32)   # r = 1, -2, 0, 3
    loss, d = call(backend, "mse_loss", p, t)
    assert loss == 14 / 4
    np.testing.assert_array_equal(d, [[0.5, -1.0], [0.0, 1.5]])
    loss, d = call(backend, "mae_loss", p, t)
    assert loss == 6 / 4
    np.testing.assert_array_equal(d, [[0.25, -0.25], [0.0, 0.25]])
    loss, d = call(backend, "huber_loss", p, t, 1.5)     # |r| = 1 quadratic; 2, 3 linear
    assert loss == pytest.approx((0.5 + 1.5 * (2 - 0.75) + 0 + 1.5 * (3 - 0.75)) / 4)
    np.testing.assert_array_equal(d, [[0.25, -0.375], [0.0, 0.375]])


def test_bce_and_ce_literal_values(backend):
    z = np.array([[0.0, 2.0]], np.float32)
    t = np.array([[1.0, 0.0]], np.float32)
    loss, d = call(backend, "bce_with_logits_loss", z, t, None)
    expected = (np.log(2) + np.log1p(np.exp(2.0))) / 2
    assert loss == pytest.approx(expected, rel=1e-6)
    sig2 = 1 / (1 + np.exp(-2.0))
    np.testing.assert_allclose(d, [[(0.5 - 1) / 2, sig2 / 2]], rtol=1e-6)
    pw = np.array([3.0, 3.0], np.float32)          # only positive targets are weighted
    loss_w, _ = call(backend, "bce_with_logits_loss", z, t, pw)
    assert loss_w == pytest.approx((3 * np.log(2) + np.log1p(np.exp(2.0))) / 2, rel=1e-6)
    logits = np.array([[0.0, 0.0, np.log(2.0)]], np.float32)  # softmax = 1/4, 1/4, 1/2
    loss, d = call(backend, "cross_entropy_loss", logits, np.array([2]), None, -100)
    assert loss == pytest.approx(np.log(2), rel=1e-6)
    np.testing.assert_allclose(d, [[0.25, 0.25, -0.5]], rtol=1e-6)


def test_cross_entropy_weighted_mean(backend):
    """PyTorch's weighted mean: sum w_y l / sum w_y."""
    logits = np.zeros((2, 2), np.float32)
    weight = np.array([1.0, 3.0], np.float32)
    loss, d = call(backend, "cross_entropy_loss", logits, np.array([0, 1]), weight, -100)
    assert loss == pytest.approx(np.log(2), rel=1e-6)
    np.testing.assert_allclose(d, [[-0.125, 0.125], [0.375, -0.375]], rtol=1e-6)


# ------------------------------------------------------------ invariants

def test_cross_entropy_shift_invariant(backend, rng):
    z = (rng.integers(-512, 512, (32, 10)) / 64).astype(np.float32)  # exact after +1e3
    labels = rng.integers(0, 10, 32)
    a, da = call(backend, "cross_entropy_loss", z, labels, None, -100)
    b, db = call(backend, "cross_entropy_loss", z + np.float32(1e3), labels, None, -100)
    assert a == pytest.approx(b, rel=1e-6)
    np.testing.assert_allclose(da, db, atol=1e-6)


def test_large_logits_finite(backend):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]], np.float32)
    loss, d = call(backend, "cross_entropy_loss", z, np.array([1, 1]), None, -100)
    assert loss == pytest.approx(1e4, rel=1e-6) and np.isfinite(d).all()
    for zz in (1e4, -1e4, 100.0, -100.0):
        for tt in (0.0, 1.0):
            z1, t1 = np.array([[zz]], np.float32), np.array([[tt]], np.float32)
            loss, d = call(backend, "bce_with_logits_loss", z1, t1, None)
            assert np.isfinite(loss) and np.isfinite(d).all()
            wrong = (zz > 0) != (tt > 0)
            assert loss == pytest.approx(abs(zz) if wrong else 0.0, abs=1e-30 if not wrong else 0)


def test_nan_propagates(backend):
    p = np.array([[np.nan, 1.0]], np.float32)
    t = np.zeros_like(p)
    for name, extra in [("mse_loss", ()), ("mae_loss", ()), ("huber_loss", (1.0,)),
                        ("bce_with_logits_loss", (None,))]:
        loss, d = call(backend, name, p, t, *extra, fill=0.0)
        assert np.isnan(loss) and np.isnan(d[0, 0]) and np.isfinite(d[0, 1]), name
    loss, _ = call(backend, "cross_entropy_loss", p, np.array([1]), None, -100)
    assert np.isnan(loss)


def test_edge_values(rng):
    vals = np.array([0, -0.0, 1e-30, -1e-30, 1e-40, -1e-40, 1, -1, 1e4, -1e4], np.float32)
    p = vals.reshape(2, 5)
    t = rng.permutation(vals).reshape(2, 5).astype(np.float32)
    for name, extra in [("mse_loss", ()), ("mae_loss", ()), ("huber_loss", (1.0,))]:
        compare(name, p, t, *extra)
    compare("bce_with_logits_loss", p, np.abs(np.sign(t)).astype(np.float32), None)
    compare("cross_entropy_loss", p, np.array([0, 4]), None, -100)


def test_dpred_none_same_loss(backend, rng):
    logits, labels = ce_data(rng, (20, 5))
    a, _ = call(backend, "cross_entropy_loss", logits, labels, None, -100)
    assert backend.cross_entropy_loss(None, logits, labels, None, -100) == a
    p, t = regression_data(rng, (6, 4))
    assert backend.huber_loss(None, p, t, 0.5) == call(backend, "huber_loss", p, t, 0.5)[0]


def test_all_ignored_gives_zero(backend, rng):
    logits, _ = ce_data(rng, (5, 4))
    loss, d = call(backend, "cross_entropy_loss", logits, np.full(5, -1), None, -1)
    assert loss == 0.0
    np.testing.assert_array_equal(d, 0)
    w0 = np.zeros(4, np.float32)                          # total weight 0
    loss, d = call(backend, "cross_entropy_loss", logits, np.arange(5) % 4, w0, -100)
    assert loss == 0.0
    np.testing.assert_array_equal(d, 0)


@pytest.mark.parametrize("bad", [10, 12, -1, -100])
def test_bad_label_raises_before_writing(backend, rng, bad):
    logits, labels = ce_data(rng, (6, 10))
    labels[3] = bad
    labels[5] = 99                                        # a later bad row: not reported
    dpred = np.full(logits.shape, 7.0, np.float32)
    with pytest.raises(IndexError, match=rf"target {bad} is out of bounds for 10 classes \(row 3\)"):
        backend.cross_entropy_loss(dpred, logits, labels, None, -7)
    np.testing.assert_array_equal(dpred, 7.0)


def test_huber_rejects_bad_delta(backend, rng):
    p, t = regression_data(rng, (2, 2))
    for delta in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError):
            backend.huber_loss(None, p, t, delta)


# --------------------------------------------------------------- threads

def test_threads_bitwise(rng):
    p, t = regression_data(rng, (20000, 50))
    z, tb = bce_data(rng, (20000, 50))
    logits, labels = ce_data(rng, (20000, 50), ignore=-100)
    weight = rng.uniform(0.1, 3, 50).astype(np.float32)
    cases = [("mse_loss", p, t), ("mae_loss", p, t), ("huber_loss", p, t, 0.5),
             ("bce_with_logits_loss", z, tb, weight),
             ("cross_entropy_loss", logits, labels, weight, -100)]
    old = core.get_num_threads()
    try:
        res = {}
        for nt in (1, 2):
            core.set_num_threads(nt)
            res[nt] = [call(core, c[0], *c[1:]) for c in cases]
    finally:
        core.set_num_threads(old)
    for (l1, d1), (l2, d2) in zip(res[1], res[2]):
        assert l1 == l2
        np.testing.assert_array_equal(d1, d2)
