"""Loss references: each returns the loss as a Python float and, unless
``dpred`` is None, overwrites dpred (shape of pred) with d(loss)/d(pred).

Mirrors ``csrc/losses.c``. pred/target are (N, D); the loss is the mean over
N*D elements (an empty batch gives loss 0.0). With ``sample_weight`` (N,)
and ``denom``: loss = sum_i w_i l_i / (denom D), l_i row i's sum over its D
elements, and denom <= 0 meaning sum_i w_i (a weighted mean; the plain mean
without weights). Cross-entropy has no 1/D and folds its class weight into
w_i. Computes in the inputs' dtype.
"""
import numpy as np


def _write(dpred, grad):
    if dpred is not None:
        dpred[...] = grad


def _row_weights(sample_weight, n):
    """sample_weight as a checked (n,) array, or None."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},), got {w.shape}")
    bad = ~(np.isfinite(w) & (w >= 0))
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"sample weight at row {row} is {w[row]}: weights must be finite "
                         f"and >= 0")
    return w


def _reduce(dpred, elem, grad, sample_weight, denom):
    """The loss of per-element terms elem (N, D) with per-element derivatives
    grad, weighted and divided as the module docstring says."""
    N = elem.shape[0]
    D = elem.size // N if N else 1
    w = _row_weights(sample_weight, N)
    if elem.size == 0:
        return 0.0
    if w is None:
        w = np.ones(N, elem.dtype)
    if not denom > 0:
        denom = float(w.sum())
    if denom == 0:
        _write(dpred, 0)
        return 0.0
    wr = (w / (denom * D)).astype(elem.dtype).reshape((N,) + (1,) * (elem.ndim - 1))
    _write(dpred, grad * wr)
    return float((elem * wr).sum())


def mse_loss(dpred, pred, target, *, sample_weight=None, denom=0.0):
    """loss = mean(r^2), r = pred - target;  dpred = 2 r / n."""
    r = pred - target
    return _reduce(dpred, r * r, 2 * r, sample_weight, denom)


def mae_loss(dpred, pred, target, *, sample_weight=None, denom=0.0):
    """loss = mean(|r|);  dpred = sign(r) / n (0 at r == 0, as PyTorch)."""
    r = pred - target
    return _reduce(dpred, np.abs(r), np.sign(r), sample_weight, denom)


def huber_loss(dpred, pred, target, delta, *, sample_weight=None, denom=0.0):
    """loss = mean(0.5 r^2 if |r| <= delta else delta (|r| - 0.5 delta));
    dpred = clip(r, -delta, delta) / n."""
    if not delta > 0:
        raise ValueError(f"huber delta must be > 0, got {delta}")
    r = pred - target
    a = np.abs(r)
    return _reduce(dpred, np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)),
                   np.clip(r, -delta, delta), sample_weight, denom)


def bce_with_logits_loss(dpred, logits, target, pos_weight, *, sample_weight=None, denom=0.0):
    """Binary cross-entropy on logits z, targets t in [0, 1], pos_weight pw (D,) or None:

    l = -(pw t log sigmoid(z) + (1 - t) log(1 - sigmoid(z)))
      = (1 - t) z + c softplus(-z),  c = 1 + (pw - 1) t,
    with softplus(-z) = log1p(exp(-|z|)) + max(-z, 0) (no overflow);
    dl/dz = (1 - t) - c sigmoid(-z).  loss = mean(l), dpred = dl/dz / n.
    """
    z, t = logits, target
    c = 1 if pos_weight is None else 1 + (pos_weight - 1) * t
    e = np.exp(-np.abs(z))
    softplus_neg = np.log1p(e) + np.maximum(-z, 0)
    sigmoid_neg = np.where(z >= 0, e / (1 + e), 1 / (1 + e))
    return _reduce(dpred, (1 - t) * z + c * softplus_neg, (1 - t) - c * sigmoid_neg,
                   sample_weight, denom)


def cross_entropy_loss(dpred, logits, labels, weight, ignore_index, *, sample_weight=None,
                       denom=0.0):
    """Softmax cross-entropy of logits z (N, C) with integer labels y (N,):

    l_i = w[y_i] (logsumexp(z_i) - z_i[y_i]);  loss = sum_i l_i / sum_i w[y_i]
    over rows with y_i != ignore_index (PyTorch's weighted mean; w = 1 if
    weight is None). dpred_i = w[y_i] (softmax(z_i) - onehot(y_i)) / sum w;
    ignored rows get 0. If no row counts, loss 0 and dpred all zeros.
    Every label is checked before anything is written: IndexError otherwise.
    """
    N, C = logits.shape
    rw = _row_weights(sample_weight, N)
    valid = labels != ignore_index
    bad = valid & ((labels < 0) | (labels >= C))
    if bad.any():
        row = int(np.argmax(bad))
        raise IndexError(f"target {labels[row]} is out of bounds for {C} classes "
                         f"(row {row})")
    y = np.where(valid, labels, 0)
    w = np.zeros(N, logits.dtype)
    w[valid] = 1 if weight is None else weight[labels[valid]]
    if rw is not None:
        w = w * rw.astype(logits.dtype)
    total = denom if denom > 0 else w.sum()
    if total == 0:
        _write(dpred, 0)
        return 0.0
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    rows = np.arange(N)
    if dpred is not None:
        g = np.exp(logp)
        g[rows, y] -= 1
        dpred[...] = g * (w / total)[:, None]
    return float(-(w * logp[rows, y]).sum() / total)
