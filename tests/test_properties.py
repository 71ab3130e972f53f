"""Property-based tests (hypothesis, hypothesis.extra.numpy) of the kernels.

Random shapes (1 and odd sizes included), row strides / padded views, and
values; the oracle is the NumPy reference in float64:

* C == reference for GEMM, dense, every activation, every loss, every optimizer;
* losses >= 0 where they must be; softmax rows sum to 1; CE shift-invariant;
* reference gradients == central finite differences (float64);
* non-contiguous inputs through the public API give the results of their copy.

Examples per property: ``FASTNN_HYPOTHESIS_EXAMPLES`` (default 150), or the
profile ``FASTNN_HYPOTHESIS_PROFILE``: "ci" (default: 150, derandomized so a
failure reproduces on every run, with the reproduction blob printed) or
"nightly" (5,000, random: explores new examples each night; hypothesis prints
the falsifying example and ``@reproduce_failure`` blob). deadline=None:
timings on 2 shared cores are not a property.
"""
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastnn as fnn
from fastnn._backend import get_backend
from test_gradcheck import numeric_grad  # central differences, eps 1e-6 (float64)

C = get_backend("c")
R = get_backend("numpy")

_common = dict(deadline=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.filter_too_much])
settings.register_profile("ci", max_examples=int(os.environ.get(
    "FASTNN_HYPOTHESIS_EXAMPLES", "150")), derandomize=True, **_common)
settings.register_profile("nightly", max_examples=int(os.environ.get(
    "FASTNN_HYPOTHESIS_EXAMPLES", "5000")), derandomize=False, **_common)
PROFILE = os.environ.get("FASTNN_HYPOTHESIS_PROFILE", "ci")
prop = settings(settings.get_profile(PROFILE))   # applied per test: no global side effect

EPS32 = 2.0 ** -23
FLT_MIN = 2.0 ** -126
side = st.integers(1, 37)
f32 = st.floats(-8, 8, width=32, allow_subnormal=False)


def arr(shape, elements=f32):
    return hnp.arrays(np.float32, shape, elements=elements)


def pad_view(data, a, pads=(0, 1, 7)):
    """`a` as a view with padded rows (row stride > width) at a 1-float offset, or a."""
    p = data.draw(st.sampled_from(pads), label="row padding")
    if p == 0:
        return a
    big = np.full((a.shape[0], a.shape[1] + p + 1), np.nan, np.float32)
    v = big[:, 1:1 + a.shape[1]]
    v[...] = a
    return v


# ----------------------------------------------------------------------- GEMM
@prop
@given(data=st.data(), M=side, N=side, K=side, tA=st.booleans(), tB=st.booleans(),
       alpha=st.sampled_from([1.0, -1.0, 0.5, 0.0, 2.0]),
       beta=st.sampled_from([0.0, 1.0, -1.0, 0.5]))
def test_sgemm_matches_reference_within_bound(data, M, N, K, tA, tB, alpha, beta):
    A = pad_view(data, data.draw(arr((K, M) if tA else (M, K)), label="A"))
    B = pad_view(data, data.draw(arr((N, K) if tB else (K, N)), label="B"))
    C0 = data.draw(arr((M, N)), label="C0")
    if beta == 0:
        C0[...] = np.nan                      # beta == 0 must never read C
    out_big = np.full((M, N + 3), 7.0, np.float32)
    out = out_big[:, 1:1 + N]                 # padded C: the pad must stay untouched
    out[...] = C0
    C.sgemm(tA, tB, alpha, A, B, beta, out)
    a64, b64 = A.astype(np.float64), B.astype(np.float64)
    c64 = np.where(np.isnan(C0), 0, C0).astype(np.float64)
    want = c64.copy()
    R.sgemm(tA, tB, alpha, a64, b64, beta, want)
    opA, opB = (a64.T if tA else a64), (b64.T if tB else b64)
    bound = (3 * K + 1) * EPS32 * (abs(alpha) * (np.abs(opA) @ np.abs(opB))
                                   + abs(beta) * np.abs(c64))
    # csrc/gemm.c runs with FTZ/DAZ: subnormal inputs and products count as zero
    bound += 2 * FLT_MIN * (abs(alpha) * ((np.abs(opA) + 1) @ (np.abs(opB) + 1)) + abs(beta))
    assert np.all(np.abs(out - want) <= bound), np.max(np.abs(out - want) - bound)
    assert np.all(out_big[:, 0] == 7.0) and np.all(out_big[:, 1 + N:] == 7.0)


