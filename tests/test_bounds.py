"""The debug build's bounds assertions (DWCONV_DEBUG=1, dwconv/_bounds.h) catch an overrun.

The kernels are handed buffers one element shorter than the geometry says, as a scheduling bug
would: the debug build must abort with a message before the micro-kernel touches memory outside
them. (Run in a subprocess; a release build would corrupt memory, so these tests skip there.)
"""

import signal

import pytest

from dwconv import _kernels
from fresh_python import fresh_python

pytestmark = pytest.mark.skipif("-DDWCONV_DEBUG" not in _kernels.compile_flags(),
                                reason="needs the debug build (DWCONV_DEBUG=1)")

OVERRUN = r"""
import sys
import numpy as np
from dwconv import _args, _kernels

fmt, width, short = sys.argv[1], int(sys.argv[2]), sys.argv[3]
shape = (1, 6, width, 40) if fmt == "NHWC" else (1, 40, 6, width)
x = np.ones(shape, np.float32).reshape(-1)
w = np.ones((3, 3, 40, 1), np.float32).reshape(-1)
g = _args.geometry(shape, (3, 3, 40, 1), 1, 1, fmt)
y = np.zeros(x.size, np.float32)
dy = np.ones(x.size, np.float32)
dfilters = np.zeros(9 * 40, np.float32)
if short == "x":
    _kernels.forward(x[:-1], w, None, y, g, None, 1)
elif short == "y":
    _kernels.forward(x, w, None, y[:-1], g, None, 1)
else:  # the filter gradient reading one element past the output gradient
    _kernels.filter_grad(x, dy[:-1], dfilters, None, g, 1)
print("no abort")
"""


# NCHW planes 7 wide take the packed path (planes transposed into scratch), 140 wide the plain one
@pytest.mark.parametrize("fmt, width", [("NHWC", 7), ("NCHW", 7), ("NCHW", 140)])
@pytest.mark.parametrize("short", ["x", "y", "dy"])
def test_overrun_aborts(fmt, width, short):
    run = fresh_python(OVERRUN, fmt, str(width), short, timeout=120)
    assert run.returncode == -signal.SIGABRT, (run.returncode, run.stdout, run.stderr[-2000:])
    assert "dwconv: bounds check failed" in run.stderr, run.stderr[-2000:]
