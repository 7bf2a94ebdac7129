"""Correctness of the gradients: ``depthwise_conv2d_backprop_input``,
``depthwise_conv2d_backprop_filter`` and ``depthwise_conv2d_grad``.

Numbers are checked four independent ways:

* against the float64 NumPy reference in ``tests/reference.py`` (big sweep);
* against central finite differences of L = sum(conv(x, w) * dy);
* through the adjoint identities <conv(x, w), dy> = <x, dL/dx> = <w, dL/dw>;
* against ``torch.autograd`` when PyTorch is installed.

dwconv is compared with itself only where the contract is bitwise
reproducibility (thread counts) or the identity of ``out=``.
"""

import itertools
import math

import numpy as np
import pytest

import dwconv
from reference import (
    conv2d_forward,
    normalize_pair,
    output_hw,
    resolve_padding,
)
import checks
from checks import awkward, reference_gradients
from sweep import DILATIONS, DTYPES, FORMATS, STRIDES, SWEEP, build_case, sweep_id



# ---------------------------------------------------------------------------
# helpers


def shape_of(n, h, w, c, data_format):
    return (n, h, w, c) if data_format == "NHWC" else (n, c, h, w)


def hw_of(shape, data_format):
    return (shape[1], shape[2]) if data_format == "NHWC" else (shape[2], shape[3])


def assert_close(got, ref, scale, dtype, terms, what):
    """checks.assert_close with the allowance of naive long sums (the gradients reduce)."""
    checks.assert_close(got, ref, scale, dtype, terms, what, naive_sum=True)


def check_gradients(x, w, dy, strides, padding, data_format, dilations, *,
                    api_strides=None, api_padding=None, api_dilations=None,
                    dtype=None, num_threads=1, check_grad=True):
    """Run the three gradient entry points and compare them with the reference.

    ``strides``/``dilations`` may be any API form; ``padding`` any API form.
    The api_* overrides pass a different (equivalent) spelling to dwconv.
    num_threads="mixed" runs the two backprop functions on one thread and
    ``depthwise_conv2d_grad`` with the default thread count.  The default is one
    thread: on a busy shared machine every OpenMP wake-up of a tiny problem can
    cost a scheduler time slice; thread-independence is tested bitwise below."""
    fmt = data_format.upper() if data_format.upper() in FORMATS else (
        "NHWC" if data_format.lower() == "channels_last" else "NCHW")
    sp = normalize_pair(strides, fmt)
    dp = normalize_pair(dilations, fmt)
    kh, kw = w.shape[:2]
    pad = resolve_padding(padding, hw_of(x.shape, fmt), (kh, kw), sp, dp, fmt)
    s_api = strides if api_strides is None else api_strides
    p_api = padding if api_padding is None else api_padding
    d_api = dilations if api_dilations is None else api_dilations
    if dtype is None:
        dtype = np.result_type(x.dtype, w.dtype, dy.dtype)
    one = 1 if num_threads == "mixed" else num_threads
    many = None if num_threads == "mixed" else num_threads
    kwargs = dict(data_format=data_format, dilations=d_api, num_threads=one)

    ref = reference_gradients(x, w, dy, sp, pad, fmt, dp)
    (gi, gi_s), (gw, gw_s), (gb, gb_s) = ref["input"], ref["filters"], ref["bias"]
    N = x.shape[0]
    OH, OW = hw_of(dy.shape, fmt)
    M = w.shape[3] if w.ndim == 4 else 1
    in_terms = kh * kw * M
    red_terms = max(1, N * OH * OW)

    got_i = dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, s_api, p_api, **kwargs)
    assert_close(got_i, gi, gi_s, np.result_type(w.dtype, dy.dtype), in_terms,
                 "backprop_input")
    got_w = dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, s_api, p_api, **kwargs)
    assert_close(got_w, gw, gw_s, np.result_type(x.dtype, dy.dtype), red_terms,
                 "backprop_filter")
    if check_grad:
        g = dwconv.depthwise_conv2d_grad(x, w, dy, s_api, p_api, **dict(kwargs, num_threads=many))
        assert isinstance(g, dwconv.Gradients)
        assert g.input is g[0] and g.filters is g[1] and g.bias is g[2]
        assert_close(g.input, gi, gi_s, dtype, in_terms, "grad.input")
        assert_close(g.filters, gw, gw_s, dtype, red_terms, "grad.filters")
        assert_close(g.bias, gb, gb_s, dtype, red_terms, "grad.bias")
    return got_i, got_w


def random_case(rng, fmt, N, H, W, C, M, kh, kw, strides, padding, dilations, dtype=np.float64,
                three_d=False):
    """x, w, dy for one configuration (dy of the reference output shape)."""
    sp = normalize_pair(strides, fmt)
    dp = normalize_pair(dilations, fmt)
    pad = resolve_padding(padding, (H, W), (kh, kw), sp, dp, fmt)
    OH, OW = output_hw((H, W), (kh, kw), sp, pad, dp)
    x = rng.standard_normal(shape_of(N, H, W, C, fmt)).astype(dtype)
    w = rng.standard_normal((kh, kw, C, M)).astype(dtype)
    if three_d:
        assert M == 1
        w = np.ascontiguousarray(w[..., 0])
    dy = rng.standard_normal(shape_of(N, OH, OW, C * M, fmt)).astype(dtype)
    return x, w, dy


# ---------------------------------------------------------------------------
# the sweep: full product of (format, stride, dilation, kernel, padding);
# multiplier, dtype, sizes, 3-D filters and argument spellings cycle.



@pytest.mark.parametrize("case", SWEEP, ids=[sweep_id(c) for c in SWEEP])
def test_gradient_sweep(case):
    c = build_case(case, 5000)
    check_gradients(c.x, c.filters, c.dy, c.strides_pair, c.padding, c.data_format, c.dilations_pair,
                    api_strides=c.strides, api_dilations=c.dilations,
                    num_threads="mixed" if c.index % 6 == 0 else 1)


# ---------------------------------------------------------------------------
# odd sizes


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hw, k, padding, strides, dilations", [
    ((1, 7), (3, 3), 1, 1, 1),
    ((7, 1), (3, 3), "SAME", 1, 1),
    ((1, 1), (5, 5), "SAME", 1, 1),
    ((1, 1), (3, 3), 1, 2, 1),
    ((1, 9), (3, 3), "SAME", 2, (1, 2)),
    ((1, 1), (1, 1), "VALID", 1, 1),
    ((2, 1), (3, 2), ((1, 0), (0, 1)), 1, 1),
    ((1, 4), (2, 3), ((1, 1), (2, 2)), (1, 3), 2),
])
def test_thin_inputs(data_format, dtype, hw, k, padding, strides, dilations):
    rng = np.random.default_rng(11)
    for M in (1, 2):
        x, w, dy = random_case(rng, data_format, 2, *hw, 3, M, *k, strides, padding, dilations,
                               dtype)
        check_gradients(x, w, dy, strides, padding, data_format, dilations, num_threads="mixed")


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_single_channel(data_format, dtype):
    rng = np.random.default_rng(12)
    for M, strides, padding in [(1, 1, "SAME"), (3, 2, "VALID"), (2, (1, 2), ((2, 1), (0, 2)))]:
        x, w, dy = random_case(rng, data_format, 3, 9, 11, 1, M, 3, 3, strides, padding, 1, dtype)
        check_gradients(x, w, dy, strides, padding, data_format, 1)
    x, w, dy = random_case(rng, data_format, 1, 6, 5, 1, 1, 2, 2, 1, "SAME", 1, dtype, three_d=True)
    check_gradients(x, w, dy, 1, "SAME", data_format, 1)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding", ["VALID", "SAME", 2, ((1, 0), (0, 3))])
