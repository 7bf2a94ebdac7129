"""The GPU path (``dwconv._cupy``): CuPy arrays in and out, CUDA kernels.

The kernels are checked against the float64 NumPy reference on two devices, through the same
public functions and the same Python code:

* ``gpu``: CuPy on a real GPU, the kernels compiled by NVRTC (skipped without CuPy or a GPU);
* ``emulated``: the same kernel source compiled by the host C++ compiler and run on the CPU by
  ``tests/cuda_emulation.py`` (skipped without a compiler), so that a machine without a GPU
  still runs every kernel, barrier included.

Then, without a GPU: NVRTC compiles every specialization (when CuPy finds NVRTC), the dispatch
refuses host arrays mixed with GPU arrays, and ``import dwconv`` does not import CuPy.
"""
import inspect
import pathlib
import subprocess
import sys
import types

import numpy as np
import pytest

import dwconv
from cuda_emulation import EmulatedArray, emulated_cupy
from dwconv import _cupy, _names
from checks import assert_rounded_close, reference_forward, reference_gradients
from reference import conv2d_forward, normalize_pair, resolve_padding
from sweep import FORMATS, MODES, SWEEP, build_case, sweep_id, to_format

ACTIVATIONS = (None, *_names.ACTIVATIONS)
LIPSCHITZ = max(activation.slope for activation in _names.ACTIVATIONS.values())


def _gpu_device():
    cupy = pytest.importorskip("cupy")
    usable, gpu, why = _cupy.available()
    if not gpu:
        pytest.skip(why)
    return types.SimpleNamespace(name="gpu", put=cupy.asarray, get=cupy.asnumpy, tanh=cupy.tanh)


def _emulated_device(monkeypatch):
    fake = emulated_cupy()
    if fake is None:
        pytest.skip("no C++ compiler to run the CUDA kernels on the CPU")
    monkeypatch.setitem(sys.modules, "cupy", fake)
    return types.SimpleNamespace(name="emulated", put=EmulatedArray, get=fake.asnumpy,
                                 tanh=lambda a: EmulatedArray(np.tanh(a.array)))


@pytest.fixture(params=["gpu", "emulated"])
def device(request, monkeypatch):
    """Puts NumPy arrays on the device (`put`), brings results back (`get`)."""
    _cupy._kernel.cache_clear()  # compiled by one device, unusable by the other
    yield _gpu_device() if request.param == "gpu" else _emulated_device(monkeypatch)
    _cupy._kernel.cache_clear()


def reference_results(x, w, bias, dy, strides, padding, fmt, dilations, mode, activation):
    """The forward (activated) and gradient results of the reference, each with its |x|,|w| scale."""
    sp, dp = normalize_pair(strides, fmt), normalize_pair(dilations, fmt)
    hw = x.shape[1:3] if fmt == "NHWC" else x.shape[2:]
    args = (sp, resolve_padding(padding, hw, w.shape[:2], sp, dp, fmt), fmt, dp)
    results = {"y": reference_forward(x, w, *args, bias=bias, mode=mode, activation=activation)}
    if dy is not None:
        grads = reference_gradients(x, w, dy, *args, mode=mode)
        results.update(dx=grads["input"], dw=grads["filters"], db=grads["bias"])
    return results


def check_all(device, x, w, bias, dy, strides, padding, fmt, dilations, mode="zeros", activation=None,
              dtype=None):
    """Forward and every gradient function on the device, against the reference."""
    kwargs = dict(data_format=fmt, dilations=dilations, padding_mode=mode, dtype=dtype)
    ref = reference_results(x, w, None if bias is None else bias.astype(np.float64), dy, strides, padding, fmt,
                            dilations, mode, activation)
    put = device.put
    y = dwconv.depthwise_conv2d(put(x), put(w), strides, padding, bias=None if bias is None else put(bias),
                                activation=activation, **kwargs)
    result_dtype = y.dtype
    taps = w.shape[0] * w.shape[1]
    assert_rounded_close(device.get(y), *ref["y"], result_dtype, taps, LIPSCHITZ)
    terms = dy.size
    grads = dwconv.depthwise_conv2d_grad(put(x), put(w), put(dy), strides, padding, **kwargs)
    dx = dwconv.depthwise_conv2d_backprop_input(x.shape, put(w), put(dy), strides, padding, **kwargs)
    dw = dwconv.depthwise_conv2d_backprop_filter(put(x), w.shape, put(dy), strides, padding, **kwargs)
    in_terms = w.size // w.shape[2]  # kh * kw * M products per input gradient element
    for got, (want, scale), count in [(grads.input, ref["dx"], in_terms), (dx, ref["dx"], in_terms),
                                      (grads.filters, ref["dw"], terms), (dw, ref["dw"], terms),
                                      (grads.bias, ref["db"], terms)]:
        assert_rounded_close(device.get(got), want.reshape(got.shape), scale.reshape(got.shape), got.dtype, count)


