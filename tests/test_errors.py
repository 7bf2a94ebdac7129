"""Every error path of the forward pass and the gradients.

Each test matches the message with ``pytest.raises(..., match=...)``, always
including the parameter's name in backticks (the API contract: "ValueError /
TypeError whose message names the parameter in backticks").  Wherever the
function takes ``out=``, the call is repeated with a sentinel-filled ``out``
of the right shape and dtype, which must come back untouched: errors are
raised before anything is written.  Inputs are never modified either.
"""

import platform
import re
from collections import namedtuple

import numpy as np
import pytest

import dwconv
from checks import snapshot, unchanged

FORMATS = ("NHWC", "NCHW")
FUNCS = ("forward", "input", "filter", "grad", "output_shape")
COMPUTE = ("forward", "input", "filter", "grad")          # the ones with num_threads
WITH_OUT = ("forward", "input", "filter")
SENTINEL = -1234.5

# which name each function gives to its input and filter arguments
X_NAME = {"forward": "x", "input": "input_shape", "filter": "x", "grad": "x",
          "output_shape": "input_shape"}
W_NAME = {"forward": "filters", "input": "filters", "filter": "filter_shape", "grad": "filters",
          "output_shape": "filter_shape"}


Base = namedtuple("Base", "x w dy fmt")


def base(fmt="NHWC", dtype=np.float64, M=2):
    """A valid configuration: x (2, 6, 7, 3), 3x3 filters, strides 1, VALID -> (2, 4, 5, 3*M)."""
    rng = np.random.default_rng(0)
    xs = (2, 6, 7, 3) if fmt == "NHWC" else (2, 3, 6, 7)
    ys = (2, 4, 5, 3 * M) if fmt == "NHWC" else (2, 3 * M, 4, 5)
    return Base(rng.standard_normal(xs).astype(dtype),
                rng.standard_normal((3, 3, 3, M)).astype(dtype),
                rng.standard_normal(ys).astype(dtype), fmt)


def _shape_or(a):
    return a.shape if isinstance(a, np.ndarray) else a


def call(fn, x, w, dy, **kw):
    if fn == "forward":
        return dwconv.depthwise_conv2d(x, w, **kw)
    if fn == "input":
        return dwconv.depthwise_conv2d_backprop_input(_shape_or(x), w, dy, **kw)
    if fn == "filter":
        return dwconv.depthwise_conv2d_backprop_filter(x, _shape_or(w), dy, **kw)
    if fn == "grad":
        return dwconv.depthwise_conv2d_grad(x, w, dy, **kw)
    if fn == "output_shape":
        return dwconv.output_shape(_shape_or(x), _shape_or(w), **kw)
    raise AssertionError(fn)


_KEEP = object()


def check_raises(fn, exc, pattern, b=None, *, x=_KEEP, w=_KEEP, dy=_KEEP, with_out=True, **kw):
    """``fn`` on base ``b`` with some arguments replaced must raise ``exc`` matching ``pattern``;
    again with a sentinel ``out`` (when ``fn`` takes one and ``out`` is not under test), which
    must be left untouched.  No input array may be modified."""
    b = base() if b is None else b
    x = b.x if x is _KEEP else x
    w = b.w if w is _KEEP else w
    dy = b.dy if dy is _KEEP else dy
    kw.setdefault("data_format", b.fmt)
    arrays = [x, w, dy] + [v for v in kw.values() if isinstance(v, np.ndarray)]
    snaps = [snapshot(a) for a in arrays]
    with pytest.raises(exc, match=pattern) as info:
        call(fn, x, w, dy, **kw)
    if with_out and fn in WITH_OUT and "out" not in kw:
        shape = {"forward": b.dy.shape, "input": b.x.shape, "filter": b.w.shape}[fn]
        out = np.full(shape, SENTINEL, b.x.dtype)
        with pytest.raises(exc, match=pattern):
            call(fn, x, w, dy, out=out, **kw)
        assert (out == SENTINEL).all(), "out was written before the error"
    for a, s in zip(arrays, snaps):
        assert unchanged(a, s), "an input was modified"
    return info


def esc(*parts):
    """A regex matching the literal parts in order, anything in between."""
    return ".*".join(re.escape(p) for p in parts)


def test_base_is_valid():
    for fmt in FORMATS:
        b = base(fmt)
        for fn in FUNCS:
            call(fn, b.x, b.w, b.dy, data_format=fmt)
        assert dwconv.depthwise_conv2d(b.x, b.w, data_format=fmt).shape == b.dy.shape


# ---------------------------------------------------------------------------
# strides / dilations


@pytest.mark.parametrize("fn", FUNCS)
@pytest.mark.parametrize("name", ["strides", "dilations"])
@pytest.mark.parametrize("value", [0, -1, (1, 0), [0, 2], (2, -3), [1, 0, 2, 1]],
                         ids=lambda v: repr(v).replace(" ", ""))
def test_spatial_pair_not_positive(fn, name, value):
    check_raises(fn, ValueError, esc(f"`{name}` must be positive, got {value!r}"), **{name: value})


