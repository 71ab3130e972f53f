"""Pooling and Flatten: C kernels (csrc/pool.c) against the NumPy twins
(fastnn/reference/pool.py), gradients against float64 finite differences,
PyTorch parity when torch is importable, the layers end to end."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import fastnn as fnn
from fastnn import _core as C
from fastnn import reference as R
from fastnn.reference.pool import pool_out_size
from finite_diff import numeric_grad  # tests/finite_diff.py

try:
    import torch
    import torch.nn.functional as F
except ImportError:     # parity tests skip
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


def _configs(seed, n):
    """Random pooling configurations: odd sizes, stride > kernel, padding up to k/2,
    ceil mode, batch 1, 1x1 images, non-square kernels and inputs."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        k = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        s = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
        p = (int(rng.integers(0, k[0] // 2 + 1)), int(rng.integers(0, k[1] // 2 + 1)))
        hw = (int(rng.integers(1, 12)), int(rng.integers(1, 12)))
        cm = bool(rng.integers(0, 2))
        if min(pool_out_size(hw[d], k[d], s[d], p[d], cm) for d in range(2)) < 1:
            continue
        out.append((int(rng.integers(1, 4)), int(rng.integers(1, 4)), hw, k, s, p, cm,
                    bool(rng.integers(0, 2))))
    return out


CONFIGS = _configs(0, 60) + [(1, 1, (1, 1), (1, 1), (1, 1), (0, 0), False, True),
                             (2, 3, (7, 9), (3, 2), (2, 3), (1, 1), True, False),
                             (1, 2, (5, 5), (2, 2), (3, 3), (0, 0), False, True)]


def _out(x, k, s, p, cm):
    return (x.shape[0], x.shape[1]) + tuple(pool_out_size(x.shape[2 + d], k[d], s[d], p[d], cm)
                                            for d in range(2))


def _run(mod, kind, x, k, s, p, cm, cip, dy=None):
    y = np.empty(_out(x, k, s, p, cm), x.dtype)
    args = (k, s, p, cm) + ((cip,) if kind == "avg" else ())
    getattr(mod, f"{kind}_pool2d_forward")(y, x, *args)
    if dy is None:
        return y
    dx = np.empty_like(x)
    getattr(mod, f"{kind}_pool2d_backward")(dx, dy, x, y, *args)
    return y, dx


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_c_matches_reference(cfg, kind):
    N, Ch, hw, k, s, p, cm, cip = cfg
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, Ch) + hw).astype(np.float32)
    dy = rng.standard_normal(_out(x, k, s, p, cm)).astype(np.float32)
    yc, dxc = _run(C, kind, x, k, s, p, cm, cip, dy)
    yr, dxr = _run(R, kind, x, k, s, p, cm, cip, dy)
    np.testing.assert_allclose(yc, yr, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dxc, dxr, rtol=1e-6, atol=1e-6)


def _fd_check(f_forward, x, dy, dx_analytic, tol):
    """Central differences of sum(dy * f(x)) in float64 against dx."""
    num = numeric_grad(lambda: (dy * f_forward(x)).sum(), x)
    np.testing.assert_allclose(dx_analytic, num, rtol=tol, atol=tol)


@pytest.mark.parametrize("cfg", CONFIGS[::3])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_gradients_finite_differences(cfg, kind):
    """The reference in float64 and the C kernel in float32, both against float64
    central differences of the reference forward (max pooling: distinct values, so
    the maximum is differentiable)."""
    N, Ch, hw, k, s, p, cm, cip = cfg
    rng = np.random.default_rng(2)
    x = rng.permutation(N * Ch * hw[0] * hw[1]).reshape((N, Ch) + hw) * 0.1 + \
        rng.uniform(-0.01, 0.01, (N, Ch) + hw)
    dy = rng.standard_normal(_out(x, k, s, p, cm))
    fwd = lambda z: _run(R, kind, z, k, s, p, cm, cip)
    _, dxr = _run(R, kind, x, k, s, p, cm, cip, dy)
    _fd_check(fwd, x, dy, dxr, 1e-6)
    _, dxc = _run(C, kind, x.astype(np.float32), k, s, p, cm, cip, dy.astype(np.float32))
    _fd_check(fwd, x, dy, dxc.astype(np.float64), 1e-4)


@pytest.mark.parametrize("out", [(1, 1), (2, 3), (3, 3), (5, 4), (1, 7)])
@pytest.mark.parametrize("hw", [(1, 1), (5, 7), (6, 6)])
def test_adaptive_c_reference_and_gradient(out, hw):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3) + hw)
    dy = rng.standard_normal((2, 3) + out)
    outs = {}
    for name, mod, dt in (("c", C, np.float32), ("numpy", R, np.float64)):
        y = np.empty((2, 3) + out, dt)
        mod.adaptive_avg_pool2d_forward(y, x.astype(dt))
        dx = np.empty(x.shape, dt)
        mod.adaptive_avg_pool2d_backward(dx, dy.astype(dt), x.astype(dt), y)
        outs[name] = (y, dx)
    np.testing.assert_allclose(outs["c"][0], outs["numpy"][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outs["c"][1], outs["numpy"][1], rtol=1e-5, atol=1e-6)

    def fwd(z):
        y = np.empty((2, 3) + out)
        R.adaptive_avg_pool2d_forward(y, z)
        return y
    _fd_check(fwd, x.copy(), dy, outs["numpy"][1], 1e-6)


def test_max_pool_ties_pick_the_first_maximum():
    """Equal values: the whole gradient of a window goes to its first element in
    row-major order (PyTorch's CPU rule), also where windows overlap."""
    x = np.ones((1, 1, 4, 4), np.float32)
    dy = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)
    for mod in (C, R):
        y = np.empty((1, 1, 3, 3), np.float32)
        mod.max_pool2d_forward(y, x, 2, 1, 0, False)
        dx = np.empty_like(x)
        mod.max_pool2d_backward(dx, dy, x, y, 2, 1, 0, False)
        want = np.zeros((4, 4), np.float32)
        want[:3, :3] = dy[0, 0]
        np.testing.assert_array_equal(dx[0, 0], want)


