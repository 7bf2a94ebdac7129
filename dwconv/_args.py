"""Argument normalization: the one place where dwconv reads what users pass.

Every entry point (forward, gradients, compat layers, dask and cupy backends) turns its arguments
into a ``Geometry`` here, with the same forms accepted and the same errors raised. Each error names
the parameter in backticks and shows the offending value, and is raised before anything is
computed or written.
"""
import functools
import math
import numbers
import os
from collections import namedtuple

import numpy as np

from dwconv import _kernels
from dwconv._names import ACTIVATIONS, PADDING_MODES

__all__ = ["Geometry", "geometry", "shape_tuple", "as_array", "check_grad_output", "result_dtype", "contiguous",
           "check_bias", "check_activation", "apply_activation", "round_into", "output_array", "resolve_threads",
           "is_int", "Call", "Gradients", "gradient_outs", "gradient_arrays", "forward_call", "input_grad_call",
           "filter_grad_call", "grad_call", "FILTER_FORMATS",
           "check_filter_format", "filters_in_format", "PADDING_MODES", "ACTIVATIONS"]

_LAYOUTS = {"NHWC": "NHWC", "CHANNELS_LAST": "NHWC", "NCHW": "NCHW", "CHANNELS_FIRST": "NCHW"}
_FLOAT16, _FLOAT32, _FLOAT64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
_FLOATS = (_FLOAT16, _FLOAT32, _FLOAT64)
# Integer images are computed in float32 (every uint16/int16 value is exact there; int32 rounds
# beyond 2**24, as it would in any float32 framework).
_INTEGERS = tuple(np.dtype(t) for t in (np.uint8, np.uint16, np.int16, np.int32))
_ACCEPTED = frozenset(_FLOATS + _INTEGERS)  # in native byte order


def _physical_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return np.iinfo(np.intp).max


# The largest result dwconv will allocate: addressable, and no larger than the machine's memory.
_MAX_RESULT_BYTES = min(np.iinfo(np.intp).max, _physical_memory())


class Geometry(namedtuple("Geometry", "layout N H W C M kh kw sh sw dil_h dil_w pt pb pl pr OH OW mode")):
    """Everything a kernel needs to know about one depthwise convolution.

    layout: "NHWC" or "NCHW"; N, H, W, C: the input; M: the channel multiplier; kh, kw: the kernel;
    sh, sw: strides; dil_h, dil_w: dilations; pt, pb, pl, pr: padding top, bottom, left, right;
    OH, OW: the output's spatial size; mode: what the padding holds, a key of PADDING_MODES."""

    __slots__ = ()

    def _shape(self, h, w, channels):
        return (self.N, h, w, channels) if self.layout == "NHWC" else (self.N, channels, h, w)

    @property
    def input_shape(self):
        return self._shape(self.H, self.W, self.C)

    @property
    def output_shape(self):
        return self._shape(self.OH, self.OW, self.C * self.M)

    @property
    def filter_shape(self):
        return (self.kh, self.kw, self.C, self.M)


def check_data_format(value):
    """'NHWC' or 'NCHW' from any accepted spelling (None means TensorFlow's default, NHWC)."""
    if value is None:
        return "NHWC"
    layout = _LAYOUTS.get(value) or _LAYOUTS.get(value.upper()) if isinstance(value, str) else None
    if layout is None:
        raise ValueError(
            f"`data_format` must be 'NHWC', 'NCHW', 'channels_last' or 'channels_first', got {value!r}")
    return layout


def is_int(value):
    return type(value) is int or (isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)))


def _scalar(value):
    """The Python value of a 0-d array; anything else unchanged."""
    return value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value


def _sequence(value):
    """A list of the items of a list, tuple or 1-D array; None for anything else."""
    if isinstance(value, np.ndarray):
        return value.tolist() if value.ndim >= 1 else None
    return list(value) if isinstance(value, (list, tuple)) else None


def spatial_pair(value, name, layout):
    """(h, w) positive ints from int | (h) | (h, w) | TensorFlow's 4-element form in `layout` order."""
    if type(value) is int and value > 0:
        return value, value
    value = _scalar(value)
    expected = "[1, h, w, 1]" if layout == "NHWC" else "[1, 1, h, w]"
    items = [value] if is_int(value) else _sequence(value)
    if items is None or len(items) not in (1, 2, 4) or not all(is_int(v) for v in items):
        raise ValueError(f"`{name}` must be a positive int, a pair (h, w) or {expected} for {layout}; "
                         f"got {value!r}")
    if len(items) == 4:
        spatial = (1, 2) if layout == "NHWC" else (2, 3)
        if any(items[i] != 1 for i in range(4) if i not in spatial):
            raise ValueError(f"`{name}` in the 4-element form must be {expected} for {layout}: the batch "
                             f"and channel entries must be 1; got {value!r}")
        items = [items[i] for i in spatial]
    h, w = (items[0], items[0]) if len(items) == 1 else items
    if h < 1 or w < 1:
        raise ValueError(f"`{name}` must be positive, got {value!r}")
    return int(h), int(w)


