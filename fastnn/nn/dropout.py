"""Dropout (C op ``dropout``, csrc/dropout.c)."""
from ..checks import is_real
from .module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """Inverted dropout: in training y = x · m / (1 - p), m_i ~ Bernoulli(1 - p).

    The mask comes from the backend's stateless counter-based generator
    (``dropout_key(seed, layer index, step counter)``, csrc/dropout.c): it is
    reproducible from the model's seed, identical on both backends and in a
    fused C step. In eval mode (or with p = 0) the layer is the identity.
    Backward: dx = dy · m / (1 - p), with the forward's mask.
    """
    op = "dropout"

    def __init__(self, p=0.5):
        if not is_real(p) or not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout probability must be in [0, 1), got {p!r}")
        self.p = float(p)
        self._calls = 0

    def node_attrs(self):
        return {"p": self.p}

    @classmethod
    def from_node_attrs(cls, attrs, in_shape=None):
        return cls(float(attrs.get("p", 0.0)))

    def config(self):
        return {"p": self.p}

    def forward(self, x):
        self._active = self.training and self.p > 0
        if not self._active:
            return x
        if self._owner is not None:
            key_args = (self._owner.seed, self._index, self._owner._counter)
        else:
            self._calls += 1
            key_args = (0, 0, self._calls)
        self._key = self.backend.dropout_key(*key_args)
        y = self._buffer("y", x.shape)
        self.backend.dropout_forward(y, x, self.p, self._key)
        return y

    def backward(self, dy, need_dx=True):
        if not self._active:
            return dy
        dx = self._buffer("dx", dy.shape)
        self.backend.dropout_backward(dx, dy, self.p, self._key)
        return dx

    def to_onnx(self, g, x, name):
        return x     # the identity at inference: no node
