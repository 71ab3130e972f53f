"""Compare fastnn's C backend with its NumPy reference (and PyTorch, if installed).

    python bench/compare.py            # training steps and a digits epoch, 1 and 2 threads
    python bench/compare.py --quick    # fewer repeats
    python bench/compare.py --threads 1

Prints a markdown table: time per unit of work for each implementation and
the ratios against fastnn's C backend, plus line counts of csrc/ and fastnn/
(to weigh each speed-up against the lines it costs). A second table puts the
training steps next to JAX (when ``jax`` is installed; never a dependency):
fastnn's Python ``train_step`` loop, fastnn's ``fit`` (the whole epoch in C,
per step), a ``jax.jit`` step and a ``jax.lax.scan`` epoch (per step) on the
same network, loss, optimizer and batch; XLA's compile time is excluded from
the times and printed on its own.

How it measures: every (implementation, work, thread count) runs in its own
subprocess with its thread pool pinned -- fastnn via ``set_num_threads``,
NumPy's OpenBLAS via ``OPENBLAS_NUM_THREADS``, PyTorch via
``torch.set_num_threads`` -- because alternating an OpenBLAS pool and an
OpenMP pool inside one process on 2 cores was measured to stall calls by
milliseconds. Each worker is also pinned to its cores (``taskset -c 0`` at
1 thread, ``0,1`` at 2) and JAX at 1 thread runs with
``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``.
Each worker warms up, then takes the median of several timed blocks of
steps. The machines are noisy: read the ratios, not the absolute times.
"""
import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
try:   # the installed package; else the source tree (built in place)
    import fastnn  # noqa: F401
except ImportError:
    sys.path.insert(0, str(ROOT))

# name -> (layer sizes, activation, loss, optimizer, batch size)
STEPS = {
    "step 784-256-128-10 b32": ((784, 256, 128, 10), "relu", "ce", "adam", 32),
    "step 784-256-128-10 b128": ((784, 256, 128, 10), "relu", "ce", "adam", 128),
    "step 784-256-128-10 b512": ((784, 256, 128, 10), "relu", "ce", "adam", 512),
    "step 2-16-16-1 b32 (tiny)": ((2, 16, 16, 1), "tanh", "mse", "sgd", 32),
    "step 64-64-64-1 b64 (tiny)": ((64, 64, 64, 1), "tanh", "mse", "sgd", 64),
}
EPOCHS = {"epoch digits 64-128-64-10 b64": ((64, 128, 64, 10), "relu", "ce", "adam", 64)}
# name -> (M, N, K, transA, transB): C (M, N) = op(A) (M, K) . op(B) (K, N)
GEMMS = {
    "gemm 128x256x784 (fwd)": (128, 256, 784, False, False),
    "gemm 784x256x128 (dW, TN)": (784, 256, 128, True, False),
    "gemm 128x784x256 (dX, NT)": (128, 784, 256, False, True),
    "gemm 128x10x128 (output layer)": (128, 10, 128, False, False),
    "gemm 1024x1024x1024": (1024, 1024, 1024, False, False),
}
IMPLS = ("c", "numpy", "torch")
# the step table's extra cells: fastnn's fit, JAX jit-compiled step, JAX scan epoch
STEP_IMPLS = ("fit", "jax_jit", "jax_scan")
FIT_STEPS = 1000       # steps per epoch in the fit and scan cells (the batch repeated)


def _data(sizes, loss, n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, sizes[0])).astype(np.float32)
    if loss == "ce":
        y = rng.integers(0, sizes[-1], n).astype(np.int64)
    else:
        y = rng.standard_normal((n, sizes[-1])).astype(np.float32)
    return X, y


