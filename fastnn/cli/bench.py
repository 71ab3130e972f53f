"""``fastnn bench``: a small in-process timing of fastnn's C backend against
its NumPy reference -- one fused training step and one digits epoch -- printed
as a markdown table. It needs nothing beyond the installed package."""
import sys
import time

import numpy as np

import fastnn as fnn

from .csvio import CLIError
from .network import build_mlp

DESCRIPTION = ("Times one training step (784-256-128-10, batch 128, Adam) and one epoch "
               "of the bundled digits (64-128-64-10, batch 64) on fastnn's C backend and "
               "on its NumPy reference, in this process, and prints the ratio.")


def _time_per_call(fn, reps):
    """Median seconds of one call of `fn` over `reps` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _works():
    """Row name -> (layer sizes, X, y, batch size; None: one step on all of X)."""
    X_d, y_d = fnn.datasets.load_digits()
    rng = np.random.default_rng(0)
    X_s = rng.standard_normal((128, 784)).astype(np.float32)
    y_s = rng.integers(0, 10, 128)
    return {"step 784-256-128-10 b128": ((784, 256, 128, 10), X_s, y_s, None),
            "epoch digits 64-128-64-10 b64": ((64, 128, 64, 10), X_d, y_d, 64)}


def _job(sizes, X, y, batch, backend):
    """A callable running the work once on a fresh ReLU MLP of `backend`."""
    model = build_mlp(sizes, "relu", seed=0, backend=backend)
    opt, loss = fnn.Adam(model.parameters()), fnn.CrossEntropyLoss()
    if batch is None:
        return lambda: model.train_step(X, y, loss, opt)
    return lambda: model.fit(X, y, loss=loss, optimizer=opt, epochs=1, batch_size=batch,
                             verbose=0)


def builtin_bench(quick=False, stream=None):
    """Time each work on the C and NumPy backends (median of 3 runs with
    `quick`, else 7) and write the markdown table to `stream` (default
    standard output). Returns the exit status, 0."""
    stream = stream or sys.stdout
    reps = 3 if quick else 7
    works = _works()
    stream.write(f"fastnn {fnn.__version__} built-in comparison ({fnn.get_num_threads()} "
                 f"threads, median of {reps}; bench/compare.py in a source checkout "
                 "measures more)\n\n| work | fastnn (C) | NumPy ref | C vs NumPy |\n"
                 "|---|---|---|---|\n")
    for name, (sizes, X, y, batch) in works.items():
        sec = {backend: _time_per_call(_job(sizes, X, y, batch, backend), reps)
               for backend in ("c", "numpy")}
        stream.write(f"| {name} | {sec['c'] * 1e3:.2f} ms | {sec['numpy'] * 1e3:.2f} ms | "
                     f"{sec['numpy'] / sec['c']:.1f}× |\n")
    stream.write("\n'C vs NumPy' = NumPy's time / fastnn's C time (> 1: C is faster).\n")
    return 0


def run_bench(args):
    """``fastnn bench``: :func:`builtin_bench` on the first --threads count, if given."""
    if args.threads is not None and any(t == 0 for t in args.threads):
        raise CLIError("--threads counts must be non-zero")
    if args.threads:
        fnn.set_num_threads(args.threads[0])
    return builtin_bench(args.quick)
