"""Sparse (CSR) input of the linear layer and of the model (csrc/sparse.c).

The C kernels are checked against the float64 NumPy reference
(fastnn/reference/sparse.py) with the bound of tests/test_dense.py (a K-term
float32 sum is within (3K + 1) eps32 of the exact one, scaled by the sum of
|terms|; K is a row's entry count), against the dense kernels on the
densified matrix, and against float64 finite differences. The model entry
points (forward and compute_gradients/train_step with a CSR batch) are
checked against the same model run on the dense batch.
"""
import numpy as np
import pytest
import scipy.sparse as sp

import fastnn._core as core
import fastnn.reference as reference

EPS32 = 2.0 ** -23


def random_csr(rng, N, IN, density, duplicates=False, unsorted=False):
    """(indptr int64, indices int64, data float32) of a random (N, IN) CSR matrix;
    duplicates: some (i, j) appear twice; unsorted: each row's columns shuffled."""
    indptr, indices = [0], []
    for _ in range(N):
        k = rng.binomial(IN, density) if IN else 0
        cols = np.sort(rng.choice(IN, k, replace=False)) if k else np.zeros(0, np.int64)
        if duplicates and k:
            cols = np.concatenate([cols, cols[: max(1, k // 2)]])
        if unsorted:
            cols = rng.permutation(cols)
        indices.extend(cols.tolist())
        indptr.append(len(indices))
    indptr = np.array(indptr, np.int64)
    indices = np.array(indices, np.int64)
    data = rng.standard_normal(len(indices)).astype(np.float32)
    return indptr, indices, data


def dense_of(indptr, indices, data, IN):
    """The dense matrix, duplicates summed (scipy's toarray)."""
    return sp.csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, IN)).toarray()


def assert_within(actual, expected, k, scale):
    bound = (3 * k + 1) * EPS32 * scale
    err = np.abs(actual.astype(np.float64) - expected)
    assert np.all(err <= bound), f"max excess {np.max(err - bound)}"


# (N, IN, OUT, density): batch 1, empty rows, all-zero, wide and sparse, dense-ish
CASES = [(1, 5, 3, 0.6), (7, 4, 3, 0.0), (9, 30, 17, 0.05), (40, 300, 33, 0.02),
         (16, 8, 40, 0.9), (0, 5, 3, 0.5), (5, 0, 3, 0.5)]


def row_counts(indptr):
    return np.diff(indptr).max(initial=0)


@pytest.mark.parametrize("dup", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("N,IN,OUT,density", CASES)
def test_forward_matches_reference_and_dense(N, IN, OUT, density, bias, dup, rng, n_threads):
    ip, ix, v = random_csr(rng, N, IN, density, duplicates=dup, unsorted=dup)
    w = rng.standard_normal((IN, OUT)).astype(np.float32)
    b = rng.standard_normal(OUT).astype(np.float32) if bias else None
    y = np.full((N, OUT), np.nan, np.float32)          # overwritten, never read
    core.csr_dense_forward(y, ip, ix, v, w, b)
    y64 = np.full((N, OUT), np.nan)
    reference.csr_dense_forward(y64, ip, ix, v.astype(np.float64), w.astype(np.float64),
                                None if b is None else b.astype(np.float64))
    xd = dense_of(ip, ix, v.astype(np.float64), IN)
    scale = dense_of(ip, ix, np.abs(v.astype(np.float64)), IN) @ np.abs(w) \
        + (np.abs(b) if bias else 0)
    k = row_counts(ip) + 1
    assert_within(y, y64, k, scale)
    assert_within(y, xd @ w + (b if bias else 0), k, scale)
    yd = np.empty((N, OUT), np.float32)                 # the dense kernel, same data
    core.dense_forward(yd, np.ascontiguousarray(xd, np.float32), w, b)
    np.testing.assert_allclose(y, yd, rtol=1e-5, atol=1e-5 * (1 + np.abs(scale).max(initial=0)))


@pytest.mark.parametrize("dup", [False, True])
@pytest.mark.parametrize("N,IN,OUT,density", CASES)
def test_backward_matches_reference_and_dense(N, IN, OUT, density, dup, rng, n_threads):
    ip, ix, v = random_csr(rng, N, IN, density, duplicates=dup, unsorted=dup)
    dy = rng.standard_normal((N, OUT)).astype(np.float32)
    dw0 = rng.standard_normal((IN, OUT)).astype(np.float32)
    db0 = rng.standard_normal(OUT).astype(np.float32)
    dw, db = dw0.copy(), db0.copy()
    core.csr_dense_backward(dw, db, dy, ip, ix, v)
    dw64, db64 = dw0.astype(np.float64), db0.astype(np.float64)
    reference.csr_dense_backward(dw64, db64, dy.astype(np.float64), ip, ix,
                                 v.astype(np.float64))
    xabs = dense_of(ip, ix, np.abs(v.astype(np.float64)), IN)
    col_counts = np.bincount(ix, minlength=IN).max(initial=0)
    assert_within(dw, dw64, col_counts + 1, xabs.T @ np.abs(dy) + np.abs(dw0))
    assert_within(db, db64, N + 1, np.abs(dy).sum(axis=0) + np.abs(db0))
    xd = dense_of(ip, ix, v.astype(np.float64), IN)
    assert_within(dw, dw0 + xd.T @ dy, col_counts + 1, xabs.T @ np.abs(dy) + np.abs(dw0))
    dwd, dbd = dw0.copy(), db0.copy()                   # the dense kernel: same db bits
    core.dense_backward(None, dwd, dbd, dy, np.ascontiguousarray(xd, np.float32),
                        np.zeros((IN, OUT), np.float32))
    assert np.array_equal(db, dbd)


def test_bitwise_reproducible_across_thread_counts(rng):
    ip, ix, v = random_csr(rng, 300, 2000, 0.01, duplicates=True)
    w = rng.standard_normal((2000, 70)).astype(np.float32)
    b = rng.standard_normal(70).astype(np.float32)
    dy = rng.standard_normal((300, 70)).astype(np.float32)
    old = core.get_num_threads()
    outs = []
    try:
        for t in (1, 2, 3):
            core.set_num_threads(t)
            y = np.empty((300, 70), np.float32)
            core.csr_dense_forward(y, ip, ix, v, w, b)
            dw, db = np.ones((2000, 70), np.float32), np.ones(70, np.float32)
            core.csr_dense_backward(dw, db, dy, ip, ix, v)
            outs.append((y, dw, db))
    finally:
        core.set_num_threads(old)
    for y, dw, db in outs[1:]:
        assert np.array_equal(y, outs[0][0])
        assert np.array_equal(dw, outs[0][1])
        assert np.array_equal(db, outs[0][2])


def test_gradient_matches_finite_differences(rng):
    """L = sum(R * (x w + b)): the C dw, db against central differences of the
    float64 reference forward."""
    N, IN, OUT = 6, 9, 4
    ip, ix, v = random_csr(rng, N, IN, 0.4, duplicates=True)
    v64 = v.astype(np.float64)
    w = rng.standard_normal((IN, OUT))
    b = rng.standard_normal(OUT)
    R = rng.standard_normal((N, OUT))

    def loss(w_, b_):
        y = np.empty((N, OUT))
        reference.csr_dense_forward(y, ip, ix, v64, w_, b_)
        return float(np.sum(R * y))

    dw = np.zeros((IN, OUT), np.float32)
    db = np.zeros(OUT, np.float32)
    core.csr_dense_backward(dw, db, R.astype(np.float32), ip, ix, v)
    h = 1e-6
    num_w = np.zeros_like(w)
    for idx in np.ndindex(*w.shape):
        wp, wm = w.copy(), w.copy()
        wp[idx] += h
        wm[idx] -= h
        num_w[idx] = (loss(wp, b) - loss(wm, b)) / (2 * h)
    num_b = np.array([(loss(w, b + h * e) - loss(w, b - h * e)) / (2 * h) for e in np.eye(OUT)])
    np.testing.assert_allclose(dw, num_w, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, num_b, rtol=1e-4, atol=1e-4)


BAD = [
    (lambda ip, ix, v: (np.array([1, 2, 3], np.int64), ix[:2], v[:2]), "indptr\\[0\\] is 1"),
    (lambda ip, ix, v: (np.array([0, 2, 1], np.int64), ix[:1], v[:1]), "decreases at row 1"),
    (lambda ip, ix, v: (np.array([0, 1, 2], np.int64), ix[:3], v[:3]),
     "indptr\\[2\\] is 2, must equal the number of entries 3"),
    (lambda ip, ix, v: (np.array([0, 1, 2], np.int64), np.array([0, 4], np.int64), v[:2]),
     "column index 4 at entry 1 is out of range for 4 columns"),
    (lambda ip, ix, v: (np.array([0, 1, 2], np.int64), np.array([-1, 0], np.int64), v[:2]),
     "column index -1 at entry 0"),
]


@pytest.mark.parametrize("make,msg", BAD)
@pytest.mark.parametrize("backend", [core, reference], ids=["c", "numpy"])
def test_bad_csr_raises(make, msg, backend):
    ip, ix, v = make(None, np.zeros(3, np.int64), np.ones(3, np.float32))
    rows = len(ip) - 1
    w = np.ones((4, 2), np.float32)
    with pytest.raises(ValueError, match=msg):
        backend.csr_dense_forward(np.zeros((rows, 2), np.float32), ip, ix, v, w, None)
    with pytest.raises(ValueError, match=msg):
        backend.csr_dense_backward(np.zeros((4, 2), np.float32), None,
                                   np.zeros((rows, 2), np.float32), ip, ix, v)


def test_bridge_checks_dtypes_and_shapes():
    ip = np.array([0, 1], np.int64)
    ix = np.array([0], np.int64)
    v = np.ones(1, np.float32)
    w = np.ones((3, 2), np.float32)
    y = np.zeros((1, 2), np.float32)
    with pytest.raises(TypeError, match="indices: expected int64, got int32"):
        core.csr_dense_forward(y, ip, ix.astype(np.int32), v, w, None)
    with pytest.raises(TypeError, match="data: expected float32, got float64"):
        core.csr_dense_forward(y, ip, ix, v.astype(np.float64), w, None)
    with pytest.raises(ValueError, match="same length"):
        core.csr_dense_forward(y, ip, ix, np.ones(2, np.float32), w, None)
    with pytest.raises(ValueError, match="y must have shape \\(1, 2\\)"):
        core.csr_dense_forward(np.zeros((2, 2), np.float32), ip, ix, v, w, None)
    with pytest.raises(ValueError, match="dy must have shape \\(1, 2\\)"):
        core.csr_dense_backward(np.zeros((3, 2), np.float32), None,
                                np.zeros((1, 3), np.float32), ip, ix, v)


# ------------------------------------------------------------------ the model

def make_model(IN, loss="cross_entropy", hidden=16, out=5, act="relu", bias=True):
    # linear + relu/tanh/sigmoid is one fused node pair in the C plan; the
    # sparse product then takes the activation in place (csrc/model.c)
    m = core.Model((IN,), [("linear", {"units": hidden, "bias": bias}), (act, {}),
                           ("linear", {"units": out})], 3)
    m.set_loss(loss)
    return m


@pytest.mark.parametrize("act,bias", [("relu", True), ("tanh", True), ("sigmoid", False),
                                      ("leaky_relu", True)])
@pytest.mark.parametrize("N,density", [(1, 0.3), (33, 0.05), (20, 0.0)])
def test_model_forward_and_gradients_match_dense(N, density, act, bias, rng, n_threads):
    IN = 200
    ip, ix, v = random_csr(rng, N, IN, density, duplicates=True, unsorted=True)
    xd = np.ascontiguousarray(dense_of(ip, ix, v, IN), np.float32)
    labels = rng.integers(0, 5, N).astype(np.int64)
    m = make_model(IN, act=act, bias=bias)
    out_s = np.full((N, 5), np.nan, np.float32)
    out_d = np.empty((N, 5), np.float32)
    work = np.empty(m.workspace_size(N, False), np.float32)
    m.forward(out_s, (ip, ix, v), work)
    m.forward(out_d, xd, work)
    np.testing.assert_allclose(out_s, out_d, rtol=1e-5, atol=1e-5)
    sw = rng.uniform(0.5, 2, N).astype(np.float32)
    loss_s = m.compute_gradients((ip, ix, v), labels, None, 0, 0, sample_weight=sw)
    g_s = m.grads.copy()
    loss_d = m.compute_gradients(xd, labels, None, 0, 0, sample_weight=sw)
    np.testing.assert_allclose(loss_s, loss_d, rtol=1e-5)
    np.testing.assert_allclose(g_s, m.grads, rtol=1e-4, atol=1e-6)


def test_model_train_steps_match_dense(rng):
    IN, N = 150, 24
    ms, md = make_model(IN, "mse", out=2), make_model(IN, "mse", out=2)
    for m in (ms, md):
        P = m.params.size
        m.set_optimizer("adam", {"lr": 1e-2}, (np.zeros(P, np.float32), np.zeros(P, np.float32)))
    for step in range(5):
        ip, ix, v = random_csr(rng, N, IN, 0.05)
        xd = np.ascontiguousarray(dense_of(ip, ix, v, IN), np.float32)
        t = rng.standard_normal((N, 2)).astype(np.float32)
        ls = ms.train_step((ip, ix, v), t, None, step, step)
        ld = md.train_step(xd, t, None, step, step)
        np.testing.assert_allclose(ls, ld, rtol=1e-4)
    np.testing.assert_allclose(ms.params, md.params, rtol=1e-4, atol=1e-5)


def test_model_sparse_input_errors(rng):
    m = make_model(10)
    ip, ix, v = random_csr(rng, 4, 10, 0.3)
    labels = np.zeros(4, np.int64)
    with pytest.raises(ValueError, match="labels must have shape \\(4,\\)"):
        m.compute_gradients((ip, ix, v), labels[:3], None, 0, 0)
    bad = ix.copy()
    if bad.size:
        bad[-1] = 10
    else:
        ip, bad, v = np.array([0, 1, 1, 1, 1]), np.array([10]), np.ones(1, np.float32)
    with pytest.raises(ValueError, match="column index 10 .* out of range for 10 columns"):
        m.compute_gradients((ip, bad, v), labels, None, 0, 0)
    with pytest.raises(ValueError, match="tuple \\(indptr, indices, data\\)"):
        m.forward(np.zeros((4, 5), np.float32), (ip, ix), np.zeros(1000, np.float32))
    act_first = core.Model((10,), [("relu", {}), ("linear", {"units": 3})], 0)
    act_first.set_loss("mse")
    with pytest.raises(ValueError, match="first node is linear, node 0 is relu"):
        act_first.forward(np.zeros((4, 3), np.float32), (ip, ix, v),
                          np.zeros(act_first.workspace_size(4, False), np.float32))