def _fastnn_model(sizes, act, loss, opt, backend):
    import fastnn as fnn
    acts = {"relu": fnn.ReLU, "tanh": fnn.Tanh}
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(fnn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(acts[act]())
    model = fnn.Sequential(*layers, seed=0, backend=backend)
    loss_fn = fnn.CrossEntropyLoss() if loss == "ce" else fnn.MSELoss()
    optim = (fnn.Adam(model.parameters(), lr=1e-3) if opt == "adam"
             else fnn.SGD(model.parameters(), lr=1e-2))
    return model, loss_fn, optim


def _torch_model(sizes, act, loss, opt):
    import torch
    acts = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(acts[act]())
    model = torch.nn.Sequential(*layers)
    loss_fn = torch.nn.CrossEntropyLoss() if loss == "ce" else torch.nn.MSELoss()
    optim = (torch.optim.Adam(model.parameters(), lr=1e-3) if opt == "adam"
             else torch.optim.SGD(model.parameters(), lr=1e-2))
    return model, loss_fn, optim


def _step_fn(impl, sizes, act, loss, opt):
    """Return step(x, y) running one training step of `impl`, and a data converter."""
    if impl == "torch":
        import torch
        model, loss_fn, optim = _torch_model(sizes, act, loss, opt)

        def step(x, y):
            optim.zero_grad(set_to_none=True)
            out = loss_fn(model(x), y)
            out.backward()
            optim.step()
            return out

        return step, torch.from_numpy
    model, loss_fn, optim = _fastnn_model(sizes, act, loss, opt, impl)
    return (lambda x, y: model.train_step(x, y, loss_fn, optim)), (lambda a: a)


def _time_blocks(run, reps, min_block_s):
    """Median seconds of one call of run(), over `reps` blocks of >= min_block_s."""
    run()
    t0 = time.perf_counter()
    run()
    one = max(time.perf_counter() - t0, 1e-7)
    inner = max(1, int(min_block_s / one))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            run()
        times.append((time.perf_counter() - t0) / inner)
    return float(np.median(times))


def _gemm_fn(impl, M, N, K, ta, tb):
    """Return a callable computing C = op(A) op(B) with `impl`, on fixed operands."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((K, M) if ta else (M, K)).astype(np.float32)
    B = rng.standard_normal((N, K) if tb else (K, N)).astype(np.float32)
    C = np.empty((M, N), np.float32)
    if impl == "c":
        from fastnn import _core
        return lambda: _core.sgemm(ta, tb, 1.0, A, B, 0.0, C)
    if impl == "numpy":
        opA, opB = (A.T if ta else A), (B.T if tb else B)
        return lambda: np.matmul(opA, opB, out=C)
    import torch
    tA, tB, tC = torch.from_numpy(A), torch.from_numpy(B), torch.from_numpy(C)
    opA, opB = (tA.T if ta else tA), (tB.T if tb else tB)
    return lambda: torch.matmul(opA, opB, out=tC)


def worker(impl, work, threads, reps):
    """Run one measurement in this process and print its result as JSON."""
    if impl.startswith("jax"):   # threads pinned by the environment (run_worker)
        sizes, act, loss, opt, bs = STEPS[work]
        return jax_worker(impl, sizes, act, loss, opt, bs, reps)
    if impl == "torch":
        import torch
        torch.set_num_threads(threads)
    else:
        import fastnn
        fastnn.set_num_threads(threads)
    if work == "memory":
        return memory_worker(impl)
    if work in GEMMS:
        M, N, K, ta, tb = GEMMS[work]
        sec = _time_blocks(_gemm_fn(impl, M, N, K, ta, tb), reps, 0.1)
        return {"sec": sec, "gflops": 2.0 * M * N * K / sec / 1e9}
    if work in STEPS and impl == "fit":
        return fit_worker(*STEPS[work], reps)
    if work in STEPS:
        sizes, act, loss, opt, bs = STEPS[work]
        step, conv = _step_fn(impl, sizes, act, loss, opt)
        X, y = _data(sizes, loss, bs)
        x, t = conv(X), conv(y)
        for _ in range(5):
            step(x, t)
        sec = _time_blocks(lambda: step(x, t), reps, 0.2)
        return {"sec": sec, "samples_per_s": bs / sec}
    sizes, act, loss, opt, bs = EPOCHS[work]
    from fastnn.datasets import load_digits
    X, y = load_digits()
    step, conv = _step_fn(impl, sizes, act, loss, opt)
    order = np.random.default_rng(0).permutation(len(X))

    def epoch():
        for i in range(0, len(X), bs):
            idx = order[i:i + bs]
            step(conv(np.ascontiguousarray(X[idx])), conv(np.ascontiguousarray(y[idx])))

    sec = _time_blocks(epoch, reps, 0.3)
    return {"sec": sec, "samples_per_s": len(X) / sec}


# ------------------------------------------------------------------ JAX
def _jax_setup(sizes, act, loss, opt, bs):
    """A jit step and a scan epoch of the same network, loss and optimizer as
    _fastnn_model: Linear layers (Xavier-uniform weights, zero biases; only the
    shapes matter for time), mean MSE or mean softmax cross-entropy, SGD
    (lr 1e-2) or Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8, PyTorch's rule)."""
    import jax
    import jax.numpy as jnp
    key = jax.random.PRNGKey(0)
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        key, k = jax.random.split(key)
        lim = (6.0 / (a + b)) ** 0.5
        params.append((jax.random.uniform(k, (a, b), jnp.float32, -lim, lim),
                       jnp.zeros((b,), jnp.float32)))
    f = jnp.tanh if act == "tanh" else jax.nn.relu

    def loss_fn(ps, x, y):
        h = x
        for i, (w, b) in enumerate(ps):
            h = h @ w + b
            if i < len(ps) - 1:
                h = f(h)
        if loss == "ce":
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(h), y[:, None], 1))
        return jnp.mean((h - y) ** 2)

    grad = jax.value_and_grad(loss_fn)
    tmap = jax.tree_util.tree_map
    if opt == "adam":
        state = (tmap(jnp.zeros_like, params), tmap(jnp.zeros_like, params),
                 jnp.zeros((), jnp.float32))

        def update(ps, st, g):
            m, v, t = st
            t = t + 1.0
            m = tmap(lambda m_, g_: 0.9 * m_ + 0.1 * g_, m, g)
            v = tmap(lambda v_, g_: 0.999 * v_ + 0.001 * g_ * g_, v, g)
            step = 1e-3 / (1.0 - 0.9 ** t)
            bc2 = jnp.sqrt(1.0 - 0.999 ** t)
            ps = tmap(lambda p, m_, v_: p - step * m_ / (jnp.sqrt(v_) / bc2 + 1e-8), ps, m, v)
            return ps, (m, v, t)
    else:
        state = ()

        def update(ps, st, g):
            return tmap(lambda p, g_: p - 1e-2 * g_, ps, g), st

    def step(ps, st, x, y):
        lv, g = grad(ps, x, y)
        ps, st = update(ps, st, g)
        return ps, st, lv

    def epoch(ps, st, xs, ys):
        def body(carry, xy):
            ps_, st_ = carry
            ps_, st_, lv = step(ps_, st_, xy[0], xy[1])
            return (ps_, st_), lv
        (ps, st), losses = jax.lax.scan(body, (ps, st), (xs, ys))
        return ps, st, losses
    return jax, params, state, step, epoch