@pytest.mark.parametrize("fn", FUNCS)
@pytest.mark.parametrize("name, valid, invalid", [("strides", 1, True), ("strides", 2, 2.0), ("dilations", 2, 2.0)])
def test_cached_geometry_does_not_answer_for_equal_invalid_values(fn, name, valid, invalid):
    """Plain int arguments are cached; a value equal to a cached one (True == 1, 2.0 == 2) but
    not an int must still be refused."""
    b = base()
    x, w = b.x, b.w
    dy = np.ones(dwconv.output_shape(x.shape, w.shape, **{name: valid}))
    call(fn, x, w, dy, **{name: valid})
    check_raises(fn, ValueError, esc(f"`{name}` must be a positive int"), b, dy=dy, **{name: invalid})


@pytest.mark.parametrize("fn", FUNCS)
@pytest.mark.parametrize("name, valid, invalid", [
    ("padding", [[0, 0], [1, 1], [1, 1], [0, 0]], [[0, 0], [1.0, 1], [1, 1], [0, 0]]),
    ("padding", ((1, 1), (2, 2)), ((1, 1), (2, True))),
    ("padding", [[0, 0], [1, 1], [1, 1], [0, 0]], [[0, 0], [1, 1], [1, 1], [0, 1]]),
    ("strides", [1, 2], [1, 2.0]),
], ids=lambda v: repr(v).replace(" ", ""))
def test_cached_geometry_of_sequences_does_not_answer_for_equal_invalid_values(fn, name, valid, invalid):
    """Arguments in lists and tuples of plain ints are cached too; an equal value holding a float
    or a bool, or a different one, must still get its own answer."""
    b = base()
    x, w = b.x, b.w
    dy = np.ones(dwconv.output_shape(x.shape, w.shape, **{name: valid}))
    for _ in range(2):  # (the second call from the cache)
        call(fn, x, w, dy, **{name: valid})
    with pytest.raises(ValueError, match=f"`{name}`"):
        call(fn, x, w, dy, **{name: invalid})


@pytest.mark.parametrize("fn", FUNCS)
@pytest.mark.parametrize("name", ["strides", "dilations"])
@pytest.mark.parametrize("value", [1.5, True, False, "2", None, (1, 1.5), (2.0, 2), (True, 1),
                                   np.float64(2.0), "22"],
                         ids=lambda v: repr(v).replace(" ", ""))
def test_spatial_pair_not_int(fn, name, value):
    if name == "dilations" and value is None:
        b = base()                     # dilations=None is TensorFlow's default: 1
        assert call(fn, b.x, b.w, b.dy, dilations=None) is not None
        return
    check_raises(fn, ValueError, esc(f"`{name}` must be a positive int, a pair (h, w) or "
                                     f"[1, h, w, 1] for NHWC; got {value!r}"), **{name: value})


@pytest.mark.parametrize("fn", FUNCS)
@pytest.mark.parametrize("name", ["strides", "dilations"])
@pytest.mark.parametrize("value", [(), (1, 2, 3), [1, 1, 1, 1, 1], (1, 2, 2, 1, 1)],
                         ids=lambda v: repr(v).replace(" ", ""))
@pytest.mark.parametrize("fmt", FORMATS)
def test_spatial_pair_wrong_length(fn, name, value, fmt):
    form = "[1, h, w, 1]" if fmt == "NHWC" else "[1, 1, h, w]"
    check_raises(fn, ValueError, esc(f"`{name}` must be a positive int, a pair (h, w) or {form} "
                                     f"for {fmt}; got {value!r}"), base(fmt), **{name: value})


@pytest.mark.parametrize("fn", FUNCS)
@pytest.mark.parametrize("name", ["strides", "dilations"])
@pytest.mark.parametrize("fmt, value", [
    ("NHWC", [2, 1, 1, 1]),          # batch entry
    ("NHWC", [1, 1, 1, 2]),          # channel entry
    ("NHWC", [1, 1, 2, 2]),          # NCHW spelling given with NHWC: channel entry 2
    ("NCHW", [2, 1, 1, 1]),          # batch entry
    ("NCHW", [1, 2, 1, 1]),          # channel entry
    ("NCHW", [1, 2, 2, 1]),          # NHWC spelling given with NCHW: channel entry 2
    ("NHWC", np.array([1, 1, 1, 3])),
], ids=lambda v: repr(v).replace(" ", ""))
def test_spatial_pair_tf_form_batch_channel_not_one(fn, name, fmt, value):
    form = "[1, h, w, 1]" if fmt == "NHWC" else "[1, 1, h, w]"
    check_raises(fn, ValueError, esc(f"`{name}` in the 4-element form must be {form} for {fmt}: "
                                     "the batch and channel entries must be 1", repr(value)),
                 base(fmt), **{name: value})


@pytest.mark.parametrize("fmt, strides", [("NHWC", [1, 2, 2, 1]), ("NCHW", [1, 1, 2, 2]),
                                          ("NHWC", np.array([2, 2])), ("NHWC", np.int32(2))])
def test_spatial_pair_valid_forms_accepted(fmt, strides):
    """Contrast with the errors above: the accepted spellings do not raise."""
    b = base(fmt)
    want = (2, 2, 3, 6) if fmt == "NHWC" else (2, 6, 2, 3)
    assert dwconv.output_shape(b.x.shape, b.w.shape, strides, data_format=fmt) == want
    assert dwconv.depthwise_conv2d(b.x, b.w, strides, data_format=fmt, dilations=strides).shape \
        == dwconv.output_shape(b.x.shape, b.w.shape, strides, data_format=fmt, dilations=strides)


# ---------------------------------------------------------------------------
# padding


