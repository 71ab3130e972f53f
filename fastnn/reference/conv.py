"""Convolution references: mirrors ``csrc/conv.c`` with the same signatures as
:mod:`fastnn._core` (``conv2d_forward(y, x, weight, bias, stride, padding,
dilation, groups)``, ``conv2d_backward(dx, dweight, dbias, dy, x, weight, ...)``,
and the conv1d pair).

Cross-correlation as PyTorch: x (N, C, H, W), weight (O, C/groups, KH, KW),
bias (O) or None, y (N, O, OH, OW) with OH = (H + pt + pb - dh (KH - 1) - 1)
// sh + 1. padding is an int, one int per dim (symmetric), or one (before,
after) pair per dim. dx is OVERWRITTEN (None: skipped); dweight and dbias
are ACCUMULATED (None: skipped). One einsum per kernel offset and group, in
the dtype of the inputs (float64 for gradient checks).
"""
import numpy as np

__all__ = ["conv_out_size", "conv_padding", "conv2d_forward", "conv2d_backward",
           "conv1d_forward", "conv1d_backward"]


def conv_out_size(n, k, s, d, before, after):
    """(n + before + after - d (k - 1) - 1) // s + 1, or -1 when the kernel does not fit."""
    span = n + before + after - d * (k - 1) - 1
    return -1 if span < 0 else span // s + 1


def conv_padding(padding, nd):
    """[(before, after)] * nd from an int, nd ints or nd pairs (conv1d: one pair)."""
    if isinstance(padding, (int, np.integer)):
        pads = [(int(padding), int(padding))] * nd
    else:
        padding = tuple(padding)
        if nd == 1 and len(padding) == 2 and all(isinstance(v, (int, np.integer))
                                                 for v in padding):
            pads = [padding]
        elif len(padding) == nd:
            pads = [(v, v) if isinstance(v, (int, np.integer)) else tuple(v) for v in padding]
        else:
            raise ValueError(f"conv: padding must be an int, {nd} ints or {nd} (before, after) "
                             f"pairs, got {padding!r}")
    pads = [(int(a), int(b)) for a, b in pads]
    for a, b in pads:
        if a < 0 or b - a not in (0, 1):
            raise ValueError(f"conv: padding {padding!r}: each (before, after) must have "
                             f"before >= 0 and after = before or before + 1")
    return pads


def _tuple(v, nd):
    return (int(v),) * nd if isinstance(v, (int, np.integer)) else tuple(int(u) for u in v)


def _geometry(x, weight, stride, padding, dilation, groups, nd):
    if x.ndim != nd + 2 or weight.ndim != nd + 2:
        raise ValueError(f"conv{nd}d: x {x.shape} and weight {weight.shape} must be "
                         f"{nd + 2}-D")
    s, d, pads = _tuple(stride, nd), _tuple(dilation, nd), conv_padding(padding, nd)
    N, C = x.shape[:2]
    O, Cg = weight.shape[:2]
    if groups < 1 or C % groups or O % groups or Cg != C // groups:
        raise ValueError(f"conv{nd}d: input {x.shape}, weight {weight.shape} and groups "
                         f"{groups} do not fit")
    k = weight.shape[2:]
    o = tuple(conv_out_size(x.shape[2 + i], k[i], s[i], d[i], *pads[i]) for i in range(nd))
    if min(s) < 1 or min(d) < 1 or min(o) < 1:
        raise ValueError(f"conv{nd}d: kernel {k} (dilation {d}) does not fit input {x.shape} "
                         f"padded {pads} with stride {s}")
    return s, d, pads, k, o


def _windows(xp, k, s, d, o):
    """(offset index, view (N, C, *o)) of the padded input for each kernel offset."""
    for idx in np.ndindex(*k):
        sl = tuple(slice(idx[i] * d[i], idx[i] * d[i] + s[i] * (o[i] - 1) + 1, s[i])
                   for i in range(len(k)))
        yield idx, xp[(slice(None), slice(None)) + sl]


def _pad(x, pads):
    return np.pad(x, [(0, 0), (0, 0)] + list(pads))


def _forward(y, x, weight, bias, stride, padding, dilation, groups, nd):
    s, d, pads, k, o = _geometry(x, weight, stride, padding, dilation, groups, nd)
    G, O = groups, weight.shape[0]
    Cg, Og = x.shape[1] // G, O // G
    sp = "hw" if nd == 2 else "l"
    xp = _pad(x, pads)
    acc = np.zeros((x.shape[0], O) + o, np.result_type(x, weight))
    for idx, win in _windows(xp, k, s, d, o):
        for g in range(G):
            acc[:, g * Og:(g + 1) * Og] += np.einsum(
                f"nc{sp},oc->no{sp}", win[:, g * Cg:(g + 1) * Cg],
                weight[(slice(g * Og, (g + 1) * Og), slice(None)) + idx])
    if bias is not None:
        acc += bias.reshape((1, O) + (1,) * nd)
    y[...] = acc


def _backward(dx, dweight, dbias, dy, x, weight, stride, padding, dilation, groups, nd):
    s, d, pads, k, o = _geometry(x, weight, stride, padding, dilation, groups, nd)
    G, O = groups, weight.shape[0]
    Cg, Og = x.shape[1] // G, O // G
    sp = "hw" if nd == 2 else "l"
    if dbias is not None:
        dbias += dy.sum(axis=(0,) + tuple(range(2, nd + 2))).astype(dbias.dtype)
    xp = _pad(x, pads)
    dxp = np.zeros(xp.shape, np.result_type(dy, weight)) if dx is not None else None
    dwins = dict(_windows(dxp, k, s, d, o)) if dx is not None else {}
    for idx, win in _windows(xp, k, s, d, o):
        for g in range(G):
            cs, os_ = slice(g * Cg, (g + 1) * Cg), slice(g * Og, (g + 1) * Og)
            if dweight is not None:
                dweight[(os_, slice(None)) + idx] += np.einsum(
                    f"no{sp},nc{sp}->oc", dy[:, os_], win[:, cs]).astype(dweight.dtype)
            if dx is not None:
                dwins[idx][:, cs] += np.einsum(f"no{sp},oc->nc{sp}", dy[:, os_],
                                               weight[(os_, slice(None)) + idx])
    if dx is not None:
        inner = tuple(slice(a, a + n) for (a, _), n in zip(pads, x.shape[2:]))
        dx[...] = dxp[(slice(None), slice(None)) + inner]


def conv2d_forward(y, x, weight, bias, stride, padding, dilation, groups):
    """y (N, O, OH, OW) = conv2d(x (N, C, H, W), weight (O, C/groups, KH, KW)) + bias."""
    _forward(y, x, weight, bias, stride, padding, dilation, groups, 2)


def conv2d_backward(dx, dweight, dbias, dy, x, weight, stride, padding, dilation, groups):
    """dx = the transposed convolution of dy (OVERWRITTEN); dweight += the correlation
    of dy with the padded x; dbias += dy summed over batch and space."""
    _backward(dx, dweight, dbias, dy, x, weight, stride, padding, dilation, groups, 2)


def conv1d_forward(y, x, weight, bias, stride, padding, dilation, groups):
    """y (N, O, OL) = conv1d(x (N, C, L), weight (O, C/groups, K)) + bias."""
    _forward(y, x, weight, bias, stride, padding, dilation, groups, 1)


def conv1d_backward(dx, dweight, dbias, dy, x, weight, stride, padding, dilation, groups):
    """dx (OVERWRITTEN), dweight, dbias (ACCUMULATED) of conv1d."""
    _backward(dx, dweight, dbias, dy, x, weight, stride, padding, dilation, groups, 1)
