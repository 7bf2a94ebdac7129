"""dwconv.filter2d and dwconv.sep_filter2d, OpenCV's image-filtering calls, against the reference;
and the integer results (rounded to nearest, saturated) they and depthwise_conv2d give."""
import tracemalloc

import numpy as np
import pytest

import dwconv
from reference import activate, conv2d_forward, resolve_padding

BORDERS = {  # a name of each padding mode in each vocabulary filter2d takes
    "zeros": ("zeros", "constant", "BORDER_CONSTANT", "border_constant", 0),
    "replicate": ("replicate", "edge", "BORDER_REPLICATE", "Replicate", 1),
    "circular": ("circular", "wrap", "BORDER_WRAP", 3),
    "reflect": ("reflect", "BORDER_REFLECT_101", "BORDER_REFLECT101", "BORDER_DEFAULT", "reflect_101", 4),
    "symmetric": ("symmetric", "BORDER_REFLECT", "border_reflect", 2),
}
SHAPES = [(23, 31), (17, 29, 1), (19, 26, 3), (12, 40, 4)]
INTEGERS = (np.uint8, np.uint16, np.int16, np.int32)


def _image(shape, dtype, rng):
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        low, high = max(info.min, -3000), min(info.max, 3000)
        return rng.integers(low, high, shape, endpoint=True).astype(dtype)
    return (rng.standard_normal(shape) * 50).astype(dtype)


def _expected(image, kernel, mode, padding, delta=0.0):
    """The float64 reference of filtering every channel of `image` with `kernel` ((kh, kw) or (kh, kw, C))."""
    x = image.reshape(1, *image.shape[:2], -1).astype(np.float64)
    channels = x.shape[3]
    filters = kernel if kernel.ndim == 3 else np.repeat(kernel[:, :, None], channels, axis=2)
    y = conv2d_forward(x, filters.astype(np.float64), (1, 1), padding, "NHWC", (1, 1), padding_mode=mode)
    return (y + delta).reshape(image.shape)


def _assert_result(result, expected, dtype):
    """`result` (of `dtype`) equals the float64 `expected`: rounded to nearest and saturated for
    integers (one off only where float32 sums sit at a tie), close for floats."""
    assert result.dtype == np.dtype(dtype) and result.shape == expected.shape
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        want = np.clip(np.rint(expected), info.min, info.max)
        off = np.abs(result.astype(np.float64) - want)
        near_tie = np.abs(np.abs(expected - np.floor(expected)) - 0.5) < 1e-3 * np.maximum(1, np.abs(expected))
        assert off.max(initial=0) <= 1 and np.all((off == 0) | near_tie), np.argwhere(off > 0)[:5]
    else:
        tolerance = {np.dtype(np.float16): 2e-2, np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}[np.dtype(dtype)]
        scale = np.abs(expected).max(initial=1)
        np.testing.assert_allclose(result.astype(np.float64), expected, atol=tolerance * scale, rtol=0)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", (np.uint8, np.uint16, np.int16, np.float16, np.float32, np.float64))
