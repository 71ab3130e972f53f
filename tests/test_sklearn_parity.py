"""fastnn.sklearn against sklearn.neural_network side by side: the same data and
parameters through both estimators, then the same signature, attributes, errors,
warnings and comparable scores (fastnn trains in float32, so "the same" means up to
float32 rounding, and a score at least scikit-learn's minus 0.05)."""
import inspect
import re
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
scipy_sparse = pytest.importorskip("scipy.sparse")

from sklearn import neural_network as skn                            # noqa: E402
from sklearn.base import clone                                       # noqa: E402
from sklearn.datasets import (load_digits, load_iris, make_multilabel_classification,  # noqa: E402
                              make_regression)
from sklearn.exceptions import ConvergenceWarning                    # noqa: E402
from sklearn.model_selection import train_test_split                 # noqa: E402
from sklearn.preprocessing import StandardScaler                     # noqa: E402

import fastnn                                                        # noqa: E402
from fastnn import sklearn as fnn                                    # noqa: E402

NAMES = ["MLPClassifier", "MLPRegressor"]
EXTRA = {"MLPClassifier": {"class_weight", "n_threads"}, "MLPRegressor": {"n_threads"}}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    old = fastnn.get_num_threads()
    fastnn.set_num_threads(1)
    yield
    fastnn.set_num_threads(old)


def _canon(text):
    """A message or constraint with every "{...}" option set sorted: sets print in hash
    order, which differs between processes (PYTHONHASHSEED) and even between two equal
    sets built in a different order."""
    return re.sub(r"\{([^{}]*)\}",
                  lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}", text)


def _pair(name, **kw):
    return getattr(skn, name)(**kw), getattr(fnn, name)(**kw)


def _fit_both(name, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return [est.fit(X, y) for est in _pair(name, **kw)]


def _data(kind):
    if kind == "iris":
        X, y = load_iris(return_X_y=True)
    elif kind == "digits":
        X, y = load_digits(return_X_y=True)
    else:
        X, y = make_regression(n_samples=400, n_features=8, noise=5.0, random_state=0)
        y = y / y.std()
    X = StandardScaler().fit_transform(X)
    return train_test_split(X, y, test_size=0.3, random_state=0)


# ------------------------------------------------------------- signature
@pytest.mark.parametrize("name", NAMES)
def test_same_parameters_and_defaults(name):
    theirs = inspect.signature(getattr(skn, name)).parameters
    ours = inspect.signature(getattr(fnn, name)).parameters
    assert list(ours)[:len(theirs)] == list(theirs)          # same order (positional ones)
    assert set(ours) - set(theirs) == EXTRA[name]
    for p in theirs:
        assert ours[p].kind == theirs[p].kind, p
        assert ours[p].default == theirs[p].default, p
    ours_c = getattr(fnn, name)._parameter_constraints
    for p, cons in getattr(skn, name)._parameter_constraints.items():
        assert p in ours_c, p
        if p != "activation":        # fastnn adds gelu and leaky_relu
            assert [_canon(str(c)) for c in ours_c[p]] == [_canon(str(c)) for c in cons], p


@pytest.mark.parametrize("name", NAMES)
def test_same_public_methods(name):
    def public(cls):
        return {m for m in dir(cls) if not m.startswith("_")}
    assert public(getattr(skn, name)) <= public(getattr(fnn, name))


# ----------------------------------------------------------- bad params
BAD = [dict(hidden_layer_sizes=(0,)), dict(hidden_layer_sizes=-1), dict(activation="bad"),
       dict(solver="newton"), dict(alpha=-1.0), dict(batch_size=0), dict(batch_size="big"),
       dict(learning_rate="cosine"), dict(learning_rate_init=0.0), dict(power_t=-1.0),
       dict(max_iter=0), dict(max_iter=1.5), dict(shuffle="yes"), dict(random_state="x"),
       dict(tol=-1.0), dict(momentum=1.5), dict(nesterovs_momentum=2),
       dict(early_stopping=1), dict(validation_fraction=1.0), dict(beta_1=1.0),
       dict(beta_2=-0.1), dict(epsilon=0.0), dict(n_iter_no_change=0),
       dict(n_iter_no_change=2.5), dict(max_fun=0), dict(warm_start="no")]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("params", BAD, ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()))
def test_same_errors_for_bad_params(name, params):
    X, y = load_iris(return_X_y=True)
    errors = []
    for est in _pair(name, **{"max_iter": 2, **params}):
        with pytest.raises(Exception) as info, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
        errors.append(info.value)
    a, b = errors
    assert type(a) is type(b), (a, b)
    if "activation" not in params:
        assert _canon(str(a)).replace("MLP", "") == _canon(str(b)).replace("MLP", ""), (a, b)


