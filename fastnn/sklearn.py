"""scikit-learn estimators backed by fastnn: :class:`MLPClassifier`, :class:`MLPRegressor`.

Drop-in counterparts of ``sklearn.neural_network.MLPClassifier``/``MLPRegressor``
(scikit-learn 1.9): the same constructor parameters, defaults and parameter
validation (scikit-learn's own ``_parameter_constraints`` machinery), the same
solvers ("lbfgs", "sgd", "adam"), learning-rate schedules, stopping rules,
fitted attributes, methods, warnings and error messages. What runs in fastnn's
C core is the expensive part: each mini-batch (or each L-BFGS function
evaluation) is ONE fused C call for forward, loss and backward
(``fastnn._core.Model.compute_gradients``, float32, OpenMP, GIL released);
the solver's update rule is scikit-learn's, applied to the flat parameter
buffer (Adam by the C Adam kernel, SGD with momentum in NumPy)::

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from fastnn.sklearn import MLPClassifier

    clf = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(128,),
                                                        random_state=0))
    clf.fit(X_train, y_train).score(X_test, y_test)

scikit-learn (and scipy, for lbfgs) is an optional dependency
(``pip install fastnn[sklearn]``); ``import fastnn`` never imports it,
importing this module does.

The objective and update rules follow
sklearn/neural_network/_multilayer_perceptron.py and _stochastic_optimizers.py
of the installed scikit-learn, per mini-batch B with row weights s
(1 without sample_weight) and S = Σ_B s:

* loss = Σ s_i l_i / S + alpha / (2 S) · Σ ||W||² (weights only, not biases);
  l_i = log-loss summed over the outputs (softmax: the cross-entropy; logistic:
  binary and multilabel), or half the squared error averaged over the outputs
  (regressor; its gradient is that of the SUM over outputs, as scikit-learn's),
  or the Poisson deviance with an exp output (``loss="poisson"``).
* sgd: v ← momentum · v − lr · g; Nesterov: p ← p + momentum · v − lr · g,
  else p ← p + v. invscaling: lr = learning_rate_init / (t_ + 1)^power_t after
  every epoch; adaptive: lr /= 5 whenever the stopping rule fires (until
  lr <= 1e-6).
* adam: m, v as Kingma & Ba; p ← p − lr · √(1−β₂ᵗ)/(1−β₁ᵗ) · m / (√v + ε)
  (ε outside the bias correction, unlike torch.optim.Adam).
* lbfgs: ``scipy.optimize.minimize(method="L-BFGS-B", jac=True)`` over the
  flat parameters with maxiter=max_iter, maxfun=max_fun, gtol=tol.
* initialisation: scikit-learn's Glorot uniform (bound √(6 / (fan_in +
  fan_out)), √(2 / ...) for "logistic"; biases too), drawn from the same
  RandomState in the same order -- with an integer random_state the initial
  weights, the shuffles and the early-stopping split are scikit-learn's.

Where the estimators still differ from scikit-learn's:

* Arithmetic is float32 (fastnn's C core has no float64 models). float64
  input is cast to float32 for training and prediction; ``predict``,
  ``predict_proba`` and ``coefs_``/``intercepts_`` are returned in the dtype
  scikit-learn would use (float64 unless X is float32).
* Sparse X (CSR/CSC; CSC is converted to CSR once per call) is never
  densified: each mini-batch (or chunk of rows) is a CSR row slice that the
  first layer multiplies sparse-dense in C (csrc/sparse.c), for every solver
  and for prediction. Results equal the dense path's within float32 rounding.
* Extensions: ``activation`` also accepts "gelu" and "leaky_relu" (slope
  0.01); ``MLPClassifier(class_weight=...)`` ("balanced" or a dict: the rows'
  weights are multiplied by their class's weight); ``n_threads`` (None: fastnn's
  current thread setting; an int: scikit-learn's convention, negative counts
  from the end, applied for the duration of each call; process-wide, so do not
  run estimators with different n_threads concurrently in threads).
* ``model_`` is the trained :class:`fastnn.Sequential` (outputs logits /
  pre-activations); ``coefs_``/``intercepts_`` are copied into it before each
  fit and predict, so setting them (for warm_start) works as in scikit-learn.
"""
import contextlib
import numbers
import warnings
from itertools import pairwise

