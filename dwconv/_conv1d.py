"""1-D depthwise convolution: views onto the 2-D functions of dwconv._conv.

A signal ``(N, L, C)`` (NWC) is the image ``(N, 1, L, C)`` (NHWC), ``(N, C, L)`` (NCW) the image
``(N, C, 1, L)`` (NCHW), and filters ``(k, C[, M])`` the kernel ``(1, k, C[, M])`` (PyTorch's
``(C*M, 1, k)`` its ``(C*M, 1, 1, k)``). Each view is an indexing with None, which never copies, so
the 2-D kernels read the caller's arrays (and write its ``out``) as they are, and GPU arrays go to
their backend through the 2-D functions' dispatch.

The 1-D arguments (layout, shapes, strides, dilations, padding) are checked here, so that the errors
name the 1-D forms; the 2-D function then checks the rest (dtypes, bias, activation, ``out``'s dtype
and memory, threads) with the messages of ``dwconv._args``. ``forward``, ``input_grad`` and
``filter_grad`` take the 2-D function to run, so that ``dwconv.dask`` has the 1-D functions too.
"""
import importlib
from collections import namedtuple

import numpy as np

from dwconv import _args
from dwconv._conv import (
    _BACKENDS,
    Gradients,
    depthwise_conv2d,
    depthwise_conv2d_backprop_filter,
    depthwise_conv2d_backprop_input,
    depthwise_conv2d_grad,
)

__all__ = [
    "depthwise_conv1d",
    "depthwise_conv1d_backprop_filter",
    "depthwise_conv1d_backprop_input",
    "depthwise_conv1d_causal",
    "depthwise_conv1d_grad",
]

# each 1-D layout's name -> the 2-D layout that holds it with a height of 1
_LAYOUTS = {"NWC": "NHWC", "CHANNELS_LAST": "NHWC", "NCW": "NCHW", "CHANNELS_FIRST": "NCHW"}
# each 1-D filter format -> the 2-D format of its view
_FILTER_FORMATS = {"tf": "tf", "keras": "tf", "torch": "torch"}


class _Geometry(namedtuple("_Geometry", "layout filter_format N L C k M stride dilation left right OL")):
    """One 1-D convolution: `layout` and `filter_format` are those of the 2-D views ("NHWC" or
    "NCHW"; "tf" or "torch"); L, k and OL the input's, kernel's and output's lengths; left and right
    the padding."""

    __slots__ = ()

    def _shape(self, length, channels):
        return (self.N, length, channels) if self.layout == "NHWC" else (self.N, channels, length)

    @property
    def input_shape(self):
        return self._shape(self.L, self.C)

    @property
    def output_shape(self):
        return self._shape(self.OL, self.C * self.M)

    @property
    def conv2d_arguments(self):
        """The 2-D functions' arguments for the views."""
        return {"strides": (1, self.stride), "padding": ((0, 0), (self.left, self.right)), "data_format": self.layout,
                "dilations": (1, self.dilation), "filter_format": self.filter_format}


def _layout_name(layout):
    return "NWC" if layout == "NHWC" else "NCW"


def _data_format(value):
    """The 2-D layout of a 1-D `data_format` (None means NWC)."""
    layout = "NHWC" if value is None else _LAYOUTS.get(value.upper()) if isinstance(value, str) else None
    if layout is None:
        raise ValueError(f"`data_format` must be 'NWC', 'NCW', 'channels_last' or 'channels_first', got {value!r}")
    return layout


def _filter_format(value):
    """The 2-D format of a 1-D `filter_format`; None when not given."""
    if value is None:
        return None
    if not (isinstance(value, str) and value in _FILTER_FORMATS):
        raise ValueError("`filter_format` must be None, 'tf', 'keras' ((k, C, M)) or 'torch' ((C*M, 1, k)) for "
                         f"1-D filters; got {value!r}")
    return _FILTER_FORMATS[value]


def _positive(value, name):
    """A positive int from an int or a 1-element sequence."""
    value = _args._scalar(value)
    items = [value] if _args.is_int(value) else _args._sequence(value)
    if items is None or len(items) != 1 or not _args.is_int(items[0]) or items[0] < 1:
        raise ValueError(f"`{name}` must be a positive int, got {value!r}")
    return int(items[0])


