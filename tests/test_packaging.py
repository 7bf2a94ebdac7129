"""Packaging: the compiler check, the build flags, the built extension's debug info, one version, the
installed metadata and the message of a source tree whose extension was never built. (.ci/run checks
the wheel itself: its size, its files and its license.)"""

import ast
import importlib.metadata
import json
import os
import pathlib
import shutil
import subprocess
import sys
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy
import pytest

import dwconv
from dwconv import _kernels

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = pathlib.Path(dwconv.__file__).resolve().parent


def function_of_setup_py(name):
    """The function `name` of setup.py, compiled alone: running setup.py would build the extension."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    [definition] = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name]
    namespace = {}
    exec(compile(ast.Module([definition], type_ignores=[]), "setup.py", "exec"), namespace)
    return namespace[name]


def installed_distribution():
    """dwconv's installed distribution when it is the dwconv these tests import (an install of the wheel,
    or an editable install of this package's checkout), else None."""
    try:
        dist = importlib.metadata.distribution("dwconv")
    except importlib.metadata.PackageNotFoundError:
        return None
    direct_url = json.loads(dist.read_text("direct_url.json") or "{}")
    if direct_url.get("dir_info", {}).get("editable"):
        source = pathlib.Path(url2pathname(urlparse(direct_url["url"]).path)).resolve()
        return dist if source == PACKAGE.parent else None
    return dist if pathlib.Path(dist.locate_file("dwconv/__init__.py")).resolve() == PACKAGE / "__init__.py" else None


def test_release_flags_drop_the_debug_info_python_asks_for():
    extension_flags = function_of_setup_py("extension_flags")
    compile_flags, link_flags = extension_flags(debug=False, native=False, openmp="-fopenmp")
    assert "-O2" in compile_flags and "-fpeel-loops" in compile_flags  # (the tiles' loops must unroll)
    assert "-g" not in compile_flags and "-g0" in compile_flags
    assert "-fno-asynchronous-unwind-tables" in compile_flags  # (nor unwind tables)
    assert "-ffast-math" not in compile_flags and "-march=native" not in compile_flags
    assert link_flags == ["-fopenmp"]  # (the symbol table stays: tests/test_codegen.py reads it)


def test_debug_flags_keep_the_debug_info():
    extension_flags = function_of_setup_py("extension_flags")
    compile_flags, link_flags = extension_flags(debug=True, native=False, openmp=None)
    assert "-g" in compile_flags and "-g0" not in compile_flags
    assert "-DDWCONV_DEBUG" in compile_flags
    assert link_flags == []


def test_msvc_is_refused_before_anything_compiles():
    refuse_msvc = function_of_setup_py("refuse_msvc")
    with pytest.raises(RuntimeError, match="need GCC or Clang"):
        refuse_msvc("msvc")
    refuse_msvc("unix")


@pytest.mark.skipif(shutil.which("objdump") is None, reason="needs objdump")
def test_extension_has_debug_info_only_in_the_debug_build():
    with open(_kernels.__file__, "rb") as extension:
        if extension.read(4) != b"\x7fELF":
            pytest.skip("reads ELF sections only")
    sections = subprocess.run(["objdump", "-h", _kernels.__file__], capture_output=True, text=True,
                              check=True).stdout
    debug_build = "-DDWCONV_DEBUG" in _kernels.compile_flags()
    assert (".debug_info" in sections) == debug_build, (_kernels.compile_flags(), sections)


def test_version_is_set_in_the_package_only():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "dwconv.__version__"}


def test_installed_metadata_matches_the_package():
    dist = installed_distribution()
    if dist is None:
        pytest.skip("the dwconv imported is not the installed one")
    assert dist.version == dwconv.__version__
    assert "LICENSE" in dist.metadata.get_all("License-File", [])


@pytest.mark.parametrize("command", [["-c", "import dwconv"], ["-m", "dwconv", "info"]])
def test_source_tree_without_the_extension_says_how_to_build_it(tmp_path, command):
    source_tree = tmp_path.resolve()
    shutil.copytree(PACKAGE, source_tree / "dwconv", ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    # -S: no site-packages' .pth files, whose finder of an editable install would supply the checkout's
    # dwconv._kernels; NumPy's folder comes on the path by itself, after the copy in the working directory
    env = dict(os.environ, PYTHONPATH=str(pathlib.Path(numpy.__file__).parents[1]))
    run = subprocess.run([sys.executable, "-S", *command], cwd=source_tree, env=env, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode != 0
    message = run.stderr.strip().splitlines()[-1]
    assert message.startswith(f"ImportError: dwconv's compiled module dwconv._kernels is missing in this source "
                              f"tree ({source_tree / 'dwconv'})"), run.stderr
    assert "`pip install -e .`" in message and "`python setup.py build_ext --inplace`" in message, message
    assert "run from outside the checkout" in message, message
