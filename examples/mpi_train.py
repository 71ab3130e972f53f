"""Data-parallel training over MPI: run as ``mpiexec -n 4 python examples/mpi_train.py``.

Every rank runs this same script on the same data (pass ``MPI(sharded=True)``
and each rank's own rows instead when the data is already split). The global
batch of 64 rows is split over the ranks at every step and the gradients are
summed with one Allreduce, so the parameters equal single-process training
with batch 64 up to float32 rounding. Rank 0 prints and saves.

    --out PATH      save rank 0's parameters (.npy) there
    --epochs N      (default 3)
    --sharded       give each rank only its own rows
    --bad-label-on RANK   put an out-of-range label in that rank's rows (with
                    --sharded): fit's checks fail on that rank before training, and
                    the job is aborted with an error naming RANK
    --fail-on RANK  make that rank's 5th step raise (an injected error): every rank
                    stops with a DistributedError naming RANK
"""
import argparse
import sys

import numpy as np

import fastnn as fnn
from fastnn.distributed import MPI, DistributedError


def data(n=480, d=20, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = (X[:, :3].argmax(axis=1) + (X[:, 3] > 1.0)) % classes
    return X, y


def model():
    return fnn.Sequential(fnn.Linear(20, 64), fnn.ReLU(), fnn.Linear(64, 32), fnn.Tanh(),
                          fnn.Linear(32, 3), seed=0)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--sharded", action="store_true")
    ap.add_argument("--bad-label-on", type=int, default=-1)
    ap.add_argument("--fail-on", type=int, default=-1)
    args = ap.parse_args(argv)
    fnn.set_num_threads(1)
    dist = MPI(sharded=args.sharded)
    X, y = data()
    Xv, yv = data(n=96, seed=1)
    if args.sharded:       # this rank's rows only
        X, y = X[dist.rank::dist.size], y[dist.rank::dist.size].copy()
    if dist.rank == args.bad_label_on:
        y = y.copy()
        y[len(y) // 2] = 7         # out of range for 3 classes: fails mid-epoch
    m = model()
    if dist.rank == args.fail_on:
        workspace, calls = m._workspace, [0]

        def failing_workspace(n, training=False):
            calls[0] += training
            if calls[0] == 5:
                raise MemoryError("injected failure in step 5")
            return workspace(n, training)
        m._workspace = failing_workspace
    try:
        hist = m.fit(X, y, loss="cross_entropy", optimizer=fnn.Adam(m.parameters(), lr=1e-2),
                     epochs=args.epochs, batch_size=64, seed=5, validation_data=(Xv, yv),
                     callbacks=[fnn.EarlyStopping(monitor="val_loss", patience=50)],
                     verbose=1, distributed=dist)
    except DistributedError as e:      # raised on every rank alike: report them all
        lines = dist.comm.gather(f"rank {dist.rank}: {e}", root=0)
        if dist.rank == 0:
            print("\n".join(lines), file=sys.stderr, flush=True)
        return 1
    h = hist.history
    line = (f"rank {dist.rank}/{dist.size}: epochs {len(h['loss'])} loss {h['loss'][-1]:.6f} "
            f"val_loss {h['val_loss'][-1]:.6f} val_accuracy {h['val_accuracy'][-1]:.4f} "
            f"param_sum {float(m.flat_params.astype(np.float64).sum()):.9e}")
    lines = dist.comm.gather(line, root=0)    # printed by rank 0: no interleaved output
    if dist.rank == 0:
        print("\n".join(lines), flush=True)
    if args.out and dist.rank == 0:
        np.save(args.out, m.flat_params)
    return 0


if __name__ == "__main__":
    sys.exit(main())
