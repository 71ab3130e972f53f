"""Optimizers (PyTorch names, defaults and update rules).

Every optimizer here is one backend kernel (``backend.<name>_update``) behind
a thin class. Full-batch, stochastic and mini-batch gradient descent are the
same optimizer: what differs is only the batch that produced the gradients
(``batch_size = N``, ``1`` or ``b`` in ``fit``/``batches``).

When the parameters tile one contiguous flat buffer in order (the
parameters of a Sequential), the state (momentum, moments, ...) is flat too
and a step is ONE kernel call over all P floats; otherwise the optimizer
keeps state per parameter and calls the kernel once per parameter.

Notation: p a parameter, g its gradient, t the 1-based step number,
wd weight decay. ``lr`` (and every hyperparameter in ``param_groups[0]``)
may be read and changed between steps.
"""
import math

import numpy as np

from ._backend import get_backend
from .parameter import Parameter

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "get_optimizer",
           "clip_grad_norm_"]


def _check(name, value, low=0.0, high=math.inf, low_open=False, high_open=True):
    """torch-style range check that also rejects NaN and Inf."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"Invalid {name}: {value!r} (expected a real number)") from None
    ok = math.isfinite(v) and (v > low if low_open else v >= low) and \
        (v < high if high_open else v <= high)
    if not ok:
        raise ValueError(f"Invalid {name}: {value}")
    return v


def clip_grad_norm_(parameters, max_norm):
    """Scale the gradients of `parameters` in place so that their global L2 norm
    is at most max_norm; return the norm before clipping (PyTorch's rule:
    coef = max_norm / (norm + 1e-6), applied when < 1).

    For the parameters of one model (one flat buffer) this is one kernel call.
    Optimizers do it before each update when given ``max_grad_norm``.
    """
    params = list(parameters)
    max_norm = _check("max_norm", max_norm, low_open=True)
    if not params:
        return 0.0
    flat = params[0].flat_grad
    if flat is not None and sum(p.grad.size for p in params) == flat.size and \
            all(p.flat_grad is flat for p in params):
        return params[0].backend.clip_grad_norm(flat, max_norm)
    norm = math.sqrt(sum(float(np.sum(np.square(p.grad, dtype=np.float64))) for p in params))
    coef = max_norm / (norm + 1e-6)
    if not coef >= 1.0:
        for p in params:
            p.grad *= np.float32(coef)
    return norm


class Optimizer:
    """Base class: parameters, hyperparameters (``param_groups[0]``), state, step count.

    Every optimizer takes ``max_grad_norm`` (None: off): before each update
    the gradients are scaled so that their global L2 norm is at most that
    (:func:`clip_grad_norm_`, Keras's ``global_clipnorm``).

    Subclasses define ``_state_names`` (buffers, zero-initialised like p) and
    ``_update(be, p, g, state, t, hp)``, one kernel call.
    """
    _state_names = ()
    _c_name = None      # its entry in the C optimizer table (csrc/ops.c)

    def __init__(self, params, defaults, backend=None, max_grad_norm=None):
        params = list(params)
        defaults = dict(defaults, max_grad_norm=None if max_grad_norm is None else
                        _check("max_grad_norm", max_grad_norm, low_open=True))
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"optimizer params must be fastnn Parameters "
                                f"(model.parameters()), got {type(p).__name__}")
        self.params = params
        self.param_groups = [dict(defaults, params=params)]
        self.backend = get_backend(backend if backend is not None else params[0].backend)
        self.step_count = 0
        self._find_targets()
        self.state = [{n: self._init_state(n, data) for n in self._state_names}
                      for data, _ in self._targets]

    def _find_targets(self):
        """(data, grad) pairs one kernel call each updates: the whole flat
        buffers when the parameters tile them in order, else each parameter."""
        params = self.params
        flat = params[0].flat
        tiles = flat is not None and params[0].offset == 0 and all(
            p.flat is flat and p.offset == q.offset + q.data.size
            for q, p in zip(params, params[1:])) and \
            params[-1].offset + params[-1].data.size == flat.size
        if tiles:   # one kernel call over the whole buffer
            self._targets = [(flat, params[0].flat_grad)]
        else:
            self._targets = [(p.data, p.grad) for p in params]
        self.flat = tiles

    def __getstate__(self):
        """Pickle: the parameters (found again in their model), hyperparameters
        and state arrays; the backend by name."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("_targets", "backend", "_frozen_cache")}
        state["backend"] = self.backend.NAME
        return state

    def __setstate__(self, state):
        state = dict(state)
        self.__dict__.update(state)
        self.backend = get_backend(state["backend"])
        self._find_targets()

    def _init_state(self, name, data):
        return np.zeros_like(data)

    @property
    def lr(self):
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value):
        self.param_groups[0]["lr"] = _check("learning rate", value)

    def zero_grad(self):
        """Set the gradients of all parameters to 0."""
        for _, grad in self._targets:
            grad.fill(0.0)

    @property
    def learning_rate(self):
        """Keras's name of ``lr``."""
        return self.lr

    @learning_rate.setter
    def learning_rate(self, value):
        self.lr = value

    def step(self):
        """Apply one update to every parameter from its current gradient
        (parameters with ``requires_grad = False`` stay as they are)."""
        hp = self.param_groups[0]
        _check("learning rate", hp["lr"])
        frozen = self._frozen()
        if frozen is not None:
            frozen.before()
        self.step_count += 1
        if hp["max_grad_norm"] is not None:
            clip_grad_norm_(self.params, hp["max_grad_norm"])
        for (data, grad), state in zip(self._targets, self.state):
            self._update(self.backend, data, grad, state, self.step_count, hp)
        if frozen is not None:
            frozen.after()

    def _frozen(self):
        """The :class:`_Frozen` of the parameters with requires_grad False, or None
        when every parameter trains (one pass over the parameters: every step)."""
        key = tuple(i for i, p in enumerate(self.params) if not p.requires_grad)
        if not key:
            return None
        cached = self.__dict__.get("_frozen_cache")
        if cached is None or cached[0] != key:
            cached = self._frozen_cache = (key, _Frozen(self, [self.params[i] for i in key]))
        return cached[1]

    def _plan_spec(self):
        """(C optimizer name, hyperparameters, state arrays) for the fused C step
        (``fastnn._core.Model.set_optimizer``), or None when the state is not
        flat or the class is not a built-in."""
        if not self.flat or type(self).__module__ != __name__:
            return None
        hp = self.param_groups[0]
        _check("learning rate", hp["lr"])
        b1, b2 = hp.get("betas", (0.0, 0.0))
        c_hp = {k: hp.get(k, 0.0) for k in ("lr", "weight_decay", "eps", "momentum",
                                            "dampening", "alpha", "lr_decay")}
        c_hp.update(beta1=b1, beta2=b2, max_grad_norm=hp["max_grad_norm"] or 0.0,
                    nesterov=bool(hp.get("nesterov", False)))
        return self._c_name, c_hp, tuple(self.state[0][k] for k in self._state_names)

    def state_dict(self):
        """Step count, hyperparameters and copies of the state buffers."""
        hp = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        return {"step": self.step_count, "hyperparameters": hp,
                "state": [{k: v.copy() for k, v in s.items()} for s in self.state]}

    def load_state_dict(self, sd):
        """Restore what state_dict returned (buffers must match in number and size)."""
        if not isinstance(sd, dict) or not {"state", "hyperparameters", "step"} <= set(sd):
            raise ValueError("not an optimizer state_dict: expected a dict with keys 'state', "
                             f"'hyperparameters' and 'step', got {type(sd).__name__}"
                             + (f" with keys {sorted(sd)}" if isinstance(sd, dict) else ""))
        if len(sd["state"]) != len(self.state):
            raise ValueError("optimizer state does not match these parameters")
        for mine, theirs in zip(self.state, sd["state"]):
            for k, buf in mine.items():
                if np.shape(theirs.get(k)) != buf.shape:
                    raise ValueError(f"optimizer state {k!r} does not match these parameters")
        for mine, theirs in zip(self.state, sd["state"]):
            for k, buf in mine.items():
                buf[...] = theirs[k]
        self.param_groups[0].update(sd["hyperparameters"])
        self.step_count = int(sd["step"])

    def __repr__(self):
        hp = ", ".join(f"{k}={v}" for k, v in self.param_groups[0].items() if k != "params")
        return f"{type(self).__name__}({hp})"


