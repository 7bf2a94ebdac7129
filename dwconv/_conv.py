"""The public convolution functions: argument handling from dwconv._args, arithmetic in _kernels."""
from collections import namedtuple

import numpy as np

from dwconv import _args, _kernels

__all__ = ["depthwise_conv2d", "depthwise_conv2d_backprop_input", "depthwise_conv2d_backprop_filter",
           "depthwise_conv2d_grad", "output_shape", "Gradients"]

Gradients = namedtuple("Gradients", "input filters bias")
Gradients.__doc__ = "The gradients of a depthwise convolution with respect to its input, filters and bias."


def _flat(array):
    return array.reshape(-1)


def _threads(num_threads):
    return _args.resolve_threads(num_threads, _kernels.max_threads())


def output_shape(input_shape, filter_shape, strides=1, padding="VALID", *, data_format="NHWC",
                 dilations=1):
    """The shape of ``depthwise_conv2d``'s result for inputs of these shapes and these arguments."""
    g = _args.geometry(_args.shape_tuple(input_shape, "input_shape", (4,)),
                       _args.shape_tuple(filter_shape, "filter_shape", (3, 4)),
                       strides, padding, data_format, dilations, "input_shape", "filter_shape")
    return g.output_shape


def depthwise_conv2d(x, filters, strides=1, padding="VALID", *, data_format="NHWC", dilations=1,
                     bias=None, out=None, num_threads=None):
    """2-D depthwise convolution (cross-correlation, as in TensorFlow and PyTorch).

    Parameters
    ----------
    x : array_like, 4-D
        ``(N, H, W, C)`` for ``data_format="NHWC"`` / ``"channels_last"``, ``(N, C, H, W)`` for
        ``"NCHW"`` / ``"channels_first"``. float32 or float64.
    filters : array_like
        ``(kh, kw, C, M)`` (TensorFlow layout, M = channel multiplier) or ``(kh, kw, C)`` (M = 1).
    strides, dilations : int, (h, w), or TensorFlow's 4-element form for ``data_format``.
    padding : "VALID", "SAME" (as TensorFlow), int, (ph, pw), ((top, bottom), (left, right)), or
        TensorFlow's explicit 4 pairs in ``data_format`` order.
    bias : array_like, (C*M,), optional
        Added to every output pixel, inside the kernel.
    out : ndarray, optional
        C-contiguous, writeable, of the result's exact shape and dtype; written and returned.
    num_threads : int, optional
        None for OpenMP's default (``OMP_NUM_THREADS``, threadpoolctl); n < 0 means all but -n-1.

    Returns
    -------
    ndarray with C*M channels in ``data_format``: channel ``c*M + m`` is input channel c filtered
    by ``filters[:, :, c, m]``. float32 when ``x`` and ``filters`` are float32, else float64.
    """
    x = _args.as_array(x, "x")
    filters = _args.as_array(filters, "filters")
    g = _args.geometry(x.shape, filters.shape, strides, padding, data_format, dilations)
    dtype = _args.compute_dtype(x, filters)
    bias = _args.check_bias(bias, g, dtype)
    n_threads = _threads(num_threads)
    out = _args.output_array(out, g.output_shape, dtype, (("x", x), ("filters", filters), ("bias", bias)),
                             align_like=x)
    if out.size:
        _kernels.forward(_flat(_args.contiguous(x, dtype)), _flat(_args.contiguous(filters, dtype)), bias,
                         _flat(out), g, n_threads)
    return out


def _grad_output(grad_output, g):
    grad_output = _args.as_array(grad_output, "grad_output")
    if grad_output.shape != g.output_shape:
        raise ValueError(f"`grad_output` has shape {grad_output.shape} but the forward output for these "
                         f"arguments has shape {g.output_shape}")
    return grad_output


