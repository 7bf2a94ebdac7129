"""pytest configuration for the dwconv test suite.

Its presence (together with the *absence* of ``tests/__init__.py``) keeps pytest's default
"prepend" import mode putting this directory on ``sys.path``, so the test modules can simply do
``from reference import ...`` to reach the NumPy reference in ``tests/reference.py``.

It holds the fixture running a test at every instruction-set level the CPU has, and registers
the hypothesis profiles of the fuzz tests (tests/test_fuzz.py): "ci", bounded,
by default; "long" with ``DWCONV_FUZZ=long``, for long local runs. Hypothesis is optional: without
it the fuzz tests skip.
"""
import os

import pytest

import dwconv

# pytester: a test of the isa_level fixture runs pytest on a test that uses it (tests/test_forward.py)
pytest_plugins = ["pytester"]

try:
    from hypothesis import settings
except ImportError:
    settings = None

if settings is not None:
    # no deadline: a call's time depends on the drawn shapes and on the machine's load
    settings.register_profile("ci", max_examples=300, deadline=None, print_blob=True)
    settings.register_profile("long", max_examples=20_000, deadline=None, print_blob=True)
    settings.load_profile("long" if os.environ.get("DWCONV_FUZZ", "").strip().lower() == "long" else "ci")


@pytest.fixture(params=list(dwconv.supported_isas()))
def isa_level(request):
    """Run the test at each instruction-set level, then go back to the one before."""
    before = dwconv._kernels.active_isa()
    dwconv.use_isa(request.param)
    try:
        yield request.param
    finally:
        dwconv.use_isa(before)
