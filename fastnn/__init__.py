"""fastnn: fast CPU training of dense neural networks.

C + OpenMP kernels under a small NumPy API: PyTorch's names, Keras's loop::

    import fastnn as fnn
    X, y = fnn.datasets.load_digits()
    model = fnn.Sequential(fnn.Linear(64, 128), fnn.ReLU(), fnn.Linear(128, 10), seed=0)
    model.fit(X, y, loss=fnn.CrossEntropyLoss(), optimizer=fnn.Adam(model.parameters()))

Every model runs on a backend: "c" (default, ``fastnn._core``) or "numpy"
(``fastnn.reference``, the pure-NumPy twin). ``import fastnn`` works (and the
NumPy backend is usable) even where the C extension is not built: it is
imported when a model, optimizer or thread call first needs it -- or at import
when threadpoolctl is installed, so that threadpoolctl can see its threads.
"""
__version__ = "0.2.0"

from . import datasets
from ._backend import get_backend, set_default_backend
from .callbacks import (Callback, CSVLogger, EarlyStopping, History, LearningRateScheduler,
                        ModelCheckpoint, TerminateOnNaN)
from . import callbacks                    # callbacks.ReduceLROnPlateau: Keras's
from .data import batches, train_test_split
from .io import FormatError, load, save
from .nn import (GELU, Dropout, LeakyReLU, Linear, Module, Parameter, ReLU, Sequential,
                 Sigmoid, Softmax, Tanh)
from .nn import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d,
                 Flatten, LayerNorm, MaxPool2d)
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MAELoss, MSELoss
from .optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop, clip_grad_norm_
from .plot import plot_history             # imports matplotlib on first call only
from .schedules import (CosineAnnealingLR, ExponentialLR, LRScheduler,
                        ReduceLROnPlateau, StepLR)
from . import onnx                         # imports the onnx package on first export only
from . import distributed                  # imports mpi4py when MPI() is first built
from .threads import get_num_threads, set_num_threads
from .torch_interop import from_torch, to_torch   # imports torch on first call only


def get_include():
    """Directory of ``fastnn.h``, the header of the embeddable C library
    (see :mod:`fastnn.config`; raises if the library was not built)."""
    from .config import get_include
    return get_include()


def get_library_dir():
    """Directory of ``libfastnn.so`` / ``libfastnn.a`` (see :mod:`fastnn.config`)."""
    from .config import get_library_dir
    return get_library_dir()


__all__ = [
    "Sequential", "Module", "Parameter", "Linear", "ReLU", "LeakyReLU", "Sigmoid", "Tanh",
    "GELU", "Softmax", "Dropout",
    "Conv1d", "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Flatten", "BatchNorm1d", "BatchNorm2d",
    "LayerNorm",
    "MSELoss", "L1Loss", "MAELoss", "HuberLoss", "BCEWithLogitsLoss", "CrossEntropyLoss",
    "Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "clip_grad_norm_",
    "History", "Callback", "EarlyStopping", "TerminateOnNaN", "ModelCheckpoint", "CSVLogger",
    "LearningRateScheduler", "callbacks",
    "LRScheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR", "ReduceLROnPlateau",
    "plot_history", "onnx", "from_torch", "to_torch",
    "batches", "train_test_split",
    "load", "save", "FormatError",
    "datasets",
    "set_num_threads", "get_num_threads",
    "get_backend", "set_default_backend",
    "get_include", "get_library_dir",
    "__version__",
]
