"""The C core embeds without Python: tests/c/test_core.c, compiled against every
csrc/*.c file with the system C compiler, passes on each GEMM dispatch path, with
the detected cache blocks and with one-tile blocks (FASTNN_GEMM_BLOCKS)."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.skipif(shutil.which(os.environ.get("CC", "gcc")) is None,
                    reason="no C compiler to build the pure-C test")
def test_pure_c_core(tmp_path):
    env = dict(os.environ, TMPDIR=str(tmp_path))
    out = subprocess.run(["bash", os.path.join(ROOT, "tests", "c", "run.sh")], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    results = [line for line in out.stdout.splitlines() if line.endswith("failures")]
    assert len(results) == 6 and all(r.endswith(" 0 failures") for r in results), out.stdout
