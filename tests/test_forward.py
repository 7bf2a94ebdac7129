"""Correctness of ``dwconv.depthwise_conv2d`` (forward pass).

Every numerical expectation comes from the float64 NumPy reference in
``tests/reference.py`` (or from TensorFlow's and ivy's documented examples).
dwconv is compared with itself only where the contract is bitwise sameness:
thread counts, ``out=`` versus a fresh result, 3-D versus 4-D filters.
"""

import itertools
import os
import pathlib

import numpy as np
import pytest

import dwconv
from dwconv import _cache
from reference import (
    conv2d_forward,
    normalize_pair,
    output_hw,
    resolve_padding,
)
from checks import (AWKWARD, assert_close, awkward, cache_line_empty, reference_forward, reference_gradients,
                    snapshot, unchanged)
from seeds import (IVY_A, IVY_B, IVY_LAPLACE, IVY_SEED_EXAMPLES, IVY_X, TF_EXPLICIT_PADDING, TF_EXPLICIT_Y, TF_KERNEL,
                   TF_VALID_Y, TF_X)
from sweep import (DILATIONS, DTYPES, FORMATS, KERNELS, PADDINGS, STRIDES, SWEEP,
                   SWEEP_EXTRAS_CARDINALITY, api_pair, build_case, sweep_extras, sweep_id, tf4_padding, to_format)



# ---------------------------------------------------------------------------
# helpers


def _is_f32(a):
    dt = np.asarray(a).dtype
    return dt.kind == "f" and dt.itemsize == 4


def expected_dtype(x, filters):
    """API: float32 iff both x and filters are float32, else float64."""
    return np.dtype(np.float32) if _is_f32(x) and _is_f32(filters) else np.dtype(np.float64)


def assert_conv_close(got, x, filters, strides, padding, data_format, dilations,
                      bias=None, out_dtype=None):
    """Compare ``got`` with the reference; ``padding`` is the resolved form.

    Returns the float64 reference result.
    """
    ref, scale = reference_forward(x, filters, strides, padding, data_format, dilations, bias=bias)
    if out_dtype is None:
        out_dtype = expected_dtype(x, filters)
    w_shape = np.shape(filters)
    assert_close(got, ref, scale, out_dtype, w_shape[0] * w_shape[1])
    return ref


def make_x(rng, n, h, w, c, data_format, dtype=np.float64):
    shape = (n, h, w, c) if data_format == "NHWC" else (n, c, h, w)
    return rng.standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------------------
# the reference itself against the literal TensorFlow definition


def _tf_definition(x_nhwc, filters, strides, padding, dilations):
    """Pure-Python loops over the TF doc formula (zero outside the input)."""
    N, H, W, C = x_nhwc.shape
    kh, kw, _, M = filters.shape
    (t, b), (l, r) = padding
    sh, sw = strides
    dh, dw = dilations
    OH = (H + t + b - (kh - 1) * dh - 1) // sh + 1
    OW = (W + l + r - (kw - 1) * dw - 1) // sw + 1
    out = np.zeros((N, OH, OW, C * M))
    for n_, i, j, k, q in itertools.product(range(N), range(OH), range(OW), range(C), range(M)):
        s = 0.0
        for di in range(kh):
            for dj in range(kw):
                hi = sh * i + dh * di - t
                wj = sw * j + dw * dj - l
                if 0 <= hi < H and 0 <= wj < W:
                    s += filters[di, dj, k, q] * x_nhwc[n_, hi, wj, k]
        out[n_, i, j, k * M + q] = s
    return out


@pytest.mark.parametrize("strides, dilations, padding, k", [
    ((1, 1), (1, 1), ((0, 0), (0, 0)), (3, 3)),
    ((2, 1), (1, 2), ((1, 2), (0, 1)), (3, 2)),
    ((1, 3), (2, 1), ((2, 0), (1, 1)), (2, 3)),
    ((2, 2), (2, 2), ((1, 1), (2, 2)), (3, 3)),
])
@pytest.mark.parametrize("data_format", FORMATS)
def test_reference_matches_tf_definition(strides, dilations, padding, k, data_format):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 7, 8, 2))
    w = rng.standard_normal(k + (2, 2))
    want = _tf_definition(x, w, strides, padding, dilations)
    got = conv2d_forward(to_format(x, data_format), w, strides, padding, data_format, dilations)
    if data_format == "NCHW":
        got = got.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


def test_reference_same_padding_formula():
    # TF SAME: out = ceil(n/s); extra padding goes to the bottom/right.
    assert resolve_padding("SAME", (5, 6), (3, 4), 1, 1) == ((1, 1), (1, 2))
    assert resolve_padding("SAME", (7, 7), (3, 3), 2, 1) == ((1, 1), (1, 1))
    assert resolve_padding("SAME", (8, 8), (3, 3), 2, 1) == ((0, 1), (0, 1))
    assert resolve_padding("SAME", (5, 5), (3, 3), 1, 2) == ((2, 2), (2, 2))
    assert resolve_padding("SAME", (10, 10), (1, 1), 3, 1) == ((0, 0), (0, 0))
    assert resolve_padding("SAME", (2, 2), (7, 7), 1, 1) == ((3, 3), (3, 3))
    assert resolve_padding([[0, 0], [1, 2], [3, 4], [0, 0]], (5, 5), (3, 3), 1, 1, "NHWC") \
        == ((1, 2), (3, 4))
    assert resolve_padding([[0, 0], [0, 0], [1, 2], [3, 4]], (5, 5), (3, 3), 1, 1, "NCHW") \
        == ((1, 2), (3, 4))


# ---------------------------------------------------------------------------
# the big sweep: full product of (format, stride, dilation, kernel, padding);
# multiplier, dtype, sizes, argument spellings cycle deterministically.



@pytest.mark.parametrize("case", SWEEP, ids=[sweep_id(c) for c in SWEEP])
def test_sweep(case):
    run_sweep_case(case)


@pytest.mark.parametrize("n_dtypes", [len(DTYPES), 3])
def test_sweep_covers_all_pairs(n_dtypes):
    card = dict(zip("fsdkp", map(len, (FORMATS, STRIDES, DILATIONS, KERNELS, PADDINGS))))
    card.update(SWEEP_EXTRAS_CARDINALITY, dtype=n_dtypes)
    seen = {}
    for case in SWEEP:
        v = dict(zip("fsdkp", case))
        v.update(sweep_extras(case, n_dtypes))
        for a, b in itertools.combinations(sorted(v), 2):
            seen.setdefault((a, b), set()).add((v[a], v[b]))
    for (a, b), got in seen.items():
        assert len(got) == card[a] * card[b], (a, b, sorted(got))


def run_sweep_case(case, **kwargs):
    c = build_case(case, 1000)
    got = dwconv.depthwise_conv2d(c.x, c.filters, c.strides, c.padding, data_format=c.data_format,
                                  dilations=c.dilations, bias=c.bias, **kwargs)
    ref = assert_conv_close(got, c.x, c.filters, c.strides_pair, c.pad, c.data_format, c.dilations_pair,
                            bias=c.bias)
    shape = dwconv.output_shape(c.x.shape, c.filters.shape, c.strides, c.padding,
                                data_format=c.data_format, dilations=c.dilations)
    assert tuple(shape) == ref.shape


# ---------------------------------------------------------------------------
# channel / width tails (SIMD remainder loops)


CHANNEL_COUNTS = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129]


@pytest.mark.parametrize("C", CHANNEL_COUNTS)
@pytest.mark.parametrize("M", [1, 2])
@pytest.mark.parametrize("data_format", FORMATS)
def test_channel_counts(C, M, data_format):
    run_channel_case(C, M, data_format)


def run_channel_case(C, M, data_format, **kwargs):
    rng = np.random.default_rng(C * 10 + M)
    for dtype in DTYPES:
        x = make_x(rng, 2, 6, 5, C, data_format, dtype)
        w = rng.standard_normal((3, 3, C, M)).astype(dtype)
        b = rng.standard_normal(C * M).astype(dtype)
        got = dwconv.depthwise_conv2d(x, w, 1, "SAME", data_format=data_format, bias=b, **kwargs)
        pad = resolve_padding("SAME", (6, 5), (3, 3), 1, 1)
        assert_conv_close(got, x, w, (1, 1), pad, data_format, (1, 1), bias=b)


WIDTHS = list(range(1, 20)) + [31, 32, 33, 64, 65]


@pytest.mark.parametrize("W", WIDTHS)
@pytest.mark.parametrize("data_format", FORMATS)
def test_widths(W, data_format):
    run_width_case(W, data_format)


