"""The fused C step (csrc/model.c fnn_model_train_step, Sequential._train_step): one C call per
training step and per prediction batch, bitwise equal to the layer-by-layer
path, close to the NumPy reference, and allocation-free once warm."""
import os
import tracemalloc

import numpy as np
import pytest

import fastnn as fnn
from fastnn import _core
from fastnn.datasets import make_moons

ACTS = [fnn.ReLU, fnn.Tanh, fnn.Sigmoid, fnn.GELU, lambda: fnn.LeakyReLU(0.1)]


def _net(act, dropout=0.0, backend="c", sizes=(5, 16, 12, 3), seed=3):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(fnn.Linear(sizes[i], sizes[i + 1], bias=i != 1))
        if i < len(sizes) - 2:
            layers.append(act())
            if dropout:
                layers.append(fnn.Dropout(dropout))
    return fnn.Sequential(*layers, seed=seed, backend=backend)


def _data(loss, n=40, d_in=5, d_out=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d_in)).astype(np.float32)
    if isinstance(loss, fnn.CrossEntropyLoss):
        y = rng.integers(0, d_out, n)
    elif isinstance(loss, fnn.BCEWithLogitsLoss):
        y = (rng.random((n, d_out)) > 0.5).astype(np.float32)
    else:
        y = rng.standard_normal((n, d_out)).astype(np.float32)
    return X, y


LOSSES = [fnn.MSELoss, fnn.L1Loss, lambda: fnn.HuberLoss(delta=0.5),
          lambda: fnn.BCEWithLogitsLoss(pos_weight=[1.0, 2.0, 0.5]),
          lambda: fnn.CrossEntropyLoss(weight=[1.0, 3.0, 0.5]), fnn.CrossEntropyLoss]
OPTIMS = [lambda p: fnn.SGD(p, lr=0.05),
          lambda p: fnn.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
          lambda p: fnn.SGD(p, lr=0.05, momentum=0.5, dampening=0.1),
          lambda p: fnn.Adam(p, lr=1e-2, weight_decay=1e-3),
          lambda p: fnn.AdamW(p, lr=1e-2),
          lambda p: fnn.RMSprop(p, lr=1e-3, momentum=0.5),
          lambda p: fnn.Adagrad(p, lr=1e-2, lr_decay=1e-3)]


def _train(model, loss, opt, X, y, steps=6, batch=16):
    losses = []
    for _ in range(steps):
        for start in range(0, len(X), batch):  # includes a short last batch
            losses.append(model.train_step(X[start:start + batch], y[start:start + batch],
                                           loss, opt))
    return losses


def _pair(act, loss_f, opt_f, dropout=0.0):
    fused, plain = _net(act, dropout), _net(act, dropout)
    plain.fused = False
    assert fused._get_plan() is not None
    return fused, plain, loss_f(), loss_f(), opt_f(fused.parameters()), opt_f(plain.parameters())


@pytest.mark.parametrize("n_threads", [1, 2], indirect=True)
@pytest.mark.parametrize("loss_f", LOSSES)
@pytest.mark.parametrize("opt_f", OPTIMS)
def test_fused_step_bitwise_equals_layer_by_layer(loss_f, opt_f, n_threads):
    fused, plain, lf, lp, of, op = _pair(fnn.Tanh, loss_f, opt_f, dropout=0.25)
    X, y = _data(lf)
    a = _train(fused, lf, of, X, y)
    b = _train(plain, lp, op, X, y)
    assert a == b
    np.testing.assert_array_equal(fused.flat_params, plain.flat_params)
    np.testing.assert_array_equal(fused.flat_grads, plain.flat_grads)
    for sa, sb in zip(of.state[0].values(), op.state[0].values()):
        np.testing.assert_array_equal(sa, sb)
    assert of.step_count == op.step_count == 6 * 3
    assert fused._counter == plain._counter


@pytest.mark.parametrize("act", ACTS + [fnn.Softmax])
def test_fused_step_every_activation(act):
    fused, plain, lf, lp, of, op = _pair(act, fnn.MSELoss, lambda p: fnn.Adam(p, lr=1e-2))
    X, y = _data(lf)
    assert _train(fused, lf, of, X, y) == _train(plain, lp, op, X, y)
    np.testing.assert_array_equal(fused.flat_params, plain.flat_params)


