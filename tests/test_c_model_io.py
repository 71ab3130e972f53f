"""The model file in pure C: tests/c/test_model_io.c, compiled against every
csrc/*.c file with the system C compiler (as tests/c/run.sh does for
test_core.c; CFLAGS from the environment, e.g. the sanitizers), passes its
checks; its SHA-256 agrees with hashlib; and files cross between C
(fnn_model_save / fnn_model_load) and Python (fastnn.fileformat) bit for bit."""
import glob
import hashlib
import os
import shlex
import shutil
import struct
import subprocess

import numpy as np
import pytest

from fastnn import fileformat as ff

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CC = os.environ.get("CC", "gcc")


@pytest.fixture(scope="module")
def exe(tmp_path_factory):
    """The compiled tests/c/test_model_io.c."""
    if shutil.which(CC) is None:
        pytest.skip("no C compiler to build the pure-C test")
    out = str(tmp_path_factory.mktemp("c_model_io") / "test_model_io")
    cmd = ([CC, "-O2", "-std=c99", "-fopenmp"] + shlex.split(os.environ.get("CFLAGS", "")) +
           ["-I" + os.path.join(ROOT, "csrc"), os.path.join(ROOT, "tests", "c", "test_model_io.c")]
           + sorted(glob.glob(os.path.join(ROOT, "csrc", "*.c"))) + ["-lm", "-o", out])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, " ".join(cmd) + "\n" + r.stderr[-4000:]
    return out


def _run(exe, *args, cwd=None):
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=600,
                          cwd=cwd)


def test_pure_c_model_io(exe, tmp_path):
    r = _run(exe, tmp_path)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert r.stdout.strip().splitlines()[-1].endswith(" 0 failures"), r.stdout
    assert os.listdir(tmp_path) == []


