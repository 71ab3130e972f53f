"""ONNX export of a trained Sequential, for inference anywhere ONNX runs.

    model.to_onnx("model.onnx")                 # or fastnn.onnx.export(model, path)

    import onnxruntime as ort                   # later, without fastnn
    sess = ort.InferenceSession("model.onnx")
    logits = sess.run(None, {"input": X.astype(np.float32)})[0]

The graph is the inference (eval-mode) graph, one input ``input`` (N, IN)
and one output ``output`` (N, OUT), float32, with a dynamic batch dimension
N (``dim_param "N"``). Layer by layer:

    Linear      Gemm(x, W, b) = x · W + b   (W is stored (IN, OUT): transB = 0);
                MatMul(x, W) without bias
    ReLU        Relu;  LeakyReLU: LeakyRelu(alpha = negative_slope)
    Sigmoid     Sigmoid;  Tanh: Tanh;  Softmax: Softmax(axis = -1)
    GELU        opset >= 20: Gelu(approximate = "tanh"); before that the same
                formula from primitive ops,
                0.5 · x · (1 + Tanh(sqrt(2/π) · (x + 0.044715 · x³)))
    Dropout     omitted (the identity at inference)
    Conv1d/Conv2d   Conv (pads, strides, dilations, group; weight as torch's)
    MaxPool2d   MaxPool;  AvgPool2d: AveragePool (pads, ceil_mode, count_include_pad)
    AdaptiveAvgPool2d   GlobalAveragePool for output 1, else AveragePool when the
                output size divides the input
    Flatten     Flatten(axis = 1) (Reshape for start_dim > 1)
    BatchNorm1d/2d  BatchNormalization with the running statistics (eval mode)
    LayerNorm   LayerNormalization (opset >= 17)

A model whose per-sample input is (C, H, W) takes ``input`` as (N, C, H, W);
the output is (N, *output shape).

Any other layer type raises TypeError naming it. The ``onnx`` package
(``pip install fastnn[onnx]``) is imported on the first export only;
``import fastnn`` never imports it.
"""
import math

import numpy as np

__all__ = ["export", "DEFAULT_OPSET", "MIN_OPSET"]

DEFAULT_OPSET = 17   # onnxruntime >= 1.13 runs it
MIN_OPSET = 13       # Softmax(axis=-1) over one axis, as fastnn's


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install 'fastnn[onnx]' "
                          "(or pip install onnx onnxruntime)") from None
    return onnx


class _Graph:
    """Accumulates nodes and initializers with unique tensor names."""

    def __init__(self, onnx, opset, shapes=None):
        self.onnx, self.opset, self.nodes, self.inits, self._n = onnx, opset, [], [], 0
        self.shapes = shapes or {}     # layer name -> its per-sample input shape

    def const_int(self, hint, values):
        """An int64 initializer (shapes for Reshape)."""
        name = self.name(hint)
        self.inits.append(self.onnx.numpy_helper.from_array(
            np.asarray(values, dtype=np.int64), name))
        return name

    def name(self, hint):
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, hint, value):
        name = self.name(hint)
        self.inits.append(self.onnx.numpy_helper.from_array(
            np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    def node(self, op, inputs, hint, **attrs):
        out = self.name(hint)
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


    def gelu_primitive(self, x, hint):
        """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) from Mul/Add/Tanh."""
        return _gelu_primitive(self, x, hint)


def _gelu_primitive(g, x, hint):
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) from Mul/Add/Tanh."""
    x3 = g.node("Mul", [g.node("Mul", [x, x], hint + "_x2"), x], hint + "_x3")
    inner = g.node("Add", [x, g.node("Mul", [g.const("gelu_k1", 0.044715), x3], hint + "_kx3")],
                   hint + "_inner")
    t = g.node("Tanh", [g.node("Mul", [g.const("gelu_k0", math.sqrt(2.0 / math.pi)), inner],
                               hint + "_u")], hint + "_tanh")
    half_x = g.node("Mul", [g.const("half", 0.5), x], hint + "_halfx")
    return g.node("Mul", [half_x, g.node("Add", [g.const("one", 1.0), t], hint + "_1pt")],
                  hint + "_gelu")


def _dims(shape, width):
    """The per-sample dims of a graph input or output (1-D: the feature count)."""
    return list(shape) if shape is not None and len(shape) > 1 else [width]


def export(model, path=None, opset=DEFAULT_OPSET):
    """Write `model` (a Sequential) as an ONNX inference graph; return the ModelProto.

    Args:
        model: a fastnn Sequential of built-in layers (see the module doc).
        path: file to write (str or path-like); None only builds the model.
        opset (int): ONNX opset version, from 13 to the installed onnx's
            newest (default 17). With opset >= 20 GELU is the Gelu op.

    Raises:
        TypeError: a layer that cannot be exported (named in the message).
        ImportError: the onnx package is not installed.

    The graph is checked with ``onnx.checker`` before it is written.
    """
    from . import __version__
    from .nn import Sequential, registry
    if not isinstance(model, Sequential):
        raise TypeError(f"export needs a fastnn Sequential, got {type(model).__name__}")
    for i, layer in enumerate(model.layers):
        if not registry.is_builtin(layer) or not hasattr(layer, "to_onnx"):
            names = ", ".join(c.__name__ for c in registry.LAYERS.values() if hasattr(c, "to_onnx"))
            raise TypeError(f"cannot export layer {i} {layer!r} ({type(layer).__name__}) to "
                            f"ONNX: exportable layers are {names}")
    onnx = _import_onnx()
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be an integer from {MIN_OPSET} to {newest} (the newest "
                         f"this onnx {onnx.__version__} knows), got {opset!r}")
    helper = onnx.helper
    g = _Graph(onnx, opset, {str(i): tuple(model._shapes[i]) for i in range(len(model.layers))
                             if model._shapes[i] is not None})
    x = "input"
    for i, layer in enumerate(model.layers):      # each layer writes its own nodes
        x = layer.to_onnx(g, x, str(i))
    if not g.nodes:   # only Dropout layers
        x = g.node("Identity", [x], "identity")
    g.nodes[-1].output[0] = "output"
    g.nodes[-1].name = "output"
    f = onnx.TensorProto.FLOAT
    graph = helper.make_graph(
        g.nodes, "fastnn_sequential",
        [helper.make_tensor_value_info("input", f, ["N", *_dims(model.input_shape,
                                                               model.in_features)])],
        [helper.make_tensor_value_info("output", f, ["N", *_dims(model._shapes[-1],
                                                                model.out_features_)])],
        initializer=g.inits)
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="fastnn",
                              producer_version=__version__,
                              doc_string=repr(model).split("\n)")[0] + "\n)")
    proto.ir_version = helper.find_min_ir_version_for(opsets)
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        onnx.save(proto, path)
    return proto