@pytest.mark.parametrize("act", ACTS)
def test_fused_forward_equals_layer_by_layer(act, rng):
    model = _net(act, dropout=0.5)
    X = rng.standard_normal((77, 5)).astype(np.float32)
    fused = model.predict(X, batch_size=32)
    model.fused = False
    plain = model.predict(X, batch_size=32)
    np.testing.assert_array_equal(fused, plain)


@pytest.mark.parametrize("n_threads", [1, 2], indirect=True)
@pytest.mark.parametrize("act", [fnn.ReLU, fnn.Tanh, fnn.Sigmoid])
def test_fused_epilogue_on_packed_shapes(act, n_threads):
    """A linear layer and its activation run as one GEMM with the bias and the
    activation in its write-out (csrc/dense.c, csrc/model.c). Wide layers take the
    packed GEMM path with K split into cache blocks: still the bits of separate passes."""
    sizes = (700, 300, 130, 3)
    fused = _net(act, sizes=sizes)
    plain = _net(act, sizes=sizes)
    plain.fused = False
    X, y = _data(fnn.CrossEntropyLoss(), n=48, d_in=700)
    a = _train(fused, fnn.CrossEntropyLoss(), fnn.Adam(fused.parameters(), lr=1e-3), X, y,
               steps=2)
    b = _train(plain, fnn.CrossEntropyLoss(), fnn.Adam(plain.parameters(), lr=1e-3), X, y,
               steps=2)
    assert a == b
    np.testing.assert_array_equal(fused.flat_params, plain.flat_params)
    np.testing.assert_array_equal(fused.predict(X), plain.predict(X))


def test_fusion_can_be_switched_off_with_the_same_bits(tmp_path):
    """FASTNN_NO_FUSION=1 runs the unfused plan of the C model (for benchmarks):
    the same parameters after training, bit for bit."""
    import subprocess
    import sys
    script = (
        "import numpy as np, fastnn as fnn\n"
        "m = fnn.Sequential(fnn.Linear(20, 64), fnn.Tanh(), fnn.Linear(64, 32), fnn.ReLU(),\n"
        "                   fnn.Linear(32, 1), fnn.Sigmoid(), seed=1)\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.standard_normal((200, 20)).astype(np.float32)\n"
        "y = (X[:, :1] > 0).astype(np.float32)\n"
        "m.fit(X, y, loss='mse', optimizer='adam', epochs=3, batch_size=32, verbose=0)\n"
        f"np.save({str(tmp_path)!r} + '/p' + __import__('os').environ.get('TAG', ''), "
        "m.flat_params)\n")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, "-c", script], check=True, env=dict(env, TAG="f"))
    subprocess.run([sys.executable, "-c", script], check=True,
                   env=dict(env, TAG="u", FASTNN_NO_FUSION="1"))
    np.testing.assert_array_equal(np.load(tmp_path / "pf.npy"), np.load(tmp_path / "pu.npy"))


def test_fused_training_matches_numpy_reference():
    """C (fused) vs the NumPy reference on the same model: float32 round-off only."""
    c_model = _net(fnn.ReLU, dropout=0.2)
    np_model = _net(fnn.ReLU, dropout=0.2, backend="numpy")
    np.testing.assert_array_equal(c_model.flat_params, np_model.flat_params)
    lc, ln = fnn.CrossEntropyLoss(), fnn.CrossEntropyLoss()
    X, y = _data(lc)
    a = _train(c_model, lc, fnn.Adam(c_model.parameters(), lr=1e-3), X, y)
    b = _train(np_model, ln, fnn.Adam(np_model.parameters(), lr=1e-3), X, y)
    np.testing.assert_allclose(a, b, rtol=1e-5)
    # documented tolerance: 18 Adam steps (each moves a weight by <= lr) stay within 1e-5
    np.testing.assert_allclose(c_model.flat_params, np_model.flat_params, rtol=0, atol=1e-5)