def run_width_case(W, data_format, **kwargs):
    rng = np.random.default_rng(W)
    for dtype, s in itertools.product(DTYPES, (1, 2)):
        x = make_x(rng, 1, 4, W, 3, data_format, dtype)
        w = rng.standard_normal((3, 3, 3, 2)).astype(dtype)
        got = dwconv.depthwise_conv2d(x, w, s, "SAME", data_format=data_format, **kwargs)
        pad = resolve_padding("SAME", (4, W), (3, 3), s, 1)
        assert_conv_close(got, x, w, (s, s), pad, data_format, (1, 1))
        got = dwconv.depthwise_conv2d(x, w, s, 1, data_format=data_format, **kwargs)
        assert_conv_close(got, x, w, (s, s), ((1, 1), (1, 1)), data_format, (1, 1))
        got = dwconv.depthwise_conv2d(x, w, s, "SAME", data_format=data_format, dilations=(1, 2),
                                      **kwargs)
        pad = resolve_padding("SAME", (4, W), (3, 3), s, (1, 2))
        assert_conv_close(got, x, w, (s, s), pad, data_format, (1, 2))


# NCHW outputs up to 128 columns wide with 16 channels or more take a packed path (blocks of
# channels, bands of rows), and so do narrower ones than 16 with fewer channels; the others the path
# along rows: every stride and dilation on both sides of those limits (140 columns: 70 at stride 2),
# with a channel block and its remainder, multipliers, and rows enough for several bands.
PLANES = [(9, 300, 1), (64, 300, 2), (140, 70, 2), (9, 5, 1), (40, 7, 2)]  # (W, C, M)


@pytest.mark.parametrize("W, C, M", PLANES)
@pytest.mark.parametrize("strides", STRIDES)
@pytest.mark.parametrize("dilations", DILATIONS)
def test_nchw_plane_widths(W, C, M, strides, dilations):
    rng = np.random.default_rng(W)
    sp, dp = normalize_pair(strides), normalize_pair(dilations)
    x = make_x(rng, 2, 40, W, C, "NCHW", np.float32)
    w = rng.standard_normal((3, 3, C, M)).astype(np.float32)
    bias = rng.standard_normal(C * M).astype(np.float32)
    got = dwconv.depthwise_conv2d(x, w, strides, "SAME", data_format="NCHW", dilations=dilations, bias=bias)
    pad = resolve_padding("SAME", (40, W), (3, 3), sp, dp)
    assert_conv_close(got, x, w, sp, pad, "NCHW", dp, bias=bias)


# ---------------------------------------------------------------------------
# odd sizes


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hw, padding", [
    ((1, 6), 1),
    ((6, 1), 1),
    ((1, 1), 1),
    ((1, 6), "SAME"),
    ((6, 1), "SAME"),
    ((1, 1), "SAME"),
    ((1, 5), ((1, 1), (0, 0))),
    ((1, 1), ((2, 0), (0, 2))),
])
def test_thin_inputs(hw, padding, dtype, data_format):
    rng = np.random.default_rng(3)
    H, W = hw
    x = make_x(rng, 2, H, W, 3, data_format, dtype)
    w = rng.standard_normal((3, 3, 3, 2)).astype(dtype)
    got = dwconv.depthwise_conv2d(x, w, 1, padding, data_format=data_format)
    pad = resolve_padding(padding, hw, (3, 3), 1, 1)
    assert_conv_close(got, x, w, (1, 1), pad, data_format, (1, 1))


@pytest.mark.parametrize("data_format", FORMATS)
def test_one_by_one_kernel_and_input(data_format):
    x = np.full((1, 1, 1, 1), 3.0)
    w = np.full((1, 1, 1, 2), 0.5)
    got = dwconv.depthwise_conv2d(x, w, data_format=data_format)
    expected = np.array([1.5, 1.5]).reshape((1, 1, 1, 2) if data_format == "NHWC" else (1, 2, 1, 1))
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_single_channel(data_format, dtype):
    rng = np.random.default_rng(4)
    x = make_x(rng, 3, 9, 11, 1, data_format, dtype)
    for M in (1, 3):
        w = rng.standard_normal((3, 2, 1, M)).astype(dtype)
        got = dwconv.depthwise_conv2d(x, w, (2, 1), ((1, 0), (0, 1)), data_format=data_format,
                                      dilations=(1, 2))
        assert_conv_close(got, x, w, (2, 1), ((1, 0), (0, 1)), data_format, (1, 2))


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding", ["VALID", "SAME", 2])
def test_empty_batch(data_format, dtype, padding):
    x = np.zeros((0, 8, 7, 3) if data_format == "NHWC" else (0, 3, 8, 7), dtype=dtype)
    w = np.ones((3, 3, 3, 2), dtype=dtype)
    got = dwconv.depthwise_conv2d(x, w, 2, padding, data_format=data_format)
    pad = resolve_padding(padding, (8, 7), (3, 3), 2, 1)
    ref = conv2d_forward(x, w, (2, 2), pad, data_format, (1, 1))
    assert ref.shape[0] == 0 and ref.size == 0
    assert got.shape == ref.shape
    assert got.dtype == dtype
    assert tuple(dwconv.output_shape(x.shape, w.shape, 2, padding, data_format=data_format)) \
        == ref.shape
    out = np.empty(ref.shape, dtype=dtype)
    assert dwconv.depthwise_conv2d(x, w, 2, padding, data_format=data_format, out=out) is out


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("H, W, k, s, padding", [
    (10, 11, 3, 3, "VALID"),     # 7 % 3, 8 % 3 != 0
    (10, 11, 3, 3, "SAME"),
    (9, 13, 2, 4, "VALID"),
    (9, 13, 4, 4, 1),
    (7, 7, 3, (2, 3), ((0, 1), (1, 0))),
    (5, 8, 5, 2, "VALID"),       # exact fit in H -> one output row
    (5, 5, 5, 3, "VALID"),       # exact fit -> 1x1
])
def test_sizes_not_divisible_by_stride(data_format, H, W, k, s, padding):
    rng = np.random.default_rng(5)
    for dtype in DTYPES:
        x = make_x(rng, 2, H, W, 3, data_format, dtype)
        w = rng.standard_normal((k, k, 3, 2)).astype(dtype)
        got = dwconv.depthwise_conv2d(x, w, s, padding, data_format=data_format)
        sp = normalize_pair(s)
        pad = resolve_padding(padding, (H, W), (k, k), sp, 1)
        assert_conv_close(got, x, w, sp, pad, data_format, (1, 1))


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("H, W, k, d, padding", [
    (4, 8, 5, 1, "VALID"),       # kernel taller than input
    (8, 4, 5, 1, "VALID"),       # kernel wider than input
    (4, 4, 3, 2, "VALID"),       # dilated kernel (5) larger than input
    (4, 9, 3, (1, 5), "VALID"),  # dilated only along W: 11 > 9
    (4, 4, 7, 1, 1),             # 4 + 2 < 7
    (4, 4, 3, 3, ((1, 1), (0, 0))),
])
def test_kernel_larger_than_padded_input_raises(data_format, H, W, k, d, padding):
    x = np.ones((1, H, W, 2) if data_format == "NHWC" else (1, 2, H, W))
    w = np.ones((k, k, 2, 1))
    with pytest.raises(ValueError):
        dwconv.depthwise_conv2d(x, w, 1, padding, data_format=data_format, dilations=d)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("strides, dilations", [(1, 1), (2, 1), (1, 2), ((3, 2), (2, 3))])
@pytest.mark.parametrize("with_bias", [False, True])
def test_padding_wider_than_kernel(data_format, dtype, strides, dilations, with_bias):
    # border outputs that see no input pixel at all must be exactly the bias
    # (or 0), and must be written even into a NaN-filled `out`
    rng = np.random.default_rng(24)
    x = make_x(rng, 2, 4, 5, 3, data_format, dtype)
    w = rng.standard_normal((3, 2, 3, 2)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype) if with_bias else None
    padding = ((6, 5), (7, 4))
    sp, dp = normalize_pair(strides), normalize_pair(dilations)
    shape = tuple(dwconv.output_shape(x.shape, w.shape, strides, padding,
                                      data_format=data_format, dilations=dilations))
    out = np.full(shape, np.nan, dtype=dtype)
    got = dwconv.depthwise_conv2d(x, w, strides, padding, data_format=data_format,
                                  dilations=dilations, bias=b, out=out)
    assert got is out
    ref = assert_conv_close(got, x, w, sp, padding, data_format, dp, bias=b)
    # the reference itself: the first output row lies wholly in the top padding
    row0 = ref[:, 0] if data_format == "NHWC" else ref[:, :, 0]
    want = np.zeros_like(row0) + (0 if b is None else
                                  (b if data_format == "NHWC" else b[:, None]))
    np.testing.assert_array_equal(row0, want)
    np.testing.assert_array_equal(got[:, 0] if data_format == "NHWC" else got[:, :, 0],
                                  want.astype(dtype))