def jax_worker(impl, sizes, act, loss, opt, bs, reps):
    """Per-step seconds of a jax.jit step (impl 'jax_jit') or of a lax.scan
    epoch of FIT_STEPS steps ('jax_scan'), compile time measured apart."""
    import jax.numpy as jnp
    jax, params, state, step, epoch = _jax_setup(sizes, act, loss, opt, bs)
    X, y = _data(sizes, loss, bs)
    x, t = jnp.asarray(X), jnp.asarray(y)
    if impl == "jax_jit":
        fn, args, per = jax.jit(step, donate_argnums=(0, 1)), (x, t), 1
    else:
        xs = jnp.broadcast_to(x, (FIT_STEPS,) + x.shape)
        ts = jnp.broadcast_to(t, (FIT_STEPS,) + t.shape)
        fn, args, per = jax.jit(epoch, donate_argnums=(0, 1)), (xs, ts), FIT_STEPS
    t0 = time.perf_counter()
    compiled = fn.lower(params, state, *args).compile()
    compile_s = time.perf_counter() - t0
    box = [params, state]

    def run():
        ps, st, lv = compiled(box[0], box[1], *args)
        box[0], box[1] = ps, st
        return lv

    for _ in range(3 if per > 1 else 20):
        run().block_until_ready()

    def block(n):   # n calls, then wait for the last one: steps pipeline as in a loop
        lv = None
        for _ in range(n):
            lv = run()
        lv.block_until_ready()

    block(1)
    t0 = time.perf_counter()
    block(1)
    one = max(time.perf_counter() - t0, 1e-7)
    inner = max(1, int(0.2 / one))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        block(inner)
        times.append((time.perf_counter() - t0) / inner)
    sec = float(np.median(times)) / per
    return {"sec": sec, "samples_per_s": bs / sec, "compile_s": compile_s}