def _padding(value, length, k, stride, dilation):
    """(left, right) from "VALID", "SAME" (TensorFlow's), "CAUSAL" (Keras's: (k-1)*dilation on the
    left), p or (left, right)."""
    value = _args._scalar(value)
    if isinstance(value, str) and value.upper() in ("VALID", "SAME", "CAUSAL"):
        return {"VALID": (0, 0), "SAME": _args._same_padding(length, k, stride, dilation),
                "CAUSAL": ((k - 1) * dilation, 0)}[value.upper()]
    items = [value, value] if _args.is_int(value) else _args._sequence(value)
    if items is None or len(items) != 2 or not all(_args.is_int(a) for a in items):
        raise ValueError(f"`padding` must be 'VALID', 'SAME', 'CAUSAL', an int or (left, right); got {value!r}")
    if items[0] < 0 or items[1] < 0:
        raise ValueError(f"`padding` must be non-negative, got {value!r}")
    return int(items[0]), int(items[1])


def _read(input_shape, filter_shape, data_format, filter_format, input_name, filter_name):
    """(layout, 2-D filter format, N, L, C, k, M) of a signal and its filters, checked."""
    layout = _data_format(data_format)
    given = _filter_format(filter_format)
    name = _layout_name(layout)
    if len(input_shape) != 3:
        hint = {2: f"; for one signal, add the batch axis: {input_name}[None]",
                4: "; a 4-D array is a batch of images: use depthwise_conv2d"}.get(len(input_shape), "")
        raise ValueError(f"`{input_name}` must be 3-D ({', '.join(name)}), got shape {tuple(input_shape)}{hint}")
    N, L, C = input_shape if layout == "NHWC" else (input_shape[0], input_shape[2], input_shape[1])
    filter_shape = tuple(filter_shape)
    if given == "torch":
        n = filter_shape[0] if len(filter_shape) == 3 else None
        if n is None or filter_shape[1] != 1 or not (n % C == 0 and n >= C if C else n == 0):
            raise ValueError(f"`{filter_name}` must have shape (C*M, 1, k) with C={C} (the channels of "
                             f"`{input_name}`, {name}) for filter_format='torch'; got shape {filter_shape}")
        k, M = filter_shape[2], n // max(C, 1)
    else:
        if len(filter_shape) not in (2, 3):
            raise ValueError(f"`{filter_name}` must be (k, C, M) or (k, C), got shape {filter_shape}")
        k, fc = filter_shape[:2]
        M = filter_shape[2] if len(filter_shape) == 3 else 1
        if fc != C:
            other = "NCW" if layout == "NHWC" else "NWC"
            hint = (f"; if `{input_name}` is {other}, pass data_format={other!r}"
                    if input_shape[1 if other == "NCW" else 2] == fc else "")
            if given is None and len(filter_shape) == 3 and fc == 1 and filter_shape[0] % max(C, 1) == 0:
                hint += "; it would fit PyTorch's (C*M, 1, k): pass filter_format='torch'"
            raise ValueError(f"`{filter_name}` has {fc} input channels (shape {filter_shape}) but `{input_name}` has "
                             f"{C} (shape {tuple(input_shape)}, {name}){hint}")
        # A one-channel NCW signal (PyTorch's layout) with filters (a, 1, b) reads as a kernel of a taps in
        # dwconv's layout and of b taps in PyTorch's: refuse to guess.
        if given is None and layout == "NCHW" and C == 1 and len(filter_shape) == 3 and filter_shape != (1, 1, 1):
            raise ValueError(f"`{filter_name}` of shape {filter_shape} could be dwconv's (k, C, M) or PyTorch's "
                             f"(C*M, 1, k) for `{input_name}` of 1 channel (NCW): pass filter_format='torch' or "
                             "filter_format='tf' to say which")
    if k < 1:
        raise ValueError(f"`{filter_name}` must have a kernel of at least 1 tap, got shape {filter_shape}")
    return layout, given or "tf", N, L, C, k, M


