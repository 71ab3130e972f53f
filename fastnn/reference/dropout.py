"""Inverted dropout with the C core's stateless mask (csrc/dropout.c), in NumPy.

keep(i) = u(key, i) >= ceil(p * 2^24), u = splitmix64(key + i) >> 40, and a
kept element is scaled by 1 / (1 - p): the same bits as the C kernel, so the
two backends drop the same units.
"""
import numpy as np

_M64 = 0xFFFFFFFFFFFFFFFF


def _splitmix64_scalar(z):
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _splitmix64(z):
    """splitmix64 over a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def dropout_key(seed, layer, counter):
    """Key of one dropout call: hash of (model seed, layer index, counter)."""
    inner = _splitmix64_scalar((seed & _M64) ^ _splitmix64_scalar(layer & _M64))
    return _splitmix64_scalar((inner + (counter & _M64)) & _M64)


def _mask(n, p, key, dtype):
    """The scale of each of n elements: 0 (dropped) or 1 / (1 - p)."""
    with np.errstate(over="ignore"):
        idx = np.arange(n, dtype=np.uint64) + np.uint64(key & _M64)
    u = _splitmix64(idx) >> np.uint64(40)
    thresh = np.uint64(int(np.ceil(float(np.float32(p)) * 16777216.0)))
    scale = np.float32(1.0) / (np.float32(1.0) - np.float32(p))
    return np.where(u >= thresh, scale, np.float32(0.0)).astype(dtype)


def _check_p(p):
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")


def dropout_forward(y, x, p, key):
    """y = x * mask / (1 - p)."""
    _check_p(p)
    y[...] = x * _mask(x.size, p, key, x.dtype).reshape(x.shape)


def dropout_backward(dx, dy, p, key):
    """dx = dy * mask / (1 - p), with the forward's mask."""
    _check_p(p)
    dx[...] = dy * _mask(dy.size, p, key, dy.dtype).reshape(dy.shape)
