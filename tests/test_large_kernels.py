"""Kernels of 11x11 to 31x31 (image filters; the depthwise layers of large-kernel networks such as
RepLKNet), forward and gradients, both layouts, at every instruction-set level: no size may fall
to a path that computes anything else. The sweeps of test_forward.py and test_backward.py stop at
7x7, where the register-resident tiles end; past it, NHWC images of 2 to 15 channels are taken
apart into planes, and the NHWC stream path (2 to 15 lanes per pixel with a channel multiplier)
takes its weights in chunks: 21x21 taps of 6 lanes outgrow its table."""
import numpy as np
import pytest

import dwconv
from reference import conv2d_backprop_filter, conv2d_backprop_input, conv2d_forward

CASES = [  # (H, W, C, k, stride, padding mode)
    (26, 31, 3, 21, 1, "reflect"),   # NHWC: three channels taken apart into planes
    (19, 40, 5, 15, 1, "zeros"),     # five planes
    (23, 23, 1, 11, 1, "replicate"),  # one channel: NHWC rows are planes
    (21, 18, 16, 13, 1, "zeros"),    # a vector of channels
    (30, 27, 20, 31, 2, "circular"),  # strided, and a kernel wider than the image
    (17, 45, 7, 17, 1, "reflect"),
]


def _case(case, layout, rng):
    H, W, C, k, stride, mode = case
    x = rng.standard_normal((2, H, W, C))
    filters = rng.standard_normal((k, k, C, 1)) / k
    padding = ((k // 2, k // 2), (k // 2, k // 2))
    if mode == "reflect" and k // 2 >= min(H, W):  # (reflect pads at most the image's size less one)
        pytest.skip("reflect padding wider than the image")
    return x, filters, padding, stride, mode


def _layout(a, layout):
    return np.ascontiguousarray(a if layout == "NHWC" else a.transpose(0, 3, 1, 2))


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}x{c[1]}x{c[2]}-k{c[3]}-s{c[4]}-{c[5]}")
@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward(case, layout, dtype, isa_level):
    rng = np.random.default_rng([case[3], case[2]])
    x, filters, padding, stride, mode = _case(case, layout, rng)
    bias = rng.standard_normal(x.shape[3])
    y = dwconv.depthwise_conv2d(_layout(x, layout).astype(dtype), filters.astype(dtype), stride, padding,
                                data_format=layout, padding_mode=mode, bias=bias.astype(dtype))
    expected = conv2d_forward(_layout(x, layout), filters, (stride, stride), padding, layout, (1, 1), bias, mode)
    tolerance = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, expected, rtol=0, atol=tolerance * np.abs(expected).max())


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}x{c[1]}x{c[2]}-k{c[3]}-s{c[4]}-{c[5]}")
@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_gradients(case, layout, isa_level):
    rng = np.random.default_rng([case[3], case[2], 1])
    x, filters, padding, stride, mode = _case(case, layout, rng)
    xl = _layout(x, layout).astype(np.float32)
    y_shape = dwconv.output_shape(xl.shape, filters.shape, stride, padding, data_format=layout)
    dy = rng.standard_normal(y_shape).astype(np.float32)
    grads = dwconv.depthwise_conv2d_grad(xl, filters.astype(np.float32), dy, stride, padding, data_format=layout,
                                         padding_mode=mode)
    arguments = ((stride, stride), padding, layout, (1, 1), mode)
    expected_input = conv2d_backprop_input(xl.shape, filters, dy, *arguments)
    expected_filters = conv2d_backprop_filter(xl, filters.shape, dy, *arguments)
    np.testing.assert_allclose(grads.input, expected_input, rtol=0, atol=2e-5 * np.abs(expected_input).max())
    np.testing.assert_allclose(grads.filters, expected_filters, rtol=0, atol=2e-5 * np.abs(expected_filters).max())
    expected_bias = dy.astype(np.float64).sum(axis=(0, 1, 2) if layout == "NHWC" else (0, 2, 3))
    np.testing.assert_allclose(grads.bias, expected_bias, rtol=0, atol=2e-5 * np.abs(expected_bias).max())


