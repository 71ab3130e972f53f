"""Learning end to end: the fit loop, callbacks, optimizers, determinism."""
import numpy as np
import pytest

import fastnn as fnn
from fastnn.datasets import load_digits, make_moons, make_regression_curve, make_spirals, make_xor


def test_xor_to_full_training_accuracy(backend_name):
    X, y = make_xor()
    model = fnn.Sequential(fnn.Linear(2, 8), fnn.Tanh(), fnn.Linear(8, 2), seed=0,
                           backend=backend_name)
    opt = fnn.Adam(model.parameters(), lr=0.05)
    model.fit(X, y, loss=fnn.CrossEntropyLoss(), optimizer=opt, epochs=200, batch_size=4,
              verbose=0)
    assert model.evaluate(X, y)["accuracy"] == 1.0


def test_moons_to_full_training_accuracy(backend_name):
    X, y = make_moons(200, noise=0.05, seed=0)
    model = fnn.Sequential(fnn.Linear(2, 32), fnn.ReLU(), fnn.Linear(32, 32), fnn.ReLU(),
                           fnn.Linear(32, 2), seed=0, backend=backend_name)
    model.fit(X, y, loss="cross_entropy", optimizer=fnn.Adam(model.parameters(), lr=0.01),
              epochs=150, batch_size=32, verbose=0)
    assert model.evaluate(X, y)["accuracy"] == 1.0


def test_moons_binary_with_bce():
    X, y = make_moons(200, noise=0.05, seed=1)
    model = fnn.Sequential(fnn.Linear(2, 32), fnn.Tanh(), fnn.Linear(32, 1), seed=0)
    h = model.fit(X, y, loss=fnn.BCEWithLogitsLoss(), optimizer=fnn.Adam(model.parameters(),
                  lr=0.02), epochs=150, verbose=0)
    assert h.history["accuracy"][-1] >= 0.99
    assert model.predict_proba(X).shape == (200, 1)


def test_spirals_learnable():
    X, y = make_spirals(300, 3, noise=0.05, seed=0)
    model = fnn.Sequential(fnn.Linear(2, 64), fnn.ReLU(), fnn.Linear(64, 64), fnn.ReLU(),
                           fnn.Linear(64, 3), seed=0)
    model.fit(X, y, loss="cross_entropy", optimizer=fnn.Adam(model.parameters(), lr=0.01),
              epochs=150, verbose=0)
    assert model.evaluate(X, y)["accuracy"] >= 0.97


def test_digits_test_accuracy():
    X, y = load_digits()
    X_tr, X_te, y_tr, y_te = fnn.train_test_split(X, y, seed=0, stratify=True)
    model = fnn.Sequential(fnn.Linear(64, 128), fnn.ReLU(), fnn.Linear(128, 64), fnn.ReLU(),
                           fnn.Linear(64, 10), seed=0)
    model.fit(X_tr, y_tr, loss=fnn.CrossEntropyLoss(), optimizer=fnn.Adam(model.parameters()),
              epochs=30, batch_size=32, verbose=0)
    assert model.evaluate(X_te, y_te)["accuracy"] >= 0.95


def test_regression_curve_low_mse(backend_name):
    """The curve is fitted to MSE < 0.01 in 200 epochs: judged on the median
    of 5 seeds, since single initialisations land either side (0.003-0.012)."""
    X, y = make_regression_curve(256, noise=0.05, seed=0)
    finals, models = [], []
    for seed in range(5):
        model = fnn.Sequential(fnn.Linear(1, 32), fnn.Tanh(), fnn.Linear(32, 32), fnn.Tanh(),
                               fnn.Linear(32, 1), seed=seed, backend=backend_name)
        h = model.fit(X, y, loss=fnn.MSELoss(), optimizer=fnn.Adam(model.parameters(), lr=0.01),
                      epochs=200, batch_size=32, verbose=0)
        finals.append(h.history["loss"][-1])
        models.append(model)
    assert np.median(finals) < 0.01
    model = models[int(np.argsort(finals)[2])]   # the median model
    assert model.evaluate(X, y.ravel())["loss"] < 0.01        # (N,) targets accepted
    assert "accuracy" not in h.history


def test_loss_falls_and_history_keys():
    X, y = load_digits()
    model = fnn.Sequential(fnn.Linear(64, 32), fnn.ReLU(), fnn.Linear(32, 10))
    h = model.fit(X[:1000], y[:1000], loss="cross_entropy", epochs=5, verbose=0,
                  validation_data=(X[1000:], y[1000:]))
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert h.epoch == [0, 1, 2, 3, 4]
    losses = h.history["loss"]
    assert all(b < a for a, b in zip(losses, losses[1:]))
    assert h.history["val_loss"][-1] < h.history["val_loss"][0]


