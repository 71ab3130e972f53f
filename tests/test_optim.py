"""Optimizer kernels: 20 steps of C (float32) vs the reference, hand-computed
textbook updates, lr = 0 leaves params bitwise unchanged, 1 vs 2 threads
bitwise, and (when torch is installed) 20 steps against torch.optim.
"""
import math

import numpy as np
import pytest

import fastnn._core as core
import fastnn.reference as reference

P = 1001
STEPS = 20

SGD = dict(lr=0.05, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False)
ADAM = dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False)
RMSPROP = dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0)
ADAGRAD = dict(lr=0.1, lr_decay=0.0, eps=1e-10, weight_decay=0.0)

CONFIGS = [
    ("sgd", SGD),
    ("sgd", {**SGD, "momentum": 0.9}),
    ("sgd", {**SGD, "momentum": 0.9, "dampening": 0.3}),
    ("sgd", {**SGD, "momentum": 0.9, "nesterov": True}),
    ("sgd", {**SGD, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01}),
    ("sgd", {**SGD, "weight_decay": 0.1}),
    ("adam", ADAM),
    ("adam", {**ADAM, "weight_decay": 0.01}),
    ("adam", {**ADAM, "weight_decay": 0.1, "decoupled": True}),
    ("adam", {**ADAM, "beta1": 0.5, "beta2": 0.9, "eps": 1e-3}),
    ("rmsprop", RMSPROP),
    ("rmsprop", {**RMSPROP, "momentum": 0.9}),
    ("rmsprop", {**RMSPROP, "weight_decay": 0.01, "momentum": 0.5, "alpha": 0.9}),
    ("adagrad", ADAGRAD),
    ("adagrad", {**ADAGRAD, "lr_decay": 0.1}),
    ("adagrad", {**ADAGRAD, "weight_decay": 0.05, "lr_decay": 0.01}),
]
DEFAULTS = {"sgd": SGD, "adam": ADAM, "rmsprop": RMSPROP, "adagrad": ADAGRAD}
N_STATE = {"sgd": 1, "adam": 2, "rmsprop": 2, "adagrad": 1}
IDS = [name + "-" + ",".join(f"{k}={v}" for k, v in cfg.items() if v != DEFAULTS[name][k])
       for name, cfg in CONFIGS]


def step(backend, name, cfg, params, state, grads, t):
    """One update; state is a list of buffers (None where unused)."""
    if name == "sgd":
        backend.sgd_update(params, state[0], grads, t, cfg["lr"], cfg["momentum"],
                           cfg["dampening"], cfg["weight_decay"], cfg["nesterov"])
    elif name == "adam":
        backend.adam_update(params, state[0], state[1], grads, t, cfg["lr"], cfg["beta1"],
                            cfg["beta2"], cfg["eps"], cfg["weight_decay"], cfg["decoupled"])
    elif name == "rmsprop":
        backend.rmsprop_update(params, state[0], state[1], grads, t, cfg["lr"], cfg["alpha"],
                               cfg["eps"], cfg["weight_decay"], cfg["momentum"])
    else:
        backend.adagrad_update(params, state[0], grads, t, cfg["lr"], cfg["lr_decay"],
                               cfg["eps"], cfg["weight_decay"])


def run(backend, name, cfg, p0, grads_seq, dtype):
    params = p0.astype(dtype)
    state = [np.zeros(p0.shape, dtype) for _ in range(N_STATE[name])]
    for t, g in enumerate(grads_seq, start=1):
        step(backend, name, cfg, params, state, g.astype(dtype), t)
    return params, state


def problem(rng, n=P):
    p0 = rng.standard_normal(n).astype(np.float32)
    grads = [rng.standard_normal(n).astype(np.float32) for _ in range(STEPS)]
    return p0, grads


