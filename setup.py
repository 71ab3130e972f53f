"""Build fastnn's C core and Cython bridge.

OpenMP is detected by compiling, linking and running a tiny OpenMP program
with the same compiler that will build the extension (the approach of
scikit-learn's ``_build_utils/openmp_helpers.py``). Without it, or with
``FASTNN_NO_OPENMP=1``, the core builds single-threaded and a warning says so.
No ``-march=native``: the wheel must run on any x86-64 (SIMD kernels are
chosen at run time).

Besides the extension (which compiles csrc/*.c in, all hidden), build_ext
builds the embeddable C library from csrc/*.c alone (no Python): a shared
``fastnn/lib/libfastnn.so`` exporting only the FNN_API symbols of
``fastnn/include/fastnn.h``, a static ``fastnn/lib/libfastnn.a``, the
pkg-config file ``fastnn/lib/pkgconfig/fastnn.pc`` and
``fastnn/lib/libfastnn.json`` (how it was built, for ``fastnn.config``).
``python -m fastnn.config --cflags --libs`` prints the flags to use them.
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor

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


# The embeddable library. SONAME libfastnn.so.0: bump the 0 when the C ABI
# breaks. The ELF file is libfastnn.so.0, with libfastnn.so beside it for
# -lfastnn (a symlink where the file system allows, else a copy; wheels hold
# no symlinks, so a wheel carries two copies).
LIB_NAME = "fastnn"
LIB_ABI = "0"

# fastnn.pc is written at build time, not generated on demand by
# fastnn.config: its prefix is ${pcfiledir} (pkg-config and pkgconf expand it
# to the directory the .pc file was found in), so the one file stays right
# wherever the wheel is unpacked or the venv is moved, nothing is written at
# run time (site-packages may be read-only), and plain pkg-config works
# without running Python. Libs.private is what a static link also needs.
PC_TEMPLATE = """\
prefix=${{pcfiledir}}/../..
libdir=${{prefix}}/lib
includedir=${{prefix}}/include

