"""Differential fuzzing of the forward pass and both gradients against ``tests/reference.py``.

Hypothesis draws whole convolutions: layout, batch (0 included), 1-pixel and wide images, channel
counts around every vector width and channel block, kernels larger than the image with enough
padding, strides, dilations, every padding form and mode, multipliers, 3-D and 4-D filters, float
and integer dtypes, ``dtype=``, bias, activations, ``out=``, non-contiguous inputs, thread counts
and the instruction-set level. Each result must lie within a rounding-error bound derived from its
dtypes and the number of products summed into it; inputs must come back unchanged.

The number of examples comes from the hypothesis profile (tests/conftest.py): a bounded one by
default, ``DWCONV_FUZZ=long`` for long local runs.
"""

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402

import dwconv  # noqa: E402
from dwconv import _config  # noqa: E402
from dwconv._names import ACTIVATIONS  # noqa: E402
from reference import (activate, conv2d_backprop_filter, conv2d_backprop_input,  # noqa: E402
                       conv2d_forward, normalize_pair, resolve_padding)
from sweep import MODES, tf4_padding, to_format  # noqa: E402

FLOATS = (np.float16, np.float32, np.float64)
IMAGES = (np.uint8, np.uint16, np.int16, np.int32)
PADDING_FORMS = ("VALID", "SAME", "int", "pair", "pairs", "TF4")
# the largest slope of each activation: how much it can magnify an error of its argument
SLOPES = {None: 1, "callable": 1, **{name: activation.slope for name, activation in ACTIVATIONS.items()}}
# channel counts: small ones, and those around vector widths (4, 8, 16 lanes) and the channel blocks
# (64 in NHWC, 128 on the packed NCHW path)
CHANNELS = st.one_of(st.integers(1, 9), st.sampled_from([15, 16, 17, 31, 32, 33, 63, 64, 65, 70, 130, 257]))


