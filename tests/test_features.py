"""Padding modes, float16 and integer images, ``dtype=`` and fused activations.

Every expectation comes from ``tests/reference.py``: its padding modes pad with ``numpy.pad``
(modes reflect / edge / wrap) and fold the gradient back with ``np.add.at``; its activations are
written from their definitions.
"""

import numpy as np
import pytest

import dwconv
from checks import assert_rounded_close, reference_forward, reference_gradients
from dwconv._names import ACTIVATIONS
from reference import normalize_pair, resolve_padding
from sweep import MODES, to_format

# (H, W, kernel, strides, dilations, padding): padding wider than the image (reflect and wrap then
# fold more than once), SAME with strides, dilation reaching past a 1-pixel image, asymmetric pads
GEOMETRIES = [
    (7, 9, (3, 3), 1, 1, 1),
    (8, 8, (5, 5), 2, 1, "SAME"),
    (6, 11, (3, 5), (1, 2), (2, 1), ((2, 1), (3, 0))),
    (5, 5, (7, 7), 1, 1, 3),
    (4, 6, (3, 3), 3, 2, ((6, 5), (7, 2))),
    (1, 1, (3, 3), 1, 1, 1),
    (2, 3, (2, 4), 1, (2, 2), ((3, 3), (4, 1))),
    (9, 7, (1, 1), 2, 1, ((1, 1), (2, 2))),
]


def case(rng, fmt, H, W, kernel, C=5, M=2, N=2, dtype=np.float64):
    x = to_format(rng.standard_normal((N, H, W, C)), fmt).astype(dtype)
    w = rng.standard_normal((*kernel, C, M)).astype(dtype)
    return x, w


def reference(x, w, strides, padding, fmt, dilations, mode, bias=None, activation=None):
    pad = resolve_padding(padding, x.shape[1:3] if fmt == "NHWC" else x.shape[2:], w.shape[:2],
                          normalize_pair(strides), normalize_pair(dilations))
    args = (normalize_pair(strides), pad, fmt, normalize_pair(dilations))
    ref, scale = reference_forward(x, w, *args, bias=bias, mode=mode, activation=activation)
    return ref, scale, args


@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: f"{g[0]}x{g[1]}-k{g[2]}-s{g[3]}-d{g[4]}-p{g[5]}")
def test_padding_modes(fmt, mode, geometry):
    """Forward and both gradients of every padding mode, against numpy.pad and its adjoint."""
    H, W, kernel, strides, dilations, padding = geometry
    rng = np.random.default_rng([GEOMETRIES.index(geometry), MODES.index(mode), fmt == "NCHW"])
    x, w = case(rng, fmt, H, W, kernel)
    bias = rng.standard_normal(w.shape[2] * w.shape[3])
    kwargs = dict(data_format=fmt, dilations=dilations, padding_mode=mode)
    ref, scale, args = reference(x, w, strides, padding, fmt, dilations, mode, bias=bias)
    taps = kernel[0] * kernel[1]
    assert_rounded_close(dwconv.depthwise_conv2d(x, w, strides, padding, bias=bias, **kwargs), ref, scale, np.float64, taps)

    dy = rng.standard_normal(ref.shape)
    grads = dwconv.depthwise_conv2d_grad(x, w, dy, strides, padding, **kwargs)
    ref_grads = reference_gradients(x, w, dy, *args, mode=mode)
    for got in (grads.input, dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, strides, padding, **kwargs)):
        assert_rounded_close(got, *ref_grads["input"], np.float64, ref.size)
    for got in (grads.filters, dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, strides, padding, **kwargs)):
        assert_rounded_close(got, *ref_grads["filters"], np.float64, ref.size)


@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
@pytest.mark.parametrize("mode", MODES[1:])
def test_padding_modes_threaded_and_wide(fmt, mode):
    """Big enough to run on several threads, with channel blocks and a remainder (64-channel blocks
    for the NHWC borders, 128 on the packed NCHW path)."""
    rng = np.random.default_rng(5)
    x, w = case(rng, fmt, 30, 37, (5, 5), C=270, M=1, N=3, dtype=np.float32)
    ref, scale, args = reference(x, w, 2, "SAME", fmt, 1, mode)
    for threads in (1, 2):
        got = dwconv.depthwise_conv2d(x, w, 2, "SAME", data_format=fmt, padding_mode=mode, num_threads=threads)
        assert_rounded_close(got, ref, scale, np.float32, 25)
    dy = rng.standard_normal(ref.shape).astype(np.float32)
    dx = [dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, 2, "SAME", data_format=fmt, padding_mode=mode,
                                                 num_threads=t) for t in (1, 2)]
    dw = [dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, 2, "SAME", data_format=fmt, padding_mode=mode,
                                                  num_threads=t) for t in (1, 2)]
    ref_grads = reference_gradients(x, w, dy, *args, mode=mode)
    assert_rounded_close(dx[0], *ref_grads["input"], np.float32, 25)
    assert_rounded_close(dw[0], *ref_grads["filters"], np.float32, dy.size)
    np.testing.assert_array_equal(dx[0], dx[1])
    np.testing.assert_array_equal(dw[0], dw[1])  # the filter gradient is bitwise thread-independent


