"""BatchNorm1d/2d and LayerNorm: C kernels (csrc/norm.c) against the NumPy twins
(fastnn/reference/norm.py), gradients against float64 finite differences,
buffers end to end (train/eval, save/load, pickle, state_dict, ONNX), PyTorch
parity when torch is importable."""
import pickle

import numpy as np
import pytest

import fastnn as fnn
from fastnn import _core as C
from fastnn import reference as R
from finite_diff import numeric_grad  # tests/finite_diff.py

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

BN_SHAPES = [(2, 3), (7, 5), (1, 4, 3), (3, 2, 5), (2, 3, 4, 5), (1, 2, 3, 3), (5, 2, 1, 1),
             (4, 33, 2), (3, 40)]


def _bn(mod, x, w, b, rm, rv, nb, training, momentum, eps=1e-5):
    y = np.empty_like(x)
    mod.batch_norm_forward(y, x, w, b, rm, rv, nb, training, momentum, eps)
    return y


def _bn_bw(mod, x, dy, w, rm, rv, training, eps=1e-5):
    Cc = x.shape[1]
    dx, dw, db = np.empty_like(x), np.zeros(Cc, x.dtype), np.zeros(Cc, x.dtype)
    mod.batch_norm_backward(dx, dw, db, dy, x, w, rm, rv, training, eps)
    return dx, dw, db


def _stats(Cc, dt=np.float32):
    return np.zeros(Cc, dt), np.ones(Cc, dt), np.zeros(1, dt)


@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batch_norm_c_matches_reference(shape, training, momentum):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 2 + 3).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    Cc = shape[1]
    w, b = rng.uniform(0.5, 1.5, Cc).astype(np.float32), rng.standard_normal(Cc).astype(np.float32)
    res = {}
    for name, mod in (("c", C), ("numpy", R)):
        rm, rv, nb = _stats(Cc)
        rm += 0.5
        ys = [_bn(mod, x, w, b, rm, rv, nb, training, momentum) for _ in range(3)]
        res[name] = ys + [rm, rv, nb] + list(_bn_bw(mod, x, dy, w, rm, rv, training))
    for a, r in zip(res["c"], res["numpy"]):
        np.testing.assert_allclose(a, r, rtol=2e-5, atol=2e-5)
    assert res["c"][5][0] == (3 if training else 0)


def _fd(f, x, dy):
    """d sum(dy * f(x)) / dx by central differences."""
    return numeric_grad(lambda: (dy * f(x)).sum(), x)


@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradients_finite_differences(shape, training):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape) + 1
    dy = rng.standard_normal(shape)
    Cc = shape[1]
    w, b = rng.uniform(0.5, 1.5, Cc), rng.standard_normal(Cc)
    rm, rv = rng.standard_normal(Cc), rng.uniform(0.5, 2, Cc)
    f = lambda z: _bn(R, z, w, b, rm, rv, None, training, 0.1) if training else \
        _bn(R, z, w, b, rm, rv, None, False, 0.1)
    fw = lambda ww: _bn(R, x, ww, b, rm, rv, None, training, 0.1)
    fb = lambda bb: _bn(R, x, w, bb, rm, rv, None, training, 0.1)
    num_x, num_w, num_b = _fd(f, x.copy(), dy), _fd(fw, w.copy(), dy), _fd(fb, b.copy(), dy)
    # running stats of the forward are not updated here (num_batches None, rm copies)
    rmc, rvc = rm.copy(), rv.copy()
    dxr, dwr, dbr = _bn_bw(R, x, dy, w, rmc, rvc, training)
    for a, n in ((dxr, num_x), (dwr, num_w), (dbr, num_b)):
        np.testing.assert_allclose(a, n, rtol=1e-5, atol=1e-6)
    f32 = lambda a: a.astype(np.float32)
    dxc, dwc, dbc = _bn_bw(C, f32(x), f32(dy), f32(w), f32(rm), f32(rv), training)
    for a, n in ((dxc, num_x), (dwc, num_w), (dbc, num_b)):
        np.testing.assert_allclose(a, n, rtol=2e-3, atol=2e-4)


