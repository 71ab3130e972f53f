"""Gradient clipping by global norm: kernel vs reference, PyTorch's rule, and the
same bits in the fused step and the layer-by-layer path."""
import numpy as np
import pytest

import fastnn as fnn
from fastnn.datasets import make_moons


@pytest.mark.parametrize("P", [1, 17, 1000, 100_003])
@pytest.mark.parametrize("max_norm", [0.01, 1.0, 1e6])
def test_clip_kernel_matches_reference(c, ref, rng, P, max_norm, n_threads):
    g = rng.standard_normal(P).astype(np.float32)
    gc, gr = g.copy(), g.copy()
    nc, nr = c.clip_grad_norm(gc, max_norm), ref.clip_grad_norm(gr, max_norm)
    want = np.sqrt(np.sum(g.astype(np.float64) ** 2))
    assert nc == pytest.approx(want, rel=1e-12)
    assert nr == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(gc, gr, rtol=1e-6, atol=0)
    new_norm = np.sqrt(np.sum(gc.astype(np.float64) ** 2))
    if want > max_norm:
        assert new_norm == pytest.approx(max_norm, rel=1e-5)
    else:
        np.testing.assert_array_equal(gc, g)   # untouched below the threshold


def test_clip_hand_computed(backend):
    g = np.array([3.0, 4.0], np.float32)        # norm 5
    assert backend.clip_grad_norm(g, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(g, [0.6, 0.8], rtol=1e-6)


def test_clip_bitwise_across_threads(c, rng):
    g = rng.standard_normal(300_001).astype(np.float32)
    out = []
    for t in (1, 2, 3):
        c.set_num_threads(t)
        h = g.copy()
        out.append((c.clip_grad_norm(h, 0.5), h))
    c.set_num_threads(0)
    for norm, h in out[1:]:
        assert norm == out[0][0]
        np.testing.assert_array_equal(h, out[0][1])


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_clip_rejects_bad_max_norm(backend, bad):
    with pytest.raises(ValueError, match="max_norm"):
        backend.clip_grad_norm(np.ones(3, np.float32), bad)
    model = fnn.Sequential(fnn.Linear(2, 2))
    with pytest.raises(ValueError, match="max_grad_norm"):
        fnn.SGD(model.parameters(), max_grad_norm=bad)


def test_clip_grad_norm_function_matches_torch():
    torch = pytest.importorskip("torch")
    model = fnn.Sequential(fnn.Linear(3, 4), fnn.Tanh(), fnn.Linear(4, 2), seed=0)
    rng = np.random.default_rng(1)
    for p in model.parameters():
        p.grad[...] = rng.standard_normal(p.grad.shape) * 3
    tp = [torch.nn.Parameter(torch.zeros(p.grad.shape)) for p in model.parameters()]
    for t, p in zip(tp, model.parameters()):
        t.grad = torch.from_numpy(p.grad.copy())
    norm = fnn.clip_grad_norm_(model.parameters(), 0.7)
    tnorm = torch.nn.utils.clip_grad_norm_(tp, 0.7)
    assert norm == pytest.approx(float(tnorm), rel=1e-6)
    for t, p in zip(tp, model.parameters()):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("make_opt", [
    lambda p: fnn.SGD(p, lr=0.5, momentum=0.9, max_grad_norm=0.1),
    lambda p: fnn.Adam(p, lr=0.05, max_grad_norm=0.05)])
def test_clipping_fused_equals_layer_by_layer_and_subset(make_opt):
    X, y = make_moons(96, seed=0)
    a = fnn.Sequential(fnn.Linear(2, 16), fnn.ReLU(), fnn.Linear(16, 2), seed=0)
    b = fnn.Sequential(fnn.Linear(2, 16), fnn.ReLU(), fnn.Linear(16, 2), seed=0)
    c = fnn.Sequential(fnn.Linear(2, 16), fnn.ReLU(), fnn.Linear(16, 2), seed=0)
    b.fused = False
    oa, ob = make_opt(a.parameters()), make_opt(b.parameters())
    oc = make_opt(c.parameters()[::-1])   # not flat: per-parameter clipping and updates
    loss = fnn.CrossEntropyLoss()
    for xb, yb in fnn.batches(X, y, batch_size=32, shuffle=True, seed=0):
        la, lb = a.train_step(xb, yb, loss, oa), b.train_step(xb, yb, loss, ob)
        assert la == lb
        c.train_step(xb, yb, loss, oc)
    np.testing.assert_array_equal(a.flat_params, b.flat_params)
    np.testing.assert_allclose(a.flat_params, c.flat_params, rtol=1e-5, atol=1e-6)
    # clipping really acted: the clipped gradient's norm is the threshold
    assert np.sqrt(np.sum(b.flat_grads.astype(np.float64) ** 2)) == pytest.approx(
        oa.param_groups[0]["max_grad_norm"], rel=1e-4)