@pytest.mark.parametrize("fn", FUNCS)
@pytest.mark.parametrize("value", ["FULL", "", "SAMEE", "valid ", "causal"])
def test_padding_unknown_string(fn, value):
    check_raises(fn, ValueError, esc(f"`padding` must be 'VALID', 'SAME' or explicit amounts, "
                                     f"got {value!r}"), padding=value)


@pytest.mark.parametrize("fn", FUNCS)
@pytest.mark.parametrize("fmt, value", [
    ("NHWC", -1), ("NHWC", (1, -2)), ("NHWC", ((0, -1), (1, 1))), ("NHWC", [[1, 1], [-3, 0]]),
    ("NHWC", [[0, 0], [1, -1], [1, 1], [0, 0]]), ("NCHW", [[0, 0], [0, 0], [1, 1], [-1, 1]]),
], ids=lambda v: repr(v).replace(" ", ""))
def test_padding_negative(fn, fmt, value):
    check_raises(fn, ValueError, esc(f"`padding` must be non-negative, got {value!r}"),
                 base(fmt), padding=value)


MALFORMED_PADDING = [1.5, None, True, (1, 2, 3), (1, 2, 3, 4), ((1, 2, 3), (1, 2)), ((1, 2),),
                     [[0, 0], [1, 1], [1, 1]], ((1, 2), (1.5, 2)), ("SAME", "SAME"),
                     [[0, 0], [1, 1], [1, 1], [0, 0], [0, 0]], (1, (2, 3)), b"SAME",
                     [[0, 0, 0], [1, 1, 1]], {"top": 1}]


@pytest.mark.parametrize("fn", FUNCS)
@pytest.mark.parametrize("value", MALFORMED_PADDING, ids=lambda v: repr(v).replace(" ", ""))
def test_padding_malformed(fn, value):
    check_raises(fn, ValueError, esc("`padding` must be 'VALID', 'SAME', an int, (ph, pw), "
                                     "((top, bottom), (left, right)) or TensorFlow's 4 pairs in "
                                     f"data_format order; got {value!r}"), padding=value)


@pytest.mark.parametrize("fn", FUNCS)
@pytest.mark.parametrize("fmt, value", [
    ("NHWC", [[1, 0], [1, 1], [1, 1], [0, 0]]),      # batch
    ("NHWC", [[0, 0], [1, 1], [1, 1], [0, 1]]),      # channels
    ("NHWC", [[0, 0], [0, 0], [1, 1], [1, 1]]),      # the NCHW spelling given with NHWC
    ("NCHW", [[0, 2], [0, 0], [1, 1], [1, 1]]),      # batch
    ("NCHW", [[0, 0], [1, 0], [1, 1], [1, 1]]),      # channels
    ("NCHW", [[0, 0], [1, 1], [1, 1], [0, 0]]),      # the NHWC spelling given with NCHW
], ids=lambda v: repr(v).replace(" ", ""))
def test_padding_tf_explicit_nonzero_batch_or_channels(fn, fmt, value):
    check_raises(fn, ValueError, esc("`padding` in TensorFlow's explicit form must be [0, 0] for "
                                     f"the batch and channel dimensions ({fmt} order); got "
                                     f"{value!r}"), base(fmt), padding=value)


# ---------------------------------------------------------------------------
# data_format


@pytest.mark.parametrize("fn", FUNCS)
@pytest.mark.parametrize("value", ["NCWH", "", "channels_middle", "NHW", 1, b"NHWC", ("NHWC",)],
                         ids=repr)
def test_unknown_data_format(fn, value):
    check_raises(fn, ValueError, esc("`data_format` must be 'NHWC', 'NCHW', 'channels_last' or "
                                     f"'channels_first', got {value!r}"), data_format=value)


# ---------------------------------------------------------------------------
# the kernel does not fit


@pytest.mark.parametrize("fn", FUNCS)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("k, dilations, padding, span, padded", [
    ((7, 3), 1, "VALID", "7x3", "6x7"),          # taller than the input
    ((3, 8), 1, "VALID", "3x8", "6x7"),          # wider
    ((3, 3), 4, "VALID", "9x9", "6x7"),          # only the dilated kernel is too big
    ((3, 3), (1, 4), 0, "3x9", "6x7"),
    ((9, 1), 1, 1, "9x1", "8x9"),                # too big even with the padding
    ((2, 2), (6, 1), ((0, 0), (1, 0)), "7x2", "6x8"),
])
def test_kernel_larger_than_padded_input(fn, fmt, k, dilations, padding, span, padded):
    b = base(fmt)
    w = np.ones(k + (3, 2))
    # (filter_format="tf": NCHW (9, 1, 3, 2) filters could be PyTorch's 3x2 kernels too)
    check_raises(fn, ValueError, esc(f"`{W_NAME[fn]}`: the kernel {k[0]}x{k[1]}", f"spans {span}",
                                     f"larger than the padded input {padded}", "`padding`"),
                 b, w=w, dilations=dilations, padding=padding, filter_format="tf")


@pytest.mark.parametrize("fn", FUNCS)
def test_empty_kernel(fn):
    check_raises(fn, ValueError, esc(f"`{W_NAME[fn]}` must have a kernel of at least 1x1, got "
                                     "shape (0, 3, 3, 2)"), w=np.ones((0, 3, 3, 2)))


