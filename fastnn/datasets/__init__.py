"""Datasets that need no network: the bundled digits and small synthetic sets.

Every function returns ``X`` float32 (n_samples, n_features) and ``y``: int64
class labels for classification sets, float32 (n_samples, 1) targets for
regression. ``seed`` makes the synthetic sets reproducible.
"""
import os

import numpy as np

__all__ = ["load_digits", "make_moons", "make_spirals", "make_regression_curve", "make_xor"]


def load_digits():
    """The 1,797 UCI handwritten digits, 8×8 images flattened to 64 features.

    Returns X float32 (1797, 64) scaled to [0, 1] (pixel counts 0..16 / 16)
    and y int64 (1797,) in 0..9, about 180 per class. Source and licence
    (CC BY 4.0): ``LICENSE_digits.txt`` beside this file.
    """
    with np.load(os.path.join(os.path.dirname(__file__), "digits.npz")) as f:
        data, target = f["data"], f["target"]
    return (data.astype(np.float32) / np.float32(16.0)), target.astype(np.int64)


def make_moons(n_samples=200, noise=0.1, seed=None):
    """Two interleaving half circles (classes 0 and 1), Gaussian noise of std `noise`."""
    rng = np.random.default_rng(seed)
    n0 = n_samples // 2
    t0, t1 = np.linspace(0, np.pi, n0), np.linspace(0, np.pi, n_samples - n0)
    X = np.concatenate([np.c_[np.cos(t0), np.sin(t0)],
                        np.c_[1 - np.cos(t1), 0.5 - np.sin(t1)]])
    y = np.r_[np.zeros(n0), np.ones(n_samples - n0)].astype(np.int64)
    X += rng.normal(0.0, noise, X.shape)
    perm = rng.permutation(n_samples)
    return X[perm].astype(np.float32), y[perm]


def make_spirals(n_samples=300, n_classes=3, noise=0.1, seed=None):
    """`n_classes` interleaved spiral arms in 2-D (CS231n's toy set), radius 0..1."""
    rng = np.random.default_rng(seed)
    y = np.arange(n_samples) % n_classes
    r = np.linspace(0.0, 1.0, n_samples)[rng.permutation(n_samples)]
    theta = y * (2 * np.pi / n_classes) + 4.0 * r + rng.normal(0.0, noise, n_samples)
    X = np.c_[r * np.sin(theta), r * np.cos(theta)]
    return X.astype(np.float32), y.astype(np.int64)


def make_regression_curve(n_samples=200, noise=0.1, seed=None):
    """y = sin(x) + noise for x uniform in [-3, 3]; X and y are (n_samples, 1)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3.0, 3.0, (n_samples, 1))
    y = np.sin(x) + rng.normal(0.0, noise, x.shape)
    return x.astype(np.float32), y.astype(np.float32)


def make_xor():
    """The four XOR points: X (4, 2) in {0, 1}², y = x1 XOR x2."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    return X, np.array([0, 1, 1, 0], np.int64)
