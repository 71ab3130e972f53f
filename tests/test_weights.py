"""Sample weights and the split train step (csrc/losses.c fnn__*_loss_w,
csrc/model.c fnn_model_compute_gradients / fnn_model_apply_gradients): the
C losses with row weights and a denominator against the NumPy reference,
compute + apply equal to one train step bit for bit, and a weight of k
equal to k copies of the row."""
import numpy as np
import pytest

from fastnn import _core
from fastnn.reference import losses as ref

f32 = np.float32


def _case(name, rng, N=13, D=4):
    pred = rng.standard_normal((N, D)).astype(f32)
    if name == "cross_entropy":
        labels = rng.integers(0, D, N)
        labels[3] = -100
        return (pred, labels, rng.random(D).astype(f32) + 0.5, -100)
    t = rng.standard_normal((N, D)).astype(f32)
    if name == "huber":
        return (pred, t, 0.7)
    if name == "bce_with_logits":
        return (pred, (t > 0).astype(f32), rng.random(D).astype(f32) + 0.5)
    return (pred, t)


@pytest.mark.parametrize("name", ["mse", "mae", "huber", "bce_with_logits", "cross_entropy"])
@pytest.mark.parametrize("denom", [0.0, 20.0])
def test_weighted_losses_match_the_reference(name, denom):
    rng = np.random.default_rng(3)
    args = _case(name, rng)
    w = rng.random(13).astype(f32) * 2
    w[5] = 0.0
    d_c = np.empty_like(args[0])
    d_r = np.empty_like(args[0], dtype=np.float64)
    got = getattr(_core, f"{name}_loss")(d_c, *args, sample_weight=w, denom=denom)
    args64 = tuple(a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype == f32 else a
                   for a in args)
    want = getattr(ref, f"{name}_loss")(d_r, *args64, sample_weight=w.astype(np.float64),
                                        denom=denom)
    assert got == pytest.approx(want, rel=1e-6)
    np.testing.assert_allclose(d_c, d_r, rtol=1e-5, atol=1e-7)
    # weights of 1 and the default denominator are the plain mean, bit for bit
    d1 = np.empty_like(args[0])
    d0 = np.empty_like(args[0])
    l1 = getattr(_core, f"{name}_loss")(d1, *args, sample_weight=np.ones(13, f32))
    l0 = getattr(_core, f"{name}_loss")(d0, *args)
    assert l1 == l0 and np.array_equal(d1, d0)


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf])
def test_bad_sample_weights_raise(bad):
    pred, t = np.zeros((4, 2), f32), np.ones((4, 2), f32)
    w = np.ones(4, f32)
    w[2] = bad
    with pytest.raises(ValueError, match="sample weight at row 2"):
        _core.mse_loss(None, pred, t, sample_weight=w)
    with pytest.raises(ValueError, match="sample weight at row 2"):
        ref.mse_loss(None, pred, t, sample_weight=w)
    with pytest.raises(ValueError, match="sample_weight must have 4 elements"):
        _core.mse_loss(None, pred, t, sample_weight=np.ones(3, f32))
    with pytest.raises(ValueError, match="denom must be finite"):
        _core.mse_loss(None, pred, t, denom=np.nan)


def _model(loss="cross_entropy", opt="adam"):
    m = _core.Model((5,), [("linear", {"units": 7, "bias": 1}), ("tanh", {}),
                           ("linear", {"units": 3, "bias": 1})], 11)
    m.set_loss(loss)
    states = [np.zeros(m.params.size, f32) for _ in range(2)]
    m.set_optimizer(opt, {"lr": 0.05}, states)
    return m, states


def _data(rng, n=9):
    return rng.standard_normal((n, 5)).astype(f32), rng.integers(0, 3, n)


def test_compute_then_apply_equals_train_step_bitwise():
    rng = np.random.default_rng(0)
    a, _ = _model()
    b, _ = _model()
    for step in range(4):
        x, y = _data(rng)
        w = rng.random(9).astype(f32)
        la = a.train_step(x, y, None, step, step, sample_weight=w)
        p0 = b.params.copy()
        lb = b.compute_gradients(x, y, None, step, step, sample_weight=w)
        assert np.array_equal(b.params, p0)        # nothing but grads changed
        b.apply_gradients(step, step)
        assert la == lb
        assert np.array_equal(a.params, b.params) and np.array_equal(a.grads, b.grads)


def test_compute_gradients_needs_only_a_loss():
    m = _core.Model((5,), [("linear", {"units": 3, "bias": 1})], 1)
    x, y = _data(np.random.default_rng(1))
    with pytest.raises(ValueError, match="no loss"):
        m.compute_gradients(x, np.zeros((9, 3), f32), None, 0, 0)
    m.set_loss("cross_entropy")
    loss = m.compute_gradients(x, y, None, 0, 0)
    assert np.isfinite(loss) and np.abs(m.grads).sum() > 0
    with pytest.raises(ValueError, match="no optimizer"):
        m.apply_gradients(0, 0)


