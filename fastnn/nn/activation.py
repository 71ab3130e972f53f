"""Activations: elementwise (and row-wise softmax) layers without parameters.

Each is one entry of the C op table (csrc/ops.c) and calls
``backend.<op>_forward(y, x, *scalars)`` / ``backend.<op>_backward(dx, dy, x, y,
*scalars)`` layer by layer.
"""
import math
from ..checks import is_real
from .module import Module

__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Softmax"]


class _Activation(Module):
    """y = f(x), dx = dy · f'(x): shape in = shape out."""

    def _scalars(self):
        return ()

    def forward(self, x):
        self._x = x
        self._y = y = self._buffer("y", x.shape)
        getattr(self.backend, self.op + "_forward")(y, x, *self._scalars())
        return y

    def backward(self, dy, need_dx=True):
        dx = self._buffer("dx", dy.shape)
        getattr(self.backend, self.op + "_backward")(dx, dy, self._x, self._y, *self._scalars())
        return dx

    @classmethod
    def from_node_attrs(cls, attrs, in_shape=None):
        return cls()

    def to_onnx(self, g, x, name):
        return g.node(self.onnx_op, [x], f"{name}.{self.op}")


class ReLU(_Activation):
    """ReLU: f(x) = max(x, 0); f'(x) = 1 if x > 0 else 0."""
    op, names, he_before, onnx_op = "relu", ("relu",), True, "Relu"


class LeakyReLU(_Activation):
    """LeakyReLU: f(x) = x if x > 0 else negative_slope · x (PyTorch default 0.01)."""
    op, names, he_before = "leaky_relu", ("leaky_relu",), True

    def __init__(self, negative_slope=0.01):
        if not is_real(negative_slope) or not math.isfinite(negative_slope):
            raise ValueError(f"LeakyReLU: negative_slope must be a finite real number, "
                             f"got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def _scalars(self):
        return (self.negative_slope,)

    def node_attrs(self):
        return {"slope": self.negative_slope}

    @classmethod
    def from_node_attrs(cls, attrs, in_shape=None):
        return cls(float(attrs.get("slope", 0.0)))

    def config(self):
        return {"negative_slope": self.negative_slope}

    def to_onnx(self, g, x, name):
        return g.node("LeakyRelu", [x], f"{name}.leaky_relu", alpha=self.negative_slope)


class Sigmoid(_Activation):
    """Sigmoid: f(x) = 1 / (1 + e^-x); f'(x) = f(x)(1 - f(x))."""
    op, names, onnx_op = "sigmoid", ("sigmoid", "logistic"), "Sigmoid"


class Tanh(_Activation):
    """Tanh: f(x) = tanh(x); f'(x) = 1 - tanh(x)²."""
    op, names, onnx_op = "tanh", ("tanh",), "Tanh"


class GELU(_Activation):
    """GELU, tanh approximation (PyTorch ``approximate='tanh'``):
    f(x) = ½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))."""
    op, names, he_before = "gelu", ("gelu",), True

    def to_onnx(self, g, x, name):
        if g.opset >= 20:
            return g.node("Gelu", [x], f"{name}.gelu", approximate="tanh")
        return g.gelu_primitive(x, name)


class Softmax(_Activation):
    """Softmax over the last dimension: y_ij = exp(x_ij) / Σ_k exp(x_ik) (max-subtracted).

    Backward: dx_ij = y_ij (dy_ij - Σ_k dy_ik y_ik). Do not put it before
    CrossEntropyLoss, which takes logits and applies log-softmax itself.
    """
    op = "softmax"

    def node_attrs(self):
        return {"axis": -1}

    def to_onnx(self, g, x, name):
        return g.node("Softmax", [x], f"{name}.softmax", axis=-1)
