"""The C model object embeds without Python: tests/c/test_model.c, compiled
against every csrc/*.c file with the system C compiler (CFLAGS from the
environment, e.g. the sanitizers), passes every check."""
import glob
import os
import shlex
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CC = os.environ.get("CC", "gcc")


@pytest.mark.skipif(shutil.which(CC) is None, reason="no C compiler to build the pure-C test")
@pytest.mark.parametrize("threads", ["1", "2"])
def test_pure_c_model(tmp_path, threads):
    exe = str(tmp_path / "test_model")
    cmd = ([CC, "-O2", "-std=c99", "-fopenmp"] + shlex.split(os.environ.get("CFLAGS", "")) +
           ["-I" + os.path.join(ROOT, "csrc"), os.path.join(ROOT, "tests", "c", "test_model.c")]
           + sorted(glob.glob(os.path.join(ROOT, "csrc", "*.c"))) + ["-lm", "-o", exe])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, " ".join(cmd) + "\n" + r.stderr[-4000:]
    r = subprocess.run([exe], capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, OMP_NUM_THREADS=threads))
    last = r.stdout.strip().splitlines()[-1]
    assert r.returncode == 0 and last.endswith(" 0 failures"), r.stdout[-4000:] + r.stderr
    assert int(last.split()[0]) >= 50     # the checks ran
