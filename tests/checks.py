"""What the test modules share: assertions of a result against the float64 reference of
``tests/reference.py``, within the error its dtype allows; array-likes of awkward memory layouts,
and snapshots to check that inputs were left alone.

The reference itself stays in ``tests/reference.py``; this module only adds the scales (the same
computation on |x|, |w|, |dy|, which bound every rounding error) and the comparison.  No test
module imports another test module: what two of them share lives here or in ``tests/sweep.py``.
"""
import copy
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


def awkward(a, kind):
    """Return an array-like equal in value to ``a`` with unusual memory layout."""
    if kind == "contiguous":
        return a.copy()
    if kind == "strided_view":
        big = np.zeros((a.shape[0], 2 * a.shape[1]) + a.shape[2:], dtype=a.dtype)
        big[:, ::2] = a
        v = big[:, ::2]
        assert not v.flags.c_contiguous
        return v
    if kind == "strided_last_axis":
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        big[..., 1::2] = a
        return big[..., 1::2]
    if kind == "fortran":
        f = np.asfortranarray(a)
        assert a.ndim == 1 or not f.flags.c_contiguous
        return f
    if kind == "negative_strides":
        rev = np.ascontiguousarray(a[:, ::-1])
        return rev[:, ::-1]
    if kind == "negative_last_axis":
        rev = np.ascontiguousarray(a[..., ::-1])
        return rev[..., ::-1]
    if kind == "byteswapped":
        return a.astype(a.dtype.newbyteorder())
    if kind == "readonly":
        r = a.copy()
        r.setflags(write=False)
        return r
    if kind == "transposed_view":
        # a C-contiguous array of the permuted shape, viewed back to a's shape
        perm = tuple(reversed(range(a.ndim)))
        return np.ascontiguousarray(a.transpose(perm)).transpose(perm)
    if kind == "list":
        return a.tolist()
    raise AssertionError(kind)


AWKWARD = ["strided_view", "strided_last_axis", "fortran", "negative_strides",
           "negative_last_axis", "byteswapped", "readonly", "transposed_view", "list"]


def cache_line_empty(shape, dtype):
    """An empty C-contiguous array whose data starts on a 64-byte cache line, as dwconv's own larger
    results do (smaller ones start where NumPy puts them): results that must stream whole lines."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(nbytes + 64, np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def snapshot(a):
    """A copy of ``a`` to compare it with later: of an array or a list; other values as they are."""
    if isinstance(a, list):
        return copy.deepcopy(a)
    return a.copy() if isinstance(a, np.ndarray) else a


def unchanged(a, snap):
    """Whether ``a`` still equals its :func:`snapshot` (dtype and shape included; NaN equals NaN)."""
    if isinstance(a, list):
        return a == snap
    if isinstance(a, np.ndarray):
        return (a.dtype == snap.dtype and a.shape == snap.shape
                and bool(np.array_equal(a, snap, equal_nan=a.dtype.kind in "fc")))
    return True