@prop
@given(data=st.data(), M=side, N=side, K=side)
def test_sgemm_transpose_identity_bitwise_on_small_integers(data, M, N, K):
    """A·B == (Bᵀ·Aᵀ)ᵀ exactly with small-integer data (every sum is exact)."""
    ints = st.integers(-4, 4).map(float)
    A = data.draw(hnp.arrays(np.float32, (M, K), elements=ints))
    B = data.draw(hnp.arrays(np.float32, (K, N), elements=ints))
    c1 = np.empty((M, N), np.float32)
    c2 = np.empty((N, M), np.float32)
    C.sgemm(False, False, 1.0, A, B, 0.0, c1)
    C.sgemm(True, True, 1.0, B, A, 0.0, c2)
    np.testing.assert_array_equal(c1, c2.T)
    np.testing.assert_array_equal(c1, A.astype(np.float64) @ B)


# ----------------------------------------------------------------------- dense
@prop
@given(data=st.data(), n=side, i=side, o=side, bias=st.booleans())
def test_dense_c_matches_reference(data, n, i, o, bias):
    x, w = data.draw(arr((n, i))), data.draw(arr((i, o)))
    b = data.draw(arr((o,))) if bias else None
    dy = data.draw(arr((n, o)))
    y = np.empty((n, o), np.float32)
    C.dense_forward(y, x, w, b)
    y64 = np.empty((n, o))
    R.dense_forward(y64, x.astype(float), w.astype(float), None if b is None else b.astype(float))
    scale = np.abs(x).astype(float) @ np.abs(w) + (0 if b is None else np.abs(b))
    assert np.all(np.abs(y - y64) <= (3 * i + 2) * EPS32 * scale + 1e-30)
    dx, dw = np.full((n, i), np.nan, np.float32), np.ones((i, o), np.float32)
    db = np.ones(o, np.float32) if bias else None
    C.dense_backward(dx, dw, db, dy, x, w)
    np.testing.assert_allclose(dx, dy.astype(float) @ w.T, rtol=1e-5,
                               atol=1e-5 * max(1.0, np.abs(dy).max() * np.abs(w).max() * o))
    np.testing.assert_allclose(dw, 1 + x.T.astype(float) @ dy, rtol=1e-5,
                               atol=1e-5 * max(1.0, np.abs(x).max() * np.abs(dy).max() * n))
    if bias:
        np.testing.assert_allclose(db, 1 + dy.astype(float).sum(0), rtol=1e-5,
                                   atol=1e-5 * max(1.0, np.abs(dy).max() * n))


# ----------------------------------------------------------------- activations
ACTS = ["relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softmax"]


def _act(be, name, which, *args):
    fn = getattr(be, f"{name}_{which}")
    return fn(*args, 0.1) if name == "leaky_relu" else fn(*args)


@prop
@given(data=st.data(), name=st.sampled_from(ACTS), n=side, d=side)
def test_activation_c_matches_reference(data, name, n, d):
    wide = st.floats(-30, 30, width=32, allow_subnormal=True)
    x = data.draw(arr((n, d), wide), label="x")
    dy = data.draw(arr((n, d)), label="dy")
    y = np.full_like(x, np.nan)                # NaN-filled outputs must not matter
    _act(C, name, "forward", y, x)
    x64 = x.astype(np.float64)
    y64 = np.empty_like(x64)
    _act(R, name, "forward", y64, x64)
    np.testing.assert_allclose(y, y64, rtol=2e-5, atol=1e-6)
    dx = np.full_like(x, np.nan)
    _act(C, name, "backward", dx, dy, x, y)
    dx64 = np.empty_like(x64)
    _act(R, name, "backward", dx64, dy.astype(np.float64), x64, y64)
    np.testing.assert_allclose(dx, dx64, rtol=2e-4, atol=1e-5 * max(1.0, np.abs(dy).max()))
    if name == "softmax":
        np.testing.assert_allclose(y.astype(np.float64).sum(1), 1.0, atol=1e-6 * d)