def test_n_iter_no_change_inf_is_accepted_by_both():
    X, y = load_iris(return_X_y=True)
    theirs, ours = _fit_both("MLPClassifier", X, y, n_iter_no_change=np.inf, max_iter=15,
                             random_state=0)
    assert theirs.n_iter_ == ours.n_iter_ == 15


@pytest.mark.parametrize("name", NAMES)
def test_same_errors_for_bad_inputs(name):
    X, y = load_iris(return_X_y=True)
    cases = [(X[:, :0], y), (X[:5], y), (np.full_like(X, np.nan), y), (X, y[:, None, None])]
    for Xb, yb in cases:
        errs = []
        for est in _pair(name, max_iter=2):
            with pytest.raises(Exception) as info, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(Xb, yb)
            errs.append(info.value)
        assert type(errs[0]) is type(errs[1]) and str(errs[0]) == str(errs[1])
    theirs, ours = _fit_both(name, X, y, max_iter=5, random_state=0)
    for est in (theirs, ours):
        with pytest.raises(ValueError, match="features"):
            est.predict(X[:, :3])
    for est in _pair(name):
        with pytest.raises(sklearn.exceptions.NotFittedError):
            est.predict(X)


# ---------------------------------------------------- scores and attributes
@pytest.mark.parametrize("solver", ["lbfgs", "sgd", "adam"])
@pytest.mark.parametrize("kind", ["iris", "digits", "regression"])
def test_comparable_scores_and_same_attributes(solver, kind):
    name = "MLPRegressor" if kind == "regression" else "MLPClassifier"
    Xtr, Xte, ytr, yte = _data(kind)
    kw = dict(solver=solver, random_state=0, max_iter=200 if kind != "digits" else 100)
    if solver == "sgd":
        kw["learning_rate_init"] = 0.01
    theirs, ours = _fit_both(name, Xtr, ytr, **kw)
    s_theirs, s_ours = theirs.score(Xte, yte), ours.score(Xte, yte)
    assert s_ours >= s_theirs - 0.05, (s_ours, s_theirs)
    fitted = {a for a in vars(theirs) if a.endswith("_") and not a.startswith("_")}
    assert fitted <= set(vars(ours)), fitted - set(vars(ours))
    for a in ("n_layers_", "n_outputs_", "out_activation_", "n_features_in_"):
        assert getattr(ours, a) == getattr(theirs, a), a
    assert [c.shape for c in ours.coefs_] == [c.shape for c in theirs.coefs_]
    assert [c.dtype for c in ours.coefs_] == [c.dtype for c in theirs.coefs_]
    if solver != "lbfgs":
        # same init, same shuffles: the loss curves track each other (float32 vs float64)
        n = min(len(ours.loss_curve_), len(theirs.loss_curve_), 20)
        np.testing.assert_allclose(ours.loss_curve_[:n], theirs.loss_curve_[:n], rtol=1e-3)
        assert ours.t_ == ours.n_iter_ * len(Xtr)


def test_predict_proba_dtype_follows_x():
    X, y = load_iris(return_X_y=True)
    for dtype in (np.float64, np.float32):
        Xd = X.astype(dtype)
        theirs, ours = _fit_both("MLPClassifier", Xd, y, max_iter=20, random_state=0)
        for m in ("predict_proba", "predict_log_proba"):
            a, b = getattr(theirs, m)(Xd), getattr(ours, m)(Xd)
            assert a.dtype == b.dtype == dtype and a.shape == b.shape
        np.testing.assert_allclose(ours.predict_proba(Xd), theirs.predict_proba(Xd), atol=1e-3)
        reg_t, reg_o = _fit_both("MLPRegressor", Xd, X[:, 0].astype(dtype), max_iter=20,
                                 random_state=0)
        assert reg_t.predict(Xd).dtype == reg_o.predict(Xd).dtype == dtype