def test_validation_split_takes_the_end():
    X, y = make_moons(100, seed=0)
    model = fnn.Sequential(fnn.Linear(2, 4), fnn.ReLU(), fnn.Linear(4, 2))
    h = model.fit(X, y, loss="cross_entropy", epochs=2, validation_split=0.2, verbose=0)
    assert len(h.history["val_loss"]) == 2
    ref = model.evaluate(X[80:], y[80:])
    assert h.history["val_loss"][-1] == pytest.approx(ref["loss"], rel=1e-6)


def test_early_stopping_stops_and_restores():
    X, y = make_moons(200, noise=0.3, seed=0)
    model = fnn.Sequential(fnn.Linear(2, 64), fnn.ReLU(), fnn.Linear(64, 2), seed=0)
    stop = fnn.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    opt = fnn.SGD(model.parameters(), lr=2.0)   # noisy: validation loss goes up and down
    h = model.fit(X[:100], y[:100], loss="cross_entropy", optimizer=opt, epochs=300,
                  validation_data=(X[100:], y[100:]), callbacks=[stop], verbose=0)
    assert stop.stopped_epoch is not None and len(h.epoch) < 300
    assert len(h.epoch) == stop.best_epoch + 1 + 2
    assert model.evaluate(X[100:], y[100:])["loss"] == pytest.approx(stop.best, rel=1e-5)


def test_early_stopping_without_validation_data_says_so():
    X, y = make_xor()
    model = fnn.Sequential(fnn.Linear(2, 2))
    with pytest.raises(ValueError, match="val_loss"):
        model.fit(X, y, loss="cross_entropy", epochs=2, callbacks=[fnn.EarlyStopping()],
                  verbose=0)


def test_custom_callback_and_stop_training():
    seen = []

    class Stopper(fnn.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((epoch, sorted(logs)))
            if epoch == 2:
                self.model.stop_training = True

    X, y = make_xor()
    model = fnn.Sequential(fnn.Linear(2, 2))
    h = model.fit(X, y, loss="cross_entropy", epochs=10, callbacks=[Stopper()], verbose=0)
    assert [e for e, _ in seen] == [0, 1, 2] and len(h.epoch) == 3
    assert seen[0][1] == ["accuracy", "loss", "lr"]


def test_progress_line(capsys):
    X, y = make_xor()
    model = fnn.Sequential(fnn.Linear(2, 2))
    model.fit(X, y, loss="cross_entropy", epochs=2, verbose=1)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("Epoch 2/2") and "loss:" in lines[1]
    model.fit(X, y, loss="cross_entropy", epochs=2, verbose=0)
    assert capsys.readouterr().out == ""


def _train(seed, backend="c", shuffle_seed=None, dropout=0.2):
    X, y = make_moons(128, noise=0.2, seed=0)
    model = fnn.Sequential(fnn.Linear(2, 16), fnn.ReLU(), fnn.Dropout(dropout),
                           fnn.Linear(16, 2), seed=seed, backend=backend)
    model.fit(X, y, loss="cross_entropy", optimizer=fnn.Adam(model.parameters(), lr=0.01),
              epochs=5, batch_size=16, seed=shuffle_seed, verbose=0)
    return model.flat_params.copy()


def test_same_seed_same_weights_bitwise(backend_name):
    a, b = _train(7, backend_name), _train(7, backend_name)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, _train(8, backend_name))
    np.testing.assert_array_equal(_train(7, backend_name, 3), _train(7, backend_name, 3))


def test_c_and_numpy_train_alike(c, ref):
    np.testing.assert_allclose(_train(1, "c"), _train(1, "numpy"), rtol=1e-3, atol=1e-3)


def test_divergence_raises_naming_epoch_and_step():
    X, y = make_regression_curve(64, seed=0)
    model = fnn.Sequential(fnn.Linear(1, 16), fnn.ReLU(), fnn.Linear(16, 1))
    with pytest.raises(FloatingPointError, match=r"epoch \d+, step \d+"):
        model.fit(X, y * 1e3, loss="mse", optimizer=fnn.SGD(model.parameters(), lr=1e6),
                  epochs=50, verbose=0)


