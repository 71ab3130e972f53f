"""Save and load models: one file, no pickle, atomic writes.

File format, version 1 (all integers little-endian)::

    offset  size  content
    0       8     magic b"\\x89FNN\\r\\n\\x1a\\n" (PNG-style: catches text-mode and
                  truncation damage)
    8       4     uint32 format version (1)
    12      8     uint64 H, length of the header
    20      H     header, UTF-8 JSON: {"fastnn_version", "dtype": "<f4",
                  "layers": [{"class": "Linear", "config": {...}}, ...], "seed",
                  "parameters": [{"name", "offset", "shape"}, ...], "num_parameters": P,
                  optional "metadata": ``model.metadata``, any JSON value (the
                  command line stores its feature scaling and labels there)}
    20+H    4P    the flat parameter buffer, float32 little-endian
    end-32  32    SHA-256 of every byte before it

Loading reads the JSON with ``json`` and builds only the layer classes named
in ``LAYERS``; nothing from the file is executed. Any defect (truncation,
foreign file, unknown version, checksum mismatch, unknown layer, layout
mismatch) raises :class:`FormatError`, a ValueError naming the reason.

Writing goes to a temporary file in the target's directory, is flushed and
fsynced, then renamed over the target with ``os.replace`` (atomic on POSIX
and Windows within one filesystem) and the directory is fsynced: a crash at
any moment leaves either the old file or the new one, never a mix. On an
exception the temporary file is removed. The new file gets the old file's
permission bits, or 0o644.

Temporary files are named ``.<name>.fnn-tmp-<pid>-XXXXXXXX`` next to the
target. A process killed while saving (SIGKILL, power loss) leaves its one
behind; the next successful save to the same target removes every such file
whose writer process no longer exists (files of live processes -- a
concurrent save -- are left alone).
"""
import hashlib
import json
import os
import struct
import sys
import tempfile

import numpy as np

from . import layers as L

__all__ = ["save", "load", "FormatError", "MAGIC", "FORMAT_VERSION"]

MAGIC = b"\x89FNN\r\n\x1a\n"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sIQ")
_DIGEST = 32
LAYERS = {cls.__name__: cls for cls in (L.Linear, L.ReLU, L.LeakyReLU, L.Sigmoid, L.Tanh,
                                        L.GELU, L.Softmax, L.Dropout)}


class FormatError(ValueError):
    """A file is not a valid fastnn model file (the message says why)."""


def _encode(model):
    """The file's content as a list of byte strings."""
    from . import __version__
    layout, P = L.param_layout(model.layers)
    header = {
        "fastnn_version": __version__, "dtype": "<f4",
        "layers": [{"class": type(layer).__name__, "config": layer.config()}
                   for layer in model.layers],
        "seed": model.seed if isinstance(model.seed, int) else None,
        "parameters": [{"name": f"{i}.{name}", "offset": off, "shape": list(shape)}
                       for i, name, off, shape in layout],
        "num_parameters": P,
    }
    if getattr(model, "metadata", None) is not None:   # e.g. the CLI's preprocessing
        header["metadata"] = model.metadata
    for entry in header["layers"]:
        if entry["class"] not in LAYERS:
            raise TypeError(f"cannot save layer {entry['class']}: only built-in layers "
                            f"({', '.join(LAYERS)}) can be saved")
    try:
        hbytes = json.dumps(header, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise TypeError(f"model.metadata must be JSON-serialisable: {e}") from None
    parts = [_PREFIX.pack(MAGIC, FORMAT_VERSION, len(hbytes)), hbytes,
             model.flat_params.astype("<f4").tobytes()]
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return parts + [digest.digest()]


def _fsync_dir(directory):
    if sys.platform.startswith("win"):
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tmp_prefix(name):
    return f".{name}.fnn-tmp-"


def _remove_stale_temps(directory, name):
    """Remove temporary files of earlier saves to `name` whose process is gone."""
    if sys.platform.startswith("win"):
        return
    prefix = _tmp_prefix(name)
    try:
        entries = [e for e in os.listdir(directory) if e.startswith(prefix)]
    except OSError:
        return
    for entry in entries:
        try:
            pid = int(entry[len(prefix):].split("-", 1)[0])
            os.kill(pid, 0)            # raises ProcessLookupError if pid is gone
        except ProcessLookupError:
            try:
                os.unlink(os.path.join(directory, entry))
            except OSError:
                pass
        except (ValueError, OSError):  # not ours, or a live process of another user
            pass


def save(model, path):
    """Write `model` (a Sequential) to `path` atomically (see the module doc)."""
    if not isinstance(model, L.Sequential):
        raise TypeError(f"save expects a fastnn Sequential, got {type(model).__name__}")
    path = os.path.abspath(os.fspath(path))
    directory, name = os.path.split(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot save to {path}: it is a directory")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot save to {path}: directory {directory} does not exist")
    parts = _encode(model)
    mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f"{_tmp_prefix(name)}{os.getpid()}-")
    try:
        with os.fdopen(fd, "wb") as f:
            for part in parts:
                f.write(part)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(directory)
    _remove_stale_temps(directory, name)


