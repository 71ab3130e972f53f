"""Save and load models: one file, no pickle, atomic writes.

The file format (version 2) is the C library's (its table is at the top of
csrc/model_io.c): fixed-size little-endian records for the layout, the
float32 parameters and buffers, the seed, JSON metadata for Python, and a
SHA-256 of everything before it. A C program linked with libfastnn loads
the same file (``fnn_model_load``). Files of format 1 (fastnn 0.1, a JSON
header) still load.

Loading builds only the layer classes of :mod:`fastnn.nn.registry`; nothing
from the file is executed. Any defect (truncation, foreign file, unknown
version, checksum mismatch, unknown op, layout mismatch) raises
:class:`FormatError`, a ValueError naming the reason. Writing goes to a
temporary file beside the target, is fsynced and renamed over it: a crash
at any moment leaves the old file or the new one (fastnn/fileformat.py).
"""
from .fileformat import FORMAT_VERSION, MAGIC, FormatError
from .nn import Sequential

__all__ = ["save", "load", "FormatError", "MAGIC", "FORMAT_VERSION"]


def save(model, path):
    """Write `model` (a Sequential) to `path` atomically."""
    if not isinstance(model, Sequential):
        raise TypeError(f"save expects a fastnn Sequential, got {type(model).__name__}")
    model.save(path)


def load(path, backend=None):
    """Read a model written by :func:`save` (or C's fnn_model_save); a Sequential."""
    return Sequential.load(path, backend=backend)
