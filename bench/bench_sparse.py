"""Sparse input: fastnn.sklearn on CSR (sparse first layer in C, csrc/sparse.c) vs the
same fastnn estimator on the densified matrix vs sklearn.neural_network on CSR.

Text-like data: each row has ``--nnz`` stored entries at random columns (values
uniform in (0, 1)), 2 classes from a sparse linear rule. MLP ``(--hidden,)``,
ReLU, adam, batch 200, alpha 1e-4, ``--epochs`` epochs (tol=0, so every fit runs
them all); the time printed is fit's wall time per epoch, best of ``--repeat``,
at 1 thread (threadpoolctl limits scikit-learn's BLAS; ``n_threads=1`` fastnn's).
Two cells: a width whose dense float32 copy fits in memory (so the densified
run is possible) and a width where it does not (20000 x 200000 would be 16 GB
as float32; only the sparse runs)::

    python bench/bench_sparse.py [--epochs 3] [--repeat 2]

Read ratios, not absolute times: the machines are noisy.
"""
import argparse
import pathlib
import sys
import time
import warnings

import numpy as np

if __name__ == "__main__":   # run from a source checkout: python bench/bench_sparse.py
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import fastnn  # noqa: E402,F401


def make_data(rows, cols, nnz, seed=0):
    import scipy.sparse as sp
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, cols, rows * nnz)
    data = rng.uniform(0, 1, rows * nnz).astype(np.float32)
    indptr = np.arange(0, rows * nnz + 1, nnz)
    X = sp.csr_matrix((data, indices, indptr), shape=(rows, cols))
    X.sum_duplicates()
    w = rng.standard_normal(cols).astype(np.float32)
    y = (X @ w > 0).astype(np.int64)
    return X, y


def fit_seconds_per_epoch(est, X, y, repeat):
    from threadpoolctl import threadpool_limits
    best = float("inf")
    for _ in range(repeat):
        with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
            warnings.simplefilter("ignore")   # ConvergenceWarning: max_iter on purpose
            t = time.perf_counter()
            est.fit(X, y)
            best = min(best, (time.perf_counter() - t) / est.n_iter_)
    return best


def main(argv=None):
    from sklearn.neural_network import MLPClassifier as SkMLP

    from fastnn.sklearn import MLPClassifier
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--nnz", type=int, default=50, help="stored entries per row")
    a = p.parse_args(argv)
    kw = dict(hidden_layer_sizes=(a.hidden,), solver="adam", alpha=1e-4, batch_size=200,
              learning_rate_init=1e-3, max_iter=a.epochs, tol=0.0, n_iter_no_change=10**9,
              random_state=0)
    print(f"MLP (in, {a.hidden}, 1), adam, batch 200, {a.nnz} entries per row, 1 thread, "
          f"fit time per epoch (best of {a.repeat})")
    print("| X | fastnn, CSR | fastnn, dense copy | sklearn, CSR | fastnn CSR vs sklearn |")
    print("|---|---|---|---|---|")
    for rows, cols, dense_ok in ((10000, 5000, True), (20000, 200000, False)):
        X, y = make_data(rows, cols, a.nnz)
        t_sparse = fit_seconds_per_epoch(MLPClassifier(n_threads=1, **kw), X, y, a.repeat)
        if dense_ok:
            Xd = X.toarray()
            t_dense = fit_seconds_per_epoch(MLPClassifier(n_threads=1, **kw), Xd, y, a.repeat)
            del Xd
            dense = f"{t_dense * 1e3:.1f} ms ({t_dense / t_sparse:.1f}x slower)"
        else:
            dense = f"not run ({rows * cols * 4 / 2**30:.0f} GiB as float32)"
        t_sk = fit_seconds_per_epoch(SkMLP(**kw), X, y, a.repeat)
        print(f"| {rows} x {cols}, {X.nnz} entries | {t_sparse * 1e3:.1f} ms | {dense} | "
              f"{t_sk * 1e3:.1f} ms | {t_sk / t_sparse:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
