"""Bundled digits and synthetic generators."""
import os

import numpy as np

import fastnn as fnn
from fastnn import datasets


def test_digits():
    X, y = datasets.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    counts = np.bincount(y)
    assert len(counts) == 10 and counts.min() >= 170 and counts.max() <= 190
    here = os.path.dirname(datasets.__file__)
    assert os.path.getsize(os.path.join(here, "digits.npz")) < 200_000
    assert "CC BY 4.0" in open(os.path.join(here, "LICENSE_digits.txt")).read()


def test_synthetic_shapes_and_seeds():
    X, y = datasets.make_moons(101, noise=0.1, seed=0)
    assert X.shape == (101, 2) and X.dtype == np.float32 and set(y) == {0, 1}
    np.testing.assert_array_equal(X, datasets.make_moons(101, noise=0.1, seed=0)[0])
    X, y = datasets.make_spirals(300, n_classes=4, seed=1)
    assert X.shape == (300, 2) and np.bincount(y).tolist() == [75] * 4
    X, y = datasets.make_regression_curve(50, noise=0.0, seed=2)
    assert X.shape == y.shape == (50, 1)
    np.testing.assert_allclose(y, np.sin(X), atol=1e-6)
    X, y = datasets.make_xor()
    assert X.shape == (4, 2) and y.tolist() == [0, 1, 1, 0]
    assert fnn.datasets is datasets
