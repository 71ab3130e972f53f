"""Every bad input at the public API: exception type, message, nothing changed."""
import os

import numpy as np
import pytest

import fastnn as fnn


@pytest.fixture
def model():
    return fnn.Sequential(fnn.Linear(64, 128), fnn.ReLU(), fnn.Linear(128, 10), seed=0)


def X(n=100, d=64):
    return np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)


def y(n=100):
    return np.arange(n) % 10


def fit(model, Xa, ya, **kw):
    kw.setdefault("loss", "cross_entropy")
    kw.setdefault("epochs", 1)
    return model.fit(Xa, ya, verbose=0, **kw)


@pytest.mark.parametrize("call", ["fit", "predict", "evaluate", "forward"])
def test_one_dimensional_X(model, call):
    before = model.flat_params.copy()
    with pytest.raises(ValueError, match=r"expected 2-D \(batch, features\), got shape \(64,\)"):
        if call == "fit":
            fit(model, np.ones(64), [1])
        elif call == "evaluate":
            model.evaluate(np.ones(64), [1], loss="cross_entropy")
        else:
            getattr(model, call)(np.ones(64))
    np.testing.assert_array_equal(model.flat_params, before)


@pytest.mark.parametrize("call", ["fit", "predict", "forward", "train_step"])
def test_wrong_feature_count(model, call):
    before = model.flat_params.copy()
    with pytest.raises(ValueError, match="Linear\\(64→128\\) expects 64 features, got 63"):
        if call == "fit":
            fit(model, X(d=63), y())
        elif call == "train_step":
            model.train_step(X(d=63), y(), fnn.CrossEntropyLoss(), fnn.SGD(model.parameters()))
        else:
            getattr(model, call)(X(d=63))
    np.testing.assert_array_equal(model.flat_params, before)


def test_length_mismatch(model):
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples: \[100, 99\]"):
        fit(model, X(100), y(99))


@pytest.mark.parametrize("bad, what", [(np.nan, "NaN"), (np.inf, "infinity"), (1e300, "infinity")])
def test_nan_inf_in_X(model, bad, what):
    Xb = X().astype(np.float64)
    Xb[3, 5] = bad
    for call in (lambda: fit(model, Xb, y()), lambda: model.predict(Xb),
                 lambda: model.evaluate(Xb, y(), loss="cross_entropy")):
        with pytest.raises(ValueError, match=f"Input X contains {what}"):
            call()


def test_nan_in_y():
    model = fnn.Sequential(fnn.Linear(64, 1))
    yb = np.zeros(100)
    yb[7] = np.nan
    with pytest.raises(ValueError, match="Input y contains NaN"):
        fit(model, X(), yb, loss="mse")


def test_nan_in_validation_data(model):
    Xv = X(10)
    Xv[0, 0] = np.nan
    with pytest.raises(ValueError, match="Input X_val contains NaN"):
        fit(model, X(), y(), validation_data=(Xv, y(10)))


@pytest.mark.parametrize("shape, fragment", [((0, 64), "0 sample"), ((5, 0), "0 feature")])
def test_empty(model, shape, fragment):
    with pytest.raises(ValueError, match=fragment):
        model.predict(np.zeros(shape))
    with pytest.raises(ValueError, match=fragment):
        fit(model, np.zeros(shape), np.zeros(shape[0]))


@pytest.mark.parametrize("bad", [np.ones((4, 64), complex), np.full((4, 64), "a"),
                                 np.empty((4, 64), object)])
def test_non_real_X_is_type_error(model, bad):
    with pytest.raises(TypeError, match="real numbers"):
        model.predict(bad)


def test_int_and_float64_X_are_converted(model):
    a = model.predict(np.ones((3, 64), dtype=np.int64))
    b = model.predict(np.ones((3, 64), dtype=np.float64).tolist())
    np.testing.assert_array_equal(a, b)


