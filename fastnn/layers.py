"""Layers and the Sequential model.

Size letters: N batch rows, IN/OUT a Linear layer's features, P the number of
parameters of a model.

Memory layout (DESIGN.md, after llm.c): a Sequential owns ONE contiguous
float32 buffer of all its parameters (``model.flat_params``, P floats) and one
of their gradients (``model.flat_grads``). Each layer's ``weight``/``bias`` is a
view into them, in layer order, weight (IN, OUT) then bias (OUT); the layout
is computed by :func:`param_layout` alone. ``zero_grad`` is one fill, an
optimizer step one kernel call over the buffer, save/load one array.

Every layer calls its kernels through ``self.backend`` (``fastnn._core`` or
``fastnn.reference``), so the same model runs on either backend. Outputs and
input gradients live in per-layer buffers allocated once per batch shape and
reused; the arrays ``forward`` returns are therefore overwritten by the next
forward at the same shape (``predict`` returns copies the caller owns).
"""
import math
import numbers
import threading

import numpy as np

from . import training
from ._backend import get_backend
from .data import check_X

__all__ = ["Parameter", "Module", "Linear", "ReLU", "LeakyReLU", "Sigmoid", "Tanh",
           "GELU", "Softmax", "Dropout", "Sequential", "param_layout"]


class Parameter:
    """A named parameter: ``data`` and ``grad`` are views into a model's flat buffers.

    ``offset`` is the position of ``data`` in ``flat``/``flat_grad`` (the whole
    buffers), and ``backend`` the module optimizers use to update it.
    """
    __slots__ = ("name", "data", "grad", "flat", "flat_grad", "offset", "backend")

    def __init__(self, name, data, grad, flat=None, flat_grad=None, offset=0, backend=None):
        self.name, self.data, self.grad = name, data, grad
        self.flat, self.flat_grad, self.offset, self.backend = flat, flat_grad, offset, backend

    @property
    def shape(self):
        return self.data.shape

    def __repr__(self):
        return f"Parameter({self.name!r}, shape={self.data.shape})"