@pytest.mark.parametrize("case", SWEEP, ids=[sweep_id(c) for c in SWEEP])
def test_sweep(device, case):
    """The shared grid (every layout, stride, dilation, kernel, padding form), with the multiplier,
    dtype, bias, padding mode, activation and argument spellings cycling over it."""
    c = build_case(case, 9000, dtypes=(np.float32, np.float64, np.float16))
    check_all(device, c.x, c.filters, c.bias, c.dy, c.strides, c.padding, c.data_format, c.dilations,
              mode=MODES[c.index % len(MODES)],
              activation=ACTIVATIONS[c.index % len(ACTIVATIONS)])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_padding_wider_than_the_image(device, fmt, mode):
    """Reflect and wrap fold the padding more than once; a 1-pixel image; a dilated stride-2 kernel."""
    rng = np.random.default_rng(MODES.index(mode))
    for H, W, padding in [(3, 4, ((6, 5), (7, 2))), (1, 2, ((2, 3), (4, 1)))]:
        x = to_format(rng.standard_normal((2, H, W, 3)), fmt)
        w = rng.standard_normal((3, 3, 3, 2))
        y_shape = dwconv.output_shape(x.shape, w.shape, 2, padding, data_format=fmt, dilations=2)
        check_all(device, x, w, rng.standard_normal(6), rng.standard_normal(y_shape), 2, padding, fmt, 2, mode)


@pytest.mark.parametrize("fmt", FORMATS)
def test_mixed_dtypes(device, fmt):
    """float16 data with float32 filters (float16 results, float32 accumulation), integer images
    (computed in float32), and dtype= choosing the result."""
    rng = np.random.default_rng(4)
    x = to_format(rng.standard_normal((2, 9, 8, 5)), fmt)
    w = rng.standard_normal((3, 3, 5, 2))
    dy = rng.standard_normal(dwconv.output_shape(x.shape, w.shape, 1, "SAME", data_format=fmt))
    f16, f32 = np.float16, np.float32
    check_all(device, x.astype(f16), w.astype(f32), w[0, 0].ravel().astype(f32), dy.astype(f16), 1, "SAME", fmt, 1,
              "reflect", "gelu")
    check_all(device, x.astype(f32), w.astype(f32), None, dy.astype(f32), 1, "SAME", fmt, 1, dtype=f16)
    check_all(device, x.astype(f16), w.astype(f16), None, dy.astype(f16), 1, "SAME", fmt, 1, dtype=np.float64)
    image = rng.integers(0, 256, x.shape).astype(np.uint8)
    y = dwconv.depthwise_conv2d(device.put(image), device.put(w.astype(f32)), 1, "SAME", data_format=fmt)
    assert y.dtype == f32
    ref, scale = reference_results(image, w.astype(f32), None, None, 1, "SAME", fmt, 1, "zeros", None)["y"]
    assert_rounded_close(device.get(y), ref, scale, f32, 9)