@pytest.mark.parametrize("make_opt", [
    lambda p: fnn.SGD(p, lr=0.1),
    lambda p: fnn.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    lambda p: fnn.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-4),
    lambda p: fnn.Adam(p, lr=0.01),
    lambda p: fnn.AdamW(p, lr=0.01),
    lambda p: fnn.RMSprop(p, lr=0.005),
    lambda p: fnn.RMSprop(p, lr=0.002, momentum=0.5),
    lambda p: fnn.Adagrad(p, lr=0.1),
], ids=["sgd", "sgd-nesterov", "sgd-momentum-wd", "adam", "adamw", "rmsprop",
        "rmsprop-momentum", "adagrad"])
def test_every_optimizer_trains(make_opt, backend_name):
    X, y = make_moons(200, noise=0.1, seed=0)
    model = fnn.Sequential(fnn.Linear(2, 32), fnn.Tanh(), fnn.Linear(32, 2), seed=0,
                           backend=backend_name)
    before = model.evaluate(X, y, loss="cross_entropy")["loss"]
    h = model.fit(X, y, loss="cross_entropy", optimizer=make_opt(model.parameters()),
                  epochs=30, verbose=0)
    assert h.history["loss"][-1] < 0.5 * before
    assert h.history["accuracy"][-1] > 0.85


def test_optimizer_flat_path_is_one_call_and_matches_per_parameter(monkeypatch):
    X, y = make_moons(64, seed=0)
    flat_model = fnn.Sequential(fnn.Linear(2, 8), fnn.ReLU(), fnn.Linear(8, 2), seed=0)
    split_model = fnn.Sequential(fnn.Linear(2, 8), fnn.ReLU(), fnn.Linear(8, 2), seed=0)
    flat = fnn.Adam(flat_model.parameters(), lr=0.01)
    split = fnn.Adam(split_model.parameters()[::-1], lr=0.01)   # not in buffer order
    assert flat.flat and not split.flat
    calls = []
    core = flat.backend
    monkeypatch.setattr(core, "adam_update",
                        lambda *a, _f=core.adam_update: calls.append(1) or _f(*a))
    loss = fnn.CrossEntropyLoss()
    for model, opt in ((flat_model, flat), (split_model, split)):   # the explicit loop
        loss(model(X), y)
        model.zero_grad()
        model.backward(loss.backward())
        opt.step()
    assert len(calls) == 1 + 4
    # from here on flat_model takes the fused C step, split_model the layer-by-layer one
    for _ in range(5):
        flat_model.train_step(X, y, loss, flat)
        split_model.train_step(X, y, loss, split)
    np.testing.assert_array_equal(flat_model.flat_params, split_model.flat_params)


def test_explicit_loop_matches_train_step():
    X, y = make_moons(64, seed=0)
    a = fnn.Sequential(fnn.Linear(2, 8), fnn.ReLU(), fnn.Linear(8, 2), seed=0)
    b = fnn.Sequential(fnn.Linear(2, 8), fnn.ReLU(), fnn.Linear(8, 2), seed=0)
    oa, ob = fnn.SGD(a.parameters(), lr=0.1), fnn.SGD(b.parameters(), lr=0.1)
    la, lb = fnn.CrossEntropyLoss(), fnn.CrossEntropyLoss()
    for xb, yb in fnn.batches(X, y, batch_size=16, shuffle=True, seed=0):
        a.train_step(xb, yb, la, oa)
        out = b(xb)
        lb(out, yb)
        b.zero_grad()
        b.backward(lb.backward())
        ob.step()
    np.testing.assert_array_equal(a.flat_params, b.flat_params)


def test_lr_readable_and_settable_between_steps():
    model = fnn.Sequential(fnn.Linear(2, 2))
    opt = fnn.SGD(model.parameters(), lr=0.1)
    assert opt.lr == 0.1 and opt.param_groups[0]["lr"] == 0.1
    opt.lr = 0.0
    before = model.flat_params.copy()
    model.train_step(np.ones((2, 2)), [0, 1], fnn.CrossEntropyLoss(), opt)
    np.testing.assert_array_equal(model.flat_params, before)   # lr = 0 is a no-op
    with pytest.raises(ValueError, match="Invalid learning rate"):
        opt.lr = float("nan")


def test_optimizer_state_dict_roundtrip():
    X, y = make_xor()
    model = fnn.Sequential(fnn.Linear(2, 4), fnn.Tanh(), fnn.Linear(4, 2))
    opt = fnn.Adam(model.parameters(), lr=0.01)
    model.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=3, verbose=0)
    sd = opt.state_dict()
    opt2 = fnn.Adam(model.parameters())
    opt2.load_state_dict(sd)
    assert opt2.step_count == opt.step_count and opt2.lr == 0.01
    np.testing.assert_array_equal(opt2.state[0]["exp_avg"], opt.state[0]["exp_avg"])
