"""Activation references: forward ``y = f(x)``, backward ``dx = dy * f'(x)``.

Mirrors ``csrc/activations.c``: same signatures, dx is overwritten and may be
dy itself. Every function computes in the dtype of its inputs.
"""
import math

import numpy as np

GELU_K0 = math.sqrt(2.0 / math.pi)   # Python floats: they keep the array's dtype
GELU_K1 = 0.044715


def relu_forward(y, x):
    """y = max(x, 0); NaN propagates (np.maximum)."""
    np.maximum(x, 0, out=y)


def relu_backward(dx, dy, x, y):
    """dx = dy where x > 0, else 0."""
    dx[...] = np.where(x > 0, dy, 0)


def leaky_relu_forward(y, x, slope):
    """y = x if x > 0 else slope * x."""
    y[...] = np.where(x > 0, x, slope * x)


def leaky_relu_backward(dx, dy, x, y, slope):
    """dx = dy if x > 0 else slope * dy."""
    dx[...] = np.where(x > 0, dy, slope * dy)


def sigmoid_forward(y, x):
    """y = 1 / (1 + exp(-x)), without overflow: with e = exp(-|x|) <= 1,
    y = 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0."""
    e = np.exp(-np.abs(x))
    y[...] = np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_backward(dx, dy, x, y):
    """dx = dy * y * (1 - y)."""
    dx[...] = dy * y * (1 - y)


def tanh_forward(y, x):
    """y = tanh(x)."""
    np.tanh(x, out=y)


def tanh_backward(dx, dy, x, y):
    """dx = dy * (1 - y^2)."""
    dx[...] = dy * (1 - y * y)


def _gelu_u(x):
    return GELU_K0 * (x + GELU_K1 * x ** 3)


def gelu_forward(y, x):
    """GELU, tanh approximation: y = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3)."""
    y[...] = 0.5 * x * (1 + np.tanh(_gelu_u(x)))


def gelu_backward(dx, dy, x, y):
    """dx = dy * (0.5 (1 + t) + 0.5 x (1 - t^2) u'(x)), t = tanh(u),
    u'(x) = sqrt(2/pi) (1 + 3 * 0.044715 x^2)."""
    t = np.tanh(_gelu_u(x))
    du = GELU_K0 * (1 + 3 * GELU_K1 * x * x)
    dx[...] = dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)


def softmax_forward(y, x):
    """Row-wise y[i, j] = exp(x[i, j] - max_i) / sum_k exp(x[i, k] - max_i)."""
    if x.size == 0:
        return
    e = np.exp(x - x.max(axis=1, keepdims=True))
    y[...] = e / e.sum(axis=1, keepdims=True)


def softmax_backward(dx, dy, x, y):
    """dx[i, j] = y[i, j] * (dy[i, j] - sum_k dy[i, k] y[i, k])."""
    dx[...] = y * (dy - (dy * y).sum(axis=1, keepdims=True))