@pytest.mark.parametrize("fmt", FORMATS)
def test_1d_functions(device, fmt):
    """depthwise_conv1d, its gradients and the causal streaming form on GPU arrays: views that the
    2-D functions hand to the GPU. The reference sees the signal as an image of height 1."""
    rng = np.random.default_rng(11)
    x4 = to_format(rng.standard_normal((2, 1, 13, 3)), fmt)
    w4, bias = rng.standard_normal((1, 4, 3, 2)), rng.standard_normal(6)
    image = (lambda a: a[:, None]) if fmt == "NHWC" else (lambda a: a[:, :, None])
    signal = (lambda a: a[:, 0]) if fmt == "NHWC" else (lambda a: a[:, :, 0])
    x, w, one_d = signal(x4), w4[0], "NWC" if fmt == "NHWC" else "NCW"
    y_shape = dwconv.output_shape(x4.shape, w4.shape, 1, ((0, 0), (6, 0)), data_format=fmt, dilations=2)
    dy = signal(rng.standard_normal(y_shape))
    ref = reference_results(x4, w4, bias, image(dy), 1, ((0, 0), (6, 0)), fmt, 2, "zeros", None)
    put, get = device.put, device.get
    kwargs = {"data_format": one_d, "dilations": 2}
    y = dwconv.depthwise_conv1d(put(x), put(w), 1, "CAUSAL", bias=put(bias), **kwargs)
    assert_rounded_close(get(y), *map(signal, ref["y"]), np.float64, 4)
    grads = dwconv.depthwise_conv1d_grad(put(x), put(w), put(dy), 1, "CAUSAL", **kwargs)
    assert_rounded_close(get(grads.input), *map(signal, ref["dx"]), np.float64, dy.size)
    assert_rounded_close(get(grads.filters), *(a[0] for a in ref["dw"]), np.float64, dy.size)
    axis = 1 if fmt == "NHWC" else 2
    state, pieces = None, []
    for start, stop in [(0, 2), (2, 2), (2, 9), (9, 13)]:
        piece, state = dwconv.depthwise_conv1d_causal(put(np.take(x, np.arange(start, stop), axis)), put(w), state,
                                                      bias=put(bias), **kwargs)
        pieces.append(get(piece))
    assert_rounded_close(np.concatenate(pieces, axis), *map(signal, ref["y"]), np.float64, 4)


@pytest.mark.parametrize("fmt", FORMATS)
def test_filter_formats_and_the_bias_dtype(device, fmt):
    """PyTorch-layout filters read as they are, their gradients returned in that layout; a float64
    bias makes a float64 result, as on the CPU."""
    rng = np.random.default_rng(8)
    x = to_format(rng.standard_normal((2, 7, 6, 3)), fmt).astype(np.float32)
    w_tf = rng.standard_normal((3, 3, 3, 2)).astype(np.float32)
    w_torch = np.ascontiguousarray(w_tf.transpose(2, 3, 0, 1).reshape(6, 1, 3, 3))
    bias = rng.standard_normal(6)
    dy = rng.standard_normal(dwconv.output_shape(x.shape, w_tf.shape, 1, "SAME", data_format=fmt))
    args = dict(strides=1, padding="SAME", data_format=fmt)
    put = device.put
    want = dwconv.depthwise_conv2d(x, w_tf, bias=bias, **args)  # (the CPU's, itself checked against the reference)
    y = dwconv.depthwise_conv2d(put(x), put(w_torch), bias=put(bias), filter_format="torch", **args)
    assert y.dtype == want.dtype == np.float64
    np.testing.assert_allclose(device.get(y), want, rtol=1e-6, atol=1e-6)
    dw_torch = dwconv.depthwise_conv2d_grad(x, w_torch, dy, filter_format="torch", **args).filters
    # out=: the input and filter gradients written into the arrays given (the filters in torch's layout),
    # a new array for the bias gradient
    out = (put(np.empty(x.shape)), put(np.full(w_torch.shape, np.nan)), None)
    written = dwconv.depthwise_conv2d_grad(put(x), put(w_torch), put(dy), filter_format="torch", out=out, **args)
    assert written.input is out[0] and written.filters is out[1]
    for got in (dwconv.depthwise_conv2d_grad(put(x), put(w_torch), put(dy), filter_format="torch", **args).filters,
                dwconv.depthwise_conv2d_backprop_filter(put(x), w_torch.shape, put(dy), filter_format="torch", **args),
                written.filters):
        assert got.shape == w_torch.shape
        np.testing.assert_allclose(device.get(got), dw_torch, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("dtype, delta", [(np.uint8, 0.0), (np.int16, 30000.0)])
def test_integer_results_and_image_filtering(device, dtype, delta):
    """Integer results on the GPU are rounded (ties to even) and saturated as on the CPU, through
    filter2d and depthwise_conv2d alike. The weights are multiples of 5/8, so every sum is exact in
    float32 and in the reference, ties (x.5) included; the sums pass the dtype's range."""
    rng = np.random.default_rng(7)
    info = np.iinfo(dtype)
    image = rng.integers(0, 256, (9, 13, 3)).astype(np.uint8)
    kernel = rng.integers(-8, 9, (3, 3)).astype(np.float32) * 5 / 8
    filters = np.repeat(kernel[:, :, None], 3, axis=2)
    reference = conv2d_forward(image[None].astype(np.float64), filters, (1, 1), ((1, 1), (1, 1)), "NHWC", (1, 1),
                               padding_mode="reflect")[0] + delta
    assert np.any(reference % 1 == 0.5) and reference.max() > info.max  # ties, and sums past the top
    assert dtype != np.uint8 or reference.min() < 0  # and past the bottom
    expected = np.clip(np.rint(reference), info.min, info.max)
    y = dwconv.filter2d(device.put(image), device.put(kernel), delta=delta, dtype=dtype)
    assert y.dtype == dtype and y.shape == image.shape
    np.testing.assert_array_equal(device.get(y), expected)
    y = dwconv.depthwise_conv2d(device.put(image[None]), device.put(filters), 1, 1, padding_mode="reflect",
                                bias=device.put(np.full(3, delta, np.float32)), dtype=dtype)
    np.testing.assert_array_equal(device.get(y)[0], expected)


@pytest.mark.parametrize("fmt", FORMATS)
def test_filter_gradient_is_deterministic(device, fmt):
    """Large enough for the pixels to be split over blocks: the same bits on every run."""
    rng = np.random.default_rng(8)
    x = to_format(rng.standard_normal((2, 72, 70, 3)), fmt).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 1)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    first, second = (dwconv.depthwise_conv2d_backprop_filter(device.put(x), w.shape, device.put(dy), 1, 1,
                                                             data_format=fmt, padding_mode="circular")
                     for _ in range(2))
    np.testing.assert_array_equal(device.get(first), device.get(second))
    ref, scale = reference_results(x, w, None, dy, 1, 1, fmt, 1, "circular", None)["dw"]
    assert_rounded_close(device.get(first), ref, scale, np.float32, dy.size)


