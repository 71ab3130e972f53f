"""batches and train_test_split."""
import numpy as np
import pytest

import fastnn as fnn


def test_batches_cover_every_sample_once():
    X = np.arange(23, dtype=np.float32).reshape(-1, 1)
    y = np.arange(23)
    seen = []
    for xb, yb in fnn.batches(X, y, batch_size=5, shuffle=True, seed=0):
        assert len(xb) == len(yb) <= 5
        np.testing.assert_array_equal(xb[:, 0], yb)
        seen.extend(yb)
    assert sorted(seen) == list(range(23)) and seen != list(range(23))
    sizes = [len(b) for b in fnn.batches(X, batch_size=5)]
    assert sizes == [5, 5, 5, 5, 3]
    assert [len(b) for b in fnn.batches(X, batch_size=5, drop_last=True)] == [5, 5, 5, 5]
    assert [len(b) for b in fnn.batches(X, batch_size=100)] == [23]   # full batch


def test_batches_shuffle_reproducible():
    X = np.arange(50).reshape(-1, 1)
    a = [b.ravel().tolist() for b in fnn.batches(X, batch_size=8, shuffle=True, seed=3)]
    b = [b.ravel().tolist() for b in fnn.batches(X, batch_size=8, shuffle=True, seed=3)]
    c = [b.ravel().tolist() for b in fnn.batches(X, batch_size=8, shuffle=True, seed=4)]
    assert a == b and a != c


def test_batches_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        list(fnn.batches(np.ones((3, 1)), batch_size=0))
    with pytest.raises(ValueError, match="inconsistent"):
        list(fnn.batches(np.ones((3, 1)), np.ones(2)))


def test_split_sizes_and_disjointness():
    X = np.arange(100).reshape(-1, 1)
    y = np.arange(100)
    X_tr, X_te, y_tr, y_te = fnn.train_test_split(X, y, test_size=0.25, seed=0)
    assert len(X_te) == 25 and len(X_tr) == 75
    assert sorted(np.r_[y_tr, y_te]) == list(range(100))
    np.testing.assert_array_equal(X_tr[:, 0], y_tr)
    assert len(fnn.train_test_split(X, y, test_size=10)[1]) == 10
    again = fnn.train_test_split(X, y, test_size=0.25, seed=0)
    np.testing.assert_array_equal(again[3], y_te)


def test_split_stratified_keeps_proportions():
    y = np.r_[np.zeros(90), np.ones(10)].astype(int)
    X = np.arange(100).reshape(-1, 1)
    _, _, y_tr, y_te = fnn.train_test_split(X, y, test_size=0.2, seed=0, stratify=True)
    assert len(y_te) == 20 and y_te.sum() == 2 and y_tr.sum() == 8
    Xd, yd = fnn.datasets.load_digits()
    _, _, _, yt = fnn.train_test_split(Xd, yd, test_size=0.25, seed=0, stratify=True)
    assert len(yt) == 450 and np.bincount(yt).min() >= 43 and np.bincount(yt).max() <= 46


@pytest.mark.parametrize("test_size", [0, 1.0, 100, -0.5, "a"])
def test_split_bad_sizes(test_size):
    with pytest.raises(ValueError, match="test"):
        fnn.train_test_split(np.ones((100, 1)), np.ones(100), test_size=test_size)