try:
    import scipy.optimize
    import scipy.sparse as sp
    from scipy.special import xlogy
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import _safe_indexing, check_random_state, column_or_1d, gen_batches
    from sklearn.utils import shuffle as _sk_shuffle
    from sklearn.utils._param_validation import Interval, Options, StrOptions
    from sklearn.utils.class_weight import compute_class_weight
    from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import (_check_partial_fit_first_call, type_of_target,
                                          unique_labels)
    from sklearn.utils.optimize import _check_optimize_result
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
except ImportError as e:  # pragma: no cover - exercised without scikit-learn
    raise ImportError("fastnn.sklearn needs scikit-learn (>= 1.7) and scipy: "
                      "pip install 'fastnn[sklearn]' or pip install scikit-learn") from e

import numpy as np

from . import _core
from . import nn as L
from .nn import registry
from .threads import get_num_threads, set_num_threads

__all__ = ["MLPClassifier", "MLPRegressor"]

# sklearn's activation names ("identity": no layer) and fastnn's, from the layer registry
ACTIVATIONS = {"identity": None, **registry.ACTIVATIONS}
_STOCHASTIC_SOLVERS = ("sgd", "adam")
_CHUNK = 8192           # rows per C call for full-batch (lbfgs) passes and predict


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


def _rows(X, idx):
    """The batch X[idx] as the C model takes it: a C-contiguous float32 array, or
    for a CSR X the tuple (indptr, indices, data) of its rows (int64, int64,
    float32), which the model's first linear layer multiplies sparse-dense in C
    (csrc/sparse.c): a sparse X is never densified."""
    if sp.issparse(X):
        b = X[idx]
        return (np.asarray(b.indptr, np.int64), np.asarray(b.indices, np.int64),
                np.asarray(b.data, np.float32))
    return np.ascontiguousarray(X[idx], dtype=np.float32)


class _SGD:
    """scikit-learn's SGDOptimizer (sklearn/neural_network/_stochastic_optimizers.py)
    on one flat float32 buffer: v ← μ v − lr g; p += μ v − lr g (Nesterov) or v."""

    def __init__(self, size, learning_rate_init, lr_schedule, momentum, nesterov, power_t):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.lr_schedule, self.momentum = lr_schedule, momentum
        self.nesterov, self.power_t = nesterov, power_t
        self.size = size
        self.velocity = np.zeros(size, np.float32)
        self._tmp = np.zeros(size, np.float32)

    def update(self, params, grads):
        v, tmp, lr = self.velocity, self._tmp, self.learning_rate
        v *= self.momentum
        np.multiply(grads, lr, out=tmp)
        v -= tmp
        if self.nesterov:
            params += self.momentum * v
            params -= tmp
        else:
            params += v

    def iteration_ends(self, time_step):
        if self.lr_schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        if self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


class _Adam:
    """scikit-learn's AdamOptimizer on one flat float32 buffer:
    p ← p − lr √(1−β₂ᵗ)/(1−β₁ᵗ) · m / (√v + ε)."""

    def __init__(self, size, learning_rate_init, beta_1, beta_2, epsilon):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.t, self.size = 0, size
        self.m = np.zeros(size, np.float32)
        self.v = np.zeros(size, np.float32)

    def update(self, params, grads):
        b1, b2 = self.beta_1, self.beta_2
        self.t += 1
        bc2 = np.sqrt(1 - b2 ** self.t)
        self.learning_rate = self.learning_rate_init * bc2 / (1 - b1 ** self.t)
        # scikit-learn's step p -= lr_t m / (sqrt(v) + eps) is fastnn's C Adam
        # (p -= lr / (1 - b1^t) m / (sqrt(v) / bc2 + eps')) with eps' = eps / bc2:
        # one pass over the buffers instead of a dozen NumPy ones
        _core.adam_update(params, self.m, self.v, grads, self.t, self.learning_rate_init,
                          b1, b2, self.epsilon / bc2, 0.0, False)

    def iteration_ends(self, time_step):
        pass

    def trigger_stopping(self, msg, verbose):
        if verbose:
            print(msg + " Stopping.")
        return True