@pytest.mark.parametrize("data_format", FORMATS)
def test_kernel_larger_than_input_but_padding_fits(data_format):
    rng = np.random.default_rng(6)
    x = make_x(rng, 1, 3, 2, 2, data_format)
    w = rng.standard_normal((5, 5, 2, 1))
    for padding in ("SAME", 2, ((1, 1), (3, 0))):
        got = dwconv.depthwise_conv2d(x, w, 1, padding, data_format=data_format)
        pad = resolve_padding(padding, (3, 2), (5, 5), 1, 1)
        assert_conv_close(got, x, w, (1, 1), pad, data_format, (1, 1))


# ---------------------------------------------------------------------------
# TensorFlow's and ivy's documented examples, in other layouts and dtypes (the examples themselves
# run in tests/test_compat.py)


def test_tensorflow_examples_nchw():
    x = TF_X.transpose(0, 3, 1, 2)
    got = dwconv.depthwise_conv2d(x, TF_KERNEL, strides=[1, 1, 1, 1],
                                  padding=[[0, 0], [0, 0], [1, 0], [1, 0]], data_format="NCHW")
    np.testing.assert_array_equal(got, TF_EXPLICIT_Y.transpose(0, 3, 1, 2))
    got = dwconv.depthwise_conv2d(x, TF_KERNEL, 1, "VALID", data_format="NCHW")
    np.testing.assert_array_equal(got, TF_VALID_Y.transpose(0, 3, 1, 2))


def test_tensorflow_definition_channel_order():
    # output[b, i, j, k * M + q] uses filter[..., k, q] and input channel k
    x = np.zeros((1, 1, 1, 3))
    x[..., :] = [1., 10., 100.]
    w = np.zeros((1, 1, 3, 2))
    w[0, 0] = [[1., 2.], [3., 4.], [5., 6.]]
    got = dwconv.depthwise_conv2d(x, w)
    np.testing.assert_array_equal(got.ravel(), [1., 2., 30., 40., 500., 600.])


# (float64 with 3-D filters is the example itself)
@pytest.mark.parametrize("dtype, four_d", [(np.float32, False), (np.float32, True), (np.float64, True)])
def test_ivy_dilated_laplacian(dtype, four_d):
    x = IVY_X.astype(dtype)
    a, b = IVY_A.astype(dtype), IVY_B.astype(dtype)
    if four_d:
        a, b = a[..., None], b[..., None]
    ya = dwconv.depthwise_conv2d(x, a, 1, "VALID", dilations=2)
    yb = dwconv.depthwise_conv2d(x, b, 1, "VALID", dilations=2)
    assert ya.shape == yb.shape == (1, 2, 2, 1)
    assert ya.dtype == yb.dtype == dtype
    np.testing.assert_array_equal(ya, IVY_LAPLACE.astype(dtype))
    tol = 1e-15 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(yb, np.array([[[[1 / 3], [0.]], [[0.], [1 / 3]]]]),
                               rtol=tol, atol=tol)
    # same numbers from the reference
    np.testing.assert_array_equal(
        conv2d_forward(x, a, (1, 1), ((0, 0), (0, 0)), "NHWC", (2, 2)).ravel(), [-6, 0, 0, -6])
    assert_conv_close(yb, x, b, (1, 1), ((0, 0), (0, 0)), "NHWC", (2, 2))


# ---------------------------------------------------------------------------
# argument spellings


@pytest.mark.parametrize("data_format, canonical", [
    ("nhwc", "NHWC"), ("Nchw", "NCHW"), ("channels_last", "NHWC"),
    ("CHANNELS_FIRST", "NCHW"), ("channels_first", "NCHW"),
])
def test_data_format_aliases(data_format, canonical):
    rng = np.random.default_rng(12)
    x = make_x(rng, 2, 6, 5, 3, canonical)
    w = rng.standard_normal((3, 3, 3, 2))
    got = dwconv.depthwise_conv2d(x, w, 1, "SAME", data_format=data_format)
    pad = resolve_padding("SAME", (6, 5), (3, 3), 1, 1)
    assert_conv_close(got, x, w, (1, 1), pad, canonical, (1, 1))
    assert tuple(dwconv.output_shape(x.shape, w.shape, 1, "SAME", data_format=data_format)) \
        == got.shape


@pytest.mark.parametrize("data_format", FORMATS)
def test_equivalent_spellings_agree_with_reference(data_format):
    rng = np.random.default_rng(13)
    x = make_x(rng, 2, 9, 10, 3, data_format)
    w = rng.standard_normal((3, 2, 3, 2))
    ref_pad = ((1, 1), (2, 2))
    pads = [(1, 2), [1, 2], ((1, 1), (2, 2)), [[1, 1], [2, 2]],
            tf4_padding(data_format, (1, 1), (2, 2))]
    strides = [(2, 1), [2, 1], api_pair((2, 1), 3, data_format)]
    dils = [(1, 2), api_pair((1, 2), 3, data_format)]
    for p, s, d in itertools.product(pads, strides, dils):
        got = dwconv.depthwise_conv2d(x, w, s, p, data_format=data_format, dilations=d)
        assert_conv_close(got, x, w, (2, 1), ref_pad, data_format, (1, 2))


def test_numpy_integer_scalars_accepted():
    rng = np.random.default_rng(14)
    x = rng.standard_normal((1, 9, 9, 2))
    w = rng.standard_normal((3, 3, 2, 1))
    got = dwconv.depthwise_conv2d(x, w, np.int64(2), np.int32(1), dilations=np.int64(2))
    assert_conv_close(got, x, w, (2, 2), ((1, 1), (1, 1)), "NHWC", (2, 2))


@pytest.mark.parametrize("data_format", FORMATS)
def test_three_dim_filters_equal_m1(data_format):
    rng = np.random.default_rng(15)
    x = make_x(rng, 2, 7, 6, 4, data_format)
    w = rng.standard_normal((3, 3, 4))
    got3 = dwconv.depthwise_conv2d(x, w, 2, "SAME", data_format=data_format)
    got4 = dwconv.depthwise_conv2d(x, w[..., None], 2, "SAME", data_format=data_format)
    np.testing.assert_array_equal(got3, got4)
    pad = resolve_padding("SAME", (7, 6), (3, 3), 2, 1)
    assert_conv_close(got3, x, w, (2, 2), pad, data_format, (1, 1))
    assert tuple(dwconv.output_shape(x.shape, w.shape, 2, "SAME", data_format=data_format)) \
        == got3.shape


# ---------------------------------------------------------------------------
# awkward inputs (after the array generator of Bottleneck's test suite)


