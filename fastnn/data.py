"""Batching, splitting and the input checks every public entry point uses.

Inputs may be any real-valued array-like (lists, float64, int, bool arrays):
:func:`check_X` converts them to C-contiguous float32 once, at the API
boundary, so the kernels never see anything else. Messages follow
scikit-learn's ``check_array`` where one exists.
"""
import numbers

import numpy as np

__all__ = ["batches", "train_test_split", "check_X", "check_consistent_length"]


def _as_real_array(a, name):
    """np.asarray(a), refusing dtypes that are not real numbers (TypeError)."""
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError) as e:  # ragged lists and the like
        raise ValueError(f"{name} could not be converted to an array: {e}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


_F32 = np.dtype(np.float32)
_core_all_finite = None


def all_finite(arr):
    """True if a float array holds no NaN/Inf. One pass, no temporary array: cheap
    enough for every training step (the C kernel for float32 C-contiguous arrays,
    else two NumPy reductions -- max and min propagate NaN)."""
    global _core_all_finite
    if arr.dtype.kind != "f" or arr.size == 0:
        return True
    if arr.dtype == np.float32 and arr.flags.c_contiguous:
        if _core_all_finite is None:
            try:
                from ._core import all_finite as f
            except ImportError:   # the NumPy backend without a built extension
                f = False
            _core_all_finite = f
        if _core_all_finite:
            return _core_all_finite(arr)
    return bool(np.isfinite(arr.max()) and np.isfinite(arr.min()))


def check_finite(arr, name):
    """Raise ``ValueError: Input X contains NaN`` (or infinity) unless all finite."""
    if not all_finite(arr):
        what = "NaN" if np.isnan(arr).any() else "infinity or a value too large for float32"
        raise ValueError(f"Input {name} contains {what}")


def check_X(X, name="X", finite=True):
    """Return X as a C-contiguous float32 (n_samples, n_features) array.

    float64/int/bool inputs are converted (float64 values beyond float32's
    range become infinity and are then rejected as such). Raises TypeError
    for complex/object/string data and ValueError for a shape other than
    2-D, zero samples or features, or (when `finite`) NaN/Inf.
    """
    if type(X) is np.ndarray and X.dtype == _F32 and X.ndim == 2 and X.flags.c_contiguous \
            and X.shape[0] and X.shape[1]:   # the common case, checked cheaply
        if finite:
            check_finite(X, name)
        return X
    arr = _as_real_array(X, name)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected 2-D (batch, features), got shape {arr.shape}"
                         + ("; reshape 1-D data with x.reshape(-1, 1) (one feature) or "
                            "x.reshape(1, -1) (one sample)" if arr.ndim == 1 else ""))
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: 0 sample(s) (shape={arr.shape}) while a minimum of 1 "
                         "is required")
    if arr.shape[1] == 0:
        raise ValueError(f"{name}: 0 feature(s) (shape={arr.shape}) while a minimum of 1 "
                         "is required")
    with np.errstate(over="ignore"):
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    if finite:
        check_finite(arr, name)
    return arr


def check_y(y, name="y"):
    """Return y as a real-valued array (dtype kept: the loss decides), non-empty."""
    arr = _as_real_array(y, name)
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise ValueError(f"{name}: 0 sample(s) (shape={arr.shape}) while a minimum of 1 "
                         "is required")
    check_finite(arr, name)
    return arr


def check_consistent_length(*arrays):
    """ValueError unless all arrays have the same number of rows (scikit-learn's words)."""
    lengths = [len(a) for a in arrays if a is not None]
    if len(set(lengths)) > 1:
        raise ValueError("Found input variables with inconsistent numbers of samples: "
                         f"{lengths}")


def check_int(value, name, minimum):
    """Return `value` as an int >= minimum, else ValueError (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


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
    if isinstance(test_size, numbers.Integral) and not isinstance(test_size, bool):
        n_test = int(test_size)
    elif isinstance(test_size, numbers.Real) and 0 < test_size < 1:
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
