"""PyTorch interop: :func:`from_torch` (a ``torch.nn`` model -> an equivalent
fastnn Sequential, weights copied), :func:`to_torch` (the reverse) and the
state_dict conversions between the two layouts.

torch is imported on first use only (ImportError naming the install when it
is missing). Supported layers, both ways: Linear, Conv1d, Conv2d, ReLU, LeakyReLU, Tanh,
Sigmoid, GELU (``approximate='tanh'`` only: fastnn's GELU is the tanh form),
Softmax (over the last dim), Dropout, BatchNorm1d/2d, LayerNorm, MaxPool2d,
AvgPool2d, AdaptiveAvgPool2d, Flatten; nested ``nn.Sequential`` containers are
flattened. Anything else is a TypeError naming the module.

Layouts: names are the same ("0.weight", "1.running_mean", ...) except that
fastnn's Linear weight is stored (in, out) and torch's (out, in): the
conversions transpose it. ``num_batches_tracked`` is int64 in torch, a float32
buffer in fastnn. ``requires_grad`` flags are carried over both ways.
"""
import numpy as np

from . import nn as fnn_nn

__all__ = ["from_torch", "to_torch", "torch_state_dict", "load_torch_state_dict"]


def _torch():
    try:
        import torch
    except ImportError as e:
        raise ImportError("fastnn.from_torch / to_torch need PyTorch: pip install torch "
                          f"({e})") from None
    return torch


def _leaves(module, tnn):
    """The layers of a torch module in order, nested Sequentials flattened."""
    if isinstance(module, tnn.Sequential):
        out = []
        for child in module.children():
            out += _leaves(child, tnn)
        return out
    return [module]


def _from_torch_layer(m, tnn, i):
    """The fastnn layer equal to torch layer m, or TypeError."""
    name = type(m).__name__
    if isinstance(m, tnn.Linear):
        return fnn_nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
    if type(m) in (tnn.ReLU, tnn.Tanh, tnn.Sigmoid):
        return getattr(fnn_nn, name)()
    if isinstance(m, tnn.LeakyReLU):
        return fnn_nn.LeakyReLU(m.negative_slope)
    if isinstance(m, tnn.GELU):
        if m.approximate != "tanh":
            raise NotImplementedError(
                f"layer {i} GELU(approximate={m.approximate!r}): fastnn's GELU is the tanh "
                "approximation; use torch.nn.GELU(approximate='tanh') (outputs differ by "
                "up to ~1e-3 from the exact erf form)")
        return fnn_nn.GELU()
    if isinstance(m, tnn.Softmax):
        if m.dim not in (-1, 1):
            raise NotImplementedError(f"layer {i} Softmax(dim={m.dim}): fastnn's Softmax is "
                                      "over the last dimension only")
        return fnn_nn.Softmax()
    if isinstance(m, tnn.Dropout):
        return fnn_nn.Dropout(m.p)
    if isinstance(m, (tnn.BatchNorm1d, tnn.BatchNorm2d)):
        return getattr(fnn_nn, name)(m.num_features, eps=m.eps, momentum=m.momentum,
                                     affine=m.affine, track_running_stats=m.track_running_stats)
    if isinstance(m, tnn.LayerNorm):
        return fnn_nn.LayerNorm(tuple(m.normalized_shape), eps=m.eps,
                                elementwise_affine=m.elementwise_affine,
                                bias=getattr(m, "bias", None) is not None)
    if isinstance(m, tnn.MaxPool2d):
        return fnn_nn.MaxPool2d(m.kernel_size, m.stride, m.padding, m.dilation,
                                m.return_indices, m.ceil_mode)
    if isinstance(m, tnn.AvgPool2d):
        return fnn_nn.AvgPool2d(m.kernel_size, m.stride, m.padding, m.ceil_mode,
                                m.count_include_pad, m.divisor_override)
    if isinstance(m, tnn.AdaptiveAvgPool2d):
        return fnn_nn.AdaptiveAvgPool2d(m.output_size)
    if isinstance(m, tnn.Flatten):
        return fnn_nn.Flatten(m.start_dim, m.end_dim)
    if isinstance(m, (tnn.Conv1d, tnn.Conv2d)) and type(m).__name__ in ("Conv1d", "Conv2d"):
        return getattr(fnn_nn, name)(m.in_channels, m.out_channels, m.kernel_size, m.stride,
                                     m.padding, m.dilation, m.groups, bias=m.bias is not None,
                                     padding_mode=m.padding_mode)
    raise TypeError(f"from_torch: layer {i} {name} has no fastnn equivalent (supported: "
                    "Linear, Conv1d, Conv2d, ReLU, LeakyReLU, Tanh, Sigmoid, GELU(tanh), "
                    "Softmax, Dropout, BatchNorm1d/2d, LayerNorm, MaxPool2d, AvgPool2d, "
                    "AdaptiveAvgPool2d, Flatten)")


