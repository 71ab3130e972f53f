"""Conv2d and Conv1d (C ops ``conv2d``, ``conv1d``; kernels in csrc/conv.c).

PyTorch's names, arguments, defaults and semantics (cross-correlation, NCHW /
NCL layout, per-sample input (C, H, W) / (C, L)): weight (out_channels,
in_channels / groups, *kernel_size) and bias (out_channels), both initialised
as PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in =
in_channels / groups * prod(kernel_size) (the counter-based draws of
csrc/ops.c; fastnn/reference/init.py). padding: an int, a tuple, 'valid'
(0) or 'same' (stride 1 only; an odd total puts the extra zero at the
bottom / right, as PyTorch). padding_mode: 'zeros' only.
"""
import numpy as np

from ..checks import is_int
from ..reference.conv import conv_out_size
from ..reference.init import conv_init
from ._shapes import as_batch, like_input, sample_shape
from .module import Module, check_dtype

__all__ = ["Conv1d", "Conv2d"]


def _ints(v, nd, who, name, minimum):
    vals = tuple(v) if isinstance(v, (tuple, list)) else (v,) * nd
    if len(vals) != nd or not all(is_int(u) and u >= minimum for u in vals):
        raise ValueError(f"{who}: {name} must be an int >= {minimum} or a tuple of {nd} of "
                         f"them, got {v!r}")
    return tuple(int(u) for u in vals)


