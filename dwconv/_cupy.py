"""The GPU path: CuPy arrays (or other CUDA arrays) in, CUDA kernels, CuPy arrays out.

CuPy is imported only when a GPU array arrives: ``wants_gpu`` decides from the arguments' types
without it. Arguments are normalized by ``dwconv._args``, exactly as on the CPU. The kernels below
are compiled by NVRTC through ``cupy.RawModule`` once per specialization (storage types,
accumulation type, layout), cached, and launched on the current stream of the input's device.

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

import numpy as np

from dwconv import _args, _kernels

__all__ = ["wants_gpu", "depthwise_conv2d", "depthwise_conv2d_backprop_input", "depthwise_conv2d_backprop_filter",
           "depthwise_conv2d_grad", "available"]

_CUDA_DLPACK_DEVICES = (2, 13)  # kDLCUDA, kDLCUDAManaged
_HOST_TYPES = (np.ndarray, np.generic, list, tuple, int, float)
_FLOAT16, _FLOAT32 = np.dtype(np.float16), np.dtype(np.float32)
_CUDA_TYPES = {np.dtype(np.float16): "half_t", np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_THREADS = 256  # per block, every kernel
_MAX_BLOCKS = 1 << 20  # the kernels loop over grid strides beyond this
_INT32_MAX = 2**31 - 1


def _on_gpu(value):
    """Whether `value` is an array in CUDA device memory, decided without importing CuPy."""
    if value is None or isinstance(value, _HOST_TYPES):
        return False
    if type(value).__module__.partition(".")[0] in ("cupy", "cupyx") or hasattr(value, "__cuda_array_interface__"):
        return True
    dlpack_device = getattr(value, "__dlpack_device__", None)
    return dlpack_device is not None and dlpack_device()[0] in _CUDA_DLPACK_DEVICES


def wants_gpu(*arrays):
    """Whether any of these arguments is a GPU array, so that the call belongs to this module."""
    for array in arrays:  # (a loop, not any(): this runs on every call, and a generator costs)
        if _on_gpu(array):
            return True
    return False


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
    host = [name for name, value in given.items() if not _on_gpu(value)]
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
                         + ", ".join(f"`{name}` on device {d}" for name, d in devices.items()))
    return [arrays.get(name) for name in named]


def _output(out, shape, dtype, inputs):
    """`out` checked against the result it must hold, or a new CuPy array when it is None."""
    import cupy

    if out is None:
        return cupy.empty(shape, dtype)
    if out.shape != tuple(shape):
        raise ValueError(f"`out` has shape {out.shape}, expected {tuple(shape)}")
    if out.dtype != dtype:
        raise ValueError(f"`out` has dtype {out.dtype}, expected {np.dtype(dtype)}")
    if not out.flags.c_contiguous:
        raise ValueError("`out` must be C-contiguous")
    for name, array in inputs.items():
        if array is not None and cupy.may_share_memory(out, array):
            raise ValueError(f"`out` overlaps `{name}`; the result must go to separate memory")
    return out


def _storage(dtype, compute):
    """The dtype a data array is read in: float16 as it is when accumulating in float32, else `compute`."""
    return dtype if dtype == _FLOAT16 and compute == _FLOAT32 else compute


def _dims(g):
    """The geometry as the kernels' int arguments (after `N H W C M kh kw sh sw dh dw pt pl OH OW`, the mode)."""
    dims = (g.N, g.H, g.W, g.C, g.M, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl, g.OH, g.OW)
    counts = {"channels C*M": g.C * g.M, "filter size": g.kh * g.kw * g.C * g.M, "padded height": g.H + g.pt + g.pb,
              "padded width": g.W + g.pl + g.pr}
    for what, value in counts.items():
        if value > _INT32_MAX:
            raise ValueError(f"the GPU kernels index one image with 32-bit ints: the {what} {value} is too large")
    return tuple(np.int32(v) for v in dims) + (np.int32(_MODE_CODES[g.mode]),)


