"""Conv2d / Conv1d against PyTorch on randomly drawn (seeded) configurations:
forward output, dx, dweight, dbias, and the parameters after 30 Adam steps of a
conv + flatten + linear model (fused C plan), all to float32 tolerance; plus
from_torch / to_torch round trips."""
import numpy as np
import pytest

import fastnn as fnn
from fastnn.reference.conv import conv_out_size

torch = pytest.importorskip("torch")

N_CONFIGS = 40       # per dimensionality
pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same.:UserWarning")


def _draw(seed, nd):
    """One random configuration that fits: (N, C, spatial, O, k, s, padding, d, G, bias)."""
    rng = np.random.default_rng(1000 * nd + seed)
    while True:
        G = int(rng.choice([1, 1, 1, 2, 3]))
        Cin, O = G * int(rng.integers(1, 4)), G * int(rng.integers(1, 4))
        if rng.random() < 0.15:
            G, O = Cin, Cin * int(rng.integers(1, 3))          # depthwise
        k = tuple(int(rng.integers(1, 6)) for _ in range(nd))
        d = tuple(int(rng.integers(1, 3)) for _ in range(nd))
        if rng.random() < 0.25:
            s, padding = (1,) * nd, str(rng.choice(["same", "valid"]))
            pads = [(t // 2, t - t // 2) if padding == "same" else (0, 0)
                    for t in (dd * (kk - 1) for dd, kk in zip(d, k))]
        else:
            s = tuple(int(rng.integers(1, 5)) for _ in range(nd))
            padding = tuple(int(rng.integers(0, 4)) for _ in range(nd))
            pads = [(p, p) for p in padding]
        sp = tuple(int(rng.integers(1, 13)) for _ in range(nd))
        if min(conv_out_size(sp[i], k[i], s[i], d[i], *pads[i]) for i in range(nd)) >= 1:
            return (int(rng.integers(1, 5)), Cin, sp, O, k, s, padding, d, G,
                    bool(rng.random() < 0.75))


def _layers(cfg, nd):
    N, Cin, sp, O, k, s, padding, d, G, bias = cfg
    kw = dict(stride=s, padding=padding, dilation=d, groups=G, bias=bias)
    return (getattr(fnn, f"Conv{nd}d")(Cin, O, k, **kw),
            getattr(torch.nn, f"Conv{nd}d")(Cin, O, k, **kw))


def _tol(a, b, rtol=1e-4):
    scale = max(1.0, float(np.abs(b).max()))
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


CASES = [(nd, seed) for nd in (2, 1) for seed in range(N_CONFIGS)]


@pytest.mark.parametrize("nd,seed", CASES)
def test_forward_and_every_gradient(nd, seed):
    cfg = _draw(seed, nd)
    N, Cin, sp = cfg[:3]
    layer, tl = _layers(cfg, nd)
    layer.seed = seed
    with torch.no_grad():               # the same weights in both
        tl.weight.copy_(torch.tensor(layer.weight.data))
        if tl.bias is not None:
            tl.bias.copy_(torch.tensor(layer.bias.data))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, Cin) + sp).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    yt = tl(xt)
    y = layer(x)
    _tol(y, yt.detach().numpy())
    dy = rng.standard_normal(y.shape).astype(np.float32)
    yt.backward(torch.tensor(dy))
    dx = layer.backward(dy)
    _tol(dx, xt.grad.numpy())
    _tol(layer.weight.grad, tl.weight.grad.numpy())
    if tl.bias is not None:
        _tol(layer.bias.grad, tl.bias.grad.numpy())


@pytest.mark.parametrize("nd,seed", CASES[::2])
def test_parameters_after_30_adam_steps(nd, seed):
    """torch model -> from_torch (the fused C plan); 30 Adam steps on the same
    batches in both; every parameter to float32 tolerance."""
    cfg = _draw(seed, nd)
    N, Cin, sp, O = cfg[:4]
    _, tconv = _layers(cfg, nd)
    torch.manual_seed(seed)
    with torch.no_grad():
        out = tconv(torch.zeros((1, Cin) + sp)).shape[1:]
    tm = torch.nn.Sequential(tconv, torch.nn.Tanh(), torch.nn.Flatten(),
                             torch.nn.Linear(int(np.prod(out)), 3))
    m = fnn.from_torch(tm, input_shape=(Cin,) + sp)
    assert m._get_plan() is not None
    opt = fnn.Adam(m.parameters(), lr=1e-2)
    topt = torch.optim.Adam(tm.parameters(), lr=1e-2)
    rng = np.random.default_rng(seed)
    B = max(N, 2)
    for _ in range(30):
        x = rng.standard_normal((B, Cin) + sp).astype(np.float32)
        t = rng.integers(0, 3, B)
        topt.zero_grad()
        tloss = torch.nn.functional.cross_entropy(tm(torch.tensor(x)), torch.tensor(t))
        tloss.backward()
        topt.step()
        loss = m.train_step(x, t, "cross_entropy", opt)
        assert abs(loss - tloss.item()) < 1e-3 * max(1.0, abs(tloss.item()))
    back = dict(fnn.torch_interop.torch_state_dict(m))
    for name, p in tm.state_dict().items():
        _tol(back[name].numpy(), p.numpy(), rtol=2e-3)


def test_to_torch_round_trip():
    m = fnn.Sequential(fnn.Conv2d(3, 6, 3, padding="same", bias=False), fnn.ReLU(),
                       fnn.Conv2d(6, 6, 3, groups=3, stride=2), fnn.Flatten(),
                       fnn.Linear(6 * 3 * 3, 2), input_shape=(3, 8, 8), seed=0)
    tm = fnn.to_torch(m)
    x = np.random.default_rng(0).standard_normal((4, 3, 8, 8)).astype(np.float32)
    with torch.no_grad():
        _tol(m.predict(x), tm(torch.tensor(x)).numpy())
    back = fnn.from_torch(tm, input_shape=(3, 8, 8))
    np.testing.assert_array_equal(back.flat_params, m.flat_params)
    m1 = fnn.Sequential(fnn.Conv1d(2, 4, 4, padding="same"), fnn.Flatten(),
                        input_shape=(2, 9), seed=0)
    x1 = np.random.default_rng(1).standard_normal((4, 2, 9)).astype(np.float32)
    with torch.no_grad():
        _tol(m1.predict(x1), fnn.to_torch(m1)(torch.tensor(x1)).numpy())
    with pytest.raises(NotImplementedError, match="reflect"):
        fnn.from_torch(torch.nn.Conv2d(1, 2, 3, padding_mode="reflect"), input_shape=(1, 5, 5))
