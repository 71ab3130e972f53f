"""Pooling references: mirrors ``csrc/pool.c`` with the same signatures.

x is (N, C, H, W), y (N, C, OH, OW); dx is OVERWRITTEN (None: skipped).
Output sizes follow PyTorch (:func:`pool_out_size`); windows are clipped to
the input. Max pooling: the first largest element of a window (row-major)
wins, a NaN makes the output NaN; backward sends dy to that element.
Computed in the dtype of the inputs (float64 for gradient checks).
"""
import numpy as np

__all__ = ["pool_out_size", "max_pool2d_forward", "max_pool2d_backward",
           "avg_pool2d_forward", "avg_pool2d_backward", "adaptive_avg_pool2d_forward",
           "adaptive_avg_pool2d_backward"]


def _pair(v):
    return tuple(int(u) for u in v) if isinstance(v, (tuple, list)) else (int(v), int(v))


def pool_out_size(n, k, s, p, ceil_mode):
    """floor (or ceil) ((n + 2p - k) / s) + 1; in ceil mode the last window must
    start inside the input or its left padding. -1 when the arguments are invalid."""
    if n < 1 or k < 1 or s < 1 or p < 0 or p > k // 2 or n + 2 * p - k < 0:
        return -1
    span = n + 2 * p - k
    o = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


def _geometry(x, kernel, stride, padding, ceil_mode):
    k, s, p = _pair(kernel), _pair(stride), _pair(padding)
    o = tuple(pool_out_size(x.shape[2 + d], k[d], s[d], p[d], ceil_mode) for d in range(2))
    if min(o) < 1:
        raise ValueError(f"pooling: kernel {k}, stride {s}, padding {p} do not fit input "
                         f"{x.shape}")
    return k, s, p, o


def _windows(H, W, k, s, p, o):
    """Each output's clipped window [h0, h1) x [w0, w1) and its unclipped-but-
    padding-bounded size (PyTorch's count_include_pad divisor)."""
    for oh in range(o[0]):
        a0 = oh * s[0] - p[0]
        a1 = min(a0 + k[0], H + p[0])
        for ow in range(o[1]):
            b0 = ow * s[1] - p[1]
            b1 = min(b0 + k[1], W + p[1])
            size = (a1 - a0) * (b1 - b0)
            yield oh, ow, max(a0, 0), min(a1, H), max(b0, 0), min(b1, W), size


def _first_max(win):
    """Flat index of the first maximum of win (N, C, h*w) along its last axis, or of
    the first NaN (numpy's argmax treats NaN as the largest)."""
    return np.argmax(win, axis=2)


def max_pool2d_forward(y, x, kernel, stride, padding, ceil_mode):
    """y (N, C, OH, OW) = the maximum of each window of x (N, C, H, W)."""
    k, s, p, o = _geometry(x, kernel, stride, padding, ceil_mode)
    H, W = x.shape[2:]
    for oh, ow, h0, h1, w0, w1, _ in _windows(H, W, k, s, p, o):
        win = x[:, :, h0:h1, w0:w1].reshape(x.shape[0], x.shape[1], -1)
        y[:, :, oh, ow] = np.take_along_axis(win, _first_max(win)[..., None], 2)[..., 0]


def max_pool2d_backward(dx, dy, x, y, kernel, stride, padding, ceil_mode):
    """dx = dy routed to each window's first maximum (summed where windows overlap)."""
    if dx is None:
        return
    k, s, p, o = _geometry(x, kernel, stride, padding, ceil_mode)
    N, C, H, W = x.shape
    dx[...] = 0
    n_idx, c_idx = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    for oh, ow, h0, h1, w0, w1, _ in _windows(H, W, k, s, p, o):
        win = x[:, :, h0:h1, w0:w1].reshape(N, C, -1)
        at = _first_max(win)
        wh = w1 - w0
        np.add.at(dx, (n_idx, c_idx, h0 + at // wh, w0 + at % wh), dy[:, :, oh, ow])


def avg_pool2d_forward(y, x, kernel, stride, padding, ceil_mode, count_include_pad):
    """y = the mean of each window (divisor: padded window size, or the input
    elements covered when count_include_pad is False)."""
    k, s, p, o = _geometry(x, kernel, stride, padding, ceil_mode)
    H, W = x.shape[2:]
    for oh, ow, h0, h1, w0, w1, size in _windows(H, W, k, s, p, o):
        div = size if count_include_pad else (h1 - h0) * (w1 - w0)
        y[:, :, oh, ow] = x[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / div


def avg_pool2d_backward(dx, dy, x, y, kernel, stride, padding, ceil_mode, count_include_pad):
    """dx = each dy / divisor spread over its window."""
    if dx is None:
        return
    k, s, p, o = _geometry(x, kernel, stride, padding, ceil_mode)
    H, W = x.shape[2:]
    dx[...] = 0
    for oh, ow, h0, h1, w0, w1, size in _windows(H, W, k, s, p, o):
        div = size if count_include_pad else (h1 - h0) * (w1 - w0)
        dx[:, :, h0:h1, w0:w1] += (dy[:, :, oh, ow] / div)[:, :, None, None]


def _adaptive(H, W, OH, OW):
    for oh in range(OH):
        h0, h1 = oh * H // OH, -(-(oh + 1) * H // OH)
        for ow in range(OW):
            yield oh, ow, h0, h1, ow * W // OW, -(-(ow + 1) * W // OW)


def adaptive_avg_pool2d_forward(y, x):
    """y (N, C, OH, OW): output i averages input rows [floor(iH/OH), ceil((i+1)H/OH))
    (columns likewise), as PyTorch."""
    H, W = x.shape[2:]
    for oh, ow, h0, h1, w0, w1 in _adaptive(H, W, *y.shape[2:]):
        y[:, :, oh, ow] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))


def adaptive_avg_pool2d_backward(dx, dy, x, y):
    """dx = each dy spread evenly over its window."""
    if dx is None:
        return
    H, W = x.shape[2:]
    dx[...] = 0
    for oh, ow, h0, h1, w0, w1 in _adaptive(H, W, *y.shape[2:]):
        dx[:, :, h0:h1, w0:w1] += (dy[:, :, oh, ow] / ((h1 - h0) * (w1 - w0)))[:, :, None, None]