def test_out_and_callable_activation(device):
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((1, 6, 7, 4)), rng.standard_normal((3, 3, 4))
    out = device.put(np.empty((1, 4, 5, 4)))
    y = dwconv.depthwise_conv2d(device.put(x), device.put(w), out=out, activation=device.tanh)
    assert y is out
    ref, scale = reference_results(x, w, None, None, 1, "VALID", "NHWC", 1, "zeros", "tanh")["y"]
    assert_rounded_close(device.get(y), ref, scale, np.float64, 9)
    with pytest.raises(ValueError, match="`out` has shape"):
        dwconv.depthwise_conv2d(device.put(x), device.put(w), out=device.put(np.empty((1, 4, 5, 3))))
    with pytest.raises(ValueError, match="`out` overlaps `x`"):
        x_on_device = device.put(np.empty((1, 4, 5, 4)))
        dwconv.depthwise_conv2d(x_on_device, device.put(w[:1, :1]), out=x_on_device)
    with pytest.raises(ValueError, match="`padding_mode`"):  # the CPU's argument checks, on the GPU path
        dwconv.depthwise_conv2d(device.put(x), device.put(w), padding_mode="mirror")


def test_out_checks_are_the_cpus(monkeypatch):
    """The checks of ``dwconv._args.output_array``, which the CPU path runs too, on the GPU path:
    those CuPy cannot meet on a real GPU (a read-only array, a result larger than memory) emulated."""
    device = _emulated_device(monkeypatch)
    w = device.put(np.ones((1, 1, 1), np.float32))
    read_only = np.empty((1, 2, 2, 1), np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="`out` is read-only"):
        dwconv.depthwise_conv2d(device.put(np.ones((1, 2, 2, 1), np.float32)), w, out=device.put(read_only))
    huge = np.broadcast_to(np.float32(0), (2**20, 2**20, 2**10, 1))  # (a view of one element)
    with pytest.raises(ValueError, match="`x` asks for a result of shape .* more than this machine has"):
        dwconv.depthwise_conv2d(device.put(huge), w)
    with pytest.raises(ValueError, match="`input_shape` asks for a result"):
        dwconv.depthwise_conv2d_backprop_input(huge.shape, w, device.put(huge))


# ----------------------------------------------------------------------------------------------
# Without a GPU