def test_fit_uses_the_fused_step(monkeypatch):
    """fit hands each epoch to C (fnn_model_train_epoch) and no step to Python;
    with a callback that needs every batch it makes one fused step per batch."""
    X, y = make_moons(200, noise=0.1, seed=0)
    for batch_cb in (False, True):
        model = fnn.Sequential(fnn.Linear(2, 16), fnn.ReLU(), fnn.Linear(16, 2), seed=0)
        calls = []
        real = model._bound_step
        monkeypatch.setattr(model, "_bound_step", lambda *a: _Spy(real(*a), calls))
        cbs = [fnn.TerminateOnNaN()] if batch_cb else []
        model.fit(X, y, loss="cross_entropy", optimizer=fnn.Adam(model.parameters(), 1e-2),
                  epochs=2, batch_size=64, verbose=0, callbacks=cbs)
        if batch_cb:
            assert calls.count("train_step") == 2 * 4   # 200 samples: 3 full batches + 1 short
            assert calls.count("train_epoch") == 0
        else:
            assert calls.count("train_step") == 0
            assert 2 <= calls.count("train_epoch") <= 2 * 4
        assert model._counter == 2 * 4


class _Spy:
    """Wraps an object and records which of its attributes were used."""
    def __init__(self, obj, calls):
        self._obj, self._calls = obj, calls

    def __getattr__(self, name):
        self._calls.append(name)
        return getattr(self._obj, name)


def test_step_is_rebound_when_a_hyperparameter_changes():
    model = _net(fnn.ReLU)
    loss, opt = fnn.MSELoss(), fnn.SGD(model.parameters(), lr=0.1)
    X, y = _data(loss, n=16)
    model.train_step(X, y, loss, opt)
    first = model._bound       # (loss, optimizer, hyperparameters, loss spec)
    model.train_step(X, y, loss, opt)
    assert model._bound is first             # nothing changed: same binding
    ref = _net(fnn.ReLU)
    ref.fused = False
    ropt = fnn.SGD(ref.parameters(), lr=0.1)
    ref.train_step(X, y, fnn.MSELoss(), ropt)
    ref.train_step(X, y, fnn.MSELoss(), ropt)
    opt.lr = 0.01
    ropt.lr = 0.01
    opt.param_groups[0]["momentum"] = 0.0   # same value: no effect on results
    model.train_step(X, y, loss, opt)
    ref.train_step(X, y, fnn.MSELoss(), ropt)
    assert model._bound is not first
    np.testing.assert_array_equal(model.flat_params, ref.flat_params)


def test_unknown_layer_falls_back_with_identical_results():
    class MyTanh(fnn.Tanh):   # a user subclass: the C plan does not know it
        pass

    X, y = make_moons(64, seed=1)
    a = fnn.Sequential(fnn.Linear(2, 8), MyTanh(), fnn.Linear(8, 2), seed=0)
    b = fnn.Sequential(fnn.Linear(2, 8), fnn.Tanh(), fnn.Linear(8, 2), seed=0)
    assert a._get_plan() is None and b._get_plan() is not None
    la, lb = fnn.CrossEntropyLoss(), fnn.CrossEntropyLoss()
    oa, ob = fnn.SGD(a.parameters(), lr=0.1), fnn.SGD(b.parameters(), lr=0.1)
    assert _train(a, la, oa, X, y) == _train(b, lb, ob, X, y)
    np.testing.assert_array_equal(a.flat_params, b.flat_params)


def test_bad_label_in_fused_step_changes_nothing():
    model = _net(fnn.ReLU)
    loss = fnn.CrossEntropyLoss()
    opt = fnn.Adam(model.parameters())
    X, y = _data(loss, n=8)
    _train(model, loss, opt, X, y, steps=1)
    before, step = model.flat_params.copy(), opt.step_count
    y[5] = 3
    with pytest.raises(IndexError, match="target 3 is out of bounds for 3 classes"):
        model.train_step(X, y, loss, opt)
    np.testing.assert_array_equal(model.flat_params, before)
    assert opt.step_count == step


