"""The input checks every public entry point uses: arrays and scalar arguments.

Inputs may be any real-valued array-like (lists, float64, int, bool arrays):
:func:`check_X` converts them to C-contiguous float32 once, at the API
boundary, so the kernels never see anything else. Messages follow
scikit-learn's ``check_array`` where one exists. :func:`is_int` and
:func:`is_real` are the one definition of an integer / real scalar argument
(bools are neither) that layers, optimizers, schedules and wrappers share.
"""
import numbers

import numpy as np

__all__ = ["check_X", "check_y", "check_finite", "check_consistent_length", "check_int",
           "all_finite", "is_int", "is_real"]


def is_int(value):
    """True for an integral scalar (Python or NumPy int), never for a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value):
    """True for a real scalar (int, float, NumPy), never for a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


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
    if not is_int(value):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)