def test_label_out_of_range_names_label_and_classes(model):
    before = model.flat_params.copy()
    labels = y()
    labels[4] = 10
    with pytest.raises(IndexError, match="10.*10 classes"):
        fit(model, X(), labels)
    labels[4] = -3
    with pytest.raises(IndexError, match="-3"):
        fit(model, X(), labels)
    np.testing.assert_array_equal(model.flat_params, before)


def test_ignore_index_is_accepted(model):
    labels = y()
    labels[::3] = -100
    fit(model, X(), labels)


def test_non_integer_labels(model):
    labels = y().astype(float)
    assert fit(model, X(), labels).history["loss"]    # 3.0 is fine
    labels[2] = 1.5
    with pytest.raises(ValueError, match="labels must be integers, got 1.5"):
        fit(model, X(), labels)
    with pytest.raises(TypeError, match="labels must be integers"):
        fnn.CrossEntropyLoss()(np.zeros((2, 3), np.float32), ["a", "b"])


def test_regression_target_shape():
    loss = fnn.MSELoss()
    pred = np.zeros((8, 1), np.float32)
    assert loss(pred, np.ones(8)) == 1.0                       # (N,) for one output: reshaped
    with pytest.raises(ValueError, match=r"target shape \(8, 2\) does not match"):
        loss(pred, np.ones((8, 2)))
    with pytest.raises(ValueError, match="does not match"):
        fnn.MSELoss()(np.zeros((8, 2), np.float32), np.ones(8))   # never broadcast


@pytest.mark.parametrize("kw, fragment", [
    (dict(batch_size=0), "batch_size must be >= 1"),
    (dict(batch_size=2.5), "batch_size must be an integer"),
    (dict(epochs=-1), "epochs must be >= 0"),
    (dict(validation_split=1.5), "validation_split"),
    (dict(loss="nope"), "valid names: mse"),
    (dict(optimizer="nope"), "valid names: sgd"),
])
def test_bad_fit_arguments(model, kw, fragment):
    with pytest.raises(ValueError, match=fragment):
        fit(model, X(), y(), **kw)


@pytest.mark.parametrize("make", [
    lambda p: fnn.SGD(p, lr=float("nan")), lambda p: fnn.SGD(p, lr=-1),
    lambda p: fnn.Adam(p, lr=float("inf")), lambda p: fnn.Adam(p, betas=(1.0, 0.9)),
    lambda p: fnn.Adam(p, eps=0), lambda p: fnn.SGD(p, momentum=-0.1),
    lambda p: fnn.SGD(p, momentum=0.0, nesterov=True), lambda p: fnn.RMSprop(p, alpha=-1),
    lambda p: fnn.Adagrad(p, lr_decay=-1), lambda p: fnn.AdamW(p, weight_decay=float("nan")),
])
def test_bad_optimizer_hyperparameters(model, make):
    with pytest.raises(ValueError, match="Invalid|Nesterov"):
        make(model.parameters())


def test_nan_lr_message(model):
    with pytest.raises(ValueError, match="Invalid learning rate: nan"):
        fnn.Adam(model.parameters(), lr=float("nan"))


def test_optimizer_of_another_model(model):
    other = fnn.Sequential(fnn.Linear(64, 128), fnn.ReLU(), fnn.Linear(128, 10))
    with pytest.raises(ValueError, match="another model"):
        fit(model, X(), y(), optimizer=fnn.Adam(other.parameters()))
    with pytest.raises(ValueError, match="empty parameter list"):
        fnn.SGD([])
    with pytest.raises(TypeError, match="Parameters"):
        fnn.SGD([np.zeros(3)])


def test_layer_sizes_must_chain():
    with pytest.raises(ValueError, match="layer 2 Linear\\(64→10\\) expects 64 inputs but the "
                                         "previous layer outputs 128"):
        fnn.Sequential(fnn.Linear(32, 128), fnn.ReLU(), fnn.Linear(64, 10))


