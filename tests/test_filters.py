"""``dwconv.convert_filters`` between the frameworks' depthwise weight layouts.

Each layout is checked element by element against its definition (which input channel c and which
multiplier m a weight belongs to), and the converted weights against the frameworks' own
convolutions where they are installed.
"""
import itertools
import re

import numpy as np
import pytest

import dwconv
from reference import conv2d_forward

LAYOUTS = ("tf", "ivy", "torch", "chainer", "megengine")


def in_layout(w_tf, layout):
    """`w_tf` (kh, kw, C, M) placed in `layout` one element at a time, from the layouts' definitions."""
    kh, kw, C, M = w_tf.shape
    shapes = {"tf": (kh, kw, C, M), "ivy": (kh, kw, C), "torch": (C * M, 1, kh, kw), "chainer": (M, C, kh, kw),
              "megengine": (C, M, 1, kh, kw)}
    out = np.empty(shapes[layout], w_tf.dtype)
    for i, j, c, m in itertools.product(range(kh), range(kw), range(C), range(M)):
        index = {"tf": (i, j, c, m), "ivy": (i, j, c), "torch": (c * M + m, 0, i, j), "chainer": (m, c, i, j),
                 "megengine": (c, m, 0, i, j)}[layout]
        out[index] = w_tf[i, j, c, m]
    return out


# ivy holds one filter per channel only (M == 1): see test_ivy_needs_one_filter_per_channel
@pytest.mark.parametrize("source, target, M", [(s, t, M) for s, t in itertools.product(LAYOUTS, LAYOUTS)
                                               for M in (1, 3) if M == 1 or "ivy" not in (s, t)])
def test_every_pair_matches_the_definitions(source, target, M):
    rng = np.random.default_rng(1)
    w_tf = rng.standard_normal((3, 2, 4, M)).astype(np.float32)
    w = in_layout(w_tf, source)
    got = dwconv.convert_filters(w, source, target, in_channels=4 if source == "torch" else None)
    want = in_layout(w_tf, target)
    assert got.dtype == w.dtype and got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)
    assert not np.shares_memory(got, w)
    # and back again
    np.testing.assert_array_equal(
        dwconv.convert_filters(got, target, source, in_channels=4 if target == "torch" else None), w)


def test_keras_is_tf_and_torch_defaults_to_one_filter_per_channel():
    w = np.arange(2 * 3 * 5, dtype=np.float64).reshape(5, 1, 2, 3)     # torch (C*M, 1, kh, kw)
    np.testing.assert_array_equal(dwconv.convert_filters(w, "torch", "keras"),
                                  in_layout(w[:, 0].transpose(1, 2, 0)[..., None], "tf"))


@pytest.mark.parametrize("layout", ["torch", "chainer", "megengine"])
def test_converted_filters_give_the_frameworks_convolution(layout):
    """The NCHW frameworks all compute out[c*M + m] from input channel c: converted weights give
    the reference's numbers."""
    rng = np.random.default_rng(2)
    C, M = 3, 2
    x = rng.standard_normal((2, C, 7, 6))
    w_tf = rng.standard_normal((3, 3, C, M))
    filters = dwconv.convert_filters(in_layout(w_tf, layout), layout, "tf",
                                     in_channels=C if layout == "torch" else None)
    got = dwconv.depthwise_conv2d(x, filters, 1, 1, data_format="NCHW")
    np.testing.assert_allclose(got, conv2d_forward(x, w_tf, (1, 1), ((1, 1), (1, 1)), "NCHW", (1, 1)),
                               rtol=1e-12, atol=1e-12)


def test_against_pytorch_grouped_conv():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    C, M = 4, 3
    x = rng.standard_normal((2, C, 9, 8))
    conv = torch.nn.Conv2d(C, C * M, (3, 2), padding=1, groups=C, dtype=torch.float64)
    weight, bias = conv.weight.detach().numpy(), conv.bias.detach().numpy()
    want = conv(torch.from_numpy(x)).detach().numpy()
    filters = dwconv.convert_filters(weight, "torch", "tf", in_channels=C)
    got = dwconv.depthwise_conv2d(x, filters, 1, 1, data_format="NCHW", bias=bias)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(dwconv.convert_filters(filters, "tf", "torch"), weight)


def test_ivy_needs_one_filter_per_channel():
    with pytest.raises(ValueError, match=r"`target`='ivy'.*M = 2"):
        dwconv.convert_filters(np.zeros((3, 3, 4, 2)), "tf", "ivy")


