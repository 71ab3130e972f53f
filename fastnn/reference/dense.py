"""Dense (linear) layer reference: forward ``y = x @ w + b`` and its backward.

Mirrors ``csrc/dense.c``. Shapes: x (N, IN), w (IN, OUT), b (OUT,), y (N, OUT).
Input gradients are overwritten, parameter gradients accumulate.
"""


def dense_forward(y, x, w, b):
    """y = x @ w + b (b may be None: no bias). y is overwritten."""
    y[...] = x @ w
    if b is not None:
        y += b


def dense_backward(dx, dw, db, dy, x, w):
    """Gradients of y = x @ w + b given dy = dL/dy.

    dx = dy @ w.T          (overwritten; dx None: skipped)
    dw += x.T @ dy         (accumulated)
    db += dy.sum(axis=0)   (accumulated; db None: no bias)
    """
    if dx is not None:
        dx[...] = dy @ w.T
    dw += x.T @ dy
    if db is not None:
        db += dy.sum(axis=0)
