"""fastnn.from_torch / to_torch (fastnn/torch_interop.py): same forward outputs
to float32 tolerance both ways, state_dict round trips in torch's layout
(Linear weights transposed), requires_grad and train/eval carried over."""
import numpy as np
import pytest

import fastnn as fnn
from fastnn import torch_interop

torch = pytest.importorskip("torch")
tnn = torch.nn
f32 = np.float32


def _mlp():
    torch.manual_seed(0)
    return tnn.Sequential(tnn.Linear(6, 9), tnn.ReLU(), tnn.Linear(9, 8), tnn.Tanh(),
                          tnn.Sequential(tnn.LeakyReLU(0.2), tnn.Linear(8, 7, bias=False)),
                          tnn.GELU(approximate="tanh"), tnn.Dropout(0.3), tnn.LayerNorm(7),
                          tnn.BatchNorm1d(7), tnn.Sigmoid(), tnn.Linear(7, 4), tnn.Softmax(dim=1))


def _cnn():
    torch.manual_seed(1)
    return tnn.Sequential(tnn.BatchNorm2d(3), tnn.MaxPool2d(2), tnn.AvgPool2d(3, 1, 1),
                          tnn.AdaptiveAvgPool2d((2, 2)), tnn.Flatten(), tnn.Linear(12, 5))


def _perturb_buffers(t):
    """Non-trivial running statistics (train a few batches in torch)."""
    t.train()
    with torch.no_grad():
        for s in range(3):
            g = torch.Generator().manual_seed(s)
            shape = (16, 6) if isinstance(t[0], tnn.Linear) else (16, 3, 8, 8)
            t(torch.randn(shape, generator=g))
    t.eval()


@pytest.mark.parametrize("make,shape", [(_mlp, None), (_cnn, (3, 8, 8))])
def test_from_torch_forward_matches(make, shape):
    t = make()
    _perturb_buffers(t)
    m = fnn.from_torch(t, input_shape=shape)
    x = np.random.default_rng(0).standard_normal((11,) + (shape or (6,))).astype(f32)
    want = t(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(m.predict(x), want, rtol=1e-5, atol=1e-6)
    assert not m.training                 # eval mode carried over
    back = fnn.to_torch(m)
    np.testing.assert_allclose(back(torch.tensor(x)).detach().numpy(), want,
                               rtol=1e-5, atol=1e-6)
    assert not back.training


@pytest.mark.parametrize("make,shape", [(_mlp, None), (_cnn, (3, 8, 8))])
def test_state_dict_round_trip(make, shape):
    t = make()
    _perturb_buffers(t)
    m = fnn.from_torch(t, input_shape=shape)
    flat = tnn.Sequential(*torch_interop._leaves(t, tnn))     # the flattened names
    sd = torch_interop.torch_state_dict(m)
    ref = flat.state_dict()
    assert list(sd) == list(ref)
    for k in ref:
        assert sd[k].dtype == ref[k].dtype, k
        np.testing.assert_array_equal(sd[k].numpy(), ref[k].numpy(), err_msg=k)
    # fastnn layout: (in, out) weights
    if shape is None:
        assert m.state_dict()["0.weight"].shape == (6, 9) and ref["0.weight"].shape == (9, 6)
    other = fnn.from_torch(make(), input_shape=shape)
    torch_interop.load_torch_state_dict(other, ref)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[k], v, err_msg=k)
    # and back through torch
    t2 = fnn.to_torch(m)
    for k, v in t2.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), ref[k].numpy(), err_msg=k)
    with pytest.raises(ValueError, match="expected shape"):
        bad = dict(ref)
        key = next(k for k in ref if k.endswith("weight") and ref[k].ndim == 2)
        bad[key] = ref[key].T
        torch_interop.load_torch_state_dict(other, bad)


def test_training_after_conversion_matches_torch_one_sgd_step():
    t = tnn.Sequential(tnn.Linear(6, 5), tnn.Tanh(), tnn.Linear(5, 3))
    m = fnn.from_torch(t)
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((16, 6)).astype(f32), rng.integers(0, 3, 16)
    opt = torch.optim.SGD(t.parameters(), lr=0.1)
    loss = tnn.functional.cross_entropy(t(torch.tensor(x)), torch.tensor(y))
    loss.backward()
    opt.step()
    m.train_step(x, y, fnn.CrossEntropyLoss(), fnn.SGD(m.parameters(), lr=0.1))
    for k, v in torch_interop.torch_state_dict(m).items():
        np.testing.assert_allclose(v.numpy(), t.state_dict()[k].numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=k)


def test_requires_grad_carried_both_ways():
    t = tnn.Sequential(tnn.Linear(3, 4), tnn.ReLU(), tnn.Linear(4, 2))
    t[0].requires_grad_(False)
    m = fnn.from_torch(t)
    assert [p.requires_grad for p in m.parameters()] == [False, False, True, True]
    m.layers[2].bias.requires_grad = False
    assert [p.requires_grad for p in fnn.to_torch(m).parameters()] == [False, False, True,
                                                                       False]


def test_unsupported_layers_raise_clearly():
    with pytest.raises(TypeError, match="layer 1 ConvTranspose1d has no fastnn equivalent"):
        fnn.from_torch(tnn.Sequential(tnn.Linear(2, 2), tnn.ConvTranspose1d(1, 1, 1)))
    with pytest.raises(NotImplementedError, match="approximate='tanh'"):
        fnn.from_torch(tnn.Sequential(tnn.Linear(2, 2), tnn.GELU()))
    with pytest.raises(NotImplementedError, match="last dimension"):
        fnn.from_torch(tnn.Sequential(tnn.Linear(2, 2), tnn.Softmax(dim=0)))
    with pytest.raises(TypeError, match="expects a torch.nn.Module"):
        fnn.from_torch("model")
    with pytest.raises(TypeError, match="expects a fastnn Sequential"):
        fnn.to_torch(tnn.Linear(2, 2))


def test_single_layer_module():
    lin = tnn.Linear(3, 2)
    m = fnn.from_torch(lin)
    x = np.ones((2, 3), f32)
    np.testing.assert_allclose(m.predict(x), lin(torch.tensor(x)).detach().numpy(),
                               rtol=1e-6)
