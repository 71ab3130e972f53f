"""The seeded permutation fit shuffles with (csrc/permutation.c): the C kernel
against its NumPy/Python-int twin, and the draws' uniformity."""
import itertools

import numpy as np
import pytest

from fastnn import _core, reference

KEYS = [0, 1, 2, 0x9E3779B97F4A7C15, 2**63, 2**64 - 1, 123456789]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 64, 1000, 4097])
@pytest.mark.parametrize("key", KEYS)
def test_same_permutation_as_reference(n, key):
    a, b = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
    _core.permutation(a, key)
    reference.permutation(b, key)
    assert np.array_equal(a, b)
    assert np.array_equal(np.sort(a), np.arange(n))


def test_keys_give_different_orders_and_repeat():
    a, b, c = (np.empty(500, np.int64) for _ in range(3))
    _core.permutation(a, 7)
    _core.permutation(b, 7)
    _core.permutation(c, 8)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # key and key + 2^64 are the same key (taken modulo 2^64, as the C uint64_t)
    _core.permutation(c, 7 + 2**64)
    assert np.array_equal(a, c)


def test_all_orders_of_three_equally_likely():
    """6 orders over 60,000 keys: each 10,000 expected. The chi-square
    statistic (5 degrees of freedom) of a uniform draw is below 20.5 with
    probability 0.999; a draw off by one in the bound (r on [0, n-i-1) or
    [0, n-i+1)) leaves orders out or breaks the permutation, and a biased
    one moves the counts by thousands."""
    counts = dict.fromkeys(itertools.permutations(range(3)), 0)
    a = np.empty(3, np.int64)
    for key in range(60000):
        _core.permutation(a, key * 0x5851F42D4C957F2D)
        counts[tuple(a.tolist())] += 1
    exp = 60000 / 6
    chi2 = sum((c - exp) ** 2 / exp for c in counts.values())
    assert chi2 < 20.5, counts


def test_positions_uniform():
    """Where each element lands, over 4000 keys of a 10-permutation:
    400 expected per (element, position); chi-square with 81 degrees of
    freedom stays below 130 with probability 0.999."""
    n, keys = 10, 4000
    hits = np.zeros((n, n))
    a = np.empty(n, np.int64)
    for key in range(keys):
        _core.permutation(a, key)
        hits[a, np.arange(n)] += 1
    exp = keys / n
    assert ((hits - exp) ** 2 / exp).sum() < 130


def test_bad_arguments():
    with pytest.raises(TypeError, match="order.*int64"):
        _core.permutation(np.empty(4, np.int32), 0)
    with pytest.raises(ValueError, match="1-D"):
        _core.permutation(np.empty((2, 2), np.int64), 0)
    ro = np.empty(4, np.int64)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _core.permutation(ro, 0)
    with pytest.raises(TypeError):
        _core.permutation(np.empty(4, np.int64), 1.5)
    with pytest.raises(TypeError, match="int64"):
        reference.permutation(np.empty(4, np.int32), 0)
