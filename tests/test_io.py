"""save/load: identical predictions, atomic writes, clear errors on bad files."""
import hashlib
import json
import os
import struct

import numpy as np
import pytest

import fastnn as fnn
from fastnn import fileformat, io


@pytest.fixture
def model():
    m = fnn.Sequential(fnn.Linear(4, 8), fnn.LeakyReLU(0.1), fnn.Dropout(0.2),
                       fnn.Linear(8, 3, bias=False), fnn.GELU(), fnn.Linear(3, 2), seed=5)
    X = np.random.default_rng(0).normal(size=(32, 4))
    m.fit(X, np.arange(32) % 2, loss="cross_entropy", epochs=2, verbose=0)
    return m


def test_save_load_identical_predictions(model, tmp_path):
    path = tmp_path / "m.fnn"
    model.save(path)
    loaded = fnn.load(path)
    x = np.random.default_rng(1).normal(size=(10, 4))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_array_equal(loaded.flat_params, model.flat_params)
    assert [repr(a) for a in loaded.layers] == [repr(b) for b in model.layers]
    assert fnn.load(path, backend="numpy").backend.NAME == "numpy"
    assert os.listdir(tmp_path) == ["m.fnn"]


def test_file_starts_with_magic_and_holds_no_pickle(model, tmp_path):
    path = tmp_path / "m.fnn"
    fnn.save(model, path)
    data = path.read_bytes()
    assert data.startswith(io.MAGIC)
    assert b"\x80\x04" not in data[:20] and b"pickle" not in data


def _fail(*args, **kwargs):
    raise OSError("disk full (injected)")


@pytest.mark.parametrize("where", ["fsync", "replace"])
def test_failed_save_leaves_old_file_and_no_temp(model, tmp_path, monkeypatch, where):
    path = tmp_path / "m.fnn"
    model.save(path)
    before = path.read_bytes()
    model.flat_params[...] += 1.0
    monkeypatch.setattr(fileformat.os, where, _fail)
    with pytest.raises(OSError, match="injected"):
        model.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.fnn"]


def test_failure_midway_through_writing(model, tmp_path, monkeypatch):
    path = tmp_path / "m.fnn"
    model.save(path)
    before = path.read_bytes()
    real = fnn.Sequential._file_parts

    def half_written(m):
        parts = real(m)
        return parts[:2] + [None]     # f.write(None) raises after the first parts

    monkeypatch.setattr(fnn.Sequential, "_file_parts", half_written)
    with pytest.raises(TypeError):
        model.save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.fnn"]


def test_truncated_and_corrupted_files_raise_format_error(model, tmp_path):
    path = tmp_path / "m.fnn"
    model.save(path)
    data = path.read_bytes()
    bad = tmp_path / "bad.fnn"
    rng = np.random.default_rng(0)
    for cut in list(range(0, 40)) + list(rng.integers(0, len(data), 40)):
        bad.write_bytes(data[:cut])
        with pytest.raises(fnn.FormatError):
            fnn.load(bad)
    for pos in rng.integers(0, len(data), 100):
        flipped = bytearray(data)
        flipped[pos] ^= 1 << int(rng.integers(8))
        bad.write_bytes(bytes(flipped))
        with pytest.raises(fnn.FormatError):
            fnn.load(bad)


@pytest.mark.parametrize("content, reason", [
    (b"", "too short"),
    (b"hello world, this is not a model file at all....", "magic"),
    (b"\x80\x04\x95" + b"\x00" * 60, "magic"),                 # a pickle
])
def test_foreign_files(tmp_path, content, reason):
    path = tmp_path / "x.fnn"
    path.write_bytes(content)
    with pytest.raises(fnn.FormatError, match=reason):
        fnn.load(path)


# Format 1 (fastnn 0.1: a JSON header) must still load; these tests write such files.
V1_PREFIX = struct.Struct("<8sIQ")


def _v1_file(model):
    """The bytes fastnn 0.1 wrote for `model`: prefix, JSON header, float32 payload, SHA-256."""
    layout, P = fnn.nn.param_layout(model.layers)
    header = {"fastnn_version": "0.1.0", "dtype": "<f4",
              "layers": [{"class": type(layer).__name__, "config": layer.config()}
                         for layer in model.layers],
              "seed": model.seed,
              "parameters": [{"name": f"{i}.{n}", "offset": off, "shape": list(shape)}
                             for i, n, off, shape in layout],
              "num_parameters": P}
    hb = json.dumps(header).encode()
    body = V1_PREFIX.pack(io.MAGIC, 1, len(hb)) + hb + model.flat_params.astype("<f4").tobytes()
    return body + hashlib.sha256(body).digest()


