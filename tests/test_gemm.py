"""Tests of the C core's SGEMM (``fnn_sgemm`` through ``fastnn._core.sgemm``).

The oracle is a float64 NumPy product; the error bound scales with K:
|C - C_ref| <= 4 (K + 2) 2^-24 (|alpha| |A||B| + |beta| |C0|) + tiny.
Shapes sweep the edges of every kernel's register tile (MR 4/6/8, NR 8/16/32)
and cache blocks (MC 128/144/192, KC 256/512), the direct, packed and
packed-B-only paths, all
four transpose combinations, padded and unaligned operands, alpha/beta,
NaN/Inf, and thread counts. ``test_every_isa`` re-runs this module in a
subprocess once per ``FASTNN_ISA`` value so every kernel is exercised.
"""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from fastnn import _core

TRANS = [(0, 0), (0, 1), (1, 0), (1, 1)]
EPS = 2.0 ** -24
SENT = np.float32(12345.0)
IN_SUBPROCESS = os.environ.get("FASTNN_GEMM_ISA_RUN") == "1"


# ---------------------------------------------------------------- helpers

def _operand(rng, rows, cols, extra_ld=0, offset=1, fill=None, ld=None):
    """A (rows, cols) float32 view into a larger buffer: leading dimension
    `ld` or cols + extra_ld, first element at float offset `offset` (unaligned)."""
    ld = ld if ld else cols + extra_ld
    buf = rng.uniform(-1, 1, size=rows * ld + offset + 1).astype(np.float32)
    view = buf[offset:offset + rows * ld].reshape(rows, ld)[:, :cols]
    if fill is not None:
        view[...] = fill
    return view


def _ref(ta, tb, alpha, A, B, beta, C0):
    """Float64 result and an elementwise error bound."""
    a = A.astype(np.float64).T if ta else A.astype(np.float64)
    b = B.astype(np.float64).T if tb else B.astype(np.float64)
    K = a.shape[1]
    c0 = np.zeros(C0.shape) if beta == 0 else C0.astype(np.float64)
    if alpha == 0 or K == 0:
        return beta * c0, np.abs(beta * c0) * EPS * 4 + 1e-30
    with np.errstate(all="ignore"):
        ref = alpha * (a @ b) + beta * c0
        mag = abs(alpha) * (np.abs(a) @ np.abs(b)) + np.abs(beta * c0)
    return ref, 4.0 * (K + 2) * EPS * mag + 1e-30


def run_case(rng, ta, tb, M, N, K, alpha=1.0, beta=0.0, extra_ld=0, offset=1,
             nan_c=False, pad=3, ld=None):
    """Run one sgemm with C inside a sentinel frame; check value and frame.
    `ld` (optional) is the leading dimension of A, B and C alike."""
    A = _operand(rng, K if ta else M, M if ta else K, extra_ld, offset, ld=ld)
    B = _operand(rng, N if tb else K, K if tb else N, extra_ld, offset, ld=ld)
    ldc = ld - 2 * pad if ld else N + extra_ld
    frame = np.full((M + 2 * pad, ldc + 2 * pad), SENT, np.float32)
    C = frame[pad:pad + M, pad:pad + N]
    C[...] = np.nan if nan_c else rng.uniform(-1, 1, size=(M, N)).astype(np.float32)
    C0 = C.copy()
    ref, bound = _ref(ta, tb, alpha, A, B, beta, C0)
    _core.sgemm(ta, tb, alpha, A, B, beta, C)
    outside = frame.copy()
    outside[pad:pad + M, pad:pad + N] = SENT
    assert np.all(outside == SENT), "sgemm wrote outside C"
    err = np.abs(C.astype(np.float64) - ref)
    bad = ~(err <= bound)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        pytest.fail(f"ta={ta} tb={tb} M={M} N={N} K={K} alpha={alpha} beta={beta}: "
                    f"C[{i},{j}]={C[i, j]} ref={ref[i, j]} bound={bound[i, j]:.3g} "
                    f"({bad.sum()} bad)")
    return C


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def threads():
    """Set the kernel thread count inside a test; restore the default after."""
    yield _core.set_num_threads
    _core.set_num_threads(0)


# ----------------------------------------------------------------- shapes

