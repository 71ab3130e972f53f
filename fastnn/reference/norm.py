"""Normalization references: mirrors ``csrc/norm.c`` with the same signatures.

Batch norm over x (N, C, ...): per channel c, the M = N * prod(...) values.
Training (or running statistics None): batch mean and biased variance
normalize; running statistics, when given, become (1 - m) running + m batch
with the unbiased variance (m = momentum, or 1 / num_batches_tracked when
momentum is None); num_batches_tracked counts training calls. Evaluation:
the running statistics normalize. Layer norm over the rows of x (R, D).
dx is OVERWRITTEN (None: skipped), dweight and dbias ACCUMULATE. Statistics
are computed in float64 whatever the input dtype.
"""
import numpy as np

__all__ = ["batch_norm_forward", "batch_norm_backward", "layer_norm_forward",
           "layer_norm_backward"]


def _channels(x):
    """x as (N, C, S) and the axes to reduce."""
    return x.reshape(x.shape[0], x.shape[1], -1)


def _batch_stats(x3):
    M = x3.shape[0] * x3.shape[2]
    if M < 2:
        raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                         f"got input of {x3.shape[0]} row(s) with {x3.shape[2]} value(s) per "
                         f"channel")
    xd = x3.astype(np.float64)
    mean = xd.mean(axis=(0, 2))
    var = ((xd - mean[None, :, None]) ** 2).mean(axis=(0, 2))
    return mean, var, M


def batch_norm_forward(y, x, weight, bias, running_mean, running_var, num_batches_tracked,
                       training, momentum, eps):
    """y = (x - mean) / sqrt(var + eps) * weight + bias (weight, bias None: 1, 0)."""
    x3 = _channels(x)
    if training or running_mean is None:
        mean, var, M = _batch_stats(x3)
        if running_mean is not None and training:
            if num_batches_tracked is not None:
                num_batches_tracked += 1
            m = 1.0 / float(num_batches_tracked.reshape(-1)[0]) if momentum is None \
                else float(momentum)
            running_mean[...] = (1 - m) * running_mean.astype(np.float64) + m * mean
            running_var[...] = (1 - m) * running_var.astype(np.float64) + m * var * M / (M - 1)
    else:
        mean = running_mean.astype(np.float64)
        var = running_var.astype(np.float64)
    inv = 1.0 / np.sqrt(var + eps)
    w = 1.0 if weight is None else weight.astype(np.float64)
    b = 0.0 if bias is None else bias.astype(np.float64)
    scale = (w * inv)[None, :, None]
    out = (x3 - mean[None, :, None]) * scale + np.broadcast_to(b, mean.shape)[None, :, None]
    y[...] = out.reshape(x.shape)


def batch_norm_backward(dx, dweight, dbias, dy, x, weight, running_mean, running_var,
                        training, eps):
    """Gradients of batch norm; the batch statistics are recomputed from x."""
    x3, dy3 = _channels(x).astype(np.float64), _channels(dy).astype(np.float64)
    batch = training or running_mean is None
    if batch:
        mean, var, M = _batch_stats(x3)
    else:
        mean, var = running_mean.astype(np.float64), running_var.astype(np.float64)
    inv = 1.0 / np.sqrt(var + eps)
    xhat = (x3 - mean[None, :, None]) * inv[None, :, None]
    sdy = dy3.sum(axis=(0, 2))
    sdx = (dy3 * xhat).sum(axis=(0, 2))
    if dweight is not None:
        dweight += sdx
    if dbias is not None:
        dbias += sdy
    if dx is None:
        return
    w = np.ones_like(mean) if weight is None else weight.astype(np.float64)
    g = (w * inv)[None, :, None]
    if batch:
        out = g * (dy3 - sdy[None, :, None] / M - xhat * sdx[None, :, None] / M)
    else:
        out = g * dy3
    dx[...] = out.reshape(x.shape)


def layer_norm_forward(y, stats, x, weight, bias, eps):
    """Each row of x (R, D): y = (x - mean) * rstd * weight + bias; stats (R, 2)."""
    xd = x.astype(np.float64)
    mean = xd.mean(axis=1)
    var = ((xd - mean[:, None]) ** 2).mean(axis=1)
    rstd = 1.0 / np.sqrt(var + eps)
    stats[:, 0], stats[:, 1] = mean, rstd
    out = (xd - mean[:, None]) * rstd[:, None]
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    y[...] = out


def layer_norm_backward(dx, dweight, dbias, dy, x, weight, stats):
    """dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy * weight."""
    mean, rstd = stats[:, 0].astype(np.float64), stats[:, 1].astype(np.float64)
    xhat = (x.astype(np.float64) - mean[:, None]) * rstd[:, None]
    dyd = dy.astype(np.float64)
    if dweight is not None:
        dweight += (dyd * xhat).sum(axis=0)
    if dbias is not None:
        dbias += dyd.sum(axis=0)
    if dx is not None:
        g = dyd if weight is None else dyd * weight
        dx[...] = rstd[:, None] * (g - g.mean(axis=1, keepdims=True)
                                   - xhat * (g * xhat).mean(axis=1, keepdims=True))
