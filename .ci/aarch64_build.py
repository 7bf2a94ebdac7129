"""Cross-compile dwconv._kernels for aarch64: python .ci/aarch64_build.py SYSROOT NUMPY_INCLUDE.

Run from a copy of the source tree (it writes dwconv/_kernels.c and the extension there) by a host
Python with the build requirements (Cython, setuptools). The build is setup.py's own: its cythonize
call (same directives) and its extension_flags() for a release build with OpenMP, compiled and
linked the way setuptools would, but with the compiler, flags and file suffix of the arm64 Python
found in SYSROOT (Debian's packages unpacked there), from that Python's sysconfig data. setup.py's
BuildExt cannot do this itself: it runs an OpenMP test program, which cannot run on the host.
"""
import runpy
import shlex
import subprocess
import sys

import setuptools

sysroot, numpy_include = sys.argv[1:]

# Execute setup.py without its setup() call: it cythonizes, and defines extension_flags().
setuptools.setup = lambda **kwargs: None
setup_py = runpy.run_path("setup.py")
[ext] = setup_py["extensions"]
[source] = ext.sources  # dwconv/_kernels.c after cythonize
compile_flags, link_flags = setup_py["extension_flags"](False, False, "-fopenmp")

target = runpy.run_path(f"{sysroot}/usr/lib/python3.11/_sysconfigdata__linux_aarch64-linux-gnu.py")["build_time_vars"]
include = [f"-I{d}" for d in ext.include_dirs] + [
    # Python.h, and the directory holding aarch64-linux-gnu/python3.11/pyconfig.h that it includes
    f"-I{sysroot}{target['INCLUDEPY']}", f"-I{sysroot}/usr/include", f"-I{numpy_include}"]
macro = [f"-DDWCONV_CFLAGS={' '.join(compile_flags)}"]  # what BuildExt defines, for compile_flags()
obj = source[:-2] + ".o"
out = ext.name.replace(".", "/") + target["EXT_SUFFIX"]  # dwconv/_kernels.cpython-311-aarch64-linux-gnu.so


def run(cmd):
    print(" ".join(shlex.quote(c) for c in cmd), flush=True)
    subprocess.run(cmd, check=True)


run([*shlex.split(target["CC"]), *shlex.split(target["CFLAGS"]), *shlex.split(target["CCSHARED"]), *include, *macro,
     "-c", source, "-o", obj, *compile_flags])
run([*shlex.split(target["LDSHARED"]), obj, "-o", out, *link_flags])
print(out)
