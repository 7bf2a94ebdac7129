"""``tf.nn.depthwise_conv2d`` and its two gradients on NumPy arrays.

``from dwconv.compat import tensorflow as tf`` keeps ``tf.nn.depthwise_conv2d(...)`` working. Results
are NumPy arrays (where TensorFlow returns tensors: no ``.numpy()`` needed). Beyond TensorFlow,
strides and dilations above 1 may be combined.
"""
from types import SimpleNamespace

import dwconv

__all__ = ["depthwise_conv2d", "depthwise_conv2d_backprop_input", "depthwise_conv2d_backprop_filter", "nn"]


def _dilations(dilations):
    return 1 if dilations is None else dilations


def depthwise_conv2d(input, filter, strides, padding, data_format=None, dilations=None, name=None):
    """Depthwise 2-D convolution: ``input`` NHWC (or NCHW), ``filter`` ``(kh, kw, C, M)``; output
    channel ``c*M + m``. ``name`` is accepted and ignored."""
    return dwconv.depthwise_conv2d(input, filter, strides, padding, data_format=data_format,
                                   dilations=_dilations(dilations), filter_format="tf")


def depthwise_conv2d_backprop_input(input_sizes, filter, out_backprop, strides, padding, data_format=None,
                                    dilations=None, name=None):
    """The gradient of ``depthwise_conv2d`` with respect to its input, of shape ``input_sizes``."""
    return dwconv.depthwise_conv2d_backprop_input(input_sizes, filter, out_backprop, strides, padding,
                                                  data_format=data_format, dilations=_dilations(dilations),
                                                  filter_format="tf")


def depthwise_conv2d_backprop_filter(input, filter_sizes, out_backprop, strides, padding, data_format=None,
                                     dilations=None, name=None):
    """The gradient of ``depthwise_conv2d`` with respect to its filter, of shape ``filter_sizes``."""
    return dwconv.depthwise_conv2d_backprop_filter(input, filter_sizes, out_backprop, strides, padding,
                                                   data_format=data_format, dilations=_dilations(dilations),
                                                   filter_format="tf")


# TensorFlow's namespace for them, so that code written against `tf.nn` runs unchanged.
nn = SimpleNamespace(depthwise_conv2d=depthwise_conv2d,
                     depthwise_conv2d_backprop_input=depthwise_conv2d_backprop_input,
                     depthwise_conv2d_backprop_filter=depthwise_conv2d_backprop_filter)