class _BaseMLP(BaseEstimator):
    """Shared fit/partial_fit machinery (scikit-learn's BaseMultilayerPerceptron,
    with the forward/backward pass in fastnn's C core)."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(numbers.Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(numbers.Real, 0, None, closed="neither")],
        "power_t": [Interval(numbers.Real, 0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(numbers.Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta_1": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta_2": [Interval(numbers.Real, 0, 1, closed="left")],
        "epsilon": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left"),
                             Options(numbers.Real, {np.inf})],
        "max_fun": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_threads": [None, Interval(numbers.Integral, None, -1, closed="right"),
                      Interval(numbers.Integral, 1, None, closed="left")],
    }

    def _set_common(self, hidden_layer_sizes, activation, solver, alpha, batch_size,
                    learning_rate, learning_rate_init, power_t, max_iter, shuffle,
                    random_state, tol, verbose, warm_start, momentum, nesterovs_momentum,
                    early_stopping, validation_fraction, beta_1, beta_2, epsilon,
                    n_iter_no_change, max_fun, n_threads):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
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
        self.max_fun = max_fun
        self.n_threads = n_threads

    # --------------------------------------------------------- the network
    def _init_coef(self, fan_in, fan_out, dtype):
        """scikit-learn's Glorot uniform, weights then biases, from self._random_state."""
        factor = 2.0 if self.activation == "logistic" else 6.0
        bound = np.sqrt(factor / (fan_in + fan_out))
        coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
        intercept = self._random_state.uniform(-bound, bound, fan_out)
        return coef.astype(dtype, copy=False), intercept.astype(dtype, copy=False)

    def _initialize(self, y, layer_units, dtype):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._out_activation()
        self.coefs_, self.intercepts_ = [], []
        for fan_in, fan_out in pairwise(layer_units):
            c, b = self._init_coef(fan_in, fan_out, dtype)
            self.coefs_.append(c)
            self.intercepts_.append(b)
        self._best_coefs = [c.copy() for c in self.coefs_]
        self._best_intercepts = [b.copy() for b in self.intercepts_]
        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _layer_units(self):
        return [self.coefs_[0].shape[0]] + [c.shape[1] for c in self.coefs_]

    def _ensure_model(self):
        """model_ (a fastnn.Sequential with one C model) shaped like coefs_, holding
        coefs_/intercepts_ (copied in; they are the source of truth, as in sklearn)."""
        units = self._layer_units()
        for i, (c, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            if c.ndim != 2 or b.shape != (c.shape[1],) or \
                    (i and c.shape[0] != self.coefs_[i - 1].shape[1]):
                raise ValueError(f"coefs_[{i}] {c.shape} and intercepts_[{i}] {b.shape} do "
                                 f"not chain: coefs_[i] must be (fan_in, fan_out) with "
                                 f"fan_in = coefs_[i-1].shape[1], intercepts_[i] (fan_out,)")
        model = getattr(self, "model_", None)
        if model is None or getattr(self, "_model_units", None) != units or \
                getattr(self, "_model_activation", None) != self.activation:
            act = ACTIVATIONS[self.activation]
            layers = []
            for i, (a, b) in enumerate(pairwise(units)):
                layers.append(L.Linear(a, b))
                if act is not None and i < len(units) - 2:
                    layers.append(act())
            model = self.model_ = L.Sequential(*layers, seed=0)
            self._model_units, self._model_activation = units, self.activation
            self._model_dirty = True
            if model._get_plan() is None:  # pragma: no cover - every layer here is built in
                raise RuntimeError("fastnn.sklearn needs the C backend")
        linears = [layer for layer in model.layers if isinstance(layer, L.Linear)]
        for layer, c, b in zip(linears, self.coefs_, self.intercepts_):
            layer.weight.data[...] = c
            layer.bias.data[...] = b
        return model

    def _weight_slices(self):
        """Where the weight matrices (not the biases) sit in the flat parameter buffer."""
        flat = self.model_.flat_params
        out = []
        for layer in self.model_.layers:
            if isinstance(layer, L.Linear):
                w = layer.weight.data
                start = (w.__array_interface__["data"][0]
                         - flat.__array_interface__["data"][0]) // flat.itemsize
                out.append(slice(start, start + w.size))
        return out

    def _store_params(self, dtype):
        """coefs_/intercepts_ ← the model's parameters, in dtype."""
        linears = [layer for layer in self.model_.layers if isinstance(layer, L.Linear)]
        self.coefs_ = [layer.weight.data.astype(dtype) for layer in linears]
        self.intercepts_ = [layer.bias.data.astype(dtype) for layer in linears]

    # ------------------------------------------------ loss and its gradient
    def _bind_loss(self):
        cm = self.model_._get_plan()
        name = self._c_loss()
        if getattr(self, "_bound_loss", None) != (id(cm), name):
            cm.set_loss(name)
            self._bound_loss = (id(cm), name)
        return cm

    def _loss_grad(self, X, y, sw, rows, denom, grads, add=True):
        """Data loss of rows ``rows`` (an index array or slice) with the fastnn C call,
        its gradient added to ``grads`` (flat, float32; add=False: written over it),
        each row's term divided by denom (sklearn's S). Returns the loss term (without the L2 penalty)."""
        cm = self._bind_loss()
        xb = _rows(X, rows)
        yb = self._c_target(y[rows])
        swb = None if sw is None else np.ascontiguousarray(sw[rows], dtype=np.float32)
        if self.out_activation_ == "exp":
            return self._poisson_loss_grad(cm, xb, y[rows], swb, denom, grads, add)
        loss = cm.compute_gradients(xb, yb, None, 0, 0, sample_weight=swb, denom=denom)
        scale_l, scale_g = self._loss_scales()
        g = self.model_.flat_grads
        if scale_g != 1:
            g *= scale_g   # the model's own buffer, overwritten by the next call
        if add:
            grads += g
        else:
            np.copyto(grads, g)
        return loss * scale_l

    def _poisson_loss_grad(self, cm, xb, yb, swb, denom, grads, add):
        """Poisson deviance with an exp output: dl/dz = s (exp(z) - y) / S, fed to the
        fused C step through the squared error (its gradient 2 (z - t) / (n D) equals
        dl/dz for t = z - dl/dz · n D / 2)."""
        n, d = len(yb), self.n_outputs_
        z = np.empty((n, d), np.float32)
        cm.forward(z, xb, np.empty(cm.workspace_size(n, False), np.float32))
        z64 = z.astype(np.float64)
        mu = np.exp(z64)
        yb = yb.reshape(n, d).astype(np.float64)
        s = np.ones(n) if swb is None else swb.astype(np.float64)
        loss = float(np.sum(s[:, None] * (xlogy(yb, yb / mu) - yb + mu)) / denom)
        dz = s[:, None] * (mu - yb) / denom
        t = (z64 - dz * (n * d) / 2).astype(np.float32)
        cm.compute_gradients(xb, t, None, 0, 0)
        if add:
            grads += self.model_.flat_grads
        else:
            np.copyto(grads, self.model_.flat_grads)
        return loss

    def __getstate__(self):
        state = dict(super().__getstate__())   # may be self.__dict__ itself
        state.pop("_l2_buf", None)   # scratch, not state: a pickle stays the model's size
        return state

    def _l2_scratch(self, size):
        """A float32 scratch vector of ``size`` (kept: a wide first layer would
        otherwise allocate and page in its whole size at every step)."""
        buf = getattr(self, "_l2_buf", None)
        if buf is None or buf.size < size:
            buf = self._l2_buf = np.empty(size, np.float32)
        return buf[:size]

    def _objective(self, X, y, sw, rows, grads):
        """sklearn's mini-batch objective: data loss + alpha/(2S)·Σ||W||², gradient in
        grads (overwritten). rows: the batch's row indices or a slice."""
        if sw is None:
            n = len(range(X.shape[0])[rows]) if isinstance(rows, slice) else len(rows)
            S = float(n)
        else:
            S = float(np.sum(sw[rows], dtype=np.float64))
        denom = S if S > 0 else 1.0
        if isinstance(rows, slice) and rows.stop - rows.start > _CHUNK:
            grads[...] = 0
            loss = sum(self._loss_grad(X, y, sw, slice(a, min(a + _CHUNK, rows.stop)),
                                       denom, grads)
                       for a in range(rows.start, rows.stop, _CHUNK))
        else:
            loss = self._loss_grad(X, y, sw, rows, denom, grads, add=False)
        flat, penalty = self.model_.flat_params, 0.0
        if S > 0:
            for s in self._wslices:
                w, g = flat[s], grads[s]
                penalty += float(np.dot(w, w))
                g += np.multiply(w, self.alpha / S, out=self._l2_scratch(w.size))
            penalty *= 0.5 * self.alpha / S
        return float(loss) + penalty

    # ------------------------------------------------------------- fitting
    def _fit(self, X, y, sample_weight=None, incremental=False):
        hidden = self.hidden_layer_sizes
        hidden = list(hidden) if hasattr(hidden, "__iter__") else [hidden]
        if np.any(np.array(hidden) <= 0):
            raise ValueError("hidden_layer_sizes must be > 0, got %s." % hidden)
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if sp.issparse(X) and X.format == "csc":
            X = X.tocsr()          # row slicing per mini-batch; still sparse
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        sample_weight = self._row_weights(y, sample_weight)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        self.n_outputs_ = y.shape[1]
        layer_units = [X.shape[1]] + [int(h) for h in hidden] + [self.n_outputs_]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units, X.dtype)
        with _threads(self.n_threads):
            self._ensure_model()
            self._wslices = self._weight_slices()
            if self.solver in _STOCHASTIC_SOLVERS:
                self._fit_stochastic(X, y, sample_weight, incremental)
            else:
                self._fit_lbfgs(X, y, sample_weight)
        self._store_params(X.dtype)
        if not all(np.isfinite(w).all() for w in self.coefs_ + self.intercepts_):
            raise ValueError("Solver produced non-finite parameter weights. The input data may"
                             " contain large values and need to be preprocessed.")
        return self

    def _fit_lbfgs(self, X, y, sample_weight):
        params, P = self.model_.flat_params, self.model_.flat_params.size
        grads = np.zeros(P, np.float32)
        everything = slice(0, X.shape[0])

        def fun(theta):
            params[...] = theta
            loss = self._objective(X, y, sample_weight, everything, grads)
            return loss, grads.astype(np.float64)

        iprint = 1 if self.verbose is True or self.verbose >= 1 else -1
        res = scipy.optimize.minimize(
            fun, params.astype(np.float64), method="L-BFGS-B", jac=True,
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol,
                     **_get_additional_lbfgs_options_dict("iprint", iprint)})
        self.n_iter_ = _check_optimize_result("lbfgs", res, self.max_iter)
        self.loss_ = float(res.fun)
        params[...] = res.x

    def _fit_stochastic(self, X, y, sample_weight, incremental):
        P = self.model_.flat_params.size
        opt = getattr(self, "_optimizer", None)
        if not incremental or opt is None or opt.size != P:
            if self.solver == "sgd":
                self._optimizer = _SGD(P, self.learning_rate_init, self.learning_rate,
                                       self.momentum, self.nesterovs_momentum, self.power_t)
            else:
                self._optimizer = _Adam(P, self.learning_rate_init, self.beta_1, self.beta_2,
                                        self.epsilon)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping:
            stratify = y if self._stratify and self.n_outputs_ == 1 else None
            if sample_weight is None:
                X_train, X_val, y_train, y_val = train_test_split(
                    X, y, random_state=self._random_state, test_size=self.validation_fraction,
                    stratify=stratify)
                sw_train = sw_val = None
            else:
                X_train, X_val, y_train, y_val, sw_train, sw_val = train_test_split(
                    X, y, sample_weight, random_state=self._random_state,
                    test_size=self.validation_fraction, stratify=stratify)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            y_val = self._val_target(y_val)
        else:
            X_train, y_train, sw_train = X, y, sample_weight
            X_val = y_val = sw_val = None

        n = X_train.shape[0]
        sample_idx = np.arange(n, dtype=int)
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than "
                              "sample size. It is going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n))

        opt, params = self._optimizer, self.model_.flat_params
        grads = np.zeros(params.size, np.float32)
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if self.shuffle:
                    sample_idx = _sk_shuffle(sample_idx, random_state=self._random_state)
                accumulated = 0.0
                for batch in gen_batches(n, batch_size):
                    rows = sample_idx[batch] if self.shuffle else batch
                    loss = self._objective(X_train, y_train, sw_train, rows, grads)
                    accumulated += loss * (batch.stop - batch.start)
                    opt.update(params, grads)
                self.n_iter_ += 1
                self.loss_ = accumulated / n
                self.t_ += n
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                self._update_no_improvement_count(early_stopping, X_val, y_val, sw_val)
                opt.iteration_ends(self.t_)
                if self._no_improvement_count > self.n_iter_no_change:
                    what = "Validation score" if early_stopping else "Training loss"
                    msg = ("%s did not improve more than tol=%f for %d consecutive epochs."
                           % (what, self.tol, self.n_iter_no_change))
                    if opt.trigger_stopping(msg, self.verbose):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and "
                                  "the optimization hasn't converged yet." % self.max_iter,
                                  ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        if early_stopping:
            self.coefs_ = self._best_coefs
            self.intercepts_ = self._best_intercepts
            self._ensure_model()

    def _update_no_improvement_count(self, early_stopping, X_val, y_val, sw_val):
        if early_stopping:
            dtype = self.coefs_[0].dtype
            score = self._score_fitted(X_val, y_val, sw_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._store_params(dtype)
                self._best_coefs = self.coefs_
                self._best_intercepts = self.intercepts_
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to X (n_samples, n_features; dense or CSR/CSC) and y.

        sample_weight (n_samples,): each row's term is weighted, the mini-batch
        objective divided by the batch's weight sum (as scikit-learn >= 1.7).
        Warns ConvergenceWarning when a stochastic solver ran max_iter epochs,
        or lbfgs stopped on max_iter/max_fun. Returns self.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError("partial_fit is only available for stochastic"
                                 " optimizers. %s is not stochastic." % self.solver)
        return True

    # ----------------------------------------------------------- inference
    def _forward_pass_fast(self, X, check_input=True):
        """The output activations (n_samples, n_outputs_) in X's float dtype.
        check_input=False (a validation score during fit): no validation, and the
        model's parameters are used as they are (coefs_ are copied in at the end)."""
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False,
                              dtype=(np.float64, np.float32))
        dtype = X.dtype
        if sp.issparse(X) and X.format == "csc":
            X = X.tocsr()
        with _threads(self.n_threads):
            model = self._ensure_model() if check_input else self.model_
            n = X.shape[0]
            out = np.empty((n, self.n_outputs_), np.float32)
            cm = model._get_plan()
            for a in range(0, n, _CHUNK):
                b = min(a + _CHUNK, n)
                xb = _rows(X, slice(a, b))
                cm.forward(out[a:b], xb, np.empty(cm.workspace_size(b - a, False), np.float32))
        z = out.astype(dtype)
        act = self.out_activation_
        if act == "softmax":
            z -= z.max(axis=1, keepdims=True)
            np.exp(z, out=z)
            z /= z.sum(axis=1, keepdims=True)
        elif act == "logistic":
            # 1 / (1 + exp(-z)) without overflow warnings
            np.negative(z, out=z)
            with np.errstate(over="ignore"):
                np.exp(z, out=z)
            z += 1
            np.reciprocal(z, out=z)
        elif act == "exp":
            with np.errstate(over="ignore"):
                np.exp(z, out=z)
        return z

    def _score_fitted(self, X, y, sample_weight):
        """The validation score during fit (no input validation)."""
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return self._score_function(y, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier trained by fastnn: scikit-learn's
    ``MLPClassifier`` (same parameters, defaults, attributes and methods; see
    the module docstring for the objective and what differs).

    Softmax output with the cross-entropy for multiclass targets; one
    logistic output for binary targets; one logistic output per label for a
    multilabel indicator matrix (the binary log-loss summed over labels).

    Parameters: hidden_layer_sizes=(100,), activation="relu"
    ("identity", "logistic", "tanh", "relu"; fastnn adds "gelu", "leaky_relu"),
    solver="adam" ("lbfgs", "sgd", "adam"), alpha=1e-4, batch_size="auto",
    learning_rate="constant" ("invscaling", "adaptive"; sgd only),
    learning_rate_init=1e-3, power_t=0.5, max_iter=200, shuffle=True,
    random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
    nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
    beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10 (np.inf
    allowed), max_fun=15000 -- as scikit-learn's; fastnn extensions:
    class_weight=None ("balanced" or {label: weight}, multiplying the rows'
    sample weights; single-output targets only) and n_threads=None.

    Attributes: classes_, loss_, best_loss_, loss_curve_, validation_scores_,
    best_validation_score_ (stochastic solvers), t_, coefs_, intercepts_,
    n_features_in_, feature_names_in_, n_iter_, n_layers_, n_outputs_,
    out_activation_, and model_ (the trained :class:`fastnn.Sequential`,
    outputting logits).
    """

    _stratify = True
    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "class_weight": [None, dict, StrOptions({"balanced"})],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 class_weight=None, n_threads=None):
        self._set_common(hidden_layer_sizes, activation, solver, alpha, batch_size,
                         learning_rate, learning_rate_init, power_t, max_iter, shuffle,
                         random_state, tol, verbose, warm_start, momentum, nesterovs_momentum,
                         early_stopping, validation_fraction, beta_1, beta_2, epsilon,
                         n_iter_no_change, max_fun, n_threads)
        self.class_weight = class_weight

    def _out_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _c_loss(self):
        return "cross_entropy" if self.out_activation_ == "softmax" else "bce_with_logits"

    def _loss_scales(self):
        """(loss, gradient) factors from fastnn's C loss to sklearn's: the binary
        log-loss is summed over the outputs where fastnn averages."""
        d = 1 if self.out_activation_ == "softmax" else self.n_outputs_
        return d, d

    def _c_target(self, yb):
        if self.out_activation_ == "softmax":
            return np.ascontiguousarray(yb.argmax(axis=1), dtype=np.int64)
        return np.ascontiguousarray(yb, dtype=np.float32)

    def _val_target(self, y_val):
        return self._label_binarizer.inverse_transform(y_val)

    def _row_weights(self, y, sample_weight):
        """sample_weight times the class weights of the rows' classes."""
        if self.class_weight is None:
            return sample_weight
        if y.ndim == 2 and self._label_binarizer.y_type_ == "multilabel-indicator":
            raise ValueError("class_weight is not supported for multilabel targets")
        labels = self._label_binarizer.inverse_transform(y)
        cw = compute_class_weight(self.class_weight, classes=self.classes_, y=labels)
        w = cw[np.searchsorted(self.classes_, labels)]
        return w if sample_weight is None else w * sample_weight

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in "
                        f"the previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError("`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        y = self._label_binarizer.transform(y).astype(bool)
        return X, y

    @staticmethod
    def _score_function(y, y_pred, sample_weight=None):
        return accuracy_score(y, y_pred, sample_weight=sample_weight)

    def predict(self, X):
        """Predicted classes (n_samples,), or an indicator matrix for multilabel."""
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over X, y (max_iter and the stopping rule do not apply).

        classes: every label any call will see (``np.unique(y_all)``); required
        on the first call, checked against classes_ afterwards.
        """
        if isinstance(self.class_weight, str):   # "balanced" (validated by _fit_context)
            raise ValueError("class_weight 'balanced' is not supported for partial_fit: pass "
                             "compute_class_weight('balanced', classes=classes, y=y_all) as "
                             "a dict instead")
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict_log_proba(self, X):
        """log(predict_proba(X))."""
        return np.log(self.predict_proba(X))

    def predict_proba(self, X):
        """Probabilities (n_samples, n_classes), columns in the order of classes_
        (binary: [1 - p, p]; multilabel: one column per label)."""
        check_is_fitted(self)
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor trained by fastnn: scikit-learn's
    ``MLPRegressor`` (same parameters, defaults, attributes and methods; see
    the module docstring for the objective and what differs).

    loss="squared_error" (identity output; half the squared error) or
    "poisson" (exp output; the Poisson deviance, needs y >= 0); y may be 1-D
    or 2-D (n_samples, n_outputs); a (n_samples, 1) y is raveled with a
    DataConversionWarning. Other parameters as :class:`MLPClassifier`
    (without class_weight).
    """

    _stratify = False
    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 n_threads=None):
        self.loss = loss
        self._set_common(hidden_layer_sizes, activation, solver, alpha, batch_size,
                         learning_rate, learning_rate_init, power_t, max_iter, shuffle,
                         random_state, tol, verbose, warm_start, momentum, nesterovs_momentum,
                         early_stopping, validation_fraction, beta_1, beta_2, epsilon,
                         n_iter_no_change, max_fun, n_threads)

    def _out_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _c_loss(self):
        return "mse"

    def _loss_scales(self):
        """fastnn's mse is mean((z - t)²) over rows and outputs (gradient 2 r / (n D));
        sklearn reports half of it and uses the gradient r / n of the sum."""
        return 0.5, 0.5 * self.n_outputs_

    def _c_target(self, yb):
        return np.ascontiguousarray(yb, dtype=np.float32)

    def _val_target(self, y_val):
        return y_val

    def _row_weights(self, y, sample_weight):
        return sample_weight

    @staticmethod
    def _score_function(y, y_pred, sample_weight=None):
        return r2_score(y, y_pred, sample_weight=sample_weight)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def predict(self, X):
        """Predictions (n_samples,) for one output, else (n_samples, n_outputs)."""
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    # like scikit-learn's MLPRegressor, whose available_if test is always true
    @available_if(lambda est: True)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over X, y (max_iter and the stopping rule do not apply)."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)