def test_bad_layers():
    with pytest.raises(ValueError, match="positive integer"):
        fnn.Linear(0, 3)
    with pytest.raises(ValueError, match="init"):
        fnn.Linear(2, 3, init="magic")
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        fnn.Dropout(1.0)
    with pytest.raises(ValueError, match="at least one layer"):
        fnn.Sequential()
    lin = fnn.Linear(2, 2)
    fnn.Sequential(lin)
    with pytest.raises(ValueError, match="already belongs"):
        fnn.Sequential(lin)
    with pytest.raises(ValueError, match="expects 2 features, got 3"):
        fnn.Linear(2, 2, seed=0)(np.ones((1, 3), np.float32))   # a standalone layer checks too
    with pytest.raises(ValueError, match="reduction"):
        fnn.MSELoss(reduction="sum")
    with pytest.raises(ValueError, match="valid backends"):
        fnn.Sequential(fnn.Linear(2, 2), backend="gpu")


@pytest.mark.parametrize("n", [0, 1.5, "2", True])
def test_set_num_threads_rejects(n):
    with pytest.raises(ValueError):
        fnn.set_num_threads(n)


def test_set_num_threads_conventions(c):
    old = fnn.get_num_threads()
    try:
        fnn.set_num_threads(1)
        assert fnn.get_num_threads() == 1
        fnn.set_num_threads(-1)
        assert fnn.get_num_threads() == fnn.threads._cpu_count()
        fnn.set_num_threads(None)
    finally:
        fnn.set_num_threads(old)


def test_loss_backward_before_call():
    with pytest.raises(RuntimeError, match="before backward"):
        fnn.MSELoss().backward()


# ------------------------------------------------------------------------------------
# Issue 5 audit: every remaining public entry point (type, message, nothing changed)
# ------------------------------------------------------------------------------------
import fastnn._core as core  # noqa: E402

f32 = np.float32


def _ro(a):
    a.setflags(write=False)
    return a


@pytest.mark.parametrize("make, exc, fragment", [
    (lambda: fnn.LeakyReLU(float("nan")), ValueError, "negative_slope must be a finite"),
    (lambda: fnn.LeakyReLU("a"), ValueError, "negative_slope"),
    (lambda: fnn.Dropout("0.5"), ValueError, r"\[0, 1\)"),
    (lambda: fnn.Dropout(float("nan")), ValueError, r"\[0, 1\)"),
    (lambda: fnn.Linear(2.5, 3), ValueError, "in_features must be a positive integer"),
    (lambda: fnn.Linear(3, True), ValueError, "out_features must be a positive integer"),
    (lambda: fnn.Sequential(fnn.Linear(2, 2), seed="x"), ValueError, "seed must be"),
    (lambda: fnn.Sequential(fnn.Linear(2, 2), seed=-1), ValueError, "seed must be"),
    (lambda: fnn.Sequential(fnn.Linear(2, 2), seed=2**64), ValueError, r"\[0, 2\*\*64\)"),
    (lambda: fnn.Sequential(fnn.Linear(2, 2), "relu"), TypeError, "layer 1 must be a fastnn"),
    (lambda: fnn.Sequential(fnn.ReLU), TypeError, "layer 0 must be a fastnn"),
    (lambda: fnn.HuberLoss(delta=float("nan")), ValueError, "delta must be > 0"),
    (lambda: fnn.CrossEntropyLoss(weight=[1, -2, 1]), ValueError, "weight must be finite"),
    (lambda: fnn.CrossEntropyLoss(weight=[1, np.nan]), ValueError, "weight must be finite"),
    (lambda: fnn.BCEWithLogitsLoss(pos_weight=[-1.0]), ValueError, "pos_weight must be"),
    (lambda: fnn.CrossEntropyLoss(reduction="none"), ValueError, "reduction='mean'"),
])
def test_bad_constructor_arguments(make, exc, fragment):
    with pytest.raises(exc, match=fragment):
        make()


