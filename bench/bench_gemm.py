"""pytest-benchmark suite for SGEMM: fastnn's C core against numpy.matmul.

    python -m pytest bench/bench_gemm.py --benchmark-only --benchmark-group-by=param:shape

Shapes: the three products of each layer of a 784-256-128-10 MLP at batch
32, 128 and 512 (forward X.W, weight gradient X^T.dY, input gradient
dY.W^T) and squares 64-1024. Both sides write into a preallocated C
(numpy through ``out=``), so neither pays an allocation. Thread counts are
whatever the process has (fastnn: OMP_NUM_THREADS / set_num_threads;
numpy: OPENBLAS_NUM_THREADS); for a pinned, side-by-side table use
bench/compare_gemm.py, which runs each library in its own process.
"""
import numpy as np
import pytest

from fastnn import _core

LAYERS = [(784, 256), (256, 128), (128, 10)]


def _mlp_shapes():
    """(name, transA, transB, M, N, K) for every product of one training step."""
    out = []
    for batch in (32, 128, 512):
        for fin, fout in LAYERS:
            out.append((f"fwd b{batch} {fin}x{fout}", 0, 0, batch, fout, fin))      # X.W
            out.append((f"dW b{batch} {fin}x{fout}", 1, 0, fin, fout, batch))       # X^T.dY
            out.append((f"dX b{batch} {fin}x{fout}", 0, 1, batch, fin, fout))       # dY.W^T
    return out


SHAPES = _mlp_shapes() + [(f"square {n}", 0, 0, n, n, n) for n in (64, 128, 256, 512, 1024)]


def _operands(ta, tb, M, N, K):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((K, M) if ta else (M, K), dtype=np.float32)
    B = rng.standard_normal((N, K) if tb else (K, N), dtype=np.float32)
    return A, B, np.zeros((M, N), np.float32)


@pytest.mark.parametrize("shape", SHAPES, ids=[s[0] for s in SHAPES])
def test_fastnn(benchmark, shape):
    name, ta, tb, M, N, K = shape
    A, B, C = _operands(ta, tb, M, N, K)
    benchmark.extra_info["gflop"] = 2e-9 * M * N * K
    benchmark(_core.sgemm, ta, tb, 1.0, A, B, 0.0, C)


@pytest.mark.parametrize("shape", SHAPES, ids=[s[0] for s in SHAPES])
def test_numpy(benchmark, shape):
    name, ta, tb, M, N, K = shape
    A, B, C = _operands(ta, tb, M, N, K)
    a = A.T if ta else A
    b = B.T if tb else B
    benchmark.extra_info["gflop"] = 2e-9 * M * N * K
    benchmark(np.matmul, a, b, out=C)
