"""Keras-style fit (fastnn/training.py): sample_weight and class_weight in fit,
evaluate and validation data, equal on the three paths (whole epochs in C,
the fused step loop, layer by layer on the C and the NumPy backends); string
and other hashable labels through ``model.classes_`` (saved with the model);
History as Keras's; float64 refused with the reason."""
import pickle

import numpy as np
import pytest

import fastnn as fnn

f32 = np.float32


def _data(n=157, d=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(f32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)
    return X, np.minimum(y, classes - 1), rng.random(n).astype(f32) * 2


def _model(path, out=3, backend=None, seed=4, dropout=0.0):
    layers = [fnn.Linear(6, 12), fnn.Tanh()]
    if dropout:
        layers.append(fnn.Dropout(dropout))
    model = fnn.Sequential(*layers, fnn.Linear(12, out), seed=seed, backend=backend)
    if path == "step":
        model._epoch_model = lambda *a: None          # fit's step loop, fused steps
    elif path == "layers":
        model.fused = False                           # layer by layer, C kernels
    return model


def _fit(path, loss=None, y=None, out=3, backend=None, epochs=3, **kw):
    X, labels, w = _data()
    model = _model(path, out, backend, dropout=kw.pop("dropout", 0.0))
    opt = fnn.Adam(model.parameters(), lr=0.02)
    h = model.fit(X, labels if y is None else y, loss=loss or fnn.CrossEntropyLoss(),
                  optimizer=opt, epochs=epochs, batch_size=kw.pop("batch_size", 29), seed=1,
                  verbose=0, **kw)
    return model, opt, h


CASES = {
    "sample_weight": lambda X, y, w: {"sample_weight": w},
    "class_weight": lambda X, y, w: {"class_weight": {0: 0.5, 2: 3.0}},
    "both": lambda X, y, w: {"sample_weight": w, "class_weight": {1: 2.0}},
    "validation": lambda X, y, w: {"sample_weight": w,
                                   "validation_data": (X[:40], y[:40], w[:40])},
    "split": lambda X, y, w: {"sample_weight": w, "validation_split": 0.25},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_weighted_fit_equal_on_every_c_path_bitwise(case):
    X, y, w = _data()
    kw = CASES[case](X, y, w)
    runs = [_fit(path, dropout=0.1, **dict(kw)) for path in ("c", "step", "layers")]
    (a, oa, ha) = runs[0]
    for b, ob, hb in runs[1:]:
        np.testing.assert_array_equal(a.flat_params, b.flat_params)
        np.testing.assert_array_equal(oa.state[0]["exp_avg"], ob.state[0]["exp_avg"])
        assert ha.history == hb.history


@pytest.mark.parametrize("loss", ["cross_entropy", "mse", "bce"])
def test_weighted_fit_on_the_numpy_backend_matches_c(loss):
    X, labels, w = _data()
    y, out, lf = labels, 3, fnn.CrossEntropyLoss
    if loss == "mse":
        y, lf = np.stack([X[:, 0], X[:, 1] * X[:, 2]], 1), fnn.MSELoss
        out = 2
    elif loss == "bce":
        y, out, lf = (labels > 0).astype(f32), 1, fnn.BCEWithLogitsLoss
    kw = {"sample_weight": w}
    if loss != "mse":
        kw["class_weight"] = {0: 2.0, 1: 0.5}
    a, _, ha = _fit("c", lf(), y, out, **kw)
    b, _, hb = _fit("layers", lf(), y, out, backend="numpy", **kw)
    np.testing.assert_allclose(a.flat_params, b.flat_params, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-4)


def test_keras_semantics_sum_wl_over_batch_rows():
    """One full-batch step with weights w equals one step on the plain loss scaled
    by the weights: loss = sum(w l) / N, so w = 2 everywhere doubles the gradient
    (SGD: the step) and w = k copies of a row equals k rows (a denominator of N,
    not sum w: Keras, not a weighted mean)."""
    X, y, _ = _data(n=20)
    ref, _, _ = _fit("c", epochs=0)

    def one_step(w=None, X=X, y=y):
        m = _model("c")
        opt = fnn.SGD(m.parameters(), lr=0.1)
        m.fit(X, y, loss=fnn.CrossEntropyLoss(), optimizer=opt, epochs=1,
              batch_size=len(X), shuffle=False, verbose=0, sample_weight=w)
        return m.flat_params - ref.flat_params

    d1, d2 = one_step(), one_step(np.full(20, 2.0))
    np.testing.assert_allclose(d2, 2 * d1, rtol=1e-5, atol=1e-7)
    k = np.array([1, 2, 0, 3] * 5)
    dk = one_step(k)
    # k copies: sum over the 30 repeated rows / 30 == (sum k l) / 20 * (20 / 30)
    dr = one_step(None, np.repeat(X, k, axis=0), np.repeat(y, k))
    np.testing.assert_allclose(dk * 20 / 30, dr, rtol=1e-4, atol=1e-6)


def test_class_weight_equals_the_same_sample_weight():
    X, y, w = _data()
    cw = {0: 0.25, 1: 1.0, 2: 4.0}
    a, _, ha = _fit("c", sample_weight=w, class_weight=cw)
    b, _, hb = _fit("c", sample_weight=w * np.array([0.25, 1.0, 4.0], f32)[y])
    np.testing.assert_array_equal(a.flat_params, b.flat_params)
    assert ha.history == hb.history


def test_evaluate_with_sample_weight():
    X, y, w = _data()
    model, _, _ = _fit("c")
    plain = model.evaluate(X, y)
    ones = model.evaluate(X, y, sample_weight=np.ones(len(X)))
    assert ones["loss"] == pytest.approx(plain["loss"], rel=1e-6)
    got = model.evaluate(X, y, sample_weight=w)
    logits = model.predict(X).astype(np.float64)
    lse = np.log(np.exp(logits).sum(1))
    rows = lse - logits[np.arange(len(y)), y]
    assert got["loss"] == pytest.approx((w * rows).sum() / len(X), rel=1e-5)
    assert got["accuracy"] == plain["accuracy"]           # unweighted, as Keras's metrics
    # the validation loss of fit is evaluate's
    m, _, h = _fit("c", validation_data=(X, y, w), epochs=1)
    assert h.history["val_loss"][0] == pytest.approx(m.evaluate(X, y, sample_weight=w)["loss"])


def test_bad_weights_raise_clearly():
    X, y, w = _data()
    model = _model("c")
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(157,\)"):
        model.fit(X, y, loss="cross_entropy", sample_weight=w[:5], verbose=0)
    bad = w.copy()
    bad[7] = -1
    with pytest.raises(ValueError, match=r"sample_weight\[7\] is -1"):
        model.fit(X, y, loss="cross_entropy", sample_weight=bad, verbose=0)
    bad[7] = np.nan
    with pytest.raises(ValueError, match=r"sample_weight\[7\] is nan"):
        model.evaluate(X, y, loss="cross_entropy", sample_weight=bad)
    with pytest.raises(ValueError, match="class_weight needs a classification loss"):
        model.fit(X, np.zeros((157, 3)), loss="mse", class_weight={0: 1.0}, verbose=0)
    with pytest.raises(ValueError, match=r"class_weight\[1\] must be a finite number >= 0"):
        model.fit(X, y, loss="cross_entropy", class_weight={1: -2.0}, verbose=0)
    with pytest.raises(TypeError, match="class_weight must be a dict"):
        model.fit(X, y, loss="cross_entropy", class_weight=[1.0, 2.0], verbose=0)
    with pytest.raises(ValueError, match="validation_data must be a tuple"):
        model.fit(X, y, loss="cross_entropy", validation_data=(X, y, w, w), verbose=0)
    with pytest.raises(ValueError, match=r"sample_weight_val must have shape \(157,\)"):
        model.fit(X, y, loss="cross_entropy", validation_data=(X, y, w[:3]), verbose=0)


def test_train_step_sample_weight_matches_fit():
    X, y, w = _data(n=29)
    a, b = _model("c"), _model("layers")
    for m in (a, b):
        opt = fnn.Adam(m.parameters(), lr=0.01)
        for _ in range(3):
            m.train_step(X, y, fnn.CrossEntropyLoss(), opt, sample_weight=w)
    np.testing.assert_array_equal(a.flat_params, b.flat_params)


# ------------------------------------------------------------------ labels
NAMES = np.array(["cat", "dog", "emu"])


@pytest.mark.parametrize("path", ["c", "step", "layers"])
def test_string_labels_train_like_their_indices(path):
    X, y, w = _data()
    a, _, ha = _fit(path, y=NAMES[y], class_weight={"emu": 3.0}, sample_weight=w)
    b, _, hb = _fit(path, y=y, class_weight={2: 3.0}, sample_weight=w)
    np.testing.assert_array_equal(a.flat_params, b.flat_params)
    assert ha.history == hb.history
    assert list(a.classes_) == ["cat", "dog", "emu"] and b.classes_ is None
    pred = a.predict_classes(X)
    assert pred.dtype.kind == "U" and set(pred) <= set(NAMES)
    np.testing.assert_array_equal(pred, NAMES[b.predict_classes(X)])
    assert a.evaluate(X, NAMES[y]) == b.evaluate(X, y)
    assert a.evaluate(X, list(NAMES[y])) == b.evaluate(X, y)


def test_hashable_labels_unsortable_keep_first_appearance():
    X, y, _ = _data()
    labels = [("t", 1), 7, None]          # mixed types: not sortable
    yo = [labels[k] for k in y]
    m, _, _ = _fit("c", y=yo)
    order = list(dict.fromkeys(yo))
    assert list(m.classes_) == order
    b, _, _ = _fit("c", y=np.array([order.index(v) for v in yo]))
    np.testing.assert_array_equal(m.flat_params, b.flat_params)
    assert m.predict_classes(X[:5]).tolist() == [order[k] for k in b.predict_classes(X[:5])]


def test_label_encoder_errors_and_refit():
    X, y, _ = _data()
    m, _, _ = _fit("c", y=NAMES[y])
    with pytest.raises(ValueError, match=r"labels not seen in fit: \['owl'\]"):
        m.evaluate(X[:3], ["cat", "owl", "dog"])
    with pytest.raises(ValueError, match="not a class"):
        m.fit(X, NAMES[y], loss="cross_entropy", class_weight={"owl": 2.0}, verbose=0)
    with pytest.raises(ValueError, match="4 classes but the model has 3 outputs"):
        m.fit(X[:4], ["a", "b", "c", "d"], loss="cross_entropy", verbose=0)
    with pytest.raises(TypeError, match="need a model fitted on such labels"):
        _model("c").evaluate(X[:2], ["a", "b"], loss="cross_entropy")
    m.fit(X, y, loss="cross_entropy", epochs=1, verbose=0)     # numbers again: no encoder
    assert m.classes_ is None


def test_classes_survive_save_load_and_pickle(tmp_path):
    X, y, _ = _data()
    m, _, _ = _fit("c", y=NAMES[y])
    m.save(tmp_path / "m.fnn")
    for back in (fnn.load(tmp_path / "m.fnn"), pickle.loads(pickle.dumps(m))):
        np.testing.assert_array_equal(back.classes_, m.classes_)
        np.testing.assert_array_equal(back.predict_classes(X), m.predict_classes(X))
    mixed, _, _ = _fit("c", y=[(1, "b", 2.5)[k] for k in y])
    mixed.save(tmp_path / "mixed.fnn")
    back = fnn.load(tmp_path / "mixed.fnn")
    assert back.classes_.tolist() == mixed.classes_.tolist()
    assert [type(c) for c in back.classes_] == [type(c) for c in mixed.classes_]
    odd, _, _ = _fit("c", y=[((1, 2), (3, 4), (5, 6))[k] for k in y])
    with pytest.raises(TypeError, match="cannot save class label"):
        odd.save(tmp_path / "odd.fnn")
    assert not (tmp_path / "odd.fnn").exists()


def test_predict_classes_one_output():
    X, y, _ = _data()
    m, _, _ = _fit("c", fnn.BCEWithLogitsLoss(), (y > 0).astype(f32), 1)
    np.testing.assert_array_equal(m.predict_classes(X), (m.predict(X)[:, 0] > 0).astype(int))


# ----------------------------------------------------------------- History
def test_history_as_keras():
    X, y, _ = _data()
    m, _, h = _fit("c", validation_split=0.2, epochs=4, batch_size=16)
    assert h.epoch == [0, 1, 2, 3]
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert all(len(v) == 4 for v in h.history.values())
    assert h.params == {"verbose": 0, "epochs": 4, "steps": -(-125 // 16)}
    assert m.history is h


# ----------------------------------------------------------------- float64
def test_float64_models_are_refused_with_the_reason():
    with pytest.raises(NotImplementedError, match="float32 only.*C kernel"):
        fnn.Sequential(fnn.Linear(2, 3), dtype="float64")
    with pytest.raises(NotImplementedError, match="float32 only"):
        fnn.Sequential(fnn.Linear(2, 3), dtype=np.float64)
    with pytest.raises(NotImplementedError, match="float32 only"):
        fnn.Sequential(fnn.Linear(2, 3)).double()
    with pytest.raises(NotImplementedError, match="Linear.double"):
        fnn.Linear(2, 3).double()
    with pytest.raises(TypeError, match="dtype must be float32"):
        fnn.Sequential(fnn.Linear(2, 3), dtype="int32")
    m = fnn.Sequential(fnn.Linear(2, 3), dtype="float32")
    assert m.float() is m and m.to(np.float32) is m
