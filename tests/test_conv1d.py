"""1-D depthwise convolution (``dwconv.depthwise_conv1d``, its gradients, the causal streaming form,
``dwconv.compat.keras.layers.DepthwiseConv1D``).

The expectations come from ``tests/reference.py``'s float64 2-D reference run on images of height 1
(a ``(N, L, C)`` signal as ``(N, 1, L, C)``, ``(k, C, M)`` filters as ``(1, k, C, M)``); the 1-D
paddings are resolved here from their definitions (TensorFlow's SAME, Keras's causal).
"""
import tracemalloc

import numpy as np
import pytest
from checks import (
    assert_close,
    assert_rounded_close,
    reference_forward,
    reference_gradients,
)
from reference import activate
from sweep import MODES

import dwconv
from dwconv._names import ACTIVATIONS
from dwconv.compat import keras

FORMATS = ("NWC", "NCW")

# (L, k, stride, dilation, padding): every padding form, strides and dilations, a kernel as long
# as the padded input, padding wider than the signal
GEOMETRIES = [
    (11, 3, 1, 1, "VALID"),
    (12, 5, 2, 1, "SAME"),
    (9, 3, 1, 2, "CAUSAL"),
    (10, 4, 3, 2, "causal"),
    (7, 3, 2, 1, 2),
    (6, 5, 1, 1, (3, 1)),
    (5, 7, 1, 1, (2, 0)),
    (4, 3, 1, 1, (6, 5)),
    (1, 1, 1, 1, "SAME"),
]