@pytest.mark.parametrize("make, fragment", [
    (lambda p: fnn.SGD(p, lr="a"), "Invalid learning rate: 'a'"),
    (lambda p: fnn.SGD(p, lr=None), "Invalid learning rate: None"),
    (lambda p: fnn.Adam(p, betas=(0.9,)), "Invalid betas"),
    (lambda p: fnn.Adam(p, betas=0.9), "Invalid betas"),
    (lambda p: fnn.Adam(p, eps=float("nan")), "Invalid epsilon"),
    (lambda p: fnn.RMSprop(p, momentum=1.5), "Invalid momentum"),
    (lambda p: fnn.SGD(p, momentum=0.5, dampening=float("nan")), "Invalid dampening"),
    (lambda p: setattr(fnn.SGD(p), "lr", float("nan")), "Invalid learning rate: nan"),
    (lambda p: setattr(fnn.SGD(p), "lr", -1.0), "Invalid learning rate: -1"),
    (lambda p: fnn.Adam(p).load_state_dict({"a": 1}), "not an optimizer state_dict"),
    (lambda p: fnn.Adam(p).load_state_dict([1]), "not an optimizer state_dict"),
])
def test_bad_optimizer_arguments_more(model, make, fragment):
    with pytest.raises(ValueError, match=fragment):
        make(model.parameters())


@pytest.mark.parametrize("kw, exc, fragment", [
    (dict(validation_split="a"), ValueError, "validation_split"),
    (dict(validation_split=float("nan")), ValueError, "validation_split"),
    (dict(validation_data=(X(3), y(3), y(3), y(3))), ValueError, "validation_data must be a tuple"),
    (dict(validation_data=(X(3, 5), y(3))), ValueError, "expects 64 features, got 5"),
    (dict(callbacks=[3]), TypeError, r"callbacks\[0\] must be a fastnn Callback"),
    (dict(callbacks=3), TypeError, r"callbacks\[0\] must be a fastnn Callback"),
    (dict(seed="a"), ValueError, "seed must be an integer"),
    (dict(seed=-1), ValueError, "seed must be >= 0"),
    (dict(epochs=True), ValueError, "epochs must be an integer"),
    (dict(loss=3), ValueError, "unknown loss 3"),
    (dict(optimizer=3), ValueError, "unknown optimizer 3"),
])
def test_bad_fit_arguments_more(model, kw, exc, fragment):
    before = model.flat_params.copy()
    with pytest.raises(exc, match=fragment):
        fit(model, X(), y(), **kw)
    np.testing.assert_array_equal(model.flat_params, before)


@pytest.mark.parametrize("Xb, yb, exc, fragment", [
    (X(), y(99), ValueError, r"inconsistent numbers of samples: \[100, 99\]"),
    (np.full((100, 64), np.nan), y(), ValueError, "Input X contains NaN"),
    (X(), np.full(100, np.inf), ValueError, "Input y contains infinity"),
    (X(), y() + 0.5, ValueError, "labels must be integers, got 0.5"),
    (X(), y() * 1e20, ValueError, "labels must be integers"),        # beyond int64
    (X(), y() + 10, IndexError, "out of bounds for 10 classes"),
    (X(), None, TypeError, "y must hold real numbers"),
    (X(0), y(0), ValueError, "0 sample"),
])
def test_bad_train_step_inputs_change_nothing(model, Xb, yb, exc, fragment):
    opt = fnn.Adam(model.parameters())
    before = model.flat_params.copy()
    with pytest.raises(exc, match=fragment):
        model.train_step(Xb, yb, fnn.CrossEntropyLoss(), opt)
    np.testing.assert_array_equal(model.flat_params, before)
    assert opt.step_count == 0


def test_train_step_loss_and_optimizer_types(model):
    with pytest.raises(TypeError, match="optimizer must be a fastnn Optimizer"):
        model.train_step(X(), y(), fnn.CrossEntropyLoss(), "adam")
    with pytest.raises(ValueError, match="unknown loss"):
        model.train_step(X(), y(), "nope", fnn.SGD(model.parameters()))
    assert model.train_step(X(), y(), "cross_entropy", fnn.SGD(model.parameters())) > 0