def test_max_pool_nan_propagates():
    x = np.zeros((1, 1, 2, 4), np.float32)
    x[0, 0, 1, 0] = np.nan
    for mod in (C, R):
        y = np.empty((1, 1, 1, 2), np.float32)
        mod.max_pool2d_forward(y, x, 2, 2, 0, False)
        assert np.isnan(y[0, 0, 0, 0]) and y[0, 0, 0, 1] == 0


@pytest.mark.parametrize("hw", [(2, 2), (3, 3), (4, 10), (5, 11), (10, 10), (28, 28),
                                (7, 129), (33, 31), (16, 130), (2, 258), (6, 16), (9, 16),
                                (6, 14), (7, 15), (4, 34), (2, 64), (8, 8), (16, 16)])
def test_max_pool_2x2_backward_matches_reference_exactly(hw):
    """The 2x2/2 kernels (csrc/pool.c: the portable one takes a plane's windows
    in chunks that run on across output rows; the AVX-512 one two output rows a
    vector when they are at most 8 windows wide, else 16 windows at a time with
    a masked tail, and whole planes as one run of rows when they tile exactly)
    against the reference bit for bit, on data full of ties and NaNs, with odd
    sizes (a last row / column outside every window, which must come out 0
    whatever dx held before). test_every_isa reruns it on each ISA."""
    rng = np.random.default_rng(hw[0] * 1000 + hw[1])
    x = rng.integers(-2, 3, (3, 2) + hw).astype(np.float32)   # many ties
    x[rng.random(x.shape) < 0.02] = np.nan
    oh, ow = hw[0] // 2, hw[1] // 2
    dy = rng.standard_normal((3, 2, oh, ow)).astype(np.float32)
    got = {}
    for name, mod in (("c", C), ("numpy", R)):
        y = np.empty((3, 2, oh, ow), np.float32)
        mod.max_pool2d_forward(y, x, 2, 2, 0, False)
        dx = np.full_like(x, 7.0)   # poisoned: every element must be written
        mod.max_pool2d_backward(dx, dy, x, y, 2, 2, 0, False)
        got[name] = (y, dx)
    np.testing.assert_array_equal(got["c"][0], got["numpy"][0])
    np.testing.assert_array_equal(got["c"][1], got["numpy"][1])
    assert (got["c"][1] != 7.0).all()
    # every window's gradient lands on exactly one of its four elements
    np.testing.assert_allclose(got["c"][1].sum(axis=(2, 3)), dy.sum(axis=(2, 3)),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("hw,pool", [((8, 8), (2, 2, 0)), ((7, 9), (2, 2, 0)),
                                     ((6, 20), (2, 2, 0)), ((9, 9), (3, 2, 1)),
                                     ((5, 6), (2, 1, 0))])
def test_fused_relu_maxpool_backward_same_bits(hw, pool):
    """The fused step does a ReLU -> MaxPool2d pair's backward in one pass (the pool's
    dx masked where the ReLU's output is > 0; csrc/model.c): the parameters after 3
    Adam steps equal the layer-by-layer path's bit for bit, on data with many ties and
    zeros (integer-valued inputs), for the AVX-512 2x2 rows (whole planes, and odd
    sizes plane by plane) and the general windows. A model that starts with ReLU ->
    MaxPool2d (nothing below the ReLU) is not fused and also matches."""
    k, st, pad = pool
    rng = np.random.default_rng(hw[0] * 100 + hw[1] + k)
    X = rng.integers(-2, 3, (6, 2) + hw).astype(np.float32)
    y = rng.integers(0, 3, 6)
    oh, ow = (pool_out_size(d, k, st, pad, False) for d in hw)

    def make(first_relu):
        head = [fnn.ReLU()] if first_relu else [fnn.Conv2d(2, 2, 3, padding=1), fnn.ReLU()]
        return fnn.Sequential(*head, fnn.MaxPool2d(k, st, pad), fnn.Flatten(),
                              fnn.Linear(2 * oh * ow, 3), input_shape=(2,) + hw, seed=4)

    for first_relu in (False, True):
        a, b = make(first_relu), make(first_relu)
        b.fused = False
        for m in (a, b):
            opt = fnn.Adam(m.parameters(), lr=0.05)
            for _ in range(3):
                m.train_step(X, y, fnn.CrossEntropyLoss(), opt)
        np.testing.assert_array_equal(a.flat_params, b.flat_params)
        assert not np.array_equal(a.flat_params, make(first_relu).flat_params)


@pytest.mark.skipif(os.environ.get("FASTNN_POOL_ISA_RUN") == "1",
                    reason="already inside a per-ISA run")
@pytest.mark.parametrize("isa", ["generic", "avx2"])
def test_every_isa(isa):
    """The 2x2/2 max pool has an AVX-512 path (taken where the SGEMM kernel is
    the AVX-512 one) and a portable one: the kernel tests again under
    FASTNN_ISA=isa, in a fresh process (the ISA is chosen once per process)."""
    env = dict(os.environ, FASTNN_ISA=isa, FASTNN_POOL_ISA_RUN="1")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                        os.path.abspath(__file__), "-k",
                        "matches_reference or ties or nan or same_bits or fused_relu"],
                       env=env, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert " passed" in r.stdout and " failed" not in r.stdout, r.stdout[-2000:]