def resolve_padding(padding, L, k, stride, dilation):
    span = (k - 1) * dilation + 1
    if isinstance(padding, str):
        if padding.upper() == "VALID":
            return 0, 0
        if padding.upper() == "CAUSAL":
            return span - 1, 0
        total = max((-(-L // stride) - 1) * stride + span - L, 0)  # TensorFlow's SAME
        return total // 2, total - total // 2
    return (padding, padding) if isinstance(padding, int) else tuple(padding)


def as_image(a, fmt):
    """A signal in `fmt` as the NHWC / NCHW image of height 1, for the 2-D reference."""
    return a[:, None] if fmt == "NWC" else a[:, :, None]


def as_signal(a, fmt):
    return a[:, 0] if fmt == "NWC" else a[:, :, 0]


def reference(x, w, fmt, L, stride, dilation, padding, mode="zeros", bias=None, activation=None):
    """The float64 reference result and its scale; `w` is (k, C, M)."""
    pad = ((0, 0), resolve_padding(padding, L, w.shape[0], stride, dilation))
    args = ((1, stride), pad, "NHWC" if fmt == "NWC" else "NCHW", (1, dilation))
    ref, scale = reference_forward(as_image(x, fmt), w[None], *args, bias=bias, mode=mode, activation=activation)
    return as_signal(ref, fmt), as_signal(scale, fmt), args


def signal(rng, fmt, L, C=3, N=2, dtype=np.float64):
    x = rng.standard_normal((N, L, C))
    return (x if fmt == "NWC" else np.ascontiguousarray(x.transpose(0, 2, 1))).astype(dtype)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: f"L{g[0]}-k{g[1]}-s{g[2]}-d{g[3]}-p{g[4]}")
def test_forward_and_gradients_match_the_reference(fmt, geometry):
    L, k, stride, dilation, padding = geometry
    rng = np.random.default_rng([GEOMETRIES.index(geometry), fmt == "NCW"])
    mode = MODES[GEOMETRIES.index(geometry) % len(MODES)]
    x, w = signal(rng, fmt, L), rng.standard_normal((k, 3, 2))
    bias = rng.standard_normal(6)
    kwargs = {"data_format": fmt, "dilations": dilation, "padding_mode": mode}
    ref, scale, args = reference(x, w, fmt, L, stride, dilation, padding, mode, bias)
    assert_close(dwconv.depthwise_conv1d(x, w, stride, padding, bias=bias, **kwargs), ref, scale, np.float64, k)

    dy = rng.standard_normal(ref.shape)
    ref_grads = reference_gradients(as_image(x, fmt), w[None], as_image(dy, fmt), *args, mode=mode)
    grads = dwconv.depthwise_conv1d_grad(x, w, dy, stride, padding, **kwargs)
    for got in (grads.input, dwconv.depthwise_conv1d_backprop_input(x.shape, w, dy, stride, padding, **kwargs)):
        assert_close(got, *(as_signal(a, fmt) for a in ref_grads["input"]), np.float64, ref.size)
    for got in (grads.filters, dwconv.depthwise_conv1d_backprop_filter(x, w.shape, dy, stride, padding, **kwargs)):
        assert_close(got, *(a[0] for a in ref_grads["filters"]), np.float64, ref.size, naive_sum=True)
    assert_close(grads.bias, *ref_grads["bias"], np.float64, ref.size, naive_sum=True)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_padding_modes(fmt, mode):
    rng = np.random.default_rng(MODES.index(mode))
    x, w = signal(rng, fmt, 9, C=4, dtype=np.float32), rng.standard_normal((5, 4)).astype(np.float32)
    ref, scale, _ = reference(x, w[..., None], fmt, 9, 1, 2, (5, 3), mode)
    got = dwconv.depthwise_conv1d(x, w, 1, (5, 3), data_format=fmt, dilations=2, padding_mode=mode)
    assert_close(got, ref, scale, np.float32, 5)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_fused_activations_and_bias(activation):
    rng = np.random.default_rng(len(activation))
    x, w, bias = signal(rng, "NWC", 20, dtype=np.float32), rng.standard_normal((3, 3, 2)), rng.standard_normal(6)
    ref, scale, _ = reference(x, w, "NWC", 20, 1, 1, "SAME", bias=bias, activation=activation)
    got = dwconv.depthwise_conv1d(x, w.astype(np.float32), padding="SAME", bias=bias.astype(np.float32),
                                  activation=activation)
    assert_rounded_close(got, ref, scale, np.float32, 4, lipschitz=ACTIVATIONS[activation].slope)


def test_dtype_and_out():
    rng = np.random.default_rng(1)
    x, w = signal(rng, "NCW", 16, dtype=np.float16), rng.standard_normal((3, 3)).astype(np.float32)
    ref, scale, args = reference(x, w[..., None], "NCW", 16, 1, 1, "CAUSAL")
    assert_rounded_close(dwconv.depthwise_conv1d(x, w, padding="CAUSAL", data_format="NCW", filter_format="tf"),
                         ref, scale, np.float16, 3)
    out = np.empty(ref.shape, np.float64)
    got = dwconv.depthwise_conv1d(x, w, padding="CAUSAL", data_format="channels_first", filter_format="keras",
                                  dtype=np.float64, out=out, num_threads=1)
    assert got is out
    assert_close(out, ref, scale, np.float64, 3)
    dy = rng.standard_normal(ref.shape)
    ref_grads = reference_gradients(as_image(x, "NCW"), w[None, ..., None], as_image(dy, "NCW"), *args)
    dx = np.empty(x.shape, np.float32)
    assert dwconv.depthwise_conv1d_backprop_input(x.shape, w, dy, padding="CAUSAL", data_format="NCW",
                                                  filter_format="tf", dtype=np.float32, out=dx) is dx
    assert_close(dx, *(as_signal(a, "NCW") for a in ref_grads["input"]), np.float32, ref.size)
    dw = np.empty(w.shape)
    assert dwconv.depthwise_conv1d_backprop_filter(x, w.shape, dy, padding="CAUSAL", data_format="NCW",
                                                   dtype=np.float64, out=dw) is dw
    assert_close(dw, *(a[0, ..., 0] for a in ref_grads["filters"]), np.float64, ref.size, naive_sum=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_torch_filter_format(fmt):
    """PyTorch's (C*M, 1, k) weights read in place, and the filter gradient comes back in that layout."""
    rng = np.random.default_rng(2)
    x, w = signal(rng, fmt, 13), rng.standard_normal((4, 3, 2))
    w_torch = np.ascontiguousarray(w.transpose(1, 2, 0).reshape(6, 1, 4))
    ref, scale, _ = reference(x, w, fmt, 13, 2, 1, (2, 1))
    got = dwconv.depthwise_conv1d(x, w_torch, 2, (2, 1), data_format=fmt, filter_format="torch")
    assert_close(got, ref, scale, np.float64, 4)
    dy = rng.standard_normal(ref.shape)
    grads = dwconv.depthwise_conv1d_grad(x, w_torch, dy, 2, (2, 1), data_format=fmt, filter_format="torch")
    dw = dwconv.depthwise_conv1d_grad(x, w, dy, 2, (2, 1), data_format=fmt).filters
    np.testing.assert_allclose(grads.filters, dw.transpose(1, 2, 0).reshape(6, 1, 4), rtol=1e-12)
    np.testing.assert_allclose(dwconv.depthwise_conv1d_backprop_filter(x, (6, 1, 4), dy, 2, (2, 1), data_format=fmt,
                                                                       filter_format="torch"), grads.filters)


def test_matches_torch_conv1d():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x, w = signal(rng, "NCW", 30, C=5, dtype=np.float32), rng.standard_normal((10, 1, 3)).astype(np.float32)
    want = torch.nn.functional.conv1d(torch.from_numpy(x), torch.from_numpy(w), stride=2, padding=2, dilation=3,
                                      groups=5).numpy()
    got = dwconv.depthwise_conv1d(x, w, 2, 2, data_format="NCW", dilations=3, filter_format="torch")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(4)
    x, w, dy = rng.standard_normal((1, 7, 2)), rng.standard_normal((3, 2, 2)), rng.standard_normal((1, 7, 4))

    def loss(x, w):
        return float(np.sum(dwconv.depthwise_conv1d(x, w, 1, "CAUSAL", dilations=2, padding_mode="zeros") * dy))

    grads = dwconv.depthwise_conv1d_grad(x, w, dy, 1, "CAUSAL", dilations=2)
    for array, grad in ((x, grads.input), (w, grads.filters)):
        numeric = np.zeros(array.shape)
        for index in np.ndindex(array.shape):
            step = np.zeros(array.shape)
            step[index] = 1e-6
            args = (x + step, w) if array is x else (x, w + step)
            minus = (x - step, w) if array is x else (x, w - step)
            numeric[index] = (loss(*args) - loss(*minus)) / 2e-6
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("fmt", FORMATS)
def test_dask_arrays(fmt):
    """dwconv.dask's 1-D functions on signals chunked along every axis, against the reference; the
    in-memory functions refuse dask arrays (rather than computing them whole)."""
    da = pytest.importorskip("dask.array")
    dwconv_dask = pytest.importorskip("dwconv.dask")
    rng = np.random.default_rng(12)
    x, w = signal(rng, fmt, 23, C=4), rng.standard_normal((3, 4, 2))
    ref, scale, args = reference(x, w, fmt, 23, 2, 2, "CAUSAL", "reflect")
    dy = rng.standard_normal(ref.shape)
    chunks = (1, 5, 3) if fmt == "NWC" else (1, 3, 5)
    kwargs = {"data_format": fmt, "dilations": 2, "padding_mode": "reflect"}
    y = dwconv_dask.depthwise_conv1d(da.from_array(x, chunks), w, 2, "CAUSAL", **kwargs)
    assert isinstance(y, da.Array)
    assert_close(y.compute(scheduler="synchronous"), ref, scale, np.float64, 3)
    ref_grads = reference_gradients(as_image(x, fmt), w[None], as_image(dy, fmt), *args, mode="reflect")
    dx = dwconv_dask.depthwise_conv1d_backprop_input(x.shape, w, da.from_array(dy, chunks), 2, "CAUSAL", **kwargs)
    assert_close(dx.compute(scheduler="synchronous"), *(as_signal(a, fmt) for a in ref_grads["input"]), np.float64,
                 ref.size)
    dw = dwconv_dask.depthwise_conv1d_backprop_filter(da.from_array(x, chunks), w.shape, da.from_array(dy, chunks), 2,
                                                      "CAUSAL", **kwargs)
    assert_close(dw.compute(scheduler="synchronous"), *(a[0] for a in ref_grads["filters"]), np.float64, ref.size,
                 naive_sum=True)
    with pytest.raises(TypeError, match=r"`x` is a dask array, which dwconv.dask's functions take"):
        dwconv.depthwise_conv1d(da.from_array(x), w)


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_kernels_read_the_signal_in_place(fmt):
    """A contiguous float32 signal is viewed, not copied: the call allocates its result and no more."""
    x = np.ones((1, 1 << 16, 64) if fmt == "NWC" else (1, 64, 1 << 16), np.float32)
    w = np.ones((3, 64), np.float32)
    dwconv.depthwise_conv1d(x[:, :8] if fmt == "NWC" else x[:, :, :8], w, data_format=fmt)  # (first-call set-up)
    tracemalloc.start()
    try:
        y = dwconv.depthwise_conv1d(x, w, padding="SAME", data_format=fmt)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert y.nbytes <= peak < y.nbytes + x.nbytes // 2


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("k, dilation", [(4, 1), (3, 3), (1, 2)])
def test_streaming_equals_the_whole_causal_call(fmt, k, dilation):
    rng = np.random.default_rng([k, dilation, fmt == "NCW"])
    L = 40
    x, w, bias = signal(rng, fmt, L, dtype=np.float32), rng.standard_normal((k, 3, 2)), rng.standard_normal(6)
    ref, scale, _ = reference(x, w, fmt, L, 1, dilation, "CAUSAL", bias=bias, activation="silu")
    whole = dwconv.depthwise_conv1d(x, w, padding="CAUSAL", data_format=fmt, dilations=dilation, bias=bias,
                                    activation="silu")
    assert_rounded_close(whole, ref, scale, np.float64, k, lipschitz=1.1)
    # pieces shorter than (k-1)*dilation, empty ones, and longer ones
    cuts = np.sort(np.r_[0, 0, 1, 1, 3, rng.integers(0, L, 6), L, L])
    axis = 1 if fmt == "NWC" else 2
    state, pieces = None, []
    past = (k - 1) * dilation
    for start, stop in zip(cuts[:-1], cuts[1:]):
        piece = np.take(x, np.arange(start, stop), axis)
        y, state = dwconv.depthwise_conv1d_causal(piece, w, state, data_format=fmt, dilations=dilation, bias=bias,
                                                  activation="silu")
        assert y.shape[axis] == stop - start and y.dtype == whole.dtype
        assert state.shape == ((2, past, 3) if fmt == "NWC" else (2, 3, past)) and state.dtype == np.float32
        pieces.append(y)
    np.testing.assert_allclose(np.concatenate(pieces, axis), whole, rtol=1e-12, atol=1e-12)
    # the state is the last inputs (zeros before the sequence)
    padded = np.concatenate([np.zeros_like(np.take(x, np.arange(past), axis)), x], axis)
    np.testing.assert_array_equal(state, np.take(padded, np.arange(L, L + past), axis))


def test_streaming_state_none_is_zeros_and_state_is_checked():
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((2, 5, 3)), rng.standard_normal((3, 3))
    y, state = dwconv.depthwise_conv1d_causal(x, w, np.zeros((2, 2, 3)))
    y_none, state_none = dwconv.depthwise_conv1d_causal(x, w)
    np.testing.assert_array_equal(y, y_none)
    np.testing.assert_array_equal(state, state_none)
    assert not np.shares_memory(state, x)
    with pytest.raises(ValueError, match=r"`state` must have shape \(2, 2, 3\) \(\(N, \(k-1\)\*dilations, C\) for NWC"):
        dwconv.depthwise_conv1d_causal(x, w, np.zeros((2, 3, 2)))
    with pytest.raises(ValueError, match=r"`state` must have shape \(2, 3, 4\) \(\(N, C, \(k-1\)\*dilations\) for NCW"):
        dwconv.depthwise_conv1d_causal(x.transpose(0, 2, 1), w, np.zeros((2, 3, 2)), data_format="NCW",
                                       dilations=2, filter_format="tf")


def test_streaming_matches_onnx_causal_conv_with_state():
    """ONNX's own reference of CausalConvWithState (NCW, PyTorch's weight layout, SiLU), where the
    installed onnx has it."""
    onnx = pytest.importorskip("onnx")
    if not onnx.defs.has("CausalConvWithState"):
        pytest.skip(f"onnx {onnx.__version__} has no CausalConvWithState")
    from onnx.reference import ReferenceEvaluator

    helper, float32 = onnx.helper, onnx.TensorProto.FLOAT
    node = helper.make_node("CausalConvWithState", ["x", "w", "b", "s"], ["y", "state"], activation="silu")
    graph = helper.make_graph([node], "causal", [helper.make_tensor_value_info(n, float32, None) for n in "xwbs"],
                              [helper.make_tensor_value_info(n, float32, None) for n in ("y", "state")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 27)])
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 3, 9)).astype(np.float32), rng.standard_normal((3, 1, 4)).astype(np.float32)
    bias, past = rng.standard_normal(3).astype(np.float32), rng.standard_normal((2, 3, 3)).astype(np.float32)
    want_y, want_state = ReferenceEvaluator(model).run(None, {"x": x, "w": w, "b": bias, "s": past})
    y, state = dwconv.depthwise_conv1d_causal(x, w, past, data_format="NCW", bias=bias, activation="silu",
                                              filter_format="torch")
    np.testing.assert_allclose(y, want_y, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(state, want_state)


@pytest.mark.parametrize("call, error, message", [
    (lambda x, w: dwconv.depthwise_conv1d(x, w, padding="FULL"), ValueError,
     r"`padding` must be 'VALID', 'SAME', 'CAUSAL', an int or \(left, right\); got 'FULL'"),
    (lambda x, w: dwconv.depthwise_conv1d(x, w, padding=(1, -1)), ValueError, r"`padding` must be non-negative"),
    (lambda x, w: dwconv.depthwise_conv1d(x, w, padding=((1, 1), (1, 1))), ValueError, r"`padding` must be"),
    (lambda x, w: dwconv.depthwise_conv1d(x, w, data_format="NHWC"), ValueError,
     r"`data_format` must be 'NWC', 'NCW', 'channels_last' or 'channels_first', got 'NHWC'"),
    (lambda x, w: dwconv.depthwise_conv1d(x[:, None], w), ValueError,
     r"`x` must be 3-D \(N, W, C\), got shape \(2, 1, 6, 3\); a 4-D array is a batch of images: use depthwise_conv2d"),
    (lambda x, w: dwconv.depthwise_conv1d(x[0], w), ValueError, r"add the batch axis: x\[None\]"),
    (lambda x, w: dwconv.depthwise_conv1d(x[:, :2], w), ValueError,
     (r"`filters`: the kernel of 4 taps with dilation 1 spans 4, longer than the padded input of length 2 "
     r"\(`padding`='VALID'\)")),
    (lambda x, w: dwconv.depthwise_conv1d(x, w, dilations=-1), ValueError, r"`dilations` must be a positive int, got -1"),
    (lambda x, w: dwconv.depthwise_conv1d(x, w, strides=(1, 2)), ValueError, r"`strides` must be a positive int"),
    (lambda x, w: dwconv.depthwise_conv1d(x, w[:, :2]), ValueError,
     r"`filters` has 2 input channels \(shape \(4, 2\)\) but `x` has 3 \(shape \(2, 6, 3\), NWC\)"),
    (lambda x, w: dwconv.depthwise_conv1d(x.transpose(0, 2, 1), w), ValueError,
     r"if `x` is NCW, pass data_format='NCW'"),
    (lambda x, w: dwconv.depthwise_conv1d(x, w[:0]), ValueError, r"at least 1 tap"),
    (lambda x, w: dwconv.depthwise_conv1d(x, w, filter_format="chainer"), ValueError,
     r"`filter_format` must be None, 'tf', 'keras' \(\(k, C, M\)\) or 'torch'"),
    (lambda x, w: dwconv.depthwise_conv1d(x, w, filter_format="torch"), ValueError,
     r"`filters` must have shape \(C\*M, 1, k\) with C=3"),
    (lambda x, w: dwconv.depthwise_conv1d(x[..., :1].transpose(0, 2, 1), np.ones((3, 1, 4)), data_format="NCW"),
     ValueError, r"could be dwconv's \(k, C, M\) or PyTorch's \(C\*M, 1, k\)"),
    (lambda x, w: dwconv.depthwise_conv1d(x, w, out=np.empty((2, 3, 3), np.float64)), ValueError,
     r"`out` has dtype float64, expected float32"),
    (lambda x, w: dwconv.depthwise_conv1d(x, w.astype(np.complex64)), TypeError, r"`filters` has dtype complex64"),
    (lambda x, w: dwconv.depthwise_conv1d(x, w, bias=np.ones(4)), ValueError, r"`bias` must have shape \(3,\)"),
    (lambda x, w: dwconv.depthwise_conv1d_grad(x, w, np.ones((2, 6, 3))), ValueError,
     r"`grad_output` has shape \(2, 6, 3\) but the forward output for these arguments has shape \(2, 3, 3\)"),
    (lambda x, w: dwconv.depthwise_conv1d_backprop_input((2, 6), w, np.ones((2, 3, 3))), ValueError,
     r"`input_shape` must be 3 non-negative ints"),
    (lambda x, w: dwconv.depthwise_conv1d_causal(x, w, dilations=0), ValueError, r"`dilations` must be a positive"),
])
def test_errors_name_the_argument(call, error, message):
    x = np.ones((2, 6, 3), np.float32)
    w = np.ones((4, 3), np.float32)
    with pytest.raises(error, match=message):
        call(x, w)


def test_out_shape_error_shows_the_1d_shapes():
    x, w = np.ones((2, 6, 3), np.float32), np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"^`out` has shape \(2, 4, 3\), expected \(2, 3, 3\)$"):
        dwconv.depthwise_conv1d(x, w, out=np.empty((2, 4, 3), np.float32))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("padding, activation", [("causal", "tanh"), ("same", None), ("valid", "relu")])
