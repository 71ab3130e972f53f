"""Per-sample shapes of the arrays a layer sees layer by layer.

The Python API moves batches as (N, features) rows, whatever the per-sample
shape (a model's ``input_shape`` may be (C, H, W)); a layer that needs the
shape (pooling, normalization) views the rows as (N, *shape). A layer used
on its own takes (N, *shape) arrays as PyTorch's do.
"""
import numpy as np


def sample_shape(layer, x):
    """The per-sample shape of x for `layer`: its model's slot shape when it is in a
    model (x may then be (N, features) rows), else x.shape[1:]."""
    owner = layer._owner
    shape = owner._shapes[layer._index] if owner is not None else None
    if shape is None:
        if x.ndim < 2:
            raise ValueError(f"{layer!r} expects a batch (N, ...), got shape {x.shape}")
        return tuple(x.shape[1:])
    if tuple(x.shape[1:]) != tuple(shape) and \
            (x.ndim != 2 or x.shape[1] != int(np.prod(shape))):
        raise ValueError(f"{layer!r} expects inputs of per-sample shape {tuple(shape)}, got "
                         f"shape {x.shape}")
    return tuple(shape)


def as_batch(x, shape):
    """x viewed as (N, *shape) (C-contiguous: float32 rows from the model)."""
    return np.ascontiguousarray(x).reshape((x.shape[0],) + tuple(shape))


def like_input(y, x):
    """y (N, *out) returned in x's layout: rows (N, features) when x was rows."""
    return y.reshape(y.shape[0], -1) if x.ndim == 2 and y.ndim != 2 else y