# Tiles: generic 4x8, avx2 6x16, avx512 12x32. Blocks: MC 128/192/144,
# KC 256/256/512. Each +-1, plus 2 MR and 2 NR +- 1.
EDGES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 15, 16, 17, 23, 24, 25, 31, 32, 33,
         63, 64, 65,
         127, 128, 129, 143, 144, 145, 191, 192, 193, 255, 256, 257, 511, 512, 513]


@pytest.mark.parametrize("ta,tb", TRANS)
@pytest.mark.parametrize("size", EDGES)
def test_edge_sizes(rng, ta, tb, size):
    """Each of M, N, K swept over the edge set with the other two fixed."""
    for other in (7, 33):
        run_case(rng, ta, tb, size, other, 19)
        run_case(rng, ta, tb, other, size, 21)
        run_case(rng, ta, tb, other, 17, size)


@pytest.mark.parametrize("ta,tb", TRANS)
def test_small_cube(rng, ta, tb):
    """Every M, N, K in 1..33 along the diagonal and off it."""
    for s in range(1, 34):
        run_case(rng, ta, tb, s, s, s)
        run_case(rng, ta, tb, s, 34 - s, (s * 7) % 33 + 1)


@pytest.mark.parametrize("ta,tb", TRANS)
@pytest.mark.parametrize("shape", [
    (32, 256, 784), (128, 256, 784), (512, 256, 784),   # forward X.W
    (784, 256, 128), (256, 128, 32), (128, 10, 128),    # weight grads X^T.dY shapes
    (128, 784, 256), (32, 128, 10), (128, 10, 128),     # input grads dY.W^T shapes
    (65, 600, 513),                                     # B > 1 MiB: packed even for NN
    (600, 700, 520), (1100, 40, 600),                   # packed A and B; A^T with M > 1024
    (300, 97, 1031), (97, 1031, 255), (520, 70, 300),   # across MC, KC, NC splits
    (1, 1000, 300), (1000, 1, 300), (300, 300, 1),
])
def test_blocked_and_mlp_shapes(rng, ta, tb, shape):
    M, N, K = shape
    run_case(rng, ta, tb, M, N, K, alpha=0.5, beta=-0.5)


def test_random_shapes(rng):
    for _ in range(60):
        M, N, K = (int(x) for x in rng.integers(1, 300, size=3))
        ta, tb = (int(x) for x in rng.integers(0, 2, size=2))
        run_case(rng, ta, tb, M, N, K, alpha=float(rng.choice([1.0, -1.0, 0.5])),
                 beta=float(rng.choice([0.0, 1.0, -0.5])),
                 extra_ld=int(rng.integers(0, 5)), offset=int(rng.integers(0, 3)))


@pytest.mark.parametrize("ta,tb", TRANS)
@pytest.mark.parametrize("extra_ld", [1, 3, 256, 512, 1024])
def test_leading_dims(rng, ta, tb, extra_ld):
    """Rows longer than the tile, including ld = n + a multiple of 256/512/1024."""
    for M, N, K in [(33, 17, 40), (70, 100, 300), (9, 64, 200)]:
        run_case(rng, ta, tb, M, N, K, extra_ld=extra_ld, offset=1)


@pytest.mark.parametrize("ld", [256, 512, 1024])
def test_leading_dims_power_of_two(rng, ld):
    """Leading dimensions exactly 256/512/1024 floats (set-conflict strides)."""
    for ta, tb in TRANS:
        for M, N, K in [(64, 96, 200), (130, 40, 250), (250, 130, 40)]:
            run_case(rng, ta, tb, M, N, K, offset=0, ld=ld)


@pytest.mark.parametrize("offset", [0, 1, 2, 3])
def test_unaligned_offsets(rng, offset):
    for ta, tb in TRANS:
        run_case(rng, ta, tb, 37, 45, 70, offset=offset)
        run_case(rng, ta, tb, 130, 200, 260, offset=offset)


# ---------------------------------------------------------- narrow shapes
# NN with N <= 4 runs the AVX-512 kernel's narrow_nn (vectors along M, 16 x 16
# register transposes, masked k and m tails); TN with N <= 8 and M > N runs
# narrow_tn (C^T with vectors along M) for every M. Other ISAs run the ukr.

NARROW_M = [1, 2, 15, 16, 17, 31, 32, 33, 64, 65, 100]
NARROW_K = [1, 2, 15, 16, 17, 33, 64, 100]