def test_pool_kernels_same_bits_for_1_and_2_threads():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((8, 16, 17, 15)).astype(np.float32)
    dy = rng.standard_normal(_out(x, (3, 3), (2, 2), (1, 1), True)).astype(np.float32)
    old = fnn.get_num_threads()
    try:
        res = []
        for t in (1, 2):
            fnn.set_num_threads(t)
            res.append([_run(C, kind, x, (3, 3), (2, 2), (1, 1), True, False, dy)
                        for kind in ("max", "avg")])
    finally:
        fnn.set_num_threads(old)
    for a, b in zip(res[0], res[1]):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


@needs_torch
@pytest.mark.parametrize("cfg", CONFIGS)
def test_torch_parity(cfg):
    N, Ch, hw, k, s, p, cm, cip = cfg
    rng = np.random.default_rng(5)
    x = rng.standard_normal((N, Ch) + hw).astype(np.float32)
    dy = rng.standard_normal(_out(x, k, s, p, cm)).astype(np.float32)
    for kind in ("max", "avg"):
        xt = torch.tensor(x, requires_grad=True)
        if kind == "max":
            yt = F.max_pool2d(xt, k, s, p, ceil_mode=cm)
        else:
            yt = F.avg_pool2d(xt, k, s, p, ceil_mode=cm, count_include_pad=cip)
        yt.backward(torch.tensor(dy))
        y, dx = _run(C, kind, x, k, s, p, cm, cip, dy)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-5, atol=1e-6)


@needs_torch
@pytest.mark.parametrize("out", [1, (2, 3), (4, 5)])
def test_torch_parity_adaptive(out):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 2, 9, 7)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    yt = F.adaptive_avg_pool2d(xt, out)
    dy = rng.standard_normal(yt.shape).astype(np.float32)
    yt.backward(torch.tensor(dy))
    layer = fnn.AdaptiveAvgPool2d(out)
    y = layer(x)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.backward(dy), xt.grad.numpy(), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ layers

def test_layer_arguments_and_errors():
    assert fnn.MaxPool2d(3).stride == (3, 3)
    assert fnn.AvgPool2d((2, 3), stride=1).stride == (1, 1)
    with pytest.raises(NotImplementedError, match="dilation"):
        fnn.MaxPool2d(2, dilation=2)
    with pytest.raises(NotImplementedError, match="return_indices"):
        fnn.MaxPool2d(2, return_indices=True)
    with pytest.raises(ValueError, match="at most half"):
        fnn.MaxPool2d(2, padding=2)
    with pytest.raises(ValueError, match="kernel_size"):
        fnn.AvgPool2d(0)
    with pytest.raises(ValueError, match=r"MaxPool2d.*larger than the padded input \(3, 4, 4\)"):
        fnn.Sequential(fnn.MaxPool2d(5), input_shape=(3, 4, 4))
    with pytest.raises(ValueError, match=r"expects a \(C, H, W\) input per sample, got \(16,\)"):
        fnn.Sequential(fnn.Linear(8, 16), fnn.MaxPool2d(2))
    with pytest.raises(ValueError, match="Flatten"):
        fnn.Flatten(0)
    with pytest.raises(ValueError, match=r"expects 12 inputs"):
        fnn.Sequential(fnn.Flatten(), fnn.Linear(12, 2), input_shape=(2, 2, 2))


