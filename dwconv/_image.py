"""Image filtering in OpenCV's terms: ``filter2d`` and ``sep_filter2d`` take ``(H, W)`` and
``(H, W, C)`` images, one kernel for every channel or one per channel, OpenCV's border names, and
give a result of the image's size and (by default) dtype, so that code written around
``cv2.filter2D`` / ``cv2.sepFilter2D`` switches without reshaping. Both are thin layers over
``depthwise_conv2d`` (the image is one NHWC batch, viewed, never copied), but for sep_filter2d with
one filter pair for every channel, which runs both passes fused (_kernels.separable)."""
import numbers

import numpy as np

from dwconv import _args, _kernels
from dwconv._conv import _threads, depthwise_conv2d

__all__ = ["filter2d", "sep_filter2d", "BORDERS"]

# Every name a border can go by, and the padding mode it is: dwconv's own, numpy.pad's, and
# OpenCV's (by name, any case, with or without "BORDER_", and by the value of its cv2 constant).
BORDERS = {
    "zeros": "zeros", "constant": "zeros", "border_constant": "zeros", 0: "zeros",
    "replicate": "replicate", "edge": "replicate", "border_replicate": "replicate", 1: "replicate",
    "symmetric": "symmetric", "border_reflect": "symmetric", 2: "symmetric",
    "circular": "circular", "wrap": "circular", "border_wrap": "circular", 3: "circular",
    "reflect": "reflect", "border_reflect_101": "reflect", "border_reflect101": "reflect",
    "border_default": "reflect", "reflect_101": "reflect", "reflect101": "reflect", "default": "reflect",
    4: "reflect",
}


def _border(value):
    """The padding mode a border name or cv2 constant stands for (BORDERS)."""
    if isinstance(value, str):
        mode = BORDERS.get(value.lower(), BORDERS.get("border_" + value.lower()))
    else:
        mode = BORDERS.get(int(value)) if _args.is_int(value) else None
    if mode is not None:
        return mode
    names = ", ".join(repr(name) for name in BORDERS if isinstance(name, str) and not name.startswith("border_"))
    raise ValueError(f"`border` must be one of {names}, OpenCV's BORDER_* names (any case) or the values of "
                     f"cv2.BORDER_CONSTANT, _REPLICATE, _REFLECT, _WRAP, _REFLECT_101; got {value!r}")


def _array(value, name):
    """`value` as an array (a GPU array stays one)."""
    return value if hasattr(value, "ndim") and hasattr(value, "dtype") else _args.as_array(value, name)


def _image(image):
    """`image` and its NHWC view: (H, W) is one channel, (H, W, C) C of them."""
    image = _array(image, "image")
    if image.ndim not in (2, 3):
        hint = "; for a batch of images call dwconv.depthwise_conv2d" if image.ndim == 4 else ""
        raise ValueError(f"`image` must be (H, W) or (H, W, C), got shape {tuple(image.shape)}{hint}")
    return image, image.reshape(1, *image.shape[:2], image.shape[2] if image.ndim == 3 else 1)


def _per_channel(kernel, name, ndim, channels, what):
    """`kernel` ((k...) for every channel, or (k..., C) one per channel) as (k..., C).

    A 1-D filter may also come as OpenCV's column or row vector, (k, 1) or (1, k): one filter for
    every channel (for one channel, the same as one per channel)."""
    kernel = _array(kernel, name)
    if ndim == 1 and kernel.ndim == 2 and 1 in kernel.shape and kernel.shape != (1, 1):
        kernel = kernel.reshape(-1)
    if kernel.ndim == ndim + 1 and kernel.shape[-1] == channels:
        return kernel
    if kernel.ndim == ndim:
        return kernel[..., None] if channels == 1 else kernel[..., None].repeat(channels, axis=-1)
    raise ValueError(f"`{name}` must be {what} for every channel or {what[:-1]}, {channels}) for the image's "
                     f"{channels} channel(s); got shape {tuple(kernel.shape)}")