@pytest.mark.parametrize("which", ["x", "filters", "bias", "all"])
@pytest.mark.parametrize("kind", AWKWARD)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("data_format", FORMATS)
def test_awkward_inputs(which, kind, dtype, data_format):
    if which == "bias" and kind in ("strided_view", "negative_strides"):
        pytest.skip("1-d bias has no second axis")
    rng = np.random.default_rng(16)
    x = make_x(rng, 2, 7, 8, 3, data_format, dtype)
    w = rng.standard_normal((3, 2, 3, 2)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    args = {"x": x, "filters": w, "bias": b}
    for name in args:
        if which in (name, "all"):
            if name == "bias" and kind in ("strided_view", "negative_strides"):
                continue
            args[name] = awkward(args[name], kind)
    snaps = {k: snapshot(v) for k, v in args.items()}
    flags = {k: (v.flags.writeable, v.strides) for k, v in args.items()
             if isinstance(v, np.ndarray)}

    got = dwconv.depthwise_conv2d(args["x"], args["filters"], (2, 1), ((1, 0), (1, 1)),
                                  data_format=data_format, dilations=(1, 2),
                                  bias=args["bias"])

    for k, v in args.items():
        assert unchanged(v, snaps[k]), f"`{k}` was modified"
        if isinstance(v, np.ndarray):
            assert (v.flags.writeable, v.strides) == flags[k]
    out_dtype = expected_dtype(args["x"], args["filters"])
    assert_conv_close(got, x, w, (2, 1), ((1, 0), (1, 1)), data_format, (1, 2),
                      bias=b, out_dtype=out_dtype)


# ---------------------------------------------------------------------------
# out= and bias=


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_bias", [False, True])
def test_out_argument(data_format, dtype, with_bias):
    rng = np.random.default_rng(18)
    x = make_x(rng, 2, 9, 8, 3, data_format, dtype)
    w = rng.standard_normal((3, 3, 3, 2)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype) if with_bias else None
    shape = tuple(dwconv.output_shape(x.shape, w.shape, 2, "SAME", data_format=data_format))
    out = np.full(shape, np.nan, dtype=dtype)          # garbage must be overwritten
    res = dwconv.depthwise_conv2d(x, w, 2, "SAME", data_format=data_format, bias=b, out=out)
    assert res is out
    pad = resolve_padding("SAME", (9, 8), (3, 3), 2, 1)
    assert_conv_close(out, x, w, (2, 2), pad, data_format, (1, 1), bias=b)
    # calling again into the same buffer gives the same (not accumulated) result
    first = out.copy()
    res2 = dwconv.depthwise_conv2d(x, w, 2, "SAME", data_format=data_format, bias=b, out=out)
    assert res2 is out
    np.testing.assert_array_equal(out, first)
    # and matches the freshly allocated result bitwise
    np.testing.assert_array_equal(
        dwconv.depthwise_conv2d(x, w, 2, "SAME", data_format=data_format, bias=b), first)


def test_out_argument_mixed_dtypes_is_float64():
    rng = np.random.default_rng(19)
    x = rng.standard_normal((1, 5, 5, 2)).astype(np.float32)
    w = rng.standard_normal((3, 3, 2, 1))
    out = np.zeros((1, 3, 3, 2))
    assert dwconv.depthwise_conv2d(x, w, out=out) is out
    assert_conv_close(out, x, w, (1, 1), ((0, 0), (0, 0)), "NHWC", (1, 1))


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_bias(data_format, dtype):
    rng = np.random.default_rng(20)
    x = make_x(rng, 2, 6, 7, 4, data_format, dtype)
    w = rng.standard_normal((2, 3, 4, 3)).astype(dtype)
    b = (10 * rng.standard_normal(12)).astype(dtype)
    got = dwconv.depthwise_conv2d(x, w, 1, ((1, 0), (2, 1)), data_format=data_format, bias=b)
    assert_conv_close(got, x, w, (1, 1), ((1, 0), (2, 1)), data_format, (1, 1), bias=b)
    # bias as a list
    got_l = dwconv.depthwise_conv2d(x, w, 1, ((1, 0), (2, 1)), data_format=data_format,
                                    bias=b.tolist())
    # a list has no dtype of its own: the output dtype is decided by x and filters
    assert_conv_close(got_l, x, w, (1, 1), ((1, 0), (2, 1)), data_format, (1, 1), bias=b)


@pytest.mark.parametrize("xd, wd", [(np.float32, np.float64), (np.float64, np.float32)])
@pytest.mark.parametrize("data_format", FORMATS)
def test_mixed_precision_gives_float64(xd, wd, data_format):
    rng = np.random.default_rng(21)
    x = make_x(rng, 2, 8, 9, 3, data_format, xd)
    w = rng.standard_normal((5, 5, 3, 2)).astype(wd)
    got = dwconv.depthwise_conv2d(x, w, 1, "SAME", data_format=data_format)
    assert got.dtype == np.float64
    pad = resolve_padding("SAME", (8, 9), (5, 5), 1, 1)
    # computed in float64 on the exact float32 values: float64 tolerance applies
    assert_conv_close(got, x, w, (1, 1), pad, data_format, (1, 1), out_dtype=np.float64)


@pytest.mark.parametrize("data_format", FORMATS)
def test_nonfinite_values_propagate_locally(data_format):
    rng = np.random.default_rng(22)
    x = rng.standard_normal((1, 9, 9, 2))
    x[0, 4, 4, 0] = np.nan
    x[0, 0, 8, 1] = np.inf
    w = rng.uniform(0.5, 1.5, (3, 3, 2, 2))
    xf = to_format(x, data_format)
    got = dwconv.depthwise_conv2d(xf, w, 1, "SAME", data_format=data_format)
    with np.errstate(invalid="ignore"):
        ref = conv2d_forward(xf, w, (1, 1), ((1, 1), (1, 1)), data_format, (1, 1))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(ref))
    finite = np.isfinite(ref)
    assert finite.sum() > 0.8 * ref.size
    np.testing.assert_allclose(got[finite], ref[finite], rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# every instruction-set level the CPU runs (the isa_level fixture of conftest.py).  The tests above
# run at the level chosen at import; this re-runs a slice of them at each level.


ISA_SWEEP_SLICE = SWEEP[::7]       # still meets every value of every axis


@pytest.mark.skipif(len(dwconv.supported_isas()) < 2, reason="the CPU runs one instruction-set level")
def test_isa_level_fixture_goes_back_to_the_level_before(pytester):
    # not to the best level: a suite run under DWCONV_ISA must stay at the level it asked for
    pytester.makeconftest(pathlib.Path(__file__).with_name("conftest.py").read_text())
    pytester.makepyfile("""
        import dwconv

        def test_at_each_level(isa_level):
            assert dwconv._kernels.active_isa() == isa_level
    """)
    before = dwconv._kernels.active_isa()
    dwconv.use_isa("baseline")
    try:
        pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=len(dwconv.supported_isas()))
        assert dwconv._kernels.active_isa() == "baseline"
    finally:
        dwconv.use_isa(before)


def test_isa_levels(isa_level):
    # one thread: the level is what is under test here, and thread-count
    # independence has its own tests below
    for case in ISA_SWEEP_SLICE:
        run_sweep_case(case, num_threads=1)
    for fmt in FORMATS:
        for C in CHANNEL_COUNTS:
            run_channel_case(C, 1 + C % 2, fmt, num_threads=1)
        for W in WIDTHS:
            run_width_case(W, fmt, num_threads=1)


# The forward's ring paths on every level: the dense tile of each square kernel up to 7x7 at
# strides 1 and 2 and the general tile past them (NHWC, read in place (rows of at least 5 output
# pixels per edge pixel: kernels up to 3x3, and at stride 2 any, as in the first two cases) or from
# full ring rows, and
# NCHW planes of 16 channels or more, which are packed into the same pixels), vectors along wide NCHW planes
# (several output rows per call, the last call of a band overlapping, and planes of fewer rows),
# the flat stream of a few channels; rows
# of several tiles with an overlapping last one, lanes with an overlapping last vector; results
# stored plainly and with streaming stores (forced on for these small results).
RING_CASES = [  # (data_format, H, W, C, M)
    ("NHWC", 9, 29, 19, 1),
    ("NHWC", 7, 35, 19, 1),
    ("NHWC", 6, 11, 5, 2),
    ("NCHW", 7, 23, 19, 1),
    ("NCHW", 5, 140, 19, 1),
    ("NCHW", 5, 70, 2, 2),
    ("NHWC", 5, 40, 3, 1),
    ("NHWC", 5, 64, 3, 1),  # RGB and RGBA taken apart into planes; rows of whole cache lines stream
    ("NHWC", 6, 48, 4, 1),
    ("NCHW", 8, 16, 19, 2),  # packed planes of whole cache lines: their results stream when forced
    ("NHWC", 6, 30, 32, 1),  # pixels of whole lines: where a vector is half a line, 3x3 tiles of
    ("NHWC", 5, 9, 16, 2),   # line pairs (row_tile_lines) when streaming, the last overlapping
]


@pytest.mark.parametrize("streaming", [False, True], ids=["plain", "streaming"])
@pytest.mark.parametrize("data_format, H, W, C, M", RING_CASES)
def test_ring_paths(isa_level, data_format, H, W, C, M, streaming):
    rng = np.random.default_rng(H * W + C)
    x = make_x(rng, 2, H, W, C, data_format, np.float32)
    before = dwconv._kernels.set_streaming_bytes(0 if streaming else 1 << 60)
    try:
        for k, s in itertools.product(range(1, 9), (1, 2)):
            w = rng.standard_normal((k, k, C, M)).astype(np.float32)
            b = rng.standard_normal(C * M).astype(np.float32)
            out = cache_line_empty(dwconv.output_shape(x.shape, w.shape, s, "SAME", data_format=data_format),
                                   np.float32)
            got = dwconv.depthwise_conv2d(x, w, s, "SAME", data_format=data_format, bias=b, num_threads=1, out=out)
            pad = resolve_padding("SAME", (H, W), (k, k), (s, s), (1, 1))
            assert_conv_close(got, x, w, (s, s), pad, data_format, (1, 1), bias=b)
    finally:
        dwconv._kernels.set_streaming_bytes(before)