def padding_spec(value, layout):
    """'VALID', 'SAME', or ((top, bottom), (left, right)) from every accepted padding form."""
    if type(value) is int and value >= 0:
        return ((value, value), (value, value))
    value = _scalar(value)
    if isinstance(value, str):
        if value.upper() in ("VALID", "SAME"):
            return value.upper()
        raise ValueError(f"`padding` must be 'VALID', 'SAME' or explicit amounts, got {value!r}")
    if is_int(value):
        pairs = [(value, value), (value, value)]
    else:
        items = _sequence(value)
        pairs = None
        if items is not None and len(items) in (2, 4):
            if all(is_int(v) for v in items):
                pairs = [(v, v) for v in items] if len(items) == 2 else None
            else:
                pairs = [_sequence(v) for v in items]
                if not all(p is not None and len(p) == 2 and all(is_int(a) for a in p) for p in pairs):
                    pairs = None
        if pairs is None:
            raise ValueError(
                "`padding` must be 'VALID', 'SAME', an int, (ph, pw), ((top, bottom), (left, right)) or "
                f"TensorFlow's 4 pairs in data_format order; got {value!r}")
        if len(pairs) == 4:
            spatial = (1, 2) if layout == "NHWC" else (2, 3)
            if any(list(pairs[i]) != [0, 0] for i in range(4) if i not in spatial):
                raise ValueError(f"`padding` in TensorFlow's explicit form must be [0, 0] for the batch and "
                                 f"channel dimensions ({layout} order); got {value!r}")
            pairs = [pairs[i] for i in spatial]
    if any(a < 0 for p in pairs for a in p):
        raise ValueError(f"`padding` must be non-negative, got {value!r}")
    return tuple((int(a), int(b)) for a, b in pairs)