def _to_numpy(name, t, layer):
    a = t.detach().cpu().numpy()
    if isinstance(layer, fnn_nn.Linear) and name == "weight":
        a = a.T
    return np.array(a, dtype=np.float32, order="C")   # keeps 0-d buffers 0-d


def from_torch(module, input_shape=None, seed=0, backend=None):
    """An equivalent fastnn Sequential of a torch module (nn.Sequential or a
    single layer) with its parameters, buffers, requires_grad flags and
    train/eval mode copied. input_shape: the per-sample input shape, needed
    when the first layer is not a Linear (e.g. (3, 32, 32) before a
    BatchNorm2d)."""
    torch = _torch()
    tnn = torch.nn
    if not isinstance(module, tnn.Module):
        raise TypeError(f"from_torch expects a torch.nn.Module, got {type(module).__name__}")
    leaves = _leaves(module, tnn)
    if not leaves:
        raise ValueError("from_torch: the torch module has no layers")
    layers = [_from_torch_layer(m, tnn, i) for i, m in enumerate(leaves)]
    model = fnn_nn.Sequential(*layers, seed=seed, backend=backend, input_shape=input_shape)
    for i, m in enumerate(leaves):
        if isinstance(m, tnn.Softmax) and m.dim == 1 and len(model._shapes[i] or ()) != 1:
            raise NotImplementedError(f"layer {i} Softmax(dim=1) on per-sample shape "
                                      f"{model._shapes[i]}: fastnn's Softmax is over the last "
                                      "dimension only")
    for layer, m in zip(layers, leaves):
        tstate = m.state_dict()
        params = dict(m.named_parameters(recurse=False))
        for name, p in layer.named_parameters():
            p.data[...] = _to_numpy(name, tstate[name], layer)
            p.requires_grad = bool(params[name].requires_grad)
        for name, buf in layer.named_buffers():
            buf[...] = _to_numpy(name, tstate[name], layer)
        layer.train(m.training)
    model.training = module.training
    return model


