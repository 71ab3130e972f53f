"""The NumPy reference backend: fastnn's kernels in plain, readable NumPy.

Same functions, signatures and semantics as the C bridge :mod:`fastnn._core`
(outputs first, dx overwritten, dw/db accumulated, losses return a float),
one module per C file. It is the correctness oracle of the tests and works in
any floating dtype: float64 for gradient checks, float32 to compare with C.
"""
import operator

from .activations import (gelu_backward, gelu_forward, leaky_relu_backward,
                          leaky_relu_forward, relu_backward, relu_forward,
                          sigmoid_backward, sigmoid_forward, softmax_backward,
                          softmax_forward, tanh_backward, tanh_forward)
from .conv import conv1d_backward, conv1d_forward, conv2d_backward, conv2d_forward
from .dense import dense_backward, dense_forward
from .sparse import csr_dense_backward, csr_dense_forward
from .finite import all_finite
from .dropout import dropout_backward, dropout_forward, dropout_key
from .gemm import sgemm
from .permutation import permutation
from .norm import (batch_norm_backward, batch_norm_forward, layer_norm_backward,
                   layer_norm_forward)
from .pool import (adaptive_avg_pool2d_backward, adaptive_avg_pool2d_forward,
                   avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward,
                   max_pool2d_forward)
from .losses import (bce_with_logits_loss, cross_entropy_loss, huber_loss, mae_loss,
                     mse_loss)
from .optim import (adagrad_update, adam_update, clip_grad_norm, rmsprop_update,
                    sgd_update)

NAME = "numpy"


def get_num_threads():
    """The reference is single-threaded: always 1."""
    return 1


def set_num_threads(n):
    """Accepted for interface parity (n >= 0, 0 = default); has no effect."""
    n = operator.index(n)
    if n < 0:
        raise ValueError(f"number of threads must be >= 0, got {n}")
