"""The networks the command line builds: its activation-name table and the
dense-MLP builder shared by ``demo``, ``train`` and ``bench``."""
import fastnn as fnn
from fastnn.nn import registry

# --activation name -> layer class: the layer registry's table
ACTIVATIONS = registry.ACTIVATIONS


def build_mlp(sizes, activation="relu", **kwargs):
    """A Sequential of Linear layers of `sizes` (inputs, hidden..., outputs)
    with the activation named `activation` between them, none after the last;
    `kwargs` (seed, backend) go to :class:`fastnn.Sequential`."""
    act = ACTIVATIONS[activation]
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [fnn.Linear(n_in, n_out), act()]
    return fnn.Sequential(*layers[:-1], **kwargs)