class Module:
    """Base class: a ``forward``/``backward`` pair.

    ``forward(x)`` keeps what ``backward`` needs; ``backward(dy)`` returns dx
    (OVERWRITTEN each call) and ACCUMULATES parameter gradients.
    ``param_shapes()`` declares the parameters a Sequential allocates for it.
    """
    training = True
    _backend = None
    _owner = None     # the Sequential holding this layer
    _index = 0        # its position there

    @property
    def backend(self):
        if self._backend is None:
            self._backend = get_backend()
        return self._backend

    def param_shapes(self):
        """[(name, shape), ...] of this layer's parameters (none by default)."""
        return []

    def parameters(self):
        return []

    def config(self):
        """Constructor arguments, as JSON-serialisable values (used by save)."""
        return {}

    def output_width(self, in_features):
        """Feature count this layer outputs for `in_features` inputs (None: unknown)."""
        return in_features

    def plan_spec(self, width):
        """This layer as one op of the C plan (see ``fastnn._core.Plan``), or None."""
        return None

    def train(self, mode=True):
        self.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def __call__(self, x):
        return self.forward(x)

    def _buffer(self, name, shape, dtype=np.float32):
        """A reusable work array per (name, shape): allocated once per batch shape."""
        ws = self.__dict__.setdefault("_ws", {})
        key = (name, shape)
        buf = ws.get(key)
        if buf is None:
            if len(ws) >= 16:   # many batch shapes seen (e.g. predict on odd sizes)
                ws.clear()
            buf = ws[key] = np.empty(shape, dtype)
        return buf

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class Linear(Module):
    """Fully connected layer: ``y = x · W + b``.

    Args:
        in_features (IN), out_features (OUT): sizes.
        bias: learn an additive bias b (OUT); default True.
        init: "auto" (He before a ReLU-family activation, else Xavier; decided by
            Sequential from the next layer), "he" or "xavier".

    Shape: x (N, IN) -> y (N, OUT). W is stored (IN, OUT) -- the transpose of
    PyTorch's -- so forward is one GEMM without a transpose.

    Initialisation (from the model's seed; biases start at 0):
        He (Kaiming) uniform:  W ~ U(-a, a), a = sqrt(6 / IN)
        Xavier (Glorot) uniform: W ~ U(-a, a), a = sqrt(6 / (IN + OUT))

    Backward: dx = dy · Wᵀ, dW += xᵀ · dy, db += Σ_rows dy.

    The parameters are allocated by the Sequential that holds the layer.
    """
    def __init__(self, in_features, out_features, bias=True, init="auto"):
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"Linear: {name} must be a positive integer, got {v!r}")
        if init not in ("auto", "he", "xavier"):
            raise ValueError(f"Linear: init must be 'auto', 'he' or 'xavier', got {init!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.bias_enabled, self.init = bool(bias), init
        self.weight = self.bias = None

    def param_shapes(self):
        shapes = [("weight", (self.in_features, self.out_features))]
        return shapes + [("bias", (self.out_features,))] if self.bias_enabled else shapes

    def parameters(self):
        return [p for p in (self.weight, self.bias) if p is not None]

    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.bias_enabled, "init": self.init}

    def output_width(self, in_features):
        return self.out_features

    def reset_parameters(self, rng, scheme):
        """Fill weight from `rng` with "he" or "xavier"; zero the bias."""
        fan_in, fan_out = self.in_features, self.out_features
        a = np.sqrt(6.0 / fan_in) if scheme == "he" else np.sqrt(6.0 / (fan_in + fan_out))
        self.weight.data[...] = rng.uniform(-a, a, size=self.weight.data.shape)
        if self.bias is not None:
            self.bias.data[...] = 0.0

    def forward(self, x):
        if self.weight is None:
            raise RuntimeError(f"{self!r} has no parameters yet: use it inside a Sequential")
        if x.shape[1] != self.in_features:
            raise ValueError(f"{self!r} expects {self.in_features} features, got {x.shape[1]}")
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

    def plan_spec(self, width):
        return {"op": "dense", "in": self.in_features, "out": self.out_features,
                "w_off": self.weight.offset,
                "b_off": None if self.bias is None else self.bias.offset}

    def __repr__(self):
        extra = "" if self.bias_enabled else ", bias=False"
        extra += "" if self.init == "auto" else f", init={self.init!r}"
        return f"Linear({self.in_features}→{self.out_features}{extra})"


class _Activation(Module):
    """Elementwise (or row-wise) activation: y = f(x), dx = dy · f'(x).

    Calls ``backend.<kernel>_forward(y, x, *args)`` and
    ``backend.<kernel>_backward(dx, dy, x, y, *args)``.
    """
    kernel = ""
    he_init = False   # a Linear right before this layer gets He initialisation

    def _args(self):
        return ()

    def forward(self, x):
        self._x = x
        self._y = y = self._buffer("y", x.shape)
        getattr(self.backend, self.kernel + "_forward")(y, x, *self._args())
        return y

    def backward(self, dy, need_dx=True):
        dx = self._buffer("dx", dy.shape)
        getattr(self.backend, self.kernel + "_backward")(dx, dy, self._x, self._y, *self._args())
        return dx

    def plan_spec(self, width):
        args = self._args()
        return {"op": self.kernel, "in": width, "out": width, "param": args[0] if args else 0.0}


class ReLU(_Activation):
    """ReLU: f(x) = max(x, 0); f'(x) = 1 if x > 0 else 0."""
    kernel, he_init = "relu", True