class _Frozen:
    """Freezing, as PyTorch skips a parameter without a gradient: ``before`` an
    update zeroes the frozen parameters' gradients (so that clipping by the
    global norm ignores them) and copies their values and their slices of the
    optimizer state aside; ``after`` it puts those back. An update -- momentum,
    weight decay and Adam's moments included, the fused C update too -- thus
    leaves them bitwise unchanged. The copies are allocated once."""

    def __init__(self, optimizer, frozen):
        self.grads = [p.grad for p in frozen]
        views = [p.data for p in frozen]
        for p in frozen:
            if optimizer.flat:       # one flat state array per name, laid out like flat
                views += [s.reshape(-1)[p.offset:p.offset + p.data.size]
                          for s in optimizer.state[0].values()]
            else:
                i = next(k for k, q in enumerate(optimizer.params) if q is p)
                views += list(optimizer.state[i].values())
        self.views, self.saved = views, [np.empty_like(v) for v in views]

    def before(self):
        for g in self.grads:
            g.fill(0.0)
        for v, s in zip(self.views, self.saved):
            np.copyto(s, v)

    def after(self):
        for v, s in zip(self.views, self.saved):
            np.copyto(v, s)


class SGD(Optimizer):
    """Stochastic gradient descent with momentum (PyTorch semantics).

    g ← g + wd·p;  if momentum ≠ 0:  b ← g at t = 1, else b ← momentum·b + (1 - dampening)·g;
    g ← g + momentum·b (nesterov) or b;   p ← p - lr·g.
    """
    _c_name = "sgd"
    def __init__(self, params, lr=0.01, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, max_grad_norm=None, backend=None):
        hp = dict(lr=_check("learning rate", lr),
                  momentum=_check("momentum value", momentum, high=1.0),
                  dampening=_check("dampening", dampening),
                  weight_decay=_check("weight_decay value", weight_decay),
                  nesterov=bool(nesterov))
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        self._state_names = ("momentum_buffer",) if momentum != 0 else ()
        super().__init__(params, hp, backend, max_grad_norm)

    def _update(self, be, p, g, s, t, hp):
        be.sgd_update(p, s.get("momentum_buffer"), g, t, hp["lr"], hp["momentum"],
                      hp["dampening"], hp["weight_decay"], hp["nesterov"])


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), bias-corrected, L2 weight decay (g ← g + wd·p):

    m ← β1·m + (1 - β1)·g;  v ← β2·v + (1 - β2)·g²;
    p ← p - lr · (m / (1 - β1^t)) / (sqrt(v / (1 - β2^t)) + eps).
    """
    _state_names = ("exp_avg", "exp_avg_sq")
    _decoupled, _c_name = False, "adam"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 max_grad_norm=None, backend=None):
        if np.ndim(betas) != 1 or len(betas) != 2:
            raise ValueError(f"Invalid betas: {betas!r} (expected a pair (beta1, beta2))")
        b1, b2 = betas
        hp = dict(lr=_check("learning rate", lr),
                  betas=(_check("beta parameter at index 0", b1, high=1.0),
                         _check("beta parameter at index 1", b2, high=1.0)),
                  eps=_check("epsilon value", eps, low_open=True),
                  weight_decay=_check("weight_decay value", weight_decay))
        super().__init__(params, hp, backend, max_grad_norm)

    def _update(self, be, p, g, s, t, hp):
        be.adam_update(p, s["exp_avg"], s["exp_avg_sq"], g, t, hp["lr"], hp["betas"][0],
                       hp["betas"][1], hp["eps"], hp["weight_decay"], self._decoupled)


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay,
    p ← p - lr·wd·p before the Adam step (default wd = 1e-2)."""
    _decoupled, _c_name = True, "adamw"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 max_grad_norm=None, backend=None):
        super().__init__(params, lr, betas, eps, weight_decay, max_grad_norm, backend)


