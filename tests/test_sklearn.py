"""fastnn.sklearn: scikit-learn's estimator checks, Pipeline/GridSearchCV, class_weight,
partial_fit, determinism, and accuracy against sklearn's own MLPClassifier on digits.

The speed comparison lives in bench/bench_sklearn.py (no timing assertions here).
"""
import inspect
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone                                     # noqa: E402
from sklearn.exceptions import ConvergenceWarning                  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline                         # noqa: E402
from sklearn.preprocessing import StandardScaler                   # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastnn                                                      # noqa: E402
from fastnn.sklearn import MLPClassifier, MLPRegressor             # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tests are about the estimator API, not threading: run the kernels on one
    thread so they stay fast on shared CI cores (test_threadpoolctl covers threads)."""
    old = fastnn.get_num_threads()
    fastnn.set_num_threads(1)
    yield
    fastnn.set_num_threads(old)


# ------------------------------------------------------- check_estimator
# Checks expected to fail, with the reason. check_sample_weight_equivalence_* fits once
# with integer sample weights and once with the rows repeated (a full batch: the data set
# has fewer than 200 rows) and compares predict_proba/predict at rtol=1e-7. scikit-learn
# passes in float64; fastnn trains in float32, where the two fits sum their rows in a
# different order and drift apart by ~1e-6 relative after 100+ steps. The weights ARE
# equivalent up to float32 rounding: test_sample_weight_equals_repeated_rows checks it at
# rtol=1e-4, and MLPRegressor(max_iter=20) passes the dense check as it is. Its sparse
# check now runs the CSR first layer (csrc/sparse.c), which adds a repeated row's dw
# terms one by one instead of once with weight 2: with the NumPy Adam update 2 of 15
# predictions differed by 1.5e-7 relative (float32 rounding), just over rtol=1e-7; with
# the C Adam update it passes. Being rounding luck either way, it stays a non-strict
# expected failure (an XPASS is not an error).
_SW = {"check_sample_weight_equivalence_on_dense_data": "float32 training (see above)",
       "check_sample_weight_equivalence_on_sparse_data": "float32 training (see above)"}


def expected_failed_checks(estimator):
    if isinstance(estimator, MLPRegressor) and estimator.max_iter <= 20:
        return {k: v for k, v in _SW.items() if k.endswith("sparse_data")}
    return _SW


# scikit-learn < 1.6 has no expected_failed_checks (and nothing to pass it today)
_XFAIL = {"expected_failed_checks": expected_failed_checks} \
    if "expected_failed_checks" in inspect.signature(parametrize_with_checks).parameters else {}


# scikit-learn's own test instances use max_iter=100; the issue asks for the default
# (200) and max_iter=20 (where MLPRegressor must still pass the R^2 check)
@parametrize_with_checks([MLPClassifier(), MLPRegressor(), MLPClassifier(max_iter=20),
                          MLPRegressor(max_iter=20)], **_XFAIL)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# ------------------------------------------------------------ helpers
def _blobs(n=300, seed=0):
    from sklearn.datasets import make_blobs
    X, y = make_blobs(n_samples=n, centers=3, n_features=5, random_state=seed)
    return StandardScaler().fit_transform(X), y


def test_import_fastnn_does_not_import_sklearn():
    code = "import sys, fastnn; assert 'sklearn' not in sys.modules, 'sklearn imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_clear_import_error_without_sklearn():
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "import fastnn\n"
            "try:\n"
            "    import fastnn.sklearn\n"
            "except ImportError as e:\n"
            "    assert 'pip install' in str(e) and 'scikit-learn' in str(e), e\n"
            "else:\n"
            "    raise AssertionError('no ImportError')\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fitted_attributes_and_shapes():
    X, y = _blobs()
    labels = np.array(["a", "b", "c"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(16, 8), learning_rate_init=0.01, max_iter=30,
                        random_state=0).fit(X, labels)
    assert list(clf.classes_) == ["a", "b", "c"]
    assert clf.n_features_in_ == 5 and clf.n_outputs_ == 3 and clf.n_layers_ == 4
    assert clf.n_iter_ == len(clf.loss_curve_) == 30 and clf.loss_ == clf.loss_curve_[-1]
    assert [w.shape for w in clf.coefs_] == [(5, 16), (16, 8), (8, 3)]
    assert [b.shape for b in clf.intercepts_] == [(16,), (8,), (3,)]
    assert isinstance(clf.model_, fastnn.Sequential)
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float64 and proba.shape == (300, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(1)], clf.predict(X))
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba, rtol=1e-6)
    assert clf.score(X, labels) > 0.9


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity", "gelu",
                                        "leaky_relu"])
@pytest.mark.parametrize("solver", ["lbfgs", "sgd", "adam"])
def test_every_activation_and_solver_learns(activation, solver):
    X, y = _blobs()
    lr = {"sgd": 0.05}.get(solver, 0.01)
    clf = MLPClassifier((16,), activation, solver=solver, learning_rate_init=lr, max_iter=40,
                        random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9


def test_max_iter_warns_and_tol_stops():
    X, y = _blobs()
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        MLPClassifier(max_iter=3, random_state=0).fit(X, y)
    # a huge tol: only epoch 1 improves (on best_loss_ = inf), so training stops after
    # n_iter_no_change + 1 more epochs -- scikit-learn's rule (count > n_iter_no_change)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = MLPClassifier(max_iter=100, tol=1e6, n_iter_no_change=4, random_state=0)
        assert clf.fit(X, y).n_iter_ == 6


def test_early_stopping_keeps_the_best_epoch():
    X, y = _blobs(600)
    clf = MLPClassifier(early_stopping=True, validation_fraction=0.2, max_iter=200,
                        n_iter_no_change=5, random_state=0).fit(X, y)
    assert clf.best_loss_ is None
    assert len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        clf.partial_fit(X, y)


def test_regressor_1d_and_2d_targets():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.1 * np.sin(3 * X[:, 0])
    reg = MLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=200, random_state=0).fit(X, y)
    assert reg.predict(X).shape == (400,) and reg.predict(X).dtype == np.float64
    assert reg.score(X, y) > 0.95
    Y = np.column_stack([y, -y])
    reg2 = clone(reg).fit(X, Y)
    assert reg2.predict(X).shape == (400, 2) and reg2.n_outputs_ == 2
    assert reg2.score(X, Y) > 0.95
    es = MLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=0.01, early_stopping=True,
                      random_state=0).fit(X, y)
    assert es.best_validation_score_ > 0.9


def test_pipeline_with_standard_scaler():
    X, y = fastnn.datasets.load_digits()
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    pipe = make_pipeline(StandardScaler(), MLPClassifier((64,), max_iter=30, random_state=0))
    assert pipe.fit(Xtr, ytr).score(Xte, yte) > 0.93


def test_grid_search_cv():
    X, y = _blobs(240)
    grid = GridSearchCV(MLPClassifier(learning_rate_init=0.01, max_iter=20, random_state=0),
                        {"hidden_layer_sizes": [(8,), (32,)], "alpha": [1e-4, 1e-2]}, cv=3)
    grid.fit(X, y)
    assert set(grid.best_params_) == {"hidden_layer_sizes", "alpha"}
    assert len(grid.cv_results_["mean_test_score"]) == 4
    assert grid.best_score_ > 0.9
    assert isinstance(grid.best_estimator_.model_, fastnn.Sequential)


def test_class_weight_shifts_predictions():
    from sklearn.datasets import make_classification
    X, y = make_classification(n_samples=600, n_features=6, weights=[0.9, 0.1],
                               class_sep=0.5, random_state=0)
    kw = dict(hidden_layer_sizes=(16,), max_iter=60, random_state=0)
    plain = MLPClassifier(**kw).fit(X, y)
    balanced = MLPClassifier(class_weight="balanced", **kw).fit(X, y)
    heavy = MLPClassifier(class_weight={0: 1.0, 1: 20.0}, **kw).fit(X, y)
    n_plain, n_bal, n_heavy = ((m.predict(X) == 1).sum() for m in (plain, balanced, heavy))
    assert n_plain < n_bal < n_heavy
    # the balanced weights are scikit-learn's n_samples / (n_classes * count)
    counts = np.bincount(y)
    w = balanced._row_weights(balanced._label_binarizer.transform(y), None)
    np.testing.assert_allclose(w, (len(y) / (2 * counts))[y], rtol=1e-6)
    from sklearn.metrics import recall_score
    assert recall_score(y, balanced.predict(X)) > recall_score(y, plain.predict(X))


def test_partial_fit():
    X, y = _blobs(400)
    clf = MLPClassifier((16,), learning_rate_init=0.01, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clone(clf).partial_fit(X, y)
    for _ in range(20):
        for start in range(0, 400, 100):   # first chunk may lack a class: classes= says all
            clf.partial_fit(X[start:start + 100], y[start:start + 100], classes=[0, 1, 2])
    assert clf.n_iter_ == 1 and len(clf.loss_curve_) == 80 and clf.t_ == 400 * 20
    assert clf.score(X, y) > 0.9
    with pytest.raises(ValueError, match="classes not in"):
        clf.partial_fit(X[:5], np.full(5, 7))
    with pytest.raises(ValueError, match="classes not in"):
        MLPClassifier().partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :3], y)
    with pytest.raises(ValueError, match="balanced"):
        MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])
    reg = MLPRegressor(hidden_layer_sizes=(8,), random_state=0)
    for _ in range(3):
        reg.partial_fit(X, X[:, 0])
    assert len(reg.loss_curve_) == 3 and reg.loss_curve_[-1] < reg.loss_curve_[0]


def test_partial_fit_equals_fit_epoch_by_epoch():
    X, y = _blobs(200)
    kw = dict(hidden_layer_sizes=(8,), shuffle=False, random_state=3, batch_size=50)
    a = MLPClassifier(max_iter=1, **kw).fit(X, y)
    b = MLPClassifier(**kw).partial_fit(X, y, classes=np.unique(y))
    np.testing.assert_array_equal(a.model_.flat_params, b.model_.flat_params)


def test_warm_start_continues():
    X, y = _blobs()
    clf = MLPClassifier((8,), max_iter=5, warm_start=True, random_state=0).fit(X, y)
    before = clf.model_.flat_params.copy()
    model = clf.model_
    clf.fit(X, y)
    assert clf.model_ is model and not np.array_equal(before, model.flat_params)
    assert len(clf.loss_curve_) == 10
    with pytest.raises(ValueError, match="same classes"):
        clf.fit(X[y < 2], y[y < 2])


def test_random_state_determinism():
    X, y = _blobs()
    kw = dict(hidden_layer_sizes=(16,), max_iter=15)
    a = MLPClassifier(random_state=42, **kw).fit(X, y)
    b = MLPClassifier(random_state=42, **kw).fit(X, y)
    c = MLPClassifier(random_state=43, **kw).fit(X, y)
    np.testing.assert_array_equal(a.model_.flat_params, b.model_.flat_params)
    assert a.loss_curve_ == b.loss_curve_
    assert not np.array_equal(a.model_.flat_params, c.model_.flat_params)
    # the same fit again on the same estimator, and with 1 or 2 threads: same bits
    np.testing.assert_array_equal(a.fit(X, y).model_.flat_params, b.model_.flat_params)
    d = MLPClassifier(random_state=42, n_threads=2, **kw).fit(X, y)
    np.testing.assert_array_equal(d.model_.flat_params, b.model_.flat_params)


def test_pickle_round_trip_keeps_training_state():
    X, y = _blobs()
    clf = MLPClassifier((8,), max_iter=5, random_state=0).fit(X, y)
    copy = pickle.loads(pickle.dumps(clf))
    assert hasattr(clf, "_l2_buf") and not hasattr(copy, "_l2_buf")   # scratch not pickled
    np.testing.assert_array_equal(copy.predict_proba(X), clf.predict_proba(X))
    clf.partial_fit(X, y)
    copy.partial_fit(X, y)
    np.testing.assert_array_equal(copy.model_.flat_params, clf.model_.flat_params)


def test_loss_includes_the_l2_penalty_on_weights_only():
    """lbfgs loss_ = mean log-loss + alpha / (2 n) * sum ||W||^2 (biases excluded)."""
    from sklearn.metrics import log_loss
    X, y = _blobs(100)
    clf = MLPClassifier((4,), solver="lbfgs", alpha=0.5, max_iter=30, random_state=0).fit(X, y)
    penalty = 0.5 * 0.5 / 100 * sum(float(np.sum(w.astype(np.float64) ** 2))
                                   for w in clf.coefs_)
    assert clf.loss_ == pytest.approx(log_loss(y, clf.predict_proba(X)) + penalty, rel=1e-4)


@pytest.mark.parametrize("n_threads", [0, 1.5, "2"])
def test_n_threads_rejects(n_threads):
    X, y = _blobs(50)
    with pytest.raises(ValueError, match="n_threads"):
        MLPClassifier(max_iter=1, n_threads=n_threads).fit(X, y)


def test_n_threads_is_restored():
    X, y = _blobs(50)
    before = fastnn.get_num_threads()
    clf = MLPClassifier((4,), max_iter=2, n_threads=-1).fit(X, y)
    clf.predict(X)
    assert fastnn.get_num_threads() == before


@pytest.mark.parametrize("params, match", [
    (dict(hidden_layer_sizes=(0,)), "hidden_layer_sizes"),
    (dict(activation="softplus"), "activation"),
    (dict(solver="newton"), "solver"),
    (dict(batch_size=0), "batch_size"),
    (dict(max_iter=0), "max_iter"),
    (dict(alpha=-1.0), "alpha"),
    (dict(momentum=1.5), "momentum"),
    (dict(early_stopping=True, validation_fraction=0.0), "test_size"),   # as sklearn
])
def test_bad_params(params, match):
    X, y = _blobs(50)
    with pytest.raises(ValueError, match=match):
        MLPClassifier(**params).fit(X, y)


def test_digits_accuracy_vs_sklearn_mlp():
    """Same architecture (64-100-10, relu), adam, lr 1e-3, batch 200, alpha 1e-4,
    max_iter=100 epochs with tol=0 so both run every epoch. fastnn must be at least
    as accurate as scikit-learn's MLPClassifier, within 0.01. (Fit time: see
    bench/bench_sklearn.py.)"""
    from sklearn.neural_network import MLPClassifier as SkMLP
    X, y = fastnn.datasets.load_digits()
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    kw = dict(hidden_layer_sizes=(100,), solver="adam", max_iter=100, tol=0.0,
              n_iter_no_change=100_000, random_state=0)
    from threadpoolctl import threadpool_limits   # a scikit-learn dependency
    with threadpool_limits(1):   # keeps sklearn's BLAS fast on shared CI cores
        ours = MLPClassifier(**kw).fit(Xtr, ytr)
        theirs = SkMLP(**kw).fit(Xtr.astype(np.float64), ytr)
    assert ours.n_iter_ == theirs.n_iter_ == 100
    acc_ours, acc_theirs = ours.score(Xte, yte), theirs.score(Xte.astype(np.float64), yte)
    print(f"digits test accuracy: fastnn {acc_ours:.4f}, scikit-learn {acc_theirs:.4f}")
    assert acc_ours >= acc_theirs - 0.01, (acc_ours, acc_theirs)
