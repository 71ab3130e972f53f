"""Model file formats as bytes: encode version 2, decode versions 1 and 2, write atomically.

This module is the byte level only: it imports the standard library and NumPy,
no other part of fastnn, and knows nothing of layers or ops (``fastnn.io``
turns what :func:`decode` returns into a model, and a model into what
:func:`encode_v2` takes).

Version 2 (written by :func:`encode_v2` and by ``fnn_model_save`` in C; its
specification is the comment at the top of ``csrc/model_io.c``). All integers
little-endian, floats IEEE binary32 little-endian::

    offset   size  content
    0        8     magic b"\\x89FNN\\r\\n\\x1a\\n"
    8        4     u32 format version (2)
    12       4     u32 header size (80)
    16       4     u32 L, number of nodes (1..65536)
    20       4     u32 input ndim (1..3)
    24       24    i64 input dim[3] (dim[0..ndim) >= 1, the rest 0)
    48       8     u64 seed
    56       8     i64 P, number of parameters (>= 0)
    64       8     i64 B, number of buffers (>= 0)
    72       8     i64 M, metadata length (0..16 MiB)
    80       160L  node records: 24-byte NUL-padded op name; i32 in[0], in[1],
                   out, reserved (0); 120 bytes of attributes (ATTR_FIELDS)
    ...      M     metadata (fastnn.io writes UTF-8 JSON there)
    ...      4P    parameters, float32
    ...      4B    buffers, float32
    end-32   32    SHA-256 of every byte before it

and the file's length is exactly 80 + 160 L + M + 4 P + 4 B + 32.

Version 1 (written by fastnn 0.1's ``fastnn.io``; read here, never written)::

    offset  size  content
    0       8     magic (as above)
    8       4     uint32 format version (1)
    12      8     uint64 H, length of the header
    20      H     header, UTF-8 JSON: {"fastnn_version", "dtype": "<f4", "layers":
                  [{"class", "config"}, ...], "seed", "parameters": [{"name",
                  "offset", "shape"}, ...], "num_parameters": P, optional "metadata"}
    20+H    4P    the flat parameter buffer, float32 little-endian
    end-32  32    SHA-256 of every byte before it

Every defect of a file raises :class:`FormatError` (a ValueError) naming the
file and the reason. Sizes are checked against the length of the data before
anything is built, so a crafted header cannot cause a large allocation: the
arrays :func:`decode` returns are views into the data, not copies.

Writing (:func:`write_atomic`) goes to a temporary file in the target's
directory, which is flushed and fsynced, then renamed over the target with
``os.replace`` (atomic on POSIX and Windows within one file system), and the
directory is fsynced: a crash at any moment leaves the old file or the new one.
On an exception the temporary file is removed and the old file is untouched.
The new file gets the old file's permission bits, or 0o644. Temporary files
are named ``.<name>.fnn-tmp-<pid>-XXXXXXXX`` (the C writer uses the same
names); a writer killed while saving leaves its one behind, and the next
successful save to the same target removes every such file whose process no
longer exists (a concurrent writer's file is left alone).
"""
import hashlib
import json
import operator
import os
import struct
import sys
import tempfile

import numpy as np

__all__ = ["FormatError", "MAGIC", "FORMAT_VERSION", "READ_VERSIONS", "ATTR_FIELDS",
           "encode_v2", "decode", "write_atomic"]

MAGIC = b"\x89FNN\r\n\x1a\n"
FORMAT_VERSION = 2           # what encode_v2 writes
READ_VERSIONS = (1, 2)       # what decode reads
DIGEST_SIZE = 32
HEADER_SIZE = 80
NODE_SIZE = 160
NAME_MAX = 24                # FNN_NAME_MAX: op name bytes with the NUL
MAX_NODES = 65536
MAX_DIMS = 3                 # FNN_MAX_DIMS
MAX_METADATA = 16 << 20

# The fields of struct fnn_attrs (csrc/fastnn.h) in order, with struct codes:
# "2q" is an int64 pair (kernel, stride, padding, dilation: (h, w)).
ATTR_FIELDS = (
    ("units", "q"), ("kernel", "2q"), ("stride", "2q"), ("padding", "2q"),
    ("dilation", "2q"), ("groups", "q"), ("axis", "q"),
    ("bias", "i"), ("init", "i"), ("flags", "i"), ("reserved", "i"),
    ("slope", "f"), ("p", "f"), ("eps", "f"), ("momentum", "f"),
)

_HEADER = struct.Struct("<8sIIII3qQqqq")
_NODE = struct.Struct("<24s4i" + "".join(code for _, code in ATTR_FIELDS))
_V1_PREFIX = struct.Struct("<8sIQ")
assert _HEADER.size == HEADER_SIZE and _NODE.size == NODE_SIZE