def test_binary_multilabel_and_multioutput_targets():
    X, y = load_iris(return_X_y=True)
    yb = (y == 2).astype(int)
    theirs, ours = _fit_both("MLPClassifier", X, yb, solver="lbfgs", random_state=0)
    assert ours.out_activation_ == theirs.out_activation_ == "logistic"
    assert ours.n_outputs_ == 1 and ours.predict_proba(X).shape == (150, 2)
    assert ours.score(X, yb) >= theirs.score(X, yb) - 0.05
    Xm, Ym = make_multilabel_classification(n_samples=200, n_classes=4, random_state=0)
    theirs, ours = _fit_both("MLPClassifier", Xm, Ym, solver="lbfgs", max_iter=100,
                             random_state=0)
    assert ours.predict(Xm).shape == theirs.predict(Xm).shape == Ym.shape
    assert ours.predict_proba(Xm).shape == Ym.shape
    assert ours.score(Xm, Ym) >= theirs.score(Xm, Ym) - 0.05
    Y2 = np.column_stack([X[:, 0] + X[:, 1], X[:, 2] - X[:, 3]])
    theirs, ours = _fit_both("MLPRegressor", X, Y2, solver="lbfgs", random_state=0)
    assert ours.predict(X).shape == (150, 2)
    assert ours.score(X, Y2) >= theirs.score(X, Y2) - 0.05
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=0.5, abs=1e-3)


def test_poisson_loss():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = rng.poisson(np.exp(0.5 * X[:, 0] - 0.3 * X[:, 1]))
    theirs, ours = _fit_both("MLPRegressor", X, y, loss="poisson", solver="lbfgs",
                             hidden_layer_sizes=(8,), random_state=0)
    assert ours.out_activation_ == theirs.out_activation_ == "exp"
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=0.05)
    assert ours.score(X, y) >= theirs.score(X, y) - 0.05


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input(fmt):
    X, y = load_digits(return_X_y=True)
    Xs = getattr(scipy_sparse, f"{fmt}_matrix")(X / 16.0)
    theirs, ours = _fit_both("MLPClassifier", Xs, y, max_iter=10, random_state=0)
    dense = clone(ours).fit(X / 16.0, y)
    np.testing.assert_allclose(ours.predict_proba(Xs), dense.predict_proba(X / 16.0),
                               rtol=1e-4, atol=1e-6)
    assert ours.score(Xs, y) >= theirs.score(Xs, y) - 0.05


def _sparse_text_like(rng, n, d, per_row):
    """A CSR (n, d) with per_row nonzeros per row (positive, bag-of-words like)."""
    cols = rng.integers(0, d, (n, per_row))
    data = rng.uniform(0.5, 1.5, (n, per_row))
    return scipy_sparse.csr_matrix((data.ravel(), cols.ravel(), np.arange(0, n * per_row + 1,
                                                                         per_row)),
                                   shape=(n, d))


@pytest.mark.parametrize("solver", ["lbfgs", "sgd"])
@pytest.mark.parametrize("name", NAMES)
def test_sparse_equals_dense_path(name, solver):
    """Every solver, fit/partial_fit/predict: CSR and CSC input (float32 and
    float64, unsorted indices with duplicates) give the dense path's results."""
    rng = np.random.default_rng(0)
    Xs = _sparse_text_like(rng, 300, 500, 6)        # repeated columns in some rows
    Xd = Xs.toarray()
    if name == "MLPClassifier":
        y = (Xd[:, :250].sum(1) > Xd[:, 250:].sum(1)).astype(int) + (Xd[:, 0] > 0)
    else:
        y = Xd[:, :50].sum(1) - Xd[:, 50:100].sum(1)
    kw = dict(solver=solver, hidden_layer_sizes=(12,), max_iter=15, random_state=0,
              learning_rate_init=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dense = getattr(fnn, name)(**kw).fit(Xd, y)
        for X in (Xs, Xs.tocsc(), Xs.astype(np.float32)):
            sparse = getattr(fnn, name)(**kw).fit(X, y)
            for a, b in zip(sparse.coefs_ + sparse.intercepts_, dense.coefs_ + dense.intercepts_):
                np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-4)
            assert sparse.n_iter_ == dense.n_iter_
            np.testing.assert_allclose(sparse.predict(X) if name == "MLPRegressor"
                                       else sparse.predict_proba(X),
                                       dense.predict(Xd) if name == "MLPRegressor"
                                       else dense.predict_proba(Xd), rtol=1e-3, atol=1e-4)
    if solver == "sgd":
        a, b = getattr(fnn, name)(**kw), getattr(fnn, name)(**kw)
        extra = {"classes": np.unique(y)} if name == "MLPClassifier" else {}
        for _ in range(3):
            a.partial_fit(Xs, y, **extra)
            b.partial_fit(Xd, y, **extra)
        np.testing.assert_allclose(a.coefs_[0], b.coefs_[0], rtol=2e-3, atol=2e-4)


