"""Batching and splitting. The input checks live in :mod:`fastnn.checks` (and
are importable from here too, as before)."""
import numpy as np

from .checks import (all_finite, check_consistent_length, check_finite, check_int,  # noqa: F401
                     check_X, check_y, is_int, is_real)

__all__ = ["batches", "train_test_split", "check_X", "check_consistent_length"]


def batches(X, y=None, batch_size=32, shuffle=False, seed=None, drop_last=False):
    """Yield ``(xb, yb)`` mini-batches (or ``xb`` alone when y is None).

    Every sample appears exactly once per pass; the last batch is shorter
    unless ``drop_last``. With ``shuffle`` the order is a permutation drawn
    from ``numpy.random.default_rng(seed)`` (same seed, same order). Batches
    are views when not shuffled and copies when shuffled; X and y are used as
    given (convert with :func:`check_X` first if needed).

    ``batch_size = len(X)`` gives full-batch gradient descent, 1 stochastic
    gradient descent, anything between mini-batch gradient descent: the
    optimizer is the same.
    """
    batch_size = check_int(batch_size, "batch_size", 1)
    n = len(X)
    if y is not None:
        check_consistent_length(X, y)
    order = np.random.default_rng(seed).permutation(n) if shuffle else None
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        if order is None:
            sl = slice(start, start + batch_size)
        else:
            sl = order[start:start + batch_size]
        yield X[sl] if y is None else (X[sl], y[sl])


def train_test_split(X, y, test_size=0.25, seed=None, stratify=False):
    """Split X, y into ``X_train, X_test, y_train, y_test`` (scikit-learn's order).

    test_size: a fraction in (0, 1) or a number of test samples; the test set
    gets ceil(test_size * n) samples, as scikit-learn. With ``stratify`` the
    classes of y keep their proportions in both parts (largest-remainder
    rounding per class); otherwise the split is a random permutation.
    """
    y_arr = np.asarray(y)
    n = len(y_arr)
    check_consistent_length(X, y_arr)
    if is_int(test_size):
        n_test = int(test_size)
    elif is_real(test_size) and 0 < test_size < 1:
        n_test = int(np.ceil(test_size * n))
    else:
        raise ValueError(f"test_size must be a fraction in (0, 1) or a count, got {test_size!r}")
    if not 0 < n_test < n:
        raise ValueError(f"test_size={test_size!r} leaves {n_test} test and {n - n_test} "
                         f"training samples out of {n}; both must be >= 1")
    rng = np.random.default_rng(seed)
    if not stratify:
        perm = rng.permutation(n)
        test, train = perm[:n_test], perm[n_test:]
    else:
        classes, codes = np.unique(y_arr, return_inverse=True)
        counts = np.bincount(codes)
        exact = counts * n_test / n
        take = np.floor(exact).astype(np.int64)
        extra = np.argsort(-(exact - take), kind="stable")[:n_test - take.sum()]
        take[extra] += 1
        test, train = [], []
        for c, k in enumerate(take):
            idx = rng.permutation(np.flatnonzero(codes == c))
            test.append(idx[:k])
            train.append(idx[k:])
        test = rng.permutation(np.concatenate(test))
        train = rng.permutation(np.concatenate(train))
    X_arr = np.asarray(X)
    return X_arr[train], X_arr[test], y_arr[train], y_arr[test]
