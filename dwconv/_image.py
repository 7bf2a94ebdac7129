"""Image filtering in OpenCV's terms: ``filter2d`` and ``sep_filter2d`` take ``(H, W)`` and
``(H, W, C)`` images, one kernel for every channel or one per channel, OpenCV's border names, and
give a result of the image's size and (by default) dtype, so that code written around
``cv2.filter2D`` / ``cv2.sepFilter2D`` switches without reshaping. Both are thin layers over
``depthwise_conv2d``: the image is one NHWC batch, viewed, never copied."""
import concurrent.futures
import math
import numbers

import numpy as np

from dwconv import _args
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
        return kernel[..., None].repeat(channels, axis=-1)
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
    image, x = _image(image)
    channels = x.shape[3]
    kernel = _per_channel(kernel, "kernel", 2, channels, "(kh, kw)")
    mode = _border(border)
    padding = _anchor(anchor, *kernel.shape[:2])
    dtype, nhwc_out = _result(image, out, dtype)
    factors = _rank_one_factors(kernel, _args.result_dtype(dtype, (x,), kernel, integers=True)[1]) if separable \
        else None
    if factors is not None:
        return sep_filter2d(image, factors[1], factors[0], border, delta=delta, anchor=anchor, dtype=dtype, out=out,
                            num_threads=num_threads)
    y = depthwise_conv2d(x, kernel, 1, padding, padding_mode=mode, bias=_delta(delta, channels), dtype=dtype,
                         out=nhwc_out, num_threads=num_threads)
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
    keeps float32 (float64 for float64 images) and rounds nothing; only the result is rounded.
    A NumPy image whose column sums take more than ~1 MiB is filtered a strip of rows at a time, so
    that they stay in cache.
    """
    image, x = _image(image)
    channels = x.shape[3]
    rows = _per_channel(kernel_x, "kernel_x", 1, channels, "(kw,)")
    columns = _per_channel(kernel_y, "kernel_y", 1, channels, "(kh,)")
    mode = _border(border)
    (top, bottom), (left, right) = _anchor(anchor, columns.shape[0], rows.shape[0])
    dtype, nhwc_out = _result(image, out, dtype)
    dtype, compute = _args.result_dtype(dtype, (x,), rows, columns, integers=True)
    # The two passes over the whole image, for a GPU array, or for an image whose column sums fit in
    # one strip anyway: there the strips' copies cost more than they save (1 thread, 512x512 gray
    # float32: 1.6 vs 0.8-0.9 ms at 11 taps, 2.0 vs 1.3 ms at 31; 320x240 RGB float32: 1.0-1.1 ms both).
    if not isinstance(x, np.ndarray) or x.size * compute.itemsize <= STRIP_BYTES:
        column_sums = depthwise_conv2d(x, columns[:, None, :], 1, ((top, bottom), (0, 0)), padding_mode=mode,
                                       dtype=compute, num_threads=num_threads)
        y = depthwise_conv2d(column_sums, rows[None, :, :], 1, ((0, 0), (left, right)), padding_mode=mode,
                             bias=_delta(delta, channels), dtype=dtype, out=nhwc_out, num_threads=num_threads)
    else:
        y = _args.output_array(None, x.shape, dtype) if nhwc_out is None else nhwc_out
        if np.may_share_memory(x, y):  # (in place: a strip's result would overwrite the next one's input rows)
            x = x.copy()
        _filter_in_strips(x, columns, rows, ((top, bottom), (left, right)), mode, delta, compute, y, num_threads)
    return y.reshape(image.shape) if out is None else out


# numpy.pad's name for each padding mode but zeros
_NUMPY_PAD = {"reflect": "reflect", "replicate": "edge", "circular": "wrap", "symmetric": "symmetric"}

# sep_filter2d's strips: the float32 column sums of one strip take this many bytes at most (each
# thread's L2 is 1 MiB on the 2-vCPU EPYC measured), yet hold no fewer rows than MIN_STRIP_ROWS (each
# call costs ~10-30 us). 1080p RGB, 2 threads, median/min ms of 9 interleaved rounds on that busy
# machine, strips of 24 / 45 (1 MiB) / 90 / 180 rows: 11 taps uint8 36-39/18-27 at 24-90 rows and
# 36/24 at 180; float32 34-44/12-13 and 46/20; 31 taps uint8 79-85/42-50 and 85/58, float32 61-71/38-42
# and 59/46. The two passes over the whole image took 88/78, 49/37, 140/127 and 75/42.
# The column pass comes first: it reads only the strip's rows plus kh - 1, where a row pass first
# would filter those kh - 1 rows again for every strip (64-row float32 strips, 2 threads: 21 vs 44 ms
# for 11 taps, 46 vs 93 ms for 31).
STRIP_BYTES = 1 << 20
MIN_STRIP_ROWS = 16


def _filter_in_strips(x, columns, rows, padding, mode, delta, compute, y, num_threads):
    """sep_filter2d of the NHWC image `x` into `y`, a strip of result rows at a time: the strip's
    rows of the padded image are copied into one buffer (padding included, so that both passes are
    VALID), the column pass sums them into another, L2-sized, and the row pass reads those and writes
    the strip's rows of `y` (in its dtype: the kernels convert and round).

    Each of `num_threads` Python threads filters a band of whole strips with one kernel thread and
    buffers of its own (the kernels release the GIL): on the busy 2-vCPU machine, two OpenMP threads
    in every call took 10x as long (1080p RGB, 11 taps: 225 vs 20 ms, median), waiting at each call's
    barrier for a thread the other processes held."""
    (top, bottom), (left, right) = padding
    _, height, width, channels = x.shape
    padded_width = left + width + right
    strip = _strip_rows(padded_width * channels, width * channels * y.dtype.itemsize)
    if mode != "zeros":  # which image row (column) each row (column) of the padded image is
        padded_rows = np.pad(np.arange(height), (top, bottom), _NUMPY_PAD[mode])
        padded_columns = np.pad(np.arange(width), (left, right), _NUMPY_PAD[mode])
    # A filter shared by every channel runs on rows viewed as one channel W * C wide (the row filter's
    # taps C apart), which the kernels run 1.5-1.9x faster than C interleaved channels: 1920x3 float32
    # rows, 64 of them, 11 and 31 taps: columns 0.33 vs 0.46-0.68 ms and 0.72-0.85 vs 1.32-1.37 ms;
    # rows 0.21 vs 0.35 ms and 0.44 vs 0.80 ms.
    shared = bool((columns == columns[:, :1]).all() and (rows == rows[:, :1]).all())
    view_channels = 1 if shared else channels
    column_filter = columns[:, None, :view_channels]
    row_filter, dilation = rows[None, :, :view_channels], (1, channels if shared else 1)
    bias = _delta(delta, view_channels)

    def view(a):
        return a.reshape(1, a.shape[1], -1, view_channels)

    def padding_rows(padded):
        """The padding rows `padded` (a slice of the padded image's rows)."""
        return 0 if mode == "zeros" else x[:, padded_rows[padded]]

    def filter_band(band_start, band_stop):
        image_rows = _args.output_array(None, (1, top + strip + bottom, padded_width, channels), x.dtype)
        if mode == "zeros":  # (the padding columns, which stay 0)
            image_rows[:, :, :left] = image_rows[:, :, left + width:] = 0
        column_sums = _args.output_array(None, (1, strip, padded_width, channels), compute)
        for start in range(band_start, band_stop, strip):
            stop = min(start + strip, band_stop)
            first, last = start - top, stop + bottom  # the padded image's rows this strip's column pass reads
            above, below = max(-first, 0), max(last - height, 0)  # how many of them are padding
            strip_rows = image_rows[:, :last - first]
            inside = strip_rows[:, :, left:left + width]
            np.copyto(inside[:, above:last - first - below], x[:, first + above:last - below])
            if above:
                inside[:, :above] = padding_rows(slice(start, start + above))
            if below:
                inside[:, last - first - below:] = padding_rows(slice(last + top - below, last + top))
            if mode != "zeros":
                strip_rows[:, :, :left] = strip_rows[:, :, left + padded_columns[:left]]
                strip_rows[:, :, left + width:] = strip_rows[:, :, left + padded_columns[left + width:]]
            sums = column_sums[:, :stop - start]
            depthwise_conv2d(view(strip_rows), column_filter, 1, "VALID", dtype=compute, out=view(sums),
                             num_threads=1)
            depthwise_conv2d(view(sums), row_filter, 1, "VALID", dilations=dilation, bias=bias, dtype=y.dtype,
                             out=view(y[:, start:stop]), num_threads=1)

    strip = min(strip, height)
    n_strips = -(-height // strip)
    n_bands = min(_threads(num_threads), n_strips)
    bounds = [min(height, (n_strips * band // n_bands) * strip) for band in range(n_bands + 1)]
    if n_bands == 1:
        filter_band(0, height)
    else:
        with concurrent.futures.ThreadPoolExecutor(n_bands - 1) as pool:
            others = [pool.submit(filter_band, bounds[b], bounds[b + 1]) for b in range(1, n_bands)]
            filter_band(bounds[0], bounds[1])
            for band in others:
                band.result()


def _strip_rows(sums_row_values, result_row_bytes):
    """Rows per strip: ~STRIP_BYTES of float32 column sums with `sums_row_values` values a row, and a
    whole number of cache lines of result rows of `result_row_bytes`, so that each strip's result
    starts on one."""
    rows = max(MIN_STRIP_ROWS, STRIP_BYTES // (4 * sums_row_values))
    step = 64 // math.gcd(result_row_bytes, 64)
    return max(step, rows // step * step)