@pytest.mark.parametrize("call, exc, fragment", [
    (lambda: fnn.MSELoss()(np.zeros((2, 1), f32), [np.nan, 0]), ValueError,
     "target contains NaN"),
    (lambda: fnn.MSELoss()(np.zeros((2, 1), f32), [np.inf, 0]), ValueError,
     "target contains infinity"),
    (lambda: fnn.MSELoss()(np.zeros((2, 1), f32), ["a", "b"]), TypeError, "real numbers"),
    (lambda: fnn.MSELoss()(np.zeros((0, 1), f32), np.zeros(0)), ValueError, "0 sample"),
    (lambda: fnn.HuberLoss()(np.zeros((2, 2), f32), np.zeros((2, 3))), ValueError,
     "does not match"),
    (lambda: fnn.BCEWithLogitsLoss()(np.zeros((2, 1), f32), [0, 3]), ValueError,
     r"targets must be in \[0, 1\], got 3"),
    (lambda: fnn.BCEWithLogitsLoss()(np.zeros((2, 1), f32), [0, -0.5]), ValueError,
     r"targets must be in \[0, 1\]"),
    (lambda: fnn.CrossEntropyLoss()(np.zeros((2, 3), f32), [0, 1e30]), ValueError,
     "labels must be integers"),
    (lambda: fnn.CrossEntropyLoss()(np.zeros(3, f32), [0]), ValueError, "must be 2-D"),
    (lambda: fnn.CrossEntropyLoss(weight=[1, 2])(np.zeros((2, 3), f32), [0, 1]), ValueError,
     "weight must have 3 elements"),
    (lambda: fnn.BCEWithLogitsLoss(pos_weight=[1, 2, 3])(np.zeros((2, 1), f32), [0, 1]),
     ValueError, "pos_weight must have 1 elements"),
])
def test_bad_loss_inputs(call, exc, fragment):
    with pytest.raises(exc, match=fragment):
        call()


def test_bce_fit_rejects_targets_outside_0_1_before_training():
    m = fnn.Sequential(fnn.Linear(64, 1), seed=0)
    before = m.flat_params.copy()
    with pytest.raises(ValueError, match=r"targets must be in \[0, 1\]"):
        fit(m, X(), np.full(100, 2.0), loss="bce_with_logits")
    np.testing.assert_array_equal(m.flat_params, before)


@pytest.mark.parametrize("call, exc, fragment", [
    (lambda m, d: fnn.save(3, d / "m.fnn"), TypeError, "save expects a fastnn Sequential"),
    (lambda m, d: fnn.save(m, d / "missing" / "m.fnn"), FileNotFoundError,
     "directory .* does not exist"),
    (lambda m, d: fnn.save(m, d), IsADirectoryError, "it is a directory"),
    (lambda m, d: fnn.load(d / "missing.fnn"), FileNotFoundError, "missing.fnn"),
    (lambda m, d: fnn.load(d), IsADirectoryError, "Is a directory"),
])
def test_bad_save_load_arguments(model, tmp_path, call, exc, fragment):
    with pytest.raises(exc, match=fragment):
        call(model, tmp_path)
    assert not [f for f in os.listdir(tmp_path) if "fnn-tmp" in f]


# ---------------------------------------------------------------- the raw bridge
def _model():
    """A C model of Linear(4, 3) (15 parameters) bound to cross-entropy and SGD."""
    m = core.Model((4,), [("linear", {"units": 3, "bias": 1})], 0)
    m.set_loss("cross_entropy")
    m.set_optimizer(*SGD_SPEC)
    return m


# (C name, hyperparameters, state) as the optimizer builds it for a Linear(4, 3)
SGD_SPEC = fnn.SGD(fnn.Sequential(fnn.Linear(4, 3)).parameters(), lr=0.1)._plan_spec()
MODEL = _model()


def _step(x=None, target=None, work=None, steps_done=0, model=None):
    m = MODEL if model is None else model
    return m.train_step(np.ones((2, 4), f32) if x is None else x,
                        np.array([0, 1]) if target is None else target,
                        np.zeros(1000, f32) if work is None else work, steps_done, 0)