@pytest.mark.parametrize("mode", BORDERS)
@pytest.mark.parametrize("ksize", [(3, 3), (5, 5), (4, 2), (1, 7)], ids=lambda k: f"{k[0]}x{k[1]}")
def test_filter2d_against_the_reference(shape, dtype, mode, ksize):
    rng = np.random.default_rng([len(shape), shape[0], ksize[0], ksize[1]])
    image = _image(shape, dtype, rng)
    kernel = rng.standard_normal(ksize).astype(np.float32) / np.prod(ksize)
    (kh, kw), names = ksize, BORDERS[mode]
    result = dwconv.filter2d(image, kernel, names[(kh + kw + len(shape)) % len(names)])
    padding = ((kh // 2, kh - 1 - kh // 2), (kw // 2, kw - 1 - kw // 2))  # OpenCV's centre anchor
    _assert_result(result, _expected(image, kernel, mode, padding), dtype)


@pytest.mark.parametrize("dtype", (np.uint8, np.float32))
def test_filter2d_per_channel_kernels_anchor_and_delta(dtype):
    rng = np.random.default_rng(1)
    image = _image((21, 18, 3), dtype, rng)
    kernel = rng.standard_normal((3, 5, 3)).astype(np.float32) / 4
    result = dwconv.filter2d(image, kernel, "replicate", anchor=(0, 2), delta=7.25)
    _assert_result(result, _expected(image, kernel, "replicate", ((2, 0), (0, 4)), 7.25), dtype)
    # (-1, -1) is the centre, as None is
    np.testing.assert_array_equal(dwconv.filter2d(image, kernel, anchor=(-1, -1)), dwconv.filter2d(image, kernel))


@pytest.mark.parametrize("shape, ksize", [((19, 23, 3), (3, 5)), ((19, 23, 3), (3, 5, 3)), ((21, 17), (5, 3))],
                         ids=str)
def test_filter2d_repeated_calls(shape, ksize):
    """filter2d keeps what its checks concluded for a call's signature: a call again with arrays of the
    same shapes and dtypes (other values in them) filters with its own, and a call that differs in
    an argument's type alone is checked anew (True is neither a border nor a delta, though it
    equals 1, cv2.BORDER_REPLICATE)."""
    rng = np.random.default_rng([len(shape), *ksize])
    kh, kw = ksize[:2]
    padding = ((kh // 2, kh - 1 - kh // 2), (kw // 2, kw - 1 - kw // 2))
    for _ in range(3):
        image = _image(shape, np.float32, rng)
        kernel = rng.standard_normal(ksize).astype(np.float32)
        _assert_result(dwconv.filter2d(image, kernel, 1, delta=1), _expected(image, kernel, "replicate", padding, 1),
                       np.float32)
        _assert_result(dwconv.filter2d(image, kernel, "zeros", dtype=np.uint8),
                       _expected(image, kernel, "zeros", padding), np.uint8)
    with pytest.raises(TypeError, match="`delta` must be a number, got True"):
        dwconv.filter2d(image, kernel, 1, delta=True)
    with pytest.raises(ValueError, match="`border` must be .*got True"):
        dwconv.filter2d(image, kernel, True, delta=1)
    image = _image(shape, np.float64, rng)  # (a dtype of its own)
    _assert_result(dwconv.filter2d(image, kernel, 1, delta=1), _expected(image, kernel, "replicate", padding, 1),
                   np.float64)


def test_filter2d_result_dtype_and_out():
    rng = np.random.default_rng(2)
    image = _image((16, 20, 3), np.uint8, rng)
    kernel = np.full((3, 3), 1 / 9, np.float32)
    as_float = dwconv.filter2d(image, kernel, dtype=np.float32)
    _assert_result(as_float, _expected(image, kernel, "reflect", ((1, 1), (1, 1))), np.float32)
    out = np.empty(image.shape, np.uint8)
    assert dwconv.filter2d(image, kernel, out=out) is out
    _assert_result(out, _expected(image, kernel, "reflect", ((1, 1), (1, 1))), np.uint8)


@pytest.mark.parametrize("dtype", INTEGERS)
def test_integer_results_saturate(dtype, isa_level):
    """Sums beyond the dtype's range give its limits, as OpenCV's saturate_cast does; NaN gives 0;
    in a row long enough for whole vectors and a last one overlapping them at every level."""
    info = np.iinfo(dtype)
    values = np.array([-4.0, -1.0, 1.0, 4.0, np.nan], np.float64) * float(info.max)
    values = np.concatenate([values, [np.inf, -np.inf, 1e30, -1e30]])
    x = np.resize(values, 67).reshape(1, 1, 67, 1)
    y = dwconv.depthwise_conv2d(x.astype(np.float32), np.ones((1, 1, 1), np.float32), dtype=dtype)
    assert y.dtype == np.dtype(dtype)
    expected = [info.min, max(info.min, -info.max), info.max, info.max, 0, info.max, info.min, info.max, info.min]
    if dtype == np.int32:  # float32 holds 2**31 - 1 as 2**31, which saturates to the same limit
        expected[1] = info.min
    np.testing.assert_array_equal(y.reshape(-1), np.resize(expected, 67))


@pytest.mark.parametrize("dtype", (np.uint8, np.uint16, np.int16))
def test_integer_results_round_ties_to_even(dtype, isa_level):
    values = [0.5, 1.5, 2.5, 2.4999, 2.5001, 254.5, 253.5] + ([-0.5, -1.5, -2.5] if dtype == np.int16 else [])
    x = np.resize(np.array(values, np.float32), 67).reshape(1, 1, 67, 1)
    y = dwconv.depthwise_conv2d(x, np.ones((1, 1, 1), np.float32), dtype=dtype)
    expected = [0, 2, 2, 2, 3, 254, 254] + ([0, -2, -2] if dtype == np.int16 else [])
    np.testing.assert_array_equal(y.reshape(-1), np.resize(expected, 67))


def test_integer_result_with_a_callable_activation_sees_the_float_sums():
    x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(1, 3, 4, 1)
    y = dwconv.depthwise_conv2d(x, np.ones((1, 1, 1), np.float32), dtype=np.uint8,
                                activation=lambda v: 100 / (1 + np.exp(-v)))
    np.testing.assert_array_equal(y.reshape(-1), np.rint(100 / (1 + np.exp(-x.reshape(-1).astype(np.float64)))))


# The float32 forward reads uint8, uint16 and int16 pixels and writes them itself (one filter per
# channel): NHWC rings of every width (a vector's remainder, channel blocks), NCHW planes, strides,
# dilations, every padding mode, a bias and the fused activations; float in, integers out, and the
# reverse.
KERNEL_PIXEL_CASES = [  # (layout, N, H, W, C, k, stride, dilation, mode, activation)
    ("NHWC", 2, 19, 37, 3, 5, 1, 1, "reflect", None),
    ("NHWC", 1, 9, 70, 1, 3, 1, 1, "zeros", "relu6"),
    ("NHWC", 1, 11, 23, 17, 3, 2, 1, "replicate", None),  # stride 2: no in-place rows for integers
    ("NHWC", 1, 8, 9, 150, 3, 1, 1, "zeros", "relu"),  # blocks of channels
    ("NHWC", 2, 13, 41, 4, 7, 1, 2, "circular", None),
    ("NHWC", 1, 24, 31, 3, 21, 1, 1, "symmetric", None),  # large kernels: the channels taken apart into planes
    ("NHWC", 1, 18, 40, 5, 7, 2, 1, "reflect", "relu6"),  # planes at stride 2
    ("NHWC", 2, 3, 33, 2, 7, 1, 1, "replicate", None),  # planes, fewer rows than one call computes
    ("NCHW", 2, 21, 45, 3, 5, 1, 1, "reflect", None),
    ("NCHW", 1, 9, 8, 20, 3, 1, 1, "zeros", "relu"),  # narrow planes, many channels: planes, not packed
    ("NCHW", 1, 17, 33, 2, 3, 2, 1, "symmetric", "hard_swish"),
    ("NCHW", 1, 15, 26, 2, 3, 1, 2, "replicate", None),
]


@pytest.mark.parametrize("case", KERNEL_PIXEL_CASES, ids=lambda c: "-".join(map(str, c)))
@pytest.mark.parametrize("dtype", (np.uint8, np.uint16, np.int16))
def test_integer_pixels_in_and_out_of_the_kernel(case, dtype, isa_level):
    layout, n, h, w, c, k, stride, dilation, mode, act = case
    rng = np.random.default_rng([h, w, c, k])
    nhwc = _image((n, h, w, c), dtype, rng)
    x = nhwc if layout == "NHWC" else nhwc.transpose(0, 3, 1, 2).copy()
    filters = (rng.standard_normal((k, k, c)) * 2 / k).astype(np.float32)
    bias = (rng.standard_normal(c) * 20).astype(np.float32)
    padding = resolve_padding("SAME", (h, w), (k, k), (stride, stride), (dilation, dilation))
    expected = activate(conv2d_forward(x, filters, (stride, stride), padding, layout, (dilation, dilation), bias,
                                       mode), act)
    arguments = dict(strides=stride, padding="SAME", data_format=layout, dilations=dilation, bias=bias,
                     padding_mode=mode, activation=act)
    _assert_result(dwconv.depthwise_conv2d(x, filters, dtype=dtype, **arguments), expected, dtype)
    _assert_result(dwconv.depthwise_conv2d(x, filters, **arguments), expected, np.float32)
    _assert_result(dwconv.depthwise_conv2d(x.astype(np.float32), filters, dtype=dtype, **arguments), expected, dtype)


def test_integer_pixels_make_no_float_copy():
    """An 8-bit image filtered into an 8-bit result allocates nothing near a float32 image's size."""
    image = np.random.default_rng(5).integers(0, 256, (256, 512, 3), dtype=np.uint8)
    kernel = np.full((5, 5), 1 / 25, np.float32)
    out = np.empty_like(image)
    dwconv.filter2d(image, kernel, out=out)  # (first call: imports and caches)
    tracemalloc.start()
    try:
        dwconv.filter2d(image, kernel, out=out)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < image.nbytes // 4, peak  # a float32 copy of the image or result is 4 image.nbytes


@pytest.mark.parametrize("shape", [(25, 33), (22, 30, 3)], ids=str)
@pytest.mark.parametrize("dtype", (np.uint8, np.float32))
@pytest.mark.parametrize("mode", ("reflect", "zeros", "circular", "symmetric"))
def test_sep_filter2d_is_filter2d_with_the_outer_product(shape, dtype, mode):
    rng = np.random.default_rng([len(shape), 3])
    image = _image(shape, dtype, rng)
    kernel_x = rng.standard_normal(7).astype(np.float32) / 4
    kernel_y = rng.standard_normal(5).astype(np.float32) / 4
    expected = _expected(image, np.outer(kernel_y, kernel_x), mode, ((2, 2), (3, 3)), 1.5)
    _assert_result(dwconv.sep_filter2d(image, kernel_x, kernel_y, mode, delta=1.5), expected, dtype)
    # OpenCV's column and row vectors (getGaussianKernel's (k, 1)) read as the same filters
    _assert_result(dwconv.sep_filter2d(image, kernel_x[:, None], kernel_y[None, :], mode, delta=1.5), expected,
                   dtype)


def test_sep_filter2d_per_channel_and_anchor():
    rng = np.random.default_rng(4)
    image = _image((20, 24, 3), np.float64, rng)
    kernel_x, kernel_y = rng.standard_normal((3, 3)), rng.standard_normal((4, 3))
    result = dwconv.sep_filter2d(image, kernel_x, kernel_y, "replicate", anchor=(2, 0))
    kernel = kernel_y[:, None, :] * kernel_x[None, :, :]
    _assert_result(result, _expected(image, kernel, "replicate", ((0, 3), (2, 0))), np.float64)


@pytest.mark.parametrize("call, message", [
    (lambda: dwconv.filter2d(np.ones((4, 4)), np.ones((3, 3)), "mirror"), r"`border` must be one of .*'mirror'"),
    (lambda: dwconv.filter2d(np.ones((4, 4)), np.ones((3, 3)), 5), r"`border` must be .*got 5"),
    (lambda: dwconv.filter2d(np.ones((2, 4, 4, 1)), np.ones((3, 3))), r"`image` must be \(H, W\) .*batch"),
    (lambda: dwconv.filter2d(np.ones(4), np.ones((3, 3))), r"`image` must be \(H, W\) or \(H, W, C\), got shape \(4,\)"),
    (lambda: dwconv.filter2d(np.ones((4, 4, 3)), np.ones((3, 3, 2))), r"`kernel` must be .*got shape \(3, 3, 2\)"),
    (lambda: dwconv.filter2d(np.ones((4, 4)), np.ones((3, 3)), anchor=(3, 0)), r"`anchor` must be \(x, y\) inside"),
    (lambda: dwconv.filter2d(np.ones((4, 4)), np.ones((3, 3)), anchor=1), r"`anchor` must be a pair"),
    (lambda: dwconv.filter2d(np.ones((4, 4)), np.ones((3, 3)), out=np.empty((4, 5))), r"`out` must have the image's shape"),
    (lambda: dwconv.filter2d(np.ones((4, 4)), np.ones((3, 3)), out=np.empty((4, 8))[:, ::2]), r"`out` must be C-contiguous"),
    (lambda: dwconv.sep_filter2d(np.ones((4, 4, 3)), np.ones((3, 2)), np.ones(3)), r"`kernel_x` must be .*\(3, 2\)"),
    (lambda: dwconv.sep_filter2d(np.ones((4, 4)), np.ones(3), np.ones((2, 2, 2))), r"`kernel_y` must be"),
])
def test_bad_arguments_raise_value_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("call, message", [
    (lambda: dwconv.filter2d(np.ones((4, 4)), np.ones((3, 3)), delta="1"), r"`delta` must be a number, got '1'"),
    (lambda: dwconv.filter2d(np.ones((4, 4)), np.ones((3, 3)), dtype=np.int8), r"`dtype` must be .*int8"),
    (lambda: dwconv.depthwise_conv2d_backprop_input((1, 4, 4, 1), np.ones((3, 3, 1)), np.ones((1, 2, 2, 1)),
                                                     dtype=np.uint8), r"`dtype` must be float16, float32 or float64"),
])
def test_bad_argument_types_raise_type_errors(call, message):
    with pytest.raises(TypeError, match=message):
        call()


@pytest.mark.parametrize("border", ["BORDER_REFLECT_101", "BORDER_REPLICATE", "BORDER_CONSTANT", "BORDER_REFLECT"])
def test_same_results_as_opencv(border):
    """Where OpenCV is installed: its filter2D and sepFilter2D give the same 8-bit images."""
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(5)
    image = _image((37, 53, 3), np.uint8, rng)
    kernel = rng.random((5, 5)).astype(np.float32) / 10
    code = getattr(cv2, border)
    ours, theirs = dwconv.filter2d(image, kernel, border), cv2.filter2D(image, -1, kernel, borderType=code)
    assert np.abs(ours.astype(int) - theirs).max() <= 1
    kernel_x, kernel_y = cv2.getGaussianKernel(7, 1.5), cv2.getGaussianKernel(5, 1.0)
    ours, theirs = (dwconv.sep_filter2d(image, kernel_x, kernel_y, code),
                    cv2.sepFilter2D(image, -1, kernel_x, kernel_y, borderType=code))
    assert np.abs(ours.astype(int) - theirs).max() <= 1


def _filters(kind, size, rng):
    """A (size,) float32 filter: symmetric, antisymmetric (a derivative) or neither, which the fused
    kernel folds into pairs of taps, subtracts in pairs, or takes one tap at a time."""
    taps = rng.standard_normal(size).astype(np.float32) / 2
    if kind == "symmetric":
        return taps + taps[::-1]
    if kind == "antisymmetric":
        return taps - taps[::-1]
    return taps


FUSED_CASES = [  # (shape, (kh, kw), anchor (x, y))
    ((29, 21), (5, 7), None),           # a 2-D image
    ((23, 18, 3), (7, 3), (0, 6)),      # anchors at the filters' ends
    ((9, 6, 3), (13, 11), None),        # filters longer than the image both ways
    ((16, 12, 4), (4, 6), None),        # even sizes: the anchor one past the middle
    ((11, 8, 5), (5, 3), (2, 1)),       # 5 channels
    ((17, 12, 2), (1, 1), None),        # one tap each way
    ((1, 1), (3, 5), None),             # one pixel
    ((1, 13, 3), (5, 3), None),         # one row
    ((13, 1), (3, 5), (4, 0)),          # one column
    ((26, 45, 3), (31, 31), None),      # rows of several vectors and their overlapping last one
]


@pytest.mark.parametrize("mode", BORDERS)
@pytest.mark.parametrize("shape, ksize, anchor", FUSED_CASES, ids=str)
@pytest.mark.parametrize("dtype", (np.uint8, np.uint16, np.int16, np.float32, np.float64))
def test_sep_filter2d_fused_against_the_reference(mode, shape, ksize, anchor, dtype, isa_level):
    """One filter for every channel: the fused kernel, for every border, element type, kind of
    filter and instruction-set level; 1 and 2 threads give the same result."""
    rng = np.random.default_rng([len(shape), shape[0], shape[1], ksize[0], ksize[1]])
    image = _image(shape, dtype, rng)
    (kh, kw) = ksize
    ax, ay = (kw // 2, kh // 2) if anchor is None else anchor
    for kind in ("symmetric", "antisymmetric", "neither"):
        kernel_x, kernel_y = _filters(kind, kw, rng), _filters(kind, kh, rng)
        result = dwconv.sep_filter2d(image, kernel_x, kernel_y, mode, delta=-2.5, anchor=anchor, num_threads=1)
        expected = _expected(image, np.outer(kernel_y.astype(np.float64), kernel_x), mode,
                             ((ay, kh - 1 - ay), (ax, kw - 1 - ax)), -2.5)
        _assert_result(result, expected, dtype)
        np.testing.assert_array_equal(
            dwconv.sep_filter2d(image, kernel_x, kernel_y, mode, delta=-2.5, anchor=anchor, num_threads=2), result)


@pytest.mark.parametrize("mode", BORDERS)
@pytest.mark.parametrize("dtype", (np.uint8, np.float32))
def test_sep_filter2d_fused_in_threads(mode, dtype):
    """An image large enough to share: bands of rows per thread, the same result for 1, 2 and 3."""
    rng = np.random.default_rng(11)
    image = _image((157, 130, 3), dtype, rng)
    kernel_x, kernel_y = _filters("symmetric", 9, rng), _filters("neither", 6, rng)
    results = [dwconv.sep_filter2d(image, kernel_x, kernel_y, mode, num_threads=n) for n in (1, 2, 3)]
    _assert_result(results[0], _expected(image, np.outer(kernel_y, kernel_x), mode, ((3, 2), (4, 4))), dtype)
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])


def test_sep_filter2d_shared_filters_take_the_fused_kernel(monkeypatch):
    """No depthwise_conv2d call where one filter serves every channel (OpenCV's column and row
    vectors, the same filter per channel, filter2d's factors of a rank-one kernel); filters that
    differ by channel take two of them."""
    calls = []
    depthwise_conv2d = dwconv._image.depthwise_conv2d
    monkeypatch.setattr(dwconv._image, "depthwise_conv2d", lambda *a, **k: calls.append(a) or depthwise_conv2d(*a, **k))
    image = _image((12, 10, 3), np.uint8, np.random.default_rng(12))
    kernel = np.array([1, 2, 1], np.float32) / 4
    dwconv.sep_filter2d(image, kernel[:, None], np.stack([kernel] * 3, axis=1))
    dwconv.filter2d(image, np.outer(kernel, kernel), separable=True)
    assert calls == []
    dwconv.sep_filter2d(image, kernel, np.stack([kernel, kernel, 2 * kernel], axis=1))
    assert len(calls) == 2


@pytest.mark.parametrize("mode", BORDERS)
def test_sep_filter2d_per_channel_filters_and_anchor(mode):
    """Filters that differ by channel take the two passes over the whole image."""
    rng = np.random.default_rng(6)
    image = _image((20, 15, 3), np.float64, rng)
    kernel_x, kernel_y = rng.standard_normal((4, 3)), rng.standard_normal((5, 3))
    result = dwconv.sep_filter2d(image, kernel_x, kernel_y, mode, anchor=(3, 1), num_threads=2)
    kernel = kernel_y[:, None, :] * kernel_x[None, :, :]
    _assert_result(result, _expected(image, kernel, mode, ((1, 3), (3, 0))), np.float64)


@pytest.mark.parametrize("mode", BORDERS)
@pytest.mark.parametrize("shape", [(31, 26, 3), (2, 3, 1)], ids=str)
def test_sep_filter2d_uint8_rounds_and_saturates_exactly(mode, shape, isa_level):
    """Weights in eighths sum every pixel exactly in float32, ties (x.5) and beyond 0..255 included:
    the result is the reference rounded half to even and saturated, with no pixel off by one (whole
    vectors, and rows shorter than one)."""
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    kernel_x, kernel_y = np.array([1, -3, 8, 5, -2], np.float32) / 8, np.array([-1, 6, 4], np.float32) / 8
    result = dwconv.sep_filter2d(image, kernel_x, kernel_y, mode, num_threads=2)
    expected = _expected(image, np.outer(kernel_y, kernel_x), mode, ((1, 1), (2, 2)))
    if shape[0] > 2:
        assert np.any(expected < 0) and np.any(expected > 255) and np.any(expected % 1 == 0.5)
    np.testing.assert_array_equal(result, np.clip(np.rint(expected), 0, 255))


@pytest.mark.parametrize("dtype", (np.uint8, np.uint16, np.int16))
def test_sep_filter2d_integer_results_of_non_finite_sums(dtype, isa_level):
    """Into integers, as OpenCV's saturate_cast: +inf the largest value, -inf the smallest, NaN 0."""
    image = np.zeros((3, 40), np.float32)
    image[1, :] = [np.nan, np.inf, -np.inf, 1e30, -1e30, 2.5, 3.5, -2.5] * 5
    result = dwconv.sep_filter2d(image, np.ones(1, np.float32), np.array([0, 1, 0], np.float32), dtype=dtype)
    info = np.iinfo(dtype)
    want = np.clip(np.nan_to_num(image, nan=0, posinf=info.max, neginf=info.min), info.min, info.max)
    np.testing.assert_array_equal(result, np.rint(want).astype(dtype))


def test_sep_filter2d_in_place_and_into_out():
    rng = np.random.default_rng(8)
    image = _image((30, 20, 3), np.float32, rng)
    kernel = np.array([1, 2, 3, 2, 1], np.float32) / 9
    expected = dwconv.sep_filter2d(image.copy(), kernel, kernel)
    out = np.empty_like(image)
    assert dwconv.sep_filter2d(image, kernel, kernel, out=out) is out
    np.testing.assert_array_equal(out, expected)
    # into the image itself: each row's result would overwrite source rows of the rows after it
    assert dwconv.sep_filter2d(image, kernel, kernel, out=image) is image
    np.testing.assert_array_equal(image, expected)


@pytest.mark.parametrize("dtype, result_dtype", [(np.float64, np.float32), (np.uint8, np.float64),
                                                 (np.int32, np.uint8), (np.float16, np.float16),
                                                 (np.float32, np.int32)], ids=str)
def test_sep_filter2d_other_image_and_result_types(dtype, result_dtype):
    """Images and results the fused kernel does not read or write itself are converted around it."""
    rng = np.random.default_rng(13)
    image = _image((14, 17, 3), dtype, rng)
    kernel_x, kernel_y = _filters("symmetric", 5, rng), _filters("neither", 3, rng)
    result = dwconv.sep_filter2d(image, kernel_x, kernel_y, "replicate", delta=0.25, dtype=result_dtype)
    expected = _expected(image, np.outer(kernel_y.astype(np.float64), kernel_x), "replicate", ((1, 1), (2, 2)), 0.25)
    _assert_result(result, expected, result_dtype)


@pytest.mark.parametrize("dtype", (np.uint8, np.float32, np.float64))
@pytest.mark.parametrize("mode", ("reflect", "zeros"))
def test_filter2d_separable_factors_rank_one_kernels(monkeypatch, dtype, mode):
    """With separable=True a kernel that is an outer product (per channel) goes to sep_filter2d, with
    the same results to rounding; without it, or for a kernel of rank 2, it does not."""
    calls = []
    sep_filter2d = dwconv._image.sep_filter2d
    monkeypatch.setattr(dwconv._image, "sep_filter2d", lambda *a, **k: calls.append(a) or sep_filter2d(*a, **k))
    rng = np.random.default_rng(10)
    image = _image((40, 33, 3), dtype, rng)
    column, row = np.array([1, 4, 6, 4, 1]) / 16, np.array([-1, 0, 2, 5, 2, 0, -1]) / 7
    per_channel = np.stack([np.outer(column, row) * scale for scale in (1, -0.5, 2)], axis=2)
    kernel = per_channel.astype(np.float64 if dtype == np.float64 else np.float32)
    expected = _expected(image, kernel, mode, ((2, 2), (3, 3)), 0.75)
    _assert_result(dwconv.filter2d(image, kernel, mode, delta=0.75, separable=True), expected, dtype)
    assert len(calls) == 1
    _assert_result(dwconv.filter2d(image, kernel, mode, delta=0.75), expected, dtype)
    assert len(calls) == 1
    rank_two = kernel.copy()
    rank_two[0, 0, 1] += 1e-3
    _assert_result(dwconv.filter2d(image, rank_two, mode, delta=0.75, separable=True),
                   _expected(image, rank_two, mode, ((2, 2), (3, 3)), 0.75), dtype)
    assert len(calls) == 1


def test_filter2d_separable_needs_a_product_to_the_dtype_rounding():
    """A float32 Gaussian's taps are a product to float32 rounding, not to float64's: factored for a
    float32 (or uint8) image, not for a float64 one; a 1-D kernel is left to filter2d."""
    g = np.exp(-0.5 * (np.arange(-4, 5) / 1.5) ** 2)
    kernel = np.outer(g, g).astype(np.float32)
    assert dwconv._image._rank_one_factors(kernel[:, :, None], np.float32) is not None
    assert dwconv._image._rank_one_factors(kernel[:, :, None], np.float64) is None
    assert dwconv._image._rank_one_factors(np.outer(g, g)[:, :, None], np.float64) is not None
    assert dwconv._image._rank_one_factors(g[None, :, None], np.float32) is None
    assert dwconv._image._rank_one_factors(np.eye(3)[:, :, None], np.float32) is None
    assert dwconv._image._rank_one_factors(np.full((3, 3, 1), np.nan), np.float32) is None  # (SVD would raise)


# NHWC images of 2 to 12 channels, at stride 1 along the rows, run each row as one plane of W*C
# elements, its taps C apart, where a filter (and bias) is the same for every channel (an image
# filter): kernels of the dense tiles (up to 7x7) and wider ones, dilated, strided down the columns,
# images of fewer rows than one call computes, every padding mode; float and integer pixels in and
# out, a bias and an activation. A filter (and bias) that differs by channel runs so too, each lane
# weighted by its channel, where the lanes' channels repeat every vector (2, 4, 8 channels) or every
# three (3, 6, 12: 3x3 kernels) and the plane-rows tiles take the kernel; else the channels apart.
# Float rows wide enough to have whole cache lines of output pixels between two tiles at each end
# read their middle in place (the cases from (7, 64, 3) on: from pixel 16, 12, 24, 4, 16, 16, 8, 4,
# 6 and 12 on).
SHARED_CASES = [  # (H, W, C, kh, kw, strides, dilations, mode, activation)
    (13, 11, 3, 3, 3, 1, 1, "reflect", None),
    (9, 20, 4, 5, 5, 1, 1, "zeros", "relu6"),
    (10, 7, 2, 7, 7, 1, (1, 2), "replicate", None),
    (12, 9, 3, 9, 9, 1, 1, "circular", None),
    (11, 6, 16, 11, 4, (2, 1), 1, "symmetric", "relu"),
    (3, 17, 7, 2, 3, 1, (2, 1), "reflect", None),
    (6, 5, 5, 1, 6, 1, 1, "zeros", "hard_swish"),
    (7, 64, 3, 5, 5, 1, 1, "reflect", None),
    (6, 40, 4, 3, 3, 1, 1, "zeros", "relu"),
    (9, 70, 2, 7, 7, 1, (1, 2), "circular", None),
    (8, 45, 12, 5, 3, (2, 1), 1, "symmetric", None),
    (5, 60, 5, 4, 4, 1, 1, "replicate", None),
    (6, 70, 3, 3, 3, 1, 1, "reflect", None),
    (7, 30, 6, 3, 3, 1, 1, "zeros", "relu"),
    (5, 24, 12, 3, 3, 1, 1, "symmetric", None),
    (6, 33, 8, 5, 5, 1, 1, "replicate", None),
    (9, 40, 4, 7, 7, 1, 1, "reflect", "gelu"),
]


@pytest.mark.parametrize("case", SHARED_CASES, ids=lambda c: "-".join(map(str, c)))
@pytest.mark.parametrize("dtype", (np.uint8, np.float32))
def test_one_filter_for_every_channel(case, dtype, isa_level):
    h, w, c, kh, kw, strides, dilations, mode, act = case
    rng = np.random.default_rng([h, w, c, kh, kw])
    x = _image((2, h, w, c), dtype, rng)
    kernel = (rng.standard_normal((kh, kw)) * 2 / (kh * kw)).astype(np.float32)
    strides, dilations = np.broadcast_to(strides, 2), np.broadcast_to(dilations, 2)
    padding = resolve_padding("SAME", (h, w), (kh, kw), strides, dilations)
    shared = (np.repeat(kernel[:, :, None], c, axis=2), np.full(c, 3.5, np.float32))
    apart = (np.dstack([kernel * (1 + i / c) for i in range(c)]), np.linspace(2, 5, c, dtype=np.float32))
    for filters, bias in (shared, apart):
        expected = activate(conv2d_forward(x.astype(np.float64), filters.astype(np.float64), strides, padding,
                                           "NHWC", dilations, bias, mode), act)
        for n_threads in (1, 2):
            got = dwconv.depthwise_conv2d(x, filters, strides, "SAME", dilations=dilations, bias=bias,
                                          padding_mode=mode, activation=act, dtype=dtype, num_threads=n_threads)
            _assert_result(got, expected, dtype)
