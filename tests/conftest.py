"""Shared fixtures: the backend under test, seeds and thread counts.

Tests that take ``backend`` run once on the C core and once on the NumPy
reference, with identical code.
"""
import os

import numpy as np
import pytest

import fastnn
from fastnn._backend import get_backend

# A seed CI can sweep (like scikit-learn's SKLEARN_TESTS_GLOBAL_RANDOM_SEED).
GLOBAL_SEED = int(os.environ.get("FASTNN_TEST_SEED", "0"))


@pytest.fixture(params=["c", "numpy"])
def backend_name(request):
    return request.param


@pytest.fixture
def backend(backend_name):
    return get_backend(backend_name)


@pytest.fixture
def c():
    """The C backend (fastnn._core)."""
    return get_backend("c")


@pytest.fixture
def ref():
    """The NumPy reference backend (fastnn.reference)."""
    return get_backend("numpy")


@pytest.fixture
def rng():
    return np.random.default_rng(GLOBAL_SEED)


@pytest.fixture(params=[1, 2])
def n_threads(request):
    """Run a test with 1 and with 2 kernel threads, restoring the setting after."""
    core = get_backend("c")
    old = core.get_num_threads()
    core.set_num_threads(request.param)
    yield request.param
    core.set_num_threads(old)