def _to_torch_layer(layer, tnn):
    if isinstance(layer, fnn_nn.Linear):
        return tnn.Linear(layer.in_features, layer.out_features, bias=layer.bias_enabled)
    name = type(layer).__name__
    if name in ("ReLU", "Tanh", "Sigmoid"):
        return getattr(tnn, name)()
    if isinstance(layer, fnn_nn.LeakyReLU):
        return tnn.LeakyReLU(layer.negative_slope)
    if isinstance(layer, fnn_nn.GELU):
        return tnn.GELU(approximate="tanh")
    if isinstance(layer, fnn_nn.Softmax):
        return tnn.Softmax(dim=-1)
    if isinstance(layer, fnn_nn.Dropout):
        return tnn.Dropout(layer.p)
    if isinstance(layer, (fnn_nn.BatchNorm1d, fnn_nn.BatchNorm2d)):
        return getattr(tnn, name)(layer.num_features, eps=layer.eps, momentum=layer.momentum,
                                  affine=layer.affine,
                                  track_running_stats=layer.track_running_stats)
    if isinstance(layer, fnn_nn.LayerNorm):
        return tnn.LayerNorm(layer.normalized_shape, eps=layer.eps,
                             elementwise_affine=layer.elementwise_affine,
                             bias=layer.bias_enabled)
    if isinstance(layer, fnn_nn.MaxPool2d):
        return tnn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding,
                             ceil_mode=layer.ceil_mode)
    if isinstance(layer, fnn_nn.AvgPool2d):
        return tnn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding,
                             ceil_mode=layer.ceil_mode, count_include_pad=layer.count_include_pad)
    if isinstance(layer, fnn_nn.AdaptiveAvgPool2d):
        return tnn.AdaptiveAvgPool2d(layer.output_size)
    if isinstance(layer, fnn_nn.Flatten):
        return tnn.Flatten(layer.start_dim, layer.end_dim)
    if isinstance(layer, (fnn_nn.Conv1d, fnn_nn.Conv2d)):
        return getattr(tnn, name)(layer.in_channels, layer.out_channels, layer.kernel_size,
                                  layer.stride, layer.padding, layer.dilation, layer.groups,
                                  bias=layer.bias_enabled, padding_mode=layer.padding_mode)
    raise TypeError(f"to_torch: {type(layer).__name__} has no torch.nn equivalent here")


def torch_state_dict(model):
    """model's state_dict in torch's layout: {"0.weight": torch.Tensor (out, in), ...,
    "1.num_batches_tracked": int64 tensor}, what ``to_torch(model).state_dict()`` holds."""
    torch = _torch()
    out = {}
    for i, layer in enumerate(model.layers):
        for name, p in layer.named_parameters():
            a = p.data.T if isinstance(layer, fnn_nn.Linear) and name == "weight" else p.data
            out[f"{i}.{name}"] = torch.tensor(np.ascontiguousarray(a))
        for name, buf in layer.named_buffers():
            t = torch.tensor(np.array(buf))
            out[f"{i}.{name}"] = t.long() if name == "num_batches_tracked" else t
    return out


def load_torch_state_dict(model, state):
    """Copy a torch-layout state_dict (of an nn.Sequential with the same layers in
    the same places, e.g. ``to_torch(model).state_dict()``) into model, in place."""
    want = torch_state_dict(model)
    if sorted(state) != sorted(want):
        raise ValueError(f"state_dict keys {sorted(state)} do not match the model's "
                         f"{sorted(want)}")
    for k, v in want.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise ValueError(f"{k}: expected shape {tuple(v.shape)} (torch layout), "
                             f"got {tuple(state[k].shape)}")
    mine = {}
    for i, layer in enumerate(model.layers):
        for name, _ in layer.named_parameters() + layer.named_buffers():
            mine[f"{i}.{name}"] = _to_numpy(name, state[f"{i}.{name}"], layer)
    model.load_state_dict(mine)


def to_torch(model):
    """A ``torch.nn.Sequential`` equal to a fastnn Sequential: the same layers,
    parameters and buffers (float32), requires_grad flags and train/eval mode."""
    torch = _torch()
    if not isinstance(model, fnn_nn.Sequential):
        raise TypeError(f"to_torch expects a fastnn Sequential, got {type(model).__name__}")
    tmodel = torch.nn.Sequential(*[_to_torch_layer(layer, torch.nn) for layer in model.layers])
    tmodel.load_state_dict(torch_state_dict(model))
    for i, layer in enumerate(model.layers):
        tl = tmodel[i]
        for name, p in layer.named_parameters():
            getattr(tl, name).requires_grad_(p.requires_grad)
        tl.train(layer.training)
    tmodel.training = model.training
    return tmodel
