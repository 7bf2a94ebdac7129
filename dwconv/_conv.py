"""The public convolution functions: argument handling from dwconv._args, arithmetic in _kernels."""
import functools
import inspect

import numpy as np

from dwconv import _args, _cupy, _fork, _kernels
from dwconv._args import Gradients

__all__ = ["depthwise_conv2d", "depthwise_conv2d_backprop_input", "depthwise_conv2d_backprop_filter",
           "depthwise_conv2d_grad", "output_shape", "Gradients"]


# The array backends besides NumPy: modules that each define the public functions under the same
# names, and `owns(value)`, which says (without importing its array library) whether `value` is one
# of its arrays.
_BACKENDS = (_cupy,)


def _dispatch(*array_names):
    """Decorate a public function to hand the call, with the same arguments, to the same-named
    function of the first backend that owns one of its parameters `array_names`."""
    def decorate(function):
        parameters = inspect.signature(function).parameters
        # Where each array parameter is: its position among the arguments, or past the last for a
        # keyword-only one, which is only ever in `kwargs`. (A name that is no parameter fails here.)
        names = list(parameters)
        arrays = tuple((names.index(name) if parameters[name].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
                        else len(names), name) for name in array_names)
        backends = tuple((backend.owns, getattr(backend, function.__name__)) for backend in _BACKENDS)

        @functools.wraps(function)
        def dispatched(*args, **kwargs):
            given = len(args)
            # (loops, not any(): this runs on every call, and a generator costs)
            for position, name in arrays:
                value = args[position] if position < given else kwargs.get(name)
                if value is None or type(value) is np.ndarray:  # (the common case, decided at once)
                    continue
                for owns, backend_function in backends:
                    if owns(value):
                        return backend_function(*args, **kwargs)
            return function(*args, **kwargs)

        return dispatched

    return decorate


def _flat(array):
    """A C-contiguous array as the 1-D view the kernels take (ravel: 0.1 us less than reshape)."""
    return array.ravel()


def _threads(num_threads):
    n_threads = _args.resolve_threads(num_threads, _kernels.max_threads())
    return 1 if _fork.serial_only else n_threads


def output_shape(input_shape, filter_shape, strides=1, padding="VALID", *, data_format="NHWC",
                 dilations=1, filter_format=None):
    """The shape of ``depthwise_conv2d``'s result for inputs of these shapes and these arguments."""
    input_shape = _args.shape_tuple(input_shape, "input_shape", (4,))
    filter_shape = _args.read_filter_shape(filter_shape, filter_format, input_shape, data_format, "input_shape")[1]
    g = _args.geometry(input_shape, filter_shape, strides, padding, data_format, dilations, "input_shape",
                       "filter_shape")
    return g.output_shape


def _computed_into(out, compute_dtype, kernel, n_threads, finish=None):
    """Run `kernel(target)` on a flat `compute_dtype` view of `out`, then `finish(result)` (a user's
    activation) on it; or, when `out` holds a narrower float (float16) or integers, on a scratch
    array that is then rounded into `out` (on `n_threads` threads)."""
    target = out if out.dtype == compute_dtype else _args.scratch_empty(out.shape, compute_dtype)
    kernel(_flat(target))
    if finish is not None:
        _args.apply_activation(finish, target)
    if target is not out:
        _args.round_into(out, target, n_threads=n_threads)