class _ConvNd(Module):
    """Common part of Conv1d and Conv2d (nd spatial dims)."""
    nd = 2
    _param_names = ("weight", "bias")
    _layout = "(C, H, W)"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", device=None,
                 dtype=None, seed=None):
        who, nd = type(self).__name__, self.nd
        check_dtype(dtype, who)
        if device not in (None, "cpu"):
            raise ValueError(f"{who}: device must be None or 'cpu', got {device!r}")
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("groups", groups)):
            if not is_int(v) or v < 1:
                raise ValueError(f"{who}: {name} must be a positive integer, got {v!r}")
        if in_channels % groups:
            raise ValueError(f"{who}: in_channels ({in_channels}) must be divisible by groups "
                             f"({groups})")
        if out_channels % groups:
            raise ValueError(f"{who}: out_channels ({out_channels}) must be divisible by "
                             f"groups ({groups})")
        if padding_mode in ("reflect", "replicate", "circular"):
            raise NotImplementedError(f"{who}: padding_mode={padding_mode!r} is not supported "
                                      f"(only 'zeros')")
        if padding_mode != "zeros":
            raise ValueError(f"{who}: padding_mode must be 'zeros', 'reflect', 'replicate' or "
                             f"'circular' (only 'zeros' is supported), got {padding_mode!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.groups = int(groups)
        self.kernel_size = _ints(kernel_size, nd, who, "kernel_size", 1)
        self.stride = _ints(stride, nd, who, "stride", 1)
        self.dilation = _ints(dilation, nd, who, "dilation", 1)
        self.padding_mode = padding_mode
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{who}: padding must be an int, a tuple, 'same' or 'valid', "
                                 f"got {padding!r}")
            if padding == "same" and self.stride != (1,) * nd:
                raise ValueError(f"{who}: padding='same' is not supported for strided "
                                 f"convolutions (stride={self.stride})")
            self.padding = padding
            if padding == "valid":
                self._pads = ((0, 0),) * nd
            else:
                tot = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
                self._pads = tuple((t // 2, t - t // 2) for t in tot)
        else:
            self.padding = _ints(padding, nd, who, "padding", 0)
            self._pads = tuple((p, p) for p in self.padding)
        self.bias_enabled = bool(bias)
        if not self.bias_enabled:
            self.bias = None
        self.seed = seed

    # ------------------------------------------------------------ the node
    def node_attrs(self):
        pad = tuple(p[0] for p in self._pads)
        flags = sum(1 << d for d, (a, b) in enumerate(self._pads) if b > a)
        ext = (1,) * (2 - self.nd)
        return {"units": self.out_channels, "kernel": self.kernel_size + ext,
                "stride": self.stride + ext, "padding": pad + (0,) * (2 - self.nd),
                "dilation": self.dilation + ext, "groups": self.groups,
                "bias": int(self.bias_enabled), "flags": flags}

    @classmethod
    def from_node_attrs(cls, attrs, in_shape=None):
        nd = cls.nd
        pick = (lambda v: tuple(v)[:nd])
        padding = "same" if attrs.get("flags", 0) else pick(attrs.get("padding", (0, 0)))
        return cls(in_shape[0], attrs["units"], pick(attrs["kernel"]), pick(attrs["stride"]),
                   padding, pick(attrs.get("dilation", (1, 1))), attrs.get("groups", 1),
                   bias=bool(attrs.get("bias", 0)))

    def config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride,
                "padding": self.padding, "dilation": self.dilation, "groups": self.groups,
                "bias": self.bias_enabled, "padding_mode": self.padding_mode}

    def output_shape(self, in_shape):
        if in_shape is None:
            return None
        in_shape, nd = tuple(in_shape), self.nd
        if len(in_shape) != nd + 1:
            raise ValueError(f"{self!r} expects a {self._layout} input per sample, got "
                             f"{in_shape}")
        if in_shape[0] != self.in_channels:
            raise ValueError(f"{self!r} expects {self.in_channels} input channels, got "
                             f"per-sample input {in_shape}")
        o = tuple(conv_out_size(in_shape[1 + d], self.kernel_size[d], self.stride[d],
                                self.dilation[d], *self._pads[d]) for d in range(nd))
        if min(o) < 1:
            raise ValueError(f"{self!r}: the kernel {self.kernel_size} (dilation "
                             f"{self.dilation}) is larger than the padded input {in_shape} "
                             f"(padding {[list(p) for p in self._pads]})")
        return (self.out_channels,) + o

    def param_shapes(self, in_shape=None):
        shapes = [("weight", (self.out_channels, self.in_channels // self.groups) +
                   self.kernel_size)]
        return shapes + [("bias", (self.out_channels,))] if self.bias_enabled else shapes

    def init_params(self, flat, seed, index, next_layer):
        fan_in = self.in_channels // self.groups * int(np.prod(self.kernel_size))
        conv_init(flat, fan_in, self.out_channels * fan_in,
                  self.out_channels if self.bias_enabled else 0, seed, index)

    # ------------------------------------------------------------- running
    def _args(self):
        return (self.stride, self._pads, self.dilation, self.groups)

    def forward(self, x):
        self._standalone()
        if self._owner is None and x.ndim != self.nd + 2:
            raise ValueError(f"{self!r} expects a batch (N, *{self._layout}), got shape "
                             f"{x.shape}")
        shape = sample_shape(self, x)
        out = self.output_shape(shape)
        self._xin = x
        self._x = as_batch(x, shape)
        y = self._buffer("y", (x.shape[0],) + out)
        getattr(self.backend, self.op + "_forward")(
            y, self._x, self.weight.data, None if self.bias is None else self.bias.data,
            *self._args())
        self._yshape = y.shape
        return like_input(y, x)

    def backward(self, dy, need_dx=True):
        dx = self._buffer("dx", self._x.shape) if need_dx else None
        getattr(self.backend, self.op + "_backward")(
            dx, self.weight.grad, None if self.bias is None else self.bias.grad,
            np.ascontiguousarray(dy).reshape(self._yshape), self._x, self.weight.data,
            *self._args())
        return None if dx is None else like_input(dx, self._xin)

    def to_onnx(self, g, x, name):
        inputs = [x, g.const(f"{name}.weight", self.weight.data)]
        if self.bias is not None:
            inputs.append(g.const(f"{name}.bias", self.bias.data))
        pads = [p[0] for p in self._pads] + [p[1] for p in self._pads]
        return g.node("Conv", inputs, f"{name}.conv", kernel_shape=list(self.kernel_size),
                      strides=list(self.stride), pads=pads, dilations=list(self.dilation),
                      group=self.groups)

    def __repr__(self):
        k = self.kernel_size[0] if len(set(self.kernel_size)) == 1 else self.kernel_size
        extra = f", kernel_size={k}"
        if self.stride != (1,) * self.nd:
            extra += f", stride={self.stride}"
        if self.padding != (0,) * self.nd:
            extra += f", padding={self.padding!r}"
        if self.dilation != (1,) * self.nd:
            extra += f", dilation={self.dilation}"
        if self.groups != 1:
            extra += f", groups={self.groups}"
        if not self.bias_enabled:
            extra += ", bias=False"
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}{extra})"


class Conv2d(_ConvNd):
    """2-D convolution over (C, H, W) samples, as ``torch.nn.Conv2d``.

    Shape: (N, C, H, W) -> (N, O, OH, OW), OH = (H + pad_top + pad_bottom -
    dilation (KH - 1) - 1) // stride + 1 (OW likewise). groups=in_channels
    is a depthwise convolution.
    """
    op = "conv2d"
    nd = 2
    _layout = "(C, H, W)"


class Conv1d(_ConvNd):
    """1-D convolution over (C, L) samples, as ``torch.nn.Conv1d``."""
    op = "conv1d"
    nd = 1
    _layout = "(C, L)"
