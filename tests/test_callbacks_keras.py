"""Keras's callbacks (fastnn/callbacks.py): ModelCheckpoint, CSVLogger,
ReduceLROnPlateau, LearningRateScheduler, TerminateOnNaN -- their rules, and
that they run between epochs when the epoch runs in C (same bits as the
step loop, the fused optimizer rebound when they change the lr)."""
import csv
import math
import os

import numpy as np
import pytest

import fastnn as fnn
from fastnn.callbacks import ReduceLROnPlateau

f32 = np.float32


def _data(n=120):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 5)).astype(f32)
    return X, (X[:, 0] - X[:, 1] > 0).astype(int)


def _model(step_loop=False, seed=3):
    m = fnn.Sequential(fnn.Linear(5, 8), fnn.ReLU(), fnn.Linear(8, 2), seed=seed)
    if step_loop:
        m._epoch_model = lambda *a: None
    return m


def _fit(model, callbacks, epochs=4, lr=0.05, opt=None, **kw):
    X, y = _data()
    opt = opt or fnn.SGD(model.parameters(), lr=lr)
    kw.setdefault("validation_split", 0.25)
    h = model.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=epochs, batch_size=16,
                  seed=0, verbose=0, callbacks=callbacks, **kw)
    return h, opt


class _Spy(fnn.Callback):
    """Records the optimizer's lr at each epoch begin (no batch hook: epochs stay in C)."""

    def __init__(self):
        self.lrs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.lrs.append(self.model.optimizer.lr)


# ------------------------------------------------------------ ModelCheckpoint
def test_checkpoint_every_epoch_formats_the_path(tmp_path):
    m = _model()
    h, _ = _fit(m, [fnn.ModelCheckpoint(str(tmp_path / "m-{epoch:02d}-{val_loss:.4f}.fnn"))],
                epochs=3)
    names = sorted(os.listdir(tmp_path))
    want = sorted(f"m-{e + 1:02d}-{v:.4f}.fnn" for e, v in enumerate(h.history["val_loss"]))
    assert names == want
    last = fnn.load(tmp_path / f"m-03-{h.history['val_loss'][-1]:.4f}.fnn")
    X, _ = _data()
    np.testing.assert_array_equal(last.predict(X), m.predict(X))
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]   # no temp files


def test_checkpoint_save_best_only_keeps_the_best(tmp_path):
    class Scripted(fnn.Callback):       # fakes val_loss: 3, 1, 2, 0.5
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = [3.0, 1.0, 2.0, 0.5][epoch]
            self.model.flat_params[0] = epoch    # marks the weights of that epoch

    path = tmp_path / "best.fnn"
    ck = fnn.ModelCheckpoint(path, save_best_only=True, verbose=0)
    saved = []

    class Watch(fnn.Callback):
        def on_epoch_end(self, epoch, logs=None):
            saved.append(fnn.load(path).flat_params[0] if path.exists() else None)

    _fit(_model(), [Scripted(), ck, Watch()], epochs=4)
    assert saved == [0, 1, 1, 3] and ck.best == 0.5
    acc = fnn.ModelCheckpoint(path, monitor="val_accuracy", save_best_only=True)
    assert acc.best == -math.inf          # mode auto: max for accuracies
    with pytest.warns(UserWarning, match="Can save best model only with nope available"):
        _fit(_model(), [fnn.ModelCheckpoint(tmp_path / "x.fnn", monitor="nope",
                                            save_best_only=True)], epochs=1)
    assert not (tmp_path / "x.fnn").exists()


def test_checkpoint_weights_only_and_save_freq(tmp_path):
    m = _model()
    ck = fnn.ModelCheckpoint(tmp_path / "w-{epoch}-{batch}.npz", save_weights_only=True,
                             save_freq=3)
    assert ck.wants_batches
    _fit(m, [ck], epochs=1, validation_split=0.0)       # 120 rows / 16 = 8 batches
    assert sorted(os.listdir(tmp_path)) == ["w-1-3.npz", "w-1-6.npz"]
    other = _model(seed=9)
    other.load_weights(tmp_path / "w-1-6.npz")
    assert not np.array_equal(other.flat_params, m.flat_params)   # 2 more steps in m
    with pytest.raises(ValueError, match="save_freq"):
        fnn.ModelCheckpoint("x", save_freq=0)
    with pytest.raises(KeyError, match="no key 'val_acc'"):
        _fit(_model(), [fnn.ModelCheckpoint(str(tmp_path / "{val_acc}"))], epochs=1)


# ------------------------------------------------------------------ CSVLogger
def test_csv_logger_rows_and_append(tmp_path):
    path = tmp_path / "log.csv"
    h, _ = _fit(_model(), [fnn.CSVLogger(path)], epochs=3)
    rows = list(csv.DictReader(open(path)))
    keys = sorted(h.history)
    assert list(rows[0]) == ["epoch"] + keys
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    for k in keys:
        np.testing.assert_allclose([float(r[k]) for r in rows], h.history[k], rtol=1e-12)
    _fit(_model(), [fnn.CSVLogger(path, separator=";", append=True)], epochs=2)
    lines = open(path).read().splitlines()
    assert len(lines) == 1 + 3 + 2 and lines[4].startswith("0;")   # no second header
    _fit(_model(), [fnn.CSVLogger(path)], epochs=1)                 # append=False: anew
    assert len(open(path).read().splitlines()) == 2