def _check_threads(num_threads):
    """`num_threads` validated as the CPU path does; the GPU has no use for it."""
    _args.resolve_threads(num_threads, _kernels.max_threads())


def _blocks(total):
    return max(1, min(-(-total // _THREADS), _MAX_BLOCKS))


def depthwise_conv2d(x, filters, strides=1, padding="VALID", *, data_format="NHWC", dilations=1, bias=None,
                     padding_mode="zeros", activation=None, dtype=None, out=None, num_threads=None, filter_format=None):
    """``dwconv.depthwise_conv2d`` for GPU arrays."""
    x, filters, bias, out = _device_arrays(x=x, filters=filters, bias=bias, out=out)
    import cupy  # (after the check for host arrays, which needs no CuPy)

    c = _args.forward_call(x, filters, strides, padding, data_format, dilations, padding_mode, bias, activation,
                           dtype, filter_format)
    _check_threads(num_threads)
    g, compute = c.g, c.compute
    with c.x.device:
        y = _output(out, c.shape, c.dtype, {"x": c.x, "filters": c.filters, "bias": c.bias})
        if y.size:
            x = _args.contiguous(c.x, _storage(c.x.dtype, compute))
            w = _args.contiguous(c.filters, compute)
            kernel = _kernel("forward", x.dtype, c.dtype, compute, g.layout)
            groups = g.N * g.C * g.M * (g.OH * -(-g.OW // PIXELS) if g.layout == "NHWC" else g.OW * -(-g.OH // PIXELS))
            fused = _ACTIVATION_CODES[None if callable(c.activation) else c.activation]
            kernel((_blocks(groups),), (_THREADS,),  # without a bias, the kernel is given w in its place, unread
                   (x, w, w if c.bias is None else c.bias, np.int32(c.bias is not None), y, *_dims(g),
                    np.int32(fused)))
    return _args.apply_activation(c.activation, y, cupy.asarray) if callable(c.activation) else y


def _input_grad_into(dx, grad_output, filters, g, compute):
    if dx.size:
        dy = _args.contiguous(grad_output, _storage(grad_output.dtype, compute))
        kernel = _kernel("input_grad", dy.dtype, dx.dtype, compute, g.layout)
        kernel((_blocks(dx.size),), (_THREADS,), (dy, _args.contiguous(filters, compute), dx, *_dims(g)))


def _filter_grad_into(dw, db, x, grad_output, g, compute):
    """Write the filter gradient into `dw` and, when `db` is not None, the bias gradient into `db`."""
    import cupy

    taps = g.kh * g.kw + (db is not None)
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
    finish = _kernel("sum_partials", dw.dtype, compute)
    finish((_blocks(total),), (_THREADS,),
           (partials, np.int32(splits), np.int32(total), np.int32(dw.size), dw, dw if db is None else db))


def depthwise_conv2d_backprop_input(input_shape, filters, grad_output, strides=1, padding="VALID", *,
                                    data_format="NHWC", dilations=1, padding_mode="zeros", dtype=None, out=None,
                                    num_threads=None, filter_format=None):
    """``dwconv.depthwise_conv2d_backprop_input`` for GPU arrays."""
    filters, grad_output, out = _device_arrays(filters=filters, grad_output=grad_output, out=out)
    c = _args.input_grad_call(input_shape, filters, grad_output, strides, padding, data_format, dilations,
                              padding_mode, dtype, filter_format)
    _check_threads(num_threads)
    with c.grad_output.device:
        dx = _output(out, c.shape, c.dtype, {"filters": c.filters, "grad_output": c.grad_output})
        _input_grad_into(dx, c.grad_output, c.filters, c.g, c.compute)
    return dx


def depthwise_conv2d_backprop_filter(x, filter_shape, grad_output, strides=1, padding="VALID", *,
                                     data_format="NHWC", dilations=1, padding_mode="zeros", dtype=None, out=None,
                                     num_threads=None, filter_format=None):
    """``dwconv.depthwise_conv2d_backprop_filter`` for GPU arrays; bitwise the same on every run."""
    x, grad_output, out = _device_arrays(x=x, grad_output=grad_output, out=out)
    import cupy  # (after the check for host arrays, which needs no CuPy)

    c = _args.filter_grad_call(x, filter_shape, grad_output, strides, padding, data_format, dilations,
                               padding_mode, dtype, filter_format)
    _check_threads(num_threads)
    with c.x.device:
        dw = _output(out, c.shape, c.dtype, {"x": c.x, "grad_output": c.grad_output})
        tf_dw = dw if c.filter_format == "tf" else cupy.empty(c.g.filter_shape, c.dtype)
        _filter_grad_into(tf_dw, None, c.x, c.grad_output, c.g, c.compute)
        if tf_dw is not dw:
            dw[...] = _args.filters_in_format(tf_dw, c)
    return dw


def depthwise_conv2d_grad(x, filters, grad_output, strides=1, padding="VALID", *, data_format="NHWC", dilations=1,
                          padding_mode="zeros", dtype=None, num_threads=None, filter_format=None):
    """``dwconv.depthwise_conv2d_grad`` for GPU arrays: ``Gradients(input, filters, bias)``."""
    from dwconv._conv import Gradients

    x, filters, grad_output = _device_arrays(x=x, filters=filters, grad_output=grad_output)
    import cupy  # (after the check for host arrays, which needs no CuPy)

    c = _args.grad_call(x, filters, grad_output, strides, padding, data_format, dilations, padding_mode, dtype,
                        filter_format)
    _check_threads(num_threads)
    with c.x.device:
        grads = Gradients(cupy.empty(c.g.input_shape, c.dtype), cupy.empty(c.filters.shape, c.dtype),
                          cupy.empty(c.g.C * c.g.M, c.dtype))
        _input_grad_into(grads.input, c.grad_output, c.filters, c.g, c.compute)
        _filter_grad_into(grads.filters, grads.bias, c.x, c.grad_output, c.g, c.compute)
        return grads._replace(filters=_args.contiguous(_args.filters_in_format(grads.filters, c), c.dtype))


@functools.lru_cache(maxsize=None)
def _kernel(name, *specialization):
    """The compiled kernel `name` for `specialization` (dtypes, then a layout name), loaded once."""
    import cupy

    arguments = [_CUDA_TYPES[a] if isinstance(a, np.dtype) else ("true" if a == "NHWC" else "false")
                 for a in specialization]
    expression = f"{name}<{', '.join(arguments)}>"
    module = cupy.RawModule(code=SOURCE, options=OPTIONS, name_expressions=(expression,))
    return module.get_function(expression)


# ----------------------------------------------------------------------------------------------
# The CUDA source. Its enums are written from dwconv._args, so the codes passed are the same.

PIXELS = 4  # forward outputs per thread
TAPS_PER_THREAD = 8  # filter-gradient taps summed by one thread in one pass over its pixels
OPTIONS = ("-std=c++14",)
_MODE_CODES = {name: code for code, name in enumerate(_args.PADDING_MODES)}
_ACTIVATION_CODES = {name: code for code, name in enumerate((None, *_args.ACTIVATIONS))}

SOURCE = f"""
enum Mode {{ {', '.join(name.upper() for name in _MODE_CODES)} }};
enum Activation {{ IDENTITY, {', '.join(name.upper() for name in _args.ACTIVATIONS)} }};
#define PIXELS {PIXELS}
#define TAPS_PER_THREAD {TAPS_PER_THREAD}
""" + r"""
typedef unsigned short half_t;  // float16 bits, converted with the PTX instructions cuda_fp16.h uses

#ifdef __CUDACC__
__device__ __forceinline__ float value(half_t v) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(v));
    return f;
}
__device__ __forceinline__ void store(half_t *p, float v) {
    half_t h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v));
    *p = h;
}
#else  // a host compiler: the tests run these kernels on the CPU
__device__ __forceinline__ float value(half_t v) { _Float16 h; memcpy(&h, &v, 2); return (float)h; }
__device__ __forceinline__ void store(half_t *p, float v) { _Float16 h = (_Float16)v; memcpy(p, &h, 2); }
#endif
__device__ __forceinline__ float value(float v) { return v; }
__device__ __forceinline__ double value(double v) { return v; }
__device__ __forceinline__ void store(float *p, float v) { *p = v; }
__device__ __forceinline__ void store(double *p, double v) { *p = v; }

__device__ __forceinline__ int floor_mod(int a, int b) {
    const int r = a % b;
    return r < 0 ? r + b : r;
}

__device__ __forceinline__ int ceil_div(int a, int b) {  // b > 0, any a
    return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

// The input coordinate whose value padded coordinate p (counted from the input's first pixel)
// holds along an axis of n pixels, as numpy.pad fills it; -1 where the padding holds zeros.
__device__ __forceinline__ int source(int p, int n, int mode) {
    if (p >= 0 && p < n) return p;
    if (mode == ZEROS || n == 0) return -1;  // an empty axis has nothing to copy
    if (mode == REPLICATE) return p < 0 ? 0 : n - 1;
    if (mode == CIRCULAR) return floor_mod(p, n);
    if (n == 1) return 0;
    const int period = 2 * (n - 1);  // REFLECT about the first and the last pixel
    const int q = floor_mod(p, period);
    return q < n ? q : period - q;
}

template <typename A>
__device__ __forceinline__ A activate(A v, int act) {
    switch (act) {  // comparisons written so that NaN stays NaN
    case RELU: return v < A(0) ? A(0) : v;
    case RELU6: return v < A(0) ? A(0) : v > A(6) ? A(6) : v;
    case SIGMOID: return A(1) / (A(1) + exp(-v));
    case TANH: return tanh(v);
    case GELU: return A(0.5) * v * (A(1) + erf(v * A(0.70710678118654752440)));
    case SILU: return v / (A(1) + exp(-v));
    case HARD_SWISH: return v * (v < A(-3) ? A(0) : v > A(3) ? A(6) : v + A(3)) / A(6);
    default: return v;
    }
}

// Offset of element (n, h, w, c) of an image batch of H x W pixels and C channels.
template <bool NHWC>
__device__ __forceinline__ long long at(int n, int h, int w, int c, int H, int W, int C) {
    return NHWC ? (((long long)n * H + h) * W + w) * C + c : (((long long)n * C + c) * H + h) * W + w;
}

struct Index { int n, h, w, c; };

// The element at flat position t of an H x W x C batch in memory order: consecutive threads get
// consecutive channels in NHWC, consecutive columns in NCHW.
template <bool NHWC>
__device__ __forceinline__ Index unflatten(long long t, int H, int W, int C) {
    Index i;
    if (NHWC) {
        i.c = (int)(t % C); t /= C;
        i.w = (int)(t % W); t /= W;
        i.h = (int)(t % H); i.n = (int)(t / H);
    } else {
        i.w = (int)(t % W); t /= W;
        i.h = (int)(t % H); t /= H;
        i.c = (int)(t % C); i.n = (int)(t / C);
    }
    return i;
}

#define GEOMETRY int N, int H, int W, int C, int M, int kh, int kw, int sh, int sw, int dh, int dw, \
                 int pt, int pl, int OH, int OW, int mode
#define GRID_STRIDE_LOOP(t, total) \
    for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < (total); \
         t += (long long)gridDim.x * blockDim.x)

// y = act(bias + depthwise_conv2d(x, w)). Each thread: PIXELS outputs of output channel co, along
// the row in NHWC, down the column in NCHW; out-of-range ones are computed and not stored.
template <typename Tx, typename Ty, typename A, bool NHWC>
__global__ void forward(const Tx *x, const A *w, const A *bias, int has_bias, Ty *y, GEOMETRY, int act) {
    const int CM = C * M;
    const int rows = NHWC ? OH : (OH + PIXELS - 1) / PIXELS, cols = NHWC ? (OW + PIXELS - 1) / PIXELS : OW;
    GRID_STRIDE_LOOP(t, (long long)N * rows * cols * CM) {
        const Index o = unflatten<NHWC>(t, rows, cols, CM);
        const int oh0 = NHWC ? o.h : o.h * PIXELS, ow0 = NHWC ? o.w * PIXELS : o.w, c = o.c / M;
        A acc[PIXELS];
        #pragma unroll
        for (int p = 0; p < PIXELS; ++p) acc[p] = has_bias ? bias[o.c] : A(0);
        for (int i = 0; i < kh; ++i) {
            for (int j = 0; j < kw; ++j) {
                const A tap = w[(i * kw + j) * CM + o.c];
                #pragma unroll
                for (int p = 0; p < PIXELS; ++p) {
                    const int ih = source((oh0 + (NHWC ? 0 : p)) * sh + i * dh - pt, H, mode);
                    const int iw = source((ow0 + (NHWC ? p : 0)) * sw + j * dw - pl, W, mode);
                    if (ih >= 0 && iw >= 0) acc[p] += tap * value(x[at<NHWC>(o.n, ih, iw, c, H, W, C)]);
                }
            }
        }
        #pragma unroll
        for (int p = 0; p < PIXELS; ++p) {
            const int oh = oh0 + (NHWC ? 0 : p), ow = ow0 + (NHWC ? p : 0);
            if (oh < OH && ow < OW) store(&y[at<NHWC>(o.n, oh, ow, o.c, OH, OW, CM)], activate(acc[p], act));
        }
    }
}

// Along one axis, the output coordinates whose tap t reads input coordinate `in`. Candidate 0 is
// the output whose tap lands on `in` itself; in the padding modes other than zeros, candidates
// 1.. are the outputs whose tap lands in the padding ([0, before) before the input, [after, out)
// after it), which read `in` where source() maps their coordinate to it.
struct Readers { int in, n, t, pad, s, d, out, mode, before, after, count; };

__device__ __forceinline__ Readers readers(int in, int n, int t, int pad, int s, int d, int out, int mode) {
    const int before = min(max(ceil_div(pad - t * d, s), 0), out);
    const int after = min(max(ceil_div(n + pad - t * d, s), before), out);
    const int count = mode == ZEROS ? 1 : 1 + before + out - after;
    const Readers r = {in, n, t, pad, s, d, out, mode, before, after, count};
    return r;
}

// The k-th candidate of r, or -1 where it does not read r.in.
__device__ __forceinline__ int reader(const Readers &r, int k) {
    if (k == 0) {
        const int q = r.in + r.pad - r.t * r.d;
        return q >= 0 && q % r.s == 0 && q / r.s < r.out ? q / r.s : -1;
    }
    const int o = k - 1 < r.before ? k - 1 : r.after + (k - 1 - r.before);
    return source(o * r.s + r.t * r.d - r.pad, r.n, r.mode) == r.in ? o : -1;
}

// dx = the gradient of sum(y * dy) with respect to x: one input pixel and channel per thread.
template <typename Tdy, typename Tdx, typename A, bool NHWC>
__global__ void input_grad(const Tdy *dy, const A *w, Tdx *dx, GEOMETRY) {
    const int CM = C * M;
    GRID_STRIDE_LOOP(t, (long long)N * H * W * C) {
        const Index in = unflatten<NHWC>(t, H, W, C);
        A acc = A(0);
        for (int i = 0; i < kh; ++i) {
            const Readers rows = readers(in.h, H, i, pt, sh, dh, OH, mode);
            for (int kr = 0; kr < rows.count; ++kr) {
                const int oh = reader(rows, kr);
                if (oh < 0) continue;
                for (int j = 0; j < kw; ++j) {
                    const Readers cols = readers(in.w, W, j, pl, sw, dw, OW, mode);
                    for (int kc = 0; kc < cols.count; ++kc) {
                        const int ow = reader(cols, kc);
                        if (ow < 0) continue;
                        for (int m = 0; m < M; ++m) {
                            const int co = in.c * M + m;
                            acc += w[(i * kw + j) * CM + co] * value(dy[at<NHWC>(in.n, oh, ow, co, OH, OW, CM)]);
                        }
                    }
                }
            }
        }
        store(&dx[t], acc);
    }
}

extern __shared__ unsigned char shared_bytes[];

// Partial sums of the filter gradient (and, as tap kh*kw when taps > kh*kw, of the bias gradient)
// over the slice blockIdx.z of the N*OH*OW output pixels, for output channels blockIdx.x *
// blockDim.x + threadIdx.x and taps from blockIdx.y * TAPS_PER_THREAD: partials[z][tap][co].
// blockDim.y is a power of two.
template <typename Tx, typename Tdy, typename A, bool NHWC>
__global__ void filter_grad_partials(const Tx *x, const Tdy *dy, A *partials, int taps, GEOMETRY) {
    A *lanes = reinterpret_cast<A *>(shared_bytes);
    const int CM = C * M, co = blockIdx.x * blockDim.x + threadIdx.x, tap0 = blockIdx.y * TAPS_PER_THREAD;
    const long long pixels = (long long)N * OH * OW;
    const long long begin = pixels * blockIdx.z / gridDim.z, end = pixels * (blockIdx.z + 1) / gridDim.z;
    A acc[TAPS_PER_THREAD];
    #pragma unroll
    for (int k = 0; k < TAPS_PER_THREAD; ++k) acc[k] = A(0);
    if (co < CM) {
        for (long long p = begin + threadIdx.y; p < end; p += blockDim.y) {
            const int ow = (int)(p % OW), oh = (int)(p / OW % OH), n = (int)(p / OW / OH);
            const A g = value(dy[at<NHWC>(n, oh, ow, co, OH, OW, CM)]);
            #pragma unroll
            for (int k = 0; k < TAPS_PER_THREAD; ++k) {
                const int tap = tap0 + k;
                if (tap < kh * kw) {
                    const int ih = source(oh * sh + tap / kw * dh - pt, H, mode);
                    const int iw = source(ow * sw + tap % kw * dw - pl, W, mode);
                    if (ih >= 0 && iw >= 0) acc[k] += g * value(x[at<NHWC>(n, ih, iw, co / M, H, W, C)]);
                } else if (tap < taps) {
                    acc[k] += g;  // the bias
                }
            }
        }
    }
    // Sum the pixel lanes of each channel lane in a fixed tree (the loop bounds are the block's own).
    const int lane = threadIdx.y * blockDim.x + threadIdx.x;
    #pragma unroll
    for (int k = 0; k < TAPS_PER_THREAD; ++k) {
        if (tap0 + k >= taps) break;
        lanes[lane] = acc[k];
        __syncthreads();
        for (int half = blockDim.y / 2; half > 0; half /= 2) {
            if (threadIdx.y < half) lanes[lane] += lanes[lane + half * blockDim.x];
            __syncthreads();
        }
        if (threadIdx.y == 0 && co < CM) partials[((long long)blockIdx.z * taps + tap0 + k) * CM + co] = lanes[lane];
        __syncthreads();
    }
}

// dw[t] (t < filter_count), then db[t - filter_count]: the partial sums of each, in order.
template <typename Tw, typename A>
__global__ void sum_partials(const A *partials, int splits, int count, int filter_count, Tw *dw, Tw *db) {
    GRID_STRIDE_LOOP(t, count) {
        A sum = A(0);
        for (int z = 0; z < splits; ++z) sum += partials[(long long)z * count + t];
        store(t < filter_count ? &dw[t] : &db[t - filter_count], sum);
    }
}
"""