def test_valid_padding_ignores_the_mode():
    rng = np.random.default_rng(1)
    x, w = case(rng, "NHWC", 6, 6, (3, 3))
    results = [dwconv.depthwise_conv2d(x, w, padding="VALID", padding_mode=m) for m in MODES]
    for got in results[1:]:
        np.testing.assert_array_equal(got, results[0])


# ---------------------------------------------------------------------------
# dtypes


@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
@pytest.mark.parametrize("w_dtype", [np.float16, np.float32])
@pytest.mark.parametrize("M", [1, 2])
def test_float16(isa_level, fmt, w_dtype, M):
    """float16 data gives a float16 result accumulated in float32: within float16 rounding of the
    exact result, forward and gradients. M 1: the forward reads and writes the halves itself; M 2
    and the gradients: converted around it (_kernels.convert). 12x21 pixels of 20 channels: whole
    vectors and the tails after them at every level."""
    rng = np.random.default_rng(3)
    x, w = case(rng, fmt, 12, 21, (3, 3), C=20, M=M)
    x, w = x.astype(np.float16), w.astype(w_dtype)
    bias = rng.standard_normal(20 * M).astype(np.float16)
    ref, scale, args = reference(x, w, 1, "SAME", fmt, 1, "reflect", bias=bias)
    got = dwconv.depthwise_conv2d(x, w, 1, "SAME", data_format=fmt, bias=bias, padding_mode="reflect")
    assert_rounded_close(got, ref, scale, np.float16, 9)

    dy = rng.standard_normal(ref.shape).astype(np.float16)
    grads = dwconv.depthwise_conv2d_grad(x, w, dy, 1, "SAME", data_format=fmt, padding_mode="reflect")
    ref_grads = reference_gradients(x, w, dy, *args, mode="reflect")
    assert_rounded_close(grads.input, *ref_grads["input"], np.float16, 9)
    assert_rounded_close(grads.filters, *ref_grads["filters"], np.float16, dy.size)
    axes = (0, 1, 2) if fmt == "NHWC" else (0, 2, 3)
    assert grads.bias.dtype == np.float16
    np.testing.assert_allclose(grads.bias, dy.astype(np.float64).sum(axis=axes), rtol=1e-3, atol=1e-2)


# float32 values to round to float16: random bit patterns (NaNs and infinities among them), the ties
# between neighbouring halves in every binade (normal and subnormal), the largest half and the
# overflow threshold on either side, the smallest subnormal and half of it, and signed zeros
def float16_rounding_cases(rng):
    halves = np.arange(0, 0x7c00, 7, dtype=np.uint16).view(np.float16).astype(np.float64)
    ties = (halves[:-1] + np.nextafter(halves[:-1].astype(np.float16), np.float16(np.inf))) / 2
    edges = [65504, 65519.996, 65520, 65536, 2.0 ** -24, 2.0 ** -25, 1.5 * 2.0 ** -25, 2.0 ** -14, 0.0, -0.0,
             np.inf, np.nan]
    values = np.concatenate([rng.integers(0, 2 ** 32, 40_000, dtype=np.uint64).astype(np.uint32).view(np.float32),
                             ties.astype(np.float32), np.array(edges, np.float32)])
    return np.concatenate([values, -values])


