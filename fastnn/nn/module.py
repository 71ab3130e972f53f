"""Module: the base of every layer.

A layer is one node of a model's plan. A built-in layer names its entry in
the C op table (``op``, csrc/ops.c) and gives that node's typed attributes
(``node_attrs``); the same layer runs layer by layer through its backend's
kernels (``forward``/``backward``: ``fastnn._core`` or ``fastnn.reference``),
which is how user subclasses and the NumPy backend run.

Shapes are per sample (batch first at run time): a layer maps an input shape
such as ``(64,)`` or ``(C, H, W)`` to an output shape (``output_shape``) and
declares its parameters for that input (``param_shapes``).

A layer inside a Sequential holds views into the model's flat buffers. A
layer on its own (``Linear(4, 3, seed=0)(x)``) allocates its own small flat
buffers the first time it needs them, initialised from its ``seed``.
"""
import numpy as np

from .._backend import get_backend
from ..parameter import Parameter

__all__ = ["Module", "check_dtype", "float64_unsupported"]


def float64_unsupported(who):
    """The one explanation why there are no float64 models (NotImplementedError)."""
    raise NotImplementedError(
        f"{who}: fastnn models are float32 only -- every C kernel (GEMM, activations, "
        "losses, optimizers), the flat parameter buffers and the model file format "
        "are float32, and a float64 twin of all of them is not built. Inputs of any "
        "real dtype are accepted and converted to float32; use torch or the NumPy "
        "reference kernels (fastnn.reference, float64-capable) for float64 maths")


def check_dtype(dtype, who):
    """None/float32 pass; float64 (or anything else) raises (float64_unsupported)."""
    if dtype is None:
        return
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt == np.float32:
        return
    if dt is not None and dt.kind == "f":
        float64_unsupported(f"{who} dtype={dt.name}")
    raise TypeError(f"{who}: dtype must be float32, got {dtype!r}")