def test_batch_norm_one_value_per_channel_raises():
    """Batch 1 with 1x1 (or (C,)) samples in training: PyTorch's error; eval is fine."""
    x = np.ones((1, 3, 1, 1), np.float32)
    for mod in (C, R):
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            _bn(mod, x, None, None, *_stats(3), True, 0.1)
        _bn(mod, x, None, None, *_stats(3), False, 0.1)
    m = fnn.Sequential(fnn.Linear(4, 3), fnn.BatchNorm1d(3), seed=0)
    opt = fnn.SGD(m.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        m.train_step(np.ones((1, 4), np.float32), np.zeros((1, 3), np.float32), "mse", opt)
    # 1x1 images with a batch of 2 train
    _bn(C, np.random.default_rng(0).standard_normal((2, 3, 1, 1)).astype(np.float32),
        None, None, *_stats(3), True, 0.1)


def test_batch_norm_same_bits_for_1_and_2_threads():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((16, 40, 9, 9)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    old, res = fnn.get_num_threads(), []
    try:
        for t in (1, 2):
            fnn.set_num_threads(t)
            rm, rv, nb = _stats(40)
            y = _bn(C, x, None, None, rm, rv, nb, True, 0.1)
            res.append([y, rm, rv] + list(_bn_bw(C, x, dy, None, rm, rv, True)))
    finally:
        fnn.set_num_threads(old)
    for a, b in zip(*res):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------- layer norm

LN_CASES = [((4, 7), 1), ((3, 2, 5), 1), ((3, 2, 5), 2), ((2, 3, 4, 2), 3), ((1, 1), 1),
            ((5, 130), 1)]


def _ln(mod, x2, w, b, eps=1e-5):
    y, st = np.empty_like(x2), np.empty((x2.shape[0], 2), x2.dtype)
    mod.layer_norm_forward(y, st, x2, w, b, eps)
    return y, st


@pytest.mark.parametrize("shape,k", LN_CASES)
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
def test_layer_norm_c_reference_and_gradients(shape, k, affine):
    rng = np.random.default_rng(3)
    D = int(np.prod(shape[len(shape) - k:]))
    x = rng.standard_normal(shape).reshape(-1, D) * 3 + 1
    dy = rng.standard_normal(x.shape)
    w = rng.standard_normal(D) if affine != "none" else None
    b = rng.standard_normal(D) if affine == "both" else None
    f32 = lambda a: None if a is None else a.astype(np.float32)
    yc, stc = _ln(C, f32(x), f32(w), f32(b))
    yr, str_ = _ln(R, x, w, b)
    np.testing.assert_allclose(yc, yr, rtol=1e-5, atol=1e-5)
    grads = {}
    for name, mod, conv in (("c", C, f32), ("numpy", R, lambda a: a)):
        st = stc if name == "c" else str_
        dx = np.empty_like(conv(x))
        dw = None if w is None else np.zeros(D, conv(x).dtype)
        db = None if b is None else np.zeros(D, conv(x).dtype)
        mod.layer_norm_backward(dx, dw, db, conv(dy), conv(x), conv(w), st)
        grads[name] = (dx, dw, db)
    num_x = _fd(lambda z: _ln(R, z, w, b)[0], x.copy(), dy)
    np.testing.assert_allclose(grads["numpy"][0], num_x, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads["c"][0], num_x, rtol=2e-3, atol=2e-4)
    if w is not None:
        num_w = _fd(lambda ww: _ln(R, x, ww, b)[0], w.copy(), dy)
        np.testing.assert_allclose(grads["numpy"][1], num_w, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(grads["c"][1], num_w, rtol=2e-3, atol=2e-4)
    if b is not None:
        np.testing.assert_allclose(grads["c"][2], dy.sum(0), rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ layers

def test_layer_arguments_and_errors():
    with pytest.raises(ValueError, match="num_features"):
        fnn.BatchNorm2d(0)
    with pytest.raises(ValueError, match="momentum"):
        fnn.BatchNorm1d(3, momentum=2)
    with pytest.raises(ValueError, match="eps"):
        fnn.LayerNorm(3, eps=0)
    with pytest.raises(ValueError, match=r"BatchNorm2d\(4\) expects per-sample input "
                                         r"\(num_features, H, W\), got \(3, 5, 5\)"):
        fnn.Sequential(fnn.BatchNorm2d(4), input_shape=(3, 5, 5))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(8\).*got \(16,\)"):
        fnn.Sequential(fnn.Linear(4, 16), fnn.BatchNorm1d(8))
    with pytest.raises(ValueError, match=r"normalized_shape \(4,\) does not match"):
        fnn.Sequential(fnn.LayerNorm(4), input_shape=(3, 5))
    with pytest.raises(ValueError, match="batch_norm: expected 4 channels"):
        C.Model((3, 2), [("batch_norm", {"units": 4, "bias": 1, "eps": 1e-5,
                                         "momentum": 0.1})])
    with pytest.raises(ValueError, match="layer_norm: normalized shape"):
        C.Model((3, 2), [("layer_norm", {"units": 4, "axis": 1, "eps": 1e-5})])


def _mlp(seed=0, **kw):
    return fnn.Sequential(fnn.Linear(10, 16), fnn.BatchNorm1d(16), fnn.ReLU(),
                          fnn.Dropout(0.1), fnn.Linear(16, 8), fnn.LayerNorm(8), fnn.Linear(8, 3),
                          seed=seed, **kw)


def _tab(n=150):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 10)).astype(np.float32) * 3 + 1
    return X, (X[:, 0] + X[:, 1] > 2).astype(np.int64) + (X[:, 2] > 1)


def test_bn_mlp_fit_validation_epoch_in_c_matches_step_by_step():
    """BatchNorm1d after Linear: fit with validation; the C epoch, the fused step and
    the layer-by-layer path give the same parameters AND running statistics, bitwise."""
    X, y = _tab()
    models = [_mlp() for _ in range(3)]
    models[2].fused = False
    for k, m in enumerate(models):
        cb = [fnn.TerminateOnNaN()] if k == 1 else None   # a batch callback: step by step
        h = m.fit(X, y, loss="cross_entropy", epochs=4, batch_size=32, verbose=0,
                  validation_split=0.2, callbacks=cb)
        assert h.history["loss"][-1] < h.history["loss"][0] and "val_accuracy" in h.history
    for m in models[1:]:
        np.testing.assert_array_equal(m.flat_params, models[0].flat_params)
        np.testing.assert_array_equal(m.flat_buffers, models[0].flat_buffers)
    bn = models[0].layers[1]
    assert bn.num_batches_tracked == 4 * 4   # 120 rows / 32: 4 steps per epoch
    assert not np.allclose(bn.running_mean, 0) and not np.allclose(bn.running_var, 1)


def test_train_eval_switch():
    X, y = _tab(64)
    m = _mlp()
    opt = fnn.Adam(m.parameters())
    m.train_step(X, y, "cross_entropy", opt)
    before = m.flat_buffers.copy()
    p_eval = m.predict(X)                      # eval mode: running statistics
    assert np.array_equal(m.flat_buffers, before)
    m.eval()
    np.testing.assert_allclose(m(X), p_eval, rtol=1e-5, atol=1e-6)
    m.train_step(X, y, "cross_entropy", opt)   # eval-mode training: buffers unchanged
    assert np.array_equal(m.flat_buffers, before)
    m.train()
    out_train = np.array(m(X))                 # training mode: batch statistics, updates
    assert not np.array_equal(m.flat_buffers, before)
    assert not np.allclose(out_train, m.predict(X))


def test_buffers_state_dict_save_load_pickle(tmp_path):
    X, y = _tab()
    m = fnn.Sequential(fnn.BatchNorm2d(2), fnn.Flatten(), fnn.Linear(18, 3),
                       input_shape=(2, 3, 3), seed=0)
    Xi = X[:, :9].repeat(2, axis=1).reshape(-1, 2, 3, 3)
    m.fit(Xi, y, loss="cross_entropy", epochs=2, batch_size=16, verbose=0)
    names = [n for n, _ in m.named_buffers()]
    assert names == ["0.running_mean", "0.running_var", "0.num_batches_tracked"]
    sd = m.state_dict()
    assert set(sd) >= set(names) and sd["0.num_batches_tracked"] == 20
    p = m.predict(Xi)
    m.save(tmp_path / "bn.fnn")
    for other in (fnn.load(tmp_path / "bn.fnn"), pickle.loads(pickle.dumps(m)),
                  C.Model.load(tmp_path / "bn.fnn")):
        if isinstance(other, C.Model):
            np.testing.assert_array_equal(other.buffers, m.flat_buffers)
        else:
            np.testing.assert_array_equal(other.flat_buffers, m.flat_buffers)
            np.testing.assert_array_equal(other.predict(Xi), p)
    fresh = fnn.Sequential(fnn.BatchNorm2d(2), fnn.Flatten(), fnn.Linear(18, 3),
                           input_shape=(2, 3, 3), seed=1)
    fresh.load_state_dict(sd)
    np.testing.assert_array_equal(fresh.predict(Xi), p)


def test_bn_variants_construct_and_train():
    X, y = _tab(64)
    for kw in ({"affine": False}, {"track_running_stats": False}, {"momentum": None},
               {"eps": 1e-3, "momentum": 0.5}):
        m = fnn.Sequential(fnn.Linear(10, 6), fnn.BatchNorm1d(6, **kw), fnn.Linear(6, 3),
                           seed=0)
        ref = fnn.Sequential(fnn.Linear(10, 6), fnn.BatchNorm1d(6, **kw), fnn.Linear(6, 3),
                             seed=0)
        ref.fused = False
        for mm in (m, ref):
            mm.fit(X, y, loss="cross_entropy", epochs=2, batch_size=16, verbose=0)
        np.testing.assert_array_equal(m.flat_params, ref.flat_params)
        np.testing.assert_array_equal(m.flat_buffers, ref.flat_buffers)
        loaded = pickle.loads(pickle.dumps(m))
        np.testing.assert_array_equal(loaded.predict(X), m.predict(X))


@pytest.mark.parametrize("make", [
    lambda: (fnn.Sequential(fnn.BatchNorm2d(3), fnn.MaxPool2d(2), fnn.Flatten(),
                            input_shape=(3, 4, 6), seed=0), (3, 4, 6)),
    lambda: (fnn.Sequential(fnn.Linear(5, 4), fnn.BatchNorm1d(4), seed=0), (5,)),
    lambda: (fnn.Sequential(fnn.LayerNorm((4, 6)), input_shape=(3, 4, 6), seed=0), (3, 4, 6)),
    lambda: (fnn.Sequential(fnn.LayerNorm(5, elementwise_affine=False), seed=0,
                            input_shape=(5,)), (5,)),
    lambda: (fnn.Sequential(fnn.BatchNorm1d(3, affine=False), input_shape=(3, 7), seed=0),
             (3, 7))])
def test_onnx_eval_graph(tmp_path, make):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    m, shape = make()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20,) + shape).astype(np.float32) * 2 + 1
    for layer in m.layers:          # non-trivial statistics and affine parameters
        for name, buf in layer.named_buffers():
            if name != "num_batches_tracked":
                buf[...] = rng.uniform(0.5, 1.5, buf.shape)
        for p in layer.parameters():
            p.data[...] = rng.standard_normal(p.shape)
    m.to_onnx(tmp_path / "m.onnx")
    got = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"input": X})[0]
    np.testing.assert_allclose(got.reshape(20, -1), m.predict(X), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ torch

@needs_torch
@pytest.mark.parametrize("seed", range(8))
def test_torch_parity_batch_norm_training(seed):
    """Random configurations: forward, dx, dweight, dbias, running statistics after
    several training steps (SGD), eval-mode output."""
    rng = np.random.default_rng(100 + seed)
    two_d = bool(seed % 2)
    Cc = int(rng.integers(1, 6))
    shape = (Cc, int(rng.integers(1, 5)), int(rng.integers(1, 5))) if two_d else \
        ((Cc,) if seed % 4 == 0 else (Cc, int(rng.integers(2, 6))))
    momentum = None if seed == 3 else float(rng.uniform(0.05, 0.5))
    N = int(rng.integers(2, 7))
    cls, tcls = (fnn.BatchNorm2d, torch.nn.BatchNorm2d) if two_d else \
        (fnn.BatchNorm1d, torch.nn.BatchNorm1d)
    layer, tl = cls(Cc, momentum=momentum), tcls(Cc, momentum=momentum)
    m = fnn.Sequential(layer, input_shape=shape, seed=0)
    opt, topt = fnn.SGD(m.parameters(), lr=0.1), torch.optim.SGD(tl.parameters(), lr=0.1)
    for step in range(5):
        x = (rng.standard_normal((N,) + shape) * 2 + 1).astype(np.float32)
        t = rng.standard_normal((N,) + shape).astype(np.float32)
        xt = torch.tensor(x, requires_grad=True)
        yt = tl(xt)
        tloss = ((yt - torch.tensor(t)) ** 2).mean()
        topt.zero_grad()
        tloss.backward()
        if step == 0:   # the layer alone, layer by layer: y, dx, dw, db
            layer2 = cls(Cc, momentum=momentum)
            y = layer2(x)
            np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-4, atol=1e-5)
            dy = (2 * (yt.detach().numpy() - t) / t.size).astype(np.float32)
            dx = layer2.backward(dy)
            np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(layer2.weight.grad, tl.weight.grad.numpy(), rtol=1e-4,
                                       atol=1e-5)
            np.testing.assert_allclose(layer2.bias.grad, tl.bias.grad.numpy(), rtol=1e-4,
                                       atol=1e-5)
        topt.step()
        loss = m.train_step(x.reshape(N, -1), t.reshape(N, -1), "mse", opt)
        assert abs(loss - tloss.item()) < 1e-4
    np.testing.assert_allclose(layer.running_mean, tl.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.running_var, tl.running_var.numpy(), rtol=1e-5, atol=1e-6)
    assert layer.num_batches_tracked == tl.num_batches_tracked.item() == 5
    np.testing.assert_allclose(layer.weight.data, tl.weight.detach().numpy(), rtol=1e-4,
                               atol=1e-5)
    tl.eval()
    x = rng.standard_normal((N,) + shape).astype(np.float32)
    np.testing.assert_allclose(m.predict(x).reshape(x.shape), tl(torch.tensor(x)).detach(),
                               rtol=1e-4, atol=1e-5)