def test_integer_weights_equal_repeated_rows():
    rng = np.random.default_rng(2)
    x, y = _data(rng)
    k = np.array([1, 3, 0, 2, 1, 1, 4, 1, 2])
    a, _ = _model()
    la = a.compute_gradients(x, y, None, 0, 0, sample_weight=k.astype(f32))
    b, _ = _model()
    lb = b.compute_gradients(np.repeat(x, k, axis=0), np.repeat(y, k), None, 0, 0)
    assert la == pytest.approx(lb, rel=1e-6)
    np.testing.assert_allclose(a.grads, b.grads, rtol=1e-5, atol=1e-7)


def test_a_fixed_denominator_splits_a_batch_exactly():
    """Two halves with denom = the whole batch sum to the whole batch's gradient
    (what a data-parallel rank computes before the allreduce)."""
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((10, 5)).astype(f32), rng.standard_normal((10, 3)).astype(f32)
    whole, _ = _model("mse")
    lw = whole.compute_gradients(x, y, None, 0, 0)
    parts = 0.0
    g = np.zeros_like(whole.grads)
    for sl in (slice(0, 4), slice(4, 10)):
        m, _ = _model("mse")
        parts += m.compute_gradients(x[sl], y[sl], None, 0, 0, denom=10.0)
        g += m.grads
    assert parts == pytest.approx(lw, rel=1e-6)
    np.testing.assert_allclose(g, whole.grads, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("per_row", [False, True])
def test_epoch_with_weights_equals_weighted_steps(per_row):
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((23, 5)).astype(f32), rng.integers(0, 3, 23)
    w = rng.random(23).astype(f32)
    order = rng.permutation(23)
    a, _ = _model()
    out = a.train_epoch(X, y, order, 5, 0, 0, 1, 0.0, 0.0, 0, 0, sample_weight=w,
                        weights_per_row=per_row)
    b, _ = _model()
    total = 0.0
    for k, s in enumerate(range(0, 23, 5)):
        idx = order[s:s + 5]
        total += b.train_step(X[idx], y[idx], None, k, k, sample_weight=w[idx],
                              denom=float(len(idx)) if per_row else 0.0) * len(idx)
    assert out[2:4] == (23, 5)
    assert out[0] == total
    assert np.array_equal(a.params, b.params)


def test_epoch_rejects_bad_weights_by_data_set_row():
    a, _ = _model()
    X, y = _data(np.random.default_rng(6))
    w = np.ones(9, f32)
    w[7] = -2
    with pytest.raises(ValueError, match="sample weight at row 7 is -2"):
        a.train_epoch(X, y, None, 4, 0, 0, 1, 0.0, 0.0, 0, 0, sample_weight=w)
    with pytest.raises(ValueError, match="sample_weight must have shape \\(9,\\)"):
        a.train_epoch(X, y, None, 4, 0, 0, 1, 0.0, 0.0, 0, 0, sample_weight=w[:3])


@pytest.mark.parametrize("fused", [True, False])
def test_gradients_are_written_not_accumulated(fused, monkeypatch):
    """A step zeroes only the gradient runs of ops that accumulate (here the
    norm layers); each linear writes its dw and db, fused or not. Whatever
    the buffer held before, the gradients are those of a fresh model."""
    if not fused:
        monkeypatch.setenv("FASTNN_NO_FUSION", "1")
    nodes = [("linear", {"units": 6, "bias": 1}),
             ("batch_norm", {"units": 6, "bias": 1, "eps": 1e-5, "momentum": 0.1, "flags": 0}),
             ("relu", {}), ("linear", {"units": 4, "bias": 0}), ("relu", {}),
             ("linear", {"units": 5, "bias": 1}), ("tanh", {}),
             ("layer_norm", {"units": 5, "axis": 1, "bias": 1, "eps": 1e-5}),
             ("linear", {"units": 3, "bias": 1})]
    rng = np.random.default_rng(5)
    x, y = _data(rng)
    clean = _core.Model((5,), nodes, 3)
    dirty = _core.Model((5,), nodes, 3)
    for m in (clean, dirty):
        m.set_loss("cross_entropy")
    clean.compute_gradients(x, y, None, 0, 0)
    g0 = clean.grads.copy()
    assert np.all(g0 != 0.0)                       # every run is written
    for poison in (np.nan, 7.0):
        dirty.grads[:] = poison
        dirty.buffers[:] = clean.buffers           # same running statistics
        dirty.compute_gradients(x, y, None, 0, 0)
        assert np.array_equal(dirty.grads, g0)
    clean.compute_gradients(x, y, None, 0, 0)      # twice: still not a sum
    assert np.array_equal(clean.grads, g0)