def fit_worker(sizes, act, loss, opt, bs, reps):
    """Per-step seconds of fastnn's fit (the whole epoch in C, shuffled):
    epochs of FIT_STEPS batches, the one-epoch fit call timed as a block."""
    model, loss_fn, optim = _fastnn_model(sizes, act, loss, opt, "c")
    X, y = _data(sizes, loss, bs * FIT_STEPS)
    kw = dict(loss=loss_fn, optimizer=optim, epochs=1, batch_size=bs, verbose=0)
    model.fit(X, y, **kw)   # warm: workspace, gather buffers, binding
    sec = _time_blocks(lambda: model.fit(X, y, **kw), reps, 0.2)
    return {"sec": sec / FIT_STEPS, "samples_per_s": bs * FIT_STEPS / sec}


def have_jax():
    try:
        import jax  # noqa: F401
        return True
    except ImportError:
        return False


def _step_flops(sizes, n):
    """FLOPs of one training step of a dense net on n rows: forward 2n·in·out per
    layer, backward 4n·in·out (dW and dX; the first layer has no dX)."""
    macs = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return 2 * n * sum(macs) + 4 * n * sum(macs) - 2 * n * macs[0]


MEMORY = ("784-256-128-10 b128", (784, 256, 128, 10), 20_000, 128, 3)