class FormatError(ValueError):
    """A file is not a valid fastnn model file (the message says why)."""


# ------------------------------------------------------------------- encode

def _index(value, what, lo, hi):
    """value as an int in [lo, hi], else ValueError/TypeError naming `what`."""
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an integer, got {type(value).__name__}") from None
    if not lo <= v <= hi:
        raise ValueError(f"{what} = {v} is out of range [{lo}, {hi}]")
    return v


_I32 = (-2**31, 2**31 - 1)
_I64 = (-2**63, 2**63 - 1)


def _attr_values(attrs, where):
    """The flat list of attribute values of one node, in ATTR_FIELDS order."""
    if not isinstance(attrs, dict):
        raise TypeError(f"{where}: attrs must be a dict, got {type(attrs).__name__}")
    unknown = set(attrs) - {name for name, _ in ATTR_FIELDS}
    if unknown:
        raise ValueError(f"{where}: unknown attribute(s) {sorted(unknown)}; the fields are "
                         f"{[name for name, _ in ATTR_FIELDS]}")
    values = []
    for name, code in ATTR_FIELDS:
        v = attrs.get(name, 0)
        what = f"{where}: attribute {name}"
        if code == "2q":
            try:
                pair = (operator.index(v),) * 2        # an int n means (n, n)
            except TypeError:
                try:
                    pair = tuple(v)
                except TypeError:
                    raise TypeError(f"{what} must be an integer pair, got {v!r}") from None
            if len(pair) != 2:
                raise ValueError(f"{what} must be a pair of integers, got {v!r}")
            values += [_index(x, what, *_I64) for x in pair]
        elif code == "q":
            values.append(_index(v, what, *_I64))
        elif code == "i":
            values.append(_index(v, what, *(_I32 if name != "reserved" else (0, 0))))
        else:
            try:
                f = float(v)
                struct.pack("<f", f)
            except (TypeError, ValueError, OverflowError) as e:
                raise ValueError(f"{what} = {v!r} is not a float32: {e}") from None
            values.append(f)
    return values


def _f32_array(a, what):
    arr = np.asarray(a)
    if arr.dtype.kind != "f" or arr.dtype.itemsize != 4 or arr.ndim != 1:
        raise TypeError(f"{what} must be a 1-D float32 array, got {arr.dtype} with shape "
                        f"{arr.shape}")
    return arr.astype("<f4", copy=False)


def encode_v2(input_shape, nodes, params, buffers, seed, metadata=b""):
    """A version 2 file as a list of byte strings, the SHA-256 digest last.

    Args:
        input_shape: the per-sample input shape, 1 to 3 ints >= 1.
        nodes: 1 to 65536 dicts ``{"op": str, "in": (i0, i1), "out": int,
            "attrs": {field: value}}``; attrs names fields of ATTR_FIELDS
            (pairs for kernel, stride, padding, dilation, where an int n
            means (n, n)), a missing one is 0 and "reserved" must be 0.
            A missing "in" is (i, -1) and "out" i + 1 for node i (a chain).
        params, buffers: 1-D float32 arrays (P and B values).
        seed: 0 <= seed < 2**64.
        metadata: bytes, at most 16 MiB.

    Raises TypeError / ValueError (not FormatError) for what cannot be
    written. The result's length is 80 + 160 L + M + 4 P + 4 B + 32 bytes.
    """
    shape = tuple(input_shape)
    if not 1 <= len(shape) <= MAX_DIMS:
        raise ValueError(f"input_shape must have 1 to {MAX_DIMS} dimensions, got {shape}")
    dims = [_index(d, "input_shape dimension", 1, _I64[1]) for d in shape]
    nodes = list(nodes)
    if not 1 <= len(nodes) <= MAX_NODES:
        raise ValueError(f"a model file holds 1 to {MAX_NODES} nodes, got {len(nodes)}")
    params = _f32_array(params, "params")
    buffers = _f32_array(buffers, "buffers")
    seed = _index(seed, "seed", 0, 2**64 - 1)
    if isinstance(metadata, str) or not isinstance(metadata, (bytes, bytearray, memoryview)):
        raise TypeError(f"metadata must be bytes, got {type(metadata).__name__}")
    metadata = bytes(metadata)
    if len(metadata) > MAX_METADATA:
        raise ValueError(f"metadata is {len(metadata)} bytes; a model file holds at most "
                         f"{MAX_METADATA}")
    records = []
    for i, node in enumerate(nodes):
        op = node.get("op") if isinstance(node, dict) else None
        if not isinstance(op, str):
            raise TypeError(f"node {i}: a dict with a str 'op' expected, got {node!r}")
        name = op.encode("utf-8")
        if not 1 <= len(name) < NAME_MAX or b"\0" in name:
            raise ValueError(f"node {i}: op name {op!r} must be 1 to {NAME_MAX - 1} bytes "
                             f"without NUL")
        where = f"node {i} ({op})"
        ins = tuple(node.get("in", (i, -1)))
        if len(ins) != 2:
            raise ValueError(f"{where}: 'in' must be a pair of slots, got {ins!r}")
        i0, i1 = (_index(s, f"{where}: input slot", *_I32) for s in ins)
        out = _index(node.get("out", i + 1), f"{where}: output slot", *_I32)
        records.append(_NODE.pack(name, i0, i1, out, 0,
                                  *_attr_values(node.get("attrs", {}), where)))
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, HEADER_SIZE, len(nodes), len(dims),
                          *(dims + [0] * (MAX_DIMS - len(dims))), seed, params.size,
                          buffers.size, len(metadata))
    parts = [header, b"".join(records), metadata, params.tobytes(), buffers.tobytes()]
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return parts + [digest.digest()]