@pytest.mark.parametrize("N", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (0.5, 1.0), (-1.0, -0.5)])
def test_narrow_nn(rng, N, alpha, beta):
    for M in NARROW_M:
        for K in NARROW_K:
            run_case(rng, 0, 0, M, N, K, alpha=alpha, beta=beta, extra_ld=(M + K) % 4,
                     offset=K % 3, nan_c=(beta == 0.0))


@pytest.mark.parametrize("N", [1, 2, 5, 8, 9])
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (1.0, 1.0), (0.5, -0.5)])
def test_narrow_tn_small_m(rng, N, alpha, beta):
    for M in [N + 1, 12, 16, 17, 40, 63, 64, 70]:
        for K in [1, 17, 32, 65]:
            run_case(rng, 1, 0, M, N, K, alpha=alpha, beta=beta, extra_ld=M % 3,
                     nan_c=(beta == 0.0))


@pytest.mark.parametrize("beta", [0.0, 1.0, -0.5])
def test_narrow_nn_bits_equal_wide_columns(rng, beta):
    """A product with N <= 4 (the narrow path on AVX-512) gives the bits of the
    same columns of a product with N = 8 (the ukr): same operations per element."""
    for M, K in [(1, 1), (16, 16), (32, 16), (33, 17), (64, 64), (70, 130)]:
        A = rng.uniform(-1, 1, size=(M, K)).astype(np.float32)
        B = rng.uniform(-1, 1, size=(K, 8)).astype(np.float32)
        C0 = rng.uniform(-1, 1, size=(M, 8)).astype(np.float32)
        wide = C0.copy()
        _core.sgemm(0, 0, 0.75, A, B, beta, wide)
        for n in (1, 2, 3, 4):
            narrow = C0[:, :n].copy()   # never a view of C0 (M = 1 slices are contiguous)
            _core.sgemm(0, 0, 0.75, A, np.ascontiguousarray(B[:, :n]), beta, narrow)
            assert np.array_equal(narrow, wide[:, :n]), (M, K, n)


# ------------------------------------------------------------ alpha, beta

@pytest.mark.parametrize("alpha", [0.0, 1.0, -1.0, 0.5])
@pytest.mark.parametrize("beta", [0.0, 1.0, -0.5])
@pytest.mark.parametrize("ta,tb", TRANS)
def test_alpha_beta(rng, alpha, beta, ta, tb):
    for M, N, K in [(19, 37, 45), (9, 33, 0), (70, 300, 513)]:
        run_case(rng, ta, tb, M, N, K, alpha=alpha, beta=beta, extra_ld=2,
                 nan_c=(beta == 0.0))


@pytest.mark.parametrize("ta,tb", TRANS)
def test_beta_zero_ignores_nan_in_c(rng, ta, tb):
    for M, N, K in [(1, 1, 1), (8, 32, 16), (13, 47, 300), (200, 200, 200)]:
        C = run_case(rng, ta, tb, M, N, K, beta=0.0, nan_c=True)
        assert np.isfinite(C).all()


def test_alpha_zero_does_not_read_a_b(rng):
    """alpha == 0: C = beta C even when A and B hold NaN (the documented rule)."""
    A = np.full((5, 7), np.nan, np.float32)
    B = np.full((7, 3), np.inf, np.float32)
    C = rng.uniform(-1, 1, size=(5, 3)).astype(np.float32)
    C0 = C.copy()
    _core.sgemm(False, False, 0.0, A, B, 0.5, C)
    np.testing.assert_array_equal(C, np.float32(0.5) * C0)
    _core.sgemm(False, False, 0.0, A, B, 0.0, C)
    np.testing.assert_array_equal(C, 0)


def test_empty_writes_nothing(rng):
    for M, N in [(0, 5), (5, 0), (0, 0)]:
        A = np.ones((M, 4), np.float32)
        B = np.ones((4, N), np.float32)
        C = np.empty((M, N), np.float32)
        _core.sgemm(False, False, 1.0, A, B, 0.0, C)


# ---------------------------------------------------------------- NaN/Inf

