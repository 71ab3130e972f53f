"""fastnn.fileformat: format 2 encode/decode round trips and its byte layout,
format 1 (fastnn 0.1) decoding, every damaged file a FormatError, atomic
writes; and a file written by Python loads in C and vice versa (with the C
model object in fastnn._core)."""
import base64
import hashlib
import json
import os
import re
import struct
import tracemalloc

import numpy as np
import pytest

from fastnn import fileformat as ff
from fastnn.fileformat import FormatError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# linear(4 -> 5, bias) -> relu -> linear(5 -> 3): 25 + 15 parameters
CHAIN = [{"op": "linear", "in": (0, -1), "out": 1, "attrs": {"units": 5, "bias": 1}},
         {"op": "relu", "in": (1, -1), "out": 2, "attrs": {}},
         {"op": "linear", "in": (2, -1), "out": 3, "attrs": {"units": 3}}]


def _params(n, seed=0):
    return np.random.default_rng(seed).normal(size=n).astype(np.float32)


def _file(nodes=CHAIN, shape=(4,), P=40, B=0, seed=7, metadata=b'{"k": 1}'):
    return b"".join(ff.encode_v2(shape, nodes, _params(P), _params(B, 1), seed, metadata))


def _rehash(data):
    body = bytes(data[:-32])
    return body + hashlib.sha256(body).digest()


def _edit(data, offset, fmt, value):
    """data with struct `fmt` at `offset` replaced, checksum recomputed."""
    b = bytearray(data)
    struct.pack_into(fmt, b, offset, value)
    return _rehash(b)


# ------------------------------------------------------------- round trips

def test_round_trip_every_field():
    attrs = {"units": 2**63 - 1, "kernel": (3, -2**63), "stride": 2, "padding": (0, 1),
             "dilation": (5, 6), "groups": -7, "axis": -1, "bias": 2**31 - 1,
             "init": -2**31, "flags": 9, "slope": -0.0, "p": float("inf"), "eps": 1e-5,
             "momentum": 0.1}
    nodes = [{"op": "x" * 23, "in": (0, 0), "out": 1, "attrs": attrs},
             {"op": "gelu", "in": (1, -1), "out": 2}]
    params = np.array([-0.0, np.nan, np.inf, -np.inf, 1e-45, 3.5], dtype=np.float32)
    params.view(np.uint32)[1] = 0x7fc12345                     # a NaN payload survives
    buffers = _params(3)
    meta = b"\x00\xff binary \x00"
    parts = ff.encode_v2((2, 3, 4), nodes, params, buffers, 2**64 - 1, meta)
    data = b"".join(parts)
    assert len(parts) == 6 and parts[-1] == hashlib.sha256(data[:-32]).digest()
    assert len(data) == 80 + 160 * 2 + len(meta) + 4 * 6 + 4 * 3 + 32
    d = ff.decode(data, "m.fnn")
    assert d["version"] == 2 and d["input_shape"] == (2, 3, 4) and d["seed"] == 2**64 - 1
    assert d["metadata"] == meta
    assert d["params"].tobytes() == params.tobytes()
    assert d["buffers"].tobytes() == buffers.tobytes()
    n0 = d["nodes"][0]
    assert n0["op"] == "x" * 23 and n0["in"] == (0, 0) and n0["out"] == 1
    assert n0["attrs"]["kernel"] == (3, -2**63) and n0["attrs"]["stride"] == (2, 2)
    # float32 attributes read back as the shortest decimal: 0.1, not 0.10000000149011612
    assert n0["attrs"]["momentum"] == 0.1 and n0["attrs"]["eps"] == 1e-5
    assert n0["attrs"]["p"] == float("inf")
    assert str(n0["attrs"]["slope"]) == "-0.0" and n0["attrs"]["reserved"] == 0
    assert [name for name, _ in ff.ATTR_FIELDS] == list(n0["attrs"])
    assert d["nodes"][1] == {"op": "gelu", "in": (1, -1), "out": 2,
                             "attrs": {name: (0, 0) if code == "2q" else 0
                                       for name, code in ff.ATTR_FIELDS}}
    # decode then encode gives the same bytes
    again = ff.encode_v2(d["input_shape"], d["nodes"], d["params"], d["buffers"], d["seed"],
                         d["metadata"])
    assert b"".join(again) == data
    # bytearray and memoryview inputs decode alike
    assert ff.decode(bytearray(data))["nodes"] == d["nodes"]
    assert ff.decode(memoryview(data))["seed"] == d["seed"]


