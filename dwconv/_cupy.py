"""The GPU path: CuPy arrays (or other CUDA arrays) in, CUDA kernels, CuPy arrays out.

CuPy is imported only when a GPU array arrives: ``owns`` decides from the arguments' types
without it, and the public functions (``dwconv._conv``) then call the same-named function here.
Arguments are normalized and ``out`` checked by ``dwconv._args``, exactly as on the CPU. The kernels
(``_cuda_kernels.cu``) are compiled by NVRTC through ``cupy.RawModule`` once per specialization
(storage types, accumulation type, layout), cached, and launched on the current stream of the
input's device.

Neighbouring threads read neighbouring addresses in both layouts: they run along the channels in
NHWC and along the columns in NCHW.

* forward: each thread computes PIXELS outputs of one output channel (a row segment in NHWC, a
  column segment in NCHW), loading each filter tap once for all of them;
* input gradient: a gather, one input pixel per thread summing the outputs that read it, so no
  atomics; in the padding modes other than zeros these include the outputs whose taps land on
  padding that copies the pixel;
* filter and bias gradient: blocks of channel lanes x pixel lanes, each thread summing a fixed
  slice of the pixels for up to TAPS_PER_THREAD taps (the bias is one more "tap" that reads 1);
  the lanes are summed in a fixed tree and the blocks' partial sums in a fixed order by a second
  kernel, so the result is bitwise the same on every run.

float16 data is read and written as float16 and accumulated in float32; filters and bias are
converted to the accumulation type (they are small); other dtypes convert to it on the device.
"""
import functools
import importlib.resources

import numpy as np

from dwconv import _args, _kernels, _names

__all__ = ["owns", "depthwise_conv2d", "depthwise_conv2d_backprop_input", "depthwise_conv2d_backprop_filter",
           "depthwise_conv2d_grad", "available"]

