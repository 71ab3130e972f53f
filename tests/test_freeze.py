"""requires_grad freezing (fastnn/optim.py _Frozen): frozen parameters are
bitwise unchanged by fit on every path (whole epochs in C fall back to split
fused steps, the fused step loop, layer by layer, NumPy backend), for every
optimizer incl. momentum, weight decay and Adam's moments; their optimizer
state does not move; the other parameters train as with a torch-style skip;
gradient clipping ignores frozen gradients."""
import pickle

import numpy as np
import pytest

import fastnn as fnn

f32 = np.float32


def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 5)).astype(f32)
    return X, (X[:, 0] + X[:, 3] > 0).astype(int)


def _model(path="c", backend=None):
    m = fnn.Sequential(fnn.Linear(5, 8), fnn.Tanh(), fnn.Dropout(0.1), fnn.Linear(8, 6),
                       fnn.ReLU(), fnn.Linear(6, 2), seed=2, backend=backend)
    if path == "step":
        m._epoch_model = lambda *a: None
    elif path == "layers":
        m.fused = False
    return m


OPTS = {"adamw": lambda p: fnn.AdamW(p, lr=0.01, weight_decay=0.1),
        "sgd-momentum": lambda p: fnn.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.01),
        "rmsprop": lambda p: fnn.RMSprop(p, lr=0.01, momentum=0.5),
        "adam-clip": lambda p: fnn.Adam(p, lr=0.01, max_grad_norm=0.5)}


def _fit(path, opt_name, freeze, backend=None, epochs=3):
    X, y = _data()
    m = _model(path, backend)
    freeze(m)
    opt = OPTS[opt_name](m.parameters())
    m.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=epochs, batch_size=16, seed=1,
          verbose=0)
    return m, opt


def _freeze_middle(m):
    m.layers[3].requires_grad_(False)
    m.layers[5].bias.requires_grad = False


@pytest.mark.parametrize("opt_name", sorted(OPTS))
def test_frozen_params_bitwise_unchanged_on_every_path(opt_name):
    init = _model()
    frozen = {"3.weight", "3.bias", "5.bias"}
    runs = [_fit(path, opt_name, _freeze_middle) for path in ("c", "step", "layers")]
    for m, opt in runs:
        for name, p in m.named_parameters():
            before = dict(init.named_parameters())[name].data
            if name in frozen:
                assert not p.requires_grad
                np.testing.assert_array_equal(p.data, before, err_msg=name)
            else:
                assert not np.array_equal(p.data, before), name
        for k, buf in opt.state[0].items():     # the frozen slices of the state: zero
            for name, p in m.named_parameters():
                if name in frozen:
                    assert not buf[p.offset:p.offset + p.data.size].any(), (k, name)
    for m, _ in runs[1:]:
        np.testing.assert_array_equal(m.flat_params, runs[0][0].flat_params)
    np_m, _ = _fit("layers", opt_name, _freeze_middle, backend="numpy")
    np.testing.assert_allclose(np_m.flat_params, runs[0][0].flat_params, rtol=1e-4, atol=1e-5)


def test_freezing_midway_keeps_state_and_unfreezing_resumes():
    m, opt = _fit("c", "adamw", lambda m: None, epochs=1)
    state = {k: v.copy() for k, v in opt.state[0].items()}
    w = m.layers[0].weight
    w.requires_grad = False
    before = w.data.copy()
    X, y = _data()
    m.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=2, verbose=0)
    np.testing.assert_array_equal(w.data, before)
    sl = slice(w.offset, w.offset + w.data.size)
    for k, v in opt.state[0].items():
        np.testing.assert_array_equal(v[sl], state[k][sl])       # moments frozen too
    w.requires_grad = True
    m.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=1, verbose=0)
    assert not np.array_equal(w.data, before)


def test_frozen_equals_training_the_rest_alone():
    """Freezing layer 0 with plain SGD is the same as an optimizer that updates
    everything with layer 0's gradient zeroed (what torch computes)."""
    X, y = _data()
    a = _model()
    a.layers[0].requires_grad_(False)
    opt_a = fnn.SGD(a.parameters(), lr=0.1)
    b = _model(path="layers")
    opt_b = fnn.SGD(b.parameters(), lr=0.1)
    loss = fnn.CrossEntropyLoss()
    for s in range(3):
        xb, yb = X[s * 30:(s + 1) * 30], y[s * 30:(s + 1) * 30]
        a.train_step(xb, yb, loss, opt_a)
        out = b._forward(xb)
        loss.forward(out, yb)
        b.zero_grad()
        b.backward(loss.backward())
        b.layers[0].weight.grad[...] = 0
        b.layers[0].bias.grad[...] = 0
        opt_b.step()            # nothing frozen in b: a plain update
    np.testing.assert_array_equal(a.flat_params, b.flat_params)


def test_requires_grad_api():
    m = _model()
    assert all(p.requires_grad for p in m.parameters())
    assert m.requires_grad_(False) is m and not any(p.requires_grad for p in m.parameters())
    m.requires_grad_()
    p = m.layers[0].weight
    assert p.requires_grad_(False) is p and not p.requires_grad
    with pytest.raises(TypeError, match="requires_grad must be a bool"):
        p.requires_grad = "no"
    back = pickle.loads(pickle.dumps(m))
    assert [q.requires_grad for q in back.parameters()] == [q.requires_grad
                                                            for q in m.parameters()]
    lone = fnn.Linear(3, 2, seed=0)
    lone.requires_grad_(False)
    assert not lone.weight.requires_grad