@pytest.mark.parametrize("ta,tb", TRANS)
@pytest.mark.parametrize("shape", [(8, 32, 16), (37, 70, 300), (130, 10, 128), (65, 600, 513)])
def test_nan_inf_propagate(rng, ta, tb, shape):
    M, N, K = shape
    a = rng.uniform(-1, 1, size=(M, K)).astype(np.float32)
    b = rng.uniform(0.5, 1, size=(K, N)).astype(np.float32)
    a[M // 2, K // 3] = np.nan
    b[K // 2, N - 1] = np.inf
    b[K // 4, 0] = -np.inf
    A = np.ascontiguousarray(a.T) if ta else a
    B = np.ascontiguousarray(b.T) if tb else b
    C = np.zeros((M, N), np.float32)
    _core.sgemm(ta, tb, 1.0, A, B, 0.0, C)
    with np.errstate(all="ignore"):
        ref = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(C), np.isnan(ref))
    np.testing.assert_array_equal(np.isposinf(C), np.isposinf(ref))
    np.testing.assert_array_equal(np.isneginf(C), np.isneginf(ref))


# ---------------------------------------------------------------- threads

THREAD_SHAPES = [(128, 784, 256), (257, 300, 513), (784, 256, 32), (32, 784, 256),
                 (1031, 97, 255), (512, 10, 128), (97, 1031, 64)]


@pytest.mark.parametrize("ta,tb", TRANS)
@pytest.mark.parametrize("shape", THREAD_SHAPES)
def test_bitwise_across_thread_counts(rng, threads, ta, tb, shape):
    M, N, K = shape
    A = _operand(rng, K if ta else M, M if ta else K, 0, 1)
    B = _operand(rng, N if tb else K, K if tb else N, 0, 1)
    C0 = rng.uniform(-1, 1, size=(M, N)).astype(np.float32)
    out = []
    for n in (1, 2, 3):
        threads(n)
        C = C0.copy()
        _core.sgemm(ta, tb, 0.75, A, B, 0.5, C)
        out.append(C)
    for C in out[1:]:
        assert np.array_equal(out[0], C), "result depends on the thread count"


def test_repeatable(rng, threads):
    threads(2)
    A = rng.uniform(-1, 1, size=(300, 513)).astype(np.float32)
    B = rng.uniform(-1, 1, size=(513, 200)).astype(np.float32)
    first = np.zeros((300, 200), np.float32)
    _core.sgemm(False, False, 1.0, A, B, 0.0, first)
    for _ in range(10):
        C = np.zeros_like(first)
        _core.sgemm(False, False, 1.0, A, B, 0.0, C)
        assert np.array_equal(C, first)


def test_concurrent_python_threads(rng):
    """Two Python threads in fnn_sgemm at once (GIL released): no shared buffers."""
    A = rng.uniform(-1, 1, size=(200, 300)).astype(np.float32)
    B = rng.uniform(-1, 1, size=(300, 700)).astype(np.float32)
    want = np.zeros((200, 700), np.float32)
    _core.sgemm(False, True, 1.0, A, np.ascontiguousarray(B.T), 0.0, want)
    errors = []

    def work():
        for _ in range(20):
            C = np.zeros_like(want)
            _core.sgemm(False, True, 1.0, A, np.ascontiguousarray(B.T), 0.0, C)
            if not np.array_equal(C, want):
                errors.append("mismatch")

    ts = [threading.Thread(target=work) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors


def test_fp_mode_restored(rng, threads):
    """FTZ/DAZ are set only during the call: denormals work afterwards."""
    for n in (1, 2):
        threads(n)
        A = rng.uniform(-1, 1, size=(256, 256)).astype(np.float32)
        C = np.zeros((256, 256), np.float32)
        _core.sgemm(False, False, 1.0, A, A, 0.0, C)
        tiny = np.array([1e-39], np.float32)
        assert (tiny * np.float32(0.5))[0] != 0.0
        assert (tiny + np.float32(0))[0] == tiny[0]


FORK_SCRIPT = r"""
import os, sys, numpy as np
from fastnn import _core
_core.set_num_threads(2)
A = np.ones((400, 400), np.float32); C = np.zeros((400, 400), np.float32)
_core.sgemm(False, False, 1.0, A, A, 0.0, C)
pid = os.fork()
if pid == 0:
    C2 = np.zeros_like(C)
    _core.sgemm(False, False, 1.0, A, A, 0.0, C2)
    os._exit(0 if np.array_equal(C, C2) else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_fork_after_threads():
    """A child forked after a threaded call runs serially instead of hanging."""
    r = subprocess.run([sys.executable, "-c", FORK_SCRIPT], timeout=120,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert r.returncode == 0


# -------------------------------------------------------------- dispatch

def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _expected_kernel(isa):
    flags = _cpu_flags()
    has512 = {"avx512f", "avx512vl", "avx512bw", "avx512dq", "fma"} <= flags
    has2 = {"avx2", "fma"} <= flags
    import platform
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return "generic"
    if isa == "generic":
        return "generic"
    if isa == "avx2":
        return "avx2" if has2 else "generic"
    return "avx512" if has512 else ("avx2" if has2 else "generic")


def test_kernel_name_follows_env():
    isa = os.environ.get("FASTNN_ISA")
    name = _core.sgemm_kernel_name()
    if isa in ("generic", "avx2", "avx512") and _cpu_flags():
        assert name.startswith(_expected_kernel(isa)), (isa, name)
    else:
        assert name


def test_blocking_follows_env():
    """FASTNN_GEMM_BLOCKS=mc,kc,nc sets the cache blocks (mc, nc rounded down to
    the kernel's tile, at least one); without it they are positive."""
    mc, kc, nc = _core.sgemm_blocking()
    assert mc > 0 and kc > 0 and nc > 0
    if os.environ.get("FASTNN_GEMM_BLOCKS") == "1,16,1":
        assert kc == 16 and mc <= 12 and nc <= 32, (mc, kc, nc)


@pytest.mark.skipif(IN_SUBPROCESS, reason="already inside a per-ISA run")
@pytest.mark.parametrize("isa,blocks", [("generic", None), ("avx2", None), ("avx512", None),
                                        ("bogus", None), ("generic", "1,16,1"),
                                        ("avx512", "1,16,1")])
def test_every_isa(isa, blocks):
    """Run this module under FASTNN_ISA=isa in a fresh process (the kernel is
    chosen once per process). 'bogus' must fall back to the best kernel. With
    blocks, the cache blocks are one tile and 16 k-steps (FASTNN_GEMM_BLOCKS):
    every blocking loop of the packed path runs many times on small shapes."""
    env = dict(os.environ, FASTNN_ISA=isa, FASTNN_GEMM_ISA_RUN="1")
    if blocks:
        env["FASTNN_GEMM_BLOCKS"] = blocks
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                        os.path.abspath(__file__)], env=env, cwd=root,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


# --------------------------------------------------------- bridge checks

def test_bad_inputs():
    A = np.ones((4, 5), np.float32)
    B = np.ones((5, 6), np.float32)
    C = np.zeros((4, 6), np.float32)
    with pytest.raises(TypeError):
        _core.sgemm(False, False, 1.0, A.astype(np.float64), B, 0.0, C)
    with pytest.raises(TypeError):
        _core.sgemm(False, False, 1.0, A, B, 0.0, C.astype(np.float64))
    with pytest.raises(ValueError):       # non-contiguous rows
        _core.sgemm(False, False, 1.0, np.ones((4, 10), np.float32)[:, ::2], B, 0.0, C)
    with pytest.raises(ValueError):       # negative row stride
        _core.sgemm(False, False, 1.0, A[::-1], B, 0.0, C)
    with pytest.raises(ValueError):       # Fortran order
        _core.sgemm(False, False, 1.0, np.asfortranarray(A), B, 0.0, C)
    with pytest.raises(ValueError):       # shape mismatch
        _core.sgemm(False, False, 1.0, A, np.ones((6, 6), np.float32), 0.0, C)
    with pytest.raises(ValueError):
        _core.sgemm(True, False, 1.0, A, B, 0.0, C)
    with pytest.raises(ValueError):       # C aliases A
        sq = np.ones((5, 5), np.float32)
        _core.sgemm(False, False, 1.0, sq, np.ones((5, 5), np.float32), 0.0, sq)
    with pytest.raises(ValueError):       # C overlaps B through a view
        big = np.ones((5, 12), np.float32)
        _core.sgemm(False, False, 1.0, np.ones((5, 5), np.float32), big[:, :6], 0.0, big[:, 6:])
    with pytest.raises(ValueError):       # read-only C
        ro = np.zeros((4, 6), np.float32)
        ro.flags.writeable = False
        _core.sgemm(False, False, 1.0, A, B, 0.0, ro)
