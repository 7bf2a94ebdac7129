"""dwconv's CUDA kernels run on the CPU, for machines without a GPU.

``emulated_cupy()`` returns a stand-in for the ``cupy`` module holding NumPy arrays, whose
``RawModule`` compiles the kernel source with the host C++ compiler instead of NVRTC. Each launch
runs every block of the grid in turn and the block's threads as fibers (``ucontext``) on one OS
thread: a fiber runs until ``__syncthreads()`` or its end, then the next one, so a barrier holds
as on the GPU. A barrier that only some threads of a block reach is reported as an error (on a
GPU it would hang or corrupt the block).

What this cannot show: speed, races between blocks, and anything of the real NVRTC/PTX path
(the float16 conversions there are PTX instructions; here they are the compiler's _Float16).
"""
import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import types

import numpy as np

COMPILER = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")

_PRELUDE = r"""
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>
#include <ucontext.h>
struct dim3 { unsigned x, y, z; };
static dim3 threadIdx, blockIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __shared__
#define __forceinline__ inline
using std::erf; using std::exp; using std::max; using std::min; using std::tanh;
void __syncthreads();
"""

_DRIVER = r"""
alignas(16) unsigned char shared_bytes[1 << 16];

static std::vector<ucontext_t> fibers;
static std::vector<char> finished;
static ucontext_t scheduler;
static int current;
static void **launch_args;

void __syncthreads() { swapcontext(&fibers[current], &scheduler); }

template <typename... P, size_t... I>
static void call(void (*kernel)(P...), void **args, std::index_sequence<I...>) {
    kernel(*static_cast<P *>(args[I])...);
}
template <typename... P>
static void invoke(void (*kernel)(P...), void **args) { call(kernel, args, std::index_sequence_for<P...>{}); }

static void thread_main() {
    invoke(&KERNEL, launch_args);
    finished[current] = 1;
}

// 0 on success, 1 where the threads of a block disagree about a barrier.
extern "C" int launch(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, void **args) {
    const int threads = bx * by * bz;
    const size_t stack = 1 << 15;
    static std::vector<char> stacks;  // kept between launches: allocating and zeroing them dominated
    if (stacks.size() < stack * threads) stacks.resize(stack * threads);
    fibers.assign(threads, ucontext_t());
    launch_args = args;
    gridDim = {gx, gy, gz};
    blockDim = {bx, by, bz};
    for (unsigned z = 0; z < gz; ++z) for (unsigned y = 0; y < gy; ++y) for (unsigned x = 0; x < gx; ++x) {
        blockIdx = {x, y, z};
        finished.assign(threads, 0);
        for (int k = 0; k < threads; ++k) {
            getcontext(&fibers[k]);
            fibers[k].uc_stack.ss_sp = &stacks[k * stack];
            fibers[k].uc_stack.ss_size = stack;
            fibers[k].uc_link = &scheduler;
            makecontext(&fibers[k], thread_main, 0);
        }
        for (;;) {  // one pass: every thread from one barrier to the next, or to its end
            int done = 0;
            for (int k = 0; k < threads; ++k) {
                current = k;
                threadIdx = {k % bx, k / bx % by, k / (bx * by)};
                swapcontext(&scheduler, &fibers[k]);
                done += finished[k];
            }
            if (done == threads) break;
            if (done) return 1;
        }
    }
    return 0;
}
"""

_LIBRARIES = {}


def _library(source, expression):
    """The shared library running kernel `expression` of `source`, compiled once (cached on disk)."""
    code = _PRELUDE + source + f"\n#define KERNEL {expression}\n" + _DRIVER
    key = hashlib.sha256(code.encode()).hexdigest()[:24]
    if key not in _LIBRARIES:
        folder = os.path.join(tempfile.gettempdir(), f"dwconv-cuda-emulation-{os.getuid()}")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{key}.so")
        if not os.path.exists(path):
            cpp = os.path.join(folder, f"{key}.cpp")
            with open(cpp, "w") as f:
                f.write(code)
            partial = f"{path}.{os.getpid()}"
            subprocess.run([COMPILER, "-std=c++17", "-O1", "-w", "-shared", "-fPIC", cpp, "-o", partial],
                           check=True, capture_output=True, text=True)
            os.replace(partial, path)
        library = ctypes.CDLL(path)
        library.launch.restype = ctypes.c_int
        _LIBRARIES[key] = library
    return _LIBRARIES[key]


