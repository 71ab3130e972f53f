"""Learning-rate schedules: the formulas, PyTorch's sequences, fit and the explicit loop."""
import math

import numpy as np
import pytest

import fastnn as fnn


def _model(seed=0, backend="c"):
    return fnn.Sequential(fnn.Linear(4, 8), fnn.ReLU(), fnn.Linear(8, 3), seed=seed,
                          backend=backend)


def _sequence(sched, opt, epochs, metrics=None):
    """[lr at epoch 0, ..., lr at epoch epochs-1], stepping after each epoch."""
    lrs = []
    for e in range(epochs):
        lrs.append(opt.lr)
        sched.step() if metrics is None else sched.step(metrics[e])
    return lrs


FORMULAS = {
    "step": (lambda o: fnn.StepLR(o, step_size=3, gamma=0.5),
             lambda e: 0.1 * 0.5 ** (e // 3)),
    "exponential": (lambda o: fnn.ExponentialLR(o, gamma=0.9),
                    lambda e: 0.1 * 0.9 ** e),
    "cosine": (lambda o: fnn.CosineAnnealingLR(o, T_max=7, eta_min=0.001),
               lambda e: 0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * e / 7)) / 2),
}


@pytest.mark.parametrize("name", FORMULAS)
def test_formula(name):
    make, formula = FORMULAS[name]
    opt = fnn.SGD(_model().parameters(), lr=0.1)
    sched = make(opt)
    assert opt.lr == 0.1 and sched.last_epoch == 0      # construction changes nothing
    lrs = _sequence(sched, opt, 20)                      # 20 > T_max: cosine goes back up
    np.testing.assert_allclose(lrs, [formula(e) for e in range(20)], rtol=1e-12)
    assert sched.get_last_lr() == [opt.lr]


def test_plateau_rule():
    opt = fnn.SGD(_model().parameters(), lr=1.0)
    sched = fnn.ReduceLROnPlateau(opt, factor=0.5, patience=2, cooldown=1, min_lr=0.2)
    metrics = [5, 4, 4, 4, 4, 4, 4, 4, 3, 3, 3, 3, 3, 3, 3, 3]
    lrs = _sequence(sched, opt, len(metrics), metrics)
    # 4 is best at epoch 1; the 3rd bad epoch (> patience 2), epoch 4, halves the lr;
    # epoch 5 is cooldown, 6-7 bad, 8 improves (3); 9-11 bad -> 0.25; 12 cooldown,
    # 13-15 bad -> max(0.125, min_lr) = 0.2
    assert lrs == [1.0] * 5 + [0.5] * 7 + [0.25] * 4
    assert opt.lr == 0.2
    assert sched.best == 3


def test_plateau_max_mode_and_threshold():
    opt = fnn.SGD(_model().parameters(), lr=1.0)
    sched = fnn.ReduceLROnPlateau(opt, mode="max", patience=0, threshold=0.1,
                                  threshold_mode="abs")
    sched.step(0.5)            # improves on -inf
    sched.step(0.55)           # +0.05 <= threshold: a bad epoch, > patience 0
    assert opt.lr == pytest.approx(0.1)
    sched.step(0.7)
    assert opt.lr == pytest.approx(0.1) and sched.best == 0.7


def test_validation():
    opt = fnn.SGD(_model().parameters(), lr=0.1)
    with pytest.raises(ValueError, match="step_size"):
        fnn.StepLR(opt, 0)
    with pytest.raises(ValueError, match="T_max"):
        fnn.CosineAnnealingLR(opt, 0)
    with pytest.raises(ValueError, match="Factor"):
        fnn.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode"):
        fnn.ReduceLROnPlateau(opt, mode="up")
    with pytest.raises(TypeError, match="fastnn optimizer"):
        fnn.StepLR(object(), 2)


# ---------------------------------------------------------------- vs PyTorch
def _torch_lrs(torch_sched, epochs, metrics=None, **kw):
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=kw.pop("lr", 0.1))
    sched = torch_sched(opt, **kw)
    lrs = []
    for e in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step() if metrics is None else sched.step(metrics[e])
    return lrs


@pytest.mark.parametrize("name,kw", [
    ("StepLR", dict(step_size=4, gamma=0.3)),
    ("StepLR", dict(step_size=1)),
    ("ExponentialLR", dict(gamma=0.95)),
    ("CosineAnnealingLR", dict(T_max=10)),
    ("CosineAnnealingLR", dict(T_max=6, eta_min=0.01)),
])
def test_same_as_torch(name, kw):
    torch = pytest.importorskip("torch")
    expected = _torch_lrs(getattr(torch.optim.lr_scheduler, name), 25, **dict(kw))
    opt = fnn.SGD(_model().parameters(), lr=0.1)
    got = _sequence(getattr(fnn, name)(opt, **kw), opt, 25)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-15)