@pytest.mark.parametrize("fn", COMPUTE)
@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("axis, shape", [("height", (1, 0, 3, 3)), ("width", (1, 4, 0, 3))])
def test_padding_mode_on_empty_axis(fn, mode, axis, shape):
    """Only zeros can pad an axis with no values; the others would read outside the image."""
    check_raises(fn, ValueError, esc(f"`padding_mode`={mode!r} cannot pad the empty {axis} of `{X_NAME[fn]}`",
                                     f"{shape}"), x=np.ones(shape), padding=2, padding_mode=mode)


# ---------------------------------------------------------------------------
# shapes of x / filters


@pytest.mark.parametrize("fn", ["forward", "filter", "grad"])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("shape", [(6, 7, 3), (1, 2, 6, 7, 3), (7,), ()])
def test_x_wrong_ndim(fn, fmt, shape):
    x = np.ones(shape)
    hint = "; for one image, add the batch axis: x[None]" if len(shape) == 3 else ""
    check_raises(fn, ValueError, esc(f"`x` must be 4-D ({', '.join(fmt)}), got shape {shape}{hint}") + "$",
                 base(fmt), x=x)


@pytest.mark.parametrize("fn", ["forward", "filter", "grad"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_data_in_the_other_layout_suggests_data_format(fn, fmt):
    """NCHW data passed as NHWC (and the reverse): the channels the filters have sit on the other
    layout's channel axis, and the message says which data_format to pass."""
    other = "NCHW" if fmt == "NHWC" else "NHWC"
    b = base(other)
    check_raises(fn, ValueError, esc(f"`x` has {b.x.shape[-1] if fmt == 'NHWC' else b.x.shape[1]} (shape "
                                     f"{b.x.shape}, {fmt}); if `x` is {other}, pass data_format={other!r}") + "$",
                 b, data_format=fmt)


@pytest.mark.parametrize("fn", ["input", "output_shape"])
@pytest.mark.parametrize("shape", [(6, 7, 3), (1, 2, 6, 7, 3), (2, -1, 7, 3), (2, 6.0, 7, 3),
                                   (2, 6, 7, True), None, "2673", 4, [2, 6, 7, [3]]])
def test_input_shape_bad(fn, shape):
    check_raises(fn, ValueError, esc("`input_shape` must be 4 non-negative ints, got"), x=shape)


@pytest.mark.parametrize("fn", ["forward", "input", "grad"])
@pytest.mark.parametrize("shape", [(3, 3), (3, 3, 3, 2, 1), (3,), ()])
def test_filters_wrong_ndim(fn, shape):
    check_raises(fn, ValueError, esc(f"`filters` must be (kh, kw, C, M) or (kh, kw, C), got shape "
                                     f"{shape}"), w=np.ones(shape))


@pytest.mark.parametrize("fn", ["filter", "output_shape"])
@pytest.mark.parametrize("shape", [(3, 3), (3, 3, 3, 2, 1), (3, -3, 3, 2), (3, 3, 3.0, 2), None,
                                   "3332", 3])
def test_filter_shape_bad(fn, shape):
    check_raises(fn, ValueError, esc("`filter_shape` must be 3 or 4 non-negative ints, got"),
                 w=shape)


@pytest.mark.parametrize("fn", FUNCS)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("fc", [1, 2, 4, 7, 6])
def test_channel_mismatch(fn, fmt, fc):
    # NCHW x is (2, 3, 6, 7): 7 (the last axis) and 6 must be refused there too
    b = base(fmt)
    w = np.ones((3, 3, fc, 2))
    other = (7 if fmt == "NCHW" else 6) if fc in (6, 7) else None  # (the other layout's channel axis)
    hint = "" if other != fc else f"; if `{X_NAME[fn]}` is {'NHWC' if fmt == 'NCHW' else 'NCHW'}"
    check_raises(fn, ValueError, esc(f"`{W_NAME[fn]}` has {fc} input channels (shape {w.shape})",
                                     f"`{X_NAME[fn]}` has 3 (shape {b.x.shape}, {fmt}){hint}"),
                 b, w=w)


@pytest.mark.parametrize("fn", ["forward", "filter", "grad"])
def test_x_none(fn):
    check_raises(fn, TypeError, esc("`x` must be an array, got None"), x=None)


@pytest.mark.parametrize("fn", ["forward", "input", "grad"])
def test_filters_none(fn):
    check_raises(fn, TypeError, esc("`filters` must be an array, got None"), w=None)


@pytest.mark.parametrize("fn", ["input", "filter", "grad"])
def test_grad_output_none(fn):
    check_raises(fn, TypeError, esc("`grad_output` must be an array, got None"), dy=None)


RAGGED = [[[[1.0]]], [[[1.0, 2.0]]]]


@pytest.mark.parametrize("fn", ["forward", "filter", "grad"])
def test_x_ragged(fn):
    check_raises(fn, ValueError, esc("`x` must be a rectangular array; got a ragged sequence"),
                 x=RAGGED)


@pytest.mark.parametrize("fn", ["forward", "input", "grad"])
def test_filters_ragged(fn):
    check_raises(fn, ValueError, esc("`filters` must be a rectangular array; got a ragged sequence"),
                 w=[[[[1.0, 2.0]]], [[[1.0]]]])


@pytest.mark.parametrize("fn", ["input", "filter", "grad"])
def test_grad_output_ragged(fn):
    check_raises(fn, ValueError,
                 esc("`grad_output` must be a rectangular array; got a ragged sequence"),
                 dy=RAGGED)


# ---------------------------------------------------------------------------
# dtypes


def _typed(shape, kind):
    if kind == "object":
        a = np.empty(shape, dtype=object)
        a[...] = 1.0
        return a
    if kind == "str":
        return np.full(shape, "a")
    if kind == "bytes":
        return np.full(shape, b"a")
    if kind == "datetime":
        return np.zeros(shape, dtype="datetime64[s]")
    return np.ones(shape, dtype=kind)


BAD_DTYPES = ["object", "str", "bytes", "complex64", "complex128", "int8", "int64", "uint32", "uint64",
              "bool", "datetime"]
TAKES = "; dwconv takes float16, float32, float64 or integer images (uint8, uint16, int16, int32)"
if np.dtype(np.longdouble).itemsize not in (4, 8):
    BAD_DTYPES.append("longdouble")


@pytest.mark.parametrize("fn", ["forward", "filter", "grad"])
@pytest.mark.parametrize("kind", BAD_DTYPES)
def test_x_bad_dtype(fn, kind):
    x = _typed(base().x.shape, kind)
    check_raises(fn, TypeError, esc(f"`x` has dtype {x.dtype}{TAKES}"), x=x)


@pytest.mark.parametrize("fn", ["forward", "input", "grad"])
@pytest.mark.parametrize("kind", BAD_DTYPES)
def test_filters_bad_dtype(fn, kind):
    w = _typed(base().w.shape, kind)
    check_raises(fn, TypeError, esc(f"`filters` has dtype {w.dtype}{TAKES}"), w=w)


@pytest.mark.parametrize("fn", ["input", "filter", "grad"])
@pytest.mark.parametrize("kind", BAD_DTYPES)
def test_grad_output_bad_dtype(fn, kind):
    dy = _typed(base().dy.shape, kind)
    check_raises(fn, TypeError, esc(f"`grad_output` has dtype {dy.dtype}{TAKES}"), dy=dy)


@pytest.mark.parametrize("kind", BAD_DTYPES)
def test_bias_bad_dtype(kind):
    bias = _typed((6,), kind)
    check_raises("forward", TypeError, esc(f"`bias` has dtype {bias.dtype}{TAKES}"), bias=bias)


def test_python_int_lists_are_int64():
    """Nested lists of Python ints become int64 arrays and are refused like them."""
    x = np.ones((2, 6, 7, 3), dtype=int).tolist()
    check_raises("forward", TypeError, esc("`x` has dtype int64"), x=x)


# ---------------------------------------------------------------------------
# bias


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("shape", [(3,), (2,), (7,), (6, 1), (1, 6), (), (0,)])
def test_bias_wrong_shape(fmt, shape):
    bias = np.ones(shape)
    check_raises("forward", ValueError, esc(f"`bias` must have shape (6,) (C*M), got {shape}"),
                 base(fmt), bias=bias)


def test_bias_ragged():
    check_raises("forward", ValueError, esc("`bias` must be a rectangular array"),
                 bias=[1.0, [2.0, 3.0]])


# ---------------------------------------------------------------------------
# grad_output


@pytest.mark.parametrize("fn", ["input", "filter", "grad"])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("shape", [(2, 5, 5, 6), (2, 4, 5, 3), (1, 4, 5, 6), (2, 4, 5), (2, 6, 4, 5)])
def test_grad_output_wrong_shape(fn, fmt, shape):
    b = base(fmt)
    if shape == b.dy.shape:
        shape = shape[::-1]
    dy = np.ones(shape)
    check_raises(fn, ValueError, esc(f"`grad_output` has shape {shape}", str(b.dy.shape)), b, dy=dy)


# ---------------------------------------------------------------------------
# out=


def _out_shape(fn, b):
    return {"forward": b.dy.shape, "input": b.x.shape, "filter": b.w.shape}[fn]


@pytest.mark.parametrize("fn", WITH_OUT)
@pytest.mark.parametrize("fmt", FORMATS)
def test_out_wrong_shape(fn, fmt):
    b = base(fmt)
    good = _out_shape(fn, b)
    for shape in [good[:-1] + (good[-1] + 1,), good[::-1], good + (1,), (int(np.prod(good)),)]:
        out = np.full(shape, SENTINEL)
        check_raises(fn, ValueError, esc(f"`out` has shape {shape}, expected {good}"), b, out=out)
        assert (out == SENTINEL).all()


@pytest.mark.parametrize("fn", WITH_OUT)
@pytest.mark.parametrize("dtype, out_dtype", [(np.float64, np.float32), (np.float32, np.float64),
                                              (np.float64, np.int64), (np.float32, np.complex64),
                                              (np.float64, ">f8")])
def test_out_wrong_dtype(fn, dtype, out_dtype):
    b = base(dtype=dtype)
    out = np.full(_out_shape(fn, b), SENTINEL).astype(out_dtype)
    snap = out.copy()
    check_raises(fn, ValueError, esc(f"`out` has dtype {out.dtype}, expected {np.dtype(dtype)}"),
                 b, out=out)
    assert np.array_equal(out, snap)


def test_out_dtype_follows_mixed_inputs():
    """float32 x with float64 filters computes in float64: a float32 out is refused."""
    b = base()
    x32 = b.x.astype(np.float32)
    out = np.full(b.dy.shape, SENTINEL, np.float32)
    check_raises("forward", ValueError, esc("`out` has dtype float32, expected float64"), b, x=x32,
                 out=out)
    assert (out == SENTINEL).all()


@pytest.mark.parametrize("fn", WITH_OUT)
@pytest.mark.parametrize("layout", ["fortran", "strided", "transposed"])
def test_out_not_c_contiguous(fn, layout):
    b = base()
    shape = _out_shape(fn, b)
    if layout == "fortran":
        out = np.full(shape, SENTINEL, order="F")
    elif layout == "strided":
        out = np.full((2 * shape[0],) + shape[1:], SENTINEL)[::2]
    else:
        out = np.full(shape[::-1], SENTINEL).T
    assert out.shape == shape and not out.flags.c_contiguous
    check_raises(fn, ValueError, esc("`out` must be C-contiguous"), b, out=out)
    assert (out == SENTINEL).all()


@pytest.mark.parametrize("fn", WITH_OUT)
def test_out_read_only(fn):
    b = base()
    out = np.full(_out_shape(fn, b), SENTINEL)
    out.setflags(write=False)
    check_raises(fn, ValueError, esc("`out` is read-only"), b, out=out)
    assert (out == SENTINEL).all()


@pytest.mark.parametrize("fn", WITH_OUT)
@pytest.mark.parametrize("kind", ["list", "tuple", "memoryview", "matrix_like_float"])
def test_out_not_ndarray(fn, kind):
    b = base()
    arr = np.full(_out_shape(fn, b), SENTINEL)
    out = {"list": lambda: arr.tolist(), "tuple": lambda: tuple(arr.ravel()),
           "memoryview": lambda: memoryview(arr), "matrix_like_float": lambda: 1.0}[kind]()
    name = type(out).__name__
    check_raises(fn, TypeError, esc(f"`out` must be a numpy.ndarray, got {name}"), b, out=out)
    assert (arr == SENTINEL).all()


def test_out_overlaps_x_forward():
    # 1x1 kernel, M = 1, VALID: the output has x's shape and dtype
    b = base()
    w = np.ones((1, 1, 3, 1))
    x = b.x.copy()
    check_raises("forward", ValueError, esc("`out` overlaps `x`"), b, x=x, w=w, out=x)
    assert np.array_equal(x, b.x)


def test_out_overlaps_filters_and_bias_forward():
    b = base()
    y_size = int(np.prod(b.dy.shape))
    buf = np.full(y_size + 100, SENTINEL)
    w = buf[:54].reshape(3, 3, 3, 2)
    w[...] = b.w
    out = buf[10:10 + y_size].reshape(b.dy.shape)
    check_raises("forward", ValueError, esc("`out` overlaps `filters`"), b, w=w, out=out)
    assert np.array_equal(w, b.w)
    buf = np.full(y_size + 6, SENTINEL)
    bias = buf[-6:]
    out = buf[6:].reshape(b.dy.shape)
    check_raises("forward", ValueError, esc("`out` overlaps `bias`"), b, bias=bias, out=out)
    assert (buf == SENTINEL).all()


def test_out_overlaps_backprop_input():
    b = base()
    # 1x1 kernel, M = 1: grad_output and the result both have x's shape
    w = np.ones((1, 1, 3, 1))
    dy = b.x.copy()
    check_raises("input", ValueError, esc("`out` overlaps `grad_output`"), b, w=w, dy=dy, out=dy)
    assert np.array_equal(dy, b.x)
    size = int(np.prod(b.x.shape))
    buf = np.full(size + 54, SENTINEL)
    w = buf[size - 4:size + 50].reshape(3, 3, 3, 2)
    w[...] = b.w
    out = buf[:size].reshape(b.x.shape)
    check_raises("input", ValueError, esc("`out` overlaps `filters`"), b, w=w, out=out)
    assert np.array_equal(w, b.w)


def test_out_overlaps_backprop_filter():
    b = base()
    xs = int(np.prod(b.x.shape))
    buf = np.zeros(xs)
    x = buf.reshape(b.x.shape)
    x[...] = b.x
    out = buf[:54].reshape(b.w.shape)
    check_raises("filter", ValueError, esc("`out` overlaps `x`"), b, x=x, out=out)
    assert np.array_equal(x, b.x)
    buf = np.zeros(int(np.prod(b.dy.shape)))
    dy = buf.reshape(b.dy.shape)
    dy[...] = b.dy
    out = buf[-54:].reshape(b.w.shape)
    check_raises("filter", ValueError, esc("`out` overlaps `grad_output`"), b, dy=dy, out=out)
    assert np.array_equal(dy, b.dy)


# ---------------------------------------------------------------------------
# num_threads


@pytest.mark.parametrize("fn", COMPUTE)
def test_num_threads_zero(fn):
    check_raises(fn, ValueError, esc("`num_threads` must not be 0"), num_threads=0)


@pytest.mark.parametrize("fn", COMPUTE)
@pytest.mark.parametrize("value", ["2", 1.5, 2.0, True, False, [2], np.float64(2)],
                         ids=repr)
def test_num_threads_not_int(fn, value):
    check_raises(fn, TypeError, esc(f"`num_threads` must be an int or None, got {value!r}"),
                 num_threads=value)


@pytest.mark.parametrize("fn", COMPUTE)
def test_num_threads_too_negative(fn):
    max_threads = dwconv._kernels.max_threads()
    for value in (-(max_threads + 1), -(max_threads + 5), -1000):
        check_raises(fn, ValueError, esc(f"`num_threads`={value} leaves no thread (the maximum is "
                                         f"{max_threads})"), num_threads=value)


@pytest.mark.parametrize("fn", COMPUTE)
def test_num_threads_valid_negative(fn):
    """-max_threads means max+1-max = 1 thread: valid."""
    b = base()
    call(fn, b.x, b.w, b.dy, num_threads=-dwconv._kernels.max_threads())
    call(fn, b.x, b.w, b.dy, num_threads=np.int64(1))


@pytest.mark.parametrize("fn", COMPUTE)
def test_num_threads_beyond_c_int(fn):
    """A count that does not fit a C int is refused naming `num_threads` (or clamped), never a
    bare OverflowError from the Cython boundary."""
    b = base()
    try:
        call(fn, b.x, b.w, b.dy, num_threads=2 ** 31)
    except (ValueError, TypeError) as exc:
        assert "`num_threads`" in str(exc), repr(exc)


def test_num_threads_huge_does_not_crash():
    """num_threads=100000 on a problem big enough to be shared must not kill the interpreter
    (run in a subprocess: it used to segfault inside libgomp)."""
    import subprocess
    import sys
    code = (
        "import numpy as np, dwconv\n"
        "x = np.ones((1, 64, 64, 8), np.float32); w = np.ones((3, 3, 8, 1), np.float32)\n"
        "try:\n"
        "    dwconv.depthwise_conv2d(x, w, 1, 'SAME', num_threads=100000)\n"
        "except (ValueError, TypeError) as exc:\n"
        "    assert '`num_threads`' in str(exc), exc\n"
        "print('done')\n")
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=root, env=env)
    assert proc.returncode == 0 and "done" in proc.stdout, (proc.returncode, proc.stderr[-500:])


# ---------------------------------------------------------------------------
# results too big for the machine


def test_result_too_big_backprop_input():
    """The result is refused before allocation (message: the shape and the size)."""
    big = (2 ** 20, 2 ** 10, 2 ** 10, 64)
    dy = np.broadcast_to(np.float32(0), big)          # no memory behind it
    with pytest.raises(ValueError, match=esc(f"`input_shape` asks for a result of shape {big}, which would need",
                                             "more than this machine has")):
        dwconv.depthwise_conv2d_backprop_input(big, np.zeros((1, 1, 64), np.float32), dy)
    # beyond the address space: (2**40 * 2**20 * 2**10) float32
    huge = (2 ** 40, 2 ** 20, 2 ** 10, 1)
    dy = np.broadcast_to(np.float32(0), (2 ** 40, 1, 1, 1))
    with pytest.raises(ValueError, match=esc(f"`input_shape` asks for a result of shape {huge}, which would need")):
        dwconv.depthwise_conv2d_backprop_input(huge, np.zeros((1, 1, 1), np.float32), dy,
                                               strides=2 ** 20)
    assert dwconv.output_shape(huge, (1, 1, 1), 2 ** 20) == (2 ** 40, 1, 1, 1)


def test_result_too_big_forward():
    big = (2 ** 20, 2 ** 10, 2 ** 10, 64)
    x = np.broadcast_to(np.float32(0), big)
    with pytest.raises(ValueError, match=esc(f"`x` asks for a result of shape {big}, which would need",
                                             "more than this machine has; dwconv.dask computes it chunk by chunk")):
        dwconv.depthwise_conv2d(x, np.zeros((1, 1, 64), np.float32))
    with pytest.raises(ValueError, match=esc(f"`x` asks for a result of shape {big}, which would need")):
        dwconv.depthwise_conv2d_grad(x, np.zeros((1, 1, 64), np.float32), x)


# ---------------------------------------------------------------------------
# error precedence: argument errors come before `out` errors, so out is untouched
# even when it is wrong too


def test_argument_error_before_out_error():
    b = base()
    out = np.full((1, 1, 1, 1), SENTINEL, np.float32)
    check_raises("forward", ValueError, esc("`strides` must be positive"), b, strides=0, out=out)
    check_raises("input", ValueError, esc("`padding` must be non-negative"), b, padding=-1, out=out)
    check_raises("filter", ValueError, esc("`data_format` must be"), b, data_format="X", out=out)
    assert (out == SENTINEL).all()


# ---------------------------------------------------------------------------
# padding_mode and dtype, in every function that takes them: before anything is written


@pytest.mark.parametrize("fn", COMPUTE)
@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(padding_mode="mirror"), ValueError, esc("`padding_mode` must be one of 'zeros'", "got 'mirror'")),
    (dict(padding_mode=None), ValueError, esc("`padding_mode` must be one of", "got None")),
    (dict(padding_mode="Zeros"), ValueError, esc("`padding_mode` must be one of", "got 'Zeros'")),
    (dict(dtype=np.int8), TypeError, esc("`dtype` must be float16, float32", "got <class 'numpy.int8'>")),
    (dict(dtype="bogus"), TypeError, esc("`dtype` must be float16, float32", "got 'bogus'")),
    (dict(dtype=np.complex64), TypeError, esc("`dtype` must be float16, float32", "got")),
])
def test_feature_arguments(fn, kwargs, exc, pattern):
    check_raises(fn, exc, pattern, **kwargs)