_CUDA_DLPACK_DEVICES = (2, 13)  # kDLCUDA, kDLCUDAManaged
_HOST_TYPES = (np.ndarray, np.generic, list, tuple, int, float)
_FLOAT16, _FLOAT32 = np.dtype(np.float16), np.dtype(np.float32)
_CUDA_TYPES = {np.dtype(np.float16): "half_t", np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_THREADS = 256  # per block, every kernel
_MAX_BLOCKS = 1 << 20  # the kernels loop over grid strides beyond this
_INT32_MAX = 2**31 - 1
PIXELS = 4  # forward outputs per thread
TAPS_PER_THREAD = 8  # filter-gradient taps summed by one thread in one pass over its pixels
OPTIONS = ("-std=c++14",)


def owns(value):
    """Whether `value` is an array in CUDA device memory, decided without importing CuPy."""
    if value is None or isinstance(value, _HOST_TYPES):
        return False
    if type(value).__module__.partition(".")[0] in ("cupy", "cupyx") or hasattr(value, "__cuda_array_interface__"):
        return True
    dlpack_device = getattr(value, "__dlpack_device__", None)
    return dlpack_device is not None and dlpack_device()[0] in _CUDA_DLPACK_DEVICES


def available():
    """(whether CuPy imports, whether it sees a GPU, a line saying which or why not)."""
    try:
        import cupy
    except Exception as exc:  # not installed, or installed without its CUDA libraries
        return False, False, f"not usable ({type(exc).__name__}: {exc})".splitlines()[0]
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode() if count else None
    except Exception as exc:  # no driver, or a driver too old for this CuPy
        return True, False, f"CuPy {cupy.__version__}, no GPU ({type(exc).__name__}: {exc})".splitlines()[0]
    if not count:
        return True, False, f"CuPy {cupy.__version__}, no GPU"
    return True, True, f"CuPy {cupy.__version__}, {count} GPU(s): {name}"


def _kind(value):
    return f"{type(value).__module__.partition('.')[0]}.{type(value).__name__}"


def _device_arrays(**named):
    """The named arguments as CuPy arrays (None stays None), all on one device.

    CUDA arrays of other libraries come in through __cuda_array_interface__ or DLPack, without a
    copy; a host array among GPU arrays is a TypeError, since moving it silently would hide a
    transfer in every call."""
    given = {name: value for name, value in named.items() if value is not None}
    host = [name for name, value in given.items() if not owns(value)]
    if host:
        gpu = [name for name in given if name not in host]
        raise TypeError(
            "dwconv got arrays on both the host and the GPU: "
            + ", ".join(f"`{name}` is a {_kind(given[name])} (host)" for name in host) + "; "
            + ", ".join(f"`{name}` is a {_kind(given[name])} (GPU)" for name in gpu)
            + ". Pass all arrays on one side (cupy.asarray / cupy.asnumpy).")
    try:
        import cupy
    except ImportError as exc:
        raise ImportError(f"dwconv runs GPU arrays with CuPy, which does not import ({exc}); "
                          "install it with `pip install cupy-cuda12x` (CUDA 12; cupy-cuda11x for CUDA 11)") from exc

    arrays = {}
    for name, value in given.items():
        if not isinstance(value, cupy.ndarray):
            value = cupy.asarray(value) if hasattr(value, "__cuda_array_interface__") else cupy.from_dlpack(value)
        arrays[name] = value
    devices = {name: a.device.id for name, a in arrays.items()}
    if len(set(devices.values())) > 1:
        raise ValueError("dwconv's arrays must be on one GPU, got "
                         + ", ".join(f"`{name}` on device {device}" for name, device in devices.items()))
    return [arrays.get(name) for name in named]


def _storage(dtype, compute):
    """The dtype a data array is read in: float16 as it is when accumulating in float32, else `compute`."""
    return dtype if dtype == _FLOAT16 and compute == _FLOAT32 else compute


def _dims(g):
    """The geometry as the kernels' int arguments (after `N H W C M kh kw sh sw dil_h dil_w pt pl OH OW`, the mode)."""
    dims = (g.N, g.H, g.W, g.C, g.M, g.kh, g.kw, g.sh, g.sw, g.dil_h, g.dil_w, g.pt, g.pl, g.OH, g.OW)
    counts = {"channels C*M": g.C * g.M, "filter size": g.kh * g.kw * g.C * g.M, "padded height": g.H + g.pt + g.pb,
              "padded width": g.W + g.pl + g.pr}
    for what, value in counts.items():
        if value > _INT32_MAX:
            raise ValueError(f"the GPU kernels index one image with 32-bit ints: the {what} {value} is too large")
    return tuple(np.int32(v) for v in dims) + (np.int32(_names.MODE_CODES[g.mode]),)


def _check_threads(num_threads):
    """`num_threads` validated as the CPU path does; the GPU has no use for it."""
    _args.resolve_threads(num_threads, _kernels.max_threads())


def _blocks(total):
    return max(1, min(-(-total // _THREADS), _MAX_BLOCKS))


def depthwise_conv2d(x, filters, strides=1, padding="VALID", *, data_format="NHWC", dilations=1, bias=None,
                     padding_mode="zeros", activation=None, dtype=None, out=None, num_threads=None, filter_format=None):
    """``dwconv.depthwise_conv2d`` for GPU arrays; a bias given as numbers (a list or tuple: a delta)
    goes to the input's device with the call, as the strides do."""
    numbers = isinstance(bias, (list, tuple))
    x, filters, device_bias, out = _device_arrays(x=x, filters=filters, bias=None if numbers else bias, out=out)
    import cupy  # (after the check for host arrays, which needs no CuPy)

    with x.device:
        c = _args.forward_call(x, filters, strides, padding, data_format, dilations, padding_mode,
                               bias if numbers else device_bias, activation, dtype, filter_format, cupy)
    _check_threads(num_threads)
    g, compute = c.g, c.compute
    with c.x.device:
        y = _args.output_array(out, c.shape, c.dtype, (("x", c.x), ("filters", c.filters), ("bias", c.bias)),
                               xp=cupy, empty=cupy.empty)
        if y.size:
            x = _args.contiguous(c.x, _storage(c.x.dtype, compute))
            w = _args.contiguous(c.filters, compute)
            # (integer results are computed in `compute`, then rounded and saturated into y)
            target = cupy.empty(y.shape, compute) if y.dtype.kind in "iu" else y
            kernel = _kernel("forward", x.dtype, target.dtype, compute, g.layout)
            groups = g.N * g.C * g.M * (g.OH * -(-g.OW // PIXELS) if g.layout == "NHWC" else g.OW * -(-g.OH // PIXELS))
            fused = _names.ACTIVATION_CODES[None if callable(c.activation) else c.activation]
            kernel((_blocks(groups),), (_THREADS,),  # without a bias, the kernel is given w in its place, unread
                   (x, w, w if c.bias is None else c.bias, np.int32(c.bias is not None), target, *_dims(g),
                    np.int32(fused)))
            if callable(c.activation):
                _args.apply_activation(c.activation, target, cupy.asarray)
            if target is not y:
                _args.round_into(y, target, cupy)
    return y


def _input_grad_into(dx, grad_output, filters, g, compute):
    if dx.size:
        dy = _args.contiguous(grad_output, _storage(grad_output.dtype, compute))
        kernel = _kernel("input_grad", dy.dtype, dx.dtype, compute, g.layout)
        kernel((_blocks(dx.size),), (_THREADS,), (dy, _args.contiguous(filters, compute), dx, *_dims(g)))


def _filter_grad_into(dfilters, dbias, x, grad_output, g, compute):
    """Write the filter gradient into `dfilters` and, when `dbias` is not None, the bias gradient into `dbias`."""
    import cupy

    taps = g.kh * g.kw + (dbias is not None)
    channels = g.C * g.M
    if not channels:
        return
    x = _args.contiguous(x, _storage(x.dtype, compute))
    dy = _args.contiguous(grad_output, _storage(grad_output.dtype, compute))
    # Channel lanes run along contiguous memory: the channels in NHWC, the pixels in NCHW.
    channel_lanes = 1 if g.layout == "NCHW" else min(32, 1 << (channels - 1).bit_length())
    pixel_lanes = _THREADS // channel_lanes
    tiles = (-(-channels // channel_lanes), -(-taps // TAPS_PER_THREAD))
    # Enough blocks to fill a large GPU, each lane still summing a run of pixels; a function of the
    # geometry alone, so the summation order (and the result) is the same on every GPU.
    pixels = g.N * g.OH * g.OW
    splits = max(1, min(-(-1024 // (tiles[0] * tiles[1])), pixels // (pixel_lanes * 32), 65535))
    partials = cupy.empty((splits, taps, channels), compute)
    kernel = _kernel("filter_grad_partials", x.dtype, dy.dtype, compute, g.layout)
    kernel((*tiles, splits), (channel_lanes, pixel_lanes), (x, dy, partials, np.int32(taps), *_dims(g)),
           shared_mem=_THREADS * compute.itemsize)
    total = taps * channels
    finish = _kernel("sum_partials", dfilters.dtype, compute)
    finish((_blocks(total),), (_THREADS,),
           (partials, np.int32(splits), np.int32(total), np.int32(dfilters.size), dfilters,
            dfilters if dbias is None else dbias))


def depthwise_conv2d_backprop_input(input_shape, filters, grad_output, strides=1, padding="VALID", *,
                                    data_format="NHWC", dilations=1, padding_mode="zeros", dtype=None, out=None,
                                    num_threads=None, filter_format=None):
    """``dwconv.depthwise_conv2d_backprop_input`` for GPU arrays."""
    filters, grad_output, out = _device_arrays(filters=filters, grad_output=grad_output, out=out)
    import cupy  # (after the check for host arrays, which needs no CuPy)

    c = _args.input_grad_call(input_shape, filters, grad_output, strides, padding, data_format, dilations,
                              padding_mode, dtype, filter_format, cupy)
    _check_threads(num_threads)
    with c.grad_output.device:
        dx = _args.output_array(out, c.shape, c.dtype, (("filters", c.filters), ("grad_output", c.grad_output)),
                                "input_shape", cupy, cupy.empty)
        _input_grad_into(dx, c.grad_output, c.filters, c.g, c.compute)
    return dx


def depthwise_conv2d_backprop_filter(x, filter_shape, grad_output, strides=1, padding="VALID", *,
                                     data_format="NHWC", dilations=1, padding_mode="zeros", dtype=None, out=None,
                                     num_threads=None, filter_format=None):
    """``dwconv.depthwise_conv2d_backprop_filter`` for GPU arrays; bitwise the same on every run."""
    x, grad_output, out = _device_arrays(x=x, grad_output=grad_output, out=out)
    import cupy  # (after the check for host arrays, which needs no CuPy)

    c = _args.filter_grad_call(x, filter_shape, grad_output, strides, padding, data_format, dilations,
                               padding_mode, dtype, filter_format, cupy)
    _check_threads(num_threads)
    with c.x.device:
        dfilters = _args.output_array(out, c.shape, c.dtype, (("x", c.x), ("grad_output", c.grad_output)),
                                      "filter_shape", cupy, cupy.empty)
        tf_dfilters = dfilters if c.filter_format == "tf" else cupy.empty(c.g.filter_shape, c.dtype)
        _filter_grad_into(tf_dfilters, None, c.x, c.grad_output, c.g, c.compute)
        if tf_dfilters is not dfilters:
            dfilters[...] = _args.filters_in_format(tf_dfilters, c)
    return dfilters


def depthwise_conv2d_grad(x, filters, grad_output, strides=1, padding="VALID", *, data_format="NHWC", dilations=1,
                          padding_mode="zeros", dtype=None, out=None, num_threads=None, filter_format=None):
    """``dwconv.depthwise_conv2d_grad`` for GPU arrays: ``Gradients(input, filters, bias)``."""
    outs = _args.gradient_outs(out)
    x, filters, grad_output, *outs = _device_arrays(x=x, filters=filters, grad_output=grad_output, out_input=outs[0],
                                                    out_filters=outs[1], out_bias=outs[2])
    import cupy  # (after the check for host arrays, which needs no CuPy)

    c = _args.grad_call(x, filters, grad_output, strides, padding, data_format, dilations, padding_mode, dtype,
                        filter_format, cupy)
    _check_threads(num_threads)
    with c.x.device:
        grads, tf_filters = _args.gradient_arrays(outs, c, cupy, cupy.empty)
        _input_grad_into(grads.input, c.grad_output, c.filters, c.g, c.compute)
        _filter_grad_into(tf_filters, grads.bias, c.x, c.grad_output, c.g, c.compute)
        if tf_filters is not grads.filters:
            grads.filters[...] = _args.filters_in_format(tf_filters, c)
        return grads


@functools.lru_cache(maxsize=None)
def _kernel(name, *specialization):
    """The compiled kernel `name` for `specialization` (dtypes, then a layout name), loaded once."""
    import cupy

    arguments = [_CUDA_TYPES[a] if isinstance(a, np.dtype) else ("true" if a == "NHWC" else "false")
                 for a in specialization]
    expression = f"{name}<{', '.join(arguments)}>"
    module = cupy.RawModule(code=source(), options=OPTIONS, name_expressions=(expression,))
    return module.get_function(expression)


@functools.lru_cache(maxsize=None)
def source():
    """The kernels' CUDA source: dwconv/_cuda_kernels.cu after the enums and macros it takes from here
    (the enums from dwconv._names, so that the codes passed are the same)."""
    header = f"""
{_names.c_enums()}#define PIXELS {PIXELS}
#define TAPS_PER_THREAD {TAPS_PER_THREAD}
"""
    return header + importlib.resources.files("dwconv").joinpath("_cuda_kernels.cu").read_text()