@pytest.mark.parametrize("L", [1, 3, 65536])
def test_round_trip_sizes(L):
    nodes = [{"op": "relu"} for _ in range(L)]          # default slots: a chain
    data = b"".join(ff.encode_v2([7], nodes, np.zeros(0, np.float32),
                                 np.zeros(0, np.float32), 0, b""))
    assert len(data) == 80 + 160 * L + 32
    d = ff.decode(data)
    assert len(d["nodes"]) == L and d["nodes"][-1]["in"] == (L - 1, -1)
    assert d["params"].size == 0 and d["metadata"] == b""


def test_byte_layout_matches_the_table():
    """The offsets of the table in csrc/model_io.c, byte by byte."""
    data = _file(seed=0x1122334455667788, metadata=b"MMM")
    assert data[:8] == b"\x89FNN\r\n\x1a\n"
    assert struct.unpack_from("<IIII", data, 8) == (2, 80, 3, 1)
    assert struct.unpack_from("<3q", data, 24) == (4, 0, 0)
    assert struct.unpack_from("<Q", data, 48)[0] == 0x1122334455667788
    assert struct.unpack_from("<3q", data, 56) == (40, 0, 3)
    rec = data[80:240]
    assert rec[:24] == b"linear" + b"\0" * 18
    assert struct.unpack_from("<4i", rec, 24) == (0, -1, 1, 0)
    assert struct.unpack_from("<q", rec, 40)[0] == 5                       # units
    assert struct.unpack_from("<i", rec, 128)[0] == 1                      # bias
    assert data[80 + 3 * 160:80 + 3 * 160 + 3] == b"MMM"
    p = np.frombuffer(data, "<f4", 40, 80 + 3 * 160 + 3)
    np.testing.assert_array_equal(p, _params(40))
    assert len(data) == 80 + 3 * 160 + 3 + 160 + 32
    attrs = {"units": 1, "kernel": (2, 3), "stride": (4, 5), "padding": (6, 7),
             "dilation": (8, 9), "groups": 10, "axis": 11, "bias": 12, "init": 13,
             "flags": 14, "slope": 15.0, "p": 16.0, "eps": 17.0, "momentum": 18.0}
    rec = b"".join(ff.encode_v2((1,), [{"op": "a", "attrs": attrs}], np.zeros(0, np.float32),
                                np.zeros(0, np.float32), 0, b""))[80:240]
    assert struct.unpack_from("<11q", rec, 40) == tuple(range(1, 12))
    assert struct.unpack_from("<4i", rec, 128) == (12, 13, 14, 0)
    assert struct.unpack_from("<4f", rec, 144) == (15.0, 16.0, 17.0, 18.0)


