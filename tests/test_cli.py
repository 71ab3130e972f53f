"""python -m fastnn: the digits demo."""
import os
import re
import subprocess
import sys

from fastnn.__main__ import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_demo_in_process(capsys):
    assert main(["--epochs", "3", "--hidden", "32", "--quiet"]) == 0
    out = capsys.readouterr().out
    acc = float(re.search(r"test accuracy: ([0-9.]+)", out).group(1))
    assert 0.5 < acc <= 1.0
    assert re.search(r"training time: [0-9.]+ s \([0-9,]+ samples/s\)", out)
    assert "Epoch" not in out


def test_demo_progress_and_compare(capsys):
    assert main(["demo", "--epochs", "2", "--hidden", "16,16", "--compare",
                 "--backend", "c"]) == 0
    out = capsys.readouterr().out
    assert out.count("Epoch 2/2") == 2
    assert "| numpy |" in out and re.search(r"speed ratio .*: [0-9.]+x", out)


def test_module_subprocess():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-m", "fastnn", "--epochs", "2", "--quiet"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "test accuracy:" in res.stdout
