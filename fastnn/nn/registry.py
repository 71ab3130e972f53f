"""The registry of built-in layers: one place that maps names to classes.

Model files (C op names), ONNX export (each class's ``to_onnx``), the CLI and
the sklearn wrappers (activation names) all read it. A layer class is
registered once, here; its C side is its entry in csrc/ops.c.
"""
from .activation import GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .dropout import Dropout
from .linear import Linear

__all__ = ["LAYERS", "ACTIVATIONS", "layer_class", "is_builtin"]

#: C op name -> layer class, for every op of the C table that Python exposes
LAYERS = {cls.op: cls for cls in (Linear, ReLU, LeakyReLU, Sigmoid, Tanh, GELU, Softmax,
                                  Dropout)}

#: activation name (the CLI's --activation, sklearn's activation=) -> class
ACTIVATIONS = {name: cls for cls in LAYERS.values() for name in cls.names}


def layer_class(op):
    """The layer class of C op `op` (KeyError naming the known ops)."""
    try:
        return LAYERS[op]
    except KeyError:
        raise KeyError(f"unknown op {op!r}; known: {', '.join(LAYERS)}") from None


def is_builtin(layer):
    """True if `layer` is exactly a registered class (a user subclass is not:
    its forward may differ from the C op's)."""
    return LAYERS.get(type(layer).op) is type(layer)