def test_workspace_reused_across_steps_and_batch_sizes():
    model = _net(fnn.ReLU)
    loss, X, y = fnn.MSELoss(), *_data(fnn.MSELoss(), n=40)
    opt = fnn.SGD(model.parameters(), lr=0.01)
    _train(model, loss, opt, X, y, steps=1)        # batch sizes 16 and 8
    works = dict(model._tls.work)                # (batch size, training) -> workspace
    assert sorted(works) == [(8, True), (16, True)]
    _train(model, loss, opt, X, y, steps=3)
    assert all(model._tls.work[k] is works[k] for k in works)


def test_steps_allocate_nothing_once_warm():
    """After the first step at a batch shape, a step allocates no Python-visible
    memory: tracemalloc (which also sees NumPy's array buffers) shows no growth
    and no peak above a few small objects over 2,000 steps."""
    model = fnn.Sequential(fnn.Linear(64, 128), fnn.ReLU(), fnn.Dropout(0.1),
                           fnn.Linear(128, 10), seed=0)
    loss, opt = fnn.CrossEntropyLoss(), fnn.Adam(model.parameters())
    X, y = _data(loss, n=64, d_in=64, d_out=10)
    for _ in range(3):
        model.train_step(X, y, loss, opt)
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(2000):
            model.train_step(X, y, loss, opt)
        now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert now - base < 1024
    # one step's worth of arrays would be >= 64*128*4 = 32 KiB
    assert peak - base < 4096


def test_steps_make_no_c_allocation_once_warm():
    """The C side too: the core's allocation counter (GEMM packing buffers, cached
    per thread) stays flat over 2,000 fused steps -- the backward pass includes
    packed NT products -- and over 200 predict batches; and RSS does not grow."""
    model = fnn.Sequential(fnn.Linear(784, 256), fnn.ReLU(), fnn.Linear(256, 128),
                           fnn.ReLU(), fnn.Linear(128, 10), seed=0)
    loss, opt = fnn.CrossEntropyLoss(), fnn.Adam(model.parameters())
    X, y = _data(loss, n=64, d_in=784, d_out=10)
    for _ in range(3):
        model.train_step(X, y, loss, opt)
        model.predict(X)
    before, rss0 = _core.alloc_count(), _rss_bytes()
    for _ in range(2000):
        model.train_step(X, y, loss, opt)
    for _ in range(200):
        model.predict(X)
    assert _core.alloc_count() == before
    # RSS means nothing under AddressSanitizer (.ci/sanitize.sh preloads it): its
    # quarantine keeps every freed block, Python's included, for a while
    if rss0 is not None and "libasan" not in os.environ.get("LD_PRELOAD", ""):
        assert _rss_bytes() - rss0 < 1 << 20


def _rss_bytes():
    """Resident set size from /proc (Linux), else None."""
    try:
        with open("/proc/self/statm") as f:
            import os
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return None


def test_model_rejects_bad_specs():
    with pytest.raises(ValueError, match="unknown op 'conv'"):
        _core.Model((2,), [("conv", {})], 0)
    with pytest.raises(ValueError, match="expects 4 inputs but the previous layer outputs 3"):
        fnn.Sequential(fnn.Linear(2, 3), fnn.Tanh(), fnn.Linear(4, 1))   # widths do not chain
    with pytest.raises(ValueError):
        _core.Model((2,), [], 0)
    m = _core.Model((2,), [("linear", {"units": 3, "bias": 1})], 0)
    assert m.params.size == 9 and m.input_shape == (2,) and m.output_shape == (3,)
    work = np.zeros(m.workspace_size(4), np.float32)
    x, t = np.zeros((4, 2), np.float32), np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="no loss"):
        m.train_step(x, t, work, 0, 0)
    m.set_loss("mse")
    with pytest.raises(ValueError, match="no optimizer"):
        m.train_step(x, t, work, 0, 0)
    m.set_optimizer("sgd", {"lr": 0.1})
    m.train_step(x, t, work, 0, 0)   # fits
    assert m.counters == (1, 1)
    with pytest.raises(ValueError, match="workspace has"):
        m.train_step(x, t, work[:10], 0, 0)
    with pytest.raises(ValueError, match=r"x must have shape \(n, 2\)"):
        m.forward(np.zeros((4, 3), np.float32), np.zeros((4, 5), np.float32), work)