class RMSprop(Optimizer):
    """RMSprop (PyTorch semantics, not centered): g ← g + wd·p;
    s ← α·s + (1 - α)·g²;  with momentum μ > 0: b ← μ·b + g / (sqrt(s) + eps), p ← p - lr·b;
    else p ← p - lr · g / (sqrt(s) + eps)."""
    _c_name = "rmsprop"

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 max_grad_norm=None, backend=None):
        hp = dict(lr=_check("learning rate", lr), alpha=_check("alpha value", alpha, high=1.0,
                                                               high_open=False),
                  eps=_check("epsilon value", eps, low_open=True),
                  weight_decay=_check("weight_decay value", weight_decay),
                  momentum=_check("momentum value", momentum, high=1.0))
        self._state_names = ("square_avg", "momentum_buffer") if momentum > 0 else ("square_avg",)
        super().__init__(params, hp, backend, max_grad_norm)

    def _update(self, be, p, g, s, t, hp):
        be.rmsprop_update(p, s["square_avg"], s.get("momentum_buffer"), g, t, hp["lr"],
                          hp["alpha"], hp["eps"], hp["weight_decay"], hp["momentum"])


class Adagrad(Optimizer):
    """AdaGrad (Duchi et al. 2011; PyTorch semantics): g ← g + wd·p;
    clr = lr / (1 + (t - 1)·lr_decay);  s ← s + g²;  p ← p - clr · g / (sqrt(s) + eps).
    s starts at initial_accumulator_value."""
    _state_names, _c_name = ("sum",), "adagrad"

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, max_grad_norm=None, backend=None):
        hp = dict(lr=_check("learning rate", lr), lr_decay=_check("lr_decay", lr_decay),
                  weight_decay=_check("weight_decay value", weight_decay),
                  initial_accumulator_value=_check("initial_accumulator_value",
                                                   initial_accumulator_value),
                  eps=_check("epsilon value", eps, low_open=True))
        self._init_value = hp["initial_accumulator_value"]
        super().__init__(params, hp, backend, max_grad_norm)

    def _init_state(self, name, data):
        return np.full_like(data, self._init_value)

    def _update(self, be, p, g, s, t, hp):
        be.adagrad_update(p, s["sum"], g, t, hp["lr"], hp["lr_decay"], hp["eps"],
                          hp["weight_decay"])


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}


def get_optimizer(optimizer, params):
    """An optimizer from an instance or a name (see OPTIMIZERS) with default settings."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in OPTIMIZERS:
        return OPTIMIZERS[optimizer.lower()](params)
    raise ValueError(f"unknown optimizer {optimizer!r}; valid names: {', '.join(OPTIMIZERS)} "
                     "(or an optimizer instance)")
