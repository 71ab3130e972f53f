"""Loss functions (PyTorch names; ``reduction="mean"`` only).

``loss = loss_fn(pred, target)`` returns the mean loss as a float and keeps
d(loss)/d(pred); ``loss_fn.backward()`` returns it (an internal buffer,
overwritten by the next call). pred is (N, D) float32 -- a model's output.

Targets:
  * regression losses (MSE, L1, Huber) and BCEWithLogits: the target must
    have pred's shape (N, D). The one exception, made explicitly: a 1-D
    target (N,) is accepted for a one-output model (pred (N, 1)) and
    reshaped to (N, 1). Anything else is a ValueError -- never PyTorch's
    silent (N, 1) - (N,) -> (N, N) broadcast.
  * CrossEntropyLoss: integer class labels (N,) (or (N, 1)); float labels
    that are whole numbers (3.0) are accepted, others (1.5) are a
    ValueError; a label outside [0, C) that is not ``ignore_index`` is an
    IndexError naming the label and the class count.
"""
import numpy as np

from ._backend import get_backend
from .checks import all_finite

__all__ = ["MSELoss", "L1Loss", "MAELoss", "HuberLoss", "BCEWithLogitsLoss",
           "CrossEntropyLoss", "get_loss"]


def _as_float_target(target, who):
    """Target as C-contiguous float32; TypeError for non-real, ValueError for NaN/Inf."""
    t = target
    if not (type(t) is np.ndarray and t.dtype == np.float32 and t.flags.c_contiguous):
        t = np.asarray(target)
        if t.dtype.kind not in "biuf":
            raise TypeError(f"{who}: targets must be real numbers, got dtype {t.dtype}")
        with np.errstate(over="ignore"):
            t = np.ascontiguousarray(t, dtype=np.float32)
    if not all_finite(t):
        raise ValueError(f"{who}: target contains "
                         + ("NaN" if np.isnan(t).any() else "infinity or a value too large "
                            "for float32"))
    return t


def _class_weights(w, who, name):
    """Per-class/per-output weights as float32 (K,), finite and >= 0, or None."""
    if w is None:
        return None
    w = np.ascontiguousarray(np.atleast_1d(w), dtype=np.float32).ravel()
    if not (np.isfinite(w).all() and (w >= 0).all()):
        raise ValueError(f"{who}: {name} must be finite and >= 0, got {w}")
    return w


class _Loss:
    """Base: converts the target, calls one backend kernel, caches dpred."""
    classification = False    # report accuracy in fit/evaluate
    _metric = 0               # the C epoch's count of `correct` (fnn.h FNN_METRIC_*)
    _dpred = None

    def __init__(self, reduction="mean"):
        if reduction != "mean":
            raise ValueError(f"{type(self).__name__}: only reduction='mean' is supported, "
                             f"got {reduction!r}")
        self.reduction = reduction

    def __call__(self, pred, target):
        return self.forward(pred, target)

    def prepare_target(self, target, pred_shape=None):
        """Target as C-contiguous float32 with pred's shape (see the module doc)."""
        t = _as_float_target(target, type(self).__name__)
        if pred_shape is not None and t.shape != pred_shape:
            if t.ndim == 1 and pred_shape == (t.shape[0], 1):
                return t.reshape(-1, 1)
            raise ValueError(f"{type(self).__name__}: target shape {t.shape} does not match "
                             f"the prediction shape {pred_shape}")
        return t

    def forward(self, pred, target, backend=None, sample_weight=None, denom=0.0):
        """Mean loss of pred against target; keeps the gradient for backward().

        sample_weight (N,) float32 and denom: the loss is sum_i w_i l_i / denom
        (denom <= 0: / sum_i w_i), l_i row i's mean loss (fastnn/reference/losses.py);
        fit passes denom = the batch's rows (Keras)."""
        pred = np.ascontiguousarray(pred, dtype=np.float32)
        if pred.ndim != 2:
            raise ValueError(f"{type(self).__name__}: pred must be 2-D (batch, outputs), "
                             f"got shape {pred.shape}")
        if pred.size == 0:
            raise ValueError(f"{type(self).__name__}: 0 sample(s) or output(s) (pred shape "
                             f"{pred.shape}) while a minimum of 1 is required")
        target = self.prepare_target(target, pred.shape)
        dpred = self._dpred
        if dpred is None or dpred.shape != pred.shape:
            dpred = np.empty(pred.shape, np.float32)
        kw = {} if sample_weight is None and not denom else \
            {"sample_weight": sample_weight, "denom": float(denom)}
        loss = self._kernel(backend or get_backend(), dpred, pred, target, **kw)
        self._dpred = dpred
        return float(loss)

    def backward(self):
        """d(mean loss)/d(pred) of the last call, (N, D)."""
        if self._dpred is None:
            raise RuntimeError("call the loss on (pred, target) before backward()")
        return self._dpred

    def correct(self, pred, target):
        """Number of correct predictions (classification losses only)."""
        raise NotImplementedError

    def _plan_spec(self):
        """(kernel name, delta, weight, ignore_index) for the fused C step, or
        None for a loss the C plan does not know (a user subclass)."""
        if type(self).__module__ != __name__:
            return None
        return (self._plan_name, getattr(self, "delta", 0.0),
                getattr(self, "weight", getattr(self, "pos_weight", None)),
                getattr(self, "ignore_index", -100))

    def __repr__(self):
        return f"{type(self).__name__}()"


class MSELoss(_Loss):
    """Mean squared error: L = mean((pred - target)²); dL/dpred = 2 (pred - target) / (N·D)."""
    _plan_name = "mse"

    def _kernel(self, be, dpred, pred, target, **kw):
        return be.mse_loss(dpred, pred, target, **kw)


