"""dwconv as a guest in someone else's process: no leaks, no hidden copies, no changed
floating-point state.

tracemalloc sees NumPy's allocations but not the kernels' C scratch (malloc'd plan arrays and the
filter gradient's partial sums); that scratch is checked through the peak resident set size of a
large call instead, in a fresh interpreter.
"""

import ast
import os
import sys
import tracemalloc

import numpy as np
import pytest

import dwconv
from dwconv._config import config
from fresh_python import fresh_python
from sweep import to_format

LINUX = sys.platform.startswith("linux")


def run_python(code):
    """The output of `code` run in a fresh interpreter."""
    run = fresh_python(code)
    assert run.finished and run.returncode == 0, run.stderr[-3000:]
    return run.stdout


# ---------------------------------------------------------------------------
# leaks


def resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def small_calls():
    """One round of small calls through every entry point and the features that allocate plans."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 6, 5)).astype(np.float32)
    w = rng.standard_normal((3, 3, 5, 2)).astype(np.float32)
    bias = rng.standard_normal(10).astype(np.float32)
    out = np.empty((2, 5, 4, 10), np.float32)
    dy = rng.standard_normal((2, 7, 6, 10)).astype(np.float32)
    x_nchw, x_u8, x_f16 = to_format(x, "NCHW"), (x * 50 + 100).astype(np.uint8), x.astype(np.float16)

    def round_():
        dwconv.depthwise_conv2d(x, w, bias=bias, activation="gelu", out=out)
        dwconv.depthwise_conv2d(x_nchw, w, 2, 1, data_format="NCHW", padding_mode="reflect")
        dwconv.depthwise_conv2d(x_u8, w, 1, "SAME", padding_mode="circular", activation="relu")
        dwconv.depthwise_conv2d(x_f16, w, 1, "SAME", dtype=np.float16)
        dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, 1, "SAME", padding_mode="replicate")
        dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, 1, "SAME", padding_mode="reflect")
        dwconv.depthwise_conv2d_grad(x, w, dy, 1, "SAME")
        dwconv.depthwise_conv2d_grad(x_f16, w, dy.astype(np.float16), 1, "SAME", padding_mode="circular")
        try:
            dwconv.depthwise_conv2d(x, w, padding=-1)  # an error path allocates nothing lasting either
        except ValueError:
            pass
    return round_


@pytest.mark.skipif(not LINUX, reason="reads /proc/self/statm")
def test_many_calls_do_not_grow_memory():
    """20,000 calls (after a warm-up) grow the resident set by less than 5 MB."""
    round_ = small_calls()
    for _ in range(300):
        round_()
    before = resident_bytes()
    for _ in range(20_000 // 9):
        round_()
    growth = resident_bytes() - before
    assert growth < 5 * 2 ** 20, f"resident set grew by {growth / 2 ** 20:.1f} MiB"


# ---------------------------------------------------------------------------
# no hidden copies

SLACK = 64 * 1024  # Python objects of one call: the geometry, argument tuples, array headers


def traced_peak(fn):
    """The peak of memory traced by tracemalloc while `fn()` runs, and its result."""
    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, result


@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_forward_allocates_only_its_output(fmt, dtype, mode):
    """No padded, transposed or converted copy of a C-contiguous input: the forward's peak is its
    output (a copy of x would add 4 MiB or more)."""
    rng = np.random.default_rng(1)
    x = to_format(rng.standard_normal((2, 128, 128, 32)), fmt).astype(dtype)
    w, bias = rng.standard_normal((5, 5, 32, 1)).astype(dtype), rng.standard_normal(32).astype(dtype)
    peak, y = traced_peak(lambda: dwconv.depthwise_conv2d(x, w, 1, "SAME", data_format=fmt, bias=bias,
                                                          padding_mode=mode, activation="relu"))
    assert peak <= y.nbytes + SLACK, (peak, y.nbytes)


@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradients_allocate_only_their_results(fmt, dtype):
    """The backward's NumPy allocations are its results (its C scratch is checked below)."""
    rng = np.random.default_rng(2)
    x = to_format(rng.standard_normal((2, 128, 128, 32)), fmt).astype(dtype)
    dy = to_format(rng.standard_normal((2, 64, 64, 32)), fmt).astype(dtype)
    w = rng.standard_normal((3, 3, 32, 1)).astype(dtype)
    kwargs = dict(strides=2, padding="SAME", data_format=fmt, padding_mode="circular")
    peak, g = traced_peak(lambda: dwconv.depthwise_conv2d_grad(x, w, dy, **kwargs))
    assert peak <= g.input.nbytes + g.filters.nbytes + g.bias.nbytes + SLACK, peak
    peak, dx = traced_peak(lambda: dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, **kwargs))
    assert peak <= dx.nbytes + SLACK, peak
    peak, dw = traced_peak(lambda: dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, **kwargs))
    assert peak <= dw.nbytes + SLACK, peak


