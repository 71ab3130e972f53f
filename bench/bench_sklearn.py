"""fastnn.sklearn.MLPClassifier vs sklearn.neural_network.MLPClassifier on the bundled digits.

Same architecture (64-100-10, ReLU, softmax), solver adam (lr 1e-3, betas 0.9/0.999),
alpha 1e-4, batch 200, the same number of epochs (tol=0 and no early stopping, so both
run all ``--epochs``); 75/25 stratified split. Prints test accuracy and fit time
(best of ``--repeat``) for each, with 1 thread and with all threads (threadpoolctl
limits scikit-learn's BLAS; ``n_threads`` sets fastnn's count)::

    python bench/bench_sklearn.py [--epochs 200] [--repeat 3]

or as pytest-benchmark tests: ``python -m pytest bench/bench_sklearn.py --benchmark-only``.
The unit tests (tests/test_sklearn.py) check accuracy only; timings are reported here.
"""
import argparse
import pathlib
import sys
import time
import warnings

import numpy as np

if __name__ == "__main__":   # run from a source checkout: python bench/bench_sklearn.py
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import fastnn  # noqa: E402

EPOCHS = 200


def _data():
    from sklearn.model_selection import train_test_split
    X, y = fastnn.datasets.load_digits()
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def _estimators(epochs, n_threads):
    from sklearn.neural_network import MLPClassifier as SkMLP

    from fastnn.sklearn import MLPClassifier
    kw = dict(hidden_layer_sizes=(100,), solver="adam", alpha=1e-4, batch_size=200,
              learning_rate_init=1e-3, max_iter=epochs, tol=0.0, n_iter_no_change=10**9,
              random_state=0)
    return {"fastnn": MLPClassifier(n_threads=n_threads, **kw), "scikit-learn": SkMLP(**kw)}


def _fit_time(est, Xtr, ytr, repeat, threads):
    from threadpoolctl import threadpool_limits
    best = np.inf
    for _ in range(repeat):
        with warnings.catch_warnings(), threadpool_limits(threads, user_api="blas"):
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            est.fit(Xtr, ytr)
            best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=EPOCHS)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    Xtr, Xte, ytr, yte = _data()
    Xtr64, Xte64 = Xtr.astype(np.float64), Xte.astype(np.float64)
    print(f"digits: {len(Xtr)} train / {len(Xte)} test, 64-100-10 relu, adam, batch 200, "
          f"{args.epochs} epochs, best of {args.repeat}")
    print(f"| threads | {'library':12s} | epochs | test acc | fit time (s) | speed-up |")
    print("|---|---|---|---|---|---|")
    for label, threads in (("1", 1), ("all", None)):
        ests = _estimators(args.epochs, 1 if threads == 1 else None)
        times, accs, iters = {}, {}, {}
        for name, est in ests.items():
            Xa, Xb = (Xtr, Xte) if name == "fastnn" else (Xtr64, Xte64)
            times[name] = _fit_time(est, Xa, ytr, args.repeat, threads)
            accs[name], iters[name] = est.score(Xb, yte), est.n_iter_
        for name in ests:
            ratio = times["scikit-learn"] / times[name]
            print(f"| {label:7s} | {name:12s} | {iters[name]:6d} | {accs[name]:.4f}   | "
                  f"{times[name]:12.3f} | {ratio:7.1f}x |")


# ------------------------------------------------------------ pytest-benchmark
def test_fit_digits(benchmark):
    import pytest
    pytest.importorskip("sklearn")
    Xtr, Xte, ytr, yte = _data()
    est = _estimators(50, None)["fastnn"]
    benchmark(est.fit, Xtr, ytr)


def test_fit_digits_sklearn(benchmark):
    import pytest
    pytest.importorskip("sklearn")
    Xtr, Xte, ytr, yte = _data()
    est = _estimators(50, None)["scikit-learn"]
    benchmark(est.fit, Xtr.astype(np.float64), ytr)


if __name__ == "__main__":
    main()
