"""Parameter initialisation with the C core's counter-based draws (csrc/ops.c), in NumPy.

Conv (conv_init): every weight and bias (2 u_i - 1) / sqrt(fan_in), the
same draws in the same order (PyTorch's default bound).

Linear: w_i = (2 u_i - 1) a in float64, rounded to float32, with
u_i = (splitmix64(key + i) >> 11) 2^-53 and a = sqrt(6 / IN) (He) or
sqrt(6 / (IN + OUT)) (Xavier); the bias is 0. ``key`` is
``dropout_key(seed, node index, -1)``. The same bits as the C model's
initialisation, so a model is reproducible from its seed on either backend.
"""
import numpy as np

from .dropout import _M64, _splitmix64, dropout_key


def uniform(key, n):
    """n draws u_i in [0, 1) on a 2^-53 grid from the counter-based generator."""
    with np.errstate(over="ignore"):
        idx = np.arange(n, dtype=np.uint64) + np.uint64(key & _M64)
    return (_splitmix64(idx) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def linear_init(params, in_features, out_features, bias, he, seed, index):
    """Fill params (IN*OUT [+ OUT]) of a linear node: He (he=True) or Xavier weights."""
    bound = np.sqrt(6.0 / in_features) if he else np.sqrt(6.0 / (in_features + out_features))
    nw = in_features * out_features
    u = uniform(dropout_key(seed, index, -1), nw)
    params[:nw] = ((2.0 * u - 1.0) * bound).astype(np.float32)
    if bias:
        params[nw:nw + out_features] = 0.0


def conv_init(params, fan_in, nw, nb, seed, index):
    """Fill params (nw weights then nb biases) of a conv node as PyTorch's default,
    kaiming_uniform(a=sqrt(5)): every value U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    fan_in = C/groups * prod(kernel); draws u_0.. for the weights, then the bias."""
    bound = 1.0 / np.sqrt(float(fan_in))
    u = uniform(dropout_key(seed, index, -1), nw + nb)
    params[:nw + nb] = ((2.0 * u - 1.0) * bound).astype(np.float32)
