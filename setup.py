"""Build fastnn's C core and Cython bridge.

OpenMP is detected by compiling, linking and running a tiny OpenMP program
with the same compiler that will build the extension (the approach of
scikit-learn's ``_build_utils/openmp_helpers.py``). Without it, or with
``FASTNN_NO_OPENMP=1``, the core builds single-threaded and a warning says so.
No ``-march=native``: the wheel must run on any x86-64 (SIMD kernels are
chosen at run time).
"""
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import warnings

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPENMP_TEST = r"""
#include <omp.h>
#include <stdio.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    printf("%d\n", n > 0);
    return n > 0 ? 0 : 1;
}
"""


def openmp_flags(compiler):
    """Return (compile_args, link_args) for OpenMP, or None if unavailable."""
    if os.environ.get("FASTNN_NO_OPENMP", "") not in ("", "0"):
        return None
    ctype = compiler.compiler_type
    if ctype == "msvc":
        candidates = [(["/openmp"], [])]
    elif sys.platform == "darwin":
        candidates = [(["-Xpreprocessor", "-fopenmp"], ["-lomp"]), (["-fopenmp"], ["-fopenmp"])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]
    for cflags, ldflags in candidates:
        tmp = tempfile.mkdtemp(prefix="fastnn_omp_")
        try:
            src = os.path.join(tmp, "omp_test.c")
            with open(src, "w") as f:
                f.write(OPENMP_TEST)
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
            exe = os.path.join(tmp, "omp_test")
            compiler.link_executable(objs, exe, extra_postargs=ldflags)
            out = subprocess.run([exe], capture_output=True, timeout=60)
            if out.returncode == 0:
                return cflags, ldflags
        except Exception:  # compile, link or run failed: try the next flags
            pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return None


class BuildExt(build_ext):
    def build_extensions(self):
        ctype = self.compiler.compiler_type
        omp = openmp_flags(self.compiler)
        if omp is None:
            warnings.warn("fastnn: OpenMP not available (or FASTNN_NO_OPENMP set); "
                          "building the C core single-threaded.")
            print("fastnn: building WITHOUT OpenMP (single-threaded)", file=sys.stderr)
        if ctype == "msvc":
            base = ["/O2"]
        else:
            # -O3 without -ffast-math: NaN/Inf behaviour must stay IEEE (STYLE.md 7).
            # No FMA contraction (-ffp-contract=off), so every SIMD variant rounds
            # like the scalar code and the results do not depend on the CPU.
            # -fno-math-errno and -fno-trapping-math change no value: they drop
            # errno updates and FP-exception-flag guarantees, which lets sqrtf
            # and the branch-free selects of csrc/vmath.h vectorise (4-10x).
            base = ["-O3", "-std=c99", "-ffp-contract=off", "-fno-math-errno",
                    "-fno-trapping-math", "-fno-strict-aliasing", "-fvisibility=hidden"]
            if os.environ.get("FASTNN_DEBUG_CFLAGS"):
                base = os.environ["FASTNN_DEBUG_CFLAGS"].split()
        for ext in self.extensions:
            ext.extra_compile_args = base + (omp[0] if omp else [])
            ext.extra_link_args = (omp[1] if omp else []) + (
                os.environ.get("FASTNN_EXTRA_LDFLAGS", "").split())
        super().build_extensions()


csrc = sorted(glob.glob(os.path.join("csrc", "*.c")))
extensions = [
    Extension(
        "fastnn._core",
        sources=[os.path.join("fastnn", "_core.pyx")] + csrc,
        include_dirs=["csrc", np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        language="c",
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={"language_level": "3", "boundscheck": False,
                             "wraparound": False, "cdivision": True,
                             "initializedcheck": False},
    ),
    cmdclass={"build_ext": BuildExt},
)
