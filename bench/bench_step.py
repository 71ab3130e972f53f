"""pytest-benchmark: one training step (forward, loss, backward, update) per backend.

    python -m pytest bench/bench_step.py --benchmark-only --benchmark-group-by=param:net
"""
import numpy as np
import pytest

from compare import STEPS, _data, _fastnn_model


@pytest.mark.parametrize("net", list(STEPS))
def test_train_step(benchmark, net, backend_name):
    sizes, act, loss, opt, bs = STEPS[net]
    model, loss_fn, optim = _fastnn_model(sizes, act, loss, opt, backend_name)
    X, y = _data(sizes, loss, bs)
    value = benchmark(model.train_step, X, y, loss_fn, optim)
    assert np.isfinite(value)