def test_plateau_same_as_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    # a noisy decreasing curve that flattens: several reductions, cooldowns, min_lr
    metrics = list(np.maximum(np.linspace(2, 0, 60), 0.5) + 0.05 * rng.random(60))
    for kw in (dict(), dict(factor=0.5, patience=3, cooldown=2, min_lr=0.004),
               dict(mode="max", patience=2, threshold=0.05, threshold_mode="abs")):
        expected = _torch_lrs(torch.optim.lr_scheduler.ReduceLROnPlateau, 60, metrics,
                              **dict(kw))
        opt = fnn.SGD(_model().parameters(), lr=0.1)
        got = _sequence(fnn.ReduceLROnPlateau(opt, **kw), opt, 60, metrics)
        np.testing.assert_allclose(got, expected, rtol=1e-12)
        assert len(set(got)) > 2 or not kw     # the lr was reduced several times


# ----------------------------------------------------------- fit and the loop
def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)


@pytest.mark.parametrize("backend", ["c", "numpy"])
def test_fit_records_lr(backend):
    X, y = _data()
    model = _model(backend=backend)
    opt = fnn.SGD(model.parameters(), lr=0.2, momentum=0.9)
    h = model.fit(X, y, loss=fnn.CrossEntropyLoss(), optimizer=opt, epochs=7, verbose=0,
                  callbacks=[fnn.StepLR(opt, step_size=2, gamma=0.5)])
    np.testing.assert_allclose(h.history["lr"], [0.2 * 0.5 ** (e // 2) for e in range(7)])
    assert opt.lr == pytest.approx(0.2 * 0.5 ** 3)     # stepped after the last epoch too


def test_fit_without_schedule_records_constant_lr():
    X, y = _data()
    model = _model()
    h = model.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=3, verbose=0)
    assert h.history["lr"] == [1e-3] * 3


def test_fit_same_as_explicit_loop():
    """fit(callbacks=[sched]) and the PyTorch-style loop train identically."""
    X, y = _data()
    loss = fnn.CrossEntropyLoss()
    a = _model(seed=3)
    opt_a = fnn.SGD(a.parameters(), lr=0.1)
    a.fit(X, y, loss=loss, optimizer=opt_a, epochs=5, batch_size=16, shuffle=False,
          callbacks=[fnn.CosineAnnealingLR(opt_a, T_max=5)], verbose=0)
    b = _model(seed=3)
    opt_b = fnn.SGD(b.parameters(), lr=0.1)
    sched = fnn.CosineAnnealingLR(opt_b, T_max=5)
    for _ in range(5):
        for xb, yb in fnn.batches(X, y, 16):
            b.train_step(xb, yb, loss, opt_b)
        sched.step()
    assert opt_a.lr == opt_b.lr
    np.testing.assert_array_equal(a.flat_params, b.flat_params)


def test_plateau_in_fit():
    X, y = _data()
    model = _model()
    opt = fnn.Adam(model.parameters(), lr=0.05)
    # an absolute threshold of 1e9: nothing counts as an improvement after epoch 0
    sched = fnn.ReduceLROnPlateau(opt, factor=0.5, patience=1, threshold=1e9,
                                  threshold_mode="abs")
    h = model.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=6, verbose=0,
                  validation_split=0.25, callbacks=[sched])
    assert h.history["lr"] == pytest.approx([0.05, 0.05, 0.05, 0.025, 0.025, 0.0125])
    with pytest.raises(ValueError, match="monitors 'val_loss'"):
        model.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=1, verbose=0,
                  callbacks=[fnn.ReduceLROnPlateau(opt)])
    h = model.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=2, verbose=0,
                  callbacks=[fnn.ReduceLROnPlateau(opt, monitor="loss")])
    assert len(h.history["lr"]) == 2


def test_fit_rejects_schedule_of_another_optimizer():
    X, y = _data()
    model = _model()
    opt = fnn.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="another optimizer"):
        model.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=1, verbose=0,
                  callbacks=[fnn.StepLR(opt, 1)])


def test_verbose_line_shows_lr(capsys):
    X, y = _data()
    model = _model()
    opt = fnn.SGD(model.parameters(), lr=0.1)
    model.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=2, verbose=1,
              callbacks=[fnn.ExponentialLR(opt, 0.1)])
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("lr: 0.1") and out[1].endswith("lr: 0.01")


def test_state_dict_roundtrip():
    opt = fnn.SGD(_model().parameters(), lr=0.1)
    s1 = fnn.StepLR(opt, 2)
    for _ in range(3):
        s1.step()
    s2 = fnn.StepLR(fnn.SGD(_model().parameters(), lr=0.1), 5)
    s2.load_state_dict(s1.state_dict())
    assert (s2.last_epoch, s2.step_size, s2.base_lr) == (3, 2, 0.1)
    assert "StepLR(step_size=2, gamma=0.1)" == repr(s1)