def test_keras_depthwise_conv1d_forward_and_backward_against_reference(data_format, padding, activation):
    """The layer's output, input gradient and weight gradients through its activation (whose
    derivative is taken by central differences of the reference's float64 activation)."""
    rng = np.random.default_rng(8)
    fmt = "NWC" if data_format == "channels_last" else "NCW"
    x = signal(rng, fmt, 12, C=3)
    layer = keras.layers.DepthwiseConv1D(3, 2 if padding == "valid" else 1, padding, 2, data_format, 2, activation,
                                         bias_initializer=keras.initializers.RandomNormal(stddev=1.0, seed=4))
    y = layer(x)
    assert y.dtype == np.float32 and layer.kernel.shape == (3, 3, 2) and layer.bias.shape == (6,)
    assert layer.compute_output_shape((None, *x.shape[1:])) == (None, *y.shape[1:])
    z, _, args = reference(x, layer.kernel, fmt, 12, layer.strides[0], 2, padding, bias=layer.bias)
    np.testing.assert_allclose(y, activate(z, activation), rtol=1e-5, atol=1e-5)
    grad = rng.standard_normal(y.shape)
    gx = layer.backward(grad)
    h = 1e-6
    dz = grad * (1 if activation is None else (activate(z + h, activation) - activate(z - h, activation)) / (2 * h))
    ref_grads = reference_gradients(as_image(x, fmt), layer.kernel[None], as_image(dz, fmt), *args)
    np.testing.assert_allclose(gx, as_signal(ref_grads["input"][0], fmt), rtol=1e-4, atol=1e-4)
    kernel_grad, bias_grad = layer.gradients
    np.testing.assert_allclose(kernel_grad, ref_grads["filters"][0][0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(bias_grad, ref_grads["bias"][0], rtol=1e-4, atol=1e-4)


def test_keras_depthwise_conv1d_config_round_trip():
    layer = keras.layers.DepthwiseConv1D(5, strides=2, padding="CAUSAL", depth_multiplier=3,
                                         data_format="channels_first", dilation_rate=(2,), activation="swish",
                                         depthwise_initializer=keras.initializers.HeNormal(seed=1),
                                         bias_regularizer="l2", depthwise_constraint="non_neg", name="dw1",
                                         dtype="float64")
    config = layer.get_config()
    assert config["kernel_size"] == (5,) and config["strides"] == (2,) and config["dilation_rate"] == (2,)
    assert config["padding"] == "causal" and config["activation"] == "silu" and config["name"] == "dw1"
    clone = keras.layers.DepthwiseConv1D.from_config(config)
    assert type(clone) is keras.layers.DepthwiseConv1D and clone.get_config() == config
    x = np.random.default_rng(9).standard_normal((2, 4, 11))
    np.testing.assert_array_equal(clone(x), layer(x))     # seeded initializer: the same weights
    assert layer(x).shape == (2, 12, 6) and layer(x).dtype == np.float64
    assert repr(layer) == "<DepthwiseConv1D name=dw1, built=True>"
    assert keras.layers.DepthwiseConv1D(3).name.startswith("depthwise_conv1d")


def test_keras_depthwise_conv1d_config_round_trip_with_keras():
    real_keras = pytest.importorskip("keras")
    x = np.random.default_rng(10).standard_normal((2, 9, 4)).astype(np.float32)
    theirs = real_keras.layers.DepthwiseConv1D(3, 1, "same", 2, dilation_rate=2, activation="relu",
                                               bias_initializer=real_keras.initializers.Constant(0.5))
    want = np.asarray(theirs(x))
    ours = keras.layers.DepthwiseConv1D.from_config(theirs.get_config())
    ours(x)
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(ours(x), want, rtol=1e-5, atol=1e-5)
    again = real_keras.layers.DepthwiseConv1D.from_config(ours.get_config())
    again(x)
    again.set_weights(ours.get_weights())
    np.testing.assert_allclose(np.asarray(again(x)), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make, message", [
    (lambda: keras.layers.DepthwiseConv1D((3, 3)), r"`kernel_size` must be a positive int, got \(3, 3\)"),
    (lambda: keras.layers.DepthwiseConv1D(3, padding="full"), r"`padding` must be 'VALID', 'SAME', 'CAUSAL'"),
    (lambda: keras.layers.DepthwiseConv1D(3, dilation_rate=-1), r"`dilation_rate` must be a positive int, got -1"),
    (lambda: keras.layers.DepthwiseConv2D(3, padding="causal"), r"`padding` must be 'VALID', 'SAME' or explicit"),
])
def test_keras_layer_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()
