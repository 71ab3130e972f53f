"""pytest-benchmark: one epoch over the bundled digits per backend.

    python -m pytest bench/bench_epoch.py --benchmark-only
"""
import numpy as np

import fastnn as fnn
from compare import EPOCHS, _fastnn_model


def test_digits_epoch(benchmark, backend_name):
    (name, (sizes, act, loss, opt, bs)), = EPOCHS.items()
    X, y = fnn.datasets.load_digits()
    model, loss_fn, optim = _fastnn_model(sizes, act, loss, opt, backend_name)

    def epoch():
        return model.fit(X, y, loss=loss_fn, optimizer=optim, epochs=1, batch_size=bs,
                         shuffle=True, seed=0, verbose=0)

    history = benchmark(epoch)
    assert np.isfinite(history.history["loss"][-1])