@pytest.mark.parametrize("M", [1, 2])
def test_empty_batch(data_format, dtype, padding, M):
    """N = 0: the input gradient is empty, the filter and bias gradients are zeros."""
    rng = np.random.default_rng(13)
    x, w, dy = random_case(rng, data_format, 0, 6, 7, 3, M, 3, 3, 2, padding, 1, dtype)
    assert x.size == 0 and dy.size == 0
    gi = dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, 2, padding, data_format=data_format)
    assert gi.shape == x.shape and gi.dtype == dtype
    gw = dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, 2, padding, data_format=data_format)
    assert gw.shape == w.shape and gw.dtype == dtype
    assert np.array_equal(gw, np.zeros(w.shape))
    g = dwconv.depthwise_conv2d_grad(x, w, dy, 2, padding, data_format=data_format)
    assert g.input.shape == x.shape and g.input.dtype == dtype
    assert g.filters.shape == w.shape and g.filters.dtype == dtype
    assert np.array_equal(g.filters, np.zeros(w.shape))
    assert g.bias.shape == (3 * M,) and g.bias.dtype == dtype
    assert np.array_equal(g.bias, np.zeros(3 * M))
    # out= is written (zeros), not left as it was
    out = np.full(w.shape, 7.0, dtype)
    assert dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, 2, padding,
                                                   data_format=data_format, out=out) is out
    assert np.array_equal(out, np.zeros(w.shape))


@pytest.mark.parametrize("data_format", FORMATS)
def test_empty_channels_and_zero_width_output(data_format):
    rng = np.random.default_rng(14)
    # C = 0: everything is empty
    x, w, dy = random_case(rng, data_format, 2, 5, 5, 0, 2, 3, 3, 1, "SAME", 1)
    g = dwconv.depthwise_conv2d_grad(x, w, dy, 1, "SAME", data_format=data_format)
    assert g.input.shape == x.shape and g.filters.shape == w.shape and g.bias.shape == (0,)
    gw = dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, 1, "SAME", data_format=data_format)
    assert gw.shape == w.shape
    gi = dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, 1, "SAME", data_format=data_format)
    assert gi.shape == x.shape


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("H, W, k, s, d, padding", [
    (10, 11, 2, 3, 1, "VALID"),
    (10, 11, 3, 3, 1, "SAME"),
    (11, 10, 4, (3, 2), 1, 1),
    (13, 9, 3, 2, 2, "SAME"),
    (8, 8, 3, 3, (2, 1), ((0, 2), (1, 1))),
    (17, 19, 5, (2, 3), 1, "VALID"),
    (9, 9, 1, 3, 1, "VALID"),                 # stride > kernel: input pixels with no gradient
    (9, 10, 2, (3, 4), 1, 1),
])
def test_sizes_not_divisible_by_stride(data_format, dtype, H, W, k, s, d, padding):
    rng = np.random.default_rng(15)
    x, w, dy = random_case(rng, data_format, 2, H, W, 3, 2, k, k, s, padding, d, dtype)
    check_gradients(x, w, dy, s, padding, data_format, d, num_threads="mixed")


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("strides, dilations", [(1, 1), (2, 1), (1, 2), ((3, 2), (2, 3))])
def test_padding_wider_than_kernel(data_format, dtype, strides, dilations):
    """Output pixels that see only padding: no filter gradient from them."""
    rng = np.random.default_rng(16)
    for k, padding in [((1, 1), 3), ((2, 3), ((4, 0), (1, 5)))]:
        x, w, dy = random_case(rng, data_format, 2, 5, 4, 3, 2, *k, strides, padding, dilations,
                               dtype)
        check_gradients(x, w, dy, strides, padding, data_format, dilations)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("H, W, k", [(1, 1, 1), (1, 1, 3), (1, 3, 3), (2, 1, 1)])
@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular", "symmetric"])
def test_padding_modes_of_one_pixel_rows(data_format, H, W, k, mode):
    """Planes of a pixel or two in padding modes that copy them: the padding's share of both
    gradients added for each channel (NCHW planes of one pixel have their channels one element
    apart, as NHWC pixels do, their output gradients a plane apart: the fuzzer's case)."""
    from reference import conv2d_backprop_filter, conv2d_backprop_input
    rng = np.random.default_rng(H * W * k)
    pad = ((1, 1), (k // 2 + 1, 1))
    for dtype in DTYPES:
        x, w, dy = random_case(rng, data_format, 2, H, W, 5, 1, k, k, 1, pad, 1, dtype, three_d=True)
        dx = dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, 1, pad, data_format=data_format, padding_mode=mode)
        ref = conv2d_backprop_input(x.shape, w, dy, (1, 1), pad, data_format, (1, 1), mode)
        assert_close(dx, ref, np.abs(ref).max(), dtype, 4 * k * k, f"dx ({mode})")
        dw = dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, 1, pad, data_format=data_format,
                                                     padding_mode=mode)
        ref = conv2d_backprop_filter(x, w.shape, dy, (1, 1), pad, data_format, (1, 1), mode)
        assert_close(dw, ref, np.abs(ref).max(), dtype, dy.size, f"dW ({mode})")


@pytest.mark.parametrize("data_format", FORMATS)
def test_kernel_larger_than_input_but_padding_fits(data_format):
    rng = np.random.default_rng(17)
    x, w, dy = random_case(rng, data_format, 2, 3, 2, 2, 2, 5, 4, 1, ((1, 2), (2, 1)), 1)
    check_gradients(x, w, dy, 1, ((1, 2), (2, 1)), data_format, 1)


CHANNEL_COUNTS = [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 129]


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_channel_counts(data_format, dtype):
    """SIMD/channel-block tails of the gradient kernels."""
    rng = np.random.default_rng(18)
    for i, C in enumerate(CHANNEL_COUNTS):
        M = 1 + i % 3
        strides, padding = [(1, "SAME"), (2, 1), ((1, 2), "VALID")][i % 3]
        x, w, dy = random_case(rng, data_format, 1 + i % 2, 5, 6, C, M, 3, 3, strides, padding, 1,
                               dtype)
        check_gradients(x, w, dy, strides, padding, data_format, 1, check_grad=i % 2 == 0)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_widths(data_format, dtype):
    """Width tails (NCHW vectorizes along W)."""
    rng = np.random.default_rng(19)
    for i, W in enumerate([1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40]):
        strides = (1, 2, 3)[i % 3]
        padding = ("SAME", 1, ((0, 2), (3, 1)))[i % 3]
        dil = 2 if (i % 3 != 1 and i % 2 == 0) else 1
        x, w, dy = random_case(rng, data_format, 1, 4, W, 2, 1 + i % 2, 3, 3, strides, padding,
                               dil, dtype)
        check_gradients(x, w, dy, strides, padding, data_format, dil, check_grad=False)


@pytest.mark.parametrize("W, C, M", [(9, 300, 1), (40, 70, 1), (64, 300, 2), (200, 70, 2)])
@pytest.mark.parametrize("strides", STRIDES)
@pytest.mark.parametrize("dilations", DILATIONS)
def test_nchw_plane_widths(W, C, M, strides, dilations):
    """NCHW outputs up to 64 columns wide take a packed path (blocks of 128 channels, bands of
    rows; for the filter gradient when M = 1), wider ones the path along rows: both sides, with a
    channel block and its remainder, and planes of one band and of several (40 columns: bands of
    12 rows)."""
    rng = np.random.default_rng(W)
    x, w, dy = random_case(rng, "NCHW", 2, 40, W, C, M, 3, 3, strides, "SAME", dilations, np.float32)
    check_gradients(x, w, dy, strides, "SAME", "NCHW", dilations, check_grad=False)


# The gradients of NCHW planes at stride 1 with one filter per channel, where the forward reads
# such planes in place (kernels of up to 9 taps; 16 channels or more, or planes narrower than 16):
# the input gradient runs as that forward over dy with the filter turned, the filter and bias
# gradients as masked dot products over the same planes (to 5x5 kernels: 9 taps a pass over each
# plane). Planes smaller than a vector and ending mid-vector, every remainder of the 4-plane tile,
# dilated and asymmetric padding, padding wider than the kernel, and the same bits for any number
# of threads.
FLAT_PLANES = [(1, 1, 16), (2, 3, 17), (7, 7, 18), (5, 13, 19), (3, 140, 32), (4, 9, 3)]  # (H, W, C)
FLAT_KERNELS = [((3, 3), (1, 1), "SAME"), ((3, 1), (2, 1), "SAME"), ((1, 3), (1, 1), ((0, 0), (2, 0))),
                ((2, 2), (1, 2), ((1, 0), (2, 0))), ((3, 3), (1, 1), ((3, 1), (0, 2))),
                ((5, 5), (1, 1), ((2, 2), (3, 1))), ((4, 5), (1, 1), "SAME")]