# NHWC rows read in place with zeros padding (rows of 5 output pixels per edge pixel or more)
# compute their edge pixels (those with a tap outside the image) in place too, over the taps
# inside: a column of them down the rows whose kernel rows all fall inside the image (each band of
# rows its own, at 2 threads), and pixel by pixel on the first and last rows; channels in tiles of
# 4 vectors, single vectors with an overlapping last one, and fewer than a vector; rows whose edge
# pixels have no tap inside at all (padding wider than the kernel's reach: pixel by pixel
# throughout), one-sided and asymmetric padding, dilation, stride 2 with 3x3 and 5x5 kernels.
# Inputs too large for the cache ask for each next row a piece at a time, the row's pixels run in as
# many pieces (forced on for these small inputs: up to 5 pieces a row). (Rows of many channels read
# in place at every level here: where a vector is half a cache line they would take the ring.)
EDGE_PADDINGS = ["SAME", ((1, 1), (2, 0)), ((0, 2), (0, 2)), ((2, 1), (4, 3))]


@pytest.mark.parametrize("streaming, prefetching", [(False, False), (True, False), (False, True)],
                         ids=["plain", "streaming", "prefetching"])
@pytest.mark.parametrize("W, C", [(10, 69), (11, 16), (15, 7), (30, 40), (43, 69)])
def test_in_place_edge_pixels(isa_level, W, C, streaming, prefetching):
    rng = np.random.default_rng(W * C)
    x = make_x(rng, 2, 6, W, C, "NHWC", np.float32)
    before = dwconv._kernels.set_streaming_bytes(0 if streaming else 1 << 60)
    prefetch_before = dwconv._kernels.set_prefetch_bytes(0 if prefetching else 1 << 60)
    ring_before = dwconv._kernels.set_half_line_ring_channels(1 << 30)
    try:
        for (k, s, dil), padding in itertools.product([(3, 1, 1), (3, 1, 2), (3, 2, 1), (5, 2, 1)], EDGE_PADDINGS):
            w = rng.standard_normal((k, k, C, 1)).astype(np.float32)
            b = rng.standard_normal(C).astype(np.float32)
            out = cache_line_empty(dwconv.output_shape(x.shape, w.shape, s, padding, dilations=dil), np.float32)
            got = dwconv.depthwise_conv2d(x, w, s, padding, dilations=dil, bias=b, num_threads=1 + s % 2, out=out)
            pad = resolve_padding(padding, (6, W), (k, k), (s, s), (dil, dil))
            assert_conv_close(got, x, w, (s, s), pad, "NHWC", (dil, dil), bias=b)
    finally:
        dwconv._kernels.set_streaming_bytes(before)
        dwconv._kernels.set_prefetch_bytes(prefetch_before)
        dwconv._kernels.set_half_line_ring_channels(ring_before)


# NHWC rows of a vector of channels or more run the channel path: a row's pixels in tiles as equal as
# the registers allow (up to 14 pixels at AVX-512, 8 at AVX2), none overlapping another, each over
# every vector of channels (the last overlapping the one before). Rows of one tile, of one and a
# pixel, of two tiles and three, at strides 1 and 2, 3x3 to 7x7 kernels, against the reference.
@pytest.mark.parametrize("k", [3, 5, 7])
def test_channel_path_tiles(isa_level, k):
    rng = np.random.default_rng(k)
    for W, s in itertools.product([8, 9, 13, 14, 15, 16, 27, 28, 29, 43, 56], (1, 2)):
        x = make_x(rng, 1, k + 2, W, 33, "NHWC", np.float32)
        w = rng.standard_normal((k, k, 33, 1)).astype(np.float32)
        b = rng.standard_normal(33).astype(np.float32)
        got = dwconv.depthwise_conv2d(x, w, s, "SAME", bias=b, num_threads=1)
        pad = resolve_padding("SAME", (k + 2, W), (k, k), (s, s), (1, 1))
        assert_conv_close(got, x, w, (s, s), pad, "NHWC", (1, 1), bias=b)


# Rows whose edge pixels are more than a fifth of them (7 output pixels, 2 at the edges) are read
# in place in batches of 8 images or more, copied whole into the ring in fewer: the forward and
# the input gradient (which runs through it) of both against the reference.
@pytest.mark.parametrize("n_images", [2, 8])
def test_in_place_rows_of_batches(isa_level, n_images):
    rng = np.random.default_rng(n_images)
    x = make_x(rng, n_images, 7, 7, 33, "NHWC", np.float32)
    for padding in ("SAME", ((1, 1), (2, 0))):
        w = rng.standard_normal((3, 3, 33, 1)).astype(np.float32)
        b = rng.standard_normal(33).astype(np.float32)
        got = dwconv.depthwise_conv2d(x, w, 1, padding, bias=b, num_threads=2)
        pad = resolve_padding(padding, (7, 7), (3, 3), (1, 1), (1, 1))
        assert_conv_close(got, x, w, (1, 1), pad, "NHWC", (1, 1), bias=b)
        dy = rng.standard_normal(got.shape).astype(np.float32)
        dx = dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, 1, padding, num_threads=2)
        ref = reference_gradients(x, w, dy, (1, 1), pad, "NHWC", (1, 1))
        assert_close(dx, *ref["input"], np.float32, 9, "input gradient")


# Ring pixels a multiple of 2 KB (512 float32 channels, 256 float64, or as many lanes of C*M)
# take a cache line more in the rings (ring_pixel), and NHWC rows of such pixels go through the
# ring rather than in place: the rows copied whole or (other padding modes) their padding columns
# mirrored, at strides 1 and 2, channel multipliers, packed NCHW planes (blocks of 128 channels,
# M 4); the filter gradient's rings of x (3x3 too, not read in place), and dx from a forward pass
# over dy.
PADDED_PIXEL_CASES = [("NHWC", 512, 1, np.float32), ("NHWC", 256, 1, np.float64), ("NHWC", 256, 2, np.float32),
                      ("NCHW", 128, 4, np.float32)]


@pytest.mark.parametrize("data_format, C, M, dtype", PADDED_PIXEL_CASES)
def test_padded_ring_pixels(isa_level, data_format, C, M, dtype):
    rng = np.random.default_rng(C * M)
    x = make_x(rng, 2, 5, 7, C, data_format, dtype)
    for k, s, mode in [(3, 1, "zeros"), (5, 1, "zeros"), (3, 2, "zeros"), (3, 1, "reflect"), (5, 2, "circular")]:
        w = rng.standard_normal((k, k, C, M)).astype(dtype)
        b = rng.standard_normal(C * M).astype(dtype)
        got = dwconv.depthwise_conv2d(x, w, s, "SAME", data_format=data_format, bias=b, padding_mode=mode,
                                      num_threads=2)
        pad = resolve_padding("SAME", (5, 7), (k, k), (s, s), (1, 1))
        ref, scale = reference_forward(x, w, (s, s), pad, data_format, (1, 1), bias=b, mode=mode)
        assert_close(got, ref, scale, dtype, k * k, f"{k}x{k} stride {s} {mode}")
    if data_format == "NCHW" or M > 1:
        return
    x = make_x(rng, 2, 64, 3, C, data_format, dtype)  # (rows enough for items of every channel)
    for k in (3, 5):
        w = rng.standard_normal((k, k, C, 1)).astype(dtype)
        dy = rng.standard_normal(x.shape).astype(dtype)
        got = dwconv.depthwise_conv2d_grad(x, w, dy, 1, "SAME", num_threads=2)
        ref = reference_gradients(x, w, dy, (1, 1), resolve_padding("SAME", (64, 3), (k, k), (1, 1), (1, 1)),
                                  "NHWC", (1, 1))
        for name, value in zip(("input", "filters", "bias"), got):
            terms = k * k if name == "input" else 2 * 64 * 3  # (dx: a pixel's taps; the others: every pixel)
            assert_close(value, *ref[name], dtype, terms, f"{k}x{k} {name} gradient", naive_sum=True)


