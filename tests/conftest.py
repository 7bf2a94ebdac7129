"""pytest configuration for the dwconv test suite.

Nothing special lives here.  Its presence (together with the *absence* of
``tests/__init__.py``) keeps pytest's default "prepend" import mode putting
this directory on ``sys.path``, so the test modules can simply do
``from reference import ...`` to reach the NumPy reference in
``tests/reference.py``.
"""