# ------------------------------------------------------------------- decode

def _short_f32(x):
    """The float32 value x as the shortest decimal that rounds back to the same
    float32 (0.1, not 0.10000000149011612), so that options read back as they
    were written; x itself where that does not hold (NaN payloads)."""
    f = np.float32(x)
    if np.isfinite(f):
        short = float(str(f))
        if np.float32(short).tobytes() == f.tobytes():
            return short
    return x


def decode(data, path="model data"):
    """Check and parse a model file's bytes; `path` names it in messages.

    Version 2: ``{"version": 2, "input_shape": tuple, "nodes": [{"op", "in",
    "out", "attrs"}, ...] (as encode_v2 takes them, every field present; a
    float attribute is the shortest decimal of its float32, e.g. 0.1),
    "params": float32 array (P), "buffers": float32 array (B), "seed": int,
    "metadata": bytes}``. Version 1: ``{"version": 1, "header": dict (the
    JSON header), "params": float32 array (num_parameters)}``. The arrays
    are read-only views into `data` when it is bytes.

    Raises FormatError for every defect: too short, wrong magic, another
    version, truncation or trailing bytes, a checksum mismatch, a bad header
    or node record. The op names and the layout (whether P and B fit the
    nodes) are not checked here: that needs the op table (fastnn.io, or
    fnn_model_load in C).
    """
    view = memoryview(data)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    n = len(view)
    if n < len(MAGIC):
        raise FormatError(f"{path}: file too short ({n} bytes) to be a fastnn model")
    if view[:len(MAGIC)] != MAGIC:
        raise FormatError(f"{path}: not a fastnn model file (wrong magic bytes)")
    if n < 12:
        raise FormatError(f"{path}: file truncated ({n} bytes)")
    version = struct.unpack_from("<I", view, 8)[0]
    if version == 1:
        return _decode_v1(view, path)
    if version == 2:
        return _decode_v2(view, path)
    raise FormatError(f"{path}: unsupported format version {version} (this fastnn reads "
                      f"versions {' and '.join(map(str, READ_VERSIONS))})")


def _decode_v1(view, path):
    n = len(view)
    if n < _V1_PREFIX.size + DIGEST_SIZE:
        raise FormatError(f"{path}: file truncated ({n} bytes)")
    _, _, hlen = _V1_PREFIX.unpack_from(view)
    if hashlib.sha256(view[:-DIGEST_SIZE]).digest() != view[-DIGEST_SIZE:]:
        raise FormatError(f"{path}: checksum mismatch: the file is truncated or corrupted")
    body = view[_V1_PREFIX.size:n - DIGEST_SIZE]
    if hlen > len(body):
        raise FormatError(f"{path}: header length {hlen} exceeds the file")
    try:
        header = json.loads(bytes(body[:hlen]).decode("utf-8"))
        if not isinstance(header, dict):
            raise TypeError(f"the header is a JSON {type(header).__name__}, not an object")
        P = int(header["num_parameters"])
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise FormatError(f"{path}: invalid header: {type(e).__name__}: {e}") from None
    payload = body[hlen:]
    if len(payload) != 4 * P:
        raise FormatError(f"{path}: expected {4 * P} bytes of parameters, found {len(payload)}")
    return {"version": 1, "header": header, "params": np.frombuffer(payload, dtype="<f4")}