def test_calls_seen_before_read_their_new_arrays():
    """A call whose signature (the arrays' shapes and dtypes, the other arguments) was seen before
    skips the argument checks but must read the arrays it is given now: filters in PyTorch's
    layout, a strided input, a new bias; a new dtype is a new signature. (Every error test also
    runs its invalid call after the valid one, so from a signature seen before.)"""
    rng = np.random.default_rng(7)
    for _ in range(2):
        x = rng.standard_normal((2, 3, 9, 20))[..., ::2]  # (a view: not contiguous)
        w = rng.standard_normal((6, 1, 3, 3))  # PyTorch's (C*M, 1, kh, kw), M 2
        b = rng.standard_normal(6)
        got = dwconv.depthwise_conv2d(x, w, 1, "SAME", data_format="NCHW", bias=b, filter_format="torch")
        tf_w = w.reshape(3, 2, 3, 3).transpose(2, 3, 0, 1)
        assert_conv_close(got, x, tf_w, (1, 1), ((1, 1), (1, 1)), "NCHW", (1, 1), bias=b)
    got = dwconv.depthwise_conv2d(x.astype(np.float32), w.astype(np.float32), 1, "SAME", data_format="NCHW",
                                  bias=b.astype(np.float32), filter_format="torch")
    assert_conv_close(got, x, tf_w, (1, 1), ((1, 1), (1, 1)), "NCHW", (1, 1), bias=b, out_dtype=np.float32)
    with pytest.raises(ValueError, match="`out` has shape"):
        dwconv.depthwise_conv2d(x, w, 1, "SAME", data_format="NCHW", bias=b, filter_format="torch",
                                out=np.empty((2, 6, 9, 9)))


def test_calls_seen_before_with_dtypes():
    """A result dtype given as a NumPy dtype or scalar type is part of a call's signature (so such
    calls skip the checks the second time): each spelling gives its own dtype, never the entry of
    another that compares equal to it, and an invalid one fails every time."""
    from dwconv import _args
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 6, 7, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3)).astype(np.float32)
    for _ in range(2):
        for dtype, want in [(np.float64, np.float64), (np.dtype(np.float64), np.float64), ("float64", np.float64),
                            (np.dtype("<f4"), np.float32), (np.float32, np.float32)]:
            got = dwconv.depthwise_conv2d(x, w, 1, "SAME", dtype=dtype)
            assert got.dtype == want
            assert_conv_close(got, x, w, (1, 1), ((1, 1), (1, 1)), "NHWC", (1, 1), out_dtype=got.dtype)
        assert _args._signature(np, (x, w, None), ("forward", np.float32)) is not None
        for bad in (np.floating, np.bool_, np.dtype("U3")):
            with pytest.raises(TypeError, match="`dtype` must be"):
                dwconv.depthwise_conv2d(x, w, 1, "SAME", dtype=bad)


def test_streaming_threshold_counts_the_cpus_sharing_the_cache():
    assert _cache.count_cpus("0-3,8\n") == 5
    assert _cache.count_cpus("0") == 1
    if os.path.isdir("/sys/devices/system/cpu/cpu0/cache"):  # (Linux lists the caches there)
        assert _cache.last_level_cache_bytes() <= os.cpu_count() * _cache.CACHE_PER_CPU


# NCHW planes at stride 1 with kernels of up to 9 taps, 16 channels or more (any width from 32) or
# planes narrower than 16, are read in place with their borders as lane masks: planes smaller than
# a vector and ending mid-vector, every remainder of the 4-plane tile, kernels taller or wider than
# one, dilated, asymmetric padding and rows lost to VALID padding (output rows fewer than the
# input's), multipliers, float64 (8 lanes), results streamed or not, and a wide plane of 32 channels.
# float32 3x3 kernels on planes a vector wide or more run in tiles of 4 rows: rows of whole tiles, of tiles
# and a vector, and of overlapping tiles (40, 17 and 24 pixels: 2.5, 1.06 and 1.5 float vectors at
# AVX-512, where 17 and 24 are one tile whose second vector stores its first 1 and 8 lanes),
# heights that are not a multiple of 4, padding of 2 on one side, and output rows more or fewer
# than the input's; planes more than half a vector wide in narrow tiles, each vector a row and
# the next's start (13, 14 and 9 pixels; the last band's rows past the plane computed, not stored).
FLAT_PLANES = [(1, 1, 16), (2, 3, 17), (7, 7, 18), (5, 13, 19), (16, 16, 16), (4, 9, 3), (3, 140, 32),
               (6, 40, 16), (9, 17, 16), (10, 64, 16), (5, 24, 16), (14, 14, 16), (9, 9, 16)]  # (H, W, C)
FLAT_KERNELS = [  # (kh, kw, dilations, padding)
    (3, 3, (1, 1), "SAME"),
    (3, 3, (1, 1), ((2, 0), (0, 2))),
    (3, 3, (1, 1), ((0, 2), (2, 0))),
    (3, 3, (1, 1), ((2, 2), (1, 1))),
    (3, 3, (1, 1), ((0, 0), (1, 1))),
    (3, 3, (2, 1), "SAME"),
    (1, 1, (1, 1), "VALID"),
    (3, 1, (2, 1), "SAME"),
    (3, 1, (1, 1), "VALID"),
    (1, 3, (1, 1), ((0, 0), (2, 0))),
    (2, 2, (1, 2), ((1, 0), (2, 0))),
]


def check_planes(H, W, C, streaming, stride, kernels, n_images=2):
    """NCHW planes H x W of C channels in `n_images` images against the reference: each kernel
    (kh, kw, dilations, padding) at `stride`, multipliers 1 and 2, every dtype, results streamed or
    not."""
    rng = np.random.default_rng(H * W + C)
    before = dwconv._kernels.set_streaming_bytes(0 if streaming else 1 << 60)
    try:
        for (kh, kw, dil, padding), M, dtype in itertools.product(kernels, (1, 2), DTYPES):
            pad = resolve_padding(padding, (H, W), (kh, kw), (stride, stride), dil)
            if H + sum(pad[0]) < (kh - 1) * dil[0] + 1 or W + sum(pad[1]) < (kw - 1) * dil[1] + 1:
                continue
            x = make_x(rng, n_images, H, W, C, "NCHW", dtype)
            w = rng.standard_normal((kh, kw, C, M)).astype(dtype)
            b = rng.standard_normal(C * M).astype(dtype)
            got = dwconv.depthwise_conv2d(x, w, stride, padding, data_format="NCHW", dilations=dil, bias=b,
                                          num_threads=1 + M % 2)
            assert_conv_close(got, x, w, (stride, stride), pad, "NCHW", dil, bias=b)
    finally:
        dwconv._kernels.set_streaming_bytes(before)


@pytest.mark.parametrize("streaming", [False, True], ids=["plain", "streaming"])
@pytest.mark.parametrize("H, W, C", FLAT_PLANES)
def test_flat_planes(isa_level, H, W, C, streaming):
    check_planes(H, W, C, streaming, 1, FLAT_KERNELS)


# float32 3x3 kernels at stride 2 on NCHW planes of 16 channels or more whose output is a vector wide
# and 4 rows high or more run in place in row tiles too (float64 takes the packed path): output rows
# of a vector, of whole tiles and of overlapping ones, heights not a multiple of 4, padding on one
# side or both, VALID, and planes too small for the tiles (6 rows: 3 out). At AVX-512 5x5 kernels
# too (output rows of 7/8 of their tiles' lanes or more: 32 pixels, two vectors a tile; 28, two tiles),
# and output rows of 9 to 15 pixels, a vector each (their first lanes stored; 3x3 in tiles of 7
# rows): 28x28 (14 pixels, 14 rows), 18 wide (9), 15 high (7 rows: one 3x3 tile), 30x22
# (overlapping tiles); and for 3x3 planes whose rows with their left padding fit 16 lanes, output
# rows of 5 to 8 pixels, two planes to a vector: 14x14 (7x7 out), 13x13 of 17 channels (the last
# plane alone), 10x10 (5x5), 16x16 (8x8 where the left padding is 0, else another path). Output
# planes of whole cache lines whose rows are not (18 pixels: 16x36, its bands not on lines; 24:
# 20x48, the last band overlapping the one before) stream each band of rows through a buffer.
ROW_TILE_PLANES = [(8, 32, 16), (9, 66, 16), (13, 100, 17), (16, 64, 16), (6, 40, 16), (28, 28, 16), (15, 18, 16),
                   (30, 22, 17), (16, 16, 16), (14, 56, 16), (14, 14, 16), (13, 13, 17), (10, 10, 16),
                   (16, 36, 16), (20, 48, 16)]  # (H, W, C)
ROW_TILE_PADDINGS = ["SAME", ((1, 1), (1, 1)), "VALID", ((2, 0), (0, 2)), ((0, 2), (2, 1))]


