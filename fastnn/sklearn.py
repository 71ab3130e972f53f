"""scikit-learn estimators backed by fastnn: :class:`MLPClassifier`, :class:`MLPRegressor`.

Drop-in counterparts of ``sklearn.neural_network.MLPClassifier``/``MLPRegressor``
for the stochastic solvers: the same parameter names and defaults where they
mean the same thing, the same fitted attributes (``classes_``, ``loss_``,
``loss_curve_``, ``n_iter_``, ``coefs_``, ...), and the same stopping rule.
Each epoch runs in fastnn's C core (float32, OpenMP); the trained network is
``model_``, a :class:`fastnn.Sequential` usable on its own::

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from fastnn.sklearn import MLPClassifier

    clf = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(128,),
                                                        random_state=0))
    clf.fit(X_train, y_train).score(X_test, y_test)

scikit-learn is an optional dependency (``pip install fastnn[sklearn]``);
``import fastnn`` never imports it, importing this module does.

Where the estimators differ from scikit-learn's:

* ``alpha`` (L2 penalty). scikit-learn minimises, per mini-batch of B rows,
  ``mean loss + alpha / (2 B) · Σ ||W||²`` over the weight matrices (not the
  biases), i.e. it adds ``alpha / B · W`` to each weight gradient. Here the
  optimizer's ``weight_decay`` is set to ``alpha / B`` (B = the effective
  ``batch_size``), which adds the same ``alpha / B · p`` term -- but to every
  parameter, biases included (fastnn's weight decay covers the whole flat
  parameter buffer), and with B fixed for the short last batch where
  scikit-learn divides by its actual size. For ``solver="adamw"`` the same
  coefficient ``alpha / B`` is applied decoupled (``p ← p - lr · alpha/B · p``).
  ``loss_`` and ``loss_curve_`` include the penalty ``alpha / (2 B) · Σ p²``,
  evaluated with the parameters at the end of each epoch.
* Binary classification uses a 2-class softmax output (scikit-learn: one
  logistic unit); multilabel targets are not supported.
* ``learning_rate`` schedules ("invscaling", "adaptive") and ``solver="lbfgs"``
  are not available; ``solver`` adds "adamw", "rmsprop" and "adagrad".
  ``activation`` adds "gelu" and "leaky_relu" (slope 0.01).
* Initialisation is fastnn's (He uniform before ReLU-family activations,
  Xavier/Glorot uniform otherwise; biases 0), and arithmetic is float32.
* ``class_weight`` (classifier) weighs the cross-entropy per class
  (:class:`fastnn.CrossEntropyLoss` ``weight=``); ``sample_weight`` is not
  supported.
* ``n_threads``: None uses fastnn's current thread setting (all cores unless
  changed by :func:`fastnn.set_num_threads` or threadpoolctl); an int applies
  scikit-learn's convention (negative counts from the end, 0 is an error) for
  the duration of each fit/predict call. fastnn's count is process-wide: do
  not run estimators with different ``n_threads`` concurrently in threads of
  one process (joblib's default process-based backend is fine).
* ``learning_rate_init`` is the learning rate of every solver; RMSprop keeps
  PyTorch's smoothing constant 0.99, Adagrad its lr_decay 0.
"""
import contextlib
import numbers
import warnings

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.utils import check_random_state
    from sklearn.utils.class_weight import compute_class_weight
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, column_or_1d
except ImportError as e:  # pragma: no cover - exercised without scikit-learn
    raise ImportError("fastnn.sklearn needs scikit-learn (>= 1.3): "
                      "pip install 'fastnn[sklearn]' or pip install scikit-learn") from e
try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # pragma: no cover - scikit-learn 1.3 - 1.5
    _sk_validate_data = None

import numpy as np

from . import nn as L
from .nn import registry
from . import optim
from .callbacks import Callback
from .losses import CrossEntropyLoss, MSELoss
from .threads import get_num_threads, set_num_threads

__all__ = ["MLPClassifier", "MLPRegressor"]