# ---------------------------------------------------------------------- losses
REG = ["mse_loss", "mae_loss", "huber_loss", "bce_with_logits_loss"]


def _loss(be, name, dpred, pred, target, extra):
    fn = getattr(be, name)
    if name == "huber_loss":
        return fn(dpred, pred, target, extra)
    if name == "bce_with_logits_loss":
        return fn(dpred, pred, target, extra)
    return fn(dpred, pred, target)


@prop
@given(data=st.data(), name=st.sampled_from(REG), n=side, d=side)
def test_regression_losses_c_matches_reference_and_nonnegative(data, name, n, d):
    pred = data.draw(arr((n, d), st.floats(-50, 50, width=32)), label="pred")
    if name == "bce_with_logits_loss":
        target = data.draw(arr((n, d), st.floats(0, 1, width=32)), label="target")
        extra = data.draw(st.none() | arr((d,), st.floats(0, 5, width=32)), label="pos_weight")
    else:
        target = data.draw(arr((n, d), st.floats(-50, 50, width=32)), label="target")
        extra = data.draw(st.floats(0.01, 10), label="delta") if name == "huber_loss" else None
    dpred = np.full_like(pred, np.nan)
    lc = _loss(C, name, dpred, pred, target, extra)
    d64 = np.empty(pred.shape)
    extra64 = extra.astype(float) if isinstance(extra, np.ndarray) else extra
    lr = _loss(R, name, d64, pred.astype(float), target.astype(float), extra64)
    assert lc >= 0 and lr >= -1e-12
    assert math.isclose(lc, lr, rel_tol=1e-5, abs_tol=1e-6), (lc, lr)
    scale = max(np.abs(d64).max(), 1.0 / pred.size)
    assert np.all(np.abs(dpred - d64) <= 1e-5 * scale + 1e-4 * np.abs(d64))


@prop
@given(data=st.data(), n=side, c=st.integers(1, 23), weighted=st.booleans(),
       shift=st.sampled_from([0.0, 1e3, -1e3]))
def test_cross_entropy_c_matches_reference(data, n, c, weighted, shift):
    logits = data.draw(arr((n, c), st.floats(-1e4, 1e4, width=32)), label="logits")
    labels = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    labels[data.draw(hnp.arrays(bool, (n,)))] = -100            # some ignored rows
    w = data.draw(arr((c,), st.floats(0, 3, width=32))) if weighted else None
    dpred = np.full_like(logits, np.nan)
    lc = C.cross_entropy_loss(dpred, logits, labels, w, -100)
    d64 = np.empty(logits.shape)
    lr = R.cross_entropy_loss(d64, logits.astype(float), labels,
                              None if w is None else w.astype(float), -100)
    assert math.isfinite(lc) and lc >= 0 and np.isfinite(dpred).all()
    assert math.isclose(lc, lr, rel_tol=1e-5, abs_tol=1e-4 * max(1.0, lr)), (lc, lr)
    np.testing.assert_allclose(dpred, d64, rtol=1e-4, atol=1e-6)
    if w is None and (labels != -100).any():
        np.testing.assert_allclose(dpred.astype(float).sum(1), 0, atol=1e-6)
    # shifting every logit of a row by a constant leaves the loss unchanged
    shifted = (logits.astype(np.float64) + shift).astype(np.float32)
    assume(np.all(shifted.astype(np.float64) - shift == logits))  # exact shift only
    ls = C.cross_entropy_loss(None, shifted, labels, w, -100)
    assert math.isclose(ls, lc, rel_tol=1e-5, abs_tol=1e-5)


