"""examples/predict.c: a model trained and saved in Python runs in a plain C
program built against the embeddable library (python -m fastnn.config), and
gives the same outputs as model.predict -- bitwise with one thread."""
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastnn as fnn

SRC = Path(__file__).resolve().parent.parent / "examples" / "predict.c"
CC = shlex.split(os.environ.get("CC", "")) or ["cc"]
if shutil.which(CC[0]) is None and not os.environ.get("CC") and shutil.which("gcc"):
    CC = ["gcc"]
pytestmark = pytest.mark.skipif(shutil.which(CC[0]) is None,
                                reason="no C compiler (%s; set CC) to build examples/predict.c"
                                % CC[0])


def config_flags(*args):
    out = subprocess.run([sys.executable, "-m", "fastnn.config", *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return shlex.split(out.stdout)


def build(tmp_path, link="--libs", name="predict"):
    exe = tmp_path / name
    # Flags after the source: with --as-needed linkers, libraries must follow it.
    cmd = (CC + ["-std=c99", "-Wall", "-Wextra", "-Werror", str(SRC), "-o", str(exe)]
           + config_flags("--cflags", link))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, " ".join(cmd) + "\n" + out.stdout + out.stderr
    return exe


def run(exe, *args):
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True,
                          timeout=60, env=env)


def parse(stdout):
    return np.array([[float(v) for v in line.split(",")] for line in stdout.splitlines()],
                    dtype=np.float64)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("embed")
    rng = np.random.default_rng(0)
    model = fnn.Sequential(fnn.Linear(5, 16), fnn.ReLU(), fnn.Linear(16, 3), seed=0)
    Xtr = rng.standard_normal((64, 5)).astype(np.float32)
    Ytr = rng.standard_normal((64, 3)).astype(np.float32)
    model.fit(Xtr, Ytr, loss="mse", epochs=3, verbose=0)
    path = d / "model.fnn"
    model.save(str(path))
    X = rng.standard_normal((7, 5)).astype(np.float32)
    csv = d / "input.csv"
    # %.9g round-trips float32, so the program reads exactly X
    csv.write_text("".join(",".join("%.9g" % v for v in row) + "\n" for row in X))
    old = fnn.get_num_threads()
    fnn.set_num_threads(1)
    try:
        expected = model.predict(X)
    finally:
        fnn.set_num_threads(old)
    return d, path, csv, X, np.asarray(expected)


@pytest.fixture(scope="module")
def exe(trained, tmp_path_factory):
    return build(tmp_path_factory.mktemp("build"))


def test_predict_matches_python(trained, exe):
    _, path, csv, X, expected = trained
    out = run(exe, path, csv)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    got = parse(out.stdout)
    assert got.shape == (7, 3) == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0)
    # "%.9g" is exact for float32 and one thread on each side: bitwise equal
    np.testing.assert_array_equal(got.astype(np.float32), expected.astype(np.float32))


def test_truncated_model_file(trained, exe, tmp_path):
    _, path, csv, _, _ = trained
    bad = tmp_path / "truncated.fnn"
    data = path.read_bytes()
    bad.write_bytes(data[:len(data) // 2])
    out = run(exe, bad, csv)
    assert out.returncode == 1
    assert out.stdout == ""
    assert "cannot load model" in out.stderr and "truncated" in out.stderr, out.stderr


def test_short_row(trained, exe, tmp_path):
    _, path, csv, _, _ = trained
    lines = csv.read_text().splitlines()
    lines[2] = ",".join(lines[2].split(",")[:4])       # 4 values on line 3
    bad = tmp_path / "short.csv"
    bad.write_text("\n".join(lines) + "\n")
    out = run(exe, path, bad)
    assert out.returncode == 1
    assert out.stdout == ""
    assert "short.csv:3: expected 5 values, got 4" in out.stderr, out.stderr


def test_bad_number_and_usage(trained, exe, tmp_path):
    _, path, _, _, _ = trained
    bad = tmp_path / "nan.csv"
    bad.write_text("1,2,oops,4,5\n")
    out = run(exe, path, bad)
    assert out.returncode == 1
    assert "nan.csv:1: value 3 is not a number: 'oops'" in out.stderr, out.stderr
    out = run(exe, path)
    assert out.returncode == 1 and "usage:" in out.stderr


def test_static_build(trained, tmp_path):
    _, path, csv, _, expected = trained
    exe = build(tmp_path, "--static-libs", "predict_static")
    out = run(exe, path, csv)
    assert out.returncode == 0, out.stderr
    np.testing.assert_array_equal(parse(out.stdout).astype(np.float32),
                                  expected.astype(np.float32))