@st.composite
def axes(draw, form, wide):
    """(n, k, s, d, (before, after)) for the two spatial axes, the kernel always fitting."""
    common = draw(st.integers(0, 6))  # the amount of the `int` form, shared by both axes
    result = []
    for _ in range(2):
        n = draw(st.integers(1, 40) if wide else st.integers(1, 12))
        s, d = draw(st.integers(1, 4)), draw(st.integers(1, 3))
        if form == "VALID":
            pads = (0, 0)
        elif form == "int":
            pads = (common, common)
        elif form == "pair":
            pads = (draw(st.integers(0, 6)),) * 2
        else:  # pairs, TF4 -- also drawn for SAME, then ignored: it only bounds the kernel
            pads = (draw(st.integers(0, 8)), draw(st.integers(0, 8)))
        k = draw(st.integers(1, min(9, (n + sum(pads) - 1) // d + 1)))
        result.append((n, k, s, d, pads))
    return result


def padding_argument(form, pads, data_format):
    (t, b), (l, r) = pads
    return {"VALID": "VALID", "SAME": "SAME", "int": t, "pair": (t, l), "pairs": ((t, b), (l, r)),
            "TF4": tf4_padding(data_format, (t, b), (l, r))}[form]


@st.composite
def convolutions(draw):
    """Everything a call needs, except the arrays' values (drawn from a seed, not shrunk)."""
    form = draw(st.sampled_from(PADDING_FORMS))
    wide = draw(st.booleans())
    (H, kh, sh, dh, pv), (W, kw, sw, dw, ph) = draw(axes(form, wide))
    data_format = draw(st.sampled_from(["NHWC", "NCHW"]))
    x_dtype = draw(st.sampled_from(FLOATS + IMAGES))
    dtype = draw(st.sampled_from((None,) + FLOATS))
    M = draw(st.integers(1, 4))
    return dict(
        N=draw(st.sampled_from([1, 2, 3] * 3 + [0])),  # an empty batch one time in ten
        H=H, W=W, C=draw(CHANNELS), M=M, kernel=(kh, kw),
        filter_3d=M == 1 and draw(st.booleans()),
        strides=draw(st.sampled_from([(sh, sw), [1, sh, sw, 1] if data_format == "NHWC" else [1, 1, sh, sw]])),
        dilations=(dh, dw), padding=padding_argument(form, (pv, ph), data_format), data_format=data_format,
        padding_mode=draw(st.sampled_from(MODES)), x_dtype=x_dtype,
        w_dtype=draw(st.sampled_from(FLOATS)), dy_dtype=draw(st.sampled_from(FLOATS)), dtype=dtype,
        bias=draw(st.booleans()), activation=draw(st.sampled_from((None, "callable") + tuple(ACTIVATIONS))),
        use_out=draw(st.booleans()), strided=draw(st.booleans()),
        num_threads=draw(st.sampled_from([None, 1, 2])), isa=draw(st.sampled_from(dwconv.supported_isas())),
        seed=draw(st.integers(0, 2 ** 32 - 1)))


def image(rng, shape, dtype):
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -2 ** 20), min(info.max, 2 ** 20), shape, endpoint=True).astype(dtype)


def maybe_strided(a, strided):
    """`a`, or the same values as a non-contiguous view."""
    return np.repeat(a, 2, axis=-1)[..., ::2] if strided and a.size else a


def result_dtype(requested, data, others=()):
    """The contract's rule: `dtype=` if given, else float64 if any input is, float16 if a data
    input is, else float32."""
    if requested is not None:
        return np.dtype(requested)
    if any(a.dtype == np.float64 for a in (*data, *others)):
        return np.dtype(np.float64)
    return np.dtype(np.float16 if any(a.dtype == np.float16 for a in data) else np.float32)


def assert_within(got, ref, scale, terms, dtype, slope=1):
    """`got` (of `dtype`) equals the float64 `ref` up to rounding. Each result sums at most
    `terms` products, whose absolute values sum to `scale`, in float64 or (for float16 and float32
    results) float32, of unit roundoff u: the sum is off by at most (terms + 2) * u * scale (the
    + 2 for rounding the inputs into it), which an activation magnifies by at most its `slope` and
    to which evaluating it adds a few u of its argument and of its result; then the result is
    rounded into `dtype`."""
    dtype = np.dtype(dtype)
    assert got.dtype == dtype and got.shape == ref.shape, (got.dtype, got.shape, dtype, ref.shape)
    u = np.finfo(np.float64 if dtype == np.float64 else np.float32).eps / 2
    bound = (u * ((terms + 2) * slope * scale + 4 * (scale + np.abs(ref))) + np.finfo(dtype).eps / 2 * np.abs(ref)
             + np.finfo(dtype).tiny)
    with np.errstate(invalid="ignore"):
        err = np.abs(got.astype(np.float64) - ref)
    # IEEE overflow: a result that may lie beyond the dtype's range may be the infinity of its sign
    overflow = np.isinf(got) & (np.sign(got) == np.sign(ref)) & (np.abs(ref) + bound >= np.finfo(dtype).max)
    ok = (err <= bound) | overflow
    assert ok.all(), (f"{(~ok).sum()} of {ok.size} beyond the bound; first at {np.argwhere(~ok)[0]}: got "
                      f"{got[~ok][0]!r}, expected {ref[~ok][0]!r} +- {bound[~ok][0]:.3g}")


class Case:
    """One drawn convolution: its arrays, its arguments, and the reference's view of them."""

    def __init__(self, cfg):
        self.cfg = cfg
        rng = np.random.default_rng(cfg["seed"])
        N, H, W, C, M = cfg["N"], cfg["H"], cfg["W"], cfg["C"], cfg["M"]
        self.fmt = cfg["data_format"]
        self.x = to_format(image(rng, (N, H, W, C), cfg["x_dtype"]), self.fmt)
        # weights of about unit gain, so that float16 sums stay well inside its range
        w = rng.standard_normal((*cfg["kernel"], C, M)) / np.sqrt(cfg["kernel"][0] * cfg["kernel"][1])
        self.w = w.astype(cfg["w_dtype"]).reshape(w.shape[:3] if cfg["filter_3d"] else w.shape)
        self.bias = rng.standard_normal(C * M).astype(cfg["w_dtype"]) if cfg["bias"] else None
        # (the filters are in dwconv's own layout, which NCHW shapes such as (2, 1, 2, 2) must state)
        self.kwargs = dict(data_format=self.fmt, dilations=cfg["dilations"], padding_mode=cfg["padding_mode"],
                           dtype=cfg["dtype"], num_threads=cfg["num_threads"], filter_format="tf")
        self.args = (cfg["strides"], cfg["padding"])
        in_hw = (H, W)
        strides = normalize_pair(cfg["strides"], self.fmt)
        self.ref_args = (strides, resolve_padding(cfg["padding"], in_hw, cfg["kernel"], strides, cfg["dilations"],
                                                  self.fmt), self.fmt, cfg["dilations"])
        self.mode = cfg["padding_mode"]
        y_shape = conv2d_forward(np.zeros(self.x.shape), np.zeros(w.shape), *self.ref_args).shape
        self.dy = rng.standard_normal(y_shape).astype(cfg["dy_dtype"])

    def taps(self):
        return self.cfg["kernel"][0] * self.cfg["kernel"][1]

    def out(self, shape, dtype):
        """A garbage-filled `out` when the case asks for one (every element must be overwritten)."""
        return np.full(shape, np.nan, dtype) if self.cfg["use_out"] else None


def checked_call(case, fn, *args, **kwargs):
    """fn(*args, **kwargs) at the case's instruction-set level; the inputs must come back unchanged."""
    inputs = [a for a in (case.x, case.w, case.dy, case.bias) if a is not None]
    copies = [a.copy() for a in inputs]
    suite_isa = _config.config()["isa"]
    dwconv.use_isa(case.cfg["isa"])
    try:
        result = fn(*args, **kwargs)
    finally:
        dwconv.use_isa(suite_isa)
    for a, before in zip(inputs, copies):
        np.testing.assert_array_equal(a, before, err_msg="an input was modified")
    return result


@given(cfg=convolutions())
def test_forward(cfg):
    case = Case(cfg)
    x = maybe_strided(case.x, cfg["strided"])
    activation = np.negative if cfg["activation"] == "callable" else cfg["activation"]
    ref = conv2d_forward(case.x, case.w, *case.ref_args, bias=case.bias, padding_mode=case.mode)
    scale = conv2d_forward(np.abs(case.x.astype(np.float64)), np.abs(case.w), *case.ref_args,
                           bias=None if case.bias is None else np.abs(case.bias), padding_mode=case.mode)
    ref = -ref if cfg["activation"] == "callable" else activate(ref, activation)
    dtype = result_dtype(cfg["dtype"], (case.x,), (case.w,))
    out = case.out(ref.shape, dtype)
    got = checked_call(case, dwconv.depthwise_conv2d, x, case.w, *case.args, bias=case.bias, activation=activation,
                       out=out, **case.kwargs)
    assert out is None or got is out
    assert_within(got, ref, scale, case.taps() + 1, dtype, SLOPES[cfg["activation"]])


@given(cfg=convolutions())
def test_gradients(cfg):
    """depthwise_conv2d_backprop_input, _backprop_filter and _grad (with the bias gradient)."""
    case = Case(cfg)
    x, dy = maybe_strided(case.x, cfg["strided"]), maybe_strided(case.dy, cfg["strided"])
    kwargs = dict(case.kwargs, padding_mode=case.mode)
    ref_args = dict(padding_mode=case.mode)
    abs_x, abs_w, abs_dy = (np.abs(a.astype(np.float64)) for a in (case.x, case.w, case.dy))

    ref_dx = conv2d_backprop_input(case.x.shape, case.w, case.dy, *case.ref_args, **ref_args)
    dx_scale = conv2d_backprop_input(case.x.shape, abs_w, abs_dy, *case.ref_args, **ref_args)
    # how many products reach one input pixel (more than the taps where a padding mode folds back)
    dx_terms = conv2d_backprop_input(case.x.shape, np.ones(case.w.shape), np.ones(case.dy.shape), *case.ref_args,
                                     **ref_args).max(initial=0)
    ref_dw = conv2d_backprop_filter(case.x, case.w.shape, case.dy, *case.ref_args, **ref_args)
    dw_scale = conv2d_backprop_filter(abs_x, case.w.shape, abs_dy, *case.ref_args, **ref_args)
    dw_terms = case.dy.size // max(1, case.dy.shape[-1 if case.fmt == "NHWC" else 1])  # N * OH * OW
    axes = (0, 1, 2) if case.fmt == "NHWC" else (0, 2, 3)
    ref_db, db_scale = case.dy.astype(np.float64).sum(axis=axes), abs_dy.sum(axis=axes)

    dx_dtype = result_dtype(cfg["dtype"], (case.dy,), (case.w,))
    out = case.out(case.x.shape, dx_dtype)
    got = checked_call(case, dwconv.depthwise_conv2d_backprop_input, case.x.shape, case.w, dy, *case.args, out=out,
                       **kwargs)
    assert out is None or got is out
    assert_within(got, ref_dx, dx_scale, dx_terms, dx_dtype)

    dw_dtype = result_dtype(cfg["dtype"], (case.x, case.dy))
    out = case.out(case.w.shape, dw_dtype)
    got = checked_call(case, dwconv.depthwise_conv2d_backprop_filter, x, case.w.shape, dy, *case.args, out=out,
                       **kwargs)
    assert out is None or got is out
    assert_within(got, ref_dw, dw_scale, dw_terms, dw_dtype)

    grads = checked_call(case, dwconv.depthwise_conv2d_grad, x, case.w, dy, *case.args, **kwargs)
    dtype = result_dtype(cfg["dtype"], (case.x, case.dy), (case.w,))
    assert_within(grads.input, ref_dx, dx_scale, dx_terms, dtype)
    assert_within(grads.filters, ref_dw, dw_scale, dw_terms, dtype)
    assert_within(grads.bias, ref_db, db_scale, dw_terms, dtype)