BUF = np.zeros(2000, f32)      # one buffer several arguments alias below


@pytest.mark.parametrize("call, exc, fragment", [
    # dtype, type, dimensions, contiguity, strides, writability, aliasing
    (lambda: core.sgemm(False, False, 1.0, np.ones((2, 2)), np.ones((2, 2), f32), 0.0,
                        np.ones((2, 2), f32)), TypeError, "A: expected float32, got float64"),
    (lambda: core.sgemm(False, False, 1.0, [[1.0]], np.ones((1, 1), f32), 0.0,
                        np.ones((1, 1), f32)), TypeError, "list"),
    (lambda: core.sgemm(False, False, 1.0, np.ones((4, 2), f32)[::-1], np.ones((2, 2), f32),
                        0.0, np.ones((4, 2), f32)), ValueError, "unsupported row stride -8"),
    (lambda: core.sgemm(False, False, 1.0, np.broadcast_to(np.ones(2, f32), (4, 2)),
                        np.ones((2, 2), f32), 0.0, np.ones((4, 2), f32)), ValueError,
     "unsupported row stride 0"),
    (lambda: core.sgemm(False, False, 1.0, np.ones(2, f32), np.ones((2, 2), f32), 0.0,
                        np.ones((2, 2), f32)), ValueError, "A must be 2-D"),
    (lambda: core.sgemm(False, False, 1.0, np.ones((2, 2), f32), np.ones((2, 2), f32), 0.0,
                        _ro(np.ones((2, 2), f32))), ValueError, "read-only"),
    (lambda: core.dense_forward(np.ones((2, 3), f32), np.ones((2, 4), np.int32),
                                np.ones((4, 3), f32), None), TypeError, "x: expected float32"),
    (lambda: core.dense_forward(np.ones((2, 2), f32), np.ones((2, 4), f32),
                                np.ones((4, 3), f32), None), ValueError, r"y must have shape"),
    (lambda: core.dense_forward(np.ones((2, 3), f32), np.ones((2, 4), f32),
                                np.ones((4, 3), f32), np.ones(2, f32)), ValueError,
     "b must have 3 elements"),
    (lambda: core.dense_backward(np.ones((2, 4), f32), np.ones((3, 3), f32), None,
                                 np.ones((2, 3), f32), np.ones((2, 4), f32),
                                 np.ones((4, 3), f32)), ValueError, "dw must have shape"),
    (lambda: core.relu_forward(None, np.ones(4, f32)), TypeError, "expected a numpy.ndarray"),
    (lambda: core.sigmoid_forward(np.ones(2, f32), np.ones(4, f32)[::2]), ValueError,
     "C-contiguous"),
    (lambda: core.softmax_forward(np.ones(3, f32), np.ones(3, f32)), ValueError, "2-D"),
    (lambda: core.mse_loss(_ro(np.ones((2, 1), f32)), np.ones((2, 1), f32),
                           np.ones((2, 1), f32)), ValueError, "dpred is read-only"),
    (lambda: core.huber_loss(None, np.ones((2, 1), f32), np.ones((2, 1), f32),
                             float("nan")), ValueError, "delta must be > 0"),
    (lambda: core.cross_entropy_loss(None, np.ones((2, 3), f32), np.zeros(2, np.int32), None,
                                     -100), TypeError, "labels: expected int64, got int32"),
    (lambda: core.cross_entropy_loss(None, np.ones((2, 3), f32), np.array([0, 3]), None,
                                     -100), IndexError, "target 3 is out of bounds"),
    (lambda: core.cross_entropy_loss(None, np.ones((2, 0), f32), np.zeros(2, np.int64), None,
                                     -100), IndexError, "out of bounds for 0 classes"),
    (lambda: core.sgd_update(np.ones(4, f32), None, np.ones(4, f32), 1, float("nan"), 0.0,
                             0.0, 0.0, False), ValueError, "Invalid learning rate: nan"),
    (lambda: core.adam_update(np.ones(4, f32), np.ones(4, f32), np.ones(4, f32),
                              np.ones(4, f32), 1, -0.1, 0.9, 0.999, 1e-8, 0.0, False),
     ValueError, "Invalid learning rate"),
    (lambda: core.rmsprop_update(np.ones(4, f32), np.ones(4, f32), None, np.ones(4, f32), 1,
                                 float("inf"), 0.99, 1e-8, 0.0, 0.0), ValueError,
     "Invalid learning rate: inf"),
    (lambda: core.adagrad_update(np.ones(4, f32), np.ones(4, f32), np.ones(4, f32), 0, 0.1,
                                 0.0, 1e-10, 0.0), ValueError, "step must be >= 1"),
    (lambda: core.adam_update(np.ones(4, f32), np.ones(3, f32), np.ones(4, f32),
                              np.ones(4, f32), 1, 0.1, 0.9, 0.999, 1e-8, 0.0, False),
     ValueError, "m has 3 elements"),
    (lambda: core.dropout_forward(np.ones(4, f32), np.ones(4, f32), float("nan"), 1),
     ValueError, "dropout probability"),
    (lambda: core.set_num_threads(-1), ValueError, "invalid argument"),
    # the generated loss and optimizer kernels: missing state, overlap, argument count
    (lambda: core.sgd_update(np.ones(4, f32), None, np.ones(4, f32), 1, 0.1, 0.9, 0.0, 0.0,
                             False), ValueError, "sgd_update needs the state buffer buf"),
    (lambda: core.adam_update(np.ones(4, f32), None, np.ones(4, f32), np.ones(4, f32), 1,
                              0.1, 0.9, 0.999, 1e-8, 0.0, False), ValueError,
     "adam_update needs the state buffer m"),
    (lambda: core.rmsprop_update(np.ones(4, f32), None, None, np.ones(4, f32), 1, 0.1, 0.99,
                                 1e-8, 0.0, 0.0), ValueError, "needs the state buffer sq"),
    (lambda: core.rmsprop_update(np.ones(4, f32), np.ones(4, f32), None, np.ones(4, f32), 1,
                                 0.1, 0.99, 1e-8, 0.0, 0.9), ValueError,
     "needs the state buffer buf"),
    (lambda: core.adagrad_update(np.ones(4, f32), None, np.ones(4, f32), 1, 0.1, 0.0, 1e-10,
                                 0.0), ValueError, "adagrad_update needs the state buffer sum"),
    (lambda: core.adam_update(np.ones(4, f32), BUF[:4], BUF[2:6], np.ones(4, f32), 1, 0.1,
                              0.9, 0.999, 1e-8, 0.0, False), ValueError,
     "m must not share memory with v"),
    (lambda: core.adam_update(np.ones(4, f32), np.ones(4, f32)), TypeError,
     r"adam_update\(\) takes params, m, v, grads, step"),
    (lambda: core.mse_loss(None, np.ones((2, 1), f32)), TypeError,
     r"mse_loss\(\) takes 3 arguments \(dpred, pred, target\)"),
    # Model: nodes, shapes, attributes, aliasing of the buffers a step writes, hyperparameters
    (lambda: core.Model((4,), [], 0), ValueError, "at least one node"),
    (lambda: core.Model((4,), [("conv", {})], 0), ValueError, "node 0: unknown op 'conv'"),
    (lambda: core.Model((4,), [("relu", {"kernel_size": 3})], 0), ValueError,
     "unknown op attribute 'kernel_size'"),
    (lambda: core.Model((0,), [("relu", {})], 0), ValueError, "invalid input shape"),
    (lambda: core.Model((2, 2, 2, 2), [("relu", {})], 0), ValueError, "1 to 3 dimensions"),
    (lambda: core.Model((3, 4), [("linear", {"units": 2})], 0), ValueError,
     "linear: input must be 1-D per sample"),
    (lambda: core.Model((4,), [("linear", {"units": 0})], 0), ValueError, "units must be >= 1"),
    (lambda: core.Model((2**40,), [("linear", {"units": 2**40})], 0), ValueError, "overflow"),
    (lambda: core.Model((3,), [("dropout", {"p": 1.0})], 0), ValueError,
     r"dropout: p must be in \[0, 1\)"),
    (lambda: core.Model((3,), [("leaky_relu", {"slope": float("inf")})], 0), ValueError,
     "slope must be finite"),
    (lambda: core.Model((3,), [("softmax", {"axis": 0})], 0), ValueError, "only the last axis"),
    (lambda: MODEL.workspace_size(-1), ValueError, "batch size -1 < 0"),
    (lambda: MODEL.forward(np.ones((2, 3), f32), np.ones((2, 4), f32), np.ones(1, f32)),
     ValueError, "workspace has 1 floats"),
    (lambda: MODEL.forward(MODEL.params[:6].reshape(2, 3), np.ones((2, 4), f32),
                           np.ones(100, f32)), ValueError, "out must not share memory with params"),
    (lambda: MODEL.forward(np.ones((2, 3), f32), BUF[:8].reshape(2, 4), BUF), ValueError,
     "work must not share memory with x"),
    (lambda: MODEL.forward(np.ones((2, 5), f32), np.ones((2, 4), f32), np.ones(100, f32)),
     ValueError, r"out must have shape \(2, 3\)"),
    (lambda: MODEL.forward(np.ones((2, 3), f32), np.ones((2, 5), f32), np.ones(100, f32)),
     ValueError, r"x must have shape \(n, 4\)"),
    (lambda: _step(x=MODEL.grads[:8].reshape(2, 4)), ValueError,
     "grads must not share memory with x"),
    (lambda: _step(x=BUF[:8].reshape(2, 4), work=BUF), ValueError,
     "work must not share memory with x"),
    (lambda: _step(work=MODEL.params), ValueError, "params must not share memory with work"),
    (lambda: _step(target=np.array([0, 7])), IndexError,
     "target 7 is out of bounds for 3 classes"),
    (lambda: _step(steps_done=-1), ValueError, "step must be >= 1"),
    (lambda: _step(work=np.zeros(3, f32)), ValueError, "workspace has 3 floats"),
    (lambda: MODEL.set_optimizer("sgd", dict(SGD_SPEC[1], lr=float("nan"))), ValueError,
     "Invalid learning rate: nan"),
    (lambda: MODEL.set_optimizer("lbfgs", SGD_SPEC[1]), ValueError, "unknown optimizer 'lbfgs'"),
    (lambda: MODEL.set_optimizer("adam", SGD_SPEC[1], (np.zeros(15, f32),) * 3), ValueError,
     "at most 2 state buffers"),
    (lambda: MODEL.set_optimizer("adam", SGD_SPEC[1], (np.zeros(14, f32),)), ValueError,
     "state0 must have 15 elements"),
    (lambda: MODEL.set_loss("hinge"), ValueError, "unknown loss 'hinge'"),
    (lambda: MODEL.set_loss("mse", weight=np.ones(3, f32)), ValueError, "takes no weight"),
    (lambda: MODEL.set_loss("cross_entropy", weight=np.ones(4, f32)), ValueError,
     "weight must have 3 elements"),
    (lambda: _step(target=np.array([0])), ValueError, r"labels must have shape \(2,\)"),
    (lambda: _step(x=np.ones((2, 5), f32)), ValueError, r"x must have shape \(n, 4\)"),
    (lambda: _step(model=core.Model((4,), [("relu", {})], 0), target=np.ones((2, 4), f32)),
     ValueError,
     "no loss: call fnn_model_set_loss first"),
])
def test_bridge_rejects_bad_arguments(call, exc, fragment):
    BUF[...] = 0.5
    before = MODEL.params.copy()
    with pytest.raises(exc, match=fragment):
        call()
    assert np.all(BUF == 0.5)          # nothing was written before the error
    np.testing.assert_array_equal(MODEL.params, before)
    MODEL.set_loss("cross_entropy")     # rebind what a failed call may have replaced
    MODEL.set_optimizer(*SGD_SPEC)