@_dispatch("x", "filters", "bias", "out")
def depthwise_conv2d(x, filters, strides=1, padding="VALID", *, data_format="NHWC", dilations=1,
                     bias=None, padding_mode="zeros", activation=None, dtype=None, out=None, num_threads=None,
                     filter_format=None):
    """2-D depthwise convolution (cross-correlation, as in TensorFlow and PyTorch).

    Parameters
    ----------
    x : array_like, 4-D
        ``(N, H, W, C)`` for ``data_format="NHWC"`` / ``"channels_last"``, ``(N, C, H, W)`` for
        ``"NCHW"`` / ``"channels_first"``. float16, float32, float64, or an integer image (uint8,
        uint16, int16, int32; computed in float32).
    filters : array_like
        ``(kh, kw, C, M)`` (TensorFlow layout, M = channel multiplier) or ``(kh, kw, C)`` (M = 1), or
        the layout ``filter_format`` names.
    strides, dilations : int, (h, w), or TensorFlow's 4-element form for ``data_format``.
    padding : "VALID", "SAME" (as TensorFlow), int, (ph, pw), ((top, bottom), (left, right)), or
        TensorFlow's explicit 4 pairs in ``data_format`` order.
    bias : array_like, (C*M,), optional
        Added to every output pixel, inside the kernel.
    padding_mode : "zeros", "reflect", "replicate", "circular" or "symmetric"
        What the padding holds (PyTorch's names; ``numpy.pad``'s constant, reflect, edge, wrap, and
        its symmetric: reflected about the edges themselves, OpenCV's BORDER_REFLECT).
        No padded copy is made: the taps that fall in the padding read the pixels they mirror.
    activation : None, "relu", "relu6", "sigmoid", "tanh", "gelu", "silu", "hard_swish" or callable
        Applied after the bias; the named ones inside the kernel, a callable to the result.
    dtype : float16, float32, float64, uint8, uint16, int16 or int32, optional
        The result's dtype. By default float64 if any input is float64, float16 if ``x`` is
        float16 (accumulated in float32), else float32. Integer results are computed in float32,
        then rounded to nearest (ties to even) and saturated, as OpenCV's ``saturate_cast`` does
        (NaN becomes 0).
    out : ndarray, optional
        C-contiguous, writeable, of the result's exact shape and dtype; written and returned.
        Results dwconv allocates start on a 64-byte cache line; an ``out`` that does not (NumPy
        only promises 16 bytes) costs the NHWC kernels up to 1.75x, so reuse one of those.
    num_threads : int, optional
        None for OpenMP's default (``OMP_NUM_THREADS``, threadpoolctl); n < 0 means all but -n-1.
    filter_format : None, "tf", "torch", "chainer", "megengine" or "ivy"
        The layout ``filters`` come in (see ``dwconv.convert_filters``): ``"torch"`` reads
        PyTorch's ``(C*M, 1, kh, kw)`` weights as they are. None means dwconv's own ``(kh, kw, C[, M])``,
        and raises where the shape only fits another framework's layout, or, for NCHW, fits
        PyTorch's as well: pass the format to say which.

    Returns
    -------
    ndarray with C*M channels in ``data_format``: channel ``c*M + m`` is input channel c filtered
    by ``filters[:, :, c, m]``.
    """
    c = _args.forward_call(x, filters, strides, padding, data_format, dilations, padding_mode, bias, activation,
                           dtype, filter_format)
    n_threads = _threads(num_threads)
    out = _args.output_array(out, c.shape, c.dtype, (("x", c.x), ("filters", c.filters), ("bias", c.bias)))
    if out.size:
        user_activation = c.activation if callable(c.activation) else None
        fused = c.activation if user_activation is None else None
        # The float32 forward reads and writes _args.KERNEL_PIXELS itself, with one filter per
        # channel where its plan converts at float32's speed: images widened as its rings copy their
        # rows, results rounded (integers saturated) as they leave its scratch (1080p RGB uint8, 3x3
        # to 7x7: 2-3.7x faster than converting the image and the result in NumPy passes; float16
        # 56x56x144 3x3 at batch 16 20x, and 2.1x faster than the kernels' conversions around it)
        kernel_pixels = (c.compute == np.float32 and c.g.M == 1
                         and (c.x.dtype in _args.KERNEL_PIXELS or out.dtype in _args.KERNEL_PIXELS)
                         and _kernels.converts_itself(c.g))
        x = _flat(_args.contiguous(c.x, c.x.dtype if kernel_pixels and c.x.dtype in _args.KERNEL_PIXELS else c.compute,
                                   n_threads))
        filters = _flat(_args.contiguous(c.filters, c.compute))

        def forward(y):
            _kernels.forward(x, filters, c.bias, y, c.g, fused, n_threads)

        if user_activation is None and (out.dtype == c.compute or kernel_pixels and out.dtype in _args.KERNEL_PIXELS):
            forward(_flat(out))
        else:
            _computed_into(out, c.compute, forward, n_threads, user_activation)
    return out


@_dispatch("filters", "grad_output", "out")
def depthwise_conv2d_backprop_input(input_shape, filters, grad_output, strides=1, padding="VALID", *,
                                    data_format="NHWC", dilations=1, padding_mode="zeros", dtype=None, out=None,
                                    num_threads=None, filter_format=None):
    """The gradient of ``depthwise_conv2d`` with respect to ``x``, shaped ``input_shape``.

    Arguments as for ``depthwise_conv2d`` (TensorFlow's order: shape, filters, output gradient);
    ``grad_output`` is the gradient of the output before any activation."""
    c = _args.input_grad_call(input_shape, filters, grad_output, strides, padding, data_format, dilations,
                              padding_mode, dtype, filter_format)
    n_threads = _threads(num_threads)
    out = _args.output_array(out, c.shape, c.dtype, (("filters", c.filters), ("grad_output", c.grad_output)),
                             "input_shape")
    _input_grad_into(out, c.grad_output, c.filters, c.g, c.compute, n_threads)
    return out