# ------------------------------------------------------------------ optimizers
OPTS = {
    "sgd": lambda be, p, s, g, t, h: be.sgd_update(p, s[0], g, t, h["lr"], h["momentum"],
                                                   h["dampening"], h["wd"], h["nesterov"]),
    "adam": lambda be, p, s, g, t, h: be.adam_update(p, s[0], s[1], g, t, h["lr"], 0.9, 0.999,
                                                     1e-8, h["wd"], h["decoupled"]),
    "rmsprop": lambda be, p, s, g, t, h: be.rmsprop_update(p, s[0], s[1], g, t, h["lr"], 0.99,
                                                           1e-8, h["wd"], h["momentum"]),
    "adagrad": lambda be, p, s, g, t, h: be.adagrad_update(p, s[0], g, t, h["lr"], 0.01,
                                                           1e-10, h["wd"]),
}


@prop
@given(data=st.data(), name=st.sampled_from(sorted(OPTS)), P=st.integers(1, 300),
       steps=st.integers(1, 6), lr=st.sampled_from([0.0, 1e-3, 0.1]),
       momentum=st.sampled_from([0.0, 0.9]), wd=st.sampled_from([0.0, 0.01]),
       nesterov=st.booleans(), decoupled=st.booleans())
def test_optimizers_c_match_reference(data, name, P, steps, lr, momentum, wd, nesterov,
                                      decoupled):
    h = dict(lr=lr, momentum=momentum, dampening=0.0, wd=wd,
             nesterov=nesterov and momentum > 0, decoupled=decoupled)
    p32 = data.draw(arr((P,)), label="params")
    p64 = p32.astype(np.float64)
    s32 = [np.zeros(P, np.float32), np.zeros(P, np.float32)]
    s64 = [np.zeros(P), np.zeros(P)]
    before = p32.copy()
    for t in range(1, steps + 1):
        g = data.draw(arr((P,)), label=f"grads{t}")
        OPTS[name](C, p32, s32, g, t, h)
        OPTS[name](R, p64, s64, g.astype(np.float64), t, h)
    if lr == 0:
        np.testing.assert_array_equal(p32, before)              # bitwise unchanged
    # float32 vs float64 drift grows with the distance travelled: RMSprop/Adam move each
    # parameter by up to ~lr/sqrt(1 - alpha) = 10 lr per step, whatever the gradient scale,
    # so a parameter that ends near 0 carries the rounding of O(lr * steps) sums
    atol = 1e-6 + 4 * EPS32 * (np.abs(before) + 10 * lr * steps)
    assert np.all(np.abs(p32 - p64) <= atol + 1e-5 * np.abs(p64)), np.max(np.abs(p32 - p64))


# --------------------------------------------------------- finite differences
def _close(a, n):
    assert np.all(np.abs(a - n) <= 1e-5 + 1e-3 * np.abs(n)), np.max(np.abs(a - n))


f64 = st.floats(-3, 3)
small = st.integers(1, 5)


@prop
@given(data=st.data(), name=st.sampled_from(ACTS), n=small, d=small)
def test_activation_gradients_match_finite_differences(data, name, n, d):
    x = data.draw(hnp.arrays(np.float64, (n, d), elements=f64))
    if name in ("relu", "leaky_relu"):
        assume(np.all(np.abs(x) > 1e-3))                         # away from the kink
    dy = data.draw(hnp.arrays(np.float64, (n, d), elements=f64))
    y = np.empty_like(x)

    def objective():
        _act(R, name, "forward", y, x)
        return float((dy * y).sum())

    num = numeric_grad(objective, x)
    objective()
    dx = np.empty_like(x)
    _act(R, name, "backward", dx, dy, x, y)
    _close(dx, num)


@prop
@given(data=st.data(), name=st.sampled_from(REG + ["cross_entropy_loss"]), n=small, d=small)
def test_loss_gradients_match_finite_differences(data, name, n, d):
    pred = data.draw(hnp.arrays(np.float64, (n, d), elements=f64))
    extra = None
    if name == "cross_entropy_loss":
        target = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, d - 1)))
        extra = data.draw(st.none() | hnp.arrays(np.float64, (d,), elements=st.floats(0.1, 3)))
        fn = lambda dp: R.cross_entropy_loss(dp, pred, target, extra, -100)  # noqa: E731
    else:
        lo = 0 if name == "bce_with_logits_loss" else -3
        target = data.draw(hnp.arrays(np.float64, (n, d), elements=st.floats(lo, 1 if lo == 0
                                                                             else 3)))
        r = np.abs(pred - target)
        if name == "mae_loss":
            assume(np.all(r > 1e-3))
        if name == "huber_loss":
            extra = data.draw(st.floats(0.1, 2))
            assume(np.all(np.abs(r - extra) > 1e-3))
        if name == "bce_with_logits_loss":
            extra = data.draw(st.none() | hnp.arrays(np.float64, (d,), elements=st.floats(0, 3)))
        fn = lambda dp: _loss(R, name, dp, pred, target, extra)  # noqa: E731
    num = numeric_grad(lambda: fn(None), pred)
    dpred = np.empty_like(pred)
    fn(dpred)
    _close(dpred, num)