@pytest.mark.parametrize("fn", WITH_OUT)
def test_out_of_another_dtype_than_requested(fn):
    """`out` must have the dtype `dtype=` asks for."""
    b = base()
    shape = {"forward": b.dy.shape, "input": b.x.shape, "filter": b.w.shape}[fn]
    out = np.full(shape, SENTINEL, np.float64)
    check_raises(fn, ValueError, esc("`out` has dtype float64, expected float16"), b, dtype=np.float16, out=out)
    assert (out == SENTINEL).all()


# ---------------------------------------------------------------------------
# messages that say what to do


class RefusingTensor:
    """What NumPy meets in a PyTorch tensor that requires grad, or one in bfloat16."""

    def __init__(self, requires_grad=False, dtype="torch.float32"):
        self.requires_grad, self.dtype = requires_grad, dtype

    def __array__(self, dtype=None, copy=None):
        raise (RuntimeError("Can't call numpy() on Tensor that requires grad.") if self.requires_grad
               else TypeError("Got unsupported ScalarType BFloat16"))


@pytest.mark.parametrize("fn, name", [("forward", "x"), ("forward", "filters"), ("grad", "grad_output")])
@pytest.mark.parametrize("tensor, fix", [
    (RefusingTensor(requires_grad=True), r"\.detach\(\) it"),
    (RefusingTensor(dtype="torch.bfloat16"), r"convert it to float32 with \.float\(\)"),
])
def test_framework_tensors_numpy_refuses_say_the_fix(fn, name, tensor, fix):
    b = base()
    arrays = {"x": b.x, "w": b.w, "dy": b.dy, {"filters": "w", "grad_output": "dy"}.get(name, name): tensor}
    check_raises(fn, TypeError, rf"`{name}` is a test_errors\.RefusingTensor that NumPy cannot take as it is "
                                rf"\(.*\): {fix}", b, **arrays)


