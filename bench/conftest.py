"""Benchmarks: run with ``python -m pytest bench/ --benchmark-only``.

They are not part of the test suite (testpaths = tests). Timings are noisy on
2 shared cores: compare backends within one run, as ratios.
"""
import pytest


@pytest.fixture(params=["c", "numpy"])
def backend_name(request):
    return request.param