def test_nvrtc_compiles_every_specialization():
    """Every kernel specialization through NVRTC to PTX for a recent architecture."""
    compiler = pytest.importorskip("cupy.cuda.compiler")
    try:
        from cupy_backends.cuda.libs import nvrtc

        nvrtc.getVersion()
        program_class = compiler._NVRTCProgram
    except Exception as exc:  # NVRTC's library missing, or CuPy's internals changed
        pytest.skip(f"NVRTC not usable: {exc}")
    f16, f32, f64 = (np.dtype(t) for t in (np.float16, np.float32, np.float64))
    names = {t: _cupy._CUDA_TYPES[t] for t in (f16, f32, f64)}
    kernels = [f"{kernel}<{names[a]}, {names[b]}, {names[acc]}, {layout}>"
               for kernel in ("forward", "input_grad", "filter_grad_partials") for layout in ("true", "false")
               for a, b, acc in [(f16, f16, f32), (f16, f32, f32), (f32, f16, f32), (f32, f32, f32), (f64, f64, f64)]]
    kernels += [f"sum_partials<{names[t]}, {names[acc]}>" for t, acc in [(f16, f32), (f32, f32), (f64, f64)]]
    program = program_class(_cupy.source(), "dwconv.cu", (), (), name_expressions=kernels, method="ptx")
    ptx, mapping = program.compile(_cupy.OPTIONS + ("-arch=compute_80", "--device-as-default-execution-space"))
    assert set(mapping) == set(kernels) and len(ptx) > 0


class FakeGPUArray:
    """Claims to be in GPU memory; enough for the dispatch to send it to the GPU path."""

    __cuda_array_interface__ = {"shape": (1, 3, 3, 2), "typestr": "<f4", "data": (0, False), "version": 3}


@pytest.mark.parametrize("call, host, gpu", [
    (lambda h, d: dwconv.depthwise_conv2d(h, d), "x", "filters"),
    (lambda h, d: dwconv.depthwise_conv2d(d, d, bias=h), "bias", "x"),
    (lambda h, d: dwconv.depthwise_conv2d_backprop_input((1, 3, 3, 2), h, d), "filters", "grad_output"),
    (lambda h, d: dwconv.depthwise_conv2d_backprop_filter(d, (1, 1, 2), h), "grad_output", "x"),
    (lambda h, d: dwconv.depthwise_conv2d_grad(h, h, d), "x", "grad_output"),
    # the dispatch finds arrays passed by keyword, keyword-only ones included
    (lambda h, d: dwconv.depthwise_conv2d(x=h, filters=h, out=d), "x", "out"),
    (lambda h, d: dwconv.depthwise_conv2d_grad(h, filters=d, grad_output=h), "grad_output", "filters"),
    (lambda h, d: dwconv.depthwise_conv2d_grad(d, d, d, out=(None, h, None)), "out_filters", "x"),
])
def test_mixed_host_and_gpu_arrays_are_a_type_error(call, host, gpu):
    with pytest.raises(TypeError) as error:
        call(np.ones((1, 3, 3, 2), np.float32), FakeGPUArray())
    message = str(error.value)
    assert f"`{host}` is a numpy.ndarray (host)" in message
    assert f"`{gpu}` is a test_cupy.FakeGPUArray (GPU)" in message


@pytest.mark.parametrize("name", ["depthwise_conv2d", "depthwise_conv2d_backprop_input",
                                  "depthwise_conv2d_backprop_filter", "depthwise_conv2d_grad"])
def test_gpu_functions_take_the_public_functions_arguments(name):
    """The dispatch hands the GPU function the arguments of the public one as they were passed."""
    assert inspect.signature(getattr(_cupy, name)) == inspect.signature(getattr(dwconv, name))


def test_kernel_source_is_the_packaged_cu_file():
    cu = (pathlib.Path(dwconv.__file__).parent / "_cuda_kernels.cu").read_text()
    assert _cupy.source().endswith(cu) and "enum Mode" in _cupy.source()


def test_owns_looks_at_types_only():
    assert not any(map(_cupy.owns, (np.ones(3), [1.0], None, 2.0, np.float32(1))))
    assert _cupy.owns(FakeGPUArray())
    torch = pytest.importorskip("torch")
    assert not _cupy.owns(torch.ones(3))  # a CPU tensor's DLPack device is the CPU


def test_import_and_cpu_calls_do_not_import_cupy():
    code = ("import sys, numpy as np, dwconv; dwconv.depthwise_conv2d(np.ones((1, 3, 3, 1)), np.ones((3, 3, 1))); "
            "print('cupy' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_show_config_reports_the_gpu(capsys):
    dwconv.show_config()
    line = next(line for line in capsys.readouterr().out.splitlines() if "CuPy" in line)
    assert ("no GPU" in line) or ("GPU(s)" in line) or ("not usable" in line)


def test_gpu_arrays_without_cupy_say_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # what `import cupy` meets when it is not installed
    with pytest.raises(ImportError, match=r"CuPy, which does not import.*pip install cupy-cuda12x"):
        dwconv.depthwise_conv2d(FakeGPUArray(), FakeGPUArray())
