"""Linear: the fully connected layer (C op ``linear``, csrc/dense.c)."""

from ..checks import is_int
from ..reference.init import linear_init
from .module import Module

__all__ = ["Linear"]

_INIT = {"auto": 0, "he": 1, "xavier": 2}


def _positive_int(v, who, name):
    if not is_int(v) or v < 1:
        raise ValueError(f"{who}: {name} must be a positive integer, got {v!r}")
    return int(v)


class Linear(Module):
    """Fully connected layer: ``y = x · W + b``.

    Args:
        in_features (IN), out_features (OUT): sizes.
        bias: learn an additive bias b (OUT); default True.
        init: "auto" (He before a ReLU-family activation, else Xavier; decided
            from the next layer), "he" or "xavier".
        seed: for a layer used on its own, the seed of its initial weights
            (inside a Sequential the model's seed decides).

    Shape: x (N, IN) -> y (N, OUT). W is stored (IN, OUT) -- the transpose of
    PyTorch's -- so forward is one GEMM without a transpose.

    Initialisation (biases start at 0), from the counter-based draws of
    csrc/ops.c (the same bits on both backends):
        He (Kaiming) uniform:  W ~ U(-a, a), a = sqrt(6 / IN)
        Xavier (Glorot) uniform: W ~ U(-a, a), a = sqrt(6 / (IN + OUT))

    Backward: dx = dy · Wᵀ, dW += xᵀ · dy, db += Σ_rows dy.
    """
    op = "linear"
    _param_names = ("weight", "bias")

    def __init__(self, in_features, out_features, bias=True, init="auto", seed=None):
        self.in_features = _positive_int(in_features, "Linear", "in_features")
        self.out_features = _positive_int(out_features, "Linear", "out_features")
        if init not in _INIT:
            raise ValueError(f"Linear: init must be 'auto', 'he' or 'xavier', got {init!r}")
        self.bias_enabled, self.init = bool(bias), init
        if not self.bias_enabled:
            self.bias = None          # as in PyTorch; weight appears on first use
        self.seed = seed

    def node_attrs(self):
        return {"units": self.out_features, "bias": int(self.bias_enabled),
                "init": _INIT[self.init]}

    @classmethod
    def from_node_attrs(cls, attrs, in_shape=None):
        init = {v: k for k, v in _INIT.items()}.get(attrs.get("init", 0), "auto")
        return cls(in_shape[0], attrs["units"], bias=bool(attrs.get("bias", 0)), init=init)

    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.bias_enabled, "init": self.init}

    def input_size(self):
        return (self.in_features,)

    def output_shape(self, in_shape):
        return (self.out_features,)

    def param_shapes(self, in_shape=None):
        shapes = [("weight", (self.in_features, self.out_features))]
        return shapes + [("bias", (self.out_features,))] if self.bias_enabled else shapes

    def init_params(self, flat, seed, index, next_layer):
        he = self.init == "he" or (self.init == "auto" and getattr(next_layer, "he_before", False))
        linear_init(flat, self.in_features, self.out_features, self.bias_enabled, he, seed, index)

    def forward(self, x):
        self._standalone()
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"{self!r} expects {self.in_features} features, got "
                             f"{x.shape[1] if x.ndim == 2 else x.shape}")
        self._x = x
        y = self._buffer("y", (x.shape[0], self.out_features))
        self.backend.dense_forward(y, x, self.weight.data,
                                   None if self.bias is None else self.bias.data)
        return y

    def backward(self, dy, need_dx=True):
        dx = self._buffer("dx", self._x.shape) if need_dx else None
        self.backend.dense_backward(dx, self.weight.grad,
                                    None if self.bias is None else self.bias.grad,
                                    dy, self._x, self.weight.data)
        return dx

    def to_onnx(self, g, x, name):
        w = g.const(f"{name}.weight", self.weight.data)    # (IN, OUT)
        if self.bias is not None:
            return g.node("Gemm", [x, w, g.const(f"{name}.bias", self.bias.data)], f"{name}.gemm")
        return g.node("MatMul", [x, w], f"{name}.matmul")

    def __repr__(self):
        extra = "" if self.bias_enabled else ", bias=False"
        extra += "" if self.init == "auto" else f", init={self.init!r}"
        return f"Linear({self.in_features}→{self.out_features}{extra})"