def test_sparse_input_is_never_densified(monkeypatch):
    """A 20000 x 200000 CSR at 0.01% density (400 entries per 20 rows...): dense it
    would take 16 GB in float32. fit, partial_fit and predict run with every
    toarray/todense disabled, and the Python heap peaks far below one densified
    batch (200 rows x 200000 float64 = 320 MB)."""
    import tracemalloc
    rng = np.random.default_rng(0)
    n, d = 20000, 200000
    nnz = n * d // 10000
    rows = np.sort(rng.integers(0, n, nnz))
    X = scipy_sparse.csr_matrix((np.ones(nnz), (rows, rng.integers(0, d, nnz))), shape=(n, d))
    y = rng.integers(0, 2, n)

    def no_densify(*args, **kwargs):
        raise AssertionError("a sparse matrix was densified")

    for cls in (scipy_sparse.csr_matrix, scipy_sparse.csc_matrix, scipy_sparse.coo_matrix):
        monkeypatch.setattr(cls, "toarray", no_densify)
        monkeypatch.setattr(cls, "todense", no_densify)
    clf = fnn.MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, batch_size=200,
                            random_state=0)
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y)
            clf.partial_fit(X[:1000], y[:1000])
        proba = clf.predict_proba(X[:5000])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert proba.shape == (5000, 2) and np.isfinite(proba).all()
    assert clf.coefs_[0].shape == (d, 4)
    assert peak < 120e6, f"Python heap peaked at {peak / 1e6:.0f} MB"


# ----------------------------------------------------------- solver rules
@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "adaptive"])
@pytest.mark.parametrize("nesterov", [True, False])
def test_sgd_schedules_track_sklearn(learning_rate, nesterov):
    Xtr, _, ytr, _ = _data("iris")
    kw = dict(solver="sgd", learning_rate=learning_rate, nesterovs_momentum=nesterov,
              learning_rate_init=0.1, max_iter=60, tol=1e-3, n_iter_no_change=3,
              hidden_layer_sizes=(10,), random_state=1)
    theirs, ours = _fit_both("MLPClassifier", Xtr, ytr, **kw)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-3)
    assert ours._optimizer.learning_rate == pytest.approx(theirs._optimizer.learning_rate)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_convergence_warning_both(solver):
    X, y = load_iris(return_X_y=True)
    for est in _pair("MLPClassifier", solver=solver, max_iter=3, random_state=0):
        with pytest.warns(ConvergenceWarning):
            est.fit(X, y)


def test_stopping_rule_and_early_stopping_attributes():
    Xtr, _, ytr, _ = _data("digits")
    kw = dict(max_iter=200, tol=1e-2, n_iter_no_change=3, random_state=0)
    theirs, ours = _fit_both("MLPClassifier", Xtr, ytr, **kw)
    assert ours.n_iter_ == theirs.n_iter_ < 200
    assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=1e-3)
    assert ours.validation_scores_ is theirs.validation_scores_ is None
    theirs, ours = _fit_both("MLPClassifier", Xtr, ytr, early_stopping=True, **kw)
    assert ours.best_loss_ is theirs.best_loss_ is None
    assert len(ours.validation_scores_) == ours.n_iter_
    assert ours.best_validation_score_ == max(ours.validation_scores_)
    assert ours.best_validation_score_ >= theirs.best_validation_score_ - 0.05
    for est in (theirs, ours):
        with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
            est.partial_fit(Xtr, ytr)
    for est in _pair("MLPClassifier", solver="lbfgs", max_iter=5):
        est.fit(Xtr[:60], ytr[:60])
        assert not hasattr(est, "loss_curve_") and not hasattr(est, "best_loss_")


# ----------------------------------------------------- weights and state
@pytest.mark.parametrize("name", NAMES)
def test_zero_sample_weight_removes_the_sample(name):
    X, y = load_iris(return_X_y=True)
    if name == "MLPRegressor":
        y = X[:, 0] * 2.0
    w = np.ones(len(X))
    w[::3] = 0
    kw = dict(solver="lbfgs", hidden_layer_sizes=(5,), max_iter=50, random_state=0)
    for est in _pair(name, **kw):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            a = clone(est).fit(X, y, sample_weight=w)
            b = clone(est).fit(X[w > 0], y[w > 0])
        # float64 sklearn: equal to rounding; fastnn float32: to ~1e-4
        np.testing.assert_allclose(a.coefs_[0], b.coefs_[0], rtol=1e-3, atol=1e-4)