@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
@pytest.mark.parametrize("M", [1, 2])
def test_float16_conversions_round_as_numpy(isa_level, fmt, M):
    """Every float16 widened exactly, and float32 rounded to the nearest float16 (ties to even,
    overflow to infinity, subnormals kept, NaN NaN) as NumPy's astype does, through a 1x1 filter of
    ones: in the forward's own conversions (M 1: NHWC rings, NCHW plane rings) and in
    _kernels.convert (M 2, around the float32 kernels), at every level (the baseline's scalar
    conversions, F16C's vectors)."""
    ones = np.ones((1, 1, 1, M), np.float32)
    halves = np.arange(2 ** 16, dtype=np.uint16).view(np.float16)
    rng = np.random.default_rng(11)
    floats = float16_rounding_cases(rng)
    for x, dtype in ((halves, np.float32), (floats, np.float16)):
        x = x[:x.size // 37 * 37 - 1]  # (rows of 37: vectors, and tails overlapping them)
        image = np.pad(x, (0, 1)).reshape((1, -1, 37, 1) if fmt == "NHWC" else (1, 1, -1, 37))
        with np.errstate(over="ignore", invalid="ignore"):
            want = image.astype(dtype)
        g = dwconv._args.geometry(image.shape, ones.shape, 1, "VALID", fmt, 1)
        assert M == 2 or dwconv._kernels.converts_itself(g)  # (M 1: the forward's own conversions)
        got = dwconv.depthwise_conv2d(image, ones, data_format=fmt, dtype=dtype)
        for m in range(M):
            got_m = got[..., m] if fmt == "NHWC" else got[:, m]
            want_m = want[..., 0] if fmt == "NHWC" else want[:, 0]
            np.testing.assert_array_equal(np.isnan(got_m), np.isnan(want_m))
            finite = ~np.isnan(want_m)
            np.testing.assert_array_equal(got_m[finite], want_m[finite])  # (+0 for -0: 0 + x * 1)


def test_float16_accumulates_in_float32():
    """Summing 49 float16 products in float16 would lose the small terms; float32 keeps them."""
    x = np.full((1, 7, 7, 1), 1.0, np.float16)
    w = np.full((7, 7, 1), 2.0 ** -11, np.float16)
    w[0, 0, 0] = 1.0
    got = dwconv.depthwise_conv2d(x, w)
    assert got.dtype == np.float16
    assert got.item() == np.float16(1 + 48 * 2.0 ** -11)


@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
@pytest.mark.parametrize("x_dtype", [np.uint8, np.uint16, np.int16, np.int32])
@pytest.mark.parametrize("dtype", [None, np.float16, np.float32, np.float64])
def test_integer_images(fmt, x_dtype, dtype):
    """Integer images compute in float32 (float64 when asked for) with a float32 result by default."""
    rng = np.random.default_rng(4)
    info = np.iinfo(x_dtype)
    x = to_format(rng.integers(max(info.min, -1000), min(info.max, 1000), (2, 9, 8, 3), endpoint=True),
                  fmt).astype(x_dtype)
    w = rng.standard_normal((3, 3, 3)).astype(np.float32)
    ref, scale, _ = reference(x, w, 2, "SAME", fmt, 1, "replicate")
    got = dwconv.depthwise_conv2d(x, w, 2, "SAME", data_format=fmt, padding_mode="replicate", dtype=dtype)
    assert_rounded_close(got, ref, scale, np.float32 if dtype is None else dtype, 9)


def test_default_result_dtypes():
    x32, x16, w32, w64 = (np.ones((1, 4, 4, 2), t) for t in (np.float32, np.float16, np.float32, np.float64))
    w32, w64 = w32[0, :3, :3], w64[0, :3, :3]
    assert dwconv.depthwise_conv2d(x32, w32).dtype == np.float32
    assert dwconv.depthwise_conv2d(x32, w64).dtype == np.float64
    assert dwconv.depthwise_conv2d(x16, w32).dtype == np.float16  # mixed precision: weights kept in float32
    assert dwconv.depthwise_conv2d(x16, w64).dtype == np.float64
    assert dwconv.depthwise_conv2d(x16.astype(np.uint8), w32).dtype == np.float32
    assert dwconv.depthwise_conv2d(x32, w32, dtype="float16").dtype == np.float16
    assert dwconv.depthwise_conv2d(x32, w32, bias=np.zeros(2)).dtype == np.float64  # any input, the bias too
    assert dwconv.depthwise_conv2d(x32, w32, bias=[0.0, 0.0]).dtype == np.float32  # a list has no dtype of its own


@pytest.mark.parametrize("x_dtype, bias_dtype, want", [
    (np.float32, np.float64, np.float64),  # "float64 if any input is": the bias is not rounded to float32
    (np.float16, np.float64, np.float64),
    (np.float16, np.float32, np.float16),  # a float32 bias is a parameter, as float32 filters are
    (np.float32, np.float16, np.float32),
    (np.uint8, np.float64, np.float64),
])
def test_result_dtype_counts_the_bias(x_dtype, bias_dtype, want):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((1, 5, 5, 2)) * 4).astype(x_dtype)
    w = rng.standard_normal((3, 3, 2)).astype(np.float32 if x_dtype != np.float64 else np.float64)
    bias = np.array([0.1, 1e-9], bias_dtype)
    got = dwconv.depthwise_conv2d(x, w, bias=bias)
    assert got.dtype == want
    ref, scale, _ = reference(x, w, 1, "VALID", "NHWC", 1, "zeros", bias=bias.astype(np.float64))
    assert_rounded_close(got, ref, scale, want, 9)
    if want == np.float64:  # the bias's 1e-9 survives: it was added in float64
        np.testing.assert_allclose(got[..., 1] - dwconv.depthwise_conv2d(x, w, bias=np.zeros(2))[..., 1], 1e-9,
                                   rtol=1e-4)


