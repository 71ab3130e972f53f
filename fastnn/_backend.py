"""Backends: modules that implement fastnn's kernels with one set of signatures.

``"c"`` is :mod:`fastnn._core` (the C core through Cython); ``"numpy"`` is
:mod:`fastnn.reference` (plain NumPy, the correctness oracle). Both expose the
same functions with the same argument order -- outputs first, then inputs,
then scalars -- so every layer, loss and optimizer runs unchanged on either::

    backend = fastnn.get_backend("numpy")
    backend.dense_forward(y, x, w, b)

The default backend is ``"c"``; change it with :func:`set_default_backend` or
per model with ``Sequential(..., backend="numpy")``.
"""
import importlib

BACKENDS = ("c", "numpy")
_MODULES = {"c": "fastnn._core", "numpy": "fastnn.reference"}
_default = "c"

# Every backend exposes exactly these functions (tests check both).
FUNCTIONS = (
    "get_num_threads", "set_num_threads", "all_finite",
    "sgemm",
    "dense_forward", "dense_backward",
    "csr_dense_forward", "csr_dense_backward",
    "relu_forward", "relu_backward",
    "leaky_relu_forward", "leaky_relu_backward",
    "sigmoid_forward", "sigmoid_backward",
    "tanh_forward", "tanh_backward",
    "gelu_forward", "gelu_backward",
    "softmax_forward", "softmax_backward",
    "dropout_key", "dropout_forward", "dropout_backward",
    "permutation",
    "max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward",
    "adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward",
    "batch_norm_forward", "batch_norm_backward", "layer_norm_forward", "layer_norm_backward",
    "conv2d_forward", "conv2d_backward", "conv1d_forward", "conv1d_backward",
    "mse_loss", "mae_loss", "huber_loss", "bce_with_logits_loss", "cross_entropy_loss",
    "sgd_update", "adam_update", "rmsprop_update", "adagrad_update", "clip_grad_norm",
)


def get_backend(name=None):
    """Return the backend module called `name` ("c" or "numpy"; None: the default).

    A module passed in is returned as it is.
    """
    if name is None:
        name = _default
    if not isinstance(name, str):
        if hasattr(name, "NAME"):
            return name
        raise TypeError(f"backend must be 'c' or 'numpy', got {name!r}")
    if name not in _MODULES:
        raise ValueError(f"unknown backend {name!r}; valid backends: {', '.join(BACKENDS)}")
    return importlib.import_module(_MODULES[name])


def set_default_backend(name):
    """Set the backend used by models, losses and optimizers created afterwards."""
    global _default
    get_backend(name)  # validates
    _default = name


def get_default_backend():
    """Name of the current default backend."""
    return _default