def test_sha256_matches_hashlib(exe, tmp_path):
    """Every length 0..300 of random bytes (each block boundary and padding case)."""
    data = np.random.default_rng(int(os.environ.get("FASTNN_TEST_SEED", "0"))).bytes(300)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    r = _run(exe, "sha256", path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")[:-1]
    assert len(lines) == 301
    for line in lines:
        n, digest = line.split()
        assert digest == hashlib.sha256(data[:int(n)]).hexdigest(), n


CHAIN = [{"op": "linear", "attrs": {"units": 5, "bias": 1, "init": 1}},
         {"op": "leaky_relu", "attrs": {"slope": 0.25}},
         {"op": "dropout", "attrs": {"p": 0.5}},
         {"op": "linear", "attrs": {"units": 3}},
         {"op": "softmax", "attrs": {"axis": -1}}]


def _python_file(seed=2**64 - 1):
    params = np.random.default_rng(3).normal(size=4 * 5 + 5 + 5 * 3).astype(np.float32)
    params.view(np.uint32)[:3] = [0x80000000, 0x7fc12345, 0x00000001]   # -0, NaN payload, subnormal
    return b"".join(ff.encode_v2((4,), CHAIN, params, np.zeros(0, np.float32), seed,
                                 b'{"fastnn": "metadata", "x": [1, 2]}'))


def test_python_file_loads_in_c(exe, tmp_path):
    """C loads what fastnn.fileformat wrote and saves the very same bytes."""
    data = _python_file()
    src, dst = tmp_path / "py.fnn", tmp_path / "c.fnn"
    src.write_bytes(data)
    r = _run(exe, "resave", src, dst)
    assert r.returncode == 0, r.stdout + r.stderr
    assert dst.read_bytes() == data


def test_c_file_decodes_in_python(exe, tmp_path):
    """Python decodes what fnn_model_save wrote and encodes the very same bytes."""
    path = tmp_path / "c.fnn"
    r = _run(exe, "save", path)
    assert r.returncode == 0, r.stdout + r.stderr
    data = path.read_bytes()
    d = ff.decode(data, str(path))
    assert d["version"] == 2 and d["input_shape"] == (4,) and d["seed"] == 0x0123456789abcdef
    assert [n["op"] for n in d["nodes"]] == ["linear", "leaky_relu", "dropout", "linear"]
    assert [(n["in"], n["out"]) for n in d["nodes"]] == [((i, -1), i + 1) for i in range(4)]
    a0, a3 = d["nodes"][0]["attrs"], d["nodes"][3]["attrs"]
    assert (a0["units"], a0["bias"], a0["init"]) == (5, 1, 1)
    assert (a3["units"], a3["bias"], a3["init"]) == (3, 0, 2)
    assert d["nodes"][1]["attrs"]["slope"] == 0.1 and d["nodes"][2]["attrs"]["p"] == 0.25
    assert d["params"].size == 4 * 5 + 5 + 5 * 3 and d["buffers"].size == 0
    assert d["params"].view(np.uint32)[[0, 3, 6, 9, 12]].tolist() == [
        0x80000000, 0x00000001, 0x7f800000, 0xff800000, 0x7fc12345]
    assert d["metadata"] == b'{"note": "metadata"}\x00binary\xff\x00'
    again = ff.encode_v2(d["input_shape"], d["nodes"], d["params"], d["buffers"], d["seed"],
                         d["metadata"])
    assert b"".join(again) == data
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"


def _edit(data, offset, fmt, value):
    b = bytearray(data)
    struct.pack_into(fmt, b, offset, value)
    body = bytes(b[:-32])
    return body + hashlib.sha256(body).digest()


def test_c_and_python_reject_the_same_damage(exe, tmp_path):
    """Each damaged file: fastnn.fileformat raises FormatError and fnn_model_load
    returns FNN_ERR_FORMAT (7), both naming the same defect."""
    data = _python_file()
    rng = np.random.default_rng(0)
    cases = [(data[:int(cut)], None) for cut in rng.integers(0, len(data), 20)]
    for pos in rng.integers(0, len(data), 20):
        b = bytearray(data)
        b[int(pos)] ^= 1 << int(rng.integers(8))
        cases.append((bytes(b), None))
    cases += [(data + b"\0", "trailing"), (data[:-1] + bytes([data[-1] ^ 1]), "checksum"),
              (_edit(data, 8, "<I", 3), "version 3"),
              (_edit(data, 16, "<I", 70000), "70000 nodes"),
              (_edit(data, 20, "<I", 4), "ndim 4"),
              (_edit(data, 56, "<q", 2**62), "too large"),
              (_edit(data, 56, "<q", 2**40), "truncated"),
              (_edit(data, 72, "<q", 2**40), "metadata length"),
              (_edit(data, 80, "<24s", b"L" * 24), "NUL-terminated"),
              (_edit(data, 80 + 36, "<i", 1), "reserved"),
              (_edit(data, 80 + 24, "<i", 9), "slot")]
    path = tmp_path / "bad.fnn"
    for content, needle in cases:
        with pytest.raises(ff.FormatError) as info:
            ff.decode(content, str(path))
        path.write_bytes(content)
        r = _run(exe, "load", path)
        assert r.stdout.startswith("status 7: " + str(path)), (r.stdout, str(info.value))
        if needle:
            assert needle in str(info.value) and needle in r.stdout, (needle, r.stdout,
                                                                      str(info.value))


def test_c_rejects_what_only_the_op_table_knows(exe, tmp_path):
    """Valid bytes, invalid model: unknown op, bad attributes, P that does not fit."""
    path = tmp_path / "bad.fnn"
    params = np.zeros(40, np.float32)
    for nodes, needle in [
        ([{"op": "conv9d"}], "unknown op 'conv9d'"),
        ([{"op": "linear", "attrs": {"units": 5, "bias": 1}}], "layout does not match"),
        ([{"op": "linear", "attrs": {"units": 2**40}}], "layout does not match"),
        ([{"op": "dropout", "attrs": {"p": 1.5}}], "dropout"),
    ]:
        path.write_bytes(b"".join(ff.encode_v2((4,), nodes, params, params[:0], 0, b"")))
        r = _run(exe, "load", path)
        assert r.stdout.startswith("status 7: ") and needle in r.stdout, r.stdout
