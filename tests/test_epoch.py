"""A whole epoch in one C call (csrc/model.c fnn_model_train_epoch, used by fit):
the same bits as fit's step-by-step loop, divergence reported at the same step,
Ctrl-C seen between calls, and the C entry point's argument checks."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import fastnn as fnn
from fastnn import _core

f32 = np.float32


def _fit(in_c, loss, y, dropout=0.1, shuffle=True, batch_size=37, epochs=3, **kw):
    X = np.random.default_rng(1).standard_normal((203, 8)).astype(f32)
    layers = [fnn.Linear(8, 16), fnn.Tanh(), fnn.Dropout(dropout), fnn.Linear(16, y.shape[1] if
                                                                          y.ndim == 2 else 3)]
    model = fnn.Sequential(*layers, seed=5)
    if not in_c:
        model._epoch_model = lambda *a: None      # fit's step-by-step loop
    opt = fnn.Adam(model.parameters(), lr=0.01)
    h = model.fit(X, y, loss=loss, optimizer=opt, epochs=epochs, batch_size=batch_size,
                  shuffle=shuffle, verbose=0, seed=2, **kw)
    return model, opt, h


@pytest.mark.parametrize("case", ["cross_entropy", "bce", "mse", "no-shuffle", "full-batch",
                                  "validation+schedule"])
def test_epoch_in_c_equals_the_step_loop_bitwise(case):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 203)
    kw, loss, y = {}, fnn.CrossEntropyLoss(), labels
    if case == "bce":
        loss, y = fnn.BCEWithLogitsLoss(), (rng.random((203, 2)) > 0.5).astype(f32)
    elif case == "mse":
        loss, y = fnn.MSELoss(), rng.standard_normal((203, 3)).astype(f32)
    elif case == "no-shuffle":
        kw = dict(shuffle=False)
    elif case == "full-batch":
        kw = dict(batch_size=1000)
    elif case == "validation+schedule":
        kw = dict(validation_split=0.2)
    runs = []
    for in_c in (True, False):
        model, opt, h = _fit(in_c, loss, y, **kw)
        runs.append((model, opt, h))
    (a, oa, ha), (b, ob, hb) = runs
    np.testing.assert_array_equal(a.flat_params, b.flat_params)
    assert ha.history == hb.history                  # loss and accuracy sums, in order
    assert a._counter == b._counter and oa.step_count == ob.step_count
    np.testing.assert_array_equal(oa.state[0]["exp_avg_sq"], ob.state[0]["exp_avg_sq"])


@pytest.mark.parametrize("loss_name", ["cross_entropy", "mse"])
def test_wide_batches_gathered_on_two_threads_give_the_step_loops_bits(loss_name):
    # 256 rows x 300 features = 76,800 floats: above the size at which
    # fnn_model_train_epoch splits the gather over the threads (62,500); the
    # last batch (1001 - 3 * 256 = 233 rows, 69,900 floats) also, with sample
    # weights gathered beside the rows.
    rng = np.random.default_rng(3)
    X = rng.standard_normal((1001, 300)).astype(f32)
    w = rng.random(1001).astype(f32)
    if loss_name == "mse":
        loss, y = fnn.MSELoss(), rng.standard_normal((1001, 2)).astype(f32)
    else:
        loss, y = fnn.CrossEntropyLoss(), rng.integers(0, 2, 1001)
    old = fnn.get_num_threads()
    runs = []
    try:
        for threads, in_c in ((2, True), (2, False), (1, True)):
            fnn.set_num_threads(threads)
            model = fnn.Sequential(fnn.Linear(300, 8), fnn.ReLU(), fnn.Linear(8, 2), seed=4)
            if not in_c:
                model._epoch_model = lambda *a: None
            opt = fnn.SGD(model.parameters(), lr=0.05, momentum=0.9)
            h = model.fit(X, y, loss=loss, optimizer=opt, epochs=2, batch_size=256,
                          sample_weight=w, verbose=0, seed=7)
            runs.append((model.flat_params.copy(), h.history))
    finally:
        fnn.set_num_threads(old)
    for params, history in runs[1:]:
        np.testing.assert_array_equal(params, runs[0][0])
        assert history == runs[0][1]


def test_divergence_names_the_same_epoch_and_step():
    X = np.random.default_rng(0).standard_normal((256, 4)).astype(f32) * 1e3
    y = np.random.default_rng(1).standard_normal((256, 1)).astype(f32) * 1e3
    messages = []
    for in_c in (True, False):
        m = fnn.Sequential(fnn.Linear(4, 64), fnn.ReLU(), fnn.Linear(64, 1), seed=0)
        if not in_c:
            m._epoch_model = lambda *a: None
        with pytest.raises(FloatingPointError) as e:
            m.fit(X, y, loss="mse", optimizer=fnn.SGD(m.parameters(), lr=10.0), epochs=50,
                  batch_size=16, verbose=0)
        messages.append(str(e.value))
    assert messages[0] == messages[1] and "at epoch" in messages[0]


def test_ctrl_c_stops_a_long_fit_quickly_and_leaves_a_usable_model(tmp_path):
    """SIGINT during a fit whose epochs take seconds: KeyboardInterrupt arrives
    within a fraction of that (between C calls of ~50 ms), and the model then
    predicts finite values and saves. The bound is generous: without slicing the
    interrupt would wait for the end of the 20-epoch fit."""
    script = tmp_path / "long_fit.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time, numpy as np, fastnn as fnn
        fnn.set_num_threads(1)
        X = np.random.default_rng(0).standard_normal((200000, 64)).astype(np.float32)
        y = np.random.default_rng(1).integers(0, 10, 200000)
        m = fnn.Sequential(fnn.Linear(64, 256), fnn.ReLU(), fnn.Linear(256, 10), seed=0)
        print("ready", flush=True)
        try:
            m.fit(X, y, loss="cross_entropy", epochs=10000, batch_size=32, verbose=0)
            print("finished", flush=True)
        except KeyboardInterrupt:
            out = m.predict(X[:100])
            m.save({str(tmp_path / 'm.fnn')!r})
            print("interrupted", bool(np.isfinite(out).all()), flush=True)
    """))
    root = os.path.dirname(os.path.dirname(os.path.abspath(fnn.__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                         env=env)
    try:
        assert p.stdout.readline().strip() == "ready"
        time.sleep(1.5)
        t0 = time.perf_counter()
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=60)
        waited = time.perf_counter() - t0
    finally:
        if p.poll() is None:
            p.kill()
    assert out.strip() == "interrupted True"
    assert waited < 10, waited
    assert fnn.load(tmp_path / "m.fnn").num_parameters == 64 * 256 + 256 + 256 * 10 + 10


def test_train_epoch_argument_checks():
    m = _core.Model((3,), [("linear", {"units": 2, "bias": 1})], 0)
    m.set_loss("cross_entropy")
    m.set_optimizer("sgd", {"lr": 0.1})
    X, y = np.ones((5, 3), f32), np.array([0, 1, 0, 1, 1])
    out = m.train_epoch(X, y, None, 2, 0, 0, 1, 0.0, 0.0, 0, 0)
    assert out[2:5] == (5, 3, -1) and m.counters == (3, 3)
    with pytest.raises(ValueError, match="order\\[1\\] = 9 is out of range"):
        m.train_epoch(X, y, np.array([0, 9, 1, 2, 3]), 2, 0, 0, 1, 0.0, 0.0, 0, 0)
    with pytest.raises(ValueError, match="metric 2 does not fit loss cross_entropy"):
        m.train_epoch(X, y, None, 2, 0, 0, 2, 0.0, 0.0, 0, 0)
    with pytest.raises(IndexError, match="target 7 is out of bounds for 2 classes \\(row 3\\)"):
        m.train_epoch(X, np.array([0, 1, 0, 7, 1]), None, 2, 0, 0, 1, 0.0, 0.0, 0, 0)
    with pytest.raises(ValueError, match="labels must have shape \\(5,\\)"):
        m.train_epoch(X, y[:4], None, 2, 0, 0, 1, 0.0, 0.0, 0, 0)
    with pytest.raises(ValueError, match="batch size 0"):
        m.train_epoch(X, y, None, 0, 0, 0, 1, 0.0, 0.0, 0, 0)
    with pytest.raises(ValueError, match="params must not share memory with x"):
        m.train_epoch(m.params[:6].reshape(2, 3), y[:2], None, 2, 0, 0, 1, 0.0, 0.0, 0, 0)
