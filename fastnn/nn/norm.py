"""BatchNorm1d, BatchNorm2d and LayerNorm (C ops ``batch_norm``, ``layer_norm``;
kernels in csrc/norm.c).

PyTorch's names, arguments, defaults and semantics. BatchNorm keeps its
running statistics as non-trainable buffers (``running_mean``,
``running_var``, ``num_batches_tracked``) in the model's flat buffer
array: saved, loaded, pickled, in ``state_dict``/``named_buffers`` and
exported to ONNX. In training mode a batch is normalized with its own
mean and biased variance and the running statistics move by ``momentum``
(with the unbiased variance; momentum=None: the cumulative average); in
eval mode (``model.eval()``) the running statistics normalize. One value
per channel in training mode is an error, as in PyTorch.
``num_batches_tracked`` is a float32 in the flat buffer (exact to 2**24
steps).
"""
import math

import numpy as np

from ..checks import is_int, is_real
from ._shapes import as_batch, like_input, sample_shape
from .module import Module

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm"]


def _eps(v, who):
    if not is_real(v) or not v > 0 or not math.isfinite(v):
        raise ValueError(f"{who}: eps must be a finite number > 0, got {v!r}")
    return float(v)


class _BatchNorm(Module):
    op = "batch_norm"
    _ranks = ()
    _param_names = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True):
        who = type(self).__name__
        if not is_int(num_features) or num_features < 1:
            raise ValueError(f"{who}: num_features must be a positive integer, got "
                             f"{num_features!r}")
        if momentum is not None and (not is_real(momentum) or not 0.0 <= momentum <= 1.0):
            raise ValueError(f"{who}: momentum must be in [0, 1] or None, got {momentum!r}")
        self.num_features = int(num_features)
        self.eps = _eps(eps, who)
        self.momentum = None if momentum is None else float(momentum)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        if not self.affine:
            self.weight = self.bias = None
        if not self.track_running_stats:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def node_attrs(self):
        flags = (0 if self.track_running_stats else 1) | (2 if self.momentum is None else 0)
        return {"units": self.num_features, "bias": int(self.affine), "eps": self.eps,
                "momentum": 0.0 if self.momentum is None else self.momentum, "flags": flags}

    @classmethod
    def from_node_attrs(cls, attrs, in_shape=None):
        f = attrs.get("flags", 0)
        return cls(attrs["units"], eps=attrs["eps"],
                   momentum=None if f & 2 else attrs.get("momentum", 0.0),
                   affine=bool(attrs.get("bias", 0)), track_running_stats=not f & 1)

    def config(self):
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "affine": self.affine, "track_running_stats": self.track_running_stats}

    def output_shape(self, in_shape):
        if in_shape is None:
            return None
        in_shape = tuple(in_shape)
        if len(in_shape) not in self._ranks or in_shape[0] != self.num_features:
            raise ValueError(f"{self!r} expects per-sample input {self._expects}, got "
                             f"{in_shape}")
        return in_shape

    def param_shapes(self, in_shape=None):
        C = self.num_features
        return [("weight", (C,)), ("bias", (C,))] if self.affine else []

    def buffer_shapes(self, in_shape=None):
        C = self.num_features
        return [("running_mean", (C,)), ("running_var", (C,)), ("num_batches_tracked", ())] \
            if self.track_running_stats else []

    def init_params(self, flat, seed, index, next_layer):
        C = self.num_features
        flat[:C], flat[C:] = 1.0, 0.0

    def init_buffers(self, flat):
        C = self.num_features
        flat[:C], flat[C:2 * C], flat[2 * C:] = 0.0, 1.0, 0.0

    def _pw(self):
        return (None, None, None, None) if not self.affine else \
            (self.weight.data, self.bias.data, self.weight.grad, self.bias.grad)

    def forward(self, x):
        self._standalone()
        shape = sample_shape(self, x)
        self.output_shape(shape)
        self._xin, self._x = x, as_batch(x, shape)
        self._mode = self.training
        w, b, _, _ = self._pw()
        y = self._buffer("y", self._x.shape)
        self.backend.batch_norm_forward(y, self._x, w, b, self.running_mean, self.running_var,
                                        self.num_batches_tracked, self._mode, self.momentum,
                                        self.eps)
        return like_input(y, x)

    def backward(self, dy, need_dx=True):
        w, _, gw, gb = self._pw()
        dx = self._buffer("dx", self._x.shape) if need_dx else None
        self.backend.batch_norm_backward(dx, gw, gb, dy.reshape(self._x.shape), self._x, w,
                                         self.running_mean, self.running_var, self._mode,
                                         self.eps)
        return None if dx is None else like_input(dx, self._xin)

    def to_onnx(self, g, x, name):
        if not self.track_running_stats:
            raise TypeError(f"cannot export {self!r} to ONNX: without running statistics it "
                            f"normalizes with batch statistics at inference too")
        C = self.num_features
        w = self.weight.data if self.affine else np.ones(C, np.float32)
        b = self.bias.data if self.affine else np.zeros(C, np.float32)
        return g.node("BatchNormalization",
                      [x, g.const(f"{name}.weight", w), g.const(f"{name}.bias", b),
                       g.const(f"{name}.running_mean", self.running_mean),
                       g.const(f"{name}.running_var", self.running_var)],
                      f"{name}.batchnorm", epsilon=self.eps)

    def __repr__(self):
        extra = "" if self.eps == 1e-5 else f", eps={self.eps:g}"
        extra += "" if self.momentum == 0.1 else f", momentum={self.momentum}"
        extra += "" if self.affine else ", affine=False"
        extra += "" if self.track_running_stats else ", track_running_stats=False"
        return f"{type(self).__name__}({self.num_features}{extra})"


