"""all_finite: the reference of csrc/finite.c."""
import numpy as np


def all_finite(x):
    """True if x holds no NaN or infinity."""
    return bool(np.isfinite(x).all())
