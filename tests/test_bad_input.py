"""Every bad input at the public API: exception type, message, nothing changed."""
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
    with pytest.raises(RuntimeError, match="inside a Sequential"):
        fnn.Linear(2, 2)(np.ones((1, 2), np.float32))
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
