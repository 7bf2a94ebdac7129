"""Fork safety: ``multiprocessing`` workers forked after the parent ran multithreaded convolutions
compute correct results and do not hang (see dwconv/_fork.py).

Each scenario runs in a fresh interpreter, with OMP_NUM_THREADS=4 so that the parent really starts
a thread pool whatever the machine's core count. A hang fails the test: the scenario gives its
workers a minute, and should it hang itself, it is killed with its workers after three.
"""

import os

import pytest

import dwconv
from fresh_python import fresh_python

if not hasattr(os, "fork"):
    pytest.skip("no fork on this platform", allow_module_level=True)

SCENARIO = r"""
import multiprocessing, sys, threading
import numpy as np
import dwconv
from dwconv import _fork, _kernels
from reference import conv2d_backprop_filter, conv2d_forward

scenario = sys.argv[1]
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 48, 48, 32))  # 2*48*48*32*9 multiply-adds: parallel
w = rng.standard_normal((3, 3, 32, 1))
dy = rng.standard_normal((2, 48, 48, 32))
args = ((1, 1), ((1, 1), (1, 1)), "NHWC", (1, 1))
expected = conv2d_forward(x, w, *args), conv2d_backprop_filter(x, w.shape, dy, *args)


def convolve(_=None):
    return (dwconv.depthwise_conv2d(x, w, 1, 1, num_threads=4),
            dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, 1, 1, num_threads=4),
            _fork.serial_only)


def check(results):
    for y, dw, _ in results:
        np.testing.assert_allclose(y, expected[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dw, expected[1], rtol=1e-12, atol=1e-10)


def unprotected(_):
    # a parallel region straight through the kernels, as if dwconv/_fork.py did not exist
    y = np.empty_like(x)
    g = dwconv._args.geometry(x.shape, w.shape, 1, 1)
    _kernels.forward(x.reshape(-1), w.reshape(-1), None, y.reshape(-1), g, None, 4)
    return y


check([convolve()])  # the parent's thread pool now exists
stop, failures = threading.Event(), []


def hammer():
    try:
        while not stop.is_set():
            check([convolve()])
    except Exception as exc:
        failures.append(exc)


hammering = threading.Thread(target=hammer)
if scenario == "busy-parent":  # another thread of the parent keeps convolving while it forks
    hammering.start()
if scenario in ("fallback", "unprotected"):  # a runtime that cannot shut its pool down
    _kernels.release_threads = lambda: 1
context = multiprocessing.get_context("fork")
with context.Pool(2) as pool:  # leaving the block terminates the workers, hung or not
    if scenario == "unprotected":
        try:
            pool.map_async(unprotected, range(2)).get(timeout=5)
            print("no hang")
        except multiprocessing.TimeoutError:
            print("hung")
        sys.exit(0)
    results = pool.map_async(convolve, range(4)).get(timeout=60)
stop.set()
if scenario == "busy-parent":
    hammering.join()
assert not failures, failures
check(results)
assert all(serial == (scenario == "fallback") for _, _, serial in results), [r[2] for r in results]
check([convolve()])  # and the parent still runs on its fresh pool
print("ok")
"""


@pytest.mark.parametrize("scenario", ["release", "busy-parent", "fallback"])
def test_forked_workers_run_dwconv(scenario):
    """release: the pool is shut down before the fork, and the workers run on pools of their own;
    busy-parent: the same while another thread of the parent is inside the kernels;
    fallback: a runtime that cannot shut the pool down: the workers run on one thread."""
    run = fresh_python(SCENARIO, scenario, timeout=180, OMP_NUM_THREADS="4")
    assert run.finished, f"{scenario}: hung after fork; output: {run.stdout[-3000:]}"
    assert run.returncode == 0 and run.stdout.strip() == "ok", (run.stdout[-3000:], run.stderr[-3000:])


def _gnu_openmp():
    try:
        with open(f"/proc/{os.getpid()}/maps") as maps:
            return "libgomp" in maps.read()
    except OSError:
        return False


@pytest.mark.skipif(not (dwconv._kernels.openmp_enabled() and _gnu_openmp()), reason="needs GNU OpenMP")
def test_the_hang_is_real():
    """Without dwconv/_fork.py's protection a forked worker of GNU OpenMP hangs: the tests above
    can fail."""
    run = fresh_python(SCENARIO, "unprotected", timeout=120, OMP_NUM_THREADS="4")
    assert run.finished and run.stdout.strip() == "hung", (run.stdout[-3000:], run.stderr[-3000:])
