"""Build and run-time configuration: instruction-set level, OpenMP, threads."""
import os
import platform
import sys

import numpy as np

from dwconv import _cupy, _kernels

__all__ = ["config", "show_config", "use_isa", "supported_isas", "release_memory"]


def supported_isas():
    """The instruction-set levels this CPU runs, from the most portable up."""
    return _kernels.supported_isas()


def use_isa(name):
    """Run the kernels at instruction-set level `name` ("baseline", "avx2", "avx512" on x86-64,
    "neon" on AArch64, in any case) from now on."""
    level = name.lower() if isinstance(name, str) else name
    if level not in _kernels.ISA_NAMES:
        raise ValueError(f"`name` must be one of {', '.join(_kernels.ISA_NAMES)} (any case), got {name!r}")
    if level not in supported_isas():
        raise ValueError(f"`name`={name!r} is not supported by this CPU (it runs {', '.join(supported_isas())})")
    _kernels.set_isa(level)


def _select_isa_at_import():
    """The best level the CPU runs, unless DWCONV_ISA names another (a level this CPU does not run
    is an error: a forced level that quietly fell back would mislead the run that asked for it)."""
    forced = os.environ.get("DWCONV_ISA", "").strip()
    level = forced.lower() or supported_isas()[-1]
    if level not in supported_isas():
        why = "not supported by this CPU" if level in _kernels.ISA_NAMES else "not an instruction-set level"
        raise ValueError(f"DWCONV_ISA={forced!r} is {why}: set it to one of {', '.join(supported_isas())} "
                         "(any case), or unset it")
    _kernels.set_isa(level)


def release_memory():
    """Give back to the system the memory dwconv keeps for large results: a result of 32 MiB or more
    leaves its memory, once its arrays are gone, for the next call's result of the same size (at
    most 4 blocks and 1 GiB wait; fresh memory costs the time its pages take to be zeroed, up to
    half of a large call's). Returns the bytes given back."""
    return _kernels.release_memory()


def config():
    """The configuration in effect, as a dict."""
    from dwconv import __version__

    return {
        "version": __version__,
        "isa": _kernels.active_isa(),
        "isas_supported": list(supported_isas()),
        "openmp": _kernels.openmp_enabled(),
        "threads": _kernels.max_threads(),
        "compile_flags": _kernels.compile_flags(),
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cupy": _cupy.available()[2],
        "kept_result_bytes": _kernels.kept_bytes(),
    }


def show_config():
    """Print the version, instruction-set level, OpenMP state, thread count and build flags."""
    c = config()
    print(f"dwconv {c['version']}")
    print(f"  instruction set : {c['isa']} (this CPU runs: {', '.join(c['isas_supported'])})")
    print(f"  OpenMP          : {'on' if c['openmp'] else 'off (serial build)'}")
    print(f"  threads         : {c['threads']}")
    print(f"  compile flags   : {c['compile_flags']}")
    print(f"  numpy {c['numpy']}, Python {c['python']}, {c['machine']}")
    print(f"  GPU (CuPy)      : {c['cupy']}")