@pytest.mark.parametrize("w, source, target, kwargs, match", [
    (np.zeros((3, 3, 4, 1)), "pytorch", "tf", {}, r"`source` must be one of .*'pytorch'"),
    (np.zeros((3, 3, 4, 1)), "tf", None, {}, r"`target` must be one of .*None"),
    (np.zeros((3, 3, 4)), "tf", "torch", {}, r"`w` must have shape \(kh, kw, C, M\) for source='tf', got \(3, 3, 4\)"),
    (np.zeros((6, 2, 3, 3)), "torch", "tf", {}, r"`w` must have shape \(C\*M, 1, kh, kw\).*\(6, 2, 3, 3\)"),
    (np.zeros((3, 2, 2, 3, 3)), "megengine", "tf", {}, r"`w` must have shape \(C, M, 1, kh, kw\)"),
    (np.zeros((6, 1, 3, 3)), "torch", "tf", {"in_channels": 4}, r"`in_channels`=4 does not fit"),
    (np.zeros((2, 3, 3, 3)), "chainer", "tf", {"in_channels": 2}, r"`in_channels`=2 does not fit"),
    (np.zeros((6, 1, 3, 3)), "torch", "tf", {"in_channels": 0}, r"`in_channels`=0"),
])
def test_bad_arguments(w, source, target, kwargs, match):
    with pytest.raises(ValueError, match=match):
        dwconv.convert_filters(w, source, target, **kwargs)


def test_non_numeric_weights():
    with pytest.raises(TypeError, match="`w` has dtype object"):
        dwconv.convert_filters(np.array([[[["a"]]]], dtype=object), "tf", "torch")


# ---------------------------------------------------------------------------
# filter_format=: the four functions read (and return gradients in) every framework's layout

from reference import conv2d_backprop_filter, conv2d_backprop_input  # noqa: E402

FORMAT_CASES = [(fmt, M, data_format) for fmt in LAYOUTS for M in (1, 2) for data_format in ("NHWC", "NCHW")
                if M == 1 or fmt != "ivy"]


def layout_case(seed, M, data_format, C=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 7, 6, C) if data_format == "NHWC" else (2, C, 7, 6))
    w_tf = rng.standard_normal((3, 2, C, M))
    out_shape = (2, 7, 5, C * M) if data_format == "NHWC" else (2, C * M, 7, 5)
    return x, w_tf, rng.standard_normal(out_shape)


