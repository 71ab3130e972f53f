"""Thread count of the C kernels (scikit-learn's conventions for n), and threadpoolctl.

fastnn's kernels run on libgomp's OpenMP pool with a process-wide thread count
of their own (``fnn_set_num_threads``, on top of OpenMP's default). When
threadpoolctl (>= 3) is installed, importing fastnn registers a threadpoolctl
controller for that count -- user_api "openmp", internal_api "fastnn" -- so
the usual ecosystem calls limit fastnn like any OpenMP or BLAS library::

    from threadpoolctl import threadpool_limits, threadpool_info
    with threadpool_limits(1):                      # or limits=1, user_api="openmp"
        model.fit(X, y, ...)                        # one thread
    [i for i in threadpool_info() if i["internal_api"] == "fastnn"]

threadpoolctl only sees libraries that are loaded, so the registration also
loads the C extension (when it is built). threadpoolctl stays optional: without
it nothing is imported or registered.
"""
import os

from ._backend import get_backend
from .checks import is_int

__all__ = ["set_num_threads", "get_num_threads", "register_threadpoolctl"]


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
    if not is_int(n) or n == 0:
        raise ValueError(f"n must be a non-zero integer or None, got {n!r}")
    count = int(n) if n > 0 else _cpu_count() + 1 + int(n)
    if count < 1:
        raise ValueError(f"n={n} leaves no thread on {_cpu_count()} cores")
    get_backend("c").set_num_threads(count)


def get_num_threads():
    """Number of threads the C kernels use now."""
    return get_backend("c").get_num_threads()


def _is_fastnn_core(filepath):
    """True if filepath is the loaded fastnn._core extension."""
    import sys
    core = sys.modules.get("fastnn._core")
    path = getattr(core, "__file__", None)
    return path is not None and os.path.realpath(path) == os.path.realpath(filepath)


_controller = None


def register_threadpoolctl():
    """Register fastnn's thread count with threadpoolctl; return the controller
    class, or None when threadpoolctl (>= 3, with ``register``) is missing.

    Called once when fastnn is imported; calling it again does nothing. Also
    imports the C extension when it is built, so that threadpoolctl finds it.
    ``threadpool_limits(n)`` then sets fastnn's count to n and restores the
    previous count on exit -- as an explicit count: a process left on OpenMP's
    default comes back to the same number of threads, set explicitly.
    """
    global _controller
    if _controller is not None:
        return _controller
    try:
        import threadpoolctl
    except ImportError:
        return None
    if not (hasattr(threadpoolctl, "register") and hasattr(threadpoolctl, "LibController")):
        return None   # threadpoolctl < 3: no custom controllers

    class FastnnController(threadpoolctl.LibController):
        """threadpoolctl controller for fastnn's kernel thread count (fastnn.threads)."""
        user_api = "openmp"         # the pool is libgomp's; limits on "openmp" apply
        internal_api = "fastnn"
        filename_prefixes = ("_core.",)   # fastnn/_core.<abi>.so (.pyd on Windows)

        def get_version(self):
            # called by threadpoolctl's constructor: reject other packages' _core.*
            # (threadpoolctl skips a library whose controller raises OSError)
            if not _is_fastnn_core(self.filepath):
                raise OSError(f"{self.filepath} is not fastnn's extension")
            from . import __version__
            return __version__

        def get_num_threads(self):
            return get_num_threads()

        def set_num_threads(self, num_threads):
            set_num_threads(None if num_threads is None else int(num_threads))

    threadpoolctl.register(FastnnController)
    _controller = FastnnController
    try:
        get_backend("c")
    except ImportError:   # extension not built: NumPy backend only, nothing to control
        pass
    return _controller


try:
    register_threadpoolctl()
except Exception:  # pragma: no cover - never let an optional integration break the import
    pass
