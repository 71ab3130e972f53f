"""Central differences, the one numerical gradient the gradient-check tests share."""
import numpy as np

EPS = 1e-6


def numeric_grad(f, x, h=EPS):
    """Central differences of the scalar f() with respect to x (perturbed in place,
    restored): (f(x + h e_i) - f(x - h e_i)) / 2h for each element i."""
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        fp = f()
        flat[i] = old - h
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * h)
    return g