def memory_worker(impl):
    """Peak RSS (MiB) of a whole training run: 3 epochs, 20,000 x 784 samples."""
    import resource
    name, sizes, n, bs, epochs = MEMORY
    X, y = _data(sizes, "ce", n)
    step, conv = _step_fn(impl, sizes, "relu", "ce", "adam")
    if impl == "torch":
        Xc, yc = conv(X), conv(y)
        for _ in range(epochs):
            for i in range(0, n, bs):
                step(Xc[i:i + bs], yc[i:i + bs])
    else:
        import fastnn as fnn
        model, loss_fn, optim = _fastnn_model(sizes, "relu", "ce", "adam", impl)
        model.fit(X, y, loss=loss_fn, optimizer=optim, epochs=epochs, batch_size=bs,
                  verbose=0)
    return {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_worker(impl, work, threads, reps):
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    env["MKL_NUM_THREADS"] = str(threads)
    if impl == "numpy":  # let numpy's OpenBLAS pick its best kernel (env README)
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    if impl.startswith("jax"):
        env["JAX_PLATFORMS"] = "cpu"
        if threads == 1:
            env["XLA_FLAGS"] = ("--xla_cpu_multi_thread_eigen=false "
                                "intra_op_parallelism_threads=1")
    cmd = [sys.executable, __file__, "--worker", impl, work, str(threads), str(reps)]
    cpus = ",".join(str(c) for c in range(threads))
    if shutil.which("taskset") and threads <= (os.cpu_count() or 1):
        cmd = ["taskset", "-c", cpus] + cmd
    time.sleep(0.5)   # let the previous worker's threads wind down (measured: a 2-thread
    #                   cell right after a PyTorch cell could lose its second core)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ROOT))
    if out.returncode != 0:
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def have_torch():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def _fmt_time(sec):
    if sec is None:
        return "n/a"
    return f"{sec * 1e6:.0f} µs" if sec < 1e-2 else f"{sec * 1e3:.1f} ms"


def line_counts():
    def count(folder, exts):
        total = 0
        for p in (ROOT / folder).rglob("*"):
            if p.suffix in exts and p.is_file():
                total += sum(1 for _ in p.open(encoding="utf-8", errors="replace"))
        return total
    return {"csrc (C)": count("csrc", {".c", ".h"}),
            "fastnn (Python + Cython)": count("fastnn", {".py", ".pyx", ".pxd"})}


def _fmt_us(sec):
    if sec is None:
        return "n/a"
    return f"{sec * 1e6:.2f} µs" if sec < 1e-5 else f"{sec * 1e6:.1f} µs" if sec < 1e-3 \
        else f"{sec * 1e6:.0f} µs"


def print_step_table(works, threads, impls, best, compile_s, peaks):
    """The training steps against JAX: per-step times and fastnn's lead."""
    names = {"c": "fastnn train_step", "fit": "fastnn fit (per step)",
             "jax_jit": "JAX jit step", "jax_scan": "JAX scan (per step)"}
    print("\nTraining step against JAX (same network, loss, optimizer and batch; "
          f"fit and scan run epochs of {FIT_STEPS} steps; times per step):\n")
    head = "| work | threads | " + " | ".join(names[i] for i in impls) + \
        " | fit GFLOPS (% peak) |"
    sep = "|---|---|" + "---|" * (len(impls) + 1)
    jax_cols = [i for i in impls if i.startswith("jax")]
    if jax_cols:
        head += " fit vs best JAX | XLA compile (jit / scan) |"
        sep += "---|---|"
    print(head)
    print(sep)
    for work in works:
        flops = _step_flops(STEPS[work][0], STEPS[work][4])
        for t in threads:
            sec = {i: best.get((work, t, i)) for i in impls}
            row = f"| {work} | {t} | " + " | ".join(_fmt_us(sec[i]) for i in impls) + " | "
            fit = sec.get("fit")
            if fit:
                row += f"{flops / fit / 1e9:.1f}"
                if t in peaks:
                    row += f" ({100 * flops / fit / 1e9 / peaks[t]:.0f}%)"
            row += " |"
            if jax_cols:
                js = [sec[i] for i in jax_cols if sec[i]]
                row += f" {min(js) / fit:.2f}× |" if fit and js else " n/a |"
                cs = [compile_s.get((work, t, i)) for i in jax_cols]
                row += " " + " / ".join(f"{c:.2f} s" if c else "n/a" for c in cs) + " |"
            print(row, flush=True)
    print("\n'fit vs best JAX' = the faster of JAX's jit step and scan epoch / fastnn fit "
          "(> 1: fastnn is faster). XLA compile time is excluded from the step times.")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure every cell this many times (in separate subprocesses, "
                         "spread over the run) and keep its best time")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-jax", action="store_true")
    ap.add_argument("--only", default="", help="run only works whose name contains this")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-RSS runs")
    ap.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        impl, work, threads, reps = args.worker
        print(json.dumps(worker(impl, work, int(threads), int(reps))))
        return 0

    import fastnn
    reps = 3 if args.quick else 7
    impls = [i for i in IMPLS if i != "torch" or (have_torch() and not args.no_torch)]
    works = [w for w in list(GEMMS) + list(STEPS) + list(EPOCHS) if args.only in w]
    step_impls = [i for i in STEP_IMPLS
                  if not i.startswith("jax") or (have_jax() and not args.no_jax)]
    core = fastnn.get_backend("c")
    kernel = core.sgemm_kernel_name()
    mc, kc, nc = core.sgemm_blocking()
    print(f"fastnn {fastnn.__version__}, GEMM kernel: {kernel} (blocks mc {mc}, kc {kc}, "
          f"nc {nc}), "
          f"numpy {np.__version__}" + (", torch " + __import__("torch").__version__
                                        if "torch" in impls else ""))
    print(f"machine: {os.cpu_count()} logical CPUs; median of {reps} blocks per subprocess, "
          f"best of {max(1, args.rounds)} round(s); each cell measured in its own "
          "subprocess\n")
    try:   # the FMA peak of this machine, measured now (bench/compare_gemm.py's C probe)
        from compare_gemm import c_probes
        peaks = c_probes()[0] or {}
    except Exception:  # no compiler: no peak column
        peaks = {}
    if peaks:
        print("FMA peak measured in this run: " +
              ", ".join(f"{v:.0f} GFLOPS on {k} thread(s)" for k, v in peaks.items()) + "\n")
    head = "| work | threads | fastnn (C) | fastnn GFLOPS (% peak) | NumPy ref | C vs NumPy |"
    sep = "|---|---|---|---|---|---|"
    if "torch" in impls:
        head += " PyTorch | C vs PyTorch |"
        sep += "---|---|"
    print(head)
    print(sep)
    best = {}   # (work, threads, impl) -> best seconds over the rounds (None: failed)
    compile_s = {}   # (work, threads, impl) -> least XLA compile seconds seen
    for _ in range(max(1, args.rounds)):
        for work in works:
            for t in args.threads:
                for i in impls + (step_impls if work in STEPS else []):
                    r = run_worker(i, work, t, reps)
                    old = best.get((work, t, i))
                    best[(work, t, i)] = min(x for x in (old, r and r["sec"]) if x) \
                        if (old or r) else None
                    if r and "compile_s" in r:
                        c0 = compile_s.get((work, t, i))
                        compile_s[(work, t, i)] = min(r["compile_s"], c0 or r["compile_s"])
    for work in works:
        for t in args.threads:
            sec = {i: best[(work, t, i)] for i in impls}
            c = sec["c"]
            if work in GEMMS:
                M, N, K = GEMMS[work][:3]
                flops = 2.0 * M * N * K
            elif work in STEPS:
                flops = _step_flops(STEPS[work][0], STEPS[work][4])
            else:
                flops = None
            rate = ""
            if c and flops:
                rate = f"{flops / c / 1e9:.0f}"
                if t in peaks:
                    rate += f" ({100 * flops / c / 1e9 / peaks[t]:.0f}%)"
            row = f"| {work} | {t} | {_fmt_time(c)} | {rate} | {_fmt_time(sec['numpy'])} | "
            row += (f"{sec['numpy'] / c:.1f}× |" if c and sec["numpy"] else "n/a |")
            if "torch" in impls:
                row += f" {_fmt_time(sec['torch'])} | "
                row += (f"{sec['torch'] / c:.1f}× |" if c and sec["torch"] else "n/a |")
            print(row, flush=True)
    step_works = [w for w in works if w in STEPS]
    if step_works:
        print_step_table(step_works, args.threads, ["c"] + step_impls, best, compile_s, peaks)
    if not args.no_memory and not args.only:
        name, sizes, n, bs, epochs = MEMORY
        print(f"\nPeak RSS of a whole training run ({name}, {epochs} epochs of {n:,} "
              "samples, Adam, 1 thread; the whole process, interpreter and libraries "
              "included):\n")
        print("| implementation | peak RSS |")
        print("|---|---|")
        for impl in impls:
            r = run_worker(impl, "memory", 1, 1)
            label = {"c": "fastnn (C)", "numpy": "fastnn (NumPy ref)", "torch": "PyTorch"}[impl]
            print(f"| {label} | {r['peak_rss_mib']:.0f} MiB |" if r else f"| {label} | n/a |",
                  flush=True)
    print("\nTime is per GEMM call, per training step (forward, loss, backward, optimizer "
          "update) or per epoch; 'C vs X' = X's time / fastnn's time (> 1: fastnn is faster).")
    print("Lines of code: " + ", ".join(f"{k} {v}" for k, v in line_counts().items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
