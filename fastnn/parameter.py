"""Parameter: a named view into a model's flat parameter and gradient buffers."""

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
    ``requires_grad`` is informational for now: every parameter trains.
    Pickling a Parameter pickles its owner and finds it there again by name,
    so an optimizer pickled with its model keeps updating that model.
    """
    __slots__ = ("name", "data", "grad", "flat", "flat_grad", "offset", "backend", "owner")

    def __init__(self, name, data, grad, flat=None, flat_grad=None, offset=0, backend=None,
                 owner=None):
        self.name, self.data, self.grad = name, data, grad
        self.flat, self.flat_grad, self.offset, self.backend = flat, flat_grad, offset, backend
        self.owner = owner

    @property
    def shape(self):
        return self.data.shape

    def __reduce__(self):
        if self.owner is None:
            raise TypeError(f"cannot pickle {self!r}: it belongs to no model")
        return _parameter_of, (self.owner, self.name)

    def __repr__(self):
        return f"Parameter({self.name!r}, shape={self.data.shape})"