# --------------------------------------------------------- ReduceLROnPlateau
def test_reduce_lr_on_plateau_keras_rule():
    seq = iter([1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.8, 0.9, 0.9, 0.9])

    class Scripted(fnn.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(seq)

    cb = ReduceLROnPlateau(factor=0.5, patience=2, cooldown=2, min_lr=0.02)
    spy = _Spy()
    _, opt = _fit(_model(), [Scripted(), cb, spy], epochs=11, lr=0.1)
    lrs = spy.lrs + [opt.lr]
    # Keras's order: the cooldown counter is decremented before the epoch is judged,
    # so cooldown=2 leaves ONE epoch uncounted. val_loss best 0.9 at epoch 1; bad
    # 2, 3 -> 0.05 after epoch 3; epoch 4 in cooldown; bad 5, 6 -> 0.025 after 6;
    # 0.8 best at 7; bad 8, 9 -> max(0.0125, 0.02) = 0.02 after 9; then lr == min_lr.
    want = [0.1] * 4 + [0.05] * 3 + [0.025] * 3 + [0.02] * 2
    np.testing.assert_allclose(lrs, want, rtol=1e-12)
    with pytest.raises(ValueError, match="factor >= 1.0"):
        ReduceLROnPlateau(factor=1.0)
    with pytest.warns(UserWarning, match="conditioned on metric `val_loss`"):
        _fit(_model(), [ReduceLROnPlateau()], epochs=1, validation_split=0.0)
    with pytest.raises(TypeError, match="fastnn.callbacks.ReduceLROnPlateau"):
        fnn.ReduceLROnPlateau(monitor="val_loss", factor=0.5)


# ----------------------------------------------------- LearningRateScheduler
def test_learning_rate_scheduler_sets_lr_at_epoch_begin():
    spy = _Spy()
    h, opt = _fit(_model(), [fnn.LearningRateScheduler(lambda e, lr: 0.1 * 0.5 ** e), spy],
                  epochs=3)
    assert h.history["lr"] == [0.1, 0.05, 0.025] == spy.lrs
    h, _ = _fit(_model(), [fnn.LearningRateScheduler(lambda e: 0.01 * (e + 1))], epochs=2)
    assert h.history["lr"] == [0.01, 0.02]                       # one-argument schedule
    with pytest.raises(ValueError, match="should be a float"):
        _fit(_model(), [fnn.LearningRateScheduler(lambda e, lr: "fast")], epochs=1)


def _bits(step_loop, make_cbs, opt_cls=fnn.Adam):
    m = _model(step_loop)
    opt = opt_cls(m.parameters(), lr=0.02)
    h, _ = _fit(m, make_cbs(), epochs=5, opt=opt)
    return m, h


@pytest.mark.parametrize("which", ["scheduler", "plateau", "checkpoint+csv"])
def test_callbacks_between_c_epochs_equal_the_step_loop(which, tmp_path):
    """Callbacks changing the lr between whole epochs in C: the C optimizer is
    rebound, and the run is bit for bit the step loop's."""
    def cbs():
        if which == "scheduler":
            return [fnn.LearningRateScheduler(lambda e, lr: lr * 0.5)]
        if which == "plateau":
            return [ReduceLROnPlateau(monitor="loss", patience=1, min_delta=10.0, factor=0.3)]
        return [fnn.ModelCheckpoint(tmp_path / "c.fnn"), fnn.CSVLogger(tmp_path / "c.csv")]

    a, ha = _bits(False, cbs)
    b, hb = _bits(True, cbs)
    np.testing.assert_array_equal(a.flat_params, b.flat_params)
    assert ha.history == hb.history
    if which != "checkpoint+csv":
        assert len(set(ha.history["lr"])) >= 4        # the lr really changed
    # ... and the C epoch was used: the step loop forced by a batch hook gives the same
    assert a._epoch_model(a.loss, a.optimizer) is not None


def test_lr_change_rebinds_the_fused_optimizer():
    m = _model()
    X, y = _data()
    opt = fnn.SGD(m.parameters(), lr=0.1)
    loss = fnn.CrossEntropyLoss()
    m.train_step(X, y, loss, opt)
    bound = m._bound
    opt.lr = 0.0
    p = m.flat_params.copy()
    m.train_step(X, y, loss, opt)
    assert m._bound is not bound
    np.testing.assert_array_equal(m.flat_params, p)     # lr 0: the new lr was used


# -------------------------------------------------------------- TerminateOnNaN
def test_terminate_on_nan_stops_and_other_callbacks_still_end():
    X, y = _data()
    X[70:] *= 1e30
    m = _model()
    t = fnn.TerminateOnNaN()
    path_rows = []

    class Count(fnn.Callback):
        def on_train_end(self, logs=None):
            path_rows.append("end")

    with pytest.warns(RuntimeWarning, match="TerminateOnNaN"):
        m.fit(X, y, loss="cross_entropy", optimizer=fnn.SGD(m.parameters(), lr=10.0),
              epochs=5, batch_size=16, shuffle=False, verbose=0, callbacks=[t, Count()])
    assert t.stopped_epoch == 0 and t.stopped_step >= 4 and path_rows == ["end"]
