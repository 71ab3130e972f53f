"""The networks the command line builds: its activation-name table, the
dense-MLP builder shared by ``demo``, ``train`` and ``bench``, and the small
CNN builder of ``demo --model cnn`` and ``train --conv``."""
import fastnn as fnn
from fastnn.nn import registry

# --activation name -> layer class: the layer registry's table
ACTIVATIONS = registry.ACTIVATIONS


def build_mlp(sizes, activation="relu", dropout=0.0, **kwargs):
    """A Sequential of Linear layers of `sizes` (inputs, hidden..., outputs)
    with the activation named `activation` between them, none after the last,
    and Dropout(`dropout`) after each activation when `dropout` > 0; `kwargs`
    (seed, backend) go to :class:`fastnn.Sequential`."""
    act = ACTIVATIONS[activation]
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [fnn.Linear(n_in, n_out), act()] + ([fnn.Dropout(dropout)] if dropout > 0 else [])
    return fnn.Sequential(*layers[:len(layers) - (2 if dropout > 0 else 1)], **kwargs)


def build_cnn(image_shape, conv, hidden, n_out, activation="relu", dropout=0.0, **kwargs):
    """A small CNN on (C, H, W) images: a 3x3 convolution (padding 1) and the
    activation per entry of `conv` (output channels), a 2x2 max pool after every
    second convolution and after the last (while the image is at least 2x2),
    then Flatten and an MLP of `hidden` sizes to `n_out` outputs, with Dropout
    (`dropout` > 0) before each Linear. `kwargs` (seed, backend) go to
    :class:`fastnn.Sequential`."""
    act = ACTIVATIONS[activation]
    c, h, w = image_shape
    layers = []
    for k, ch in enumerate(conv):
        layers += [fnn.Conv2d(c, ch, 3, padding=1), act()]
        c = ch
        if (k % 2 == 1 or k == len(conv) - 1) and h >= 2 and w >= 2:
            layers.append(fnn.MaxPool2d(2))
            h, w = h // 2, w // 2
    layers.append(fnn.Flatten())
    sizes = [c * h * w] + list(hidden) + [n_out]
    for i, (n_in, n_o) in enumerate(zip(sizes[:-1], sizes[1:])):
        if dropout > 0:
            layers.append(fnn.Dropout(dropout))
        layers.append(fnn.Linear(n_in, n_o))
        if i < len(sizes) - 2:
            layers.append(act())
    return fnn.Sequential(*layers, input_shape=tuple(image_shape), **kwargs)


def describe(model):
    """A one-line sketch of a network, e.g. ``conv32-conv32-pool-512-128-10``."""
    parts = []
    for layer in model.layers:
        name = type(layer).__name__
        if name == "Conv2d":
            parts.append(f"conv{layer.out_channels}")
        elif name == "MaxPool2d":
            parts.append("pool")
        elif name == "Linear":
            if not parts or not parts[-1].isdigit():
                parts.append(str(layer.in_features))
            parts.append(str(layer.out_features))
    return "-".join(parts)
