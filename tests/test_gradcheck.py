"""Gradient checks against central finite differences in float64.

1. The reference backward in float64 against central finite differences
   (eps 1e-6): max relative error < 1e-6, with inputs kept >= 1e-3 away from
   kinks (ReLU at 0, MAE at r = 0, Huber at |r| = delta).
2. The C backward in float32 against the reference backward in float64.
"""
import numpy as np
import pytest

import fastnn._core as core
import fastnn.reference as reference

from finite_diff import EPS, numeric_grad  # noqa: F401  (tests/finite_diff.py)


def rel_error(analytic, numeric):
    """max |a - n| / max |n|: relative to the gradient's scale."""
    return np.max(np.abs(analytic - numeric)) / max(np.max(np.abs(numeric)), 1e-12)


def away_from(x, kinks, gap=1e-3):
    """Push entries of x at least `gap` away from each kink."""
    for k in kinks:
        close = np.abs(x - k) < gap
        x[close] = k + np.where(x[close] >= k, gap, -gap) * 2
    return x


# -------------------------------------------------------------- activations

ACTS = [("relu", ()), ("leaky_relu", (0.1,)), ("sigmoid", ()), ("tanh", ()),
        ("gelu", ()), ("softmax", ())]


def act_data(rng, name, shape=(5, 7)):
    x = rng.standard_normal(shape) * 2
    return away_from(x, [0.0]) if name in ("relu", "leaky_relu") else x


@pytest.mark.parametrize("name,args", ACTS, ids=[a[0] for a in ACTS])
def test_activation_reference_vs_finite_differences(name, args, rng):
    x = act_data(rng, name)
    dy = rng.standard_normal(x.shape)
    fwd, bwd = getattr(reference, name + "_forward"), getattr(reference, name + "_backward")

    def loss():                       # L = sum(dy * f(x)), so dL/dx = backward(dy)
        y = np.empty_like(x)
        fwd(y, x, *args)
        return np.sum(dy * y)

    y = np.empty_like(x)
    fwd(y, x, *args)
    dx = np.empty_like(x)
    bwd(dx, dy, x, y, *args)
    assert rel_error(dx, numeric_grad(loss, x)) < 1e-6


@pytest.mark.parametrize("name,args", ACTS, ids=[a[0] for a in ACTS])
def test_activation_c_vs_reference(name, args, rng):
    x = act_data(rng, name, (64, 33))
    dy = rng.standard_normal(x.shape)
    x32, dy32 = x.astype(np.float32), dy.astype(np.float32)
    grads = []
    for backend, xx, dd in ((core, x32, dy32), (reference, x32.astype(np.float64), dy32.astype(np.float64))):
        y = np.empty_like(xx)
        getattr(backend, name + "_forward")(y, xx, *args)
        dx = np.empty_like(xx)
        getattr(backend, name + "_backward")(dx, dd, xx, y, *args)
        grads.append(dx)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------- losses

def loss_cases(rng):
    """(id, function name, pred, target, extra args) in float64."""
    N, D, C = 6, 4, 5
    p = rng.standard_normal((N, D))
    t = rng.standard_normal((N, D))
    r = away_from(p - t, [0.0])
    t_mae = p - r
    r_h = away_from(p - t, [-0.5, 0.5])
    t_h = p - r_h
    z = rng.standard_normal((N, D)) * 3
    tb = rng.uniform(0, 1, (N, D))
    pw = rng.uniform(0.3, 4, D)
    logits = rng.standard_normal((N, C)) * 2
    labels = rng.integers(0, C, N)
    labels_ign = labels.copy()
    labels_ign[1] = -100
    w = rng.uniform(0.2, 3, C)
    return [
        ("mse", "mse_loss", p, t, ()),
        ("mae", "mae_loss", p, t_mae, ()),
        ("huber_both_regimes", "huber_loss", p, t_h, (0.5,)),
        ("huber_quadratic", "huber_loss", p * 0.1, t * 0.1, (10.0,)),
        ("huber_linear", "huber_loss", p * 10, t * 10, (1e-2,)),
        ("bce", "bce_with_logits_loss", z, tb, (None,)),
        ("bce_pos_weight", "bce_with_logits_loss", z, tb, (pw,)),
        ("ce", "cross_entropy_loss", logits, labels, (None, -100)),
        ("ce_weight", "cross_entropy_loss", logits, labels, (w, -100)),
        ("ce_weight_ignore", "cross_entropy_loss", logits, labels_ign, (w, -100)),
    ]