@pytest.mark.parametrize("H, W, C", FLAT_PLANES)
def test_flat_plane_gradients(isa_level, H, W, C):
    rng = np.random.default_rng(H * W + C)
    for ((kh, kw), dil, padding), dtype in itertools.product(FLAT_KERNELS, DTYPES):
        x, w, dy = random_case(rng, "NCHW", 3, H, W, C, 1, kh, kw, 1, padding, dil, dtype)
        check_gradients(x, w, dy, 1, padding, "NCHW", dil)
        kwargs = dict(data_format="NCHW", dilations=dil)
        one = dwconv.depthwise_conv2d_grad(x, w, dy, 1, padding, num_threads=1, **kwargs)
        for n_threads in (2, 3):
            again = dwconv.depthwise_conv2d_grad(x, w, dy, 1, padding, num_threads=n_threads, **kwargs)
            for got, want in zip(again, one):
                assert np.array_equal(got, want)


# NCHW 5x5 and 7x7 kernels at stride 1 (dilation 1, planes read in place): at AVX-512 the filter
# gradient runs each plane in strips of a vector's columns down the rows, its tap columns shifted out
# of two source vectors, its tap rows in passes of 2 and 3 (flat_dot_shifted): rows narrower than a
# vector (14; 7x7 on rows of 8 at most keep the packed path), of one (16), a lane past (17: a second
# strip overlapping the first, its lanes summed once), of two overlapping strips (28) and of three
# (33, 45); padding of k - 1 on either side or split unevenly (rows and columns whose taps lie
# partly past the plane) and VALID; heights of 5 to 12; 17 channels (a block of 16 planes and one),
# three images, each plane's next image fetched ahead; the same bits for any number of threads.
SHIFTED_ROWS_PLANES = [(6, 14, 17), (5, 16, 17), (7, 17, 17), (12, 28, 17), (9, 33, 17), (8, 45, 17),
                       (7, 8, 17)]  # (H, W, C)


@pytest.mark.parametrize("H, W, C", SHIFTED_ROWS_PLANES)
@pytest.mark.parametrize("k", [5, 7])
def test_plane_gradients_along_rows(isa_level, k, H, W, C):
    from dwconv import _args, _kernels
    rng = np.random.default_rng(H * W + C + k)
    for padding in ["SAME", "VALID", ((k - 1, 0), (0, k - 1)), ((0, k - 1), (k - 1, 0)), ((1, k - 2), (k - 2, 1))]:
        if padding == "VALID" and H < k:
            continue
        g = _args.geometry((3, C, H, W), (k, k, C, 1), 1, padding, "NCHW", 1)
        assert _kernels.reads_shifted_rows(g) == (isa_level == "avx512" and g.OW == W and (k == 5 or W > 8)), padding
        x, w, dy = random_case(rng, "NCHW", 3, H, W, C, 1, k, k, 1, padding, (1, 1), np.float32)
        check_gradients(x, w, dy, 1, padding, "NCHW", (1, 1))
        one = dwconv.depthwise_conv2d_grad(x, w, dy, 1, padding, data_format="NCHW", num_threads=1)
        for n_threads in (2, 3):
            again = dwconv.depthwise_conv2d_grad(x, w, dy, 1, padding, data_format="NCHW", num_threads=n_threads)
            for got, want in zip(again, one):
                assert np.array_equal(got, want)


# NCHW 3x3 kernels at stride 2 on planes 16 pixels wide or more: both gradients read the planes in
# place along their rows (dx two vectors of a row at a time, its even and odd pixels apart, the
# last tile overlapping the one before, or on rows narrower than that one tile, its first elements
# stored; the filter gradient a vector of dy at a time, the last masked). Widths of one tile, of
# tiles and an overlap, odd and even, of less than a tile at AVX-512 (16, 28, 21); padding on the
# left odd and even, wider than the kernel, VALID (rows and columns no output reads); dx in every
# padding mode (the padding's share added after); the same bits for any number of threads. Planes
# of 8 KB or more (45x46) ask for the next plane's lines as the filter gradient reads them.
# (N, H, W, C, padding)
STRIDED_PLANES = [(2, 9, 32, 5, "SAME"), (1, 12, 47, 3, 1), (2, 7, 64, 2, "VALID"), (1, 10, 70, 4, ((0, 1), (1, 0))),
                  (1, 6, 34, 2, ((3, 2), (4, 3))), (3, 5, 33, 17, ((1, 2), (2, 1))), (2, 28, 28, 5, "SAME"),
                  (1, 9, 16, 3, 1), (2, 8, 21, 4, ((2, 1), (0, 3))), (3, 45, 46, 2, "SAME")]


@pytest.mark.parametrize("N, H, W, C, padding", STRIDED_PLANES)
def test_strided_plane_gradients(isa_level, N, H, W, C, padding):
    from dwconv import _args, _kernels
    from reference import conv2d_backprop_input
    rng = np.random.default_rng(N * H * W + C)
    x, w, dy = random_case(rng, "NCHW", N, H, W, C, 1, 3, 3, 2, padding, 1, np.float32)
    g = _args.geometry(x.shape, w.shape, 2, padding, "NCHW", 1)
    assert _kernels.reads_strided_planes(g) == (isa_level != "baseline")
    check_gradients(x, w, dy, 2, padding, "NCHW", 1)
    one = dwconv.depthwise_conv2d_grad(x, w, dy, 2, padding, data_format="NCHW", num_threads=1)
    for n_threads in (2, 3):
        again = dwconv.depthwise_conv2d_grad(x, w, dy, 2, padding, data_format="NCHW", num_threads=n_threads)
        for got, want in zip(again, one):
            assert np.array_equal(got, want)
    pad = resolve_padding(padding, (H, W), (3, 3), (2, 2), (1, 1), "NCHW")
    for mode in ("reflect", "replicate", "circular", "symmetric"):
        if mode == "reflect" and max(max(pad[0]), max(pad[1])) >= min(H, W):
            continue  # (numpy.pad's reflection needs the padding narrower than the image)
        dx = dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, 2, padding, data_format="NCHW", padding_mode=mode)
        ref = conv2d_backprop_input(x.shape, w, dy, (2, 2), pad, "NCHW", (1, 1), mode)
        assert_close(dx, ref, np.abs(ref).max(), np.float32, 9, f"dx ({mode})")


# NHWC input gradients at strides over 1 (phase_input_grad): strides 2, 3 and 4, and mixed; kernels
# narrower than the stride (phases with no taps: pixels no tap reaches), wider, and even; padding
# before of 0 to kw - 1, so that a phase's first pixels miss taps, and rows and columns past the
# last output's taps (VALID); channels of a vector and more, with a partial vector, and fewer than
# a vector (the narrower levels); dx in every padding mode; streaming stores (forced on for these
# small results: whole lines where the pixels are); the same bits for any number of threads.
# (N, H, W, C, kh, kw, strides, padding)
PHASE_CASES = [(2, 12, 13, 32, 3, 3, 2, "SAME"), (1, 11, 16, 21, 3, 3, 2, 1), (2, 9, 10, 16, 5, 5, 2, "VALID"),
               (1, 10, 17, 40, 7, 7, 2, ((3, 2), (0, 6))), (2, 8, 9, 3, 3, 3, 2, "SAME"), (1, 13, 14, 24, 3, 3, 3, 1),
               (2, 12, 12, 16, 4, 4, 4, "VALID"), (1, 7, 15, 17, 3, 3, (1, 2), "SAME"),
               (1, 15, 7, 48, 3, 3, (2, 1), ((2, 0), (1, 1))), (2, 9, 11, 16, 1, 1, 2, "VALID"),
               (1, 10, 10, 8, 2, 2, 3, ((1, 1), (0, 1))), (1, 6, 20, 5, 2, 6, (3, 2), ((0, 1), (5, 4)))]