def test_attr_fields_follow_struct_fnn_attrs():
    """ATTR_FIELDS has the names, types and order of struct fnn_attrs in csrc/fastnn.h."""
    with open(os.path.join(ROOT, "csrc", "fastnn.h")) as f:
        header = f.read()
    body = re.search(r"typedef struct fnn_attrs \{(.*?)\} fnn_attrs;", header, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    fields = []
    for ctype, names in re.findall(r"(int64_t|int32_t|float)\s+([^;]+);", body):
        for name in names.split(","):
            m = re.fullmatch(r"\s*(\w+)(?:\[(\d+)\])?\s*", name)
            code = {"int64_t": "q", "int32_t": "i", "float": "f"}[ctype]
            fields.append((m.group(1), (m.group(2) or "") + code))
    assert fields == list(ff.ATTR_FIELDS)
    assert struct.calcsize("<" + "".join(c for _, c in ff.ATTR_FIELDS)) == 120


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"shape": ()}, ValueError, "1 to 3"),
    ({"shape": (1, 2, 3, 4)}, ValueError, "1 to 3"),
    ({"shape": (0,)}, ValueError, "out of range"),
    ({"shape": (2.5,)}, TypeError, "integer"),
    ({"nodes": []}, ValueError, "1 to 65536"),
    ({"nodes": [{"op": ""}]}, ValueError, "op name"),
    ({"nodes": [{"op": "x" * 24}]}, ValueError, "op name"),
    ({"nodes": [{"op": "a\0b"}]}, ValueError, "op name"),
    ({"nodes": [{"in": (0, -1)}]}, TypeError, "'op'"),
    ({"nodes": [{"op": "relu", "attrs": {"unitz": 1}}]}, ValueError, "unknown attribute"),
    ({"nodes": [{"op": "relu", "attrs": {"units": 2**63}}]}, ValueError, "units"),
    ({"nodes": [{"op": "relu", "attrs": {"bias": 2**31}}]}, ValueError, "bias"),
    ({"nodes": [{"op": "relu", "attrs": {"reserved": 1}}]}, ValueError, "reserved"),
    ({"nodes": [{"op": "relu", "attrs": {"kernel": (1, 2, 3)}}]}, ValueError, "pair"),
    ({"nodes": [{"op": "relu", "attrs": {"slope": 1e39}}]}, ValueError, "float32"),
    ({"nodes": [{"op": "relu", "attrs": {"units": 1.5}}]}, TypeError, "integer"),
    ({"nodes": [{"op": "relu", "in": (0, 2**31)}]}, ValueError, "slot"),
    ({"seed": -1}, ValueError, "seed"),
    ({"seed": 2**64}, ValueError, "seed"),
    ({"metadata": "text"}, TypeError, "bytes"),
    ({"metadata": b"x" * (16 * 2**20 + 1)}, ValueError, "at most"),
    ({"params": np.zeros(3)}, TypeError, "float32"),
    ({"params": np.zeros((2, 2), np.float32)}, TypeError, "1-D"),
])
def test_encode_rejects_what_cannot_be_written(kwargs, exc, match):
    args = {"shape": (4,), "nodes": [{"op": "relu"}], "params": np.zeros(0, np.float32),
            "buffers": np.zeros(0, np.float32), "seed": 0, "metadata": b""}
    args.update(kwargs)
    with pytest.raises(exc, match=match) as info:
        ff.encode_v2(args["shape"], args["nodes"], args["params"], args["buffers"],
                     args["seed"], args["metadata"])
    assert not isinstance(info.value, FormatError)


# ------------------------------------------------------------ damaged files

def test_truncation_and_flips_everywhere():
    data = _file()
    for cut in range(len(data)):
        with pytest.raises(FormatError):
            ff.decode(data[:cut], "m.fnn")
    rng = np.random.default_rng(0)
    for pos in range(len(data)):
        b = bytearray(data)
        b[pos] ^= 1 << int(rng.integers(8))
        with pytest.raises(FormatError):
            ff.decode(bytes(b), "m.fnn")
    with pytest.raises(FormatError, match="trailing"):
        ff.decode(data + b"\0")
    with pytest.raises(FormatError, match="checksum"):
        ff.decode(data[:-40] + bytes([data[-40] ^ 1]) + data[-39:])