def _decode_v2(view, path):
    n = len(view)
    if n < HEADER_SIZE + DIGEST_SIZE:
        raise FormatError(f"{path}: file truncated ({n} bytes; a version 2 header and "
                          f"checksum alone take {HEADER_SIZE + DIGEST_SIZE})")
    (_, _, hsize, L, ndim, d0, d1, d2, seed, P, B, M) = _HEADER.unpack_from(view)
    if hsize != HEADER_SIZE:
        raise FormatError(f"{path}: header size {hsize}, version 2 has {HEADER_SIZE}")
    if not 1 <= L <= MAX_NODES:
        raise FormatError(f"{path}: {L} nodes (a model has 1 to {MAX_NODES})")
    if not 1 <= ndim <= MAX_DIMS:
        raise FormatError(f"{path}: input ndim {ndim} out of range 1..{MAX_DIMS}")
    for k, v in enumerate((d0, d1, d2)):
        if (v < 1) if k < ndim else (v != 0):
            raise FormatError(f"{path}: input dim[{k}] = {v} (dims below ndim {ndim} are "
                              f">= 1, the rest 0)")
    if P < 0 or B < 0:
        raise FormatError(f"{path}: negative size ({P} parameters, {B} buffers)")
    if not 0 <= M <= MAX_METADATA:
        raise FormatError(f"{path}: metadata length {M} out of range 0..{MAX_METADATA}")
    size = HEADER_SIZE + NODE_SIZE * L + M + 4 * P + 4 * B + DIGEST_SIZE
    if size > 2**63 - 1:
        raise FormatError(f"{path}: {P} parameters and {B} buffers: too large for any file")
    if n != size:
        raise FormatError(f"{path}: {'file truncated' if n < size else 'trailing bytes'}: "
                          f"the file has {n} bytes, its header ({L} nodes, {M} metadata "
                          f"bytes, {P} parameters, {B} buffers) says {size}")
    if hashlib.sha256(view[:-DIGEST_SIZE]).digest() != view[-DIGEST_SIZE:]:
        raise FormatError(f"{path}: checksum mismatch: the file is truncated or corrupted")
    nodes, written = [], {0}
    for i, rec in enumerate(_NODE.iter_unpack(view[HEADER_SIZE:HEADER_SIZE + NODE_SIZE * L])):
        raw, i0, i1, out, reserved = rec[:5]
        nul = raw.find(b"\0")
        if nul < 0 or nul == 0 or raw[nul:].strip(b"\0"):
            why = ("not NUL-terminated within its 24 bytes" if nul < 0 else
                   "empty" if nul == 0 else "not NUL-padded (bytes after its NUL)")
            raise FormatError(f"{path}: node {i}: the op name is {why}")
        try:
            op = raw[:nul].decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(f"{path}: node {i}: the op name is not UTF-8") from None
        values, attrs = list(rec[5:]), {}
        for name, code in ATTR_FIELDS:
            if code == "2q":
                attrs[name] = (values.pop(0), values.pop(0))
            elif code == "f":
                attrs[name] = _short_f32(values.pop(0))
            else:
                attrs[name] = values.pop(0)
        if reserved != 0 or attrs["reserved"] != 0:
            raise FormatError(f"{path}: node {i} ({op}): a reserved field is not 0")
        # slots 0..L, each written once before it is read (as csrc/model_io.c)
        if (i0 not in written or (i1 != -1 and i1 not in written) or not 1 <= out <= L
                or out in written):
            raise FormatError(f"{path}: node {i} ({op}) reads slots ({i0}, {i1}) and writes "
                              f"slot {out}: a slot is out of range 0..{L}, read before it is "
                              f"written or written twice")
        written.add(out)
        nodes.append({"op": op, "in": (i0, i1), "out": out, "attrs": attrs})
    off = HEADER_SIZE + NODE_SIZE * L
    metadata = bytes(view[off:off + M])
    off += M
    params = np.frombuffer(view, dtype="<f4", count=P, offset=off)
    buffers = np.frombuffer(view, dtype="<f4", count=B, offset=off + 4 * P)
    return {"version": 2, "input_shape": (d0, d1, d2)[:ndim], "nodes": nodes,
            "params": params, "buffers": buffers, "seed": seed, "metadata": metadata}


# -------------------------------------------------------------------- write

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


def write_atomic(path, parts):
    """Write the byte strings `parts` to `path` atomically (see the module doc).

    Raises IsADirectoryError if path is a directory, FileNotFoundError if its
    directory does not exist, and whatever writing raises (OSError, or
    TypeError for a part that is not bytes) -- with the old file untouched
    and no temporary file left.
    """
    path = os.path.abspath(os.fspath(path))
    directory, name = os.path.split(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot save to {path}: it is a directory")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot save to {path}: directory {directory} does not exist")
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
