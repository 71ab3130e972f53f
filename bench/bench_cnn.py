"""Small CNNs side by side: fastnn vs PyTorch eager vs JAX jit (when installed).

    python bench/bench_cnn.py                 # LeNet-5 and the VGG-style net, 1 and 2 threads
    python bench/bench_cnn.py --rounds 3      # best of 3 rounds per cell
    python bench/bench_cnn.py --only lenet --threads 1

The networks (ReLU, cross-entropy, Adam lr 1e-3, float32, NCHW):
  lenet  1x28x28: conv 6@5x5 pad 2, maxpool 2, conv 16@5x5, maxpool 2, flatten,
         linear 120, 84, 10
  vgg    3x32x32: [conv 3x3 pad 1, batch norm, ReLU] x 32, 32, maxpool, 64, 64, maxpool,
         128, maxpool, flatten, linear 10

Cells: a training step at batch 64 (forward, loss, backward, update), inference
(fastnn's fused forward, torch under no_grad in eval mode, a jitted JAX apply) at
batch 1 and 64, and the peak RSS of a 3-epoch LeNet run on 6,400 samples. Every
(implementation, cell, thread count) runs in its own subprocess pinned with
taskset to the first `threads` cores, each library's pool set to that many
threads (JAX at 1 thread: XLA_FLAGS=--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1). JAX's compile time is excluded and reported
apart. The FMA peak is measured in the same run (bench/compare_gemm.py's probe);
% of peak = the cell's FLOPs (2 per multiply-add: forward, and for training the
two backward products of every conv and linear layer, the first layer's dx
excepted) / time / peak. Read ratios, not absolute times: the machines are noisy.
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
sys.path.insert(0, str(ROOT / "bench"))
from compare import _time_blocks  # noqa: E402  (median of timed blocks, as compare.py)
try:   # the installed package; else the source tree (built in place)
    import fastnn  # noqa: F401
except ImportError:
    sys.path.insert(0, str(ROOT))

BATCH = 64
# (kind, args): conv (out, k, pad) with bn flag; pool; linear (out)
NETS = {
    "lenet": ((1, 28, 28), [("conv", 6, 5, 2, False), ("pool",), ("conv", 16, 5, 0, False),
                            ("pool",), ("flatten",), ("linear", 120), ("linear", 84),
                            ("linear", 10)]),
    "vgg": ((3, 32, 32), [("conv", 32, 3, 1, True), ("conv", 32, 3, 1, True), ("pool",),
                          ("conv", 64, 3, 1, True), ("conv", 64, 3, 1, True), ("pool",),
                          ("conv", 128, 3, 1, True), ("pool",), ("flatten",),
                          ("linear", 10)]),
}
CELLS = ("train b64", "infer b1", "infer b64")
IMPLS = ("fastnn", "torch", "jax")


def macs(net):
    """Multiply-adds per sample of each conv/linear layer, forward: [(macs, first?)]."""
    (c, h, w), layers = NETS[net]
    out, first = [], True
    for layer in layers:
        if layer[0] == "conv":
            _, o, k, p, _bn = layer
            h, w = h + 2 * p - k + 1, w + 2 * p - k + 1
            out.append((o * h * w * c * k * k, first))
            c, first = o, False
        elif layer[0] == "pool":
            h, w = h // 2, w // 2
        elif layer[0] == "flatten":
            c, h, w = c * h * w, 1, 1
        else:
            out.append((c * layer[1], first))
            c, first = layer[1], False
    return out


def flops(net, cell):
    n = BATCH if cell.endswith("b64") else 1
    m = macs(net)
    fwd = 2 * n * sum(k for k, _ in m)
    if not cell.startswith("train"):
        return fwd
    return 3 * fwd - 2 * n * sum(k for k, first in m if first)


def _data(net, n, seed=0):
    shape, layers = NETS[net]
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n,) + shape).astype(np.float32),
            rng.integers(0, 10, n).astype(np.int64))


# ------------------------------------------------------------------ fastnn
def _fastnn_seq(net):
    import fastnn as fnn
    shape, layers = NETS[net]
    mods, (c, h, w) = [], shape
    for layer in layers:
        if layer[0] == "conv":
            _, o, k, p, bn = layer
            mods.append(fnn.Conv2d(c, o, k, padding=p))
            if bn:
                mods.append(fnn.BatchNorm2d(o))
            mods.append(fnn.ReLU())
            c, h, w = o, h + 2 * p - k + 1, w + 2 * p - k + 1
        elif layer[0] == "pool":
            mods.append(fnn.MaxPool2d(2))
            h, w = h // 2, w // 2
        elif layer[0] == "flatten":
            mods.append(fnn.Flatten())
            c, h, w = c * h * w, 1, 1
        else:
            mods.append(fnn.Linear(c, layer[1]))
            mods.append(fnn.ReLU())
            c = layer[1]
    mods.pop()    # no ReLU after the logits
    return fnn.Sequential(*mods, input_shape=shape, seed=0)


def fastnn_cell(net, cell):
    import fastnn as fnn
    model = _fastnn_seq(net)
    loss, opt = fnn.CrossEntropyLoss(), fnn.Adam(model.parameters(), lr=1e-3)
    if cell.startswith("train"):
        x, y = _data(net, BATCH)
        return lambda: model.train_step(x, y, loss, opt), None
    x, _ = _data(net, 1 if cell.endswith("b1") else BATCH)
    model.eval()
    return lambda: model.predict(x), None


# ------------------------------------------------------------------- torch
def _torch_seq(net):
    import torch
    shape, layers = NETS[net]
    mods, (c, h, w) = [], shape
    for layer in layers:
        if layer[0] == "conv":
            _, o, k, p, bn = layer
            mods.append(torch.nn.Conv2d(c, o, k, padding=p))
            if bn:
                mods.append(torch.nn.BatchNorm2d(o))
            mods.append(torch.nn.ReLU())
            c, h, w = o, h + 2 * p - k + 1, w + 2 * p - k + 1
        elif layer[0] == "pool":
            mods.append(torch.nn.MaxPool2d(2))
            h, w = h // 2, w // 2
        elif layer[0] == "flatten":
            mods.append(torch.nn.Flatten())
            c, h, w = c * h * w, 1, 1
        else:
            mods.append(torch.nn.Linear(c, layer[1]))
            mods.append(torch.nn.ReLU())
            c = layer[1]
    mods.pop()
    return torch.nn.Sequential(*mods)


def torch_cell(net, cell):
    import torch
    model = _torch_seq(net)
    if cell.startswith("train"):
        x, y = map(torch.from_numpy, _data(net, BATCH))
        loss_fn, opt = torch.nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), 1e-3)

        def step():
            opt.zero_grad(set_to_none=True)
            out = loss_fn(model(x), y)
            out.backward()
            opt.step()
        return step, None
    x = torch.from_numpy(_data(net, 1 if cell.endswith("b1") else BATCH)[0])
    model.eval()

    def infer():
        with torch.no_grad():
            return model(x)
    return infer, None


# --------------------------------------------------------------------- jax
def jax_cell(net, cell):
    import jax
    import jax.numpy as jnp
    shape, layers = NETS[net]
    rng = np.random.default_rng(0)
    params, spec, (c, h, w) = [], [], shape
    for layer in layers:
        if layer[0] == "conv":
            _, o, k, p, bn = layer
            params.append({"w": jnp.asarray(rng.standard_normal((o, c, k, k)) *
                                            np.sqrt(2 / (c * k * k)), jnp.float32),
                           "b": jnp.zeros(o, jnp.float32)})
            spec.append(("conv", p))
            if bn:
                params.append({"g": jnp.ones(o, jnp.float32), "b": jnp.zeros(o, jnp.float32)})
                spec.append(("bn",))
            spec.append(("relu",))
            params.append({})
            c, h, w = o, h + 2 * p - k + 1, w + 2 * p - k + 1
        elif layer[0] == "pool":
            spec.append(("pool",))
            params.append({})
            h, w = h // 2, w // 2
        elif layer[0] == "flatten":
            spec.append(("flatten",))
            params.append({})
            c, h, w = c * h * w, 1, 1
        else:
            params.append({"w": jnp.asarray(rng.standard_normal((c, layer[1])) *
                                            np.sqrt(2 / c), jnp.float32),
                           "b": jnp.zeros(layer[1], jnp.float32)})
            spec.append(("linear",))
            spec.append(("relu",))
            params.append({})
            c = layer[1]
    spec.pop()
    params.pop()

    def apply(ps, x):   # batch statistics in BN (training mode), as torch trains
        for (kind, *a), p in zip(spec, ps):
            if kind == "conv":
                x = jax.lax.conv_general_dilated(x, p["w"], (1, 1), [(a[0], a[0])] * 2,
                                                 dimension_numbers=("NCHW", "OIHW", "NCHW"))
                x = x + p["b"][None, :, None, None]
            elif kind == "bn":
                mu = x.mean(axis=(0, 2, 3), keepdims=True)
                var = x.var(axis=(0, 2, 3), keepdims=True)
                x = (x - mu) * jax.lax.rsqrt(var + 1e-5) * p["g"][None, :, None, None] + \
                    p["b"][None, :, None, None]
            elif kind == "relu":
                x = jnp.maximum(x, 0)
            elif kind == "pool":
                x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 2, 2),
                                          (1, 1, 2, 2), "VALID")
            elif kind == "flatten":
                x = x.reshape(x.shape[0], -1)
            else:
                x = x @ p["w"] + p["b"]
        return x

    def loss(ps, x, y):
        logits = apply(ps, x)
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(len(y)), y])

    if cell.startswith("train"):
        x, y = map(jnp.asarray, _data(net, BATCH))
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        state = (params, zeros, zeros, jnp.float32(0))

        @jax.jit
        def step(state, x, y):
            ps, m, v, t = state
            g = jax.grad(loss)(ps, x, y)
            t = t + 1
            m = jax.tree_util.tree_map(lambda m, g: 0.9 * m + 0.1 * g, m, g)
            v = jax.tree_util.tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, v, g)
            lr = 1e-3 * jnp.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
            ps = jax.tree_util.tree_map(lambda p, m, v: p - lr * m / (jnp.sqrt(v) + 1e-8),
                                        ps, m, v)
            return ps, m, v, t

        t0 = time.perf_counter()
        box = [step(state, x, y)]
        jax.block_until_ready(box[0])
        compile_s = time.perf_counter() - t0

        def run():
            box[0] = step(box[0], x, y)
            jax.block_until_ready(box[0])
        return run, compile_s
    x = jnp.asarray(_data(net, 1 if cell.endswith("b1") else BATCH)[0])
    f = jax.jit(apply)
    t0 = time.perf_counter()
    jax.block_until_ready(f(params, x))
    compile_s = time.perf_counter() - t0
    return (lambda: jax.block_until_ready(f(params, x))), compile_s


def memory_worker(impl):
    """Peak RSS (MiB) of 3 epochs of LeNet-5 on 6,400 samples, batch 64."""
    import resource
    X, y = _data("lenet", 6400)
    if impl == "fastnn":
        import fastnn as fnn
        model = _fastnn_seq("lenet")
        model.fit(X, y, loss=fnn.CrossEntropyLoss(),
                  optimizer=fnn.Adam(model.parameters(), lr=1e-3), epochs=3,
                  batch_size=BATCH, verbose=0)
    elif impl == "torch":
        import torch
        model = _torch_seq("lenet")
        lf, opt = torch.nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), 1e-3)
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        for _ in range(3):
            perm = torch.randperm(len(Xt))
            for i in range(0, len(Xt), BATCH):
                idx = perm[i:i + BATCH]
                opt.zero_grad(set_to_none=True)
                lf(model(Xt[idx]), yt[idx]).backward()
                opt.step()
    else:
        return {"peak_rss_mib": None}
    return {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def worker(impl, net, cell, threads, reps):
    if impl == "torch":
        import torch
        torch.set_num_threads(threads)
    elif impl == "fastnn":
        import fastnn
        fastnn.set_num_threads(threads)
    if cell == "memory":
        return memory_worker(impl)
    run, compile_s = {"fastnn": fastnn_cell, "torch": torch_cell, "jax": jax_cell}[impl](net,
                                                                                         cell)
    for _ in range(3):
        run()
    return {"sec": _time_blocks(run, reps, 0.2), "compile_s": compile_s}


def run_worker(impl, net, cell, threads, reps):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS=str(threads))
    if impl == "jax" and threads == 1:
        env["XLA_FLAGS"] = ("--xla_cpu_multi_thread_eigen=false "
                            "intra_op_parallelism_threads=1")
    cmd = [sys.executable, __file__, "--worker", impl, net, cell, str(threads), str(reps)]
    if shutil.which("taskset") and (os.cpu_count() or 1) >= threads:
        cmd = ["taskset", "-c", ",".join(map(str, range(threads)))] + cmd
    time.sleep(0.3)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ROOT))
    if out.returncode != 0:
        print(f"[{impl} {net} {cell} {threads}T failed: {out.stderr.strip()[-300:]}]",
              file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def _have(mod):
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


def _fmt(sec):
    if sec is None:
        return "n/a"
    return f"{sec * 1e6:.0f} µs" if sec < 1e-3 else f"{sec * 1e3:.2f} ms"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=1, help="best of this many subprocesses")
    ap.add_argument("--reps", type=int, default=5, help="timed blocks per subprocess")
    ap.add_argument("--only", default="", help="only nets whose name contains this")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        impl, net, cell, threads, reps = args.worker
        print(json.dumps(worker(impl, net, cell, int(threads), int(reps))))
        return 0
    impls = [i for i in IMPLS if i == "fastnn" or _have(i)]
    nets = [n for n in NETS if args.only in n]
    try:
        from compare_gemm import c_probes
        peaks = c_probes()[0] or {}
    except Exception:
        peaks = {}
    vers = ", ".join(f"{m} {__import__(m).__version__}" for m in ["fastnn"] + impls[1:])
    print(f"{vers}; {os.cpu_count()} logical CPUs; batch {BATCH}; median of {args.reps} "
          f"blocks per subprocess, best of {args.rounds} round(s)")
    if peaks:
        print("FMA peak measured in this run: " +
              ", ".join(f"{v:.0f} GFLOPS on {k} thread(s)" for k, v in peaks.items()))
    best, comp = {}, {}
    for _ in range(max(1, args.rounds)):
        for net in nets:
            for cell in CELLS:
                for t in args.threads:
                    for impl in impls:
                        r = run_worker(impl, net, cell, t, args.reps)
                        if r:
                            k = (net, cell, t, impl)
                            best[k] = min(best.get(k, r["sec"]), r["sec"])
                            if r.get("compile_s"):
                                comp[k] = r["compile_s"]
    head = "| net | cell | threads | fastnn | GFLOPS (% peak) |"
    sep = "|---|---|---|---|---|"
    for impl in impls[1:]:
        head += f" {impl} | {impl} / fastnn |"
        sep += "---|---|"
    print("\n" + head + "\n" + sep)
    for net in nets:
        for cell in CELLS:
            for t in args.threads:
                f = best.get((net, cell, t, "fastnn"))
                rate = ""
                if f:
                    g = flops(net, cell) / f / 1e9
                    rate = f"{g:.1f}" + (f" ({100 * g / peaks[t]:.0f}%)" if t in peaks else "")
                row = f"| {net} | {cell} | {t} | {_fmt(f)} | {rate} |"
                for impl in impls[1:]:
                    o = best.get((net, cell, t, impl))
                    row += f" {_fmt(o)} | " + (f"{o / f:.2f}× |" if o and f else "n/a |")
                print(row)
        for t in args.threads:
            f1, f2 = best.get((net, "train b64", 1, "fastnn")), best.get((net, "train b64", t,
                                                                          "fastnn"))
            if t > 1 and f1 and f2:
                print(f"\n{net}: fastnn train b64, {t} threads vs 1: {f1 / f2:.2f}×")
    if comp:
        print("\nJAX compile time (excluded above): " +
              ", ".join(f"{n} {c} {t}T {s:.2f} s" for (n, c, t, _), s in sorted(comp.items())))
    if not args.no_memory and "lenet" in nets:
        print("\nPeak RSS of 3 LeNet-5 epochs (6,400 samples, batch 64, 1 thread, the whole "
              "process):\n\n| implementation | peak RSS |\n|---|---|")
        for impl in impls:
            if impl == "jax":
                continue
            r = run_worker(impl, "lenet", "memory", 1, 1)
            print(f"| {impl} | " + (f"{r['peak_rss_mib']:.0f} MiB |" if r else "n/a |"))
    print("\nX / fastnn = X's time / fastnn's time (> 1: fastnn is faster). Inference: "
          "fastnn's fused forward (predict), torch eval + no_grad, JAX jit.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