@pytest.mark.parametrize("N, H, W, C, kh, kw, strides, padding", PHASE_CASES)
def test_phase_input_gradient(isa_level, N, H, W, C, kh, kw, strides, padding):
    from dwconv import _args, _kernels
    from reference import conv2d_backprop_input
    rng = np.random.default_rng(N * H * W + C + kh)
    sp = normalize_pair(strides, "NHWC")
    pad = resolve_padding(padding, (H, W), (kh, kw), sp, (1, 1), "NHWC")
    for dtype in DTYPES:
        x, w, dy = random_case(rng, "NHWC", N, H, W, C, 1, kh, kw, strides, padding, 1, dtype)
        assert _kernels.runs_phases(_args.geometry(x.shape, w.shape, strides, padding, "NHWC", 1))
        check_gradients(x, w, dy, strides, padding, "NHWC", 1)
        one = dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, strides, padding, num_threads=1)
        for n_threads in (2, 3):
            again = dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, strides, padding, num_threads=n_threads)
            assert np.array_equal(again, one)
        old = _kernels.set_streaming_bytes(0)
        try:  # (into whole lines, as dwconv's own larger results start)
            streamed = dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, strides, padding, num_threads=2,
                                                              out=checks.cache_line_empty(x.shape, dtype))
        finally:
            _kernels.set_streaming_bytes(old)
        assert np.array_equal(streamed, one)
        for mode in ("reflect", "replicate", "circular", "symmetric"):
            if max(max(pad[0]), max(pad[1])) >= min(H, W):
                continue  # (numpy.pad's reflection and wrap need the padding narrower than the image)
            dx = dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, strides, padding, padding_mode=mode)
            ref = conv2d_backprop_input(x.shape, w, dy, sp, pad, "NHWC", (1, 1), mode)
            assert_close(dx, ref, np.abs(ref).max(), dtype, kh * kw, f"dx ({mode})")


def test_strided_plane_filter_gradient_of_nonfinite_pixels(isa_level):
    """Non-finite pixels reach the taps that read them and no other: at VALID padding the last dy
    vector's lanes past the row (zeros) line up with source columns that lanes inside read for
    another tap (column 38, tap column 2's only) or that no output reads (column 39, row 7)."""
    from reference import conv2d_backprop_filter
    rng = np.random.default_rng(5)
    x, w, dy = random_case(rng, "NCHW", 2, 8, 40, 3, 1, 3, 3, 2, "VALID", 1, np.float32)  # (19 outputs: 0..38 read)
    x[0, 1, 2, 38] = np.nan
    x[:, :, :, 39] = np.nan
    x[:, :, 7, :] = np.inf
    got = dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, 2, "VALID", data_format="NCHW")
    with np.errstate(invalid="ignore"):
        want = conv2d_backprop_filter(x, w.shape, dy, (2, 2), ((0, 0), (0, 0)), "NCHW", (1, 1))
    assert np.isnan(want).sum() == 2  # (channel 1's taps (0, 2) and (2, 2): kernel rows 0 and 2 read row 2)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    finite = np.isfinite(want)
    assert_close(got[finite], want[finite], np.abs(want[finite]).max(), np.float32, 2 * 3 * 19, "dW")


# NCHW 3x3 filter gradients at stride 1 on planes narrower than a vector read each plane row into a
# vector of its own and rotate it for the tap columns (flat_dot_narrow), where the row with its left
# padding and the output row with its right fit a vector (16 lanes at AVX-512, 8 at AVX2; at
# AVX-512 two planes to a vector where they fit 8, an odd plane left alone): 7x7 and 14x14 planes,
# the widest (15 with SAME padding), VALID (no left padding), two columns of padding on the left or
# the right, 1-pixel rows, padding taller than the kernel; the same bits for any number of threads.
# (N, H, W, C, padding, the widest row and padding: W + max(pl, OW + 2 - pl - W))
NARROW_PLANES = [(2, 7, 7, 5, "SAME", 8), (3, 14, 14, 3, "SAME", 15), (2, 5, 15, 4, 1, 16), (1, 6, 6, 3, "VALID", 6),
                 (2, 4, 9, 3, ((2, 0), (2, 0)), 11), (1, 3, 1, 2, 1, 2), (2, 9, 13, 6, ((0, 2), (0, 2)), 15),
                 (1, 2, 5, 3, ((3, 1), (1, 1)), 6)]
NARROW_LANES = {"avx512": 16, "avx2": 8}


@pytest.mark.parametrize("N, H, W, C, padding, span", NARROW_PLANES)
def test_narrow_plane_filter_gradient(isa_level, N, H, W, C, padding, span):
    from dwconv import _args, _kernels
    rng = np.random.default_rng(N * H * W + C)
    x, w, dy = random_case(rng, "NCHW", N, H, W, C, 1, 3, 3, 1, padding, 1, np.float32)
    g = _args.geometry(x.shape, w.shape, 1, padding, "NCHW", 1)
    assert _kernels.reads_narrow_planes(g) == (span <= NARROW_LANES.get(isa_level, 0))
    check_gradients(x, w, dy, 1, padding, "NCHW", 1)
    one = dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, 1, padding, data_format="NCHW", num_threads=1)
    for n_threads in (2, 3):
        again = dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, 1, padding, data_format="NCHW",
                                                        num_threads=n_threads)
        assert np.array_equal(again, one)


def test_narrow_plane_filter_gradient_of_nonfinite_pixels(isa_level):
    """A NaN in a plane's last column reaches the taps that read it (tap column 2 at VALID padding)
    and no other: the rotations for tap columns 0 and 1 carry it into lanes past the output row,
    whose products with the zeros past dy's row are left out of the sums (at AVX-512 in a pair of
    planes, channels 0 and 1, its second slot, and in the odd plane left, channel 2)."""
    from reference import conv2d_backprop_filter
    rng = np.random.default_rng(6)
    x, w, dy = random_case(rng, "NCHW", 2, 6, 7, 3, 1, 3, 3, 1, "VALID", 1, np.float32)  # (5 outputs a row)
    x[1, 2, 3, 6] = np.nan
    x[0, 1, 2, 6] = np.nan
    got = dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, 1, "VALID", data_format="NCHW")
    with np.errstate(invalid="ignore"):
        want = conv2d_backprop_filter(x, w.shape, dy, (1, 1), ((0, 0), (0, 0)), "NCHW", (1, 1))
    assert np.isnan(want).sum() == 6  # (channels 1 and 2's taps (0, 2), (1, 2), (2, 2): 3 rows read rows 2, 3)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    finite = np.isfinite(want)
    assert_close(got[finite], want[finite], np.abs(want[finite]).max(), np.float32, 2 * 4 * 5, "dW")


# NHWC filter gradients of 3x3 kernels sum a row's whole window at once, the rows of it inside the
# image (the first and last rows' windows reach into the padding: 2 rows of 3, or 1 in a 1-row
# image), over chunks of rows and blocks of channels chosen from the geometry: all channels where
# rows abound, blocks of 2 vectors or more where they are few (here 5 blocks of 48 and a remainder
# of 8, or 70 channels: 4 vectors and 6 lanes), strided, dilated, rows lost to VALID padding; the
# same bits for any number of threads. Items of all channels with at most one padding column on
# either side read x's rows in place, leaving the first and last pixels' taps in the padding out:
# on both sides, on one, on none, in a 1-pixel row, with rows dilated (the six cases after the
# first five); their whole windows run in batches of rows, fewer the wider the rows (WINDOW_PIXELS):
# 16 rows of narrow ones, 4 of 112 pixels, 2 of 140 at stride 2 (the last two cases).
NHWC_WINDOWS = [(1, 5, 9, 200, 1, "SAME", 1), (3, 12, 11, 70, 1, "SAME", 1), (2, 9, 10, 37, 2, "SAME", 1),
                (2, 8, 13, 33, 1, "VALID", 2), (1, 2, 3, 16, 1, ((2, 2), (1, 3)), 1),
                (4, 6, 17, 35, 1, "SAME", 1), (3, 4, 6, 19, 1, ((0, 1), (1, 0)), 1), (3, 4, 6, 19, 1, ((1, 1), (0, 1)), 1),
                (2, 6, 9, 24, 1, "VALID", (2, 1)), (2, 7, 1, 40, 1, "SAME", 1), (5, 1, 8, 20, 1, "SAME", 1),
                (3, 56, 112, 16, 1, "SAME", 1), (2, 70, 140, 17, 2, "SAME", 1)]
