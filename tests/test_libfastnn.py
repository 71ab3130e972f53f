"""The installed package ships an embeddable C library: fastnn/include/fastnn.h,
fastnn/lib/libfastnn.so (only the FNN_API names exported) and libfastnn.a.
A tiny C program builds against each with the flags of
``python -m fastnn.config`` (and of pkg-config) and runs without Python."""
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

import fastnn
from fastnn import config

CC = shlex.split(os.environ.get("CC", "cc")) or ["cc"]
needs_cc = pytest.mark.skipif(shutil.which(CC[0]) is None,
                              reason="no C compiler (%s) to build against libfastnn" % CC[0])

PROGRAM = r"""
#include <stdio.h>
#include "fastnn.h"

int main(void) {
    /* (2, 3) . (3, 2) */
    const float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {7, 8, 9, 10, 11, 12};
    float C[4] = {-1, -1, -1, -1};
    fnn_status s = fnn_sgemm(0, 0, 2, 2, 3, 1.0f, A, 3, B, 2, 0.0f, C, 2);
    printf("status %d %s\n", (int)s, fnn_status_string(s));
    printf("C %g %g %g %g\n", C[0], C[1], C[2], C[3]);
    printf("threads %d\n", fnn_get_num_threads());
    printf("openmp %d\n", fnn_has_openmp());
#ifdef FASTNN_VERSION
    printf("version %s %s\n", fnn_version(), FASTNN_VERSION);
#endif
    return s == FNN_OK ? 0 : 1;
}
"""