@pytest.mark.skipif(not LINUX, reason="ru_maxrss in kilobytes, as on Linux")
def test_backward_scratch_is_bounded():
    """The peak resident set of a large backward grows by its results plus a bounded scratch (a
    copy of either 64 MiB input would add 64 MiB)."""
    growth, results = map(int, run_python(
        "import resource, numpy as np, dwconv\n"
        "peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        "x = np.ones((2, 512, 512, 32), np.float32); dy = np.ones_like(x); w = np.ones((3, 3, 32), np.float32)\n"
        "dwconv.depthwise_conv2d_grad(x[:, :16], w, dy[:, :16], 1, 'SAME', padding_mode='reflect')  # warm\n"
        "before = peak()\n"
        "g = dwconv.depthwise_conv2d_grad(x, w, dy, 1, 'SAME', padding_mode='reflect')\n"
        "print(peak() - before, g.input.nbytes + g.filters.nbytes + g.bias.nbytes)\n").split())
    assert growth <= results + 16 * 2 ** 20, (growth, results)


# ---------------------------------------------------------------------------
# large results' memory, kept for the next result of the same size

LARGE = (1, 256, 256, 144)  # float32: 36 MiB, from 32 MiB up results' memory is kept


def large_result(value):
    """A 3x3 "SAME" convolution of an image of `value`s with a filter of ones: 9 * value inside."""
    return dwconv.depthwise_conv2d(np.full(LARGE, value, np.float32), np.ones((3, 3, LARGE[3]), np.float32), 1,
                                   "SAME")


def test_large_results_reuse_the_memory_of_results_gone():
    dwconv.release_memory()
    y = large_result(1.0)
    address = y.ctypes.data
    assert address % 64 == 0 and y.flags.writeable
    del y
    assert config()["kept_result_bytes"] == np.prod(LARGE) * 4
    y = large_result(2.0)
    assert y.ctypes.data == address
    assert y[0, 1:-1, 1:-1].min() == y[0, 1:-1, 1:-1].max() == 18 and y[0, 0, 0, 0] == 8
    del y
    assert dwconv.release_memory() == np.prod(LARGE) * 4
    assert config()["kept_result_bytes"] == 0


def test_a_view_keeps_a_large_result_memory_its_own():
    """Memory returns to the pool only when the last array viewing it is gone."""
    dwconv.release_memory()
    y = large_result(1.0)
    address, view = y.ctypes.data, y[0, 100]
    del y
    assert config()["kept_result_bytes"] == 0
    other = large_result(3.0)
    assert other.ctypes.data != address
    np.testing.assert_array_equal(view[1:-1], 9)
    del view
    assert config()["kept_result_bytes"] == np.prod(LARGE) * 4
    del other
    assert dwconv.release_memory() == 2 * np.prod(LARGE) * 4