def test_format_1_files_still_load(model, tmp_path):
    path = tmp_path / "old.fnn"
    path.write_bytes(_v1_file(model))
    old = fnn.load(path)
    x = np.random.default_rng(0).standard_normal((5, model.in_features)).astype(np.float32)
    np.testing.assert_array_equal(old.predict(x), model.predict(x))


def _rewrite(data, header_edit=None, version=None):
    """Re-encode a format-1 file with an edited header / version and a valid checksum."""
    magic, ver, hlen = V1_PREFIX.unpack_from(data)
    header = json.loads(data[V1_PREFIX.size:V1_PREFIX.size + hlen])
    payload = data[V1_PREFIX.size + hlen:-32]
    if header_edit:
        header_edit(header)
    hb = json.dumps(header).encode()
    body = V1_PREFIX.pack(magic, version or ver, len(hb)) + hb + payload
    return body + hashlib.sha256(body).digest()


def test_bad_version_unknown_layer_and_bad_layout(model, tmp_path):
    path = tmp_path / "m.fnn"
    data = _v1_file(model)
    cases = [
        (_rewrite(data, version=99), "version 99"),
        (_rewrite(data, lambda h: h["layers"][0].update({"class": "os.system"})), "unknown layer"),
        (_rewrite(data, lambda h: h["layers"][0]["config"].update({"in_features": 5})),
         "layout|expected"),
        (_rewrite(data, lambda h: h["layers"][0]["config"].update({"evil": 1})), "configuration"),
        (_rewrite(data, lambda h: h.pop("parameters")), "invalid header"),
    ]
    for content, reason in cases:
        path.write_bytes(content)
        with pytest.raises(fnn.FormatError, match=reason):
            fnn.load(path)


def test_save_keeps_permissions_of_existing_file(model, tmp_path):
    path = tmp_path / "m.fnn"
    model.save(path)
    os.chmod(path, 0o600)
    model.save(path)
    assert os.stat(path).st_mode & 0o777 == 0o600


def _crafted(header_bytes, payload=b""):
    """A format-1 file with a valid prefix and checksum around an arbitrary header."""
    body = V1_PREFIX.pack(io.MAGIC, 1, len(header_bytes)) + header_bytes + payload
    return body + hashlib.sha256(body).digest()


@pytest.mark.parametrize("header, reason", [
    # a huge architecture with a tiny payload: rejected before any allocation
    (b'{"layers": [{"class": "Linear", "config": {"in_features": 1000000, '
     b'"out_features": 1000000}}], "parameters": [{"name": "0.weight", "offset": 0, '
     b'"shape": [1000000, 1000000]}, {"name": "0.bias", "offset": 1000000000000, '
     b'"shape": [1000000]}], "num_parameters": 1000001000000}', "expected 4000004000000 bytes"),
    (b"[" * 100000 + b"]" * 100000, "invalid header"),          # RecursionError in json
    (b'["not", "an", "object"]', "invalid header"),
    (b'{"layers": "Linear", "parameters": [], "num_parameters": 0}', "invalid header"),
    (b'{"layers": [], "parameters": [], "num_parameters": 0}', "architecture"),
    (b'\xff\xfe not utf-8', "invalid header"),
    (b'{"layers": [{"class": "Linear", "config": {"in_features": -1, "out_features": 2}}], '
     b'"parameters": [], "num_parameters": 0}', "configuration"),
])
def test_crafted_headers_raise_format_error(tmp_path, header, reason):
    path = tmp_path / "x.fnn"
    path.write_bytes(_crafted(header))
    with pytest.raises(fnn.FormatError, match=reason):
        fnn.load(path)


def test_temp_files_are_named_recognisably(model, tmp_path, monkeypatch):
    """The temporary file is .<name>.fnn-tmp-<pid>-XXXX in the target's directory."""
    seen = []
    real = fileformat.os.replace

    def spy(src, dst):
        seen.append(os.path.basename(src))
        return real(src, dst)

    monkeypatch.setattr(fileformat.os, "replace", spy)
    model.save(tmp_path / "m.fnn")
    assert seen[0].startswith(f".m.fnn.fnn-tmp-{os.getpid()}-")


def test_truncation_everywhere_and_many_flips(model, tmp_path):
    """200 truncation offsets and 1,000 random bit flips: every load raises FormatError."""
    path = tmp_path / "m.fnn"
    model.save(path)
    data = path.read_bytes()
    rng = np.random.default_rng(1)
    bad = tmp_path / "bad.fnn"
    cuts = np.unique(np.concatenate([np.arange(0, 100), rng.integers(0, len(data), 100)]))
    for cut in cuts:
        bad.write_bytes(data[:cut])
        with pytest.raises(fnn.FormatError):
            fnn.load(bad)
    for _ in range(1000):
        flipped = bytearray(data)
        flipped[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
        bad.write_bytes(bytes(flipped))
        with pytest.raises(fnn.FormatError):
            fnn.load(bad)