def _geometry(input_shape, filter_shape, strides, padding, data_format, dilations, filter_format,
              input_name="x", filter_name="filters"):
    """The checked _Geometry of a 1-D convolution."""
    layout, key, N, L, C, k, M = _read(input_shape, filter_shape, data_format, filter_format, input_name,
                                       filter_name)
    stride, dilation = _positive(strides, "strides"), _positive(dilations, "dilations")
    left, right = _padding(padding, L, k, stride, dilation)
    span = (k - 1) * dilation + 1
    if span > L + left + right:
        raise ValueError(f"`{filter_name}`: the kernel of {k} taps with dilation {dilation} spans {span}, longer than "
                         f"the padded input of length {L + left + right} (`padding`={padding!r})")
    return _Geometry(layout, key, N, L, C, k, M, stride, dilation, left, right, (L + left + right - span) // stride + 1)


def _array(value, name):
    """`value` as an array to take views of: a GPU backend's array as it is (the 2-D function hands
    it to its backend), anything else as a NumPy array."""
    if any(backend.owns(value) for backend in _BACKENDS):
        return value
    if type(value).__module__.partition(".")[0] == "dask":
        raise TypeError(f"`{name}` is a dask array, which dwconv.dask's functions take (dwconv.dask.depthwise_conv1d "
                        "and its backprops); these take in-memory arrays")
    return _args.as_array(value, name)


def _image(signal, layout):
    """The 4-D view of a 3-D signal (array or shape)."""
    if isinstance(signal, tuple):
        return (signal[0], 1, *signal[1:]) if layout == "NHWC" else (*signal[:2], 1, signal[2])
    return signal[:, None] if layout == "NHWC" else signal[:, :, None]


def _signal(image, layout):
    """The 3-D view of a 4-D image of height 1."""
    return image[:, 0] if layout == "NHWC" else image[:, :, 0]


def _kernel(filters, filter_format):
    """The 2-D view of 1-D filters (array or shape) in `filter_format` ("tf" or "torch")."""
    if isinstance(filters, tuple):
        return (1, *filters) if filter_format == "tf" else (*filters[:2], 1, filters[2])
    return filters[None] if filter_format == "tf" else filters[:, :, None]


def _check_grad_output(grad_output, g):
    if tuple(grad_output.shape) != g.output_shape:
        raise ValueError(f"`grad_output` has shape {tuple(grad_output.shape)} but the forward output for these "
                         f"arguments has shape {g.output_shape}")


def _out(arguments, shape, view):
    """`arguments` with a user's `out` of the 1-D `shape` replaced by its 4-D view (anything but an
    array is left for the 2-D function's type check)."""
    out = arguments.get("out")
    if out is None or not hasattr(out, "shape"):
        return arguments
    if tuple(out.shape) != shape:
        raise ValueError(f"`out` has shape {tuple(out.shape)}, expected {shape}")
    return {**arguments, "out": view(out)}


# The three computations on the views, given the 2-D function to run (dwconv's, or dwconv.dask's) and
# the arrays as that function takes them; `arguments` go to it as they are.

def forward(conv2d, x, filters, strides, padding, data_format, dilations, filter_format, **arguments):
    g = _geometry(x.shape, filters.shape, strides, padding, data_format, dilations, filter_format)
    y = conv2d(_image(x, g.layout), _kernel(filters, g.filter_format),
               **_out(arguments, g.output_shape, lambda a: _image(a, g.layout)), **g.conv2d_arguments)
    return _signal(y, g.layout) if arguments.get("out") is None else arguments["out"]


def input_grad(backprop_input, input_shape, filters, grad_output, strides, padding, data_format, dilations,
               filter_format, **arguments):
    input_shape = _args.shape_tuple(input_shape, "input_shape", (3,))
    g = _geometry(input_shape, filters.shape, strides, padding, data_format, dilations, filter_format,
                  "input_shape")
    _check_grad_output(grad_output, g)
    dx = backprop_input(_image(input_shape, g.layout), _kernel(filters, g.filter_format), _image(grad_output, g.layout),
                        **_out(arguments, input_shape, lambda a: _image(a, g.layout)), **g.conv2d_arguments)
    return _signal(dx, g.layout) if arguments.get("out") is None else arguments["out"]


def filter_grad(backprop_filter, x, filter_shape, grad_output, strides, padding, data_format, dilations,
                filter_format, **arguments):
    filter_shape = _args.shape_tuple(filter_shape, "filter_shape", (3,) if filter_format == "torch" else (2, 3))
    g = _geometry(x.shape, filter_shape, strides, padding, data_format, dilations, filter_format,
                  filter_name="filter_shape")
    _check_grad_output(grad_output, g)
    dw = backprop_filter(_image(x, g.layout), _kernel(filter_shape, g.filter_format), _image(grad_output, g.layout),
                         **_out(arguments, filter_shape, lambda a: _kernel(a, g.filter_format)), **g.conv2d_arguments)
    return dw.reshape(filter_shape) if arguments.get("out") is None else arguments["out"]


def depthwise_conv1d(x, filters, strides=1, padding="VALID", *, data_format="NWC", dilations=1, bias=None,
                     padding_mode="zeros", activation=None, dtype=None, out=None, num_threads=None,
                     filter_format=None):
    """1-D depthwise convolution (cross-correlation), on the 2-D kernels without copies.

    Parameters
    ----------
    x : array_like, 3-D
        ``(N, L, C)`` for ``data_format="NWC"`` / ``"channels_last"``, ``(N, C, L)`` for ``"NCW"`` /
        ``"channels_first"``; the dtypes of ``depthwise_conv2d``.
    filters : array_like
        ``(k, C, M)`` (TensorFlow / Keras, M = channel multiplier) or ``(k, C)`` (M = 1); or PyTorch's
        ``(C*M, 1, k)`` with ``filter_format="torch"``.
    strides, dilations : int (or a 1-element sequence)
    padding : "VALID", "SAME" (TensorFlow's), "CAUSAL" (Keras's: (k-1)*dilations zeros on the left,
        so that output t sees inputs up to t), int, or (left, right).
    filter_format : None, "tf" / "keras" or "torch"
        None means dwconv's ``(k, C[, M])``, and raises for a 1-channel NCW signal with 3-D filters
        ``(a, 1, b)``, which PyTorch's layout reads otherwise: pass the format to say which.

    ``bias``, ``padding_mode``, ``activation``, ``dtype``, ``out``, ``num_threads``: as for
    ``depthwise_conv2d``.

    Returns
    -------
    ndarray with C*M channels in ``data_format``: channel ``c*M + m`` is input channel c filtered by
    ``filters[:, c, m]``.
    """
    return forward(depthwise_conv2d, _array(x, "x"), _array(filters, "filters"), strides, padding, data_format,
                   dilations, filter_format, bias=bias, padding_mode=padding_mode, activation=activation, dtype=dtype,
                   out=out, num_threads=num_threads)


def depthwise_conv1d_backprop_input(input_shape, filters, grad_output, strides=1, padding="VALID", *,
                                    data_format="NWC", dilations=1, padding_mode="zeros", dtype=None, out=None,
                                    num_threads=None, filter_format=None):
    """The gradient of ``depthwise_conv1d`` with respect to ``x``, shaped ``input_shape``; arguments as
    for ``depthwise_conv1d`` (``grad_output``: the gradient of the output before any activation)."""
    return input_grad(depthwise_conv2d_backprop_input, input_shape, _array(filters, "filters"),
                      _array(grad_output, "grad_output"), strides, padding, data_format, dilations, filter_format,
                      padding_mode=padding_mode, dtype=dtype, out=out, num_threads=num_threads)


def depthwise_conv1d_backprop_filter(x, filter_shape, grad_output, strides=1, padding="VALID", *,
                                     data_format="NWC", dilations=1, padding_mode="zeros", dtype=None, out=None,
                                     num_threads=None, filter_format=None):
    """The gradient of ``depthwise_conv1d`` with respect to ``filters``, shaped ``filter_shape``
    (``(k, C, M)`` or ``(k, C)``, or PyTorch's ``(C*M, 1, k)`` with ``filter_format="torch"``)."""
    return filter_grad(depthwise_conv2d_backprop_filter, _array(x, "x"), filter_shape,
                       _array(grad_output, "grad_output"), strides, padding, data_format, dilations, filter_format,
                       padding_mode=padding_mode, dtype=dtype, out=out, num_threads=num_threads)


def depthwise_conv1d_grad(x, filters, grad_output, strides=1, padding="VALID", *, data_format="NWC", dilations=1,
                          padding_mode="zeros", dtype=None, num_threads=None, filter_format=None):
    """All three gradients of ``depthwise_conv1d``: ``Gradients(input, filters, bias)``, the filter
    gradient in the shape and layout of ``filters``."""
    x, filters, grad_output = _array(x, "x"), _array(filters, "filters"), _array(grad_output, "grad_output")
    g = _geometry(x.shape, filters.shape, strides, padding, data_format, dilations, filter_format)
    _check_grad_output(grad_output, g)
    grads = depthwise_conv2d_grad(_image(x, g.layout), _kernel(filters, g.filter_format),
                                  _image(grad_output, g.layout), padding_mode=padding_mode, dtype=dtype,
                                  num_threads=num_threads, **g.conv2d_arguments)
    return Gradients(_signal(grads.input, g.layout), grads.filters.reshape(filters.shape), grads.bias)


def depthwise_conv1d_causal(x, filters, state=None, *, data_format="NWC", dilations=1, bias=None, activation=None,
                            dtype=None, num_threads=None, filter_format=None):
    """Causal 1-D depthwise convolution of a sequence given in pieces: ``(y, new_state)``.

    As ONNX's CausalConvWithState (with dilation): ``state`` holds the last (k-1)*dilations inputs
    before ``x``, ``(N, (k-1)*dilations, C)`` for NWC and ``(N, C, (k-1)*dilations)`` for NCW (ONNX's
    past_state), None meaning zeros; ``new_state`` holds the last (k-1)*dilations inputs of state and
    ``x`` together, in ``x``'s dtype, for the next piece. Feeding a sequence piece by piece (pieces
    of any length, empty ones too) gives the ``padding="CAUSAL"`` result of the whole sequence.

    State and piece are copied once into one array (the convolution's "VALID" input). Other arguments
    as for ``depthwise_conv1d``.
    """
    x, filters = _array(x, "x"), _array(filters, "filters")
    layout, _, N, L, C, k, _ = _read(x.shape, filters.shape, data_format, filter_format, "x", "filters")
    past = (k - 1) * _positive(dilations, "dilations")
    axis = 1 if layout == "NHWC" else 2
    state_shape = (N, past, C) if layout == "NHWC" else (N, C, past)
    if state is not None:
        state = _array(state, "state")
        if state.shape != state_shape:
            form = "(N, (k-1)*dilations, C)" if layout == "NHWC" else "(N, C, (k-1)*dilations)"
            raise ValueError(f"`state` must have shape {state_shape} ({form} for {_layout_name(layout)}: the last "
                             f"inputs before `x`), got shape {tuple(state.shape)}")
    xp = np if isinstance(x, np.ndarray) else importlib.import_module("cupy")
    joined = xp.empty((N, past + L, C) if layout == "NHWC" else (N, C, past + L), x.dtype)
    joined[_along(axis, slice(0, past))] = 0 if state is None else state
    joined[_along(axis, slice(past, None))] = x
    # An empty piece has no output: one zero past the state still checks every argument and gives the
    # result's dtype.
    y = depthwise_conv1d(joined, filters, padding=(0, 0 if L else 1), data_format=data_format, dilations=dilations,
                         bias=bias, activation=activation, dtype=dtype, num_threads=num_threads,
                         filter_format=filter_format)
    # (a copy: a view would keep the joined piece alive)
    return y[_along(axis, slice(0, L))], joined[_along(axis, slice(L, None))].copy()


def _along(axis, index):
    """An index that applies `index` along `axis` and takes everything along the others."""
    return (slice(None),) * axis + (index,)
