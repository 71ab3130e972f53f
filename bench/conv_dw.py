"""The convolution weight gradient (dW and db, no dx) at LeNet and VGG shapes.

    OMP_NUM_THREADS=1 python bench/conv_dw.py [--threads 1] [--rounds 7]

fastnn's standalone conv2d_backward with dx=None (it rebuilds the patch
matrix the model's step would keep from the forward, so im2col is inside
the time) against torch.nn.grad.conv2d_weight when PyTorch is installed,
interleaved in one process; best of `rounds` rounds of 10 calls, in ms.
The standalone call also allocates that patch matrix afresh each time (on
VGG's 32 -> 32 the page clearing was ~17% of it; the model's step keeps its
workspace): use it to compare fastnn builds, not as fastnn vs PyTorch.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import fastnn as fnn  # noqa: E402 (the source tree first)
from fastnn import _core as C  # noqa: E402
from pool_norm import best  # noqa: E402 (bench/pool_norm.py: best of rounds, ms a call)

# (name, x shape, weight shape, padding)
SHAPES = [("lenet conv1", (64, 1, 28, 28), (6, 1, 5, 5), 2),
          ("lenet conv2", (64, 6, 14, 14), (16, 6, 5, 5), 0),
          ("vgg 3->32", (64, 3, 32, 32), (32, 3, 3, 3), 1),
          ("vgg 32->32", (64, 32, 32, 32), (32, 32, 3, 3), 1),
          ("vgg 32->64", (64, 32, 16, 16), (64, 32, 3, 3), 1),
          ("vgg 64->64", (64, 64, 16, 16), (64, 64, 3, 3), 1),
          ("vgg 64->128", (64, 64, 8, 8), (128, 64, 3, 3), 1)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    fnn.set_num_threads(a.threads)
    try:
        import torch
        torch.set_num_threads(a.threads)
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    print(f"| shape | fastnn ms | torch ms | torch/fastnn |  ({a.threads} thread(s))")
    print("|---|---|---|---|")
    for name, xs, ws, pad in SHAPES:
        x = rng.standard_normal(xs).astype(np.float32)
        w = rng.standard_normal(ws).astype(np.float32)
        oh = xs[2] + 2 * pad - ws[2] + 1
        dy = rng.standard_normal((xs[0], ws[0], oh, oh)).astype(np.float32)
        dw, db = np.zeros_like(w), np.zeros(ws[0], np.float32)
        ours = best(lambda: C.conv2d_backward(None, dw, db, dy, x, w, 1, pad, 1, 1),
                    a.rounds, reps=10)
        row = f"| {name} {xs}->{ws} | {ours:.3f} |"
        if torch is not None:
            tx, tdy = torch.from_numpy(x), torch.from_numpy(dy)

            def tw():
                torch.nn.grad.conv2d_weight(tx, ws, tdy, padding=pad)
                tdy.sum(dim=(0, 2, 3))
            theirs = best(tw, a.rounds, reps=10)
            row += f" {theirs:.3f} | {theirs / ours:.2f}x |"
        else:
            row += " n/a | n/a |"
        print(row)


if __name__ == "__main__":
    main()