def test_sample_weight_equals_repeated_rows():
    """Integer weights k: the objective (loss and gradient, L2 term included) equals that
    of the data with each row repeated k times, to float32 rounding; fitted models agree
    as closely as scikit-learn's own two fits do (L-BFGS stops at slightly different
    points; in float32 its line search can stop a little earlier)."""
    X, y = load_iris(return_X_y=True)
    k = np.random.default_rng(0).integers(0, 3, len(X))
    Xr, yr = np.repeat(X, k, axis=0), np.repeat(y, k)
    kw = dict(solver="lbfgs", hidden_layer_sizes=(5,), alpha=0.1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = fnn.MLPClassifier(**kw, max_iter=3).fit(X, y, sample_weight=k)
    g1 = np.zeros(est.model_.flat_params.size, np.float32)
    g2 = np.zeros_like(g1)
    binarize = est._label_binarizer.transform
    l1 = est._objective(X, binarize(y).astype(bool), k.astype(float), slice(0, len(X)), g1)
    l2 = est._objective(Xr, binarize(yr).astype(bool), None, slice(0, len(Xr)), g2)
    assert l1 == pytest.approx(l2, rel=1e-6)
    np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-5 * np.abs(g2).max())
    for mod in (skn, fnn):
        a = mod.MLPClassifier(**kw).fit(X, y, sample_weight=k)
        b = mod.MLPClassifier(**kw).fit(Xr, yr)
        # scikit-learn's two fits agree to ~4e-3 in predict_proba; fastnn's float32 L-BFGS
        # stops earlier on one of them (line search on float32 losses): up to ~0.1
        assert a.loss_ == pytest.approx(b.loss_, rel=0.1)
        assert np.mean(a.predict(X) == b.predict(X)) >= 0.97


def test_partial_fit_messages_and_classes():
    X, y = load_iris(return_X_y=True)
    for est in _pair("MLPClassifier", random_state=0):
        with pytest.raises(ValueError, match="classes must be passed on the first call"):
            clone(est).partial_fit(X, y)
        est.partial_fit(X[:50], y[:50], classes=[0, 1, 2])     # first chunk: one class
        assert list(est.classes_) == [0, 1, 2] and est.n_outputs_ == 3
        with pytest.raises(ValueError, match="is not the same as on last call"):
            est.partial_fit(X, y, classes=[0, 1])
        with pytest.raises(ValueError, match="`y` has classes not in"):
            est.partial_fit(X[:3], [0, 1, 5])
    theirs, ours = _pair("MLPClassifier", solver="lbfgs")
    for est in (theirs, ours):
        assert not hasattr(est, "partial_fit")
        with pytest.raises(AttributeError, match="has no attribute 'partial_fit'"):
            est.partial_fit(X, y, classes=[0, 1, 2])
    theirs, ours = _pair("MLPClassifier", random_state=0, shuffle=False)
    for _ in range(3):
        theirs.partial_fit(X, y, classes=[0, 1, 2])
        ours.partial_fit(X, y, classes=[0, 1, 2])
    assert ours.n_iter_ == theirs.n_iter_ == 1 and ours.t_ == theirs.t_ == 450
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-4)


def test_warm_start_and_settable_coefs():
    X, y = load_iris(return_X_y=True)
    theirs, ours = _fit_both("MLPClassifier", X, y, max_iter=5, warm_start=True,
                             random_state=0)
    for est in (theirs, ours):
        est.fit(X, y)
        assert len(est.loss_curve_) == 10
        with pytest.raises(ValueError, match="warm_start can only be used where `y` has the "
                                             "same classes"):
            est.fit(X[y < 2], y[y < 2])
    # coefs_ / intercepts_ set by hand are what the next fit starts from and predict uses
    donor = fnn.MLPClassifier(max_iter=50, random_state=1).fit(X, y)
    ours.coefs_ = [c.copy() for c in donor.coefs_]
    ours.intercepts_ = [b.copy() for b in donor.intercepts_]
    np.testing.assert_allclose(ours.predict_proba(X), donor.predict_proba(X), rtol=1e-6)
    ours.coefs_[-1][:] = 0
    ours.intercepts_[-1][:] = 0
    np.testing.assert_allclose(ours.predict_proba(X), 1 / 3, rtol=1e-6)
    ours.set_params(max_iter=1).fit(X, y)      # continues from the zeroed output layer
    assert np.abs(ours.coefs_[-1]).max() < 0.05


def test_verbose_prints_the_same_lines(capsys):
    X, y = load_iris(return_X_y=True)
    out = []
    for est in _pair("MLPClassifier", max_iter=3, verbose=True, random_state=0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
        out.append([line.split("=")[0] for line in capsys.readouterr().out.splitlines()])
    assert out[0] == out[1] == ["Iteration 1, loss ", "Iteration 2, loss ",
                                "Iteration 3, loss "]
