"""NaN and Inf propagate as IEEE arithmetic says, and only to the results whose window holds them.

A few input pixels (or output-gradient pixels) are set to NaN, +Inf and -Inf; the float64
reference, fed the same values, says which results are NaN, +Inf or -Inf (every one of them is a
sum whose non-finite terms decide it whatever the order) and what the finite ones are. The
comparison is of the exact pattern, so a non-finite value leaking into a neighbouring result, a
vector lane or another channel fails.

One exception to feeding the reference directly: it multiplies the zeros of "zeros" padding by the
output gradient when it forms the filter gradient, and 0 * NaN is NaN, while dwconv forms no
product with padding. For non-finite output gradients, the expected filter gradient is the
reference's for the finite values plus, for each non-finite one, its product with the input pixel
each tap pairs it with, where there is one (found by feeding the reference indicator arrays).
"""

import itertools
from collections import namedtuple

import numpy as np
import pytest

import dwconv
from reference import conv2d_backprop_filter, conv2d_backprop_input, conv2d_forward, resolve_padding
from sweep import MODES, to_format

# (strides, dilations, padding): plain, strided and dilated, asymmetric padding
GEOMETRIES = [(1, 1, 1), (2, 1, "SAME"), (1, 2, ((2, 1), (0, 3)))]


def assert_same_ieee(got, ref, rtol):
    """Same NaN, +Inf and -Inf positions as `ref`, and the finite values close to it."""
    for name, test in (("NaN", np.isnan), ("+Inf", np.isposinf), ("-Inf", np.isneginf)):
        wrong = test(got) != test(ref)
        assert not wrong.any(), f"{name} differs at {np.argwhere(wrong)[:5].tolist()} ({wrong.sum()} results)"
    finite = np.isfinite(ref)
    np.testing.assert_allclose(got[finite], ref[finite], rtol=rtol, atol=rtol)


Case = namedtuple("Case", "x w dy kwargs args mode rtol")


@pytest.fixture(params=list(itertools.product(["NHWC", "NCHW"], MODES, GEOMETRIES, [np.float32, np.float64])),
                ids=lambda p: f"{p[0]}-{p[1]}-s{p[2][0]}-d{p[2][1]}-p{p[2][2]}-{np.dtype(p[3])}".replace(" ", ""))
def case(request):
    """Finite x, filters (M = 2) and grad_output, the keyword arguments of the calls and the reference's."""
    fmt, mode, (strides, dilations, padding), dtype = request.param
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 9, 11, 20))
    w = rng.standard_normal((3, 3, 20, 2))
    w[np.abs(w) < 0.1] = 0.5  # no zero weight: 0 * Inf would be NaN on both sides, but says less
    pad = resolve_padding(padding, (9, 11), (3, 3), strides, dilations)
    s, d = (strides, strides), (dilations, dilations)
    dy = rng.standard_normal(conv2d_forward(x, w, s, pad, "NHWC", d).shape)
    return Case(to_format(x, fmt).astype(dtype), w.astype(dtype), to_format(dy, fmt).astype(dtype),
                dict(strides=strides, padding=padding, data_format=fmt, dilations=dilations, padding_mode=mode),
                (s, pad, fmt, d), mode, 1e-4 if dtype == np.float32 else 1e-10)


def poison(a, fmt):
    """NaN, +Inf and -Inf at an image corner, inside, and on another channel of another image."""
    a = a.copy()
    pixels = ((0, 0, 0, 3), (0, 3, 4, 3), (1, 2, 5, 11))
    for (n, h, w, c), value in zip(pixels, (np.nan, np.inf, -np.inf)):
        index = (n, h, w, c) if fmt == "NHWC" else (n, c, h, w)
        a[index] = value
    return a


def test_nonfinite_input(isa_level, case):
    """Non-finite pixels of x: into the forward output and the filter gradient."""
    x, w, dy, kwargs, args, mode, rtol = case
    x = poison(x, kwargs["data_format"])
    with np.errstate(invalid="ignore"):
        ref_y = conv2d_forward(x, w, *args, padding_mode=mode)
        ref_dw = conv2d_backprop_filter(x, w.shape, dy, *args, padding_mode=mode)
    assert_same_ieee(dwconv.depthwise_conv2d(x, w, **kwargs), ref_y, rtol)
    assert_same_ieee(dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, **kwargs), ref_dw, rtol)
    assert_same_ieee(dwconv.depthwise_conv2d_grad(x, w, dy, **kwargs).filters, ref_dw, rtol)
    assert np.isfinite(ref_y).sum() > 0.5 * ref_y.size  # the non-finite values stayed local


def test_nonfinite_output_gradient(isa_level, case):
    """Non-finite pixels of grad_output: into the input, filter and bias gradients."""
    x, w, dy, kwargs, args, mode, rtol = case
    dy = poison(dy, kwargs["data_format"])
    with np.errstate(invalid="ignore"):
        ref_dx = conv2d_backprop_input(x.shape, w, dy, *args, padding_mode=mode)
        ref_dw = conv2d_backprop_filter(x, w.shape, np.where(np.isfinite(dy), dy, 0), *args, padding_mode=mode)
        for index in zip(*np.nonzero(~np.isfinite(dy))):
            # the sign of the input pixel each tap pairs with this gradient pixel; 0 for none (zeros padding)
            indicator = np.zeros(dy.shape)
            indicator[index] = 1
            pairing = conv2d_backprop_filter(np.sign(x), w.shape, indicator, *args, padding_mode=mode)
            ref_dw = ref_dw + np.where(pairing != 0, dy[index] * pairing, 0)
    ref_db = dy.astype(np.float64).sum(axis=(0, 1, 2) if kwargs["data_format"] == "NHWC" else (0, 2, 3))
    assert_same_ieee(dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, **kwargs), ref_dx, rtol)
    assert_same_ieee(dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, **kwargs), ref_dw, rtol)
    grads = dwconv.depthwise_conv2d_grad(x, w, dy, **kwargs)
    assert_same_ieee(grads.input, ref_dx, rtol)
    assert_same_ieee(grads.filters, ref_dw, rtol)
    assert_same_ieee(grads.bias, ref_db, rtol)
    assert np.isfinite(ref_dx).sum() > 0.5 * ref_dx.size