# (N, H, W, C, strides, padding, dilations)


@pytest.mark.parametrize("N, H, W, C, strides, padding, dil", NHWC_WINDOWS)
def test_nhwc_filter_gradient_windows(isa_level, N, H, W, C, strides, padding, dil):
    rng = np.random.default_rng(N * H * W + C)
    for dtype in DTYPES:
        x, w, dy = random_case(rng, "NHWC", N, H, W, C, 1, 3, 3, strides, padding, dil, dtype)
        check_gradients(x, w, dy, strides, padding, "NHWC", dil)
        one = dwconv.depthwise_conv2d_grad(x, w, dy, strides, padding, dilations=dil, num_threads=1)
        for n_threads in (2, 3):
            again = dwconv.depthwise_conv2d_grad(x, w, dy, strides, padding, dilations=dil, num_threads=n_threads)
            for got, want in zip(again, one):
                assert np.array_equal(got, want)


# Kernel rows of 4 to 7 taps whole pixels apart (stride 1, or stride and dilation 2), whose filter
# gradient slides a window of source vectors along each row: widths whose outputs are whole multiples
# of the taps and not, channels of whole vectors and a remainder. (N, H, W, C, kh, kw, strides, dil)
TAP_ROWS = [(2, 9, 14, 35, 7, 7, 1, 1), (1, 8, 13, 16, 7, 7, 1, 1), (2, 7, 11, 48, 5, 5, 1, 1),
            (1, 6, 10, 33, 4, 6, 1, 1), (2, 13, 15, 20, 5, 5, 2, 2), (1, 5, 3, 17, 3, 5, 1, 1)]


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("N, H, W, C, kh, kw, strides, dil", TAP_ROWS)
def test_filter_gradient_rows_of_taps(isa_level, data_format, N, H, W, C, kh, kw, strides, dil):
    """NHWC rows from the ring; narrow NCHW planes packed as NHWC, their rows padded for 6 taps or
    more (packed_band)."""
    rng = np.random.default_rng(N * H * W + C + kw)
    for dtype in DTYPES:
        x, w, dy = random_case(rng, data_format, N, H, W, C, 1, kh, kw, strides, "SAME", dil, dtype)
        check_gradients(x, w, dy, strides, "SAME", data_format, dil)


@pytest.mark.parametrize("streaming", [False, True])
@pytest.mark.parametrize("H, W, strides", [(16, 16, 2), (8, 32, (2, 1)), (7, 9, 2)])
def test_packed_input_gradient(isa_level, H, W, strides, streaming):
    """Narrow NCHW planes at strides over 1 gather dx in packed pixels and transpose it back into
    the planes, with streaming stores where every vector fills cache lines of its own (the first
    two shapes; forced on here for these small results)."""
    from dwconv import _kernels
    rng = np.random.default_rng(H * W)
    old = _kernels.set_streaming_bytes(0 if streaming else 1 << 60)
    try:
        for dtype in DTYPES:
            x, w, dy = random_case(rng, "NCHW", 2, H, W, 21, 1, 3, 3, strides, "SAME", 1, dtype)
            check_gradients(x, w, dy, strides, "SAME", "NCHW", 1, num_threads=2)
    finally:
        _kernels.set_streaming_bytes(old)


@pytest.mark.parametrize("H, kh", [(1, 1), (3, 3)])
@pytest.mark.parametrize("M", [1, 2])
def test_nhwc_one_row_split_into_channel_blocks(H, kh, M):
    """NHWC work items are rows of all channels; a single output row, big enough for two threads,
    is cut into channel blocks (here 64 and a remainder of 136) so that both get one."""
    rng = np.random.default_rng(H * 10 + M)
    x, w, dy = random_case(rng, "NHWC", 1, H, 600, 200, M, kh, 5, 1, "VALID", 1, np.float32)
    assert dy.shape[1] == 1
    for num_threads in (1, 2):
        check_gradients(x, w, dy, 1, "VALID", "NHWC", 1, num_threads=num_threads, check_grad=False)
        got = dwconv.depthwise_conv2d(x, w, num_threads=num_threads)
        np.testing.assert_allclose(got, conv2d_forward(x, w, (1, 1), ((0, 0), (0, 0)), "NHWC", (1, 1)),
                                   rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_three_dim_filters(data_format, dtype):
    """(kh, kw, C) filters: gradients as for M = 1, filter gradient shaped (kh, kw, C)."""
    rng = np.random.default_rng(20)
    x, w, dy = random_case(rng, data_format, 2, 7, 6, 4, 1, 3, 3, 2, "SAME", 1, dtype,
                           three_d=True)
    assert w.ndim == 3
    gi3, gw3 = check_gradients(x, w, dy, 2, "SAME", data_format, 1)
    assert gw3.shape == (3, 3, 4)
    gi4 = dwconv.depthwise_conv2d_backprop_input(x.shape, w[..., None], dy, 2, "SAME",
                                                 data_format=data_format)
    gw4 = dwconv.depthwise_conv2d_backprop_filter(x, w.shape + (1,), dy, 2, "SAME",
                                                  data_format=data_format)
    assert np.array_equal(gi3, gi4)
    assert np.array_equal(gw3, gw4[..., 0])
    g = dwconv.depthwise_conv2d_grad(x, w, dy, 2, "SAME", data_format=data_format)
    assert g.filters.shape == (3, 3, 4)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first", "nhwc", "Nchw"])
def test_data_format_aliases(data_format):
    rng = np.random.default_rng(21)
    fmt = "NHWC" if data_format.lower() in ("channels_last", "nhwc") else "NCHW"
    x, w, dy = random_case(rng, fmt, 2, 7, 8, 3, 2, 3, 2, 2, "SAME", 1)
    check_gradients(x, w, dy, 2, "SAME", data_format, 1)


@pytest.mark.parametrize("data_format", FORMATS)
def test_bias_gradient(data_format):
    """Gradients.bias = grad_output summed over batch and space, shape (C*M,)."""
    rng = np.random.default_rng(22)
    for dtype, (N, H, W, C, M) in itertools.product(DTYPES, [(1, 5, 5, 3, 1), (3, 8, 7, 4, 3),
                                                              (2, 1, 1, 2, 2), (4, 20, 30, 70, 1)]):
        x, w, dy = random_case(rng, data_format, N, H, W, C, M, 3, 3, 1, "SAME", 1, dtype)
        g = dwconv.depthwise_conv2d_grad(x, w, dy, 1, "SAME", data_format=data_format)
        axes = (0, 1, 2) if data_format == "NHWC" else (0, 2, 3)
        ref = dy.astype(np.float64).sum(axis=axes)
        scale = np.abs(dy.astype(np.float64)).sum(axis=axes)
        assert_close(g.bias, ref, scale, dtype, N * H * W, "grad.bias")


# ---------------------------------------------------------------------------
# finite differences (float64)


FD_CASES = [
    # fmt, N, H, W, C, M, k, strides, padding, dilations
    ("NHWC", 2, 7, 6, 3, 1, (3, 3), 1, "VALID", 1),
    ("NCHW", 2, 7, 6, 3, 2, (3, 3), 2, "SAME", 1),
    ("NHWC", 1, 9, 8, 2, 3, (3, 2), (2, 1), "SAME", 2),
    ("NCHW", 2, 8, 9, 2, 2, (2, 3), 1, ((0, 2), (1, 0)), (2, 1)),
    ("NHWC", 2, 6, 7, 4, 2, (5, 5), 3, ((2, 1), (0, 3)), 1),
    ("NCHW", 1, 10, 7, 3, 3, (3, 3), (1, 2), 1, 2),
    ("NHWC", 3, 5, 5, 1, 2, (2, 2), 2, [[0, 0], [1, 0], [0, 1], [0, 0]], 1),
]


def check_central_differences(rng, a, loss_of, analytic, label, h=1e-3):
    """At 8 random entries of `a`, each array in `analytic` matches the central difference of
    `loss_of` (a function of a perturbed copy of `a`)."""
    for _ in range(8):
        i = tuple(int(rng.integers(n)) for n in a.shape)
        ap, am = a.copy(), a.copy()
        ap[i] += h
        am[i] -= h
        fd = (loss_of(ap) - loss_of(am)) / (2 * h)
        for grad in analytic:
            assert grad[i] == pytest.approx(fd, rel=1e-6, abs=1e-8), (label, i, grad[i], fd)


@pytest.mark.parametrize("case", FD_CASES, ids=[str(i) for i in range(len(FD_CASES))])
def test_finite_differences(case):
    fmt, N, H, W, C, M, (kh, kw), strides, padding, dilations = case
    rng = np.random.default_rng(30 + FD_CASES.index(case))
    x, w, dy = random_case(rng, fmt, N, H, W, C, M, kh, kw, strides, padding, dilations)

    def loss(xv, wv):
        y = dwconv.depthwise_conv2d(xv, wv, strides, padding, data_format=fmt, dilations=dilations,
                                    num_threads=1)
        return math.fsum((y * dy).ravel())

    gi = dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, strides, padding, data_format=fmt,
                                                dilations=dilations)
    gw = dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, strides, padding,
                                                 data_format=fmt, dilations=dilations)
    g = dwconv.depthwise_conv2d_grad(x, w, dy, strides, padding, data_format=fmt,
                                     dilations=dilations)
    check_central_differences(rng, x, lambda xv: loss(xv, w), (gi, g.input), "x")
    check_central_differences(rng, w, lambda wv: loss(x, wv), (gw, g.filters), "w")
    # bias: L(b) = sum((conv + b) * dy) is linear in b with slope sum(dy); every entry
    h = 1e-3
    bias = rng.standard_normal(C * M)
    for c in range(C * M):
        bp, bm = bias.copy(), bias.copy()
        bp[c] += h
        bm[c] -= h
        fp = math.fsum((dwconv.depthwise_conv2d(x, w, strides, padding, data_format=fmt,
                                                dilations=dilations, bias=bp, num_threads=1)
                        * dy).ravel())
        fm = math.fsum((dwconv.depthwise_conv2d(x, w, strides, padding, data_format=fmt,
                                                dilations=dilations, bias=bm, num_threads=1)
                        * dy).ravel())
        assert g.bias[c] == pytest.approx((fp - fm) / (2 * h), rel=1e-6, abs=1e-8)