Name: fastnn
Description: fastnn's C core: dense neural network training kernels, no Python
Version: {version}
Cflags: -I${{includedir}}
Libs: -L${{libdir}} -l{name} -Wl,-rpath,${{libdir}}
Libs.private: {private}
"""


def static_lib_name():
    return "%s.lib" % LIB_NAME if sys.platform == "win32" else "lib%s.a" % LIB_NAME


def shared_lib_names():
    """(real file, link name, soname) of the shared library on this platform."""
    if sys.platform == "darwin":
        real = "lib%s.%s.dylib" % (LIB_NAME, LIB_ABI)
        return real, "lib%s.dylib" % LIB_NAME, real
    real = "lib%s.so.%s" % (LIB_NAME, LIB_ABI)
    return real, "lib%s.so" % LIB_NAME, real


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
            # -O3 without -ffast-math: NaN/Inf behaviour must stay IEEE.
            # No FMA contraction (-ffp-contract=off), so every SIMD variant rounds
            # like the scalar code and the results do not depend on the CPU.
            # -fno-math-errno and -fno-trapping-math change no value: they drop
            # errno updates and FP-exception-flag guarantees, which lets sqrtf
            # and the branch-free selects of csrc/vmath.h vectorise (4-10x).
            base = ["-O3", "-std=c99", "-ffp-contract=off", "-fno-math-errno",
                    "-fno-trapping-math", "-fno-strict-aliasing", "-fvisibility=hidden"]
            if os.environ.get("FASTNN_DEBUG_CFLAGS"):
                base = os.environ["FASTNN_DEBUG_CFLAGS"].split()
        extra_ld = os.environ.get("FASTNN_EXTRA_LDFLAGS", "").split()
        for ext in self.extensions:
            ext.extra_compile_args = base + (omp[0] if omp else [])
            ext.extra_link_args = (omp[1] if omp else []) + extra_ld
        self._compile_in_parallel()
        super().build_extensions()
        if ctype == "msvc":   # Linux must work, macOS should; Windows: not yet
            warnings.warn("fastnn: the embeddable C library is not built with MSVC")
            return
        self.build_libfastnn(base, omp, extra_ld)

    def _compile_in_parallel(self):
        """Make the compiler build a multi-source call one process per file
        at once (in the given order, so the link order is unchanged):
        distutils compiles an extension's sources one by one, and the
        extension has the Cython module plus every csrc file (on 2 cores
        this took .ci/sanitize.sh's build from 285 to 204 s)."""
        cc = self.compiler
        jobs = os.cpu_count() or 1
        if jobs < 2 or getattr(cc, "_fastnn_parallel", False):
            return
        serial = cc.compile

        def compile_each(sources, *args, **kwargs):
            if len(sources) < 2:
                return serial(sources, *args, **kwargs)
            with ThreadPoolExecutor(min(jobs, len(sources))) as pool:
                parts = list(pool.map(lambda src: serial([src], *args, **kwargs), sources))
            return [o for objs in parts for o in objs]
        cc.compile = compile_each
        cc._fastnn_parallel = True

    # ------------------------------------------------ the embeddable library
    def _lib_files(self):
        """Paths, relative to the fastnn package directory, of what
        build_libfastnn writes (the header and the link name are included)."""
        if sys.platform == "win32":
            return []
        real, link, _ = shared_lib_names()
        return ([os.path.join("lib", f) for f in
                 (real, link, static_lib_name(), "libfastnn.json")]
                + [os.path.join("lib", "pkgconfig", "fastnn.pc"),
                   os.path.join("include", "fastnn.h")])

    def _build_pkg_dir(self):
        """The fastnn package directory under build_lib (run() builds there
        even for --inplace and copies to the source tree afterwards)."""
        return os.path.join(self.build_lib, "fastnn")

    def build_libfastnn(self, base, omp, extra_ld):
        """Compile csrc/*.c (no Python) with the extension's compiler, flags
        and OpenMP, then link libfastnn.so (only FNN_API exported) and
        archive libfastnn.a from the same -fPIC objects."""
        cc = self.compiler
        pkg = self._build_pkg_dir()
        libdir = os.path.join(pkg, "lib")
        self.mkpath(os.path.join(libdir, "pkgconfig"))
        self.mkpath(os.path.join(pkg, "include"))
        cflags = list(base) + (omp[0] if omp else [])
        # The ABI needs these whatever FASTNN_DEBUG_CFLAGS says.
        for flag in ("-fvisibility=hidden", "-fPIC"):
            if flag not in cflags:
                cflags.append(flag)
        objdir = os.path.join(self.build_temp, "libfastnn")
        self.mkpath(os.path.join(objdir, "csrc"))
        macros = [("FNN_BUILDING", None)]
        # No Python include directories: the library must not need Python.h.
        # One compiler process per file at once (see _compile_in_parallel).
        saved_includes, cc.include_dirs = cc.include_dirs, []
        try:
            objects = cc.compile(csrc, output_dir=objdir, macros=macros,
                                 include_dirs=["csrc"], extra_postargs=cflags,
                                 debug=self.debug)
        finally:
            cc.include_dirs = saved_includes

        real, link, soname = shared_lib_names()
        libs = [] if sys.platform == "darwin" else ["m"]
        ldflags = (omp[1] if omp else []) + extra_ld
        if sys.platform == "darwin":
            ldflags += ["-Wl,-install_name,@rpath/" + soname]
        else:
            ldflags += ["-Wl,-soname," + soname]
        linker_so = list(cc.linker_so)
        if sys.platform == "darwin":  # LDSHARED makes a -bundle; a dylib is wanted
            drop = {"-bundle", "-undefined", "dynamic_lookup"}
            cc.linker_so = [a for a in linker_so if a not in drop] + ["-dynamiclib"]
        try:
            cc.link_shared_object(objects, real, output_dir=libdir, libraries=libs,
                                  extra_postargs=ldflags, debug=self.debug)
        finally:
            cc.linker_so = linker_so
        link_path = os.path.join(libdir, link)
        if os.path.lexists(link_path):
            os.remove(link_path)
        try:
            os.symlink(real, link_path)
        except OSError:
            shutil.copy2(os.path.join(libdir, real), link_path)

        archive = static_lib_name()
        if os.path.exists(os.path.join(libdir, archive)):
            os.remove(os.path.join(libdir, archive))  # ar would add to the old one
        cc.create_static_lib(objects, LIB_NAME, output_dir=libdir, debug=self.debug)

        self.copy_file(os.path.join("csrc", "fastnn.h"), os.path.join(pkg, "include"))
        # What a static link needs besides the archive: the OpenMP runtime,
        # libm, and the extra link flags this build used (sanitizer runtimes).
        static_private = (omp[1] if omp else []) + extra_ld + ["-l" + l for l in libs]
        info = {
            "version": self.distribution.get_version(),
            "openmp": omp is not None,
            "shared": link,
            "soname": soname,
            "static": archive,
            "static_link_flags": static_private,
        }
        with open(os.path.join(libdir, "libfastnn.json"), "w") as f:
            json.dump(info, f, indent=1, sort_keys=True)
            f.write("\n")
        with open(os.path.join(libdir, "pkgconfig", "fastnn.pc"), "w") as f:
            f.write(PC_TEMPLATE.format(version=info["version"], name=LIB_NAME,
                                       private=" ".join(static_private)))

    def _lib_output_mapping(self):
        """(built file, file in the source tree) pairs for --inplace."""
        build_py = self.get_finalized_command("build_py")
        src_pkg = build_py.get_package_dir("fastnn")
        for rel in self._lib_files():
            yield os.path.join(self._build_pkg_dir(), rel), os.path.join(src_pkg, rel)

    def copy_extensions_to_source(self):
        """--inplace (and so ``pip install -e .``): put the library, archive,
        header and pkg-config file into the source tree's fastnn/ too."""
        super().copy_extensions_to_source()
        for built, dest in self._lib_output_mapping():
            if not os.path.lexists(built):  # not built (MSVC)
                continue
            self.mkpath(os.path.dirname(dest))
            if os.path.lexists(dest):
                os.remove(dest)
            if os.path.islink(built):
                try:
                    os.symlink(os.readlink(built), dest)
                    continue
                except OSError:
                    pass
            shutil.copy2(built, dest)

    def _get_output_mapping(self):
        yield from super()._get_output_mapping()
        if self.inplace:
            yield from self._lib_output_mapping()

    def get_outputs(self):
        outputs = super().get_outputs()
        if not self.inplace:
            outputs += [os.path.join(self._build_pkg_dir(), rel)
                        for rel in self._lib_files()]
        return outputs


csrc = sorted(glob.glob(os.path.join("csrc", "*.c")))
extensions = [
    Extension(
        "fastnn._core",
        sources=[os.path.join("fastnn", "_core.pyx")] + csrc,
        # a header edit (vmath.h's functions are inlined everywhere) rebuilds too
        depends=sorted(glob.glob(os.path.join("csrc", "*.h"))),
        include_dirs=["csrc", np.get_include()],
        # FNN_STATIC: the core compiled into the extension exports nothing, so
        # an application that links libfastnn and embeds Python keeps one copy each
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"), ("FNN_STATIC", None)],
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
