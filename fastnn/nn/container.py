"""Sequential: a chain of layers over flat parameter, gradient and buffer arrays.

Size letters: N batch rows, P parameters, B non-trainable buffer floats.

Memory layout (after llm.c): a Sequential owns ONE contiguous float32 buffer
of all its parameters (``flat_params``, P floats), one of their gradients
(``flat_grads``) and one of its non-trainable buffers (``flat_buffers``, B
floats: running statistics). Each layer's ``weight``/``bias`` is a view into
them, in layer order, each layer's parameters in its ``param_shapes`` order.

With the C backend and built-in layers the model IS a C ``fnn_model``
(``fastnn._core.Model``, csrc/model.c): the flat arrays are views of its
memory, it initialises them from the seed, and ``train_step``/``fit`` run
each step -- forward, loss, backward, update -- as ONE C call, ``predict``
each batch as one C call. Otherwise (the NumPy backend, a user layer) the
layers run one by one through their backend's kernels; both paths call the
same kernels in the same order and give the same bits.
"""
import io
import json
import threading

import numpy as np

from .. import fileformat, training
from .._backend import get_backend
from ..checks import check_X, is_int
from . import registry
from .module import Module, check_dtype, float64_unsupported

__all__ = ["Sequential", "param_layout"]


def param_layout(layers, input_shape=None, kind="param_shapes"):
    """The flat-buffer layout: [(layer_index, name, offset, shape), ...] and P.

    Parameters are packed in layer order, each layer's in ``param_shapes()``
    order, with no padding: the C model's layout (csrc/model.c) as well.
    ``kind="buffer_shapes"`` gives the layout of the non-trainable buffers.
    """
    layout, offset, shape = [], 0, input_shape
    for i, layer in enumerate(layers):
        shape = layer.input_size() or shape
        for name, pshape in getattr(layer, kind)(shape):
            layout.append((i, name, offset, tuple(pshape)))
            offset += int(np.prod(pshape))
        shape = layer.output_shape(shape) if shape is not None else None
    return layout, offset


def _same_spec(a, b):
    """Loss specs equal, arrays (class weights) by value: the C model keeps a copy,
    so weights changed in place must rebind it. (A plain loop: it runs every step.)"""
    if a is None or b is None or len(a) != len(b):
        return False
    for u, v in zip(a, b):
        if u is v:              # names and scalars (arrays are never: bound holds a copy)
            continue
        if type(u) is np.ndarray or type(v) is np.ndarray:
            if not np.array_equal(u, v):
                return False
        elif u != v:
            return False
    return True