CASE_IDS = [c[0] for c in loss_cases(np.random.default_rng(0))]


@pytest.mark.parametrize("case", range(len(CASE_IDS)), ids=CASE_IDS)
def test_loss_reference_vs_finite_differences(case, rng):
    _, name, pred, target, extra = loss_cases(rng)[case]
    fn = getattr(reference, name)
    dpred = np.empty_like(pred)
    fn(dpred, pred, target, *extra)
    numeric = numeric_grad(lambda: fn(None, pred, target, *extra), pred)
    assert rel_error(dpred, numeric) < 1e-6


@pytest.mark.parametrize("case", range(len(CASE_IDS)), ids=CASE_IDS)
def test_loss_c_vs_reference(case, rng):
    _, name, pred, target, extra = loss_cases(rng)[case]
    p32 = pred.astype(np.float32)
    t32 = target.astype(np.float32) if target.dtype == np.float64 else target
    e32 = [a.astype(np.float32) if isinstance(a, np.ndarray) else a for a in extra]
    # scalars as the bridge passes them (C float), e.g. Huber's delta
    e64 = [a.astype(np.float64) if isinstance(a, np.ndarray) else
           float(np.float32(a)) if isinstance(a, float) else a for a in e32]
    d32, d64 = np.empty_like(p32), np.empty_like(pred)
    l32 = getattr(core, name)(d32, p32, t32, *e32)
    t64 = t32.astype(np.float64) if t32.dtype == np.float32 else t32
    l64 = getattr(reference, name)(d64, p32.astype(np.float64), t64, *e64)
    assert l32 == pytest.approx(l64, rel=1e-9)
    np.testing.assert_allclose(d32, d64, rtol=1e-6, atol=1e-6 * np.abs(d64).max())


# -------------------------------------------------------------------- dense

@pytest.mark.parametrize("bias", [True, False])
def test_dense_reference_vs_finite_differences(bias, rng):
    N, IN, OUT = 4, 5, 3
    x, w = rng.standard_normal((N, IN)), rng.standard_normal((IN, OUT))
    b = rng.standard_normal(OUT) if bias else None
    dy = rng.standard_normal((N, OUT))

    def loss():
        y = np.empty((N, OUT))
        reference.dense_forward(y, x, w, b)
        return np.sum(dy * y)

    dx, dw, db = np.empty_like(x), np.zeros_like(w), np.zeros(OUT)
    reference.dense_backward(dx, dw, db if bias else None, dy, x, w)
    assert rel_error(dx, numeric_grad(loss, x)) < 1e-6
    assert rel_error(dw, numeric_grad(loss, w)) < 1e-6
    if bias:
        assert rel_error(db, numeric_grad(loss, b)) < 1e-6


def test_dense_c_vs_reference(rng):
    N, IN, OUT = 32, 48, 16
    x = rng.standard_normal((N, IN)).astype(np.float32)
    w = rng.standard_normal((IN, OUT)).astype(np.float32)
    dy = rng.standard_normal((N, OUT)).astype(np.float32)
    out = []
    for backend, dt in ((core, np.float32), (reference, np.float64)):
        dx, dw, db = np.empty((N, IN), dt), np.zeros((IN, OUT), dt), np.zeros(OUT, dt)
        backend.dense_backward(dx, dw, db, dy.astype(dt), x.astype(dt), w.astype(dt))
        out.append((dx, dw, db))
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.abs(b).max())
