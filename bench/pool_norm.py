"""Pooling and batch-norm kernels against PyTorch eager at VGG-style shapes.

    OMP_NUM_THREADS=1 python bench/pool_norm.py [--threads 1] [--rounds 7]

Times forward and backward of BatchNorm2d (training mode) and 2x2 MaxPool2d
on (64, 32, 32, 32) float32, interleaved with torch in one process, best of
`rounds` rounds of 20 calls each; prints milliseconds per call and the ratio.
"""
import argparse
import time

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import fastnn as fnn  # noqa: E402 (the source tree first)
from fastnn import _core as C


def best(f, rounds, reps=20):
    f()
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(reps):
            f()
        out.append((time.perf_counter() - t) / reps * 1e3)
    return min(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    fnn.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    shape = (64, 32, 32, 32)
    x = rng.standard_normal(shape).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    y, dx = np.empty_like(x), np.empty_like(x)
    w, b = np.ones(32, np.float32), np.zeros(32, np.float32)
    rm, rv, nb = np.zeros(32, np.float32), np.ones(32, np.float32), np.zeros(1, np.float32)
    dw, db = np.zeros(32, np.float32), np.zeros(32, np.float32)
    yp, dyp = np.empty((64, 32, 16, 16), np.float32), rng.standard_normal((64, 32, 16, 16)).astype(np.float32)
    ours = {
        "bn2d fwd (train)": lambda: C.batch_norm_forward(y, x, w, b, rm, rv, nb, True, 0.1, 1e-5),
        "bn2d bwd": lambda: C.batch_norm_backward(dx, dw, db, dy, x, w, rm, rv, True, 1e-5),
        "bn2d eval fwd": lambda: C.batch_norm_forward(y, x, w, b, rm, rv, nb, False, 0.1, 1e-5),
        "maxpool 2x2 fwd": lambda: C.max_pool2d_forward(yp, x, 2, 2, 0, False),
        "maxpool 2x2 bwd": lambda: C.max_pool2d_backward(dx, dyp, x, yp, 2, 2, 0, False),
    }
    theirs = {}
    try:
        import torch
        torch.set_num_threads(a.threads)
        xt, dyt, dypt = torch.tensor(x), torch.tensor(dy), torch.tensor(dyp)
        wt, bt = torch.ones(32), torch.zeros(32)
        rmt, rvt = torch.zeros(32), torch.ones(32)
        F = torch.nn.functional
        xg = xt.clone().requires_grad_()
        wg, bg = wt.clone().requires_grad_(), bt.clone().requires_grad_()
        # backward = (forward + backward) - forward, each measured with autograd
        theirs["bn2d fwd (train)"] = lambda: F.batch_norm(xt, rmt, rvt, wt, bt, True, 0.1, 1e-5)
        theirs["bn2d fwd+bwd"] = lambda: torch.autograd.grad(
            F.batch_norm(xg, rmt, rvt, wg, bg, True, 0.1, 1e-5), (xg, wg, bg), dyt)
        theirs["bn2d eval fwd"] = lambda: F.batch_norm(xt, rmt, rvt, wt, bt, False, 0.1, 1e-5)
        theirs["maxpool 2x2 fwd"] = lambda: F.max_pool2d(xt, 2)
        theirs["maxpool fwd+bwd"] = lambda: torch.autograd.grad(F.max_pool2d(xg, 2), xg, dypt)
    except ImportError:
        pass
    res = {}
    for r in range(a.rounds):   # interleaved: one round of each per pass
        for name, f in list(ours.items()) + [("torch " + k, v) for k, v in theirs.items()]:
            res[name] = min(res.get(name, 1e9), best(f, 1))
    ours_fb = {"bn2d fwd+bwd": res["bn2d fwd (train)"] + res["bn2d bwd"],
               "maxpool fwd+bwd": res["maxpool 2x2 fwd"] + res["maxpool 2x2 bwd"]}
    print(f"threads {a.threads}, x {shape}, best of {a.rounds} rounds of 20 calls (ms/call)")
    print(f"{'kernel':20s} {'fastnn':>8s} {'torch':>8s} {'torch/fastnn':>12s}")
    for name in ("bn2d fwd (train)", "bn2d eval fwd", "bn2d fwd+bwd", "maxpool 2x2 fwd",
                 "maxpool fwd+bwd"):
        mine = res.get(name, ours_fb.get(name))
        t = res.get("torch " + name)
        print(f"{name:20s} {mine:8.3f} {t if t else float('nan'):8.3f} "
              f"{(t / mine) if t else float('nan'):12.2f}")


if __name__ == "__main__":
    main()