# sklearn's activation names ("identity": no layer) and fastnn's, from the layer registry
ACTIVATIONS = {"identity": None, **registry.ACTIVATIONS}
SOLVERS = ("adam", "sgd", "adamw", "rmsprop", "adagrad")


def _validate_data(est, X, y="no_validation", reset=True, **kwargs):
    """scikit-learn's validate_data (>= 1.6) or est._validate_data (older)."""
    if _sk_validate_data is not None:
        return _sk_validate_data(est, X, y, reset=reset, **kwargs)
    return est._validate_data(X, y, reset=reset, **kwargs)  # pragma: no cover


@contextlib.contextmanager
def _threads(n_threads):
    """Run the body with fastnn's thread count set to n_threads (None: unchanged)."""
    if n_threads is None:
        yield
        return
    old = get_num_threads()
    set_num_threads(n_threads)
    try:
        yield
    finally:
        set_num_threads(old)


class _Monitor(Callback):
    """Per-epoch bookkeeping of scikit-learn's MLP (``_update_no_improvement_count``):
    loss_curve_, best_loss_ / validation scores, and the stopping rule
    "no improvement by more than tol for more than n_iter_no_change epochs"."""

    def __init__(self, est, n_train, validation, incremental):
        self.est, self.n_train, self.validation = est, n_train, validation
        self.incremental = incremental
        self.converged = False

    def on_epoch_end(self, epoch, logs=None):
        est = self.est
        flat = self.model.flat_params
        penalty = 0.5 * est._weight_decay * float(np.dot(flat, flat))
        est.loss_ = float(logs["loss"]) + penalty
        est.loss_curve_.append(est.loss_)
        est.n_iter_ += 1
        est.t_ += self.n_train
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}", flush=True)
        if self.validation is not None:
            score = est._validation_score(*self.validation)
            est.validation_scores_.append(score)
            if est.verbose:
                print(f"Validation score: {score:f}", flush=True)
            improved = score >= est.best_validation_score_ + est.tol
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                est._best_params = flat.copy()
        else:
            improved = est.loss_ <= est.best_loss_ - est.tol
            est.best_loss_ = min(est.best_loss_, est.loss_)
        est._no_improvement_count = 0 if improved else est._no_improvement_count + 1
        if est._no_improvement_count > est.n_iter_no_change and not self.incremental:
            self.converged = True
            self.model.stop_training = True
            if est.verbose:
                what = "Validation score" if self.validation is not None else "Training loss"
                print(f"{what} did not improve more than tol={est.tol:f} for "
                      f"{est.n_iter_no_change} consecutive epochs. Stopping.", flush=True)