class Module:
    """Base class: a ``forward``/``backward`` pair over per-sample shapes.

    ``forward(x)`` keeps what ``backward`` needs; ``backward(dy)`` returns dx
    (OVERWRITTEN each call) and ACCUMULATES parameter gradients.
    """
    op = None          # its name in the C op table; None: runs in Python only
    names = ()         # activation names the CLI and sklearn wrappers accept
    he_before = False  # a Linear right before it gets He initialisation (see csrc/ops.c)
    training = True
    _backend = None
    _owner = None      # the Sequential holding this layer
    _index = 0         # its position there
    seed = None        # standalone layers: the seed of their parameters

    # ------------------------------------------------------------ the node
    def node_attrs(self):
        """The typed attributes of this layer's C node (csrc/fastnn.h fnn_attrs)."""
        return {}

    @classmethod
    def from_node_attrs(cls, attrs, in_shape=None):
        """The layer a model file's node describes (the inverse of node_attrs)."""
        return cls()

    def config(self):
        """Constructor arguments, as JSON-serialisable values (repr, summaries)."""
        return {}

    def input_size(self):
        """The per-sample input shape this layer requires, or None (any)."""
        return None

    def output_shape(self, in_shape):
        """Per-sample output shape for a per-sample input shape (None: unknown)."""
        return in_shape

    def param_shapes(self, in_shape=None):
        """[(name, shape), ...] of this layer's parameters (none by default)."""
        return []

    def buffer_shapes(self, in_shape=None):
        """[(name, shape), ...] of its non-trainable buffers (running statistics),
        saved, loaded and pickled with the parameters; none by default."""
        return []

    def init_buffers(self, flat):
        """Start values of this layer's buffers (default: zeros)."""
        flat[...] = 0.0

    def init_params(self, flat, seed, index, next_layer):
        """Fill this layer's slice of a flat parameter buffer (default: zeros)."""
        flat[...] = 0.0

    # ------------------------------------------------------ the parameters
    _param_names = ()   # attribute names of its parameters and buffers (for __getattr__)

    def __getattr__(self, name):
        """A standalone layer's parameters exist from first use, as in PyTorch:
        reading ``layer.weight`` allocates and initialises them (once)."""
        if name in type(self)._param_names and self.__dict__.get("_owner") is None \
                and "_flat" not in self.__dict__:
            self._standalone()
            if name in self.__dict__:
                return self.__dict__[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def backend(self):
        if self._backend is None:
            self._backend = get_backend()
        return self._backend

    def parameters(self):
        self._standalone()
        return [getattr(self, name) for name, _ in self.param_shapes(self.input_size())
                if getattr(self, name, None) is not None]

    def named_parameters(self, prefix=""):
        """[(name, Parameter), ...], names as ``weight`` (``0.weight`` in a model)."""
        return [(prefix + name, p) for name, p in
                ((n, getattr(self, n, None)) for n, _ in self.param_shapes(self.input_size()))
                if p is not None]

    def _standalone(self):
        """Give a layer outside any model its own flat buffers (once)."""
        if self._owner is not None or self.__dict__.get("_flat") is not None:
            return
        shapes = self.param_shapes(self.input_size())
        bshapes = self.buffer_shapes(self.input_size())
        if not shapes and not bshapes:
            return
        P = sum(int(np.prod(s)) for _, s in shapes)
        B = sum(int(np.prod(s)) for _, s in bshapes)
        self._flat, self._flat_grad = np.zeros(P, np.float32), np.zeros(P, np.float32)
        self._flat_buffers = np.zeros(B, np.float32)
        if self.seed is None:
            self.seed = int(np.random.SeedSequence().entropy % 2**63)
        self.init_params(self._flat, self.seed, 0, None)
        self.init_buffers(self._flat_buffers)
        self._attach(self._flat, self._flat_grad, 0, self.backend, self)
        self._attach_buffers(self._flat_buffers, 0)

    def _attach(self, flat, flat_grad, offset, backend, owner, prefix=""):
        """Make this layer's parameters views of flat/flat_grad from `offset`."""
        for name, shape in self.param_shapes(self.input_size()):
            size = int(np.prod(shape))
            setattr(self, name, Parameter(prefix + name,
                                          flat[offset:offset + size].reshape(shape),
                                          flat_grad[offset:offset + size].reshape(shape),
                                          flat, flat_grad, offset, backend, owner))
            offset += size
        return offset

    def _attach_buffers(self, flat, offset, prefix=""):
        """Make this layer's buffers views of flat from `offset` (plain arrays)."""
        names = []
        for name, shape in self.buffer_shapes(self.input_size()):
            size = int(np.prod(shape))
            setattr(self, name, flat[offset:offset + size].reshape(shape))
            names.append(prefix + name)
            offset += size
        self._buffer_names = names
        return offset

    def named_buffers(self, prefix=""):
        """[(name, array), ...] of the non-trainable buffers."""
        return [(prefix + name, getattr(self, name)) for name, _ in
                self.buffer_shapes(self.input_size()) if getattr(self, name, None) is not None]

    def zero_grad(self):
        for p in self.parameters():
            p.grad.fill(0.0)

    def requires_grad_(self, requires_grad=True):
        """Freeze (False) or unfreeze every parameter of this layer; returns self
        (PyTorch). See :class:`fastnn.Parameter`."""
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def float(self):
        """A no-op returning self: fastnn is float32 already (PyTorch's .float())."""
        return self

    def double(self):
        float64_unsupported(f"{type(self).__name__}.double()")

    def to(self, dtype):
        """``.to(float32)`` returns self; any other dtype is unsupported (see double)."""
        check_dtype(dtype, f"{type(self).__name__}.to()")
        return self

    def state_dict(self):
        """{"weight": array, ...}: copies of this layer's parameters and buffers."""
        self._standalone()
        state = {n: p.data.copy() for n, p in self.named_parameters()}
        state.update((n, a.copy()) for n, a in self.named_buffers())
        return state

    def load_state_dict(self, state):
        """Copy parameters and buffers in place (names and shapes must match)."""
        self._standalone()
        targets = dict((n, p.data) for n, p in self.named_parameters())
        targets.update(self.named_buffers())
        if sorted(state) != sorted(targets):
            raise ValueError(f"state_dict keys {sorted(state)} do not match {sorted(targets)}")
        for n, t in targets.items():
            if np.shape(state[n]) != t.shape:
                raise ValueError(f"{n}: expected shape {t.shape}, got {np.shape(state[n])}")
        for n, t in targets.items():
            t[...] = state[n]

    # ------------------------------------------------------------- running
    def train(self, mode=True):
        self.training = bool(mode)
        owner = self._owner
        if owner is not None:
            owner._layer_mode_changed()
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

    # ------------------------------------------------------------ pickling
    _TRANSIENT = ("_ws", "_x", "_y", "_key", "_active", "_backend")

    def __getstate__(self):
        """What pickle keeps: configuration (and a standalone layer's buffers);
        work arrays, the backend module and parameter views are rebuilt."""
        views = {n for n, _ in self.buffer_shapes(self.input_size())}   # re-attached
        state = {k: v for k, v in self.__dict__.items()
                 if k not in self._TRANSIENT and k not in views and not isinstance(v, Parameter)}
        backend = self.__dict__.get("_backend")
        state["_backend_name"] = None if backend is None else backend.NAME
        return state

    def __setstate__(self, state):
        state = dict(state)
        name = state.pop("_backend_name", None)
        self.__dict__.update(state)
        if name is not None:
            self._backend = get_backend(name)
        if self.__dict__.get("_flat") is not None and self._owner is None:
            self._attach(self._flat, self._flat_grad, 0, self.backend, self)
            self._attach_buffers(self._flat_buffers, 0)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"