@pytest.mark.parametrize("fmt, M, data_format", FORMAT_CASES)
def test_filter_format_reads_and_returns_each_layout(fmt, M, data_format):
    x, w_tf, dy = layout_case(4, M, data_format)
    w = in_layout(w_tf, fmt)
    args = dict(strides=1, padding=((1, 1), (0, 0)), data_format=data_format)
    ref_args = ((1, 1), ((1, 1), (0, 0)), data_format, (1, 1))
    np.testing.assert_allclose(dwconv.depthwise_conv2d(x, w, filter_format=fmt, **args),
                               conv2d_forward(x, w_tf, *ref_args), rtol=1e-12, atol=1e-12)
    dx = conv2d_backprop_input(x.shape, w_tf, dy, *ref_args)
    np.testing.assert_allclose(dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, filter_format=fmt, **args),
                               dx, rtol=1e-12, atol=1e-12)
    dw = in_layout(conv2d_backprop_filter(x, w_tf.shape, dy, *ref_args), fmt)
    got = dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, filter_format=fmt, **args)
    assert got.shape == w.shape
    np.testing.assert_allclose(got, dw, rtol=1e-12, atol=1e-12)
    out = np.full(w.shape, np.nan)
    assert dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, filter_format=fmt, out=out, **args) is out
    np.testing.assert_array_equal(out, got)
    grads = dwconv.depthwise_conv2d_grad(x, w, dy, filter_format=fmt, **args)
    assert grads.filters.shape == w.shape and grads.filters.flags.c_contiguous
    np.testing.assert_allclose(grads.filters, dw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads.input, dx, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fmt", LAYOUTS)
def test_filter_format_reads_filters_in_place(fmt):
    """Each layout's filters are read as a view of the caller's array, not a rearranged copy."""
    w = in_layout(np.zeros((3, 3, 4, 1 if fmt == "ivy" else 2)), fmt)
    tf = dwconv._args.tf_filters(w, fmt, (1, 4, 5, 5), "NCHW")
    assert tf.shape[:3] == (3, 3, 4) and np.shares_memory(tf, w)


def test_pytorch_weights_are_never_silently_read_as_tensorflow_ones():
    """The issue's case: a 3-channel NCHW image with PyTorch weights (3, 1, 3, 3). Read as dwconv's
    own layout they would be a 3x1 kernel with M = 3: no format given is an error naming both."""
    x, w_tf, _ = layout_case(5, 1, "NCHW")
    w_tf = np.random.default_rng(6).standard_normal((3, 3, 3, 1))
    w = in_layout(w_tf, "torch")
    assert w.shape == (3, 1, 3, 3)
    for fn in (lambda: dwconv.depthwise_conv2d(x, w, data_format="NCHW"),
               lambda: dwconv.depthwise_conv2d_backprop_input(x.shape, w, np.zeros((2, 9, 5, 6)), data_format="NCHW"),
               lambda: dwconv.depthwise_conv2d_backprop_filter(x, w.shape, np.zeros((2, 9, 5, 6)), data_format="NCHW"),
               lambda: dwconv.depthwise_conv2d_grad(x, w, np.zeros((2, 9, 5, 6)), data_format="NCHW")):
        with pytest.raises(ValueError, match=r"`filters?(_shape)?` of shape \(3, 1, 3, 3\) could be a 3x1 kernel in "
                                             r"dwconv's \(kh, kw, C, M\) or PyTorch's .*pass filter_format='torch'"):
            fn()
    np.testing.assert_allclose(dwconv.depthwise_conv2d(x, w, padding=1, data_format="NCHW", filter_format="torch"),
                               conv2d_forward(x, w_tf, (1, 1), ((1, 1), (1, 1)), "NCHW", (1, 1)), rtol=1e-12)
    # saying "tf" keeps dwconv's own reading
    np.testing.assert_allclose(dwconv.depthwise_conv2d(x, w, data_format="NCHW", filter_format="tf"),
                               conv2d_forward(x, w, (1, 1), ((0, 0), (0, 0)), "NCHW", (1, 1)), rtol=1e-12)
    # NHWC is TensorFlow's own layout: there (3, 1, 3, 3) is read as dwconv's (kh, kw, C, M)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    np.testing.assert_allclose(dwconv.depthwise_conv2d(x_nhwc, w),
                               conv2d_forward(x_nhwc, w, (1, 1), ((0, 0), (0, 0)), "NHWC", (1, 1)), rtol=1e-12)


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("fmt, shape, looks", [
    ("torch", (6, 1, 5, 5), r"PyTorch's \(C\*M, 1, kh, kw\): pass filter_format='torch'"),
    ("chainer", (2, 3, 5, 5), r"Chainer's \(M, C, kh, kw\): pass filter_format='chainer'"),
    ("megengine", (3, 2, 1, 3, 3), r"MegEngine's \(C, M, 1, kh, kw\): pass filter_format='megengine'"),
])
def test_filters_that_only_another_layout_fits_name_it(data_format, fmt, shape, looks):
    x = np.zeros((1, 9, 9, 3) if data_format == "NHWC" else (1, 3, 9, 9))
    with pytest.raises(ValueError, match=rf"`filters` .*shape {re.escape(str(shape))}.*; it would fit " + looks):
        dwconv.depthwise_conv2d(x, np.zeros(shape), data_format=data_format)
    assert dwconv.depthwise_conv2d(x, np.zeros(shape), data_format=data_format, filter_format=fmt).size


@pytest.mark.parametrize("kwargs, match", [
    (dict(filter_format="pytorch"), r"`filter_format` must be one of 'tf', 'ivy', 'torch', .*got 'pytorch'"),
    (dict(filter_format=None), r"`filters` has 4 input channels"),
    (dict(filter_format="torch"), r"`filters` must have shape \(C\*M, 1, kh, kw\) with C=3 \(the channels of "
                                  r"`x`, NHWC\) for filter_format='torch'; got shape \(5, 5, 4, 1\)"),
    (dict(filter_format="ivy"), r"`filters` must have shape \(kh, kw, C\) with C=3"),
])
def test_bad_filter_format(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dwconv.depthwise_conv2d(np.zeros((1, 9, 9, 3)), np.zeros((5, 5, 4, 1)), **kwargs)
