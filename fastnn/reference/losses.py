"""Loss references: each returns the mean loss as a Python float and, unless
``dpred`` is None, overwrites dpred (shape of pred) with d(mean loss)/d(pred).

Mirrors ``csrc/losses.c``. pred/target are (N, D); the mean is over N*D
elements (an empty batch gives loss 0.0). Computes in the inputs' dtype.
"""
import numpy as np


def _write(dpred, grad):
    if dpred is not None:
        dpred[...] = grad


def mse_loss(dpred, pred, target):
    """loss = mean(r^2), r = pred - target;  dpred = 2 r / n."""
    n = pred.size
    if n == 0:
        return 0.0
    r = pred - target
    _write(dpred, 2 * r / n)
    return float(np.mean(r * r))


def mae_loss(dpred, pred, target):
    """loss = mean(|r|);  dpred = sign(r) / n (0 at r == 0, as PyTorch)."""
    n = pred.size
    if n == 0:
        return 0.0
    r = pred - target
    _write(dpred, np.sign(r) / n)
    return float(np.mean(np.abs(r)))


def huber_loss(dpred, pred, target, delta):
    """loss = mean(0.5 r^2 if |r| <= delta else delta (|r| - 0.5 delta));
    dpred = clip(r, -delta, delta) / n."""
    if not delta > 0:
        raise ValueError(f"huber delta must be > 0, got {delta}")
    n = pred.size
    if n == 0:
        return 0.0
    r = pred - target
    a = np.abs(r)
    _write(dpred, np.clip(r, -delta, delta) / n)
    return float(np.mean(np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))))


def bce_with_logits_loss(dpred, logits, target, pos_weight):
    """Binary cross-entropy on logits z, targets t in [0, 1], pos_weight pw (D,) or None:

    l = -(pw t log sigmoid(z) + (1 - t) log(1 - sigmoid(z)))
      = (1 - t) z + c softplus(-z),  c = 1 + (pw - 1) t,
    with softplus(-z) = log1p(exp(-|z|)) + max(-z, 0) (no overflow);
    dl/dz = (1 - t) - c sigmoid(-z).  loss = mean(l), dpred = dl/dz / n.
    """
    n = logits.size
    if n == 0:
        return 0.0
    z, t = logits, target
    c = 1 if pos_weight is None else 1 + (pos_weight - 1) * t
    e = np.exp(-np.abs(z))
    softplus_neg = np.log1p(e) + np.maximum(-z, 0)
    sigmoid_neg = np.where(z >= 0, e / (1 + e), 1 / (1 + e))
    _write(dpred, ((1 - t) - c * sigmoid_neg) / n)
    return float(np.mean((1 - t) * z + c * softplus_neg))


def cross_entropy_loss(dpred, logits, labels, weight, ignore_index):
    """Softmax cross-entropy of logits z (N, C) with integer labels y (N,):

    l_i = w[y_i] (logsumexp(z_i) - z_i[y_i]);  loss = sum_i l_i / sum_i w[y_i]
    over rows with y_i != ignore_index (PyTorch's weighted mean; w = 1 if
    weight is None). dpred_i = w[y_i] (softmax(z_i) - onehot(y_i)) / sum w;
    ignored rows get 0. If no row counts, loss 0 and dpred all zeros.
    Every label is checked before anything is written: IndexError otherwise.
    """
    N, C = logits.shape
    valid = labels != ignore_index
    bad = valid & ((labels < 0) | (labels >= C))
    if bad.any():
        row = int(np.argmax(bad))
        raise IndexError(f"target {labels[row]} is out of bounds for {C} classes "
                         f"(row {row})")
    y = np.where(valid, labels, 0)
    w = np.zeros(N, logits.dtype)
    w[valid] = 1 if weight is None else weight[labels[valid]]
    total = w.sum()
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
