"""Data-parallel training over MPI: samples/s at 1, 2 and 4 ranks and the share of
each step spent in the gradient Allreduce.

    python bench/bench_distributed.py            # 1, 2, 4 ranks; MLP and LeNet-5
    python bench/bench_distributed.py --ranks 1,2 --epochs 2

Each rank count is one ``mpiexec -n R`` job (mpiexec next to the Python
interpreter, e.g. from ``pip install mpich``) running this file with
``--worker``: one fastnn thread per rank, ``fit(..., distributed=MPI())`` on
synthetic data with a fixed GLOBAL batch, timed epochs (best of them), and
then the Allreduce alone: the flat gradient buffer summed in place, timed over
many calls, times the steps of an epoch, as a share of the epoch. This
machine has 2 cores: 4 ranks oversubscribe them, so that row measures
contention, not scaling (docs/scaling.md models more machines from these
numbers).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

NETS = {
    "mlp 784-256-128-10": dict(shape=(784,), n=8192, batch=256),
    "lenet-5 1x28x28": dict(shape=(1, 28, 28), n=2048, batch=128),
}


def _model(name):
    import fastnn as fnn
    if name.startswith("mlp"):
        return fnn.Sequential(fnn.Linear(784, 256), fnn.ReLU(), fnn.Linear(256, 128), fnn.ReLU(),
                              fnn.Linear(128, 10), seed=0)
    return fnn.Sequential(fnn.Conv2d(1, 6, 5, padding=2), fnn.ReLU(), fnn.MaxPool2d(2),
                          fnn.Conv2d(6, 16, 5), fnn.ReLU(), fnn.MaxPool2d(2), fnn.Flatten(),
                          fnn.Linear(400, 120), fnn.ReLU(), fnn.Linear(120, 84), fnn.ReLU(),
                          fnn.Linear(84, 10), input_shape=(1, 28, 28), seed=0)


def worker(name, epochs):
    import fastnn as fnn
    from fastnn.distributed import MPI
    from mpi4py import MPI as mpi
    fnn.set_num_threads(1)
    cfg = NETS[name]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((cfg["n"],) + cfg["shape"]).astype(np.float32)
    y = rng.integers(0, 10, cfg["n"])
    dist = MPI()
    m = _model(name)
    opt = fnn.Adam(m.parameters(), lr=1e-3)
    m.fit(X[:cfg["batch"] * 2], y[:cfg["batch"] * 2], loss="cross_entropy", optimizer=opt,
          epochs=1, batch_size=cfg["batch"], verbose=0, distributed=dist)      # warm-up
    best = float("inf")
    for _ in range(epochs):
        dist.comm.Barrier()
        t0 = time.perf_counter()
        m.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=1, batch_size=cfg["batch"],
              verbose=0, distributed=dist)
        dist.comm.Barrier()
        best = min(best, time.perf_counter() - t0)
    grads = m.flat_grads
    reps = 200
    dist.comm.Barrier()
    t0 = time.perf_counter()
    for _ in range(reps):
        dist.comm.Allreduce(mpi.IN_PLACE, grads, op=mpi.SUM)
    allreduce = (time.perf_counter() - t0) / reps
    steps = -(-cfg["n"] // cfg["batch"])
    if dist.rank == 0:
        print(json.dumps({"net": name, "ranks": dist.size, "epoch_s": best,
                          "samples_per_s": cfg["n"] / best, "step_ms": best / steps * 1e3,
                          "allreduce_ms": allreduce * 1e3, "params": int(grads.size),
                          "comm_share": min(1.0, allreduce * steps / best),
                          "batch": cfg["batch"]}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker")
    ap.add_argument("--ranks", default="1,2,4")
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.epochs)
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    rows = []
    for name in NETS:
        for r in [int(v) for v in args.ranks.split(",")]:
            env = dict(os.environ, OMP_NUM_THREADS="1")
            out = subprocess.run([mpiexec, "-n", str(r), sys.executable, __file__, "--worker",
                                  name, "--epochs", str(args.epochs)], capture_output=True,
                                 text=True, env=env, timeout=600)
            if out.returncode != 0:
                sys.exit(out.stderr)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    cores = os.cpu_count()
    print(f"Command: `python bench/bench_distributed.py --ranks {args.ranks} --epochs "
          f"{args.epochs}`; {cores} cores, one fastnn thread per rank, global batch fixed per net"
          f" (so each rank's shard shrinks as ranks grow).\n")
    print("| net | params | global batch | ranks | samples/s | vs 1 rank | step | Allreduce "
          "(grads) | comm share |")
    print("|---|---|---|---|---|---|---|---|---|")
    base = {}
    for row in rows:
        base.setdefault(row["net"], row["samples_per_s"])
        note = " (oversubscribed)" if row["ranks"] > cores else ""
        print(f"| {row['net']} | {row['params']:,} | {row['batch']} | {row['ranks']}{note} | "
              f"{row['samples_per_s']:,.0f} | {row['samples_per_s'] / base[row['net']]:.2f}x | "
              f"{row['step_ms']:.2f} ms | {row['allreduce_ms']:.3f} ms | "
              f"{100 * row['comm_share']:.0f}% |")


if __name__ == "__main__":
    main()