class _BaseMLP(BaseEstimator):
    """Shared fit/partial_fit machinery; subclasses define the head and the targets."""

    # ------------------------------------------------------------- checks
    def _check_params(self):
        hidden = self.hidden_layer_sizes
        hidden = list(hidden) if hasattr(hidden, "__iter__") else [hidden]
        for h in hidden:
            if isinstance(h, bool) or not isinstance(h, numbers.Integral) or h <= 0:
                raise ValueError(f"hidden_layer_sizes must be positive integers, got "
                                 f"{self.hidden_layer_sizes!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, "
                             f"got {self.activation!r}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {list(SOLVERS)}, got {self.solver!r}")
        if not (self.batch_size == "auto" or (isinstance(self.batch_size, numbers.Integral)
                                              and not isinstance(self.batch_size, bool)
                                              and self.batch_size >= 1)):
            raise ValueError(f"batch_size must be 'auto' or a positive integer, "
                             f"got {self.batch_size!r}")
        for name in ("max_iter", "n_iter_no_change"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        for name, low, high in (("alpha", 0.0, np.inf), ("tol", 0.0, np.inf),
                                ("learning_rate_init", 0.0, np.inf),
                                ("momentum", 0.0, 1.0), ("beta_1", 0.0, 1.0),
                                ("beta_2", 0.0, 1.0), ("epsilon", 0.0, np.inf),
                                ("validation_fraction", 0.0, 1.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not low <= v <= high \
                    or not np.isfinite(v):
                raise ValueError(f"{name} must be a real number in [{low}, {high}], got {v!r}")
        if self.learning_rate_init <= 0 or self.epsilon <= 0:
            raise ValueError("learning_rate_init and epsilon must be > 0")
        if self.early_stopping and not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1) with early_stopping, "
                             f"got {self.validation_fraction}")
        n = self.n_threads
        if n is not None and (isinstance(n, bool) or not isinstance(n, numbers.Integral)
                              or n == 0):
            raise ValueError(f"n_threads must be None or a non-zero integer, got {n!r}")
        return [int(h) for h in hidden]

    # --------------------------------------------------------- the network
    def _build_model(self, n_in, n_out, hidden, seed):
        act = ACTIVATIONS[self.activation]
        layers, width = [], n_in
        for h in hidden:
            layers.append(L.Linear(width, h))
            if act is not None:
                layers.append(act())
            width = h
        layers.append(L.Linear(width, n_out))
        return L.Sequential(*layers, seed=seed)

    def _make_optimizer(self, model):
        """The solver on model's parameters; weight_decay = alpha / batch_size."""
        params, lr, wd = model.parameters(), self.learning_rate_init, self._weight_decay
        if self.solver in ("adam", "adamw"):
            cls = optim.Adam if self.solver == "adam" else optim.AdamW
            return cls(params, lr=lr, betas=(self.beta_1, self.beta_2), eps=self.epsilon,
                       weight_decay=wd)
        if self.solver == "sgd":
            return optim.SGD(params, lr=lr, momentum=self.momentum, weight_decay=wd,
                             nesterov=bool(self.nesterovs_momentum) and self.momentum > 0)
        if self.solver == "rmsprop":
            return optim.RMSprop(params, lr=lr, eps=self.epsilon, weight_decay=wd)
        return optim.Adagrad(params, lr=lr, eps=self.epsilon, weight_decay=wd)

    # ------------------------------------------------------------- fitting
    def fit(self, X, y):
        """Train on X (n_samples, n_features), y for up to ``max_iter`` epochs.

        Stops early (as scikit-learn) when the training loss -- or, with
        ``early_stopping``, the validation score -- has not improved by more
        than ``tol`` for more than ``n_iter_no_change`` consecutive epochs;
        otherwise warns ``ConvergenceWarning`` after ``max_iter`` epochs.
        With ``warm_start`` a second fit continues from the current weights
        (with a new optimizer). Returns self.
        """
        return self._fit(X, y, incremental=False)

    def _fit(self, X, y, incremental, classes=None):
        hidden = self._check_params()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        first = not hasattr(self, "model_") or (not incremental and not self.warm_start)
        X, y = self._validate_input(X, y, first, incremental, classes)
        rs = check_random_state(self.random_state)
        if first:
            self.model_ = self._build_model(X.shape[1], self.n_outputs_, hidden,
                                            int(rs.randint(np.iinfo(np.int32).max)))
            self.n_layers_ = len(hidden) + 2
            self.loss_curve_, self.t_ = [], 0
        self.n_iter_ = 0       # epochs of this call, as scikit-learn
        if not incremental:    # each fit restarts the stopping rule
            self._no_improvement_count = 0
            self.best_loss_ = None if self.early_stopping else np.inf
            if self.early_stopping:
                self.validation_scores_, self.best_validation_score_ = [], -np.inf
        elif getattr(self, "best_loss_", None) is None:
            self._no_improvement_count, self.best_loss_ = 0, np.inf

        validation = None
        if self.early_stopping:
            stratify = y if self._stratify else None
            X, Xv, y, yv = train_test_split(X, y, random_state=rs, stratify=stratify,
                                            test_size=self.validation_fraction)
            if len(Xv) < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            validation = (Xv, yv)
        n = len(X)
        batch = min(200, n) if self.batch_size == "auto" else min(int(self.batch_size), n)
        if self.batch_size != "auto" and self.batch_size > n:
            warnings.warn("Got `batch_size` larger than sample size. It is going to be "
                          "clipped", UserWarning)
        self._weight_decay = self.alpha / batch
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer(self.model_)
        self._optimizer.param_groups[0]["weight_decay"] = self._weight_decay
        self._optimizer.lr = self.learning_rate_init

        epochs = 1 if incremental else self.max_iter
        monitor = _Monitor(self, n, validation, incremental)
        with _threads(self.n_threads):
            self.model_.fit(X, y, loss=self._loss(), optimizer=self._optimizer,
                            epochs=epochs, batch_size=batch, shuffle=bool(self.shuffle),
                            seed=int(rs.randint(np.iinfo(np.int32).max)), callbacks=[monitor],
                            verbose=0)
        if self.early_stopping and getattr(self, "_best_params", None) is not None:
            self.model_.flat_params[...] = self._best_params
            del self._best_params
        if not incremental and not monitor.converged and self.n_iter_ == self.max_iter:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                          "and the optimization hasn't converged yet.", ConvergenceWarning)
        return self

    # ----------------------------------------------------------- inference
    def _forward(self, X):
        """Validated X -> the network's float32 outputs (n_samples, n_outputs_)."""
        check_is_fitted(self)
        X = _validate_data(self, X, reset=False, dtype=np.float32, order="C")
        with _threads(self.n_threads):
            return self.model_.predict(X)

    # ---------------------------------------------------- sklearn-style views
    @property
    def coefs_(self):
        """Copies of the weight matrices, (n_in, n_out) each -- scikit-learn's layout."""
        return [layer.weight.data.copy() for layer in self.model_.layers
                if isinstance(layer, L.Linear)]

    @property
    def intercepts_(self):
        """Copies of the bias vectors, (n_out,) each."""
        return [layer.bias.data.copy() for layer in self.model_.layers
                if isinstance(layer, L.Linear)]


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier trained by fastnn (softmax cross-entropy).

    Parameters (scikit-learn's names and defaults; see the module docstring
    for the differences):
        hidden_layer_sizes: tuple, width of each hidden layer ((100,)).
        activation: "relu", "tanh", "logistic", "identity", "gelu", "leaky_relu".
        solver: "adam", "sgd", "adamw", "rmsprop", "adagrad" (fastnn's optimizers).
        alpha: L2 penalty; optimizer weight_decay = alpha / batch_size.
        batch_size: "auto" = min(200, n_samples), or an int (clipped to n_samples).
        learning_rate_init: the (constant) learning rate.
        max_iter: maximum epochs per fit; partial_fit runs one epoch.
        shuffle, random_state: reshuffle every epoch; random_state (None, int
            or RandomState) seeds initialisation, shuffling and the validation
            split -- an int gives bitwise-reproducible fits.
        tol, n_iter_no_change: stop when the loss (validation score with
            early_stopping) has not improved by tol for more than
            n_iter_no_change epochs.
        early_stopping, validation_fraction: hold out a stratified fraction,
            stop on its accuracy, and keep the best epoch's weights.
        momentum, nesterovs_momentum: solver="sgd" only.
        beta_1, beta_2: solver="adam"/"adamw"; epsilon: adam, adamw, rmsprop, adagrad.
        verbose: print the loss every epoch.
        warm_start: fit continues from the previous weights (same classes).
        class_weight: None, "balanced" (n_samples / (n_classes · count)) or
            {label: weight}; becomes CrossEntropyLoss(weight=...), i.e.
            L = Σ w[y_i] l_i / Σ w[y_i].
        n_threads: None (fastnn's current setting) or a thread count
            (negative counts from the end; 0 is an error).

    Attributes: classes_, n_features_in_ (feature_names_in_), n_outputs_,
    n_layers_, out_activation_ ("softmax"), loss_, loss_curve_, best_loss_,
    validation_scores_, best_validation_score_, n_iter_, t_, coefs_,
    intercepts_, model_ (the trained :class:`fastnn.Sequential`; outputs logits).
    """

    _stratify = True
    out_activation_ = "softmax"

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=1e-4, batch_size="auto", learning_rate_init=1e-3, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, class_weight=None, n_threads=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.n_threads = n_threads

    def _validate_input(self, X, y, reset, incremental, classes):
        X, y = _validate_data(self, X, y, reset=reset, dtype=np.float32, order="C")
        check_classification_targets(y)
        if incremental and reset:   # first partial_fit call
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            if isinstance(self.class_weight, str) and self.class_weight == "balanced":
                raise ValueError(
                    "class_weight 'balanced' is not supported for partial_fit: pass "
                    "compute_class_weight('balanced', classes=classes, y=y_sample) as a "
                    "dict instead")
            self.classes_ = np.unique(np.asarray(classes))
            self._set_class_weight(y)
        elif reset:
            self.classes_ = np.unique(y)
            self._set_class_weight(y)
        labels = np.unique(y)
        if not reset and self.warm_start and not incremental:
            if set(labels) != set(self.classes_):
                raise ValueError(
                    "warm_start can only be used where `y` has the same classes as in the "
                    f"previous call to fit. Previously got {self.classes_}, `y` has {labels}")
        elif not np.isin(labels, self.classes_).all():
            raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                             f"{self.classes_}. 'y' has {labels}.")
        if not reset and not incremental:
            self._set_class_weight(y)
        self.n_outputs_ = len(self.classes_)
        return X, np.searchsorted(self.classes_, y).astype(np.int64)

    def _set_class_weight(self, y):
        self._class_weight = None if self.class_weight is None else np.asarray(
            compute_class_weight(self.class_weight, classes=self.classes_, y=y), np.float32)

    def _loss(self):
        return CrossEntropyLoss(weight=self._class_weight)

    def _validation_score(self, Xv, yv):
        return float(np.mean(self.model_.predict(Xv).argmax(axis=1) == yv))

    def partial_fit(self, X, y, classes=None):
        """One epoch over X, y (``max_iter`` and early stopping do not apply).

        classes: every label that any call will see; required on the first
        call (as ``np.unique(y_all)``), ignored afterwards.
        """
        return self._fit(X, y, incremental=True, classes=classes)

    def predict(self, X):
        """Predicted labels (n_samples,): classes_[argmax of the logits]."""
        out = self._forward(X)
        return self.classes_[out.argmax(axis=1)]

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes), float64: softmax of the logits,
        columns in the order of classes_."""
        z = self._forward(X).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def predict_log_proba(self, X):
        """log(predict_proba(X))."""
        z = self._forward(X).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor trained by fastnn (mean squared error,
    identity output).

    Parameters: as :class:`MLPClassifier`, without class_weight;
    ``early_stopping`` holds out a random fraction and stops on its R².
    y may be 1-D (predict returns 1-D) or 2-D (n_samples, n_outputs); a
    (n_samples, 1) y is raveled with a DataConversionWarning, as scikit-learn.

    The loss is fastnn's MSELoss, mean over samples AND outputs
    (scikit-learn's MLPRegressor uses half the squared error summed over
    outputs, so ``loss_`` differs by a factor 2 / n_outputs).
    """

    _stratify = False
    out_activation_ = "identity"

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=1e-4, batch_size="auto", learning_rate_init=1e-3, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, n_threads=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.n_threads = n_threads

    def _validate_input(self, X, y, reset, incremental, classes):
        X, y = _validate_data(self, X, y, reset=reset, dtype=np.float32, order="C",
                              multi_output=True, y_numeric=True)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        n_out = 1 if y.ndim == 1 else y.shape[1]
        if not reset and n_out != self.n_outputs_:
            raise ValueError(f"y has {n_out} outputs but the model was fitted with "
                             f"{self.n_outputs_}")
        self.n_outputs_ = n_out
        return X, np.ascontiguousarray(y.reshape(len(y), n_out), dtype=np.float32)

    def _loss(self):
        return MSELoss()

    def _validation_score(self, Xv, yv):
        return float(r2_score(yv, self.model_.predict(Xv)))

    def partial_fit(self, X, y):
        """One epoch over X, y (``max_iter`` and early stopping do not apply)."""
        return self._fit(X, y, incremental=True)

    def predict(self, X):
        """Predictions, float64: (n_samples,) for a single output, else
        (n_samples, n_outputs)."""
        out = self._forward(X).astype(np.float64)
        return out.ravel() if self.n_outputs_ == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
