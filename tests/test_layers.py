"""Layers and Sequential: shapes, the flat buffers, modes, backends, gradients."""
import numpy as np
import pytest

import fastnn as fnn


def mlp(backend="numpy", seed=0, dropout=0.0):
    layers = [fnn.Linear(5, 16), fnn.Tanh(), fnn.Linear(16, 8), fnn.GELU()]
    if dropout:
        layers.append(fnn.Dropout(dropout))
    layers += [fnn.Linear(8, 3)]
    return fnn.Sequential(*layers, seed=seed, backend=backend)


def test_forward_shapes_and_parameter_count(backend_name):
    model = mlp(backend_name)
    out = model(np.ones((7, 5)))
    assert out.shape == (7, 3) and out.dtype == np.float32
    assert model.num_parameters == 5 * 16 + 16 + 16 * 8 + 8 + 8 * 3 + 3
    assert [p.name for p in model.parameters()] == [
        "0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert "Linear(5→16)" in repr(model)


def test_parameters_are_views_of_one_flat_buffer():
    model = mlp()
    offset = 0
    for p in model.parameters():
        assert np.shares_memory(p.data, model.flat_params)
        assert np.shares_memory(p.grad, model.flat_grads)
        assert p.offset == offset and p.data.flags.c_contiguous
        offset += p.data.size
    assert offset == model.flat_params.size
    model.layers[0].weight.data[0, 0] = 42.0
    assert model.flat_params[0] == 42.0
    layout, P = fnn.nn.param_layout(model.layers)
    assert P == model.num_parameters and layout[0] == (0, "weight", 0, (5, 16))


def test_linear_weight_is_in_by_out_and_bias_zero():
    model = fnn.Sequential(fnn.Linear(4, 6), seed=1)
    assert model.layers[0].weight.shape == (4, 6)
    assert not model.layers[0].bias.data.any()
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    w = model.layers[0].weight.data
    np.testing.assert_allclose(model(x), x @ w, rtol=1e-5, atol=1e-6)


def test_init_schemes():
    big = 400
    he = fnn.Sequential(fnn.Linear(big, big), fnn.ReLU()).layers[0].weight.data
    xa = fnn.Sequential(fnn.Linear(big, big), fnn.Tanh()).layers[0].weight.data
    assert abs(np.abs(he).max() - np.sqrt(6 / big)) < 1e-3
    assert abs(np.abs(xa).max() - np.sqrt(6 / (2 * big))) < 1e-3
    forced = fnn.Sequential(fnn.Linear(big, big, init="he"), fnn.Tanh())
    np.testing.assert_array_equal(forced.layers[0].weight.data, he)


def test_seed_determines_initialisation():
    a, b, c = mlp(seed=3), mlp(seed=3), mlp(seed=4)
    np.testing.assert_array_equal(a.flat_params, b.flat_params)
    assert not np.array_equal(a.flat_params, c.flat_params)


def test_zero_grad_and_gradients_accumulate():
    model = mlp()
    x = np.ones((4, 5), np.float32)
    model(x)
    model.backward(np.ones((4, 3), np.float32))
    g1 = model.flat_grads.copy()
    assert g1.any()
    model(x)
    model.backward(np.ones((4, 3), np.float32))
    np.testing.assert_allclose(model.flat_grads, 2 * g1, rtol=1e-6)
    model.zero_grad()
    assert not model.flat_grads.any()


def test_dropout_train_and_eval(backend_name):
    model = fnn.Sequential(fnn.Linear(10, 200), fnn.Dropout(0.5), seed=0, backend=backend_name)
    x = np.ones((8, 10), np.float32)
    train_out = np.array(model(x))
    zeros = (train_out == 0).mean()
    assert 0.35 < zeros < 0.65
    model.eval()
    assert not model.layers[1].training
    eval_out = np.array(model(x))
    kept = train_out != 0
    np.testing.assert_allclose(train_out[kept], 2 * eval_out[kept], rtol=1e-6)
    np.testing.assert_array_equal(model(x), eval_out)   # eval is deterministic
    model.train()
    assert not np.array_equal(model(x), train_out)       # new mask each step


def test_dropout_backward_uses_forward_mask():
    model = fnn.Sequential(fnn.Linear(3, 50), fnn.Dropout(0.3), fnn.Linear(50, 1))
    x = np.ones((2, 3), np.float32)
    model(x)
    model.backward(np.ones((2, 1), np.float32))
    mask = model.layers[1]._buffer("y", (2, 50)) != 0
    dead = ~mask.any(axis=0)
    assert not model.layers[2].weight.grad[dead].any()


def test_c_and_numpy_backends_agree(c, ref):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 5)).astype(np.float32)
    dout = rng.normal(size=(32, 3)).astype(np.float32)
    results = []
    for backend in ("c", "numpy"):
        model = mlp(backend, dropout=0.25)
        out = np.array(model(x))
        model.backward(dout)
        results.append((out, model.flat_grads.copy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("act", [fnn.ReLU, fnn.LeakyReLU, fnn.Sigmoid, fnn.Tanh, fnn.GELU,
                                 fnn.Softmax])
def test_every_activation_runs_on_both_backends(act, c, ref):
    x = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    outs = []
    for backend in ("c", "numpy"):
        model = fnn.Sequential(fnn.Linear(4, 4), act(), seed=0, backend=backend)
        out = np.array(model(x))
        model.backward(np.ones_like(out))
        outs.append((out, model.flat_grads.copy()))
    np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-4, atol=1e-5)


def test_whole_model_gradient_matches_finite_differences():
    """Directional derivative of the loss, central differences (float32 model,
    loss accumulated in double): checks Sequential's wiring of forward/backward."""
    rng = np.random.default_rng(0)
    model = fnn.Sequential(fnn.Linear(4, 8), fnn.Tanh(), fnn.Linear(8, 6), fnn.Sigmoid(),
                           fnn.Linear(6, 3), backend="numpy", seed=2)
    x = rng.normal(size=(10, 4)).astype(np.float32)
    y = rng.integers(0, 3, 10)
    loss_fn = fnn.CrossEntropyLoss()
    loss_fn(model(x), y)
    model.zero_grad()
    model.backward(loss_fn.backward())
    grad = model.flat_grads.astype(np.float64)
    theta = model.flat_params.copy()
    for _ in range(3):
        v = rng.normal(size=theta.size)
        v /= np.linalg.norm(v)
        eps = 1e-2
        model.flat_params[...] = theta + eps * v
        lp = loss_fn(model(x), y)
        model.flat_params[...] = theta - eps * v
        lm = loss_fn(model(x), y)
        model.flat_params[...] = theta
        fd = (lp - lm) / (2 * eps)
        assert abs(fd - grad @ v) <= 2e-3 * max(1.0, abs(fd)), (fd, grad @ v)


def test_forward_returns_read_only_view_and_predict_owns_its_output():
    model = mlp()
    x = np.ones((4, 5), np.float32)
    out = model(x)
    with pytest.raises(ValueError):
        out[0, 0] = 1.0
    p1 = model.predict(x)
    p2 = model.predict(2 * x)
    assert not np.shares_memory(p1, p2)
    assert not np.array_equal(p1, p2)
    np.testing.assert_array_equal(p1, model.predict(x))


def test_state_dict_roundtrip():
    a, b = mlp(seed=0), mlp(seed=1)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.flat_params, b.flat_params)
    sd = a.state_dict()
    sd["0.weight"][...] = 0          # a copy: the model is untouched
    assert a.layers[0].weight.data.any()
    with pytest.raises(ValueError, match="0.weight"):
        b.load_state_dict({**a.state_dict(), "0.weight": np.zeros((2, 2))})


def test_workspace_is_reused_per_batch_shape():
    model = mlp()
    model(np.ones((4, 5)))
    buf = model.layers[0]._buffer("y", (4, 16))
    model(np.ones((3, 5)))
    model(np.zeros((4, 5)))
    assert model.layers[0]._buffer("y", (4, 16)) is buf


def test_predict_proba():
    model = mlp()
    x = np.random.default_rng(0).normal(size=(5, 5))
    p = model.predict_proba(x)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    binary = fnn.Sequential(fnn.Linear(5, 1), backend="numpy")
    pb = binary.predict_proba(x)
    np.testing.assert_allclose(pb, 1 / (1 + np.exp(-binary.predict(x))), rtol=1e-5)