def test_float16_out_argument():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 5, 5, 2)).astype(np.float16)
    w = rng.standard_normal((3, 3, 2)).astype(np.float16)
    out = np.full((1, 3, 3, 2), np.nan, np.float16)
    assert dwconv.depthwise_conv2d(x, w, out=out) is out
    ref, scale, _ = reference(x, w, 1, "VALID", "NHWC", 1, "zeros")
    assert_rounded_close(out, ref, scale, np.float16, 9)


# ---------------------------------------------------------------------------
# activations



@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activations(fmt, dtype, activation):
    """Each named activation, after the bias, on values spread over its interesting range, with a
    padding mode whose border taps are added before activating."""
    rng = np.random.default_rng(7)
    x, w = case(rng, fmt, 11, 13, (3, 3), C=70, M=1, dtype=dtype)
    x *= 3
    bias = rng.standard_normal(70).astype(dtype)
    for mode in ("zeros", "circular"):
        ref, scale, _ = reference(x, w, 1, 1, fmt, 1, mode, bias=bias, activation=activation)
        got = dwconv.depthwise_conv2d(x, w, 1, 1, data_format=fmt, bias=bias, padding_mode=mode,
                                      activation=activation)
        assert_rounded_close(got, ref, scale, dtype, 10, ACTIVATIONS[activation].slope)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_keeps_nan(isa_level, dtype):
    """NaN stays NaN, among other values, in rows long enough for each level's vectorized clamps
    (37 x 5 values: whole vectors and a tail)."""
    x = np.linspace(-8, 8, 3 * 37 * 5, dtype=dtype).reshape(1, 3, 37, 5)
    x[0, :, ::4] = np.nan
    for activation in ACTIVATIONS:
        y = dwconv.depthwise_conv2d(x, np.ones((1, 1, 5), dtype), activation=activation)
        np.testing.assert_array_equal(np.isnan(y), np.isnan(x), err_msg=activation)
        ref, scale, _ = reference(np.nan_to_num(x), np.ones((1, 1, 5, 1), dtype), 1, "VALID", "NHWC", 1, "zeros",
                                  activation=activation)
        finite = ~np.isnan(x)
        assert_rounded_close(y[finite], ref[finite], scale[finite], dtype, 1, ACTIVATIONS[activation].slope)


def test_callable_activation():
    rng = np.random.default_rng(8)
    x, w = case(rng, "NCHW", 6, 6, (3, 3), dtype=np.float32)
    out = np.empty((2, 10, 4, 4), np.float32)
    got = dwconv.depthwise_conv2d(x, w, data_format="NCHW", activation=np.square, out=out)
    ref, scale, _ = reference(x, w, 1, "VALID", "NCHW", 1, "zeros")
    assert got is out
    np.testing.assert_allclose(got, ref ** 2, rtol=1e-4, atol=1e-5)


def test_callable_activation_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"`activation` returned shape \(3,\)"):
        dwconv.depthwise_conv2d(np.ones((1, 4, 4, 1)), np.ones((3, 3, 1)), activation=lambda y: np.ones(3))


# ---------------------------------------------------------------------------
# bad arguments


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(padding_mode="mirror"), ValueError, "`padding_mode` must be one of 'zeros', 'reflect', 'replicate', "
                                              "'circular', 'symmetric', got 'mirror'"),
    (dict(padding_mode=None), ValueError, "`padding_mode` must be one of"),
    (dict(activation="softmax"), ValueError, "`activation` must be None, a callable or one of 'relu'"),
    (dict(activation=3), ValueError, "got 3"),
    (dict(dtype=np.int8), TypeError, "`dtype` must be float16, float32, float64, uint8, uint16, int16 or int32, "
                                     "got <class 'numpy.int8'>"),
    (dict(dtype="complex"), TypeError, "`dtype` must be float16, float32, float64, uint8, uint16, int16 or int32, "
                                       "got 'complex'"),
])
def test_bad_feature_arguments(kwargs, error, message):
    x, w = np.ones((1, 4, 4, 1)), np.ones((3, 3, 1))
    out = np.full((1, 4, 4, 1), 7.0)
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        dwconv.depthwise_conv2d(x, w, padding=1, out=out, **kwargs)
    assert (out == 7).all()


@pytest.mark.parametrize("fn", ["backprop_input", "backprop_filter", "grad"])
def test_gradients_check_the_mode(fn):
    x, w, dy = np.ones((1, 4, 4, 1)), np.ones((3, 3, 1)), np.ones((1, 4, 4, 1))
    call = {"backprop_input": lambda: dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, 1, 1, padding_mode="x"),
            "backprop_filter": lambda: dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, 1, 1,
                                                                               padding_mode="x"),
            "grad": lambda: dwconv.depthwise_conv2d_grad(x, w, dy, 1, 1, padding_mode="x")}[fn]
    with pytest.raises(ValueError, match="`padding_mode` must be one of"):
        call()