class L1Loss(_Loss):
    """Mean absolute error: L = mean(|pred - target|); dL/dpred = sign(pred - target) / (N·D)
    (0 where pred == target)."""
    _plan_name = "mae"

    def _kernel(self, be, dpred, pred, target, **kw):
        return be.mae_loss(dpred, pred, target, **kw)


MAELoss = L1Loss


class HuberLoss(_Loss):
    """Huber loss, r = pred - target:  ½ r² if |r| ≤ delta else delta (|r| - ½ delta),
    averaged; dL/dpred = clip(r, -delta, delta) / (N·D). delta > 0."""
    _plan_name = "huber"

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction)
        if not np.isfinite(delta) or delta <= 0:
            raise ValueError(f"HuberLoss: delta must be > 0, got {delta!r}")
        self.delta = float(delta)

    def _kernel(self, be, dpred, pred, target, **kw):
        return be.huber_loss(dpred, pred, target, self.delta, **kw)

    def __repr__(self):
        return f"HuberLoss(delta={self.delta})"


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits z with targets t ∈ [0, 1], mean over N·D:
    l = -(pw · t · log σ(z) + (1 - t) · log(1 - σ(z))), computed stably as
    (1 - t) z + (1 + (pw - 1) t) softplus(-z). pos_weight (D,) weighs the
    positive term (default 1). Predicted class: z > 0."""
    _plan_name, _metric = "bce_with_logits", 2      # FNN_METRIC_SIGN
    classification = True

    def __init__(self, pos_weight=None, reduction="mean"):
        super().__init__(reduction)
        self.pos_weight = _class_weights(pos_weight, "BCEWithLogitsLoss", "pos_weight")

    def prepare_target(self, target, pred_shape=None):
        """Targets as for regression, and each in [0, 1] (else the loss is unbounded below)."""
        t = super().prepare_target(target, pred_shape)
        if t.min() < 0 or t.max() > 1:
            bad = t[(t < 0) | (t > 1)].ravel()[0]
            raise ValueError(f"BCEWithLogitsLoss: targets must be in [0, 1], got {bad}")
        return t

    def _kernel(self, be, dpred, pred, target, **kw):
        return be.bce_with_logits_loss(dpred, pred, target, self.pos_weight, **kw)

    def correct(self, pred, target):
        target = self.prepare_target(target, pred.shape)
        return float(np.sum((pred > 0) == (target > 0.5))) / pred.shape[1]


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy from logits z (N, C) and integer labels y (N,):
    l_i = w[y_i] (log Σ_j exp z_ij - z_i,y_i);  L = Σ l_i / Σ w[y_i] over rows with
    y_i != ignore_index (PyTorch's weighted mean). dL/dz_ij = w[y_i] (softmax(z_i)_j -
    [j = y_i]) / Σ w. weight (C,): per-class weights, e.g. to make a missed
    diagnosis cost more. Predicted class: argmax_j z_ij."""
    _plan_name, _metric = "cross_entropy", 1        # FNN_METRIC_ARGMAX
    classification = True

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        self.weight = _class_weights(weight, "CrossEntropyLoss", "weight")
        self.ignore_index = int(ignore_index)

    def prepare_target(self, target, pred_shape=None):
        """Labels as int64 (N,); whole-number floats accepted, 1.5 rejected."""
        t = np.asarray(target)
        if t.dtype != np.int64 or not t.flags.c_contiguous:
            if t.dtype.kind == "f":
                wrong = ~np.isfinite(t) | (t != np.round(t)) | (np.abs(t) >= 2.0**62)
                if wrong.any():
                    raise ValueError(f"CrossEntropyLoss: labels must be integers, got "
                                     f"{t[wrong].ravel()[0]}")
            elif t.dtype.kind not in "biu":
                raise TypeError(f"CrossEntropyLoss: labels must be integers, got dtype {t.dtype}")
            t = np.ascontiguousarray(t, dtype=np.int64)
        if t.ndim == 2 and t.shape[1] == 1:
            t = t.reshape(-1)
        if t.ndim != 1 or (pred_shape is not None and t.shape[0] != pred_shape[0]):
            want = f"({pred_shape[0]},)" if pred_shape else "(N,)"
            raise ValueError(f"CrossEntropyLoss: labels must have shape {want}, got {t.shape}")
        return t

    def check_range(self, labels, n_classes):
        """IndexError naming the first label outside [0, C) that is not ignore_index
        (fit checks all labels up front, before any step; the kernels check each batch)."""
        bad = ((labels < 0) | (labels >= n_classes)) & (labels != self.ignore_index)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise IndexError(f"target {labels[row]} is out of bounds for {n_classes} classes "
                             f"(row {row})")

    def _kernel(self, be, dpred, pred, target, **kw):
        return be.cross_entropy_loss(dpred, pred, target, self.weight, self.ignore_index, **kw)

    def correct(self, pred, target):
        return float(np.sum(pred.argmax(axis=1) == self.prepare_target(target, pred.shape)))


LOSSES = {"mse": MSELoss, "l1": L1Loss, "mae": L1Loss, "huber": HuberLoss,
          "bce_with_logits": BCEWithLogitsLoss, "cross_entropy": CrossEntropyLoss}


def get_loss(loss):
    """A loss instance from an instance or a name (see LOSSES)."""
    if isinstance(loss, _Loss):
        return loss
    if isinstance(loss, str) and loss.lower() in LOSSES:
        return LOSSES[loss.lower()]()
    if loss is None:
        raise ValueError("a loss is required, e.g. loss=fastnn.CrossEntropyLoss()")
    raise ValueError(f"unknown loss {loss!r}; valid names: {', '.join(LOSSES)} "
                     "(or a loss instance)")