def _anchor(anchor, kh, kw):
    """OpenCV's anchor (x, y) within the kernel, (-1, -1) or None for its centre, as the padding
    ((top, bottom), (left, right)) that keeps the image's size."""
    items = [-1, -1] if anchor is None else _args._sequence(anchor)
    if items is None or len(items) != 2 or not all(_args.is_int(v) for v in items):
        raise ValueError(f"`anchor` must be a pair (x, y) of ints, got {anchor!r}")
    ax, ay = kw // 2 if items[0] == -1 else items[0], kh // 2 if items[1] == -1 else items[1]
    if not (0 <= ax < kw and 0 <= ay < kh):
        raise ValueError(f"`anchor` must be (x, y) inside the {kh}x{kw} kernel, or (-1, -1) for its centre; "
                         f"got {anchor!r}")
    return (ay, kh - 1 - ay), (ax, kw - 1 - ax)


def _result(image, out, dtype):
    """The result's dtype (the image's by default, as OpenCV's ddepth=-1) and `out` as an NHWC view."""
    dtype = image.dtype if dtype is None else dtype
    if out is None:
        return dtype, None
    if tuple(getattr(out, "shape", ())) != tuple(image.shape):
        raise ValueError(f"`out` must have the image's shape {tuple(image.shape)}, got "
                         f"{tuple(getattr(out, 'shape', ())) or type(out).__name__}")
    if not out.flags.c_contiguous:  # (its NHWC view would be a copy, and the result lost)
        raise ValueError("`out` must be C-contiguous")
    return dtype, out.reshape(1, *out.shape[:2], -1)


def _delta(delta, channels):
    if not isinstance(delta, numbers.Real) or isinstance(delta, (bool, np.bool_)):
        raise TypeError(f"`delta` must be a number, got {delta!r}")
    return None if delta == 0 else [float(delta)] * channels


# What filter2d's checks concluded for a call whose result it allocates (the image's NHWC shape, the
# padding, mode, bias and dtype depthwise_conv2d is given), by the call's signature (_args'): a
# pipeline filtering images of one size skips them, 6-8 of the 25-30 us of a call on a small image
# (cv2.filter2D's is 5 us).
_FILTER_CALLS, _MAX_FILTER_CALLS = {}, 256


