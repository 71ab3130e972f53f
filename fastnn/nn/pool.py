"""Pooling and Flatten (C ops ``max_pool2d``, ``avg_pool2d``,
``adaptive_avg_pool2d``, ``flatten``; kernels in csrc/pool.c).

PyTorch's names, arguments and defaults; NCHW layout, per-sample input
(C, H, W). Output sizes: floor((H + 2 p - k) / s) + 1 (ceil with
``ceil_mode``, the last window starting inside the input or left padding).
Max pooling ties go to the first maximum of a window in row-major order
(PyTorch's CPU rule); padding never wins.
"""
import numpy as np

from ..checks import is_int
from ..reference.pool import pool_out_size
from ._shapes import as_batch, like_input, sample_shape
from .module import Module

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Flatten"]


def _pair(v, who, name, minimum):
    vals = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(vals) != 2 or not all(is_int(u) and u >= minimum for u in vals):
        raise ValueError(f"{who}: {name} must be an int >= {minimum} or a pair of them, got "
                         f"{v!r}")
    return tuple(int(u) for u in vals)


class _Pool2d(Module):
    """Common part of MaxPool2d and AvgPool2d."""
    _flags = ()

    def _setup(self, kernel_size, stride, padding, ceil_mode):
        who = type(self).__name__
        self.kernel_size = _pair(kernel_size, who, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None or stride == () or stride == [] \
            else _pair(stride, who, "stride", 1)
        self.padding = _pair(padding, who, "padding", 0)
        for k, p in zip(self.kernel_size, self.padding):
            if p > k // 2:
                raise ValueError(f"{who}: padding should be at most half of the kernel size, "
                                 f"got kernel_size={self.kernel_size}, padding={self.padding}")
        self.ceil_mode = bool(ceil_mode)

    def _pool_attrs(self):
        return {"kernel": self.kernel_size, "stride": self.stride, "padding": self.padding}

    def output_shape(self, in_shape):
        if in_shape is None:
            return None
        in_shape = tuple(in_shape)
        if len(in_shape) != 3:
            raise ValueError(f"{self!r} expects a (C, H, W) input per sample, got {in_shape}")
        o = [pool_out_size(in_shape[1 + d], self.kernel_size[d], self.stride[d],
                           self.padding[d], self.ceil_mode) for d in range(2)]
        if min(o) < 1:
            raise ValueError(f"{self!r}: the kernel {self.kernel_size} is larger than the "
                             f"padded input {in_shape} (padding {self.padding})")
        return (in_shape[0], o[0], o[1])

    def _args(self):
        return (self.kernel_size, self.stride, self.padding, self.ceil_mode)

    def forward(self, x):
        shape = sample_shape(self, x)
        out = self.output_shape(shape)
        self._xin = x
        self._x = as_batch(x, shape)
        self._y = y = self._buffer("y", (x.shape[0],) + out)
        getattr(self.backend, self.op + "_forward")(y, self._x, *self._args())
        return like_input(y, x)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        dx = self._buffer("dx", self._x.shape)
        getattr(self.backend, self.op + "_backward")(dx, dy.reshape(self._y.shape), self._x,
                                                     self._y, *self._args())
        return like_input(dx, self._xin)

    def _onnx_attrs(self):
        ph, pw = self.padding
        return dict(kernel_shape=list(self.kernel_size), strides=list(self.stride),
                    pads=[ph, pw, ph, pw], ceil_mode=int(self.ceil_mode))


class MaxPool2d(_Pool2d):
    """2-D max pooling over (C, H, W) samples, as ``torch.nn.MaxPool2d``.

    Args: kernel_size, stride (default: kernel_size), padding (at most half
    the kernel; padding never wins), dilation (1 only), return_indices
    (False only), ceil_mode.
    """
    op = "max_pool2d"

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        if _pair(dilation, "MaxPool2d", "dilation", 1) != (1, 1):
            raise NotImplementedError(f"MaxPool2d: dilation other than 1 is not supported "
                                      f"(got {dilation!r})")
        if return_indices:
            raise NotImplementedError("MaxPool2d: return_indices=True is not supported (a "
                                      "Sequential layer returns one array)")
        self._setup(kernel_size, stride, padding, ceil_mode)

    def node_attrs(self):
        return dict(self._pool_attrs(), flags=1 if self.ceil_mode else 0)

    @classmethod
    def from_node_attrs(cls, attrs, in_shape=None):
        return cls(tuple(attrs["kernel"]), tuple(attrs["stride"]),
                   tuple(attrs.get("padding", (0, 0))), ceil_mode=bool(attrs.get("flags", 0) & 1))

    def config(self):
        return {"kernel_size": self.kernel_size, "stride": self.stride,
                "padding": self.padding, "ceil_mode": self.ceil_mode}

    def to_onnx(self, g, x, name):
        return g.node("MaxPool", [x], f"{name}.maxpool", **self._onnx_attrs())


class AvgPool2d(_Pool2d):
    """2-D average pooling over (C, H, W) samples, as ``torch.nn.AvgPool2d``.

    count_include_pad=True (default) divides by the window size including
    the zero padding (not what lies beyond it in ceil mode); False by the
    number of input elements the window covers. divisor_override: None only.
    """
    op = "avg_pool2d"

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        if divisor_override is not None:
            raise NotImplementedError("AvgPool2d: divisor_override is not supported")
        self._setup(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = bool(count_include_pad)

    def _args(self):
        return super()._args() + (self.count_include_pad,)

    def node_attrs(self):
        return dict(self._pool_attrs(), flags=(1 if self.ceil_mode else 0) |
                    (0 if self.count_include_pad else 2))

    @classmethod
    def from_node_attrs(cls, attrs, in_shape=None):
        f = attrs.get("flags", 0)
        return cls(tuple(attrs["kernel"]), tuple(attrs["stride"]),
                   tuple(attrs.get("padding", (0, 0))), ceil_mode=bool(f & 1),
                   count_include_pad=not f & 2)

    def config(self):
        return {"kernel_size": self.kernel_size, "stride": self.stride,
                "padding": self.padding, "ceil_mode": self.ceil_mode,
                "count_include_pad": self.count_include_pad}

    def to_onnx(self, g, x, name):
        return g.node("AveragePool", [x], f"{name}.avgpool",
                      count_include_pad=int(self.count_include_pad), **self._onnx_attrs())


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size (OH, OW), as
    ``torch.nn.AdaptiveAvgPool2d``: output i averages input rows
    [floor(i H / OH), ceil((i + 1) H / OH)) (columns likewise). ``1`` is
    global average pooling. None in output_size (keep that size) is not
    supported."""
    op = "adaptive_avg_pool2d"

    def __init__(self, output_size):
        self.output_size = _pair(output_size, "AdaptiveAvgPool2d", "output_size", 1)

    def node_attrs(self):
        return {"kernel": self.output_size}

    @classmethod
    def from_node_attrs(cls, attrs, in_shape=None):
        return cls(tuple(attrs["kernel"]))

    def config(self):
        return {"output_size": self.output_size}

    def output_shape(self, in_shape):
        if in_shape is None:
            return None
        if len(in_shape) != 3:
            raise ValueError(f"{self!r} expects a (C, H, W) input per sample, got "
                             f"{tuple(in_shape)}")
        return (in_shape[0],) + self.output_size

    def forward(self, x):
        shape = sample_shape(self, x)
        out = self.output_shape(shape)
        self._xin, self._x = x, as_batch(x, shape)
        self._y = y = self._buffer("y", (x.shape[0],) + out)
        self.backend.adaptive_avg_pool2d_forward(y, self._x)
        return like_input(y, x)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        dx = self._buffer("dx", self._x.shape)
        self.backend.adaptive_avg_pool2d_backward(dx, dy.reshape(self._y.shape), self._x,
                                                  self._y)
        return like_input(dx, self._xin)

    def to_onnx(self, g, x, name):
        shape = g.shapes[name]
        if self.output_size == (1, 1):
            return g.node("GlobalAveragePool", [x], f"{name}.gap")
        H, W = shape[1:]
        OH, OW = self.output_size
        if H % OH or W % OW:
            raise TypeError(f"cannot export {self!r} to ONNX for input {shape}: only output "
                            f"sizes that divide the input are exported (as AveragePool)")
        return g.node("AveragePool", [x], f"{name}.avgpool", kernel_shape=[H // OH, W // OW],
                      strides=[H // OH, W // OW])


class Flatten(Module):
    """Flattens per-sample dims start_dim.. into one, as ``torch.nn.Flatten``
    (start_dim=1: (N, C, H, W) -> (N, C*H*W), so that a Linear can follow).
    end_dim must be -1 (the last dim); start_dim 0 (the batch) is not supported."""
    op = "flatten"

    def __init__(self, start_dim=1, end_dim=-1):
        if not is_int(start_dim) or start_dim < 1:
            raise ValueError(f"Flatten: start_dim must be an int >= 1 (dim 0 is the batch), "
                             f"got {start_dim!r}")
        if end_dim != -1:
            raise NotImplementedError(f"Flatten: only end_dim=-1 is supported, got {end_dim!r}")
        self.start_dim, self.end_dim = int(start_dim), -1

    def node_attrs(self):
        return {"axis": self.start_dim}

    @classmethod
    def from_node_attrs(cls, attrs, in_shape=None):
        return cls(int(attrs.get("axis", 1)))

    def config(self):
        return {"start_dim": self.start_dim, "end_dim": self.end_dim}

    def output_shape(self, in_shape):
        if in_shape is None:
            return None
        in_shape = tuple(in_shape)
        k = self.start_dim - 1
        if k >= len(in_shape):
            raise ValueError(f"{self!r}: start_dim {self.start_dim} is out of range for "
                             f"per-sample shape {in_shape}")
        return in_shape[:k] + (int(np.prod(in_shape[k:])),)

    def forward(self, x):
        self._xshape = x.shape
        if x.ndim == 2:    # rows: already flat
            return x
        return x.reshape((x.shape[0],) + self.output_shape(x.shape[1:]))

    def backward(self, dy, need_dx=True):
        return dy.reshape(self._xshape) if need_dx else None

    def to_onnx(self, g, x, name):
        if self.start_dim == 1:
            return g.node("Flatten", [x], f"{name}.flatten", axis=1)
        out = self.output_shape(g.shapes[name])
        return g.node("Reshape", [x, g.const_int(f"{name}.shape", [0] + list(out))],
                      f"{name}.reshape")