def _nonzero(attrs):
    """The attributes that are set (a file's node records every field, 0 when unused)."""
    return {k: (tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in attrs.items()
            if v and (not isinstance(v, (list, tuple)) or any(v))}


def _classes_to_json(classes):
    """fit's class labels as JSON: {"dtype": "str"|"int"|..., "values": [...]}; labels
    other than str/int/float/bool cannot be saved (TypeError)."""
    values = []
    for c in classes.tolist():
        if not isinstance(c, (str, int, float, bool)):
            raise TypeError(f"cannot save class label {c!r} of type {type(c).__name__}: "
                            "only str, int, float and bool labels are saved with a model")
        values.append(c)
    return {"dtype": "object" if classes.dtype == object else "array", "values": values}


def _classes_from_json(d):
    values = d["values"]
    if not isinstance(values, list):
        raise ValueError("values must be a list")
    if d["dtype"] == "object":
        out = np.empty(len(values), object)
        for i, v in enumerate(values):
            out[i] = v
        return out
    return np.asarray(values)


def _rebuild(layer_states, seed, backend, input_shape, params, buffers, state):
    """Unpickle: the same architecture, then the saved arrays and settings."""
    layers = []
    for cls, layer_state in layer_states:
        layer = cls.__new__(cls)
        layer.__setstate__(layer_state)
        layers.append(layer)
    model = Sequential(*layers, seed=seed, backend=backend, input_shape=input_shape)
    model.flat_params[...] = params
    model.flat_buffers[...] = buffers
    model.__dict__.update(state)
    return model


class Sequential(training.Trainable, Module):
    """A stack of layers applied in order, with flat parameter/gradient buffers.

    Args:
        *layers: Module instances (each may belong to one Sequential only).
        seed: an int that seeds initialisation, dropout masks and (when
            ``fit`` gets no seed) shuffling -- same seed, same run, bitwise.
            None draws one at random (kept in ``model.seed``).
        backend: "c" (default), "numpy" or a backend module.
        input_shape: the per-sample input shape, e.g. ``(64,)`` (or 64); by
            default the first Linear's ``(in_features,)``.
        dtype: None or float32; float64 raises NotImplementedError (why: see
            fastnn/nn/module.py float64_unsupported).

    Set ``model.fused = False`` to run layer by layer instead of one C call
    per step (same results).

    Example::

        model = Sequential(Linear(64, 128), ReLU(), Linear(128, 10), seed=0)
        history = model.fit(X, y, loss=CrossEntropyLoss(), optimizer=Adam(model.parameters()))
    """
    def __init__(self, *layers, seed=0, backend=None, input_shape=None, dtype=None):
        check_dtype(dtype, "Sequential")
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module) or isinstance(layer, Sequential):
                raise TypeError(f"layer {i} must be a fastnn layer, got {type(layer).__name__}")
            if layer._owner is not None or layers.index(layer) != i:
                raise ValueError(f"layer {i} {layer!r} already belongs to a Sequential; "
                                 "create a new layer (weight sharing is not supported)")
        self.layers = list(layers)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % 2**63)
        if not is_int(seed) or not 0 <= seed < 2**64:
            raise ValueError(f"seed must be an integer in [0, 2**64) or None, got {seed!r}")
        self.seed = int(seed)
        self._counter = 0      # training-mode forward passes (dropout keys)
        self._backend = get_backend(backend)
        self.stop_training = False
        if is_int(input_shape):
            input_shape = (input_shape,)
        self._shapes = self._check_chain(None if input_shape is None else tuple(input_shape))
        self._rng = np.random.default_rng(self.seed)
        self.loss = None
        self.metadata = None
        self.fused = True      # use the one-call C step/forward when possible
        self._bound = None     # (loss, optimizer, hyperparameters, loss spec)
        self._tls = threading.local()   # per-thread workspaces (see _workspace)
        self._lock = threading.RLock()  # layer-by-layer inference: shared buffers and mode
        self._allocate()
        self._layer_mode_changed()

    # ------------------------------------------------------------- layout
    def _check_chain(self, input_shape):
        """Per-sample shapes of every slot: [input, out_0, ..., out_last]
        (None where unknown); checks that consecutive layers fit."""
        shapes, shape, first = [None], input_shape, None
        for i, layer in enumerate(self.layers):
            need = layer.input_size()
            if need is not None:
                if shape is not None and tuple(shape) != tuple(need):
                    got = shape[0] if len(shape) == 1 else shape
                    raise ValueError(f"layer {i} {layer!r} expects {need[0]} inputs but the "
                                     f"previous layer outputs {got}")
                if first is None and shape is None:
                    first = tuple(need)   # the layers before it keep their input's shape
                shape = tuple(need)
            shapes.append(None if shape is None else tuple(layer.output_shape(shape)))
            shape = shapes[-1]
        self.input_shape = input_shape if input_shape is not None else first
        shapes[0] = self.input_shape
        if input_shape is None and first is not None:   # fill the shapes before it
            for k in range(1, len(shapes)):
                if shapes[k] is None:
                    shapes[k] = first
                else:
                    break
        self.in_features = None if self.input_shape is None else int(np.prod(self.input_shape))
        out = shapes[-1]
        self.out_features_ = None if out is None else int(np.prod(out))
        return shapes

    def _nodes(self):
        """(op, attrs) of every layer, or None if some layer is not a built-in."""
        if not all(registry.is_builtin(layer) for layer in self.layers):
            return None
        return [(layer.op, layer.node_attrs()) for layer in self.layers]

    def _allocate(self):
        layout, P = param_layout(self.layers, self.input_shape)
        blayout, B = param_layout(self.layers, self.input_shape, "buffer_shapes")
        nodes = self._nodes()
        self._cmodel = None
        if getattr(self._backend, "Model", None) is not None and nodes is not None \
                and self.input_shape is not None:
            cm = self._cmodel = self._backend.Model(self.input_shape, nodes, self.seed)
            self.flat_params, self.flat_grads = cm.params, cm.grads
            self.flat_buffers = cm.buffers
            for i in range(len(self.layers)):
                if cm.node_info(i)["out_shape"] != self._shapes[i + 1]:
                    raise RuntimeError(f"layer {i}: the C model's shape differs")
        else:
            self.flat_params = np.zeros(P, np.float32)
            self.flat_grads = np.zeros(P, np.float32)
            self.flat_buffers = np.zeros(B, np.float32)
        if self.flat_params.size != P or self.flat_buffers.size != B:
            raise RuntimeError(f"the C model has {self.flat_params.size} parameters and "
                               f"{self.flat_buffers.size} buffer values, the Python layout "
                               f"{P} and {B}")
        offsets, boffsets = {}, {}
        for i, name, off, shape in layout:
            offsets.setdefault(i, off)
        for i, name, off, shape in blayout:
            boffsets.setdefault(i, off)
        self._params = []
        for i, layer in enumerate(self.layers):
            # a layer that ran on its own keeps its values (as in PyTorch): copied
            # into the model's buffers below, over the model's initialisation
            kept = layer.state_dict() if layer.__dict__.get("_flat") is not None else None
            layer._owner, layer._index, layer._backend = self, i, self._backend
            for k in ("_flat", "_flat_grad", "_flat_buffers"):
                layer.__dict__.pop(k, None)
            if i in offsets:
                layer._attach(self.flat_params, self.flat_grads, offsets[i], self._backend,
                              self, prefix=f"{i}.")
                if self._cmodel is None:
                    size = sum(int(np.prod(s)) for _, s in layer.param_shapes(self._shapes[i]))
                    nxt = self.layers[i + 1] if i + 1 < len(self.layers) else None
                    layer.init_params(self.flat_params[offsets[i]:offsets[i] + size],
                                      self.seed, i, nxt)
                self._params += layer.parameters()
            if i in boffsets:
                layer._attach_buffers(self.flat_buffers, boffsets[i], prefix=f"{i}.")
                if self._cmodel is None:
                    size = sum(int(np.prod(s)) for _, s in layer.buffer_shapes(self._shapes[i]))
                    layer.init_buffers(self.flat_buffers[boffsets[i]:boffsets[i] + size])
            if kept is not None:
                layer.load_state_dict(kept)

    # ---------------------------------------------------------------- basics
    def parameters(self):
        """The Parameters, in flat-buffer order."""
        return list(self._params)

    def named_parameters(self, prefix=""):
        """[("0.weight", Parameter), ...] in flat-buffer order."""
        return [(prefix + p.name, p) for p in self._params]

    def named_buffers(self, prefix=""):
        """[("3.running_mean", array), ...]: views of ``flat_buffers``, in order."""
        return [(prefix + f"{i}." + n, a) for i, layer in enumerate(self.layers)
                for n, a in layer.named_buffers()]

    @property
    def num_parameters(self):
        return int(self.flat_params.size)

    def train(self, mode=True):
        self.training = bool(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def _layer_mode_changed(self):
        """A layer's train()/eval() was called: the C step, which runs every node in
        training mode, is used only while every layer is in training mode."""
        self._layers_training = all(layer.training for layer in self.layers)

    def zero_grad(self):
        """Set every gradient to 0 (one fill over the flat gradient buffer)."""
        self.flat_grads.fill(0.0)

    def requires_grad_(self, requires_grad=True):
        """Freeze (False) or unfreeze every parameter; returns self (PyTorch)."""
        for p in self._params:
            p.requires_grad = requires_grad
        return self

    def double(self):
        float64_unsupported("Sequential.double()")

    def output_shape(self, in_shape=None):
        return self._shapes[-1]

    def input_size(self):
        return self.input_shape

    def _forward(self, x):
        if self.training:
            self._counter += 1
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def forward(self, x):
        """Outputs for x (N, IN). The result is a read-only view of an internal
        buffer, valid until the next forward at the same batch size."""
        out = self._forward(check_X(training.as_rows(self, x), finite=False)).view()
        out.flags.writeable = False
        return out

    def backward(self, dout):
        """Backpropagate d(loss)/d(output) (N, OUT); ACCUMULATES into the gradients."""
        dout = np.ascontiguousarray(dout, dtype=np.float32)
        for i in range(len(self.layers) - 1, -1, -1):
            dout = self.layers[i].backward(dout, need_dx=i > 0)

    def train_step(self, x, y, loss_fn, optimizer, sample_weight=None):
        """One step: forward, loss, zero_grad, backward, optimizer.step(); returns the loss.

        x and y are checked like fit's (NaN/Inf in either would turn every
        weight into NaN; a bad call changes nothing). sample_weight (n,):
        the loss is sum w l / n, as Keras's train_on_batch."""
        x, y, loss_fn = training.check_step(self, x, y, loss_fn, optimizer)
        if sample_weight is not None:
            sample_weight = training.check_sample_weight(sample_weight, len(x))
        return self._train_step(x, y, loss_fn, optimizer, sample_weight)[0]

    def _train_step(self, x, y, loss_fn, optimizer, sample_weight=None):
        """The unchecked step used by fit; returns (loss, outputs).

        With the C model bound to this loss and optimizer, the whole step is
        ONE C call with the GIL released and no allocation
        (``_core.Model.train_step``); otherwise it runs layer by layer. With
        sample_weight (n,) the loss is sum w l / n (Keras), on either path.
        Frozen parameters (requires_grad False): the fused step is split into
        compute_gradients and apply_gradients around optim._Frozen, as
        optimizer.step() does on the layer-by-layer path (same bits)."""
        denom = 0.0 if sample_weight is None else float(len(x))
        cm = self._bound_step(loss_fn, optimizer) \
            if self.training and self.fused and self._layers_training else None
        if cm is None:
            out = self._forward(x)
            loss = loss_fn.forward(out, y, self._backend, sample_weight, denom)
            self.zero_grad()
            self.backward(loss_fn.backward())
            optimizer.step()
            return loss, out
        n = len(x)
        work, out = self._workspace(n, True)
        frozen = optimizer._frozen()
        if frozen is None:
            loss = cm.train_step(x, y, work, optimizer.step_count, self._counter,
                                 sample_weight, denom)
        else:
            loss = cm.compute_gradients(x, y, work, optimizer.step_count, self._counter,
                                        sample_weight, denom)
            frozen.before()
            cm.apply_gradients(optimizer.step_count, self._counter)
            frozen.after()
        self._counter += 1
        optimizer.step_count += 1
        return loss, out

    # ---------------------------------------------------------- the C model
    def _epoch_model(self, loss_fn, optimizer):
        """The C model bound for a whole epoch in C (fit), or None: the same
        conditions as a fused step, and no frozen parameter (the epoch's steps
        cannot be split around optim._Frozen)."""
        if self.training and self.fused and self._layers_training and \
                optimizer._frozen() is None:
            return self._bound_step(loss_fn, optimizer)
        return None

    def _bound_step(self, loss_fn, optimizer):
        """The C model bound to (loss, optimizer), or None when the step cannot
        be fused (see _get_plan; a user loss or optimizer class; non-flat
        optimizer state). Rebound whenever the loss, the optimizer or any
        hyperparameter (lr included) changed."""
        bound, hp = self._bound, optimizer.param_groups[0]
        lspec = loss_fn._plan_spec()
        if bound is not None and bound[0] is loss_fn and bound[1] is optimizer and \
                bound[2] == hp and _same_spec(bound[3], lspec):
            return self._cmodel
        self._bound = None
        cm = self._get_plan()
        ospec = optimizer._plan_spec() if cm is not None and lspec is not None else None
        if ospec is None:
            return None
        cm.set_loss(*lspec)
        cm.set_optimizer(*ospec)
        # a copy of the class weights: C holds its own, so an in-place change must rebind
        self._bound = (loss_fn, optimizer, dict(hp),
                       tuple(v.copy() if isinstance(v, np.ndarray) else v for v in lspec))
        return cm

    def _get_plan(self):
        """The C model (``fastnn._core.Model``), or None when the model runs
        layer by layer: another backend, an unknown input shape, or a layer
        the C op table does not know (e.g. a user subclass)."""
        return self._cmodel

    def _workspace(self, n, training=False):
        """The C model's workspace for n rows, one per thread and batch size:
        predict may run in several threads at once. Training: (workspace, the
        view of it where a step leaves its outputs)."""
        work = getattr(self._tls, "work", None)
        if work is None:
            work = self._tls.work = {}
        buf = work.get((n, training))
        if buf is None:
            if len(work) >= 4:   # e.g. predict on many odd sizes
                work.clear()
            cm = self._cmodel
            buf = np.empty(cm.workspace_size(n, training), np.float32)
            if training:
                off, width = cm.output_offset(n), self.out_features_
                buf = (buf, buf[off:off + n * width].reshape(n, width))
            work[(n, training)] = buf
        return buf

    def _infer(self, x, out):
        """out (n, OUT) = forward pass of x in evaluation mode (no dropout):
        one C call when the model is a C model, else layer by layer."""
        cm = self._get_plan() if self.fused else None
        if cm is not None:
            cm.forward(out, x, self._workspace(len(x)))
        else:
            out[...] = self._forward(x)

    # ------------------------------------------------------ state and files
    def state_dict(self):
        """{"0.weight": array, ...}: copies of the parameters and then of the
        buffers (running statistics), in flat-buffer order."""
        state = {p.name: p.data.copy() for p in self._params}
        state.update((n, a.copy()) for n, a in self.named_buffers())
        return state

    def load_state_dict(self, state):
        """Copy parameters and buffers in place (views stay valid); names and
        shapes must match."""
        targets = [(p.name, p.data) for p in self._params] + self.named_buffers()
        names = [n for n, _ in targets]
        if sorted(state) != sorted(names):
            raise ValueError(f"state_dict keys {sorted(state)} do not match the model's {names}")
        for name, target in targets:
            value = np.asarray(state[name])
            if value.shape != target.shape:
                raise ValueError(f"{name}: expected shape {target.shape}, got {value.shape}")
        for name, target in targets:
            target[...] = state[name]

    def _file_parts(self):
        """The model file (format 2, csrc/model_io.c) as a list of byte strings."""
        from .. import __version__
        for layer in self.layers:
            if not registry.is_builtin(layer):
                raise TypeError(f"cannot save layer {type(layer).__name__}: only built-in "
                                f"layers ({', '.join(c.__name__ for c in registry.LAYERS.values())}"
                                f") can be saved")
        if self.input_shape is None:
            raise ValueError("cannot save a model whose input shape is unknown: create it "
                             "with input_shape=(features,)")
        meta = {"fastnn_version": __version__,
                "layers": [{"class": type(layer).__name__, "config": layer.config()}
                           for layer in self.layers]}
        if self.metadata is not None:    # e.g. the CLI's preprocessing
            meta["metadata"] = self.metadata
        if self.classes_ is not None:    # fit's label encoder (fastnn/training.py)
            meta["classes"] = _classes_to_json(self.classes_)
        try:
            mbytes = json.dumps(meta, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as e:
            raise TypeError(f"model.metadata must be JSON-serialisable: {e}") from None
        nodes = [{"op": layer.op, "in": (i, -1), "out": i + 1, "attrs": layer.node_attrs()}
                 for i, layer in enumerate(self.layers)]
        return fileformat.encode_v2(self.input_shape, nodes, self.flat_params,
                                    self.flat_buffers, self.seed, mbytes)

    def save(self, path):
        """Save architecture, weights and buffers atomically (format in csrc/model_io.c)."""
        fileformat.write_atomic(path, self._file_parts())

    @classmethod
    def load(cls, path, backend=None):
        """Read a model file (format 2, or the older format 1); a Sequential on `backend`."""
        with open(path, "rb") as f:
            data = f.read()
        d = fileformat.decode(data, str(path))
        if d["version"] == 1:
            return _load_v1(d, path, backend)
        FormatError = fileformat.FormatError
        layers, shape = [], tuple(d["input_shape"])
        try:
            for i, node in enumerate(d["nodes"]):
                if tuple(node["in"]) != (i, -1) or node["out"] != i + 1:
                    raise ValueError(f"node {i} reads slots {tuple(node['in'])} and writes "
                                     f"{node['out']}: only chains are supported")
                layer = registry.layer_class(node["op"], shape).from_node_attrs(node["attrs"],
                                                                                 shape)
                if _nonzero(layer.node_attrs()) != _nonzero(node["attrs"]):
                    raise ValueError(f"node {i} ({node['op']}): attributes {node['attrs']} "
                                     f"are not those of {layer!r}")
                layers.append(layer)
                shape = layer.output_shape(shape)
            meta = json.loads(d["metadata"].decode("utf-8")) if d["metadata"] else {}
            # the sizes BEFORE anything is allocated: a crafted file naming a huge
            # layer with a tiny payload must be a FormatError, not a 40 GB allocation
            P = param_layout(layers, tuple(d["input_shape"]))[1]
            B = param_layout(layers, tuple(d["input_shape"]), "buffer_shapes")[1]
        except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as e:
            raise FormatError(f"{path}: invalid architecture: {e}") from None
        if P != d["params"].size or B != d["buffers"].size:
            raise FormatError(f"{path}: parameter layout does not match the architecture "
                              f"({P} parameters and {B} buffer values, the file holds "
                              f"{d['params'].size} and {d['buffers'].size})")
        try:
            model = cls(*layers, seed=d["seed"], backend=backend,
                        input_shape=tuple(d["input_shape"]))
        except (TypeError, ValueError) as e:
            raise FormatError(f"{path}: invalid architecture: {e}") from None
        model.flat_params[...] = d["params"]
        model.flat_buffers[...] = d["buffers"]
        if isinstance(meta, dict) and meta.get("metadata") is not None:
            model.metadata = meta["metadata"]
        if isinstance(meta, dict) and meta.get("classes") is not None:
            try:
                model.classes_ = _classes_from_json(meta["classes"])
            except (KeyError, TypeError, ValueError) as e:
                raise FormatError(f"{path}: invalid class labels: {e}") from None
        return model

    def save_weights(self, path):
        """Write ``state_dict()`` (parameters and buffers) to `path` as a NumPy
        .npz, atomically (Keras's save_weights; the architecture is not saved)."""
        buf = io.BytesIO()
        np.savez(buf, **self.state_dict())
        fileformat.write_atomic(path, [buf.getvalue()])

    def load_weights(self, path):
        """Load what save_weights wrote into this model (names and shapes must match)."""
        with np.load(path, allow_pickle=False) as f:
            self.load_state_dict({k: f[k] for k in f.files})

    def to_onnx(self, path, opset=17):
        """Write the inference graph as ONNX (:func:`fastnn.onnx.export`); return the proto."""
        from ..onnx import export
        return export(self, path, opset=opset)

    def summary(self, print_fn=print):
        """Print (with print_fn) and return a table of layers, output shapes and
        parameter counts."""
        rows = [("#", "layer", "output shape", "params")]
        for i, layer in enumerate(self.layers):
            n = sum(p.data.size for p in layer.parameters()) if layer._owner is self else 0
            shape = self._shapes[i + 1]
            rows.append((str(i), repr(layer),
                         "(N, " + ", ".join(map(str, shape)) + ")" if shape else "?", f"{n:,}"))
        widths = [max(len(r[k]) for r in rows) for k in range(4)]
        line = "  ".join("-" * w for w in widths)
        fmt = lambda r: "  ".join(c.rjust(w) if k in (0, 3) else c.ljust(w)
                                  for k, (c, w) in enumerate(zip(r, widths)))
        inp = "(N, " + ", ".join(map(str, self.input_shape)) + ")" if self.input_shape else "?"
        text = "\n".join([f"Sequential: input {inp}, backend {self._backend.NAME!r}"
                          f"{', one C model' if self._cmodel is not None else ''}",
                          fmt(rows[0]), line] + [fmt(r) for r in rows[1:]] +
                         [line, f"{self.num_parameters:,} parameters, "
                                f"{self.flat_buffers.size:,} buffer values"])
        if print_fn is not None:
            print_fn(text)
        return text

    # ------------------------------------------------------------ pickling
    def __reduce__(self):
        state = {k: self.__dict__[k] for k in ("_counter", "training", "fused", "loss",
                                               "metadata", "stop_training", "_rng", "classes_")
                 if k in self.__dict__}
        state["_frozen_names"] = [p.name for p in self._params if not p.requires_grad]
        if "optimizer" in self.__dict__:
            state["optimizer"] = self.optimizer
        layers = [(type(layer), {k: v for k, v in layer.__getstate__().items()
                                 if k not in ("_owner", "_index")}) for layer in self.layers]
        return (_rebuild, (layers, self.seed, self._backend.NAME, self.input_shape,
                           self.flat_params.copy(), self.flat_buffers.copy(), {}),
                state)

    def __setstate__(self, state):
        state = dict(state)
        frozen = set(state.pop("_frozen_names", ()))
        self.__dict__.update(state)
        for p in self._params:
            p.requires_grad = p.name not in frozen

    def __repr__(self):
        lines = [f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers)]
        return ("Sequential(\n" + "\n".join(lines) +
                f"\n)  # {self.num_parameters:,} parameters, backend {self._backend.NAME!r}")


def _load_v1(d, path, backend):
    """A model from a format-1 file (JSON header; fastnn 0.1)."""
    FormatError = fileformat.FormatError
    header = d["header"]
    try:
        specs = [(entry["class"], entry["config"]) for entry in header["layers"]]
        params = header["parameters"]
        P = int(header["num_parameters"])
        seed = header.get("seed")
        metadata = header.get("metadata")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise FormatError(f"{path}: invalid header: {type(e).__name__}: {e}") from None
    by_name = {cls.__name__: cls for cls in registry.LAYERS.values()}
    layers = []
    for cls_name, config in specs:
        if cls_name not in by_name or not isinstance(config, dict):
            raise FormatError(f"{path}: unknown layer {cls_name!r}")
        try:
            layers.append(by_name[cls_name](**config))
        except (TypeError, ValueError) as e:
            raise FormatError(f"{path}: invalid configuration for {cls_name}: {e}") from None
    # check the layout against the file BEFORE allocating anything: a crafted header
    # naming Linear(10**6, 10**6) must be a FormatError, not a 4 TB allocation
    try:
        layout, expected_P = param_layout(layers)
        stored = [(p["name"], p["offset"], tuple(p["shape"])) for p in params]
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise FormatError(f"{path}: invalid parameter layout: {e}") from None
    if stored != [(f"{i}.{n}", off, shape) for i, n, off, shape in layout] or P != expected_P:
        raise FormatError(f"{path}: parameter layout does not match the architecture")
    if d["params"].size != P:
        raise FormatError(f"{path}: expected {4 * P} bytes of parameters, "
                          f"found {4 * d['params'].size}")
    try:
        model = Sequential(*layers, seed=seed if isinstance(seed, int) else 0, backend=backend)
    except (TypeError, ValueError) as e:
        raise FormatError(f"{path}: invalid architecture: {e}") from None
    model.flat_params[...] = d["params"]
    if metadata is not None:
        model.metadata = metadata
    return model