def filter2d(image, kernel, border="reflect", *, delta=0, anchor=None, dtype=None, out=None, num_threads=None,
             separable=False):
    """Correlate each channel of `image` with `kernel`, as ``cv2.filter2D(image, -1, kernel)`` does.

    Parameters
    ----------
    image : array_like, (H, W) or (H, W, C)
        uint8, uint16, int16, int32, float16, float32 or float64 (integers are computed in float32).
    kernel : array_like, (kh, kw) for every channel, or (kh, kw, C) one per channel
    border : str or int
        What lies outside the image: ``"reflect"`` (the default, OpenCV's BORDER_REFLECT_101 and
        BORDER_DEFAULT), ``"replicate"``, ``"circular"`` (BORDER_WRAP), ``"symmetric"``
        (BORDER_REFLECT, ``numpy.pad``'s name) or ``"zeros"`` (BORDER_CONSTANT with 0); also
        ``numpy.pad``'s names, OpenCV's names in any case, and the values of the cv2 constants.
    delta : number
        Added to every result pixel, before the rounding.
    anchor : (x, y), optional
        The kernel's pixel that lies over the result's pixel, as OpenCV's; (-1, -1) or None for the
        centre, ``(kw // 2, kh // 2)``.
    dtype : optional
        The result's dtype: the image's by default (OpenCV's ``ddepth=-1``). Integer results are
        rounded to nearest and saturated, as OpenCV's are.
    out : ndarray, optional
        C-contiguous, of the image's shape and the result's dtype; written and returned.
    num_threads : int, optional
        As for ``depthwise_conv2d``.
    separable : bool
        Where every channel's kernel is the outer product of a column and a row filter (rank 1, to
        the rounding of the dtype computed in), filter with those as ``sep_filter2d`` does: kh + kw
        multiply-adds a pixel instead of kh * kw. The results are the same to that rounding; an
        integer result may differ by 1 where a sum lies within it of a tie (x.5).

    Returns
    -------
    An array of the image's shape.
    """
    key = None if out is not None or separable else _args._signature(np, (image, kernel),
                                                                     ("filter2d", border, delta, anchor, dtype))
    known = _FILTER_CALLS.get(key) if key is not None else None
    if known is not None:
        x_shape, padding, mode, bias, plain_dtype = known
        y = depthwise_conv2d(image.reshape(x_shape), _per_channel(kernel, "kernel", 2, x_shape[3], "(kh, kw)"), 1,
                             padding, padding_mode=mode, bias=bias, dtype=plain_dtype, num_threads=num_threads)
        return y.reshape(image.shape)
    image, x = _image(image)
    channels = x.shape[3]
    kernel = _per_channel(kernel, "kernel", 2, channels, "(kh, kw)")
    mode = _border(border)
    # Plain arguments are the quickest for depthwise_conv2d's cache of checked calls to look up: an
    # int padding where it says as much, and no dtype where the default is the same (plain_dtype).
    (top, bottom), (left, right) = padding = _anchor(anchor, *kernel.shape[:2])
    if top == bottom == left == right:
        padding = top
    dtype, nhwc_out = _result(image, out, dtype)
    factors = _rank_one_factors(kernel, _args.result_dtype(dtype, (x,), kernel, integers=True)[1]) if separable \
        else None
    if factors is not None:
        return sep_filter2d(image, factors[1], factors[0], border, delta=delta, anchor=anchor, dtype=dtype, out=out,
                            num_threads=num_threads)
    plain_dtype = None if dtype == x.dtype == kernel.dtype and x.dtype.kind == "f" else dtype
    bias = _delta(delta, channels)
    y = depthwise_conv2d(x, kernel, 1, padding, padding_mode=mode, bias=bias, dtype=plain_dtype, out=nhwc_out,
                         num_threads=num_threads)
    if key is not None:  # (checked: depthwise_conv2d took them)
        _args.keep(_FILTER_CALLS, key, (x.shape, padding, mode, bias, plain_dtype), _MAX_FILTER_CALLS)
    return y.reshape(image.shape) if out is None else out


def _rank_one_factors(kernel, compute):
    """The column and row filters ((kh, C) and (kw, C), in `compute`) whose outer products are the
    channels of `kernel` ((kh, kw, C)) to `compute`'s rounding; None where one channel's is not such
    a product, or the kernel is one row or column already (or a GPU array, or not finite)."""
    if not isinstance(kernel, np.ndarray) or 1 in kernel.shape[:2] or not np.isfinite(kernel).all():
        return None
    kh, kw, channels = kernel.shape
    eps = np.finfo(compute).eps
    columns, rows = np.empty((kh, channels), compute), np.empty((kw, channels), compute)
    for c in range(channels):
        k = kernel[:, :, c].astype(np.float64)
        u, s, vt = np.linalg.svd(k)
        if s[1] > 4 * eps * s[0] * max(kh, kw):
            return None
        columns[:, c], rows[:, c] = u[:, 0] * np.sqrt(s[0]), vt[0] * np.sqrt(s[0])
        # (the factors as computed in: their products must give the kernel's taps to its rounding)
        if np.abs(np.outer(columns[:, c], rows[:, c]) - k).max() > 4 * eps * np.abs(k).max():
            return None
    return columns, rows