def test_c_describe_validates_too():
    with pytest.raises(ValueError, match="max_pool2d: kernel"):
        C.Model((1, 3, 3), [("max_pool2d", {"kernel": (4, 4), "stride": (1, 1)})])
    with pytest.raises(ValueError, match="padding 2 must be at most half"):
        C.Model((1, 5, 5), [("avg_pool2d", {"kernel": (3, 3), "stride": (1, 1),
                                            "padding": (2, 2)})])
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        C.Model((5,), [("max_pool2d", {"kernel": (1, 1), "stride": (1, 1)})])
    with pytest.raises(ValueError, match="start_dim"):
        C.Model((2, 3), [("flatten", {"axis": 3})])


def _cnn(seed=0, **kw):
    return fnn.Sequential(fnn.MaxPool2d(2, ceil_mode=True), fnn.ReLU(),
                          fnn.AvgPool2d(3, 2, 1, count_include_pad=False), fnn.Flatten(),
                          fnn.Linear(2 * 2 * 2, 3), input_shape=(2, 7, 7), seed=seed, **kw)


def _images(n=90, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2, 7, 7)).astype(np.float32)
    return X, (X[:, 0, :3].sum(axis=(1, 2)) > 0).astype(np.int64) + (X[:, 1].mean((1, 2)) > .2)


def test_flatten_linear_chain_end_to_end(tmp_path):
    """fit (epoch in C) == layer by layer bitwise; predict, evaluate, save/load,
    pickle, summary shapes, ONNX in onnxruntime."""
    X, y = _images()
    m = _cnn()
    h = m.fit(X, y, loss="cross_entropy", epochs=3, batch_size=16, verbose=0,
              validation_split=0.2)
    ref = _cnn()
    ref.fused = False
    ref.fit(X, y, loss="cross_entropy", epochs=3, batch_size=16, verbose=0,
            validation_split=0.2)
    np.testing.assert_array_equal(m.flat_params, ref.flat_params)
    assert len(h.history["val_loss"]) == 3
    p = m.predict(X)
    assert p.shape == (90, 3)
    np.testing.assert_array_equal(p, m.predict(X.reshape(90, -1)))
    np.testing.assert_allclose(p, ref.predict(X), rtol=1e-6, atol=1e-6)
    assert set(m.evaluate(X, y)) == {"loss", "accuracy"}
    m.save(tmp_path / "cnn.fnn")
    np.testing.assert_array_equal(fnn.load(tmp_path / "cnn.fnn").predict(X), p)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(m)).predict(X), p)
    text = m.summary(print_fn=None)
    assert "(N, 2, 4, 4)" in text and "(N, 2, 2, 2)" in text and "(N, 8)" in text
    # the numpy backend agrees
    mn = _cnn(backend="numpy")
    mn.flat_params[...] = m.flat_params
    np.testing.assert_allclose(mn.predict(X), p, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layer", [
    lambda: fnn.MaxPool2d(3, 2, 1, ceil_mode=True), lambda: fnn.MaxPool2d((2, 3)),
    lambda: fnn.AvgPool2d(3, 2, 1, ceil_mode=True), lambda: fnn.AvgPool2d(2, 1),
    lambda: fnn.AvgPool2d(3, 2, 1, count_include_pad=False),
    lambda: fnn.AdaptiveAvgPool2d(1), lambda: fnn.AdaptiveAvgPool2d((2, 3)),
    lambda: fnn.Flatten(), lambda: fnn.Flatten(2)])
def test_onnx_export(tmp_path, layer):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    m = fnn.Sequential(layer(), fnn.ReLU(), input_shape=(3, 8, 6), seed=0)
    X = np.random.default_rng(0).standard_normal((5, 3, 8, 6)).astype(np.float32)
    m.to_onnx(tmp_path / "m.onnx")
    got = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"input": X})[0]
    np.testing.assert_allclose(got.reshape(5, -1), m.predict(X), rtol=1e-5, atol=1e-6)


def test_registry_and_exports():
    from fastnn.nn import registry
    for cls in (fnn.MaxPool2d, fnn.AvgPool2d, fnn.AdaptiveAvgPool2d, fnn.Flatten):
        assert registry.layer_class(cls.op) is cls
        assert cls.__name__ in fnn.nn.__all__ and cls.__name__ in fnn.__all__