# ---------------------------------------------------------------------------
# adjoint identities (float64)


ADJOINT_CASES = FD_CASES + [
    ("NHWC", 2, 16, 15, 5, 2, (7, 7), 1, "SAME", 1),
    ("NCHW", 3, 12, 13, 3, 1, (1, 1), 3, "VALID", 1),
    ("NHWC", 1, 11, 11, 70, 1, (3, 3), (2, 2), "SAME", (1, 2)),
    ("NCHW", 2, 6, 20, 2, 3, (2, 4), (1, 3), ((3, 0), (2, 2)), (2, 1)),
]


@pytest.mark.parametrize("case", ADJOINT_CASES, ids=[str(i) for i in range(len(ADJOINT_CASES))])
def test_adjoint_identity(case):
    fmt, N, H, W, C, M, (kh, kw), strides, padding, dilations = case
    rng = np.random.default_rng(60 + ADJOINT_CASES.index(case))
    x, w, dy = random_case(rng, fmt, N, H, W, C, M, kh, kw, strides, padding, dilations)
    kw_ = dict(data_format=fmt, dilations=dilations)
    y = dwconv.depthwise_conv2d(x, w, strides, padding, **kw_)
    gi = dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, strides, padding, **kw_)
    gw = dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, strides, padding, **kw_)
    lhs = math.fsum((y * dy).ravel())
    via_x = math.fsum((x * gi).ravel())
    via_w = math.fsum((w * gw).ravel())
    # the scale: <|conv|(|x|, |w|), |dy|>, the sum of |every product| in these dot products
    sp, dp = normalize_pair(strides, fmt), normalize_pair(dilations, fmt)
    pad = resolve_padding(padding, (H, W), (kh, kw), sp, dp, fmt)
    scale = math.fsum((conv2d_forward(np.abs(x), np.abs(w), sp, pad, fmt, dp) * np.abs(dy)).ravel())
    assert scale > 0
    assert abs(lhs - via_x) <= 1e-12 * scale, (lhs, via_x, scale)
    assert abs(lhs - via_w) <= 1e-12 * scale, (lhs, via_w, scale)
    # and relative to the value itself when there is no heavy cancellation
    if abs(lhs) > 1e-3 * scale:
        assert via_x == pytest.approx(lhs, rel=1e-9)
        assert via_w == pytest.approx(lhs, rel=1e-9)


# ---------------------------------------------------------------------------
# PyTorch autograd


TORCH_CASES = [
    # fmt, N, H, W, C, M, k, strides, (top, bottom, left, right) padding, dilations
    ("NCHW", 2, 9, 8, 3, 1, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1)),
    ("NHWC", 2, 9, 8, 3, 2, (3, 3), (2, 2), ((0, 0), (0, 0)), (1, 1)),
    ("NCHW", 1, 12, 11, 4, 3, (5, 3), (1, 2), ((2, 1), (0, 3)), (2, 1)),
    ("NHWC", 3, 7, 13, 2, 2, (2, 4), (3, 1), ((1, 0), (2, 2)), (1, 2)),
    ("NCHW", 2, 15, 15, 5, 2, (7, 7), (2, 3), ((3, 3), (3, 3)), (1, 1)),
]


def _torch_grads(torch, x, w, dy, fmt, strides, pad, dilations):
    F = torch.nn.functional
    kh, kw, C, M = w.shape
    x_nchw = x if fmt == "NCHW" else x.transpose(0, 3, 1, 2)
    dy_nchw = dy if fmt == "NCHW" else dy.transpose(0, 3, 1, 2)
    tx = torch.tensor(np.ascontiguousarray(x_nchw), requires_grad=True)
    tw = torch.tensor(np.ascontiguousarray(w.reshape(kh, kw, C * M).transpose(2, 0, 1)[:, None]),
                      requires_grad=True)
    tb = torch.zeros(C * M, dtype=tx.dtype, requires_grad=True)
    (t, b), (l, r) = pad
    y = F.conv2d(F.pad(tx, (l, r, t, b)), tw, tb, stride=strides, dilation=dilations, groups=C)
    y.backward(torch.tensor(np.ascontiguousarray(dy_nchw)))
    gx = tx.grad.numpy()
    if fmt == "NHWC":
        gx = gx.transpose(0, 2, 3, 1)
    gw = tw.grad.numpy()[:, 0].transpose(1, 2, 0).reshape(kh, kw, C, M)
    return y.detach().numpy(), gx, gw, tb.grad.numpy()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", TORCH_CASES, ids=[str(i) for i in range(len(TORCH_CASES))])