def depthwise_conv2d_backprop_input(input_shape, filters, grad_output, strides=1, padding="VALID", *,
                                    data_format="NHWC", dilations=1, out=None, num_threads=None):
    """The gradient of ``depthwise_conv2d`` with respect to ``x``, shaped ``input_shape``.

    Arguments as for ``depthwise_conv2d`` (TensorFlow's order: shape, filters, output gradient)."""
    filters = _args.as_array(filters, "filters")
    g = _args.geometry(_args.shape_tuple(input_shape, "input_shape", (4,)), filters.shape, strides, padding,
                       data_format, dilations, "input_shape")
    grad_output = _grad_output(grad_output, g)
    dtype = _args.compute_dtype(filters, grad_output)
    n_threads = _threads(num_threads)
    out = _args.output_array(out, g.input_shape, dtype, (("filters", filters), ("grad_output", grad_output)),
                             "input_shape", align_like=grad_output)
    _input_grad_into(out, grad_output, filters, g, dtype, n_threads)
    return out


def _input_grad_into(out, grad_output, filters, g, dtype, n_threads):
    """Write the input gradient for `grad_output` into `out`."""
    if out.size and grad_output.size:
        _kernels.input_grad(_flat(_args.contiguous(grad_output, dtype)), _flat(_args.contiguous(filters, dtype)),
                            _flat(out), g, n_threads)
    else:
        out.fill(0)


def _filter_and_bias_grad(x, grad_output, g, dtype, out_filters, out_bias, n_threads):
    if out_filters.size:
        if x.size and grad_output.size:
            _kernels.filter_grad(_flat(_args.contiguous(x, dtype)), _flat(_args.contiguous(grad_output, dtype)),
                                 _flat(out_filters), out_bias, g, n_threads)
            return
        out_filters.fill(0)
    if out_bias is not None:
        np.sum(grad_output, axis=(0, 1, 2) if g.layout == "NHWC" else (0, 2, 3), out=out_bias)


def depthwise_conv2d_backprop_filter(x, filter_shape, grad_output, strides=1, padding="VALID", *,
                                     data_format="NHWC", dilations=1, out=None, num_threads=None):
    """The gradient of ``depthwise_conv2d`` with respect to ``filters``, shaped ``filter_shape``
    (``(kh, kw, C, M)`` or ``(kh, kw, C)``). Bitwise the same for any ``num_threads``."""
    x = _args.as_array(x, "x")
    filter_shape = _args.shape_tuple(filter_shape, "filter_shape", (3, 4))
    g = _args.geometry(x.shape, filter_shape, strides, padding, data_format, dilations, "x", "filter_shape")
    grad_output = _grad_output(grad_output, g)
    dtype = _args.compute_dtype(x, grad_output)
    n_threads = _threads(num_threads)
    out = _args.output_array(out, filter_shape, dtype, (("x", x), ("grad_output", grad_output)), "filter_shape")
    _filter_and_bias_grad(x, grad_output, g, dtype, out, None, n_threads)
    return out


def depthwise_conv2d_grad(x, filters, grad_output, strides=1, padding="VALID", *, data_format="NHWC",
                          dilations=1, num_threads=None):
    """All three gradients of ``depthwise_conv2d``: ``Gradients(input, filters, bias)``.

    The filter and bias gradients come from one pass over ``x`` and ``grad_output``."""
    x = _args.as_array(x, "x")
    filters = _args.as_array(filters, "filters")
    g = _args.geometry(x.shape, filters.shape, strides, padding, data_format, dilations)
    grad_output = _grad_output(grad_output, g)
    dtype = _args.compute_dtype(x, filters, grad_output)
    n_threads = _threads(num_threads)
    grad_input = _args.output_array(None, g.input_shape, dtype, align_like=grad_output)
    grad_filters = np.empty(filters.shape, dtype)
    grad_bias = np.empty(g.C * g.M, dtype)
    _input_grad_into(grad_input, grad_output, filters, g, dtype, n_threads)
    _filter_and_bias_grad(x, grad_output, g, dtype, grad_filters, grad_bias, n_threads)
    return Gradients(grad_input, grad_filters, grad_bias)