@needs_torch
@pytest.mark.parametrize("seed", range(6))
def test_torch_parity_layer_norm(seed):
    rng = np.random.default_rng(200 + seed)
    shape = tuple(int(v) for v in rng.integers(1, 6, size=int(rng.integers(1, 4))))
    k = int(rng.integers(1, len(shape) + 1))
    ns = shape[len(shape) - k:]
    bias = bool(seed % 2)
    layer, tl = fnn.LayerNorm(ns, bias=bias), torch.nn.LayerNorm(ns, bias=bias)
    with torch.no_grad():
        tl.weight.uniform_(0.5, 1.5)
        if bias:
            tl.bias.uniform_(-1, 1)
    layer.weight.data[...] = tl.weight.detach().numpy()
    if bias:
        layer.bias.data[...] = tl.bias.detach().numpy()
    x = rng.standard_normal((3,) + shape).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    yt = tl(xt)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(layer(x), yt.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.backward(dy), xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.weight.grad, tl.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
    if bias:
        np.testing.assert_allclose(layer.bias.grad, tl.bias.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_registry_and_exports():
    from fastnn.nn import registry
    assert registry.layer_class("batch_norm", (3, 4, 4)) is fnn.BatchNorm2d
    assert registry.layer_class("batch_norm", (3,)) is fnn.BatchNorm1d
    assert registry.layer_class("layer_norm") is fnn.LayerNorm
    assert registry.is_builtin(fnn.BatchNorm1d(3)) and registry.is_builtin(fnn.BatchNorm2d(3))
    for name in ("BatchNorm1d", "BatchNorm2d", "LayerNorm"):
        assert name in fnn.__all__ and name in fnn.nn.__all__