def sep_filter2d(image, kernel_x, kernel_y, border="reflect", *, delta=0, anchor=None, dtype=None, out=None,
                 num_threads=None):
    """Filter each channel of `image` with the column filter `kernel_y`, then the row filter
    `kernel_x`, as ``cv2.sepFilter2D(image, -1, kernel_x, kernel_y)`` does: the same result as
    ``filter2d`` with the kernel ``outer(kernel_y, kernel_x)``, in kh + kw multiply-adds per pixel
    instead of kh * kw.

    `kernel_x`: (kw,) for every channel (or OpenCV's (kw, 1) or (1, kw) vector), or (kw, C) one per
    channel; `kernel_y` likewise with kh. The other arguments are ``filter2d``'s. The column pass
    keeps float32 (float64 for float64 results) and rounds nothing; only the result is rounded.
    On a NumPy image, with one column and one row filter for every channel, both passes run fused,
    an output row at a time: its column sums stay in cache, and the image is never padded or copied.
    """
    image, x = _image(image)
    channels = x.shape[3]
    rows = _per_channel(kernel_x, "kernel_x", 1, channels, "(kw,)")
    columns = _per_channel(kernel_y, "kernel_y", 1, channels, "(kh,)")
    mode = _border(border)
    (top, bottom), (left, right) = _anchor(anchor, columns.shape[0], rows.shape[0])
    dtype, nhwc_out = _result(image, out, dtype)
    dtype, compute = _args.result_dtype(dtype, (x,), rows, columns, integers=True)
    # One filter for every channel, on a NumPy image: the fused kernel. Filters that differ by
    # channel, and GPU arrays, take two passes over the whole image, through a float image of column
    # sums (1080p RGB, 2 threads, 11 taps: 8.0 ms for uint8 or float32, where the Python loop over
    # strips of rows the fused kernel replaced took 9.9 and 10.6; shared filters fused 2.4 and 3.8).
    if isinstance(x, np.ndarray) and (columns == columns[:, :1]).all() and (rows == rows[:, :1]).all():
        y = _args.output_array(None, x.shape, dtype) if nhwc_out is None else nhwc_out
        _filter_fused(x, columns[:, 0], rows[:, 0], ((top, bottom), (left, right)), mode, delta, compute, y,
                      num_threads)
    else:
        column_sums = depthwise_conv2d(x, columns[:, None, :], 1, ((top, bottom), (0, 0)), padding_mode=mode,
                                       dtype=compute, num_threads=num_threads)
        y = depthwise_conv2d(column_sums, rows[None, :, :], 1, ((0, 0), (left, right)), padding_mode=mode,
                             bias=_delta(delta, channels), dtype=dtype, out=nhwc_out, num_threads=num_threads)
    return y.reshape(image.shape) if out is None else out


# numpy.pad's name for each padding mode but zeros
_NUMPY_PAD = {"reflect": "reflect", "replicate": "edge", "circular": "wrap", "symmetric": "symmetric"}

# The integer pixels the fused kernel reads and writes itself when it computes in float32 (int16,
# rarer, is converted: its own micro-kernels would add ~25 KB of machine code)
_INTEGER_PIXELS = (np.dtype(np.uint8), np.dtype(np.uint16))


def _filter_fused(x, column_filter, row_filter, padding, mode, delta, compute, y, num_threads):
    """sep_filter2d of the NHWC image `x` into `y` with the column filter `column_filter` and the row
    filter `row_filter` ((kh,) and (kw,)), in one compiled pass (_kernels.separable). Images and
    results of another type than the compute type or (in float32) uint8 and uint16 are converted by
    NumPy."""
    (top, bottom), (left, right) = padding
    _, height, width, _ = x.shape
    n_threads = _threads(num_threads)
    pixels = (compute,) + (_INTEGER_PIXELS if compute == np.float32 else ())
    x = np.ascontiguousarray(x) if x.dtype in pixels else _args.contiguous(x, compute, n_threads)
    if np.may_share_memory(x, y):  # (in place: a row's result would overwrite later rows' source rows)
        x = x.copy()
    result = y if y.dtype in pixels else np.empty(y.shape, compute)
    if mode == "zeros":  # (-1: a row of zeros; the padded columns stay zeros)
        source_rows = np.pad(np.arange(height), (top, bottom), constant_values=-1)
        source_columns = np.empty(0, np.intp)
    else:
        source_rows = np.pad(np.arange(height), (top, bottom), _NUMPY_PAD[mode])
        padded_columns = np.pad(np.arange(width), (left, right), _NUMPY_PAD[mode])
        source_columns = np.concatenate([padded_columns[:left], padded_columns[left + width:]])
    _kernels.separable(x, result, column_filter.astype(compute), row_filter.astype(compute),
                       source_rows.astype(np.intp), source_columns.astype(np.intp), left, float(delta), n_threads)
    if result is not y:
        _args.round_into(y, result, n_threads=n_threads)