def _vm_flags(address):
    """The kernel's VmFlags of the mapping that holds `address` (Linux's /proc/self/smaps)."""
    mapping = None
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            if "-" in line.split(" ", 1)[0]:
                lo, hi = (int(a, 16) for a in line.split(" ", 1)[0].split("-"))
                mapping = lo <= address < hi
            elif mapping and line.startswith("VmFlags:"):
                return line.split()[1:]
    raise AssertionError(f"no mapping holds {address:#x}")


@pytest.mark.skipif(not os.path.exists("/sys/kernel/mm/transparent_hugepage/enabled"),
                    reason="Linux's transparent huge pages only")
def test_huge_results_ask_for_huge_pages():
    """A result of 256 MiB or more gets new memory advised for huge pages, as NumPy's is (fresh 4 KiB
    pages, each zeroed on its own fault, made an 8000x8000x3 float32 result's call 2-3x slower);
    smaller ones do not (dwconv.dask's chunk results met the system compacting memory for them)."""
    dwconv.release_memory()
    huge = dwconv.depthwise_conv2d(np.ones((1, 4096, 4096, 4), np.float32), np.ones((1, 1, 4), np.float32))
    assert huge.nbytes == 256 * 2 ** 20
    assert "hg" in _vm_flags(huge.ctypes.data + huge.nbytes // 2)
    del huge
    dwconv.release_memory()
    y = large_result(1.0)
    assert "hg" not in _vm_flags(y.ctypes.data + y.nbytes // 2)
    del y
    dwconv.release_memory()


def test_at_most_four_blocks_wait():
    dwconv.release_memory()
    results = [large_result(1.0) for _ in range(6)]
    del results
    assert dwconv.release_memory() == 4 * np.prod(LARGE) * 4


# ---------------------------------------------------------------------------
# floating-point state

FP_STATE = r"""
import ctypes, ctypes.util, platform, sys
import numpy as np

def control():
    # x86-64 glibc: fenv_t holds the x87 control word at byte 0 and MXCSR at byte 28; the sticky
    # exception flags (MXCSR bits 0-5) are left out
    if not (sys.platform.startswith("linux") and platform.machine() == "x86_64"):
        return None
    env = (ctypes.c_ubyte * 32)()
    assert ctypes.CDLL(ctypes.util.find_library("m")).fegetenv(env) == 0
    return bytes(env[0:2]).hex(), int.from_bytes(bytes(env[28:32]), "little") & ~0x3F

def denormals():
    # flush-to-zero would make the product 0, denormals-are-zero the sum
    tiny = np.float32(2.0 ** -140)
    return bool(tiny * np.float32(0.5) != 0 and tiny + np.float32(2.0 ** -148) != tiny)

states = [(control(), denormals())]
import dwconv
from dwconv._config import config
states.append((control(), denormals()))
x = np.full((2, 64, 64, 64), 2.0 ** -140, np.float32)  # subnormal, in a call big enough for threads
y = dwconv.depthwise_conv2d(x, np.full((3, 3, 64), 0.5, np.float32), 1, "SAME")
states.append((control(), denormals()))
print(repr(states))
print(float(y.min()), float(y.max()))
"""


def test_import_and_calls_keep_floating_point_state():
    """Importing dwconv and running it leaves the FPU control words (MXCSR's FTZ and DAZ among
    them) as they were, denormals keep working in the caller, and the kernels compute with them."""
    states, extremes = run_python(FP_STATE).strip().split("\n")
    states = ast.literal_eval(states)
    assert states[0][1], "denormals do not work even before importing dwconv"
    assert states[1] == states[0], f"importing dwconv changed the floating-point state: {states}"
    assert states[2] == states[0], f"a call changed the floating-point state: {states}"
    # every output sums 4 to 9 products 2**-141: subnormal, and exact
    assert [float(v) for v in extremes.split()] == [4 * 2.0 ** -141, 9 * 2.0 ** -141], extremes
