"""Assertions the test modules share: a result against the float64 reference of
``tests/reference.py``, within the error its dtype allows.

The reference itself stays in ``tests/reference.py``; this module only adds the scales (the same
computation on |x|, |w|, |dy|, which bound every rounding error) and the comparison.  No test
module imports another test module: what two of them share lives here or in ``tests/sweep.py``.
"""
import math

import numpy as np

from reference import activate, conv2d_backprop_filter, conv2d_backprop_input, conv2d_forward


def rtol_for(dtype, terms, naive_sum=False):
    """Error allowed relative to the sum of |terms| of each result element.

    ``terms`` is the number of products summed into one element.  float64: 1e-12.  Narrower
    results (accumulated in float32): 2e-6 * sqrt(terms + 1); that is above the worst-case bound
    (terms + 1) * 2**-24 of naive float32 accumulation of up to 49 taps plus a bias, and loose
    enough for any summation order.  ``naive_sum`` (the long reductions of the gradients): at
    least (terms + 2) * eps of the accumulation, which covers naive recursive summation in any
    order (plus the rounding of the products); the sqrt term keeps small sums from being judged
    too harshly when the kernel uses FMA or blocked partials.
    """
    wide = np.dtype(dtype) == np.float64
    rtol = 1e-12 if wide else 2e-6 * math.sqrt(terms + 1)
    if naive_sum:
        rtol = max(rtol, (terms + 2) * float(np.finfo(np.float64 if wide else np.float32).eps))
    return rtol


def assert_close(got, ref, scale, dtype, terms, what="result", *, lipschitz=1.0, rounding=False,
                 naive_sum=False):
    """``got`` is an ndarray of `dtype` and of ``ref``'s shape, within the accumulation error of
    `dtype` (:func:`rtol_for`, relative to `scale`, the result for |x| and |w|), magnified by at
    most `lipschitz` through an activation, plus (with `rounding`) the rounding of the result into
    `dtype`.  NaN is never close."""
    dtype = np.dtype(dtype)
    assert isinstance(got, np.ndarray), (what, type(got))
    assert got.dtype == dtype, (what, got.dtype, dtype)
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    bound = lipschitz * rtol_for(dtype, terms, naive_sum) * scale + np.finfo(dtype).tiny
    if rounding:
        bound = bound + np.finfo(dtype).eps / 2 * np.abs(ref)
    err = np.abs(got.astype(np.float64) - ref)
    ok = err <= bound                         # False for NaN
    if not ok.all():
        bad = np.argwhere(~ok)
        first = tuple(bad[0])
        worst = np.unravel_index(np.argmax(np.where(ok, 0.0, err / bound)), err.shape)
        raise AssertionError(
            f"{what}: {len(bad)} of {err.size} elements differ from the reference "
            f"(dtype {dtype}, terms {terms}); first bad index {first}: "
            f"got {got[first]!r}, expected {ref[first]!r}; worst index {worst}: "
            f"got {got[worst]!r}, expected {ref[worst]!r}, allowed error {bound[worst]:.3g}")


def reference_forward(x, filters, strides, pad, data_format, dilations, bias=None, mode="zeros",
                      activation=None):
    """The float64 reference result (activated) and its scale, the result for |x|, |w|, |bias|.
    ``strides``/``dilations`` are pairs and ``pad`` is resolved."""
    x64 = np.asarray(x, dtype=np.float64)
    w64 = np.asarray(filters, dtype=np.float64)
    b64 = None if bias is None else np.asarray(bias, dtype=np.float64)
    args = (strides, pad, data_format, dilations)
    ref = activate(conv2d_forward(x64, w64, *args, bias=b64, padding_mode=mode), activation)
    scale = conv2d_forward(np.abs(x64), np.abs(w64), *args, bias=None if b64 is None else np.abs(b64),
                           padding_mode=mode)
    return ref, scale


def reference_gradients(x, filters, dy, strides, pad, data_format, dilations, mode="zeros"):
    """The float64 reference gradients, each with its |.| scale: {"input": (ref, scale),
    "filters": ..., "bias": ...}; the filter gradient has `filters`' shape."""
    x64 = np.asarray(x, np.float64)
    w64 = np.asarray(filters, np.float64)
    dy64 = np.asarray(dy, np.float64)
    args = (strides, pad, data_format, dilations)
    axes = (0, 1, 2) if data_format == "NHWC" else (0, 2, 3)
    return {
        "input": (conv2d_backprop_input(x64.shape, w64, dy64, *args, padding_mode=mode),
                  conv2d_backprop_input(x64.shape, np.abs(w64), np.abs(dy64), *args, padding_mode=mode)),
        "filters": (conv2d_backprop_filter(x64, w64.shape, dy64, *args, padding_mode=mode),
                    conv2d_backprop_filter(np.abs(x64), w64.shape, np.abs(dy64), *args, padding_mode=mode)),
        "bias": (dy64.sum(axis=axes), np.abs(dy64).sum(axis=axes)),
    }


def assert_rounded_close(got, ref, scale, dtype, terms, lipschitz=1.0, what="result"):
    """:func:`assert_close` allowing, on top, the rounding of the result into `dtype` (which
    float16 results and activated ones need)."""
    assert_close(got, ref, scale, dtype, terms, what, lipschitz=lipschitz, rounding=True)