@pytest.mark.parametrize("streaming", [False, True], ids=["plain", "streaming"])
@pytest.mark.parametrize("H, W, C", ROW_TILE_PLANES)
@pytest.mark.parametrize("k", [3, 5])
def test_flat_row_tiles_at_stride_2(isa_level, k, H, W, C, streaming):
    if (H, W) in ((28, 28), (15, 18)) or (k, H, W) in ((3, 14, 14), (5, 16, 64)):
        g = dwconv._args.geometry((1, C, H, W), (k, k, C, 1), 2, "SAME", "NCHW", 1)
        assert dwconv._kernels.runs_row_tiles(g) == (isa_level == "avx512")
    paddings = ROW_TILE_PADDINGS if k == 3 else ROW_TILE_WIDE_PADDINGS[5]
    check_planes(H, W, C, streaming, 2, [(k, k, (1, 1), padding) for padding in paddings])


# float32 5x5 and 7x7 kernels at stride 1 on NCHW planes of 16 channels or more whose row tiles fill
# their lanes run in row tiles too. 5x5 (7/8 of the lanes): one vector (16 pixels at AVX-512), two
# whose second stores its first 12 lanes (28; VALID's 24, each row's last vector read at its first
# 4 lanes), whole tiles (32), tiles and a vector (48), overlapping tiles (56).
# 7x7 (6/7 of the 56-pixel tiles, 3.5 vectors at AVX-512): one tile (56 pixels; 48, a half vector
# short; VALID's 50), whole tiles (112), and a last tile of 38 pixels (150). Heights not a multiple
# of the tiles' rows (4; 7 for 5x5), one 5x5 tile high (7) and four (28), planes too low for those
# (4 and 6: another path), padding of k - 1 on one side, uneven padding, and VALID (narrower output
# rows, some of which leave the tiles).
ROW_TILE_WIDE_PLANES = {  # k: (H, W, C)
    5: [(4, 16, 16), (7, 16, 16), (9, 28, 16), (13, 56, 17), (6, 48, 16), (11, 32, 16), (28, 28, 16)],
    7: [(4, 56, 16), (9, 48, 16), (13, 112, 17), (6, 150, 16), (11, 56, 32)],
}
ROW_TILE_WIDE_PADDINGS = {
    5: ["SAME", "VALID", ((4, 0), (0, 4)), ((0, 4), (4, 0)), ((2, 2), (1, 3)), ((1, 3), (2, 2))],
    7: ["SAME", "VALID", ((6, 0), (0, 6)), ((0, 6), (6, 0)), ((3, 3), (2, 4)), ((1, 5), (4, 2))],
}


@pytest.mark.parametrize("streaming", [False, True], ids=["plain", "streaming"])
@pytest.mark.parametrize("k, H, W, C", [(k, *plane) for k, planes in ROW_TILE_WIDE_PLANES.items() for plane in planes])
def test_flat_row_tiles_5x5_and_7x7(isa_level, k, H, W, C, streaming):
    check_planes(H, W, C, streaming, 1, [(k, k, (1, 1), padding) for padding in ROW_TILE_WIDE_PADDINGS[k]])


