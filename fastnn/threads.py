"""Thread count of the C kernels (scikit-learn's conventions for n)."""
import numbers
import os

from ._backend import get_backend

__all__ = ["set_num_threads", "get_num_threads"]


def _cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def set_num_threads(n=None):
    """Set the number of threads the C kernels use.

    n: None -> OpenMP's default (all cores, or OMP_NUM_THREADS); a positive
    int -> that many; a negative int -> cores + 1 + n (-1 = all cores, -2 =
    all but one), as scikit-learn's n_jobs. 0, non-integers and negative
    values below -cores are a ValueError. Results are bitwise identical for
    every thread count where the kernels say so (GEMM never splits K).
    """
    if n is None:
        get_backend("c").set_num_threads(0)
        return
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n == 0:
        raise ValueError(f"n must be a non-zero integer or None, got {n!r}")
    count = int(n) if n > 0 else _cpu_count() + 1 + int(n)
    if count < 1:
        raise ValueError(f"n={n} leaves no thread on {_cpu_count()} cores")
    get_backend("c").set_num_threads(count)


def get_num_threads():
    """Number of threads the C kernels use now."""
    return get_backend("c").get_num_threads()