def test_against_torch_autograd(case, dtype):
    torch = pytest.importorskip("torch")
    fmt, N, H, W, C, M, (kh, kw), strides, pad, dilations = case
    rng = np.random.default_rng(90 + TORCH_CASES.index(case))
    x, w, dy = random_case(rng, fmt, N, H, W, C, M, kh, kw, strides, pad, dilations, dtype)
    ty, tgx, tgw, tgb = _torch_grads(torch, x, w, dy, fmt, strides, pad, dilations)
    kw_ = dict(data_format=fmt, dilations=dilations)
    y = dwconv.depthwise_conv2d(x, w, strides, pad, **kw_)
    y_nchw = y if fmt == "NCHW" else y.transpose(0, 3, 1, 2)
    assert y_nchw.shape == ty.shape
    gi = dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, strides, pad, **kw_)
    gw = dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, strides, pad, **kw_)
    g = dwconv.depthwise_conv2d_grad(x, w, dy, strides, pad, **kw_)
    # both sides round; compare within twice the reference tolerance on the |.| scale
    ref = reference_gradients(x, w, dy, strides, pad, fmt, dilations)
    gi_s, gw_s, gb_s = ref["input"][1], ref["filters"][1], ref["bias"][1]
    OH, OW = hw_of(dy.shape, fmt)
    red = N * OH * OW
    for got, want, scale, terms, what in [
            (gi, tgx, gi_s, kh * kw * M, "input"), (g.input, tgx, gi_s, kh * kw * M, "grad.input"),
            (gw, tgw, gw_s, red, "filters"), (g.filters, tgw, gw_s, red, "grad.filters"),
            (g.bias, tgb, gb_s, red, "grad.bias")]:
        assert got.dtype == dtype
        assert got.shape == want.shape, what
        err = np.abs(got.astype(np.float64) - want.astype(np.float64))
        bound = 2 * checks.rtol_for(dtype, terms, naive_sum=True) * scale + np.finfo(dtype).tiny
        assert (err <= bound).all(), (what, float(err.max()))


# ---------------------------------------------------------------------------
# threads: bitwise-identical results for any num_threads


THREAD_SHAPES = [
    # N, H, W, C, M, k, strides, padding
    (1, 64, 64, 8, 1, (3, 3), 1, "SAME"),
    (4, 33, 35, 70, 1, (3, 3), 1, "SAME"),
    (1, 40, 37, 5, 2, (5, 5), 2, ((2, 1), (0, 3))),
    (3, 30, 31, 17, 3, (2, 4), (1, 2), "VALID"),
    # small and thin: fewer rows / channel blocks than threads or chunks
    (1, 1, 9, 1, 2, (3, 3), 1, "SAME"),
    (2, 3, 5, 3, 1, (1, 1), 1, "VALID"),
    (5, 7, 6, 2, 1, (3, 3), 2, 1),
    (0, 5, 5, 3, 2, (3, 3), 1, "SAME"),
    # the filter gradient's channel blocks follow the threads: x read in place on one, through a
    # ring on more
    (1, 7, 7, 960, 1, (3, 3), 1, "SAME"),
]


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("shape", THREAD_SHAPES, ids=[str(i) for i in range(len(THREAD_SHAPES))])
def test_num_threads_bitwise_identical(data_format, shape):
    N, H, W, C, M, (kh, kw), strides, padding = shape
    rng = np.random.default_rng(120 + THREAD_SHAPES.index(shape))
    x, w, dy = random_case(rng, data_format, N, H, W, C, M, kh, kw, strides, padding, 1,
                           np.float32)
    kw_ = dict(data_format=data_format)
    results = {}
    for n in (1, 2, None, -1, 3):
        gi = dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, strides, padding,
                                                    num_threads=n, **kw_)
        gw = dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, strides, padding,
                                                     num_threads=n, **kw_)
        g = dwconv.depthwise_conv2d_grad(x, w, dy, strides, padding, num_threads=n, **kw_)
        results[n] = (gi, gw, g.input, g.filters, g.bias)
    base = results[1]
    names = ("backprop_input", "backprop_filter", "grad.input", "grad.filters", "grad.bias")
    for n, res in results.items():
        for name, a, b in zip(names, res, base):
            assert np.array_equal(a, b), f"{name}: num_threads={n} differs from num_threads=1"
    # and the numbers are right
    if shape is THREAD_SHAPES[0] or shape is THREAD_SHAPES[1]:
        check_gradients(x, w, dy, strides, padding, data_format, 1, num_threads=2)


def test_num_threads_bitwise_identical_float64():
    rng = np.random.default_rng(130)
    for fmt in FORMATS:
        x, w, dy = random_case(rng, fmt, 2, 48, 40, 12, 2, 3, 3, 1, "SAME", 1)
        a = dwconv.depthwise_conv2d_grad(x, w, dy, 1, "SAME", data_format=fmt, num_threads=1)
        b = dwconv.depthwise_conv2d_grad(x, w, dy, 1, "SAME", data_format=fmt, num_threads=2)
        c = dwconv.depthwise_conv2d_grad(x, w, dy, 1, "SAME", data_format=fmt)
        for u, v, t in zip(a, b, c):
            assert np.array_equal(u, v) and np.array_equal(u, t)


# ---------------------------------------------------------------------------
# out=, inputs untouched, dtypes


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_out_backprop_input(data_format, dtype):
    rng = np.random.default_rng(140)
    # stride 3 > kernel 2: some input pixels get no gradient and must be written as 0
    x, w, dy = random_case(rng, data_format, 2, 10, 11, 3, 2, 2, 2, 3, "VALID", 1, dtype)
    want = dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, 3, "VALID",
                                                  data_format=data_format)
    out = np.full(x.shape, np.nan, dtype)
    got = dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, 3, "VALID",
                                                 data_format=data_format, out=out)
    assert got is out
    assert np.array_equal(out, want)
    assert np.count_nonzero(out == 0) > 0
    check_gradients(x, w, dy, 3, "VALID", data_format, 1, check_grad=False)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_out_backprop_filter(data_format, dtype):
    rng = np.random.default_rng(141)
    for three_d, M in [(False, 3), (True, 1)]:
        x, w, dy = random_case(rng, data_format, 2, 9, 8, 4, M, 3, 3, 2, "SAME", 1, dtype,
                               three_d=three_d)
        want = dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, 2, "SAME",
                                                       data_format=data_format)
        out = np.full(w.shape, np.nan, dtype)
        got = dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, 2, "SAME",
                                                      data_format=data_format, out=out)
        assert got is out
        assert np.array_equal(out, want)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("padding, strides", [("SAME", 1), ("VALID", 2)])
def test_out_grad(data_format, padding, strides):
    """depthwise_conv2d_grad writes the arrays `out` gives (None: a new one), PyTorch's filter layout
    included, equal to the reference; a wrong `out` is refused before anything is written."""
    rng = np.random.default_rng(142)
    x, w, dy = random_case(rng, data_format, 2, 9, 10, 16, 1, 3, 3, strides, padding, 1, np.float32)
    pad = resolve_padding(padding, hw_of(x.shape, data_format), (3, 3), (strides, strides), (1, 1), data_format)
    ref = reference_gradients(x, w, dy, (strides, strides), pad, data_format, (1, 1))
    torch_w = np.ascontiguousarray(w.transpose(2, 3, 0, 1))  # (C*M, 1, kh, kw)
    for filters, filter_format, back in ((w, None, lambda a: a), (torch_w, "torch", lambda a: a.transpose(2, 3, 0, 1))):
        out = tuple(np.full(shape, np.nan, np.float32) for shape in (x.shape, filters.shape, (16,)))
        for given in (out, (out[0], None, out[2]), [None, out[1], None]):
            got = dwconv.depthwise_conv2d_grad(x, filters, dy, strides, padding, data_format=data_format,
                                               out=given, filter_format=filter_format)
            for name, array, written in zip(("input", "filters", "bias"), got, given):
                assert written is None or array is written
                checks.assert_close(back(array) if name == "filters" else array, *ref[name], np.float32, 9, name)
    before = [a.copy() for a in out]
    bad = [(list(out[:2]), TypeError, "three"), (out[0], TypeError, "three"),
           ((out[0], out[1], np.empty(15, np.float32)), ValueError, "shape"),
           ((out[0].astype(np.float64), out[1], out[2]), ValueError, "dtype"),
           ((x, out[1], out[2]), ValueError, "`x`")]
    for given, error, words in bad:
        with pytest.raises(error, match=words):
            dwconv.depthwise_conv2d_grad(x, torch_w, dy, strides, padding, data_format=data_format, out=given,
                                         filter_format="torch")
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(out, before))


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_inputs_not_modified(data_format, dtype):
    rng = np.random.default_rng(142)
    x, w, dy = random_case(rng, data_format, 2, 9, 8, 3, 2, 3, 3, 2, ((1, 2), (0, 1)), 2, dtype)
    snaps = [a.copy() for a in (x, w, dy)]
    shape = x.shape
    dwconv.depthwise_conv2d_backprop_input(shape, w, dy, 2, ((1, 2), (0, 1)),
                                           data_format=data_format, dilations=2)
    dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, 2, ((1, 2), (0, 1)),
                                            data_format=data_format, dilations=2)
    dwconv.depthwise_conv2d_grad(x, w, dy, 2, ((1, 2), (0, 1)), data_format=data_format,
                                 dilations=2)
    for a, s in zip((x, w, dy), snaps):
        assert a.dtype == s.dtype and np.array_equal(a, s)
    assert x.shape == shape


