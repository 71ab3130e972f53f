"""The registry of built-in layers: one place that maps names to classes.

Model files (C op names), ONNX export (each class's ``to_onnx``), the CLI and
the sklearn wrappers (activation names) all read it. A layer class is
registered once, here; its C side is its entry in csrc/ops.c.
"""
from .activation import GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .conv import Conv1d, Conv2d
from .dropout import Dropout
from .linear import Linear
from .norm import BatchNorm1d, BatchNorm2d, LayerNorm
from .pool import AdaptiveAvgPool2d, AvgPool2d, Flatten, MaxPool2d

__all__ = ["LAYERS", "ACTIVATIONS", "layer_class", "is_builtin"]

#: C op name -> layer class, for every op of the C table that Python exposes
LAYERS = {cls.op: cls for cls in (Linear, ReLU, LeakyReLU, Sigmoid, Tanh, GELU, Softmax,
                                  Dropout)}
LAYERS["max_pool2d"] = MaxPool2d
LAYERS["avg_pool2d"] = AvgPool2d
LAYERS["adaptive_avg_pool2d"] = AdaptiveAvgPool2d
LAYERS["flatten"] = Flatten
LAYERS["batch_norm"] = BatchNorm2d   # one C op for both: the file's shape picks (layer_class)
LAYERS["layer_norm"] = LayerNorm
LAYERS["conv2d"] = Conv2d
LAYERS["conv1d"] = Conv1d

#: classes that share a C op with the one LAYERS names (is_builtin accepts them)
ALIASES = {BatchNorm1d: "batch_norm"}

#: activation name (the CLI's --activation, sklearn's activation=) -> class
ACTIVATIONS = {name: cls for cls in LAYERS.values() for name in cls.names}


def layer_class(op, in_shape=None):
    """The layer class of C op `op` (KeyError naming the known ops); batch_norm on a
    (C,) or (C, L) input is BatchNorm1d."""
    if op == "batch_norm" and in_shape is not None and len(in_shape) < 3:
        return BatchNorm1d
    try:
        return LAYERS[op]
    except KeyError:
        raise KeyError(f"unknown op {op!r}; known: {', '.join(LAYERS)}") from None


def is_builtin(layer):
    """True if `layer` is exactly a registered class (a user subclass is not:
    its forward may differ from the C op's)."""
    return LAYERS.get(type(layer).op) is type(layer) or type(layer) in ALIASES
