"""fnn_all_finite (csrc/finite.c), the NaN/Inf check of fit's data: every
position of a bad value is found, on one thread and when a large array is
split over two (1M floats and more), with the NumPy backend's answer."""
import numpy as np
import pytest

from fastnn._backend import get_backend

C = get_backend("c")
R = get_backend("numpy")


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    old = C.get_num_threads()
    C.set_num_threads(request.param)
    yield request.param
    C.set_num_threads(old)


@pytest.mark.parametrize("n", [1, 17, 65536, 65537, 999_999, 1_000_000, 2_500_001])
def test_every_position_of_a_bad_value_is_found(threads, n):
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    x[n // 3] = np.finfo(np.float32).max       # finite extremes are fine
    x[n // 5] = np.finfo(np.float32).smallest_subnormal
    assert C.all_finite(x) and R.all_finite(x)
    half = n // 2
    for pos in sorted({0, 1, 65535, 65536, half - 1, half, half + 1, n - 2, n - 1}):
        if not 0 <= pos < n:
            continue
        for bad in (np.nan, np.inf, -np.inf):
            x[pos] = bad
            assert not C.all_finite(x), (pos, bad)
            assert not R.all_finite(x), (pos, bad)
            x[pos] = 0.5
    assert C.all_finite(x)


def test_bad_values_in_both_halves(threads):
    x = np.zeros(3_000_000, np.float32)
    x[10] = x[2_999_990] = np.nan
    assert not C.all_finite(x)
    assert C.all_finite(np.zeros(0, np.float32))
