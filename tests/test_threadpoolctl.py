"""fastnn's thread count: scikit-learn's conventions, and control through threadpoolctl.

The threadpoolctl tests are skipped when it is not installed; the convention tests
always run (they need the C extension, like every thread call).
"""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastnn
from fastnn import threads


@pytest.fixture
def restore_threads():
    core = fastnn.get_backend("c")
    old = core.get_num_threads()
    yield
    core.set_num_threads(old)


@pytest.fixture
def tpc():
    return pytest.importorskip("threadpoolctl", minversion="3")


def _fastnn_infos(tpc):
    return [i for i in tpc.threadpool_info() if i["internal_api"] == "fastnn"]


# ---------------------------------------------------------- conventions
def test_conventions(restore_threads):
    cores = threads._cpu_count()
    fastnn.set_num_threads(1)
    assert fastnn.get_num_threads() == 1
    fastnn.set_num_threads(-1)                  # all cores
    assert fastnn.get_num_threads() == cores
    if cores > 1:
        fastnn.set_num_threads(-2)              # all but one
        assert fastnn.get_num_threads() == cores - 1
    fastnn.set_num_threads(cores + 3)           # more than the cores: allowed, as OpenMP
    assert fastnn.get_num_threads() == cores + 3
    fastnn.set_num_threads(None)                # OpenMP's default: cores or OMP_NUM_THREADS
    expected = int(os.environ.get("OMP_NUM_THREADS", "0").split(",")[0] or 0) or cores
    assert fastnn.get_num_threads() == expected


@pytest.mark.parametrize("n", [0, 1.0, "2", True, np.float64(2)])
def test_rejects_non_integers_and_zero(n, restore_threads):
    with pytest.raises(ValueError, match="non-zero integer"):
        fastnn.set_num_threads(n)


def test_rejects_too_negative(restore_threads):
    with pytest.raises(ValueError, match="leaves no thread"):
        fastnn.set_num_threads(-threads._cpu_count() - 1)


def test_numpy_integers_accepted(restore_threads):
    fastnn.set_num_threads(np.int64(1))
    assert fastnn.get_num_threads() == 1


def test_import_without_threadpoolctl():
    """threadpoolctl is optional: without it fastnn imports, registers nothing and
    still honours its own thread setting."""
    code = ("import sys; sys.modules['threadpoolctl'] = None\n"
            "import fastnn\n"
            "assert fastnn.threads.register_threadpoolctl() is None\n"
            "fastnn.set_num_threads(1); assert fastnn.get_num_threads() == 1\n")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------- threadpoolctl
def test_visible_to_threadpoolctl(tpc):
    infos = _fastnn_infos(tpc)
    assert len(infos) == 1, tpc.threadpool_info()
    info = infos[0]
    assert info["user_api"] == "openmp" and info["version"] == fastnn.__version__
    assert os.path.realpath(info["filepath"]) == \
        os.path.realpath(fastnn.get_backend("c").__file__)
    assert info["num_threads"] == fastnn.get_num_threads()
    # libgomp itself is listed too (threadpoolctl's own OpenMP controller)
    assert any(i["internal_api"] == "openmp" for i in tpc.threadpool_info())


@pytest.mark.parametrize("kwargs", [{}, {"user_api": "openmp"}])
def test_threadpool_limits_limits_fastnn(tpc, kwargs, restore_threads):
    fastnn.set_num_threads(2)
    with tpc.threadpool_limits(1, **kwargs):
        assert fastnn.get_num_threads() == 1
    assert fastnn.get_num_threads() == 2
    with tpc.threadpool_limits(1, user_api="blas"):   # another API: fastnn untouched
        assert fastnn.get_num_threads() == 2


def test_limit_is_process_wide(tpc, restore_threads):
    """OpenMP's own limit (omp_set_num_threads) is per calling thread; fastnn's
    controller sets fastnn's process-wide count, so other Python threads see it."""
    seen = []
    with tpc.threadpool_limits(1):
        t = threading.Thread(target=lambda: seen.append(fastnn.get_num_threads()))
        t.start()
        t.join()
    assert seen == [1]


def test_select_by_internal_api(tpc, restore_threads):
    fastnn.set_num_threads(2)
    ctl = tpc.ThreadpoolController()
    with ctl.select(internal_api="fastnn").limit(limits=1):
        assert fastnn.get_num_threads() == 1
    assert fastnn.get_num_threads() == 2


def test_libgomp_limit_applies_when_fastnn_on_openmp_default(tpc, restore_threads):
    """Limiting only libgomp (threadpoolctl's OpenMP controller) also limits fastnn
    while its own count is OpenMP's default (None), in the calling thread."""
    fastnn.set_num_threads(None)
    ctl = tpc.ThreadpoolController()
    with ctl.select(internal_api="openmp").limit(limits=1):
        assert fastnn.get_num_threads() == 1


def test_training_under_limit_is_bitwise_equal(tpc, restore_threads):
    X, y = fastnn.datasets.make_moons(200, seed=0)

    def train():
        model = fastnn.Sequential(fastnn.Linear(2, 32), fastnn.ReLU(), fastnn.Linear(32, 2),
                                  seed=0)
        model.fit(X, y, loss="cross_entropy", epochs=3, seed=0, verbose=0)
        return model.flat_params.copy()

    fastnn.set_num_threads(2)
    free = train()
    with tpc.threadpool_limits(1):
        limited = train()
    np.testing.assert_array_equal(free, limited)


def test_right_after_import(tpc):
    """A fresh process: threadpool_limits(1) right after ``import fastnn`` limits it,
    before any model has been built (the import registers and loads the extension)."""
    code = (
        "import fastnn\n"
        "from threadpoolctl import threadpool_limits, threadpool_info\n"
        "assert any(i['internal_api'] == 'fastnn' for i in threadpool_info())\n"
        "fastnn.set_num_threads(2)\n"
        "with threadpool_limits(1):\n"
        "    assert fastnn.get_num_threads() == 1, fastnn.get_num_threads()\n"
        "assert fastnn.get_num_threads() == 2\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_register_is_idempotent(tpc):
    cls = threads.register_threadpoolctl()
    assert cls is threads.register_threadpoolctl()
    assert len(_fastnn_infos(tpc)) == 1


def test_other_core_extensions_are_not_claimed(tpc, tmp_path):
    """Another package's ``_core.*.so`` matches the filename prefix but is skipped."""
    import ctypes
    import shutil
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or sys.platform != "linux":
        pytest.skip("needs a C compiler on Linux")
    src, lib = tmp_path / "other.c", tmp_path / "_core.cpython-311-x86_64-linux-gnu.so"
    src.write_text("int other_core_answer(void) { return 42; }\n")
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    ctypes.CDLL(str(lib))    # loaded, so threadpoolctl's scan sees it
    paths = [os.path.realpath(i["filepath"]) for i in tpc.threadpool_info()]
    assert os.path.realpath(str(lib)) not in paths
    assert len(_fastnn_infos(tpc)) == 1