def at_page_end(shape):
    """A float32 array of `shape` whose last byte is the last before a page that cannot be read: a
    kernel reading past the array (a whole vector past a row's end, where a mask should stop it)
    faults there, where other memory past an array reads without a sign."""
    import ctypes
    import mmap
    n = int(np.prod(shape)) * 4
    size = (n + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE + mmap.PAGESIZE
    pages = np.frombuffer(mmap.mmap(-1, size), dtype=np.uint8)
    libc = ctypes.CDLL(None)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    assert libc.mprotect(pages.ctypes.data + size - mmap.PAGESIZE, mmap.PAGESIZE, 0) == 0  # PROT_NONE
    return pages[size - mmap.PAGESIZE - n:size - mmap.PAGESIZE].view(np.float32).reshape(shape)


# Inputs that end where memory does: the row tiles' last vectors past a row (the shifted tap columns'
# at AVX-512, read at their first k - 1 lanes), the rings' and the channel path's reads, at rows of a
# vector, a lane past, a partial second vector and whole tiles, in both layouts.
@pytest.mark.skipif(not pathlib.Path("/proc/self/maps").exists(), reason="Linux's mprotect")
@pytest.mark.parametrize("data_format", FORMATS)
def test_inputs_ending_at_unreadable_memory(isa_level, data_format):
    rng = np.random.default_rng(7)
    for W, k, stride, padding in itertools.product((16, 17, 24, 28, 30, 33, 62, 64), (3, 5, 7), (1, 2),
                                                   ("SAME", "VALID")):
        shape = (1, 16, 10, W) if data_format == "NCHW" else (1, 10, W, 16)
        x = at_page_end(shape)
        x[...] = rng.standard_normal(shape)
        w = rng.standard_normal((k, k, 16, 1)).astype(np.float32)
        got = dwconv.depthwise_conv2d(x, w, stride, padding, data_format=data_format)
        pad = resolve_padding(padding, (10, W), (k, k), (stride, stride), (1, 1))
        assert_conv_close(got, x, w, (stride, stride), pad, data_format, (1, 1))


# float32 3x3 kernels at stride 1 with a pixel of zeros around NCHW planes more than half a vector wide
# run a plane at a time from top to bottom at AVX2 (flat_rolling), in strips of two vectors' columns,
# the last vector overlapping the one before: rows narrower than a vector and more than half (5, 7: their
# lanes past the row written into the next row's first pixels before it is, the block's last plane
# under a mask), of a vector (8) and a lane (9), two overlapping vectors (14, 15), two (16), two and
# one alone (17, 24), four (32), 33 (two strips and one), 56 (three strips and one); planes of whole
# cache lines whose rows are not (4x8, 8x24, 12x40: streamed through a buffer); heights 4 to 14,
# 16 to 33 channels (the first plane's first element and the last plane's last, in every item of 1 to
# 3 threads, are loaded under masks: checked by the debug build's bounds too). The input gradient at
# stride 1 is a forward pass over dy: it runs them as well; the filter and bias gradients reduce
# over them a plane at a time (flat_dot_rolling: lanes summed twice by overlapping vectors, or past
# narrow rows, cleared; planes of 8 KB or more, 45x46, asking for the next plane's lines as they go).
ROLLING_PLANES = [(14, 14, 16), (7, 7, 16), (6, 7, 17), (5, 5, 16), (4, 8, 16), (4, 9, 16), (5, 15, 17),
                  (4, 16, 16), (6, 17, 32), (5, 24, 16), (7, 32, 33), (6, 33, 16), (9, 56, 16), (8, 24, 16),
                  (12, 40, 16), (45, 46, 17)]  # (H, W, C)


@pytest.mark.parametrize("streaming", [False, True], ids=["plain", "streaming"])
@pytest.mark.parametrize("H, W, C", ROLLING_PLANES)
def test_rolling_planes(isa_level, H, W, C, streaming):
    g = dwconv._args.geometry((1, C, H, W), (3, 3, C, 1), 1, "SAME", "NCHW", 1)
    if isa_level == "avx2":
        assert dwconv._kernels.runs_row_tiles(g)
    check_planes(H, W, C, streaming, 1, [(3, 3, (1, 1), "SAME")])
    rng = np.random.default_rng(H * W + C)
    for n_images, n_threads in ((1, 1), (2, 2), (3, 3)):
        x, dy = (rng.standard_normal((n_images, C, H, W)).astype(np.float32) for _ in range(2))
        w = rng.standard_normal((3, 3, C)).astype(np.float32)
        got = dwconv.depthwise_conv2d_grad(x, w, dy, 1, "SAME", data_format="NCHW", num_threads=n_threads)
        ref = reference_gradients(x, w, dy, (1, 1), ((1, 1), (1, 1)), "NCHW", (1, 1))
        assert_close(got.input, *ref["input"], np.float32, 9, "input gradient")
        for name in ("filters", "bias"):
            assert_close(getattr(got, name), *ref[name], np.float32, n_images * H * W, f"{name} gradient")


# float32 NCHW planes of up to 64 pixels in calls of 320 planes or more (whole groups of 16
# channels; check_planes' 2 images), output planes the input's size, run in groups of a vector's
# worth of planes, a vector's lanes spanning two planes or (planes of fewer pixels than a vector)
# more: 7x7, 5x5, 6x6, 7x9 and 8x8 planes, 3x3, 4x4, 2x3 and 1x1 ones, and 7x7 planes of 160
# channels (320 planes in the 2 images); kernels whose output keeps the input's size (the others
# are flat).
GROUP_PLANES = [(7, 7, 320), (5, 5, 320), (6, 6, 336), (7, 9, 320), (8, 8, 320), (3, 3, 320), (4, 4, 320),
                (2, 3, 320), (1, 1, 320), (7, 7, 160)]  # (H, W, C)
GROUP_KERNELS = [(kh, kw, dil, padding) for kh, kw, dil, padding in FLAT_KERNELS
                 if padding == "SAME" or padding == "VALID" and kh == kw == 1
                 or padding != "VALID" and sum(padding[0]) == dil[0] * (kh - 1)
                 and sum(padding[1]) == dil[1] * (kw - 1)]


@pytest.mark.parametrize("streaming", [False, True], ids=["plain", "streaming"])
@pytest.mark.parametrize("H, W, C", GROUP_PLANES)
def test_flat_plane_groups(isa_level, H, W, C, streaming):
    check_planes(H, W, C, streaming, 1, GROUP_KERNELS)


# Plane groups run several images at a time (items of 8 images, tiles of a vector's worth): 11
# images, a whole tile or two and the images left one by one, each item's images activated; at
# AVX-512 planes of up to 256 pixels too where the taps lie within 16 elements of the pixel (15x11
# at 3x3, 8x7 at 5x5; planes of more than 64 pixels run in row tiles at the other levels), except
# 3x3 planes narrow enough to run a row to a vector (14x14 at AVX-512; 7x7 there two planes' rows
# to a vector, its 5x5 case still in groups).
@pytest.mark.parametrize("streaming", [False, True], ids=["plain", "streaming"])
@pytest.mark.parametrize("H, W", [(7, 7), (14, 14), (15, 11), (8, 7)])
def test_flat_plane_groups_of_images(isa_level, H, W, streaming):
    check_planes(H, W, 32, streaming, 1, [(3, 3, (1, 1), "SAME"), (5, 5, (1, 1), "SAME")], n_images=11)
    rng = np.random.default_rng(11)
    x = make_x(rng, 11, H, W, 32, "NCHW", np.float32)
    w = rng.standard_normal((3, 3, 32, 1)).astype(np.float32)
    got = dwconv.depthwise_conv2d(x, w, 1, "SAME", data_format="NCHW", activation="relu", num_threads=2)
    ref, scale = reference_forward(x, w, (1, 1), ((1, 1), (1, 1)), "NCHW", (1, 1), activation="relu")
    assert_close(got, ref, scale, np.float32, 9, "relu")


# ---------------------------------------------------------------------------
# threads: results must not depend on the thread count


THREAD_SHAPES = {                 # name: (N, H, W, C, M, k)
    "batch4": (4, 37, 41, 24, 2, 5),
    "wide_channels": (1, 23, 19, 130, 1, 3),
    "wide_planes": (3, 21, 70, 3, 1, 5),  # NCHW: several rows per call, bands cut by the thread count
}


def _thread_case(dtype, data_format, shape="batch4"):
    N, H, W, C, M, k = THREAD_SHAPES[shape]
    rng = np.random.default_rng(23)
    x = make_x(rng, N, H, W, C, data_format, dtype)
    w = rng.standard_normal((k, k, C, M)).astype(dtype)
    b = rng.standard_normal(C * M).astype(dtype)
    return x, w, b


@pytest.mark.parametrize("shape", list(THREAD_SHAPES))
@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("strides, padding, dilations", [
    (1, "SAME", 1), (2, "VALID", 1), ((1, 2), ((2, 1), (0, 3)), (2, 1)),
])
def test_num_threads_bitwise_identical(data_format, dtype, strides, padding, dilations, shape):
    x, w, b = _thread_case(dtype, data_format, shape)
    k = w.shape[0]
    kw = dict(data_format=data_format, dilations=dilations, bias=b)
    default = dwconv.depthwise_conv2d(x, w, strides, padding, **kw)
    results = {n: dwconv.depthwise_conv2d(x, w, strides, padding, num_threads=n, **kw)
               for n in (1, 2, 3, 8, -1)}
    for n, r in results.items():
        assert r.dtype == default.dtype
        assert np.array_equal(r, default), f"num_threads={n} differs from default"
    out = np.empty_like(default)
    assert dwconv.depthwise_conv2d(x, w, strides, padding, num_threads=2, out=out, **kw) is out
    assert np.array_equal(out, default)
    sp, dp = normalize_pair(strides), normalize_pair(dilations)
    pad = resolve_padding(padding, x.shape[1:3] if data_format == "NHWC" else x.shape[2:],
                          (k, k), sp, dp)
    assert_conv_close(default, x, w, sp, pad, data_format, dp, bias=b)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_threadpool_limits_bitwise_identical(data_format, dtype):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    x, w, b = _thread_case(dtype, data_format)
    kw = dict(data_format=data_format, bias=b)
    default = dwconv.depthwise_conv2d(x, w, 1, "SAME", **kw)
    with threadpoolctl.threadpool_limits(1):
        limited = dwconv.depthwise_conv2d(x, w, 1, "SAME", **kw)
        limited2 = dwconv.depthwise_conv2d(x, w, 1, "SAME", num_threads=2, **kw)
    assert np.array_equal(limited, default)
    assert np.array_equal(limited2, default)
    after = dwconv.depthwise_conv2d(x, w, 1, "SAME", **kw)
    assert np.array_equal(after, default)


# ---------------------------------------------------------------------------
# output_shape


OS_CASES = list(itertools.product(FORMATS, STRIDES, DILATIONS, KERNELS, PADDINGS,
                                  [(1, 1), (6, 9), (13, 14), (20, 17)]))


def test_output_shape_matches_reference():
    checked = 0
    for fmt, s, d, k, p, (H, W) in OS_CASES:
        sp, dp = normalize_pair(s), normalize_pair(d)
        pad_spec = tf4_padding(fmt, (2, 1), (0, 3)) if p == "TF4" else p
        pad = resolve_padding(pad_spec, (H, W), k, sp, dp, fmt)
        in_shape = (2, H, W, 3) if fmt == "NHWC" else (2, 3, H, W)
        effs = [(kk - 1) * dd + 1 for kk, dd in zip(k, dp)]
        if H + sum(pad[0]) < effs[0] or W + sum(pad[1]) < effs[1]:
            continue
        OH, OW = output_hw((H, W), k, sp, pad, dp)
        for M, fshape in ((2, k + (3, 2)), (1, k + (3,))):
            want = (2, OH, OW, 3 * M) if fmt == "NHWC" else (2, 3 * M, OH, OW)
            got = dwconv.output_shape(in_shape, fshape, s, pad_spec, data_format=fmt,
                                      dilations=d)
            assert isinstance(got, tuple)
            assert all(isinstance(v, int) for v in got), got
            assert got == want, (fmt, s, d, k, p, (H, W), M, got, want)
            checked += 1
    # output_hw is the very function conv2d_forward sizes its result with
    assert conv2d_forward(np.zeros((1, 9, 8, 2)), np.zeros((3, 2, 2, 2)), (2, 3),
                          ((1, 0), (0, 2)), "NHWC", (1, 2)).shape == \
        (1,) + output_hw((9, 8), (3, 2), (2, 3), ((1, 0), (0, 2)), (1, 2)) + (4,)
    assert checked > 1000


def test_output_shape_seed_examples():
    for x_shape, k, strides, padding, y_shape, _ in IVY_SEED_EXAMPLES:
        assert dwconv.output_shape(x_shape, (k, k, x_shape[-1]), strides, padding) == y_shape
    assert dwconv.output_shape((4, 10, 10, 12), (3, 3, 12, 3), 1, "VALID") == (4, 8, 8, 36)
    assert dwconv.output_shape((2, 3, 4, 7), (3, 3, 3, 2), data_format="NCHW") == (2, 6, 2, 5)
    assert dwconv.output_shape(TF_X.shape, TF_KERNEL.shape, [1, 1, 1, 1], TF_EXPLICIT_PADDING) == TF_EXPLICIT_Y.shape
    assert dwconv.output_shape(IVY_X.shape, IVY_A.shape, 1, "VALID", dilations=2) == IVY_LAPLACE.shape
    assert dwconv.output_shape((0, 8, 7, 3), (3, 3, 3, 2), 2, "SAME") == (0, 4, 4, 6)


@pytest.mark.parametrize("data_format", FORMATS)
def test_arguments_as_numpy_arrays(data_format):
    """strides, dilations and padding given as NumPy arrays (as loaded from a saved config)."""
    rng = np.random.default_rng(29)
    x = make_x(rng, 1, 9, 8, 3, data_format)
    w = rng.standard_normal((3, 3, 3, 1))
    tf4 = np.array(tf4_padding(data_format, (1, 2), (0, 1)))
    got = dwconv.depthwise_conv2d(x, w, np.array([2, 1]), tf4, data_format=data_format,
                                  dilations=np.array(1))
    assert_conv_close(got, x, w, (2, 1), ((1, 2), (0, 1)), data_format, (1, 1))