class LeakyReLU(_Activation):
    """LeakyReLU: f(x) = x if x > 0 else negative_slope · x (PyTorch default 0.01)."""
    kernel, he_init = "leaky_relu", True

    def __init__(self, negative_slope=0.01):
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, numbers.Real) \
                or not math.isfinite(negative_slope):
            raise ValueError(f"LeakyReLU: negative_slope must be a finite real number, "
                             f"got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def _args(self):
        return (self.negative_slope,)

    def config(self):
        return {"negative_slope": self.negative_slope}


class Sigmoid(_Activation):
    """Sigmoid: f(x) = 1 / (1 + e^-x); f'(x) = f(x)(1 - f(x))."""
    kernel = "sigmoid"


class Tanh(_Activation):
    """Tanh: f(x) = tanh(x); f'(x) = 1 - tanh(x)²."""
    kernel = "tanh"


class GELU(_Activation):
    """GELU, tanh approximation (PyTorch ``approximate='tanh'``):
    f(x) = ½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))."""
    kernel, he_init = "gelu", True


class Softmax(_Activation):
    """Row-wise softmax: y_ij = exp(x_ij) / Σ_k exp(x_ik) (max-subtracted).

    Backward: dx_ij = y_ij (dy_ij - Σ_k dy_ik y_ik). Do not put it before
    CrossEntropyLoss, which takes logits and applies log-softmax itself.
    """
    kernel = "softmax"


class Dropout(Module):
    """Inverted dropout: in training y = x · m / (1 - p), m_i ~ Bernoulli(1 - p).

    The mask comes from the backend's stateless counter-based generator
    (``dropout_key(seed, layer index, step counter)``, csrc/dropout.c): it is
    reproducible from the model's seed, identical on both backends and in a
    fused C step. In eval mode (or with p = 0) the layer is the identity.
    Backward: dx = dy · m / (1 - p), with the forward's mask.
    """
    def __init__(self, p=0.5):
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout probability must be in [0, 1), got {p!r}")
        self.p = float(p)
        self._calls = 0

    def config(self):
        return {"p": self.p}

    def plan_spec(self, width):
        return {"op": "dropout", "in": width, "out": width, "param": self.p}

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


def _same_spec(a, b):
    """Loss specs equal: arrays (class weights) by identity, the rest by value."""
    return a is not None and b is not None and all(
        u is v or (not isinstance(u, np.ndarray) and not isinstance(v, np.ndarray) and u == v)
        for u, v in zip(a, b))


def param_layout(layers):
    """The flat-buffer layout: [(layer_index, name, offset, shape), ...] and P.

    Parameters are packed in layer order, each layer's in ``param_shapes()``
    order, with no padding. This is the single source of the layout (used
    by Sequential, save/load and the fused C step's plan).
    """
    layout, offset = [], 0
    for i, layer in enumerate(layers):
        for name, shape in layer.param_shapes():
            layout.append((i, name, offset, tuple(shape)))
            offset += int(np.prod(shape))
    return layout, offset


class Sequential(Module):
    """A stack of layers applied in order, with flat parameter/gradient buffers.

    Args:
        *layers: Module instances (each may belong to one Sequential only).
        seed: an int that seeds initialisation, dropout masks and (when
            ``fit`` gets no seed) shuffling -- same seed, same run, bitwise.
            None draws one at random (kept in ``model.seed``).
        backend: "c" (default), "numpy" or a backend module.

    With the C backend and built-in layers, ``train_step``/``fit`` run each
    step as one C call and ``predict`` each batch as one C call; set
    ``model.fused = False`` to run layer by layer instead (same results).

    Example::

        model = Sequential(Linear(64, 128), ReLU(), Linear(128, 10), seed=0)
        history = model.fit(X, y, loss=CrossEntropyLoss(), optimizer=Adam(model.parameters()))
    """
    def __init__(self, *layers, seed=0, backend=None):
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
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        self.seed = seed
        self._counter = 0      # training-mode forward passes (dropout keys)
        self._backend = get_backend(backend)
        self.stop_training = False
        self.in_features = self._check_chain()
        self._rng = np.random.default_rng(seed)
        self._allocate()
        for i, layer in enumerate(self.layers):
            layer._owner, layer._index, layer._backend = self, i, self._backend
        self.loss = None
        self.fused = True      # use the one-call C step/forward when possible
        self._plan = False     # not built yet (None: the model cannot run as a C plan)
        self._bound = None     # (loss, optimizer, hyperparameters, loss spec, _core.Step)
        self._tls = threading.local()   # per-thread plan workspaces (see _work)
        self._lock = threading.RLock()  # layer-by-layer inference: shared buffers and mode

    def _check_chain(self):
        """Check consecutive feature counts; return the model's input feature count."""
        first, width = None, None
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Linear):
                if width is not None and width != layer.in_features:
                    raise ValueError(f"layer {i} {layer!r} expects {layer.in_features} inputs "
                                     f"but the previous layer outputs {width}")
                first = layer.in_features if first is None else first
            width = layer.output_width(width)
        self.out_features_ = width
        return first

    def _allocate(self):
        layout, P = param_layout(self.layers)
        self.flat_params = np.zeros(P, np.float32)
        self.flat_grads = np.zeros(P, np.float32)
        self._params = []
        for i, name, off, shape in layout:
            size = int(np.prod(shape))
            p = Parameter(f"{i}.{name}", self.flat_params[off:off + size].reshape(shape),
                          self.flat_grads[off:off + size].reshape(shape),
                          self.flat_params, self.flat_grads, off, self._backend)
            setattr(self.layers[i], name, p)
            self._params.append(p)
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Linear):
                nxt = self.layers[i + 1] if i + 1 < len(self.layers) else None
                scheme = layer.init if layer.init != "auto" else (
                    "he" if getattr(nxt, "he_init", False) else "xavier")
                layer.reset_parameters(self._rng, scheme)

    # ---------------------------------------------------------------- basics
    def parameters(self):
        """The Parameters, in flat-buffer order."""
        return list(self._params)

    @property
    def num_parameters(self):
        return int(self.flat_params.size)

    def train(self, mode=True):
        self.training = bool(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def zero_grad(self):
        """Set every gradient to 0 (one fill over the flat gradient buffer)."""
        self.flat_grads.fill(0.0)

    def _forward(self, x):
        if self.training:
            self._counter += 1
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def forward(self, x):
        """Outputs for x (N, IN). The result is a read-only view of an internal
        buffer, valid until the next forward at the same batch size."""
        out = self._forward(check_X(x, finite=False)).view()
        out.flags.writeable = False
        return out

    def backward(self, dout):
        """Backpropagate d(loss)/d(output) (N, OUT); ACCUMULATES into the gradients."""
        dout = np.ascontiguousarray(dout, dtype=np.float32)
        for i in range(len(self.layers) - 1, -1, -1):
            dout = self.layers[i].backward(dout, need_dx=i > 0)

    def train_step(self, x, y, loss_fn, optimizer):
        """One step: forward, loss, zero_grad, backward, optimizer.step(); returns the loss.

        x and y are checked like fit's (NaN/Inf in either would turn every
        weight into NaN; a bad call changes nothing)."""
        x = check_X(x)
        training.check_features(self, x)
        training.check_optimizer(self, optimizer)
        loss_fn = training.get_loss(loss_fn)
        y = training.check_y(y)
        training.check_consistent_length(x, y)
        width = self.out_features_
        y = loss_fn.prepare_target(y, None if width is None else (len(x), width))
        return self._train_step(x, y, loss_fn, optimizer)[0]

    def _train_step(self, x, y, loss_fn, optimizer):
        """The unchecked step used by fit; returns (loss, outputs).

        With the C backend, built-in layers, loss and optimizer (and flat
        optimizer state), the whole step -- forward, loss, backward, update --
        is ONE C call with the GIL released and no allocation
        (``_core.Plan.train_step``). Otherwise it runs layer by layer. Both
        paths call the same kernels in the same order: same bits.
        """
        step = self._bound_step(loss_fn, optimizer) if self.training and self.fused else None
        if step is None:
            out = self._forward(x)
            loss = loss_fn.forward(out, y, self._backend)
            self.zero_grad()
            self.backward(loss_fn.backward())
            optimizer.step()
            return loss, out
        n, width = len(x), self.out_features_   # y: prepared by train_step / fit
        work = self._workspace(self._plan, n)
        loss = step.run(x, y, optimizer.step_count + 1, self.seed, self._counter + 1, work)
        self._counter += 1
        optimizer.step_count += 1
        # the last layer's output is the last activation kept in the workspace
        end = n * self._plan_widths
        return loss, work[end - n * width:end].reshape(n, width)

    # ---------------------------------------------------------- the C plan
    def _bound_step(self, loss_fn, optimizer):
        """The plan bound to (flat buffers, loss, optimizer) as a ``_core.Step``,
        or None when the step cannot be fused (see _get_plan; a user loss or
        optimizer class; non-flat optimizer state). Rebound whenever the loss,
        the optimizer or any hyperparameter (lr included) changed."""
        bound, hp = self._bound, optimizer.param_groups[0]
        lspec = loss_fn._plan_spec()
        if bound is not None and bound[0] is loss_fn and bound[1] is optimizer and \
                bound[2] == hp and _same_spec(bound[3], lspec):
            return bound[4]
        self._bound = None
        plan = self._get_plan()
        ospec = optimizer._plan_spec() if plan is not None and lspec is not None else None
        if ospec is None:
            return None
        step = plan.bind(self.flat_params, self.flat_grads, lspec, ospec)
        self._bound = (loss_fn, optimizer, dict(hp), lspec, step)
        return step

    def _get_plan(self):
        """The model as a ``_core.Plan`` (built once), or None when it cannot be
        one: another backend, an input width not known, or a layer type the C
        plan does not know (e.g. a user subclass)."""
        if self._plan is False:
            self._plan = None
            specs, width = [], self.in_features
            if getattr(self._backend, "Plan", None) is None or width is None:
                return None
            for layer in self.layers:
                spec = layer.plan_spec(width) if type(layer).__module__ == __name__ else None
                if spec is None:
                    return None
                specs.append(spec)
                width = spec["out"]
            self._plan_widths = sum(spec["out"] for spec in specs)
            self._plan = self._backend.Plan(specs)
        return self._plan

    @property
    def _work(self):
        """batch size -> plan workspace, one dict per thread: predict may run in
        several threads at once, and a shared workspace would mix their batches."""
        work = getattr(self._tls, "work", None)
        if work is None:
            work = self._tls.work = {}
        return work

    def _workspace(self, plan, n):
        """The plan's workspace for a batch of n rows, allocated once per batch size."""
        work = self._work.get(n)
        if work is None:
            if len(self._work) >= 4:   # e.g. predict on many odd sizes
                self._work.clear()
            work = self._work[n] = np.empty(plan.workspace_size(n), np.float32)
        return work

    def _infer(self, x, out):
        """out (n, OUT) = forward pass of x in evaluation mode (no dropout):
        one C call when the model is a plan, else layer by layer."""
        plan = self._get_plan() if self.fused else None
        if plan is not None:
            plan.forward(out, self.flat_params, x, self._workspace(plan, len(x)))
        else:
            out[...] = self._forward(x)

    # ------------------------------------------------------ training & co.
    fit = training.fit
    evaluate = training.evaluate
    predict = training.predict
    predict_proba = training.predict_proba

    def save(self, path):
        """Save architecture and weights atomically (see :func:`fastnn.save`)."""
        from .io import save
        save(self, path)

    def to_onnx(self, path, opset=17):
        """Write the inference graph as ONNX (:func:`fastnn.onnx.export`); return the proto."""
        from .onnx import export
        return export(self, path, opset=opset)

    def state_dict(self):
        """{"0.weight": array, ...}: copies of the parameters, in buffer order."""
        return {p.name: p.data.copy() for p in self._params}

    def load_state_dict(self, state):
        """Copy parameters in place (views stay valid); names and shapes must match."""
        names = [p.name for p in self._params]
        if sorted(state) != sorted(names):
            raise ValueError(f"state_dict keys {sorted(state)} do not match the model's {names}")
        for p in self._params:
            value = np.asarray(state[p.name])
            if value.shape != p.data.shape:
                raise ValueError(f"{p.name}: expected shape {p.data.shape}, got {value.shape}")
        for p in self._params:
            p.data[...] = state[p.name]

    def __repr__(self):
        lines = [f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers)]
        return ("Sequential(\n" + "\n".join(lines) +
                f"\n)  # {self.num_parameters:,} parameters, backend {self._backend.NAME!r}")
