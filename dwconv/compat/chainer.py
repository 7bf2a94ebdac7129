"""``chainer.functions.depthwise_convolution_2d`` on NumPy arrays.

``from dwconv.compat import chainer as F`` keeps ``F.depthwise_convolution_2d(x, W, b)`` working.
The result is a NumPy array (Chainer returns a ``Variable``).
"""
import dwconv

__all__ = ["depthwise_convolution_2d"]


def depthwise_convolution_2d(x, W, b=None, stride=1, pad=0):
    """Depthwise convolution of ``x`` ``(n, c_I, h, w)`` with ``W`` ``(c_M, c_I, k_H, k_W)``.

    ``stride`` and ``pad`` are ints or pairs (``pad`` zeros on both sides); ``b`` has length
    ``c_I * c_M``. Output ``(n, c_I * c_M, h_O, w_O)``, channel ``c * c_M + m`` being input channel c
    filtered by ``W[m, c]``: Chainer's order."""
    filters = dwconv.convert_filters(W, "chainer", "tf")
    return dwconv.depthwise_conv2d(x, filters, stride, pad, data_format="NCHW", bias=b, filter_format="tf")