@prop
@given(data=st.data(), n=small, i=small, o=small)
def test_dense_gradients_match_finite_differences(data, n, i, o):
    x, w = (data.draw(hnp.arrays(np.float64, s, elements=f64)) for s in ((n, i), (i, o)))
    b, dy = data.draw(hnp.arrays(np.float64, (o,), elements=f64)), \
        data.draw(hnp.arrays(np.float64, (n, o), elements=f64))
    y = np.empty((n, o))

    def objective():
        R.dense_forward(y, x, w, b)
        return float((dy * y).sum())

    nx, nw, nb = numeric_grad(objective, x), numeric_grad(objective, w), numeric_grad(objective, b)
    dx, dw, db = np.empty_like(x), np.zeros_like(w), np.zeros_like(b)
    R.dense_backward(dx, dw, db, dy, x, w)
    _close(dx, nx)
    _close(dw, nw)
    _close(db, nb)


# ---------------------------------------------- public API: strides and dtypes
_MODEL = fnn.Sequential(fnn.Linear(7, 9), fnn.Tanh(), fnn.Linear(9, 3), seed=1)


@prop
@given(data=st.data(), n=st.integers(1, 40), step=st.sampled_from([1, 2, 3]),
       order=st.sampled_from(["C", "F"]), reverse=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_public_api_strided_inputs_equal_their_copy(data, n, step, order, reverse, dtype):
    base = data.draw(hnp.arrays(dtype, (n * step, 7 * step), elements=f32), label="base")
    X = np.asarray(base[::step, ::step], order=order) if order == "F" else base[::step, ::step]
    if reverse:
        X = X[::-1]
    want = _MODEL.predict(np.ascontiguousarray(X, dtype=np.float32))
    np.testing.assert_array_equal(_MODEL.predict(X), want)
    labels = np.arange(n) % 3
    ce = fnn.CrossEntropyLoss()
    assert ce(want[:, ::-1], labels) == ce(np.ascontiguousarray(want[:, ::-1]), labels)
    mse = fnn.MSELoss()
    t = base[:, :3 * step:step][::step]
    assert mse(want, t) == mse(want, np.ascontiguousarray(t, dtype=np.float32))


@prop
@given(data=st.data(), n=st.integers(1, 30), chunk=st.integers(1, 31))
def test_predict_batch_invariance(data, n, chunk):
    """K7: predicting in chunks equals predicting the whole batch (rtol 1e-6)."""
    X = data.draw(hnp.arrays(np.float32, (n, 7), elements=f32))
    np.testing.assert_allclose(_MODEL.predict(X, batch_size=chunk), _MODEL.predict(X),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["sgemm", "dense_forward", "relu_forward", "mse_loss"])
def test_bridge_rejects_strided_where_public_api_copies(name):
    """K6: the raw bridge raises on a non-contiguous array (the public API copies)."""
    a = np.ones((4, 8), np.float32)[:, ::2]
    out = np.zeros((4, 4), np.float32)
    calls = {"sgemm": lambda: C.sgemm(False, False, 1.0, a, np.ones((4, 4), np.float32), 0.0,
                                      out),
             "dense_forward": lambda: C.dense_forward(out, a, np.ones((4, 4), np.float32), None),
             "relu_forward": lambda: C.relu_forward(out, a),
             "mse_loss": lambda: C.mse_loss(None, a, out)}
    with pytest.raises(ValueError, match="contiguous"):
        calls[name]()
    assert not out.any()