@pytest.mark.parametrize("kind", ["strided_view", "fortran", "negative_last_axis", "byteswapped",
                                  "readonly", "list"])
@pytest.mark.parametrize("data_format", FORMATS)
def test_awkward_inputs(kind, data_format):
    """Non-contiguous, byte-swapped, read-only and list inputs give the same gradients."""
    rng = np.random.default_rng(143)
    x, w, dy = random_case(rng, data_format, 2, 7, 8, 3, 2, 3, 2, 2, "SAME", 1)
    kw_ = dict(data_format=data_format)
    want_i = dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, 2, "SAME", **kw_)
    want_w = dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, 2, "SAME", **kw_)
    want = dwconv.depthwise_conv2d_grad(x, w, dy, 2, "SAME", **kw_)
    ax, aw, ady = (awkward(a, kind) for a in (x, w, dy))
    got_i = dwconv.depthwise_conv2d_backprop_input(list(x.shape), aw, ady, 2, "SAME", **kw_)
    got_w = dwconv.depthwise_conv2d_backprop_filter(ax, list(w.shape), ady, 2, "SAME", **kw_)
    got = dwconv.depthwise_conv2d_grad(ax, aw, ady, 2, "SAME", **kw_)
    assert np.array_equal(got_i, want_i) and got_i.dtype == np.float64
    assert np.array_equal(got_w, want_w) and got_w.dtype == np.float64
    for u, v in zip(got, want):
        assert np.array_equal(u, v) and u.dtype == np.float64


@pytest.mark.parametrize("spelling", ["tuple", "list", "ndarray", "numpy_ints"])
def test_shape_argument_spellings(spelling):
    """input_shape / filter_shape as tuple, list, integer ndarray or numpy integer scalars."""
    rng = np.random.default_rng(145)
    x, w, dy = random_case(rng, "NHWC", 2, 7, 8, 3, 2, 3, 2, 2, "SAME", 1)
    conv = {"tuple": tuple, "list": list, "ndarray": np.array,
            "numpy_ints": lambda s: tuple(np.int64(v) for v in s)}[spelling]
    gi = dwconv.depthwise_conv2d_backprop_input(conv(x.shape), w, dy, 2, "SAME", num_threads=1)
    gw = dwconv.depthwise_conv2d_backprop_filter(x, conv(w.shape), dy, 2, "SAME", num_threads=1)
    assert gi.shape == x.shape and gw.shape == w.shape
    check_gradients(x, w, dy, 2, "SAME", "NHWC", 1, check_grad=False)
    assert np.array_equal(gi, dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, 2, "SAME",
                                                                      num_threads=1))
    assert np.array_equal(gw, dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, 2, "SAME",
                                                                       num_threads=1))
    assert dwconv.output_shape(conv(x.shape), conv(w.shape), 2, "SAME") == dy.shape


@pytest.mark.parametrize("data_format", FORMATS)
def test_mixed_dtypes_compute_in_float64(data_format):
    rng = np.random.default_rng(144)
    x, w, dy = random_case(rng, data_format, 2, 8, 7, 3, 2, 3, 3, 1, "SAME", 1, np.float32)
    x64, w64, dy64 = (a.astype(np.float64) for a in (x, w, dy))
    kw_ = dict(data_format=data_format)
    want_i = dwconv.depthwise_conv2d_backprop_input(x.shape, w64, dy64, 1, "SAME", **kw_)
    want_w = dwconv.depthwise_conv2d_backprop_filter(x64, w.shape, dy64, 1, "SAME", **kw_)
    want = dwconv.depthwise_conv2d_grad(x64, w64, dy64, 1, "SAME", **kw_)
    # backprop_input depends on filters and grad_output only
    for ww, dd in [(w, dy64), (w64, dy)]:
        gi = dwconv.depthwise_conv2d_backprop_input(x.shape, ww, dd, 1, "SAME", **kw_)
        assert gi.dtype == np.float64 and np.array_equal(gi, want_i)
    gi32 = dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, 1, "SAME", **kw_)
    assert gi32.dtype == np.float32
    # backprop_filter depends on x and grad_output only
    for xx, dd in [(x, dy64), (x64, dy)]:
        gw = dwconv.depthwise_conv2d_backprop_filter(xx, w.shape, dd, 1, "SAME", **kw_)
        assert gw.dtype == np.float64 and np.array_equal(gw, want_w)
    gw32 = dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, 1, "SAME", **kw_)
    assert gw32.dtype == np.float32
    # grad: float64 if any of the three is
    for xx, ww, dd in [(x64, w, dy), (x, w64, dy), (x, w, dy64)]:
        g = dwconv.depthwise_conv2d_grad(xx, ww, dd, 1, "SAME", **kw_)
        for u, v in zip(g, want):
            assert u.dtype == np.float64 and np.array_equal(u, v)
    g32 = dwconv.depthwise_conv2d_grad(x, w, dy, 1, "SAME", **kw_)
    assert all(a.dtype == np.float32 for a in g32)


# ---------------------------------------------------------------------------
# grad_output of the wrong shape


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("bad", ["spatial", "channels", "batch", "ndim"])
def test_grad_output_wrong_shape(data_format, bad):
    rng = np.random.default_rng(150)
    x, w, dy = random_case(rng, data_format, 2, 9, 8, 3, 2, 3, 3, 2, "SAME", 1)
    good = dy.shape
    N, OH, OW, CM = (good if data_format == "NHWC" else
                     (good[0], good[2], good[3], good[1]))
    wrong = {"spatial": (N, OH + 1, OW, CM), "channels": (N, OH, OW, CM // 2),
             "batch": (N + 1, OH, OW, CM)}.get(bad)
    if wrong is None:
        wrong_shape = (N, OH, OW)
    else:
        wrong_shape = shape_of(*wrong, data_format)
    bad_dy = np.zeros(wrong_shape)

    def check(excinfo):
        msg = str(excinfo.value)
        assert "`grad_output`" in msg
        assert str(tuple(wrong_shape)) in msg, msg
        assert str(tuple(good)) in msg, msg

    kw_ = dict(data_format=data_format)
    with pytest.raises(ValueError) as e:
        dwconv.depthwise_conv2d_backprop_input(x.shape, w, bad_dy, 2, "SAME", **kw_)
    check(e)
    with pytest.raises(ValueError) as e:
        dwconv.depthwise_conv2d_backprop_filter(x, w.shape, bad_dy, 2, "SAME", **kw_)
    check(e)
    with pytest.raises(ValueError) as e:
        dwconv.depthwise_conv2d_grad(x, w, bad_dy, 2, "SAME", **kw_)
    check(e)


# ---------------------------------------------------------------------------
# every instruction-set level the CPU runs (the isa_level fixture of conftest.py): the vector tails
# again, and a slice of the sweep


@pytest.mark.parametrize("data_format", FORMATS)
def test_isa_levels(isa_level, data_format):
    for dtype in DTYPES:
        test_channel_counts(data_format, dtype)
        test_widths(data_format, dtype)
    for case in SWEEP[FORMATS.index(data_format)::11]:
        test_gradient_sweep(case)