N0 = 80                         # the first node record
_V2_CASES = [
    (0, "<8s", b"\x89PNG\r\n\x1a\n", "magic"),
    (8, "<I", 3, "version 3"),
    (8, "<I", 0, "version 0"),
    (12, "<I", 81, "header size 81"),
    (16, "<I", 0, "0 nodes"),
    (16, "<I", 65537, "65537 nodes"),
    (16, "<I", 2**32 - 1, "4294967295 nodes"),
    (16, "<I", 65536, "truncated"),
    (20, "<I", 0, "ndim 0"),
    (20, "<I", 4, "ndim 4"),
    (24, "<q", 0, r"dim\[0\] = 0"),
    (24, "<q", -5, r"dim\[0\] = -5"),
    (32, "<q", 1, r"dim\[1\] = 1"),
    (56, "<q", 2**62, "too large"),
    (56, "<q", 2**61 - 1, "too large"),
    (56, "<q", 2**60, "truncated"),
    (56, "<q", -1, "negative"),
    (64, "<q", 2**62, "too large"),
    (64, "<q", 1, "truncated"),
    (72, "<q", 2**40, "metadata length"),
    (72, "<q", 16 * 2**20 + 1, "metadata length"),
    (72, "<q", -1, "metadata length"),
    (72, "<q", 3, "trailing"),
    (N0, "<24s", b"x" * 24, "not NUL-terminated"),
    (N0, "<B", 0, "empty"),
    (N0 + 10, "<B", 122, "NUL-padded"),
    (N0, "<7s", b"\xff\xfe\0\0\0\0\0", "UTF-8"),
    (N0 + 36, "<i", 1, "reserved"),
    (N0 + 140, "<i", 7, "reserved"),
    (N0 + 24, "<i", 7, "slot"),
    (N0 + 24, "<i", -1, "slot"),
    (N0 + 160 * 2 + 24, "<i", 3, "slot"),
    (N0 + 32, "<i", 2, "slot"),
    (N0 + 32, "<i", 0, "slot"),
]


@pytest.mark.parametrize("offset, fmt, value, match", _V2_CASES)
def test_crafted_v2_headers_and_records(offset, fmt, value, match):
    with pytest.raises(FormatError, match=match) as info:
        ff.decode(_edit(_file(), offset, fmt, value), "crafted.fnn")
    assert str(info.value).startswith("crafted.fnn: ")


@pytest.mark.parametrize("content, match", [
    (b"", "too short"), (b"\x89FNN", "too short"),
    (b"hello world, this is not a model file at all....", "magic"),
    (b"\x80\x04\x95" + b"\x00" * 60, "magic"),
    (b"\x89FNN\r\n\x1a\n\x02\x00", "truncated"),
    (b"\x89FNN\r\n\x1a\n\x02\x00\x00\x00" + b"\0" * 60, "truncated"),
])
def test_foreign_and_short_files(content, match):
    with pytest.raises(FormatError, match=match):
        ff.decode(content, "x.fnn")