def test_pytorch_tensors_say_the_fix():
    torch = pytest.importorskip("torch")
    w = np.ones((3, 3, 2), np.float32)
    with pytest.raises(TypeError, match=r"`x` is a torch\.Tensor that NumPy cannot take .*\.detach\(\)"):
        dwconv.depthwise_conv2d(torch.ones((1, 4, 4, 2), requires_grad=True), w)
    with pytest.raises(TypeError, match=r"`x` is a torch\.Tensor .*\.float\(\)"):
        dwconv.depthwise_conv2d(torch.ones((1, 4, 4, 2), dtype=torch.bfloat16), w)
    # a tensor NumPy takes as it is works
    np.testing.assert_array_equal(dwconv.depthwise_conv2d(torch.ones((1, 4, 4, 2)), w), np.full((1, 2, 2, 2), 9))


@pytest.mark.skipif(np.dtype(np.longdouble).itemsize == 8, reason="long double is float64 here")
def test_float_dtypes_dwconv_does_not_compute_say_convert():
    x = np.ones((1, 4, 4, 2), np.longdouble)
    check_raises("forward", TypeError, esc(f"`x` has dtype {x.dtype}", "convert it first, e.g. .astype(numpy.float32)"),
                 x=x, w=np.ones((3, 3, 2, 1)))


