"""Build dwconv's compiled core.

The kernels are one Cython module, dwconv._kernels, compiled by GCC or Clang (the micro-kernels use
their vector extensions: MSVC is refused) with OpenMP when the compiler has it (a serial build from
the same source otherwise). Its micro-kernels carry code for every x86-64 instruction-set level and
pick one at import, so the default build stays portable: -O2 -fpeel-loops, never -ffast-math, and
-march=native only on request.

Environment switches:
  DWCONV_NO_OPENMP=1  build without OpenMP
  DWCONV_NATIVE=1     add -march=native (for a build that only runs on this machine)
  DWCONV_DEBUG=1      Cython bounds checks and the micro-kernels' bounds assertions on (dwconv/_bounds.h),
                      -O1 -g (the release build has no debug info: -g0)
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import warnings

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPENMP_TEST = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n == omp_get_max_threads() ? 0 : 1;
    }
    """
)


def env_flag(name):
    return os.environ.get(name, "").strip() not in ("", "0")


def openmp_flags(compiler):
    """The compile/link flag that enables OpenMP, or None when a test program does not build."""
    if env_flag("DWCONV_NO_OPENMP"):
        return None
    flag = "-fopenmp"
    tmp = tempfile.mkdtemp()
    try:
        source = os.path.join(tmp, "openmp_test.c")
        with open(source, "w") as f:
            f.write(OPENMP_TEST)
        objects = compiler.compile([source], output_dir=tmp, extra_postargs=[flag])
        compiler.link_executable(objects, os.path.join(tmp, "openmp_test"), extra_postargs=[flag])
        subprocess.run([os.path.join(tmp, "openmp_test")], check=True, capture_output=True)
        return flag
    except Exception as exc:  # any failure means: no usable OpenMP
        warnings.warn(f"dwconv: the compiler has no usable OpenMP ({exc}); building a serial extension")
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def refuse_msvc(compiler_type):
    """Stop the build before it compiles anything when the compiler is MSVC: the micro-kernels are
    written in GCC and Clang's dialect (vector types, target pragmas, __builtin_cpu_supports)."""
    if compiler_type == "msvc":
        raise RuntimeError("dwconv's kernels need GCC or Clang (they use their vector extensions and target "
                           "pragmas), and MSVC compiles neither: build with GCC or Clang")


def extension_flags(debug, native, openmp):
    """(compile flags, link flags) of the extension, for the OpenMP flag `openmp` (None: a serial
    build). They come after Python's own flags, so they override them."""
    if debug:
        flags = ["-O1", "-g", "-DDWCONV_DEBUG"]
    else:
        # Python's CFLAGS carry -g, whose debug info made up 14 of the extension's 16 MB. -O2 with -O3's
        # complete peeling of loops of a few iterations (the micro-kernels' tiles, which must unroll
        # to stay in registers: without it the NHWC 3- and 4-channel path ran 1.4-2x slower), not the
        # rest of -O3, which added 0.23 MB of code (1.78 MB against 1.55 MB) for no speed measured
        # (forward and backward on the bench suite and the image-filter cases, 0.96-1.05x)
        # No unwind tables either (35 KB of the installed 2 MiB): C raises no exceptions, and a
        # profiler still finds every function by its symbol.
        flags = ["-O2", "-fpeel-loops", "-g0", "-fno-asynchronous-unwind-tables"]
    if native:
        flags.append("-march=native")
    if openmp:
        flags.append(openmp)
    return flags, [openmp] if openmp else []


class BuildExt(build_ext):
    def build_extensions(self):
        refuse_msvc(self.compiler.compiler_type)
        compile_flags, link_flags = extension_flags(env_flag("DWCONV_DEBUG"), env_flag("DWCONV_NATIVE"),
                                                    openmp_flags(self.compiler))
        for ext in self.extensions:
            ext.extra_compile_args = compile_flags
            ext.extra_link_args = link_flags
            ext.define_macros.append(("DWCONV_CFLAGS", " ".join(compile_flags)))
        super().build_extensions()


debug = env_flag("DWCONV_DEBUG")
extensions = cythonize(
    [Extension("dwconv._kernels", ["dwconv/_kernels.pyx"], include_dirs=["dwconv"],
               depends=["dwconv/_openmp.pxd", *glob.glob("dwconv/*.h"), *glob.glob("dwconv/*.pxi")])],
    compiler_directives={
        "language_level": 3,
        "boundscheck": debug,
        "wraparound": False,
        "cdivision": True,
        "initializedcheck": debug,
    },
)

setup(ext_modules=extensions, cmdclass={"build_ext": BuildExt})
