"""Where the embeddable C library is, and the flags to build against it.

The installed package carries fastnn's C core as a library of its own, no
Python needed to use it: ``fastnn/include/fastnn.h``, ``fastnn/lib/libfastnn.so``
(exporting only the ``fnn_*`` API) and ``fastnn/lib/libfastnn.a``::

    cc app.c $(python -m fastnn.config --cflags --libs) -o app
    cc app.c $(python -m fastnn.config --cflags --static-libs) -o app   # static
    PKG_CONFIG_PATH=$(python -m fastnn.config --pkg-config-path) \\
        pkg-config --cflags --libs fastnn

``--libs`` adds ``-Wl,-rpath`` to the library directory, so the program finds
libfastnn.so where it is now: moving or deleting this Python environment
breaks such a program (copy the library next to it, or link statically).

This module is pure Python and never imports the C extension ``fastnn._core``.
"""
import argparse
import json
import os
import sys

__all__ = ["get_include", "get_library_dir", "get_pkg_config_dir", "cflags", "libs",
           "static_libs", "main"]

# The package directory at run time (a wheel installs anywhere); tests move it.
_PKG_DIR = os.path.dirname(os.path.abspath(__file__))


class LibraryNotBuiltError(FileNotFoundError):
    """The embeddable library is not in the package (not built by this install)."""


def _missing(what, path):
    return LibraryNotBuiltError(
        "fastnn: the embeddable C library is not built (%s %s is missing). It is "
        "built with the package by `pip install .` or `pip install -e .` (or "
        "`python setup.py build_ext --inplace` in a source tree)." % (what, path))


def get_include():
    """Directory holding ``fastnn.h`` (give it to the compiler as -I)."""
    d = os.path.join(_PKG_DIR, "include")
    if not os.path.isfile(os.path.join(d, "fastnn.h")):
        raise _missing("header", os.path.join(d, "fastnn.h"))
    return d


def _build_info():
    d = os.path.join(_PKG_DIR, "lib")
    p = os.path.join(d, "libfastnn.json")
    try:
        with open(p) as f:
            info = json.load(f)
    except (OSError, ValueError):
        raise _missing("build record", p) from None
    return d, info


def get_library_dir():
    """Directory holding ``libfastnn.so`` and ``libfastnn.a`` (-L, rpath)."""
    d, info = _build_info()
    for key in ("shared", "static"):
        if not os.path.exists(os.path.join(d, info[key])):
            raise _missing("library", os.path.join(d, info[key]))
    return d


def get_pkg_config_dir():
    """A directory holding ``fastnn.pc``, for ``PKG_CONFIG_PATH``."""
    d = os.path.join(get_library_dir(), "pkgconfig")
    if not os.path.isfile(os.path.join(d, "fastnn.pc")):
        raise _missing("pkg-config file", os.path.join(d, "fastnn.pc"))
    return d


def cflags():
    """Compiler flags, as a list: ``['-I<include dir>']``."""
    return ["-I" + get_include()]


def libs():
    """Flags to link the shared library, as a list. It carries its own
    dependencies (the OpenMP runtime, libm), so nothing else is needed."""
    d = get_library_dir()
    return ["-L" + d, "-lfastnn", "-Wl,-rpath," + d]


def static_libs():
    """Flags to link the static archive, as a list: the archive's path, then
    what it needs (``-fopenmp`` when built with OpenMP, ``-lm``)."""
    d = get_library_dir()
    _, info = _build_info()
    return [os.path.join(d, info["static"])] + list(info["static_link_flags"])


def _version():
    from . import __version__
    return __version__


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m fastnn.config",
        description="Print what is needed to compile and link C code against fastnn's "
                    "embeddable C library. Flag options print on one line, in the order "
                    "--cflags, --libs, --static-libs; each directory option prints a "
                    "line of its own.",
        epilog="example: cc app.c $(python -m fastnn.config --cflags --libs) -o app")
    p.add_argument("--cflags", action="store_true", help="-I<include dir>")
    p.add_argument("--libs", action="store_true",
                   help="-L<lib dir> -lfastnn -Wl,-rpath,<lib dir> (shared library)")
    p.add_argument("--static-libs", action="store_true",
                   help="<lib dir>/libfastnn.a and what it needs (-fopenmp, -lm)")
    p.add_argument("--include-dir", action="store_true", help="the directory of fastnn.h")
    p.add_argument("--library-dir", action="store_true",
                   help="the directory of libfastnn.so and libfastnn.a")
    p.add_argument("--pkg-config-path", action="store_true",
                   help="a directory holding fastnn.pc, for PKG_CONFIG_PATH")
    p.add_argument("--version", action="store_true", help="fastnn's version")
    a = p.parse_args(argv)
    if a.libs and a.static_libs:
        p.error("--libs and --static-libs are two ways to link: give one")
    if not any(vars(a).values()):
        p.print_help(sys.stderr)
        return 2
    try:
        lines = []
        if a.version:
            lines.append(_version())
        flags = ((cflags() if a.cflags else []) + (libs() if a.libs else [])
                 + (static_libs() if a.static_libs else []))
        if flags:
            lines.append(" ".join(flags))
        if a.include_dir:
            lines.append(get_include())
        if a.library_dir:
            lines.append(get_library_dir())
        if a.pkg_config_path:
            lines.append(get_pkg_config_dir())
    except LibraryNotBuiltError as e:
        print(e, file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