def fastnn_config(*args):
    out = subprocess.run([sys.executable, "-m", "fastnn.config", *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stderr == "", out.stderr      # e.g. no runpy RuntimeWarning
    return out.stdout


def build_and_run(tmp_path, flags, name="app"):
    src = tmp_path / "app.c"
    src.write_text(PROGRAM)
    exe = tmp_path / name
    # Flags after the source: with --as-needed linkers, libraries must follow it.
    cmd = CC + ["-std=c99", "-Wall", "-Werror", str(src), "-o", str(exe)] + flags
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, " ".join(cmd) + "\n" + out.stdout + out.stderr
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = dict(line.split(" ", 1) for line in run.stdout.splitlines())
    assert lines["status"].split()[0] == "0", lines["status"]
    assert lines["C"] == "58 64 139 154"
    assert int(lines["threads"]) >= 1
    _, info = config._build_info()
    assert int(lines["openmp"]) == int(info["openmp"])
    if "version" in lines:                    # the header has FASTNN_VERSION
        linked, header = lines["version"].split()
        assert linked == header
    return exe


def test_config_paths():
    inc, lib = config.get_include(), config.get_library_dir()
    assert os.path.isfile(os.path.join(inc, "fastnn.h"))
    assert os.path.exists(os.path.join(lib, "libfastnn.so" if sys.platform != "darwin"
                                       else "libfastnn.dylib"))
    assert os.path.isfile(os.path.join(lib, "libfastnn.a"))
    assert fastnn.get_include() == inc and fastnn.get_library_dir() == lib
    assert fastnn_config("--include-dir").strip() == inc
    assert fastnn_config("--library-dir").strip() == lib
    assert fastnn_config("--version").strip() == fastnn.__version__
    assert fastnn_config("--cflags").split() == ["-I" + inc]
    assert fastnn_config("--libs").split() == ["-L" + lib, "-lfastnn", "-Wl,-rpath," + lib]
    pc = fastnn_config("--pkg-config-path").strip()
    assert os.path.isfile(os.path.join(pc, "fastnn.pc"))
    static = fastnn_config("--static-libs").split()
    assert static[0] == os.path.join(lib, "libfastnn.a")
    _, info = config._build_info()
    assert ("-fopenmp" in static or "-lomp" in static) == info["openmp"]
    assert "--cflags" in fastnn_config("--help")


def test_config_not_built(tmp_path, monkeypatch, capsys):
    """A package without the library: exit 1 and say so (not a traceback)."""
    monkeypatch.setattr(config, "_PKG_DIR", str(tmp_path))
    for opt in ("--cflags", "--libs", "--static-libs", "--include-dir", "--library-dir",
                "--pkg-config-path"):
        assert config.main([opt]) == 1
        err = capsys.readouterr().err
        assert "not built" in err and "pip install" in err, err
    with pytest.raises(config.LibraryNotBuiltError):
        fastnn.get_include()
    assert config.main(["--version"]) == 0   # needs no library
    assert config.main([]) == 2              # nothing asked: usage


def test_config_does_not_import_the_extension():
    """fastnn.config and fastnn.get_include() are pure Python: they work where
    the extension is missing (fastnn imports _core at import only for
    threadpoolctl, so compare before and after)."""
    code = ("import sys, fastnn; before = 'fastnn._core' in sys.modules; "
            "import fastnn.config; fastnn.get_include(); fastnn.get_library_dir(); "
            "fastnn.config.main(['--cflags', '--libs']); "
            "print(before, 'fastnn._core' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    before, after = out.stdout.split()[-2:]
    assert after == before, out.stdout


@needs_cc
def test_shared_library(tmp_path):
    flags = fastnn_config("--cflags", "--libs").split()
    exe = build_and_run(tmp_path, flags)
    if shutil.which("ldd") and sys.platform.startswith("linux"):
        ldd = subprocess.run(["ldd", str(exe)], capture_output=True, text=True).stdout
        found = [line for line in ldd.splitlines() if "libfastnn" in line]
        # found through the rpath, in this package, by its SONAME
        assert found and "libfastnn.so.0" in found[0], ldd
        assert os.path.realpath(config.get_library_dir()) in os.path.realpath(
            found[0].split("=>")[1].split("(")[0].strip()), ldd


@needs_cc
def test_static_library(tmp_path):
    flags = fastnn_config("--cflags", "--static-libs").split()
    exe = build_and_run(tmp_path, flags, name="app_static")
    if shutil.which("ldd") and sys.platform.startswith("linux"):
        ldd = subprocess.run(["ldd", str(exe)], capture_output=True, text=True).stdout
        assert "libfastnn" not in ldd, ldd


def api_names():
    """The functions the public header marks FNN_API."""
    with open(os.path.join(config.get_include(), "fastnn.h")) as f:
        header = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    return set(re.findall(r"\bFNN_API\b[^;{]*?\b(fnn_\w+)\s*\(", header))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ELF dynamic symbols")
@pytest.mark.skipif(shutil.which("nm") is None, reason="no nm to list the exported symbols")
def test_exported_symbols():
    so = os.path.join(config.get_library_dir(), "libfastnn.so")
    out = subprocess.run(["nm", "-D", "--defined-only", so], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    names = {line.split()[-1].split("@")[0] for line in out.stdout.splitlines() if line.strip()}
    bad = sorted(n for n in names if not n.startswith("fnn_") or n.startswith("fnn__"))
    assert not bad, "exported beyond the fnn_ API: %s" % bad
    # and exactly what the header promises: nothing declared is missing
    declared = api_names()
    assert declared, "no FNN_API declarations found in fastnn.h"
    assert names == declared, (sorted(declared - names), sorted(names - declared))


@needs_cc
@pytest.mark.skipif(shutil.which("pkg-config") is None, reason="no pkg-config")
def test_pkg_config(tmp_path):
    env = dict(os.environ, PKG_CONFIG_PATH=fastnn_config("--pkg-config-path").strip())

    def pkgconf(*args):
        out = subprocess.run(["pkg-config", *args, "fastnn"], capture_output=True,
                             text=True, env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert pkgconf("--modversion").strip() == fastnn.__version__
    flags = pkgconf("--cflags", "--libs").split()
    lib = os.path.realpath(config.get_library_dir())
    assert any(f.startswith("-L") and os.path.realpath(f[2:]) == lib for f in flags), flags
    build_and_run(tmp_path, flags, name="app_pc")
    static = pkgconf("--static", "--libs").split()
    _, info = config._build_info()
    for flag in info["static_link_flags"]:
        assert flag in static, static
