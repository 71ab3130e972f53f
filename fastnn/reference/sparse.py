"""Sparse-input linear layer reference: ``y = x @ w + b`` with x in CSR form.

Mirrors ``csrc/sparse.c`` with the same interface as the C bridge: x (N, IN)
is given by three arrays, ``indptr`` (N + 1,), ``indices`` and ``data``
(nnz,); row i holds ``x[i, indices[k]] = data[k]`` for k in
``indptr[i]:indptr[i + 1]``, and a repeated (i, j) counts as the sum of its
entries (scipy.sparse's meaning). Plain NumPy, no scipy; any float dtype.
"""
import numpy as np


def _check(indptr, indices, data, cols):
    """The checks of csrc/sparse.c's fnn_csr_check, with its messages."""
    indptr, indices = np.asarray(indptr), np.asarray(indices)
    if indptr.ndim != 1 or indptr.size < 1:
        raise ValueError(f"indptr must be 1-D with rows + 1 >= 1 entries, got shape "
                         f"{indptr.shape}")
    if np.ndim(indices) != 1 or np.ndim(data) != 1 or len(indices) != len(data):
        raise ValueError(f"indices and data must be 1-D of the same length, got shapes "
                         f"{np.shape(indices)} and {np.shape(data)}")
    if indptr[0] != 0:
        raise ValueError(f"sparse input: indptr[0] is {indptr[0]}, must be 0")
    bad = np.flatnonzero(np.diff(indptr) < 0)
    if bad.size:
        i = bad[0]
        raise ValueError(f"sparse input: indptr decreases at row {i} ({indptr[i]} then "
                         f"{indptr[i + 1]}); it must be non-decreasing")
    if indptr[-1] != len(data):
        raise ValueError(f"sparse input: indptr[{indptr.size - 1}] is {indptr[-1]}, must "
                         f"equal the number of entries {len(data)}")
    bad = np.flatnonzero((indices < 0) | (indices >= cols))
    if bad.size:
        k = bad[0]
        raise ValueError(f"sparse input: column index {indices[k]} at entry {k} is out of "
                         f"range for {cols} columns")
    return np.repeat(np.arange(indptr.size - 1), np.diff(indptr))   # the row of each entry


def csr_dense_forward(y, indptr, indices, data, w, b):
    """y = x @ w + b (b None: no bias) for the CSR x; y (N, OUT) is overwritten."""
    rows = _check(indptr, indices, data, w.shape[0])
    if y.shape != (len(indptr) - 1, w.shape[1]):
        raise ValueError(f"y must have shape ({len(indptr) - 1}, {w.shape[1]}), got {y.shape}")
    y[...] = 0 if b is None else b
    np.add.at(y, rows, data[:, None] * w[indices])


def csr_dense_backward(dw, db, dy, indptr, indices, data):
    """Parameter gradients of y = x @ w + b for the CSR x given dy = dL/dy.

    dw += x.T @ dy         (accumulated; x's entries scattered by column)
    db += dy.sum(axis=0)   (accumulated; db None: no bias)
    """
    rows = _check(indptr, indices, data, dw.shape[0])
    if dy.shape != (len(indptr) - 1, dw.shape[1]):
        raise ValueError(f"dy must have shape ({len(indptr) - 1}, {dw.shape[1]}), got "
                         f"{dy.shape}")
    np.add.at(dw, indices, data[:, None] * dy[rows])
    if db is not None:
        db += dy.sum(axis=0)