@pytest.mark.parametrize("P", [2**28, 2**40, 2**60])
def test_absurd_sizes_allocate_nothing(P):
    """A header claiming huge sizes is rejected before anything big is built."""
    data = _edit(_file(), 56, "<q", P)
    tracemalloc.start()
    try:
        with pytest.raises(FormatError, match="truncated"):
            ff.decode(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_decoded_arrays_are_views_of_the_data():
    data = _file()
    d = ff.decode(data)
    assert d["params"].base is not None and not d["params"].flags.writeable
    assert d["params"].dtype == np.dtype("<f4")


# ------------------------------------------------------------------ format 1

# Written by fastnn 0.1.0's fastnn.io.save (format 1, commit 7edb7d1):
#   Sequential(Linear(4, 6), LeakyReLU(0.1), Dropout(0.2), Linear(6, 3, bias=False),
#              GELU(), Linear(3, 2), Softmax(), seed=5, backend="numpy"),
#   metadata {"note": ..., "labels": ["a", "b"]}
V1_FILE = base64.b64decode("""
iUZOTg0KGgoBAAAAngMAAAAAAAB7ImZhc3Rubl92ZXJzaW9uIjogIjAuMS4wIiwgImR0eXBlIjogIjxmNCIsICJs
YXllcnMiOiBbeyJjbGFzcyI6ICJMaW5lYXIiLCAiY29uZmlnIjogeyJpbl9mZWF0dXJlcyI6IDQsICJvdXRfZmVh
dHVyZXMiOiA2LCAiYmlhcyI6IHRydWUsICJpbml0IjogImF1dG8ifX0sIHsiY2xhc3MiOiAiTGVha3lSZUxVIiwg
ImNvbmZpZyI6IHsibmVnYXRpdmVfc2xvcGUiOiAwLjF9fSwgeyJjbGFzcyI6ICJEcm9wb3V0IiwgImNvbmZpZyI6
IHsicCI6IDAuMn19LCB7ImNsYXNzIjogIkxpbmVhciIsICJjb25maWciOiB7ImluX2ZlYXR1cmVzIjogNiwgIm91
dF9mZWF0dXJlcyI6IDMsICJiaWFzIjogZmFsc2UsICJpbml0IjogImF1dG8ifX0sIHsiY2xhc3MiOiAiR0VMVSIs
ICJjb25maWciOiB7fX0sIHsiY2xhc3MiOiAiTGluZWFyIiwgImNvbmZpZyI6IHsiaW5fZmVhdHVyZXMiOiAzLCAi
b3V0X2ZlYXR1cmVzIjogMiwgImJpYXMiOiB0cnVlLCAiaW5pdCI6ICJhdXRvIn19LCB7ImNsYXNzIjogIlNvZnRt
YXgiLCAiY29uZmlnIjoge319XSwgInNlZWQiOiA1LCAicGFyYW1ldGVycyI6IFt7Im5hbWUiOiAiMC53ZWlnaHQi
LCAib2Zmc2V0IjogMCwgInNoYXBlIjogWzQsIDZdfSwgeyJuYW1lIjogIjAuYmlhcyIsICJvZmZzZXQiOiAyNCwg
InNoYXBlIjogWzZdfSwgeyJuYW1lIjogIjMud2VpZ2h0IiwgIm9mZnNldCI6IDMwLCAic2hhcGUiOiBbNiwgM119
LCB7Im5hbWUiOiAiNS53ZWlnaHQiLCAib2Zmc2V0IjogNDgsICJzaGFwZSI6IFszLCAyXX0sIHsibmFtZSI6ICI1
LmJpYXMiLCAib2Zmc2V0IjogNTQsICJzaGFwZSI6IFsyXX1dLCAibnVtX3BhcmFtZXRlcnMiOiA1NiwgIm1ldGFk
YXRhIjogeyJub3RlIjogIndyaXR0ZW4gYnkgZmFzdG5uIDAuMS4wIChmaWxlIGZvcm1hdCB2ZXJzaW9uIDEpIiwg
ImxhYmVscyI6IFsiYSIsICJiIl19fQxCPz+pGUE/V8MZPUFRBr+z24u/iEWSvhmTZb5vko6/6HqNv1CCnD+OF78+
A3smv2orI75/rJQ/F195P1PbVz+C8Ia+bACMvMyX3T4etIm/U3MLPtJQD79QEW4/R6KIvwAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAF17tz49fD0/6JwLvzF4Sj9okD4/6YR2v7h51D7BYn+/+nXcO7S0Ab4/7xe/PEKzvkLIHD/887u+
N7Ezv7pGyz5sw9K9mQ4ZPyBXFL9tJ8q+WzEoP/e2fTxwMWU80/UTvwAAAAAAAAAAahmM24BLLadfSUStM69vdw0X
VikoQswkZ8qNVxA55oY=
""")
V1_PARAMS_SHA256 = "599bfcfea8fda8d8da5727883ae0a23b15b4c8bc1402aa684d05e68348adb802"


def test_decodes_a_file_of_fastnn_0_1():
    d = ff.decode(V1_FILE, "old.fnn")
    assert d["version"] == 1 and set(d) == {"version", "header", "params"}
    h = d["header"]
    assert h["fastnn_version"] == "0.1.0" and h["seed"] == 5 and h["num_parameters"] == 56
    assert [layer["class"] for layer in h["layers"]] == [
        "Linear", "LeakyReLU", "Dropout", "Linear", "GELU", "Linear", "Softmax"]
    assert h["metadata"]["labels"] == ["a", "b"]
    assert d["params"].dtype == np.dtype("<f4") and d["params"].size == 56
    assert hashlib.sha256(d["params"].tobytes()).hexdigest() == V1_PARAMS_SHA256


def _v1(header_bytes, payload=b"", version=1):
    """A format-1 file with a valid checksum around an arbitrary header."""
    body = struct.pack("<8sIQ", ff.MAGIC, version, len(header_bytes)) + header_bytes + payload
    return body + hashlib.sha256(body).digest()


def test_v1_truncation_and_flips():
    data = V1_FILE
    for cut in range(len(data)):
        with pytest.raises(FormatError):
            ff.decode(data[:cut])
    rng = np.random.default_rng(1)
    for pos in rng.permutation(len(data))[:300]:
        b = bytearray(data)
        b[pos] ^= 1 << int(rng.integers(8))
        with pytest.raises(FormatError):
            ff.decode(bytes(b))


@pytest.mark.parametrize("content, match", [
    (_v1(b'{"num_parameters": 0}', version=99), "version 99"),
    (_v1(b'{"num_parameters": 0}')[:-1] + b"\0", "checksum"),
    ((lambda d: d[:21] + b"X" + d[22:])(_v1(b'{"num_parameters": 1}', b"\0" * 4)), "checksum"),
    (struct.pack("<8sIQ", ff.MAGIC, 1, 10**6) + b"{}", "truncated"),
    (_v1(b"[" * 100000 + b"]" * 100000), "invalid header"),     # RecursionError in json
    (_v1(b'["not", "an", "object"]'), "invalid header"),
    (_v1(b"\xff\xfe not utf-8"), "invalid header"),
    (_v1(b'{"layers": []}'), "invalid header"),
    (_v1(b'{"num_parameters": "many"}'), "invalid header"),
    (_v1(b'{"num_parameters": 1000001000000}'), "expected 4000004000000 bytes"),
    (_v1(b'{"num_parameters": 2}', b"\0" * 4), "expected 8 bytes of parameters, found 4"),
])
def test_v1_defects(content, match):
    with pytest.raises(FormatError, match=match):
        ff.decode(content, "old.fnn")


def test_v1_header_length_past_the_end():
    body = struct.pack("<8sIQ", ff.MAGIC, 1, 1000) + b"{}" * 20
    with pytest.raises(FormatError, match="header length 1000 exceeds"):
        ff.decode(body + hashlib.sha256(body).digest())


def test_v1_round_trip_of_what_0_1_wrote():
    """decode accepts exactly fastnn 0.1's layout: rebuild V1_FILE from its parts."""
    d = ff.decode(V1_FILE)
    hlen = struct.unpack_from("<Q", V1_FILE, 12)[0]
    assert json.loads(V1_FILE[20:20 + hlen]) == d["header"]
    assert _v1(V1_FILE[20:20 + hlen], d["params"].tobytes()) == V1_FILE


# ------------------------------------------------------------- write_atomic

def _temps(directory):
    return [f for f in os.listdir(directory) if ".fnn-tmp-" in f]


def test_write_atomic_writes_and_keeps_permissions(tmp_path):
    path = tmp_path / "m.fnn"
    ff.write_atomic(path, [b"abc", b"def"])
    assert path.read_bytes() == b"abcdef" and os.stat(path).st_mode & 0o777 == 0o644
    os.chmod(path, 0o600)
    ff.write_atomic(str(path), [b"new"])
    assert path.read_bytes() == b"new" and os.stat(path).st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["m.fnn"]


def test_write_atomic_errors(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        ff.write_atomic(tmp_path, [b"x"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ff.write_atomic(tmp_path / "missing" / "m.fnn", [b"x"])
    assert os.listdir(tmp_path) == []


def _fail(*args, **kwargs):
    raise OSError("disk full (injected)")


@pytest.mark.parametrize("where", ["fsync", "replace"])
def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch, where):
    path = tmp_path / "m.fnn"
    ff.write_atomic(path, [b"old"])
    monkeypatch.setattr(ff.os, where, _fail)
    with pytest.raises(OSError, match="injected"):
        ff.write_atomic(path, [b"new"])
    monkeypatch.undo()
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["m.fnn"]


def test_bad_part_midway_leaves_old_file(tmp_path):
    path = tmp_path / "m.fnn"
    ff.write_atomic(path, [b"old"])
    with pytest.raises(TypeError):
        ff.write_atomic(path, [b"new", None])
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["m.fnn"]


def test_temp_name_and_stale_temp_cleanup(tmp_path, monkeypatch):
    seen = []
    real = ff.os.replace

    def spy(src, dst):
        seen.append(os.path.basename(src))
        return real(src, dst)

    live = tmp_path / f".m.fnn.fnn-tmp-{os.getpid()}-abcd1234"
    dead = tmp_path / f".m.fnn.fnn-tmp-{2**22 + 12345}-abcd1234"   # above pid_max
    dead_c = tmp_path / f".m.fnn.fnn-tmp-{2**22 + 12346}-Ab3dEf"   # C's 6-letter suffix
    other = tmp_path / f".n.fnn.fnn-tmp-{2**22 + 12345}-abcd1234"  # another target's
    for f in (live, dead, dead_c, other):
        f.write_bytes(b"partial")
    monkeypatch.setattr(ff.os, "replace", spy)
    ff.write_atomic(tmp_path / "m.fnn", [b"x"])
    assert seen[0].startswith(f".m.fnn.fnn-tmp-{os.getpid()}-")
    assert live.exists() and other.exists() and not dead.exists() and not dead_c.exists()


def test_module_imports_nothing_else_of_fastnn():
    with open(ff.__file__) as f:
        src = f.read()
    imports = re.findall(r"^\s*(?:from|import)\s+([.\w]+)", src, re.M)
    assert set(imports) <= {"hashlib", "json", "operator", "os", "struct", "sys", "tempfile",
                            "numpy"}, imports


# ------------------------------------------------------- C <-> Python files

def _core_model():
    try:
        from fastnn import _core
    except ImportError as e:
        pytest.skip(f"the C extension is not built: {e}")
    if not hasattr(_core, "Model"):
        pytest.skip("fastnn._core has no Model class (the C model object is not bound yet)")
    return _core.Model


def test_python_file_loads_in_c_and_c_file_decodes_in_python(tmp_path):
    """Model.load (fnn_model_load) reads what encode_v2 wrote, and Model.save
    (fnn_model_save) writes the same bytes back."""
    Model = _core_model()
    params = _params(40)
    params.view(np.uint32)[0] = 0x7fc12345
    data = b"".join(ff.encode_v2((4,), CHAIN, params, np.zeros(0, np.float32), 2**64 - 1,
                                 b'{"json": "metadata"}'))
    src, dst = tmp_path / "py.fnn", tmp_path / "c.fnn"
    src.write_bytes(data)
    m = Model.load(str(src))
    m.save(str(dst))
    assert dst.read_bytes() == data
    d = ff.decode(dst.read_bytes())
    assert d["params"].tobytes() == params.tobytes() and d["seed"] == 2**64 - 1


def test_c_rejects_a_corrupted_python_file(tmp_path):
    Model = _core_model()
    path = tmp_path / "bad.fnn"
    for offset, fmt, value, _ in _V2_CASES[:12]:
        path.write_bytes(_edit(_file(), offset, fmt, value))
        with pytest.raises(ValueError):
            Model.load(str(path))
