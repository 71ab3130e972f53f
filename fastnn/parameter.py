"""Parameter: a named view into a model's flat parameter and gradient buffers."""
import numpy as np

__all__ = ["Parameter"]


def _parameter_of(owner, name):
    """The Parameter called `name` of `owner` (a model or a standalone layer):
    how a pickled Parameter is found again in its unpickled owner."""
    for n, p in owner.named_parameters():
        if n == name:
            return p
    raise KeyError(f"{type(owner).__name__} has no parameter {name!r}")


class Parameter:
    """A named parameter: ``data`` and ``grad`` are views into its owner's flat buffers.

    ``offset`` is the position of ``data`` in ``flat``/``flat_grad`` (the whole
    buffers), ``backend`` the module optimizers use to update it and
    ``owner`` the model (or standalone layer) whose buffers these are.
    ``requires_grad`` (default True): set it to False to freeze the parameter
    (PyTorch's flag): optimizers -- the fused C step and epoch too -- then leave
    its values and its optimizer state (momentum, Adam's moments) bitwise
    unchanged and leave it out of gradient clipping (see fastnn/optim.py
    ``_Frozen``); gradients still flow through it to earlier layers.
    Pickling a Parameter pickles its owner and finds it there again by name,
    so an optimizer pickled with its model keeps updating that model.
    """
    __slots__ = ("name", "data", "grad", "flat", "flat_grad", "offset", "backend", "owner",
                 "_requires_grad")

    def __init__(self, name, data, grad, flat=None, flat_grad=None, offset=0, backend=None,
                 owner=None):
        self.name, self.data, self.grad = name, data, grad
        self.flat, self.flat_grad, self.offset, self.backend = flat, flat_grad, offset, backend
        self.owner = owner
        self._requires_grad = True

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{self.name}: requires_grad must be a bool, got {value!r}")
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad=True):
        """Set requires_grad in place and return the parameter (PyTorch)."""
        self.requires_grad = requires_grad
        return self

    @property
    def shape(self):
        return self.data.shape

    def __reduce__(self):
        if self.owner is None:
            raise TypeError(f"cannot pickle {self!r}: it belongs to no model")
        return _parameter_of, (self.owner, self.name)

    def __repr__(self):
        return f"Parameter({self.name!r}, shape={self.data.shape})"