@pytest.mark.parametrize("name,cfg", CONFIGS, ids=IDS)
def test_twenty_steps_match_reference(name, cfg, rng, n_threads):
    p0, grads = problem(rng)
    pc, sc = run(core, name, cfg, p0, grads, np.float32)
    # The bridge passes scalars as C floats: give the oracle the same values
    # (float32(0.999) makes 1 - beta2 differ from 0.001 by 1.3e-5 relative).
    cfg32 = {k: float(np.float32(v)) if isinstance(v, float) else v for k, v in cfg.items()}
    pr, sr = run(reference, name, cfg32, p0, grads, np.float64)
    np.testing.assert_allclose(pc, pr, rtol=1e-5, atol=1e-6)
    for a, b in zip(sc, sr):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * np.abs(b).max())
    p32, _ = run(reference, name, cfg, p0, grads, np.float32)   # dtype-generic reference
    assert p32.dtype == np.float32
    np.testing.assert_allclose(pc, p32, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------- textbook values

def one(x):
    return np.array([x], np.float32)


def test_sgd_textbook(backend):
    p, g = one(1.0), one(0.5)
    backend.sgd_update(p, None, g, 1, 0.1, 0.0, 0.0, 0.0, False)
    assert p[0] == pytest.approx(0.95, rel=1e-7)                  # p - lr g
    p, buf = one(1.0), one(np.nan)                                # buf = g at step 1
    backend.sgd_update(p, buf, g, 1, 0.1, 0.9, 0.5, 0.0, False)
    assert (p[0], buf[0]) == pytest.approx((0.95, 0.5), rel=1e-7)
    backend.sgd_update(p, buf, g, 2, 0.1, 0.9, 0.5, 0.0, False)   # buf = .9*.5 + .5*.5
    assert (p[0], buf[0]) == pytest.approx((0.95 - 0.07, 0.7), rel=1e-7)
    p, buf = one(1.0), one(0.0)                                   # nesterov: g + m buf
    backend.sgd_update(p, buf, g, 1, 0.1, 0.9, 0.0, 0.0, True)
    assert p[0] == pytest.approx(1 - 0.1 * (0.5 + 0.9 * 0.5), rel=1e-7)
    p = one(1.0)                                                  # L2: g + wd p
    backend.sgd_update(p, None, g, 1, 0.1, 0.0, 0.0, 0.1, False)
    assert p[0] == pytest.approx(1 - 0.1 * 0.6, rel=1e-7)


def test_adam_textbook(backend):
    lr, b1, eps = 0.1, 0.9, 1e-8
    b2 = float(np.float32(0.999))        # what a C float holds: 1 - b2 = 0.00099998713
    p, m, v = one(1.0), one(0.0), one(0.0)
    backend.adam_update(p, m, v, one(0.5), 1, lr, b1, b2, eps, 0.0, False)
    assert (m[0], v[0]) == pytest.approx((0.05, (1 - b2) * 0.25), rel=1e-6)
    assert p[0] == pytest.approx(0.9, rel=1e-6)         # step 1 moves by lr sign(g)
    backend.adam_update(p, m, v, one(0.25), 2, lr, b1, b2, eps, 0.0, False)
    m2, v2 = 0.9 * 0.05 + 0.1 * 0.25, b2 * (1 - b2) * 0.25 + (1 - b2) * 0.0625
    mhat, vhat = m2 / (1 - b1 ** 2), v2 / (1 - b2 ** 2)
    assert (m[0], v[0]) == pytest.approx((m2, v2), rel=1e-6)
    assert p[0] == pytest.approx(0.9 - lr * mhat / (math.sqrt(vhat) + eps), rel=1e-6)
    p, m, v = one(1.0), one(0.0), one(0.0)              # AdamW: p (1 - lr wd) first
    backend.adam_update(p, m, v, one(0.5), 1, lr, b1, b2, eps, 0.1, True)
    assert p[0] == pytest.approx(0.99 - 0.1, rel=1e-6)
    p, m, v = one(1.0), one(0.0), one(0.0)              # Adam L2: g = 0.5 + 0.1 * 1
    backend.adam_update(p, m, v, one(0.5), 1, lr, b1, b2, eps, 0.1, False)
    assert (p[0], m[0]) == pytest.approx((0.9, 0.06), rel=1e-6)


def test_rmsprop_textbook(backend):
    p, sq = one(1.0), one(0.0)
    backend.rmsprop_update(p, sq, None, one(0.5), 1, 0.01, 0.99, 1e-8, 0.0, 0.0)
    assert (sq[0], p[0]) == pytest.approx((0.0025, 1 - 0.01 * 0.5 / 0.05), rel=1e-6)
    p, sq, buf = one(1.0), one(0.0), one(0.0)
    for t in (1, 2):
        backend.rmsprop_update(p, sq, buf, one(0.5), t, 0.01, 0.99, 1e-8, 0.0, 0.9)
    sq2 = 0.99 * 0.0025 + 0.01 * 0.25
    buf2 = 0.9 * 10 + 0.5 / math.sqrt(sq2)
    assert (sq[0], buf[0]) == pytest.approx((sq2, buf2), rel=1e-6)
    assert p[0] == pytest.approx(1 - 0.01 * 10 - 0.01 * buf2, rel=1e-6)


def test_adagrad_textbook(backend):
    p, s = one(1.0), one(0.0)
    backend.adagrad_update(p, s, one(0.5), 1, 0.1, 0.5, 1e-10, 0.0)
    assert (s[0], p[0]) == pytest.approx((0.25, 0.9), rel=1e-6)
    backend.adagrad_update(p, s, one(0.5), 2, 0.1, 0.5, 1e-10, 0.0)  # clr = 0.1 / 1.5
    assert (s[0], p[0]) == pytest.approx((0.5, 0.9 - 0.1 / 1.5 * 0.5 / math.sqrt(0.5)),
                                         rel=1e-6)


# ------------------------------------------------------------ lr == 0

@pytest.mark.parametrize("name,cfg", CONFIGS, ids=IDS)
def test_lr_zero_leaves_params_bitwise(name, cfg, backend, rng):
    params = rng.standard_normal(64).astype(np.float32)
    params[:6] = [-0.0, 0.0, np.nan, np.inf, -np.inf, 1e-40]
    grads = rng.standard_normal(64).astype(np.float32)
    grads[6:9] = [np.inf, -1.0, np.nan]
    before = params.copy()
    state = [np.zeros(64, np.float32) for _ in range(N_STATE[name])]
    with np.errstate(invalid="ignore"):                  # inf - inf in the state
        for t in (1, 2, 3):
            step(backend, name, {**cfg, "lr": 0.0}, params, state, grads, t)
    np.testing.assert_array_equal(params.view(np.uint32), before.view(np.uint32))


# ------------------------------------------------------------ threads

@pytest.mark.parametrize("name,cfg", CONFIGS[::3], ids=IDS[::3])
def test_threads_bitwise(name, cfg, rng):
    p0, grads = problem(rng, 300_000)
    grads = grads[:3]
    old = core.get_num_threads()
    try:
        res = []
        for nt in (1, 2):
            core.set_num_threads(nt)
            res.append(run(core, name, cfg, p0, grads, np.float32))
    finally:
        core.set_num_threads(old)
    np.testing.assert_array_equal(res[0][0], res[1][0])
    for a, b in zip(res[0][1], res[1][1]):
        np.testing.assert_array_equal(a, b)


def test_bad_step_and_missing_buffer(backend):
    p, g = one(1.0), one(1.0)
    with pytest.raises(ValueError):
        backend.sgd_update(p, None, g, 0, 0.1, 0.0, 0.0, 0.0, False)
    with pytest.raises(ValueError):
        backend.sgd_update(p, None, g, 1, 0.1, 0.9, 0.0, 0.0, False)
    assert p[0] == 1.0


# ------------------------------------------------------------ torch

def torch_run(name, cfg, p0, grads):
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.tensor(p0))
    if name == "sgd":
        opt = torch.optim.SGD([p], lr=cfg["lr"], momentum=cfg["momentum"],
                              dampening=cfg["dampening"], weight_decay=cfg["weight_decay"],
                              nesterov=cfg["nesterov"])
    elif name == "adam":
        cls = torch.optim.AdamW if cfg["decoupled"] else torch.optim.Adam
        opt = cls([p], lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"],
                  weight_decay=cfg["weight_decay"])
    elif name == "rmsprop":
        opt = torch.optim.RMSprop([p], lr=cfg["lr"], alpha=cfg["alpha"], eps=cfg["eps"],
                                  weight_decay=cfg["weight_decay"], momentum=cfg["momentum"])
    else:
        opt = torch.optim.Adagrad([p], lr=cfg["lr"], lr_decay=cfg["lr_decay"],
                                  eps=cfg["eps"], weight_decay=cfg["weight_decay"])
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
    return p.detach().numpy()


@pytest.mark.parametrize("name,cfg", CONFIGS, ids=IDS)
def test_twenty_steps_match_torch(name, cfg, rng):
    p0, grads = problem(rng)
    expected = torch_run(name, cfg, p0, grads)
    pc, _ = run(core, name, cfg, p0, grads, np.float32)
    np.testing.assert_allclose(pc, expected, rtol=1e-5, atol=1e-6)