def load(path, backend=None):
    """Read a model written by :func:`save`; returns a Sequential on `backend`."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < len(MAGIC):
        raise FormatError(f"{path}: file too short ({len(data)} bytes) to be a fastnn model")
    if data[:len(MAGIC)] != MAGIC:
        raise FormatError(f"{path}: not a fastnn model file (wrong magic bytes)")
    if len(data) < _PREFIX.size + _DIGEST:
        raise FormatError(f"{path}: file truncated ({len(data)} bytes)")
    magic, version, hlen = _PREFIX.unpack_from(data)
    if version != FORMAT_VERSION:
        raise FormatError(f"{path}: unsupported format version {version} "
                          f"(this fastnn reads version {FORMAT_VERSION})")
    if hashlib.sha256(data[:-_DIGEST]).digest() != data[-_DIGEST:]:
        raise FormatError(f"{path}: checksum mismatch: the file is truncated or corrupted")
    body = data[_PREFIX.size:-_DIGEST]
    if hlen > len(body):
        raise FormatError(f"{path}: header length {hlen} exceeds the file")
    try:
        header = json.loads(body[:hlen].decode("utf-8"))
        specs = [(entry["class"], entry["config"]) for entry in header["layers"]]
        params = header["parameters"]
        P = int(header["num_parameters"])
        seed = header.get("seed")
        metadata = header.get("metadata")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise FormatError(f"{path}: invalid header: {type(e).__name__}: {e}") from None
    layers = []
    for cls_name, config in specs:
        if cls_name not in LAYERS or not isinstance(config, dict):
            raise FormatError(f"{path}: unknown layer {cls_name!r}")
        try:
            layers.append(LAYERS[cls_name](**config))
        except (TypeError, ValueError) as e:
            raise FormatError(f"{path}: invalid configuration for {cls_name}: {e}") from None
    # check the layout against the file BEFORE allocating anything: a crafted header
    # naming Linear(10**6, 10**6) must be a FormatError, not a 4 TB allocation
    try:
        layout, expected_P = L.param_layout(layers)
        stored = [(p["name"], p["offset"], tuple(p["shape"])) for p in params]
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise FormatError(f"{path}: invalid parameter layout: {e}") from None
    if stored != [(f"{i}.{n}", off, shape) for i, n, off, shape in layout] or P != expected_P:
        raise FormatError(f"{path}: parameter layout does not match the architecture")
    payload = body[hlen:]
    if len(payload) != 4 * P:
        raise FormatError(f"{path}: expected {4 * P} bytes of parameters, found {len(payload)}")
    try:
        model = L.Sequential(*layers, seed=seed if isinstance(seed, int) else 0, backend=backend)
    except (TypeError, ValueError) as e:
        raise FormatError(f"{path}: invalid architecture: {e}") from None
    model.flat_params[...] = np.frombuffer(payload, dtype="<f4")
    if metadata is not None:
        model.metadata = metadata
    return model