def test_dwconv_dask_without_dask_says_what_to_install(monkeypatch):
    import importlib
    import sys

    for module in [m for m in sys.modules if m == "dask" or m.startswith("dask.") or m == "dwconv.dask"]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "dask", None)  # what `import dask` meets when it is not installed
    with pytest.raises(ImportError, match=r"dwconv\.dask needs dask's arrays.*pip install \"dask\[array\]\""):
        importlib.import_module("dwconv.dask")


# The portable level's name: "neon" on AArch64, where its 16-byte vectors are NEON's, "baseline"
# elsewhere (SSE2 on x86-64, followed by the x86 levels).
PORTABLE = "neon" if platform.machine().lower() in ("aarch64", "arm64") else "baseline"
LEVELS = ("neon",) if PORTABLE == "neon" else ("baseline", "avx2", "avx512")


def test_instruction_set_levels_are_named_for_the_machine():
    assert dwconv._kernels.ISA_NAMES == LEVELS
    assert dwconv.supported_isas()[0] == PORTABLE


def test_use_isa_takes_any_case():
    from dwconv import _kernels

    before = _kernels.active_isa()
    try:
        dwconv.use_isa(PORTABLE.upper())
        assert _kernels.active_isa() == PORTABLE
    finally:
        dwconv.use_isa(before)
    with pytest.raises(ValueError, match=rf"`name` must be one of {', '.join(LEVELS)} \(any case\), got 'sse9'"):
        dwconv.use_isa("sse9")


@pytest.mark.parametrize("value, ok", [(PORTABLE.upper(), True), (f" {PORTABLE.title()} ", True), ("avx3", False),
                                       ("x", False)])
def test_dwconv_isa_environment_variable(value, ok):
    from fresh_python import fresh_python

    run = fresh_python("import dwconv._kernels as k, dwconv; print(k.active_isa())", DWCONV_ISA=value, timeout=120)
    if ok:
        assert run.returncode == 0 and run.stdout.split() == [PORTABLE], run.stderr[-800:]
    else:
        assert run.returncode != 0
        assert re.search(rf"ValueError: DWCONV_ISA={value!r} is not an instruction-set level: set it to one of "
                         rf"{PORTABLE}\b.*\(any case\), or unset it", run.stderr), run.stderr[-800:]
