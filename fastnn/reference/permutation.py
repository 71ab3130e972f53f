"""The C core's seeded permutation (csrc/permutation.c), in NumPy and Python ints.

Fisher-Yates front to back: position i (0 .. n-2) swaps with i + r_i, r_i =
floor(u_i (n - i) / 2^64), u_i the i-th output of splitmix64 seeded with
`key`; a draw whose low product word is below 2^64 mod (n - i) is replaced by
the next output of a second splitmix64 stream seeded with splitmix64(~key)
(Lemire's rejection: every r_i exactly uniform). Same permutation as the C
kernel for every (n, key).
"""
import operator

import numpy as np

from .dropout import _M64, _splitmix64, _splitmix64_scalar

_GAMMA = 0x9E3779B97F4A7C15


def permutation(order, key):
    """order (n,) int64 = the permutation of 0..n-1 drawn from `key`."""
    if not isinstance(order, np.ndarray) or order.dtype != np.int64 or order.ndim != 1:
        raise TypeError("order must be a 1-D int64 numpy.ndarray")
    key = operator.index(key) & _M64
    n = len(order)
    with np.errstate(over="ignore"):
        states = np.uint64(key) + np.arange(n, dtype=np.uint64) * np.uint64(_GAMMA)
    draws = _splitmix64(states).tolist()
    perm = list(range(n))
    k2 = _splitmix64_scalar(~key & _M64)
    for i in range(n - 1):
        s = n - i
        prod = draws[i] * s
        if prod & _M64 < s:
            t = ((1 << 64) - s) % s   # 2^64 mod s
            while prod & _M64 < t:
                prod = _splitmix64_scalar(k2) * s
                k2 = (k2 + _GAMMA) & _M64
        j = i + (prod >> 64)
        perm[i], perm[j] = perm[j], perm[i]
    order[:] = perm