def _input_grad_into(out, grad_output, filters, g, compute, n_threads):
    """Write the input gradient for `grad_output` into `out`."""
    if out.size and grad_output.size:
        grad_output = _flat(_args.contiguous(grad_output, compute, n_threads))
        filters = _flat(_args.contiguous(filters, compute))
        _computed_into(out, compute, lambda dx: _kernels.input_grad(grad_output, filters, dx, g, n_threads), n_threads)
    else:
        out.fill(0)


def _filter_and_bias_grad(x, grad_output, g, compute, out_filters, out_bias, n_threads):
    if out_filters.size:
        if x.size and grad_output.size:
            x = _flat(_args.contiguous(x, compute, n_threads))
            grad_output = _flat(_args.contiguous(grad_output, compute, n_threads))
            # (the bias gradient straight into out_bias where it holds the dtype the kernels compute in)
            bias = out_bias if out_bias is None or out_bias.dtype == compute else np.empty(out_bias.shape, compute)
            _computed_into(out_filters, compute,
                           lambda dfilters: _kernels.filter_grad(x, grad_output, dfilters, bias, g, n_threads),
                           n_threads)
            if bias is not out_bias:
                np.copyto(out_bias, bias, casting="same_kind")
            return
        out_filters.fill(0)
    if out_bias is not None:
        np.sum(grad_output, axis=(0, 1, 2) if g.layout == "NHWC" else (0, 2, 3), out=out_bias, dtype=compute)


@_dispatch("x", "grad_output", "out")
def depthwise_conv2d_backprop_filter(x, filter_shape, grad_output, strides=1, padding="VALID", *,
                                     data_format="NHWC", dilations=1, padding_mode="zeros", dtype=None, out=None,
                                     num_threads=None, filter_format=None):
    """The gradient of ``depthwise_conv2d`` with respect to ``filters``, shaped ``filter_shape``
    (``(kh, kw, C, M)`` or ``(kh, kw, C)``, or the layout ``filter_format`` names). Bitwise the
    same for any ``num_threads``."""
    c = _args.filter_grad_call(x, filter_shape, grad_output, strides, padding, data_format, dilations,
                               padding_mode, dtype, filter_format)
    n_threads = _threads(num_threads)
    out = _args.output_array(out, c.shape, c.dtype, (("x", c.x), ("grad_output", c.grad_output)), "filter_shape")
    tf_out = out if c.filter_format == "tf" else np.empty(c.g.filter_shape, c.dtype)
    _filter_and_bias_grad(c.x, c.grad_output, c.g, c.compute, tf_out, None, n_threads)
    if tf_out is not out:
        np.copyto(out, _args.filters_in_format(tf_out, c))
    return out


@_dispatch("x", "filters", "grad_output")
def depthwise_conv2d_grad(x, filters, grad_output, strides=1, padding="VALID", *, data_format="NHWC",
                          dilations=1, padding_mode="zeros", dtype=None, out=None, num_threads=None,
                          filter_format=None):
    """All three gradients of ``depthwise_conv2d``: ``Gradients(input, filters, bias)``, the filter
    gradient in the layout of ``filters`` (``filter_format``).

    ``out`` may give the arrays to write them into: ``(input, filters, bias)``, each as the ``out``
    of ``depthwise_conv2d`` (C-contiguous, the result's shape and dtype), or None for a new array.

    The filter and bias gradients come from one pass over ``x`` and ``grad_output``, the input
    gradient from another over ``grad_output``."""
    c = _args.grad_call(x, filters, grad_output, strides, padding, data_format, dilations, padding_mode, dtype,
                        filter_format)
    n_threads = _threads(num_threads)
    grads, tf_filters = _args.gradient_arrays(_args.gradient_outs(out), c)
    # (converted once, for both passes)
    x, grad_output, filters = (_args.contiguous(a, c.compute, n_threads) for a in (c.x, c.grad_output, c.filters))
    _input_grad_into(grads.input, grad_output, filters, c.g, c.compute, n_threads)
    _filter_and_bias_grad(x, grad_output, c.g, c.compute, tf_filters, grads.bias, n_threads)
    if tf_filters is not grads.filters:
        np.copyto(grads.filters, _args.filters_in_format(tf_filters, c))
    return grads