class _Device:
    id = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class EmulatedArray:
    """A NumPy array posing as a CuPy array: what dwconv's GPU path uses of one, no more."""

    def __init__(self, array):
        self.array = np.asarray(array)

    @property
    def __cuda_array_interface__(self):
        return self.array.__array_interface__

    device = _Device()
    shape = property(lambda self: self.array.shape)
    ndim = property(lambda self: self.array.ndim)
    dtype = property(lambda self: self.array.dtype)
    size = property(lambda self: self.array.size)
    flags = property(lambda self: self.array.flags)

    def astype(self, dtype, order="K", copy=True):
        return EmulatedArray(self.array.astype(dtype, order=order, copy=copy))

    def copy(self):
        return EmulatedArray(self.array.copy())

    def reshape(self, *shape):
        return EmulatedArray(self.array.reshape(*shape))

    def transpose(self, *axes):
        return EmulatedArray(self.array.transpose(*axes))

    def repeat(self, repeats, axis=None):
        return EmulatedArray(self.array.repeat(repeats, axis))

    def __getitem__(self, key):
        return EmulatedArray(self.array[_unwrap(key)])

    def __setitem__(self, key, value):
        self.array[_unwrap(key)] = _unwrap(value)


def _unwrap(value):
    return value.array if isinstance(value, EmulatedArray) else value


def _elementwise(function):
    """A NumPy function as CuPy's: emulated arrays in, out= written in place, an emulated array out."""
    def emulated(*args, **kwargs):
        result = function(*map(_unwrap, args), **{k: _unwrap(v) for k, v in kwargs.items()})
        return kwargs["out"] if "out" in kwargs else None if result is None else EmulatedArray(result)
    return emulated


class _Kernel:
    def __init__(self, library):
        self.library = library

    def __call__(self, grid, block, args, shared_mem=0):
        assert shared_mem <= 1 << 16, shared_mem
        grid, block = (tuple(grid) + (1, 1))[:3], (tuple(block) + (1, 1))[:3]
        assert all(isinstance(a, (EmulatedArray, np.int32)) for a in args), [type(a) for a in args]
        values = [ctypes.c_void_p(a.array.ctypes.data) if isinstance(a, EmulatedArray) else ctypes.c_int32(int(a))
                  for a in args]
        pointers = (ctypes.c_void_p * len(values))(*[ctypes.addressof(v) for v in values])
        if self.library.launch(*grid, *block, pointers):
            raise RuntimeError("the threads of a block did not all reach the same __syncthreads()")


class _RawModule:
    def __init__(self, code, options=(), name_expressions=()):
        self.code = code

    def get_function(self, expression):
        return _Kernel(_library(self.code, expression))


def emulated_cupy():
    """A stand-in for the ``cupy`` module (install it in ``sys.modules``), or None without a compiler."""
    if COMPILER is None:
        return None
    return types.SimpleNamespace(
        __name__="cupy", ndarray=EmulatedArray, RawModule=_RawModule,
        asarray=lambda a: a if isinstance(a, EmulatedArray) else EmulatedArray(np.asarray(_unwrap(a))),
        empty=lambda shape, dtype: EmulatedArray(np.empty(shape, dtype)),
        may_share_memory=lambda a, b: np.may_share_memory(_unwrap(a), _unwrap(b)),
        asnumpy=_unwrap, rint=_elementwise(np.rint), clip=_elementwise(np.clip), isnan=_elementwise(np.isnan),
        copyto=_elementwise(np.copyto))