class BatchNorm1d(_BatchNorm):
    """Batch normalization over (C,) or (C, L) samples (after a Linear, or over a
    sequence), as ``torch.nn.BatchNorm1d``."""
    _ranks, _expects = (1, 2), "(num_features,) or (num_features, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalization over (C, H, W) samples, per channel, as
    ``torch.nn.BatchNorm2d``."""
    _ranks, _expects = (3,), "(num_features, H, W)"


class LayerNorm(Module):
    """Layer normalization over the last len(normalized_shape) dims of each sample,
    as ``torch.nn.LayerNorm``: y = (x - mean) / sqrt(var + eps) * weight + bias
    (biased variance; weight and bias of shape normalized_shape when
    elementwise_affine; bias=False drops the bias)."""
    op = "layer_norm"
    _param_names = ("weight", "bias")

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True):
        shape = (normalized_shape,) if is_int(normalized_shape) else tuple(normalized_shape)
        if not 1 <= len(shape) <= 3 or not all(is_int(d) and d >= 1 for d in shape):
            raise ValueError(f"LayerNorm: normalized_shape must be a positive int or a tuple "
                             f"of 1 to 3 of them, got {normalized_shape!r}")
        self.normalized_shape = tuple(int(d) for d in shape)
        self.eps = _eps(eps, "LayerNorm")
        self.elementwise_affine = bool(elementwise_affine)
        self.bias_enabled = bool(bias) and self.elementwise_affine
        if not self.elementwise_affine:
            self.weight = None
        if not self.bias_enabled:
            self.bias = None

    @property
    def _D(self):
        return int(np.prod(self.normalized_shape))

    def node_attrs(self):
        return {"units": self._D, "axis": len(self.normalized_shape), "eps": self.eps,
                "bias": int(self.elementwise_affine),
                "flags": 4 if self.elementwise_affine and not self.bias_enabled else 0}

    @classmethod
    def from_node_attrs(cls, attrs, in_shape=None):
        k = int(attrs.get("axis", 1))
        return cls(tuple(in_shape[len(in_shape) - k:]), eps=attrs["eps"],
                   elementwise_affine=bool(attrs.get("bias", 0)),
                   bias=not attrs.get("flags", 0) & 4)

    def config(self):
        return {"normalized_shape": list(self.normalized_shape), "eps": self.eps,
                "elementwise_affine": self.elementwise_affine, "bias": self.bias_enabled}

    def output_shape(self, in_shape):
        if in_shape is None:
            return None
        in_shape, k = tuple(in_shape), len(self.normalized_shape)
        if len(in_shape) < k or in_shape[len(in_shape) - k:] != self.normalized_shape:
            raise ValueError(f"{self!r}: normalized_shape {self.normalized_shape} does not "
                             f"match the end of the per-sample input shape {in_shape}")
        return in_shape

    def param_shapes(self, in_shape=None):
        shapes = [("weight", self.normalized_shape)] if self.elementwise_affine else []
        return shapes + ([("bias", self.normalized_shape)] if self.bias_enabled else [])

    def init_params(self, flat, seed, index, next_layer):
        D = self._D
        flat[:D], flat[D:] = 1.0, 0.0

    def forward(self, x):
        self._standalone()
        shape = sample_shape(self, x)
        self.output_shape(shape)
        D = self._D
        self._xin = x
        self._x = x2 = np.ascontiguousarray(x).reshape(-1, D)
        self._stats = st = self._buffer("stats", (x2.shape[0], 2))
        y = self._buffer("y", x2.shape)
        self.backend.layer_norm_forward(
            y, st, x2, None if self.weight is None else self.weight.data.reshape(-1),
            None if self.bias is None else self.bias.data.reshape(-1), self.eps)
        return y.reshape(x.shape)

    def backward(self, dy, need_dx=True):
        dx = self._buffer("dx", self._x.shape) if need_dx else None
        self.backend.layer_norm_backward(
            dx, None if self.weight is None else self.weight.grad.reshape(-1),
            None if self.bias is None else self.bias.grad.reshape(-1),
            np.ascontiguousarray(dy).reshape(self._x.shape), self._x,
            None if self.weight is None else self.weight.data.reshape(-1), self._stats)
        return None if dx is None else dx.reshape(self._xin.shape)

    def to_onnx(self, g, x, name):
        if g.opset < 17:
            raise TypeError(f"cannot export {self!r} to ONNX opset {g.opset}: "
                            f"LayerNormalization needs opset >= 17")
        D = self.normalized_shape
        w = self.weight.data if self.weight is not None else np.ones(D, np.float32)
        inputs = [x, g.const(f"{name}.weight", w)]
        if self.bias is not None:
            inputs.append(g.const(f"{name}.bias", self.bias.data))
        return g.node("LayerNormalization", inputs, f"{name}.layernorm",
                      axis=-len(D), epsilon=self.eps)

    def __repr__(self):
        shape = self.normalized_shape[0] if len(self.normalized_shape) == 1 \
            else self.normalized_shape
        extra = "" if self.eps == 1e-5 else f", eps={self.eps:g}"
        extra += "" if self.elementwise_affine else ", elementwise_affine=False"
        extra += "" if self.bias_enabled or not self.elementwise_affine else ", bias=False"
        return f"LayerNorm({shape}{extra})"