@pytest.mark.parametrize("C, M, k", [(3, 2, 21), (5, 3, 15), (2, 4, 11)])
def test_forward_stream_chunks(C, M, k, isa_level):
    """NHWC pixels of fewer lanes than a vector (C*M), the taps in one, two or three chunks."""
    rng = np.random.default_rng([C, M, k])
    x = rng.standard_normal((1, 23, 37, C)).astype(np.float32)
    filters = (rng.standard_normal((k, k, C, M)) / k).astype(np.float32)
    bias = rng.standard_normal(C * M).astype(np.float32)
    padding = ((k // 2, k // 2), (k // 2, k // 2))
    y = dwconv.depthwise_conv2d(x, filters, 1, padding, padding_mode="replicate", bias=bias)
    expected = conv2d_forward(x, filters, (1, 1), padding, "NHWC", (1, 1), bias, "replicate")
    np.testing.assert_allclose(y, expected, rtol=0, atol=2e-5 * np.abs(expected).max())


SPECTRAL_CASES = [  # (N, H, W, C, k, padding, padding mode): forwards through the spectral rows
    (2, 20, 45, 16, 13, "SAME", "zeros"),      # three segments: the last pair's second part empty
    (1, 17, 70, 32, 15, "SAME", "reflect"),    # four, the last overlapping the one before
    (1, 30, 28, 16, 31, "SAME", "circular"),   # a kernel wider than the image
    (1, 35, 45, 16, 17, "VALID", "zeros"),     # no padding rows
    (3, 6, 16, 48, 13, "SAME", "symmetric"),   # output rows in calls of 4 overlapping; 3 blocks
    (1, 3, 20, 16, 13, "SAME", "replicate"),   # fewer output rows than a call's 4
]


def _spectral_geometry(x, filters, padding, layout, mode="zeros"):
    return dwconv._args.geometry(x.shape, filters.shape, 1, padding, layout, 1, "x", "filters", mode)


@pytest.mark.parametrize("case", SPECTRAL_CASES, ids=lambda c: f"{c[1]}x{c[2]}x{c[3]}-k{c[4]}-{c[5]}-{c[6]}")
@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_spectral_rows(case, layout, isa_level):
    """Large kernels through short Fourier transforms along the rows (_spectral.pxi): every padding
    mode, bias and a fused activation, any number of segments and of output rows, the same bits for
    any number of threads (each pixel is computed by one call in one order)."""
    N, H, W, C, k, padding, mode = case
    rng = np.random.default_rng([H, W, C, k])
    x = _layout(rng.standard_normal((N, H, W, C)), layout).astype(np.float32)
    filters = (rng.standard_normal((k, k, C, 1)) / k).astype(np.float32)
    bias = rng.standard_normal(C).astype(np.float32)
    assert dwconv._kernels.spectral_rows_length(_spectral_geometry(x, filters, padding, layout, mode)) > 0
    pads = ((k // 2, k // 2), (k // 2, k // 2)) if padding == "SAME" else ((0, 0), (0, 0))
    expected = conv2d_forward(x, filters, (1, 1), pads, layout, (1, 1), bias, mode)
    results = [dwconv.depthwise_conv2d(x, filters, 1, padding, data_format=layout, padding_mode=mode, bias=bias,
                                       activation="relu", num_threads=n) for n in (1, 2, 3)]
    np.testing.assert_allclose(results[0], np.maximum(expected, 0), rtol=0, atol=2e-6 * np.abs(expected).max())
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])


def test_spectral_rows_of_8bit_images(isa_level):
    """uint8 pixels in and out: widened by the ring, rounded and saturated from the thread's scratch."""
    rng = np.random.default_rng(8)
    x = rng.integers(0, 256, (1, 24, 50, 16), dtype=np.uint8)
    filters = (rng.random((13, 13, 16)) / 40).astype(np.float32)
    assert dwconv._kernels.spectral_rows_length(_spectral_geometry(x, filters, "SAME", "NHWC")) > 0
    y = dwconv.depthwise_conv2d(x, filters, 1, "SAME", padding_mode="reflect", dtype=np.uint8)
    expected = conv2d_forward(x, filters, (1, 1), ((6, 6), (6, 6)), "NHWC", (1, 1), None, "reflect")
    exact = np.clip(np.rint(expected), 0, 255)
    assert y.dtype == np.uint8 and (expected > 255).any()  # (some saturate)
    # (a float32 sum a rounding away from .5 may round the other way: at most 1 apart, and rarely)
    assert np.abs(y.astype(np.int32) - exact).max() <= 1 and np.mean(y != exact) < 1e-3


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_spectral_rows_input_gradient(layout, isa_level):
    """The input gradient at stride 1, a forward over dy with the filter turned, takes them too."""
    rng = np.random.default_rng(13)
    x_shape = (2, 21, 40, 16) if layout == "NHWC" else (2, 16, 21, 40)
    filters = (rng.standard_normal((15, 15, 16, 1)) / 15).astype(np.float32)
    dy = rng.standard_normal(x_shape).astype(np.float32)
    assert dwconv._kernels.spectral_rows_length(_spectral_geometry(dy, filters, "SAME", layout)) > 0
    dx = dwconv.depthwise_conv2d_backprop_input(x_shape, filters, dy, 1, "SAME", data_format=layout)
    expected = conv2d_backprop_input(x_shape, filters, dy, (1, 1), ((7, 7), (7, 7)), layout, (1, 1), "zeros")
    np.testing.assert_allclose(dx, expected, rtol=0, atol=2e-6 * np.abs(expected).max())


# (and 7x7 on NCHW planes wider than the packed ones, PACKED_WIDTH; and 160 channels, whose 10
# blocks of channels leave 4 chunks for the 7 images: chunks of 1 and 2 images)
GRADIENT_CASES = ([(case, layout) for case in SPECTRAL_CASES for layout in ("NHWC", "NCHW")]
                  + [((1, 9, 80, 32, 7, "SAME", "reflect"), "NCHW")]
                  + [((4, 6, 16, 160, 13, "SAME", "symmetric"), layout) for layout in ("NHWC", "NCHW")])


@pytest.mark.parametrize("case, layout", GRADIENT_CASES,
                         ids=lambda c: c if isinstance(c, str) else f"{c[1]}x{c[2]}x{c[3]}-k{c[4]}-{c[5]}-{c[6]}")
def test_spectral_filter_gradient(case, layout, isa_level):
    """The filter and bias gradients where the forward takes the spectral rows: summed as spectra
    over every image and row (segments that do not overlap, the last one shorter), in chunks of
    images fixed by the geometry: the same bits for any number of threads."""
    N, H, W, C, k, padding, mode = case
    N += 3  # (several images per chunk where the blocks of channels are many)
    rng = np.random.default_rng([H, W, C, k, 2])
    x = _layout(rng.standard_normal((N, H, W, C)), layout).astype(np.float32)
    filters = (rng.standard_normal((k, k, C, 1)) / k).astype(np.float32)
    assert dwconv._kernels.spectral_rows_length(_spectral_geometry(x, filters, padding, layout, mode), True) > 0
    dy = rng.standard_normal(dwconv.output_shape(x.shape, filters.shape, 1, padding, data_format=layout))
    dy = dy.astype(np.float32)
    pads = ((k // 2, k // 2), (k // 2, k // 2)) if padding == "SAME" else ((0, 0), (0, 0))
    expected = conv2d_backprop_filter(x, filters.shape, dy, (1, 1), pads, layout, (1, 1), mode)
    expected_bias = dy.astype(np.float64).sum(axis=(0, 1, 2) if layout == "NHWC" else (0, 2, 3))
    grads = [dwconv.depthwise_conv2d_grad(x, filters, dy, 1, padding, data_format=layout, padding_mode=mode,
                                          num_threads=n) for n in (1, 2, 3)]
    np.testing.assert_allclose(grads[0].filters, expected, rtol=0, atol=2e-6 * np.abs(expected).max())
    np.testing.assert_allclose(grads[0].bias, expected_bias, rtol=0, atol=2e-6 * np.abs(expected_bias).max())
    for other in grads[1:]:
        np.testing.assert_array_equal(other.filters, grads[0].filters)
        np.testing.assert_array_equal(other.bias, grads[0].bias)