def _same_padding(n, k, s, dil):
    """TensorFlow's SAME: output ceil(n/s), the odd pixel of padding at the end."""
    total = max((-(-n // s) - 1) * s + (k - 1) * dil + 1 - n, 0)
    return total // 2, total - total // 2


def shape_tuple(shape, name, ndims):
    items = _sequence(shape)
    if items is None or len(items) not in ndims or not all(is_int(v) and v >= 0 for v in items):
        raise ValueError(f"`{name}` must be {' or '.join(map(str, ndims))} non-negative ints, got {shape!r}")
    return tuple(int(v) for v in items)


def check_padding_mode(value):
    if not (isinstance(value, str) and value in PADDING_MODES):
        raise ValueError(f"`padding_mode` must be one of {', '.join(map(repr, PADDING_MODES))}, got {value!r}")
    return value


FilterFormat = namedtuple("FilterFormat", "framework shape ndim channel_axis unit_axes to_tf from_tf")
FilterFormat.__doc__ = """A framework's layout of depthwise filters: its `shape` in words, its `ndim`, the axis
holding C (torch's holds C*M), the axes that must be 1, and views to and from dwconv's own layout:
to_tf(w, C) and from_tf(w) of a (kh, kw, C, M) array."""

# dwconv's own layout is TensorFlow's (kh, kw, C, M): filters[:, :, c, m] makes output channel c*M + m.
# Every framework below orders its output channels the same way; only the axes differ.
FILTER_FORMATS = {
    "tf": FilterFormat("TensorFlow", "(kh, kw, C, M)", 4, 2, (), lambda w, C: w, lambda w: w),
    "ivy": FilterFormat("ivy", "(kh, kw, C)", 3, 2, (), lambda w, C: w[..., None], lambda w: w[..., 0]),
    "torch": FilterFormat("PyTorch", "(C*M, 1, kh, kw)", 4, 0, (1,),
                          lambda w, C: w.reshape(C, w.shape[0] // max(C, 1), *w.shape[2:]).transpose(2, 3, 0, 1),
                          lambda w: w.transpose(2, 3, 0, 1).reshape(-1, 1, *w.shape[:2])),
    "chainer": FilterFormat("Chainer", "(M, C, kh, kw)", 4, 1, (), lambda w, C: w.transpose(2, 3, 1, 0),
                            lambda w: w.transpose(3, 2, 0, 1)),
    "megengine": FilterFormat("MegEngine", "(C, M, 1, kh, kw)", 5, 0, (2,),
                              lambda w, C: w[:, :, 0].transpose(2, 3, 0, 1), lambda w: w.transpose(2, 3, 0, 1)[:, :, None]),
}
_FORMAT_ALIASES = {"keras": "tf"}
_FORMAT_NAMES = ", ".join(map(repr, (*FILTER_FORMATS, *_FORMAT_ALIASES)))


def check_filter_format(value, name="filter_format"):
    """The FILTER_FORMATS key for a format's name."""
    key = _FORMAT_ALIASES.get(value, value) if isinstance(value, str) else None
    if key not in FILTER_FORMATS:
        raise ValueError(f"`{name}` must be one of {_FORMAT_NAMES}; got {value!r}")
    return key


def _fits(shape, key, C):
    """Whether filters of `shape` read in format `key` have C input channels."""
    f = FILTER_FORMATS[key]
    if len(shape) != f.ndim or any(shape[axis] != 1 for axis in f.unit_axes):
        return False
    n = shape[f.channel_axis]
    return n % C == 0 and n >= C if key == "torch" and C else n == C


def _shape_only(shape):
    """A read-only array of `shape` that takes no memory, for the layouts' views to reshape."""
    return np.broadcast_to(np.zeros((), np.uint8), shape)


def tf_filters(filters, key, input_shape, layout, name="filters", input_name="x"):
    """`filters` (an array, or a shape tuple) given in the filter format of FILTER_FORMATS `key` (None:
    not given), as a view (a shape) in dwconv's own layout (kh, kw, C[, M]) for a 4-D input of
    `input_shape` in `layout`; unchanged when already in it."""
    is_shape = isinstance(filters, tuple)
    shape = filters if is_shape else filters.shape
    C = input_shape[3] if layout == "NHWC" else input_shape[1]
    if key is None:
        _check_reading(shape, C, input_shape, layout, name, input_name)
        return filters
    if key == "tf":
        return filters
    f = FILTER_FORMATS[key]
    if not _fits(shape, key, C):
        raise ValueError(f"`{name}` must have shape {f.shape} with C={C} (the channels of `{input_name}`, "
                         f"{layout}) for filter_format={key!r}; got shape {shape}")
    view = f.to_tf(_shape_only(shape) if is_shape else filters, C)
    return view.shape if is_shape else view


def _check_reading(shape, C, input_shape, layout, name, input_name):
    """For filters given without a format: raise for NCHW where PyTorch's layout fits as well as
    dwconv's, with a square kernel as PyTorch's layers have (dwconv's reading is then a kh x 1
    kernel with M = C), so that such weights are not silently misread; and where only other
    frameworks' layouts fit, adding them to the geometry's error."""
    fits_tf = len(shape) in (3, 4) and shape[2] == C
    if fits_tf and not (layout == "NCHW" and _fits(shape, "torch", C) and shape[2] == shape[3]
                        and shape != (1, 1, 1, 1)):  # (the one shape both read alike)
        return
    if fits_tf:
        raise ValueError(
            f"`{name}` of shape {shape} could be a {shape[0]}x{shape[1]} kernel in dwconv's (kh, kw, C, M) or "
            f"PyTorch's (C*M, 1, kh, kw) for `{input_name}` of {C} channels (NCHW): pass filter_format='torch' "
            f"or filter_format='tf' to say which")
    others = [key for key in ("torch", "chainer", "megengine") if _fits(shape, key, C)]
    if others:
        try:  # (raises: the shape does not fit dwconv's layout)
            geometry(input_shape, shape, 1, "VALID", layout, None, input_name, name)
        except ValueError as exc:
            fits = " or ".join(f"{FILTER_FORMATS[k].framework}'s {FILTER_FORMATS[k].shape}: pass filter_format={k!r}"
                               for k in others)
            raise ValueError(f"{exc}; it would fit {fits}") from None


def filters_in_format(dfilters, call):
    """A filter gradient in dwconv's layout, as a view in the call's filter format."""
    if call.filter_format == "tf":
        return dfilters
    return FILTER_FORMATS[call.filter_format].from_tf(dfilters.reshape(call.g.filter_shape))


# Argument types whose values a cache may stand for: no bools, floats or numpy scalars among them,
# which compare equal to ints and would share their entries, valid or not.
_PLAIN = frozenset((int, str, type(None)))
_GEOMETRIES, _MAX_GEOMETRIES = {}, 1024
_UNCACHED = object()
# The tag of a dtype in a key (a dtype compares equal to its name and its scalar type, which must
# not share its entries: `dtype="float32"` is checked as a name).
_DTYPE = object()


def keep(cache, key, value, limit):
    """cache[key] = value, the cache emptied first when it holds `limit` entries (its keys are call
    signatures: a program's few repeat, and a program that makes ever new ones gains nothing from
    any of them)."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value


def _frozen(value):
    """`value` as a hashable key when it is built of _PLAIN values in lists and tuples (as paddings
    are), or is a NumPy dtype or scalar type (as `dtype` may be), else _UNCACHED."""
    kind = type(value)
    if kind is tuple or kind is list:
        if _PLAIN.issuperset(map(type, value)):  # (a padding's pair: its own key)
            return value if kind is tuple else tuple(value)
        items = []
        for item in value:
            item = item if type(item) in _PLAIN else _frozen(item)
            if item is _UNCACHED:
                return _UNCACHED
            items.append(item)
        return tuple(items)
    if kind in _PLAIN:
        return value
    if isinstance(value, np.dtype):
        return _DTYPE, value
    if isinstance(value, type) and issubclass(value, np.generic):
        try:
            return _DTYPE, np.dtype(value)
        except TypeError:  # (an abstract type, np.floating: the checks say so)
            return _UNCACHED
    return _UNCACHED


def geometry(input_shape, filter_shape, strides, padding, data_format=None, dilations=None,
             input_name="x", filter_name="filters", padding_mode="zeros"):
    """Validate shapes and arguments together and return the Geometry of the convolution.

    The shapes are tuples of ints (an array's, or from `shape_tuple`). The common cases are cached,
    as a training loop asks for the same geometry on every step: plain int and string arguments,
    and (keyed by a hashable copy) those with lists and tuples of them, such as paddings in
    TensorFlow's 4 pairs (uncached, a third of a small call's time)."""
    arguments = (input_shape, filter_shape, strides, padding, data_format, dilations, input_name, filter_name,
                 padding_mode)
    if (type(strides) in _PLAIN and type(padding) in _PLAIN and type(dilations) in _PLAIN
            and type(data_format) in _PLAIN and type(padding_mode) in _PLAIN):
        return _cached_geometry(*arguments)
    key = (input_shape, filter_shape, _frozen(strides), _frozen(padding), data_format, _frozen(dilations),
           input_name, filter_name, padding_mode)
    if _UNCACHED in key[2:6] or type(data_format) not in _PLAIN or type(padding_mode) not in _PLAIN:
        return _geometry(*arguments)
    g = _GEOMETRIES.get(key)
    if g is None:
        g = _geometry(*arguments)
        keep(_GEOMETRIES, key, g, _MAX_GEOMETRIES)
    return g


def _geometry(input_shape, filter_shape, strides, padding, data_format, dilations, input_name, filter_name,
              padding_mode):
    layout = check_data_format(data_format)
    mode = check_padding_mode(padding_mode)
    if len(input_shape) != 4:
        hint = f"; for one image, add the batch axis: {input_name}[None]" if len(input_shape) == 3 else ""
        raise ValueError(f"`{input_name}` must be 4-D ({', '.join(layout)}), got shape {tuple(input_shape)}{hint}")
    if len(filter_shape) not in (3, 4):
        raise ValueError(f"`{filter_name}` must be (kh, kw, C, M) or (kh, kw, C), got shape {tuple(filter_shape)}")
    N, H, W, C = input_shape if layout == "NHWC" else (input_shape[0], *input_shape[2:], input_shape[1])
    kh, kw, fc = filter_shape[:3]
    M = filter_shape[3] if len(filter_shape) == 4 else 1
    if fc != C:
        other = "NCHW" if layout == "NHWC" else "NHWC"
        hint = (f"; if `{input_name}` is {other}, pass data_format={other!r}"
                if input_shape[1 if other == "NCHW" else 3] == fc else "")
        raise ValueError(f"`{filter_name}` has {fc} input channels (shape {tuple(filter_shape)}) but "
                         f"`{input_name}` has {C} (shape {tuple(input_shape)}, {layout}){hint}")
    if kh < 1 or kw < 1:
        raise ValueError(f"`{filter_name}` must have a kernel of at least 1x1, got shape {tuple(filter_shape)}")
    sh, sw = spatial_pair(strides, "strides", layout)
    dil_h, dil_w = spatial_pair(1 if dilations is None else dilations, "dilations", layout)
    pad = padding_spec(padding, layout)
    if pad == "VALID":
        pad = ((0, 0), (0, 0))
    elif pad == "SAME":
        pad = (_same_padding(H, kh, sh, dil_h), _same_padding(W, kw, sw, dil_w))
    (pt, pb), (pl, pr) = pad
    if PADDING_MODES[mode] != "constant" and (H == 0 and pt + pb or W == 0 and pl + pr):
        axis = "height" if H == 0 and pt + pb else "width"
        raise ValueError(f"`padding_mode`={mode!r} cannot pad the empty {axis} of `{input_name}` (shape "
                         f"{tuple(input_shape)}): there are no values to repeat; use 'zeros'")
    eh, ew = (kh - 1) * dil_h + 1, (kw - 1) * dil_w + 1
    if eh > H + pt + pb or ew > W + pl + pr:
        raise ValueError(
            f"`{filter_name}`: the kernel {kh}x{kw} with dilations ({dil_h}, {dil_w}) spans {eh}x{ew}, larger than "
            f"the padded input {H + pt + pb}x{W + pl + pr} (`padding`={padding!r})")
    OH, OW = (H + pt + pb - eh) // sh + 1, (W + pl + pr - ew) // sw + 1
    return Geometry(layout, N, H, W, C, M, kh, kw, sh, sw, dil_h, dil_w, pt, pb, pl, pr, OH, OW, mode)


_cached_geometry = functools.lru_cache(maxsize=_MAX_GEOMETRIES)(_geometry)


def as_array(value, name, xp=np):
    """A float or integer-image array of the array module `xp` (NumPy's, or a GPU backend's) from any
    array-like, unchanged when it already is one."""
    if value is None:
        raise TypeError(f"`{name}` must be an array, got None")
    if not isinstance(value, xp.ndarray):
        try:
            value = xp.asarray(value)
        except ValueError as exc:
            if isinstance(value, (list, tuple)):
                raise ValueError(f"`{name}` must be a rectangular array; got a ragged sequence ({exc})") from None
            raise _not_an_array(value, name, exc) from None
        except (TypeError, RuntimeError) as exc:  # (a framework's tensor that refuses NumPy as it is)
            raise _not_an_array(value, name, exc) from None
    dtype = value.dtype
    if dtype not in _ACCEPTED and dtype.newbyteorder("=") not in _ACCEPTED:
        fix = "; convert it first, e.g. .astype(numpy.float32)" if dtype.kind in "fV" else ""
        raise TypeError(f"`{name}` has dtype {dtype}; dwconv takes float16, float32, float64 or "
                        f"integer images (uint8, uint16, int16, int32){fix}")
    return value


def _not_an_array(value, name, exc):
    """The TypeError for a `value` NumPy cannot take as it is, with the usual fixes for framework
    tensors (PyTorch's first)."""
    kind = f"{type(value).__module__.partition('.')[0]}.{type(value).__name__}"
    fixes = []
    if getattr(value, "requires_grad", False):
        fixes.append(".detach() it (dwconv computes no autograd graph)")
    if "bfloat16" in str(getattr(value, "dtype", "")):
        fixes.append("convert it to float32 with .float() (NumPy has no bfloat16)")
    fix = "; ".join(fixes) or "convert it to a NumPy array first"
    return TypeError(f"`{name}` is a {kind} that NumPy cannot take as it is ({exc}): {fix}")


def check_grad_output(value, g, xp=np):
    """`value` as the gradient of the forward output of geometry `g`: an array of exactly its shape."""
    value = as_array(value, "grad_output", xp)
    if value.shape != g.output_shape:
        raise ValueError(f"`grad_output` has shape {value.shape} but the forward output for these "
                         f"arguments has shape {g.output_shape}")
    return value


def apply_activation(activation, out, asarray=np.asarray):
    """Write `activation(out)` (a user's callable) back into `out`; `asarray` is the array module's."""
    result = asarray(activation(out))
    if result.shape != out.shape:
        raise ValueError(f"`activation` returned shape {result.shape} for an output of shape {out.shape}")
    out[...] = result
    return out


def result_dtype(dtype, data, *others, integers=False):
    """The result's dtype and the dtype the kernels compute in (float32 or float64).

    `dtype` when given (one of the floats, or with `integers`, of the integer image types too); else
    float64 if any array is, float16 if a `data` array is (its parameters may be float32 master
    weights, as in mixed precision), else float32."""
    if dtype is None:
        sizes = [a.dtype.itemsize if a.dtype.kind == "f" else 4 for a in (*data, *others)]
        dtype = _FLOAT64 if 8 in sizes else _FLOAT16 if 2 in sizes[:len(data)] else _FLOAT32
    else:
        allowed = _FLOATS + _INTEGERS if integers else _FLOATS
        try:
            requested = np.dtype(dtype)
        except TypeError:
            requested = None
        if requested is None or requested not in allowed:  # (None would compare equal to float64)
            names = ", ".join(str(a) for a in allowed[:-1])
            raise TypeError(f"`dtype` must be {names} or {allowed[-1]}, got {dtype!r}")
        dtype = requested
    return dtype, _FLOAT64 if dtype == _FLOAT64 else _FLOAT32


# The pixels the float32 kernels convert themselves, to float32 and back (_kernels.convert, and the
# forward as it reads and writes them): NumPy converts float16 an element at a time (1.6-3 ns
# each), and rounds and saturates integers in several passes.
KERNEL_PIXELS = frozenset(map(np.dtype, (np.uint8, np.uint16, np.int16, np.float16)))


def _converts(src, dst_dtype):
    """Whether the kernels convert `src`, a C-contiguous NumPy array, to `dst_dtype`."""
    return (isinstance(src, np.ndarray) and src.flags.c_contiguous and src.dtype.isnative
            and (src.dtype == _FLOAT32 and dst_dtype in KERNEL_PIXELS or src.dtype in KERNEL_PIXELS
                 and dst_dtype == _FLOAT32))


def round_into(out, values, xp=np, n_threads=1):
    """Write the float array `values` into `out`: rounded to the nearest integer (ties to even) and
    saturated to its range when `out` holds integers, as OpenCV's saturate_cast does (NaN is 0), or
    rounded to its precision when it holds narrower floats. `values` may be overwritten."""
    if out.flags.c_contiguous and _converts(values, out.dtype):
        _kernels.convert(values.reshape(-1), out.reshape(-1), n_threads)
    elif out.dtype.kind in "iu":
        limits = np.iinfo(out.dtype)
        if values.dtype.itemsize <= out.dtype.itemsize:  # (float32 rounds int32's limits past them)
            values = values.astype(np.float64)
        xp.rint(values, out=values)
        xp.clip(values, limits.min, limits.max, out=values)
        values[xp.isnan(values)] = 0
        xp.copyto(out, values, casting="unsafe")
    else:
        xp.copyto(out, values, casting="same_kind")


def contiguous(array, dtype, n_threads=1):
    """`array` as a C-contiguous, native-endian `dtype` array of its own array module; a copy only
    when it is not one already (float16 and 8- and 16-bit pixels to float32 by the kernels, on
    `n_threads` threads)."""
    # (the common case, an array that already is one, decided first: a call's arguments pass here
    # two or three times, and the checks below took 0.6 us each)
    if type(array) is np.ndarray and array.dtype is dtype and array.flags.c_contiguous:
        return array
    if _converts(array, np.dtype(dtype)):
        converted = scratch_empty(array.shape, np.dtype(dtype))
        _kernels.convert(array.reshape(-1), converted.reshape(-1), n_threads)
        return converted
    return array.astype(dtype, order="C", copy=False)


def check_activation(value):
    """None, one of ACTIVATIONS, or a callable applied to the result."""
    if value is None or callable(value) or (isinstance(value, str) and value in ACTIVATIONS):
        return value
    raise ValueError(f"`activation` must be None, a callable or one of {', '.join(map(repr, ACTIVATIONS))}; "
                     f"got {value!r}")


def check_bias(bias, g, dtype, xp=np):
    if bias is None:
        return None
    bias = as_array(bias, "bias", xp)
    if bias.shape != (g.C * g.M,):
        raise ValueError(f"`bias` must have shape ({g.C * g.M},) (C*M), got {bias.shape}")
    return contiguous(bias, dtype)


# A vector store that straddles two cache lines costs two, and a streaming store needs an aligned
# address. NumPy only promises 16-byte alignment, so results start on a cache line (the forward's
# inputs are copied into aligned rings: see _rings.pxi). Small results are not worth the extra step.
_ALIGNMENT, _ALIGN_FROM_BYTES = 64, 1 << 16


# The checked arguments of one call, which each backend (NumPy, CuPy, dask) reads: its geometry, its
# arrays (the filters as a view in dwconv's own layout), the result's `shape` and `dtype`, the dtype
# the kernels `compute` in, and the `filter_format` filter gradients go back in. The `*_call`
# functions below build one; their `xp` is the backend's array module, whose arrays they take as they are.
Call = namedtuple("Call", "g shape dtype compute x filters grad_output bias activation filter_format",
                  defaults=(None,) * 5 + ("tf",))


Gradients = namedtuple("Gradients", "input filters bias")
Gradients.__doc__ = "The gradients of a depthwise convolution with respect to its input, filters and bias."


def _in_tf_layout(filters, key, input_shape, data_format, name, input_name):
    """tf_filters, beside a 4-D input (beside another, the filters as given: the geometry says what
    is wrong)."""
    if len(input_shape) != 4:
        return filters
    return tf_filters(filters, key, input_shape, check_data_format(data_format), name, input_name)


def _read_filters(filters, filter_format, input_shape, data_format, input_name="x"):
    """The filters in dwconv's own layout, and the format's key."""
    key = None if filter_format is None else check_filter_format(filter_format)
    return _in_tf_layout(filters, key, input_shape, data_format, "filters", input_name), key or "tf"


def read_filter_shape(filter_shape, filter_format, input_shape, data_format, input_name="x"):
    """A `filter_shape` given in filter format `filter_format`: as a tuple, in dwconv's own layout,
    and the format's key."""
    key = None if filter_format is None else check_filter_format(filter_format)
    ndims = (3, 4) if key in (None, "tf") else (FILTER_FORMATS[key].ndim,)
    filter_shape = shape_tuple(filter_shape, "filter_shape", ndims)
    return (filter_shape, _in_tf_layout(filter_shape, key, input_shape, data_format, "filter_shape", input_name),
            key or "tf")


# What the checks of a call concluded (its geometry, the result's dtype, the dtype the kernels
# compute in, the filters' format), kept per signature: the kind of call, its arrays' shapes and
# dtypes and its other arguments' values, when those are plain (_frozen). A layer called again with
# arrays of the same shapes (inference, a training loop's every step) then skips the checks: they
# took 3 of the 9 us of a batch-1 call too small to take any time itself.
_CALLS, _MAX_CALLS = {}, 1024


def _signature(xp, arrays, arguments):
    """The key of _CALLS for a call of these arrays (None for an absent one) and arguments; None
    when an array is not one of `xp`'s or an argument not plain."""
    if not _PLAIN.issuperset(map(type, arguments)):  # (a padding's pairs, a list of strides)
        arguments = _frozen(arguments)
        if arguments is _UNCACHED:
            return None
    key = [arguments]
    for array in arrays:
        if array is None:
            key.append(None)
        elif type(array) is xp.ndarray:
            key += (array.shape, array.dtype)
        else:
            return None
    return tuple(key)


def _known(key, x=None, filters=None, grad_output=None, bias=None, activation=None):
    """The Call of a signature seen before (a key of _CALLS) for these arrays, else None."""
    known = _CALLS.get(key)
    if known is None:
        return None
    g, shape, dtype, compute, filter_key = known
    filters = filters if filter_key == "tf" or filters is None else FILTER_FORMATS[filter_key].to_tf(filters, g.C)
    return Call(g, shape, dtype, compute, x, filters, grad_output, None if bias is None else contiguous(bias, compute),
                activation, filter_key)


def _remember(key, call):
    """`call`, its conclusions kept under `key` (None: not kept)."""
    if key is not None:
        keep(_CALLS, key, (call.g, call.shape, call.dtype, call.compute, call.filter_format), _MAX_CALLS)
    return call


def forward_call(x, filters, strides, padding, data_format, dilations, padding_mode, bias, activation, dtype,
                 filter_format=None, xp=np):
    """The checked arguments of ``depthwise_conv2d``."""
    key = _signature(xp, (x, filters, bias), ("forward", strides, padding, data_format, dilations, padding_mode,
                                              activation, dtype, filter_format))
    return _known(key, x, filters, bias=bias, activation=activation) or _remember(key, _forward_call(
        x, filters, strides, padding, data_format, dilations, padding_mode, bias, activation, dtype, filter_format, xp))


def _forward_call(x, filters, strides, padding, data_format, dilations, padding_mode, bias, activation, dtype,
                  filter_format, xp):
    x, filters = as_array(x, "x", xp), as_array(filters, "filters", xp)
    filters, key = _read_filters(filters, filter_format, x.shape, data_format)
    g = geometry(x.shape, filters.shape, strides, padding, data_format, dilations, padding_mode=padding_mode)
    activation = check_activation(activation)
    # (a bias with a dtype of its own counts; a list, like a Python float in NumPy, takes the result's)
    typed_bias = (as_array(bias, "bias", xp),) if hasattr(bias, "dtype") else ()
    dtype, compute = result_dtype(dtype, (x,), filters, *typed_bias, integers=True)
    return Call(g, g.output_shape, dtype, compute, x, filters, None, check_bias(bias, g, compute, xp), activation,
                key)


def input_grad_call(input_shape, filters, grad_output, strides, padding, data_format, dilations, padding_mode,
                    dtype, filter_format=None, xp=np):
    """The checked arguments of ``depthwise_conv2d_backprop_input``."""
    key = _signature(xp, (filters, grad_output), ("input_grad", input_shape, strides, padding, data_format, dilations,
                                                  padding_mode, dtype, filter_format))
    return _known(key, filters=filters, grad_output=grad_output) or _remember(key, _input_grad_call(
        input_shape, filters, grad_output, strides, padding, data_format, dilations, padding_mode, dtype,
        filter_format, xp))


def _input_grad_call(input_shape, filters, grad_output, strides, padding, data_format, dilations, padding_mode,
                     dtype, filter_format, xp):
    filters = as_array(filters, "filters", xp)
    input_shape = shape_tuple(input_shape, "input_shape", (4,))
    filters, key = _read_filters(filters, filter_format, input_shape, data_format, input_name="input_shape")
    g = geometry(input_shape, filters.shape, strides, padding, data_format, dilations, "input_shape",
                 padding_mode=padding_mode)
    grad_output = check_grad_output(grad_output, g, xp)
    dtype, compute = result_dtype(dtype, (grad_output,), filters)
    return Call(g, g.input_shape, dtype, compute, None, filters, grad_output, filter_format=key)


def filter_grad_call(x, filter_shape, grad_output, strides, padding, data_format, dilations, padding_mode,
                     dtype, filter_format=None, xp=np):
    """The checked arguments of ``depthwise_conv2d_backprop_filter``; the result's shape is
    `filter_shape` as given, 3-D or 4-D, in the filter format."""
    key = _signature(xp, (x, grad_output), ("filter_grad", filter_shape, strides, padding, data_format, dilations,
                                            padding_mode, dtype, filter_format))
    return _known(key, x, grad_output=grad_output) or _remember(key, _filter_grad_call(
        x, filter_shape, grad_output, strides, padding, data_format, dilations, padding_mode, dtype, filter_format,
        xp))


def _filter_grad_call(x, filter_shape, grad_output, strides, padding, data_format, dilations, padding_mode, dtype,
                      filter_format, xp):
    x = as_array(x, "x", xp)
    filter_shape, tf_shape, key = read_filter_shape(filter_shape, filter_format, x.shape, data_format)
    g = geometry(x.shape, tf_shape, strides, padding, data_format, dilations, "x", "filter_shape",
                 padding_mode=padding_mode)
    grad_output = check_grad_output(grad_output, g, xp)
    dtype, compute = result_dtype(dtype, (x, grad_output))
    return Call(g, filter_shape, dtype, compute, x, None, grad_output, filter_format=key)


def grad_call(x, filters, grad_output, strides, padding, data_format, dilations, padding_mode, dtype,
              filter_format=None, xp=np):
    """The checked arguments of ``depthwise_conv2d_grad`` (whose results have the shapes of `x`,
    `filters` and the bias)."""
    key = _signature(xp, (x, filters, grad_output), ("grad", strides, padding, data_format, dilations, padding_mode,
                                                     dtype, filter_format))
    return _known(key, x, filters, grad_output) or _remember(key, _grad_call(
        x, filters, grad_output, strides, padding, data_format, dilations, padding_mode, dtype, filter_format, xp))


def _grad_call(x, filters, grad_output, strides, padding, data_format, dilations, padding_mode, dtype, filter_format,
               xp):
    x, filters = as_array(x, "x", xp), as_array(filters, "filters", xp)
    filters, key = _read_filters(filters, filter_format, x.shape, data_format)
    g = geometry(x.shape, filters.shape, strides, padding, data_format, dilations, padding_mode=padding_mode)
    grad_output = check_grad_output(grad_output, g, xp)
    dtype, compute = result_dtype(dtype, (x, grad_output), filters)
    return Call(g, None, dtype, compute, x, filters, grad_output, filter_format=key)


def _aligned_empty(shape, dtype, pooled_from_bytes=None):
    """An empty array whose data starts on a cache line; from _kernels' pool of large results'
    memory (_results.pxi) from `pooled_from_bytes` (POOLED_FROM_BYTES) up."""
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < _ALIGN_FROM_BYTES:
        return np.empty(shape, dtype)
    if nbytes >= (pooled_from_bytes or _kernels.POOLED_FROM_BYTES):
        return np.ndarray(shape, dtype, _kernels.pooled_block(nbytes))
    raw = np.empty(nbytes + _ALIGNMENT, np.uint8)
    return np.ndarray(shape, dtype, raw, -_kernels.data_address(raw) % _ALIGNMENT)


# Scratch a call converts through (float32 copies of float16 arrays; results before they are
# rounded) lives only for that call: from the pool from this size, so the next call finds its
# pages mapped, where fresh ones fault in at first touch (2 threads, 16x56x56x144 float16, all
# three gradients: 14.6 ms from malloc, 6.7 from the pool; float32's 2.8).
_SCRATCH_POOLED_FROM_BYTES = 4 << 20


def scratch_empty(shape, dtype):
    """An empty array for scratch that is gone when the call returns (see _aligned_empty)."""
    return _aligned_empty(shape, np.dtype(dtype), _SCRATCH_POOLED_FROM_BYTES)


def gradient_outs(out):
    """The `out` of depthwise_conv2d_grad as a tuple (input, filters, bias) of arrays or Nones."""
    if out is None:
        return None, None, None
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise TypeError("`out` must be a sequence of three arrays or Nones (input, filters, bias), "
                        f"got {type(out).__name__} {out!r:.60}")
    return tuple(out)


def gradient_arrays(outs, c, xp=np, empty=_aligned_empty):
    """(the Gradients that depthwise_conv2d_grad returns, the filter gradient in dwconv's own layout
    that its kernels write): the arrays of `outs` (from `gradient_outs`), each checked as
    `output_array` checks one, new ones for its Nones."""
    inputs = (("x", c.x), ("filters", c.filters), ("grad_output", c.grad_output))
    # (the kernels' layout needs an array of its own only where the call's format is another)
    tf_filters = None if c.filter_format == "tf" else empty(c.filters.shape, c.dtype)
    shapes = (c.g.input_shape, c.filters.shape if tf_filters is None else filters_in_format(tf_filters, c).shape,
              (c.g.C * c.g.M,))
    grads = Gradients(*(output_array(o, shape, c.dtype, inputs, xp=xp, empty=empty) for o, shape in zip(outs, shapes)))
    return grads, grads.filters if tf_filters is None else tf_filters


def output_array(out, shape, dtype, inputs=(), origin="x", xp=np, empty=_aligned_empty, contiguous=True):
    """`out` checked against the result it must hold, or a new array from `empty(shape, dtype)` when
    it is None; the same checks for every backend, whose array module `xp` says what an array is and
    which memory arrays share. `contiguous`: whether `out` must be C-contiguous (the kernels write
    flat arrays; dwconv.dask writes any array region by region).

    `inputs` are (name, array) pairs `out` must not overlap (None for an absent one); `origin` names
    the argument whose size decides the result's (for the error when it would not fit in memory)."""
    if out is None:
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > _MAX_RESULT_BYTES:
            raise ValueError(f"`{origin}` asks for a result of shape {shape}, which would need "
                             f"{nbytes / 2**30:.1f} GiB, more than this machine has; dwconv.dask computes it "
                             "chunk by chunk from a chunked dask array (see the README's Dask section)")
        return empty(shape, dtype)
    if not isinstance(out, xp.ndarray):
        raise TypeError(f"`out` must be a {xp.__name__}.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"`out` has shape {out.shape}, expected {tuple(shape)}")
    if out.dtype != dtype:
        raise ValueError(f"`out` has dtype {out.dtype}, expected {np.dtype(dtype)}")
    if contiguous and not out.flags.c_contiguous:
        raise ValueError("`out` must be C-contiguous")
    if not getattr(out.flags, "writeable", True):  # (CuPy's arrays are always writeable: no such flag)
        raise ValueError("`out` is read-only")
    for label, array in inputs:
        if array is not None and xp.may_share_memory(out, array):
            raise ValueError(f"`out` overlaps `{label}`; the result must go to separate memory")
    return out


# More threads than CPUs only adds start-up cost (and, far enough, exhausts memory): cap there.
_THREAD_CAP = max(os.cpu_count() or 1, 1)


def resolve_threads(num_threads, max_threads):
    """The thread count for one call: None = OpenMP's default, n > 0, or n < 0 meaning max+1+n;
    at most max(max_threads, the CPU count)."""
    if num_threads is None:
        return max_threads
    if not is_int(num_threads):
        raise TypeError(f"`num_threads` must be an int or None, got {num_threads!r}")
    if num_threads == 0:
        raise ValueError("`num_threads` must not be 0 (use None for the default, or a negative count "
                         "to leave cores free)")
    n = num_threads if num_threads > 0 else max_threads + 1 + num_threads
    if n < 1:
        raise ValueError(f"`num_threads`={num_threads} leaves no thread (the maximum is {max_threads})")
    return int(min(n, max(max_threads, _THREAD_CAP)))
