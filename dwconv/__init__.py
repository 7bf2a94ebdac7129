"""dwconv: fast 2-D (and 1-D) depthwise convolution for NumPy arrays.

Forward pass and gradients, NHWC and NCHW, every argument form of TensorFlow, Keras, ivy, Chainer
and MegEngine, computed by OpenMP-parallel kernels with run-time instruction-set dispatch.
"""
__version__ = "0.1.0"

import importlib.util

# Without this check, a source checkout whose extension was never built (dwconv installed elsewhere, then
# run from the checkout's root, where `python` finds the folder dwconv/ first) fails with a
# circular-import error that names neither the cause nor the way out.
if importlib.util.find_spec("dwconv._kernels") is None:
    raise ImportError(
        f"dwconv's compiled module dwconv._kernels is missing in this source tree ({__path__[0]}): "
        "build it in place (`pip install -e .` or `python setup.py build_ext --inplace`), or run from outside "
        "the checkout to use the installed dwconv", name="dwconv._kernels")
del importlib

from dwconv._config import _select_isa_at_import, release_memory, show_config, supported_isas, use_isa
from dwconv._conv import (
    Gradients,
    depthwise_conv2d,
    depthwise_conv2d_backprop_filter,
    depthwise_conv2d_backprop_input,
    depthwise_conv2d_grad,
    output_shape,
)
from dwconv._conv1d import (
    depthwise_conv1d,
    depthwise_conv1d_backprop_filter,
    depthwise_conv1d_backprop_input,
    depthwise_conv1d_causal,
    depthwise_conv1d_grad,
)
from dwconv._filters import convert_filters
from dwconv._image import filter2d, sep_filter2d

__all__ = [
    "depthwise_conv2d",
    "depthwise_conv2d_backprop_input",
    "depthwise_conv2d_backprop_filter",
    "depthwise_conv2d_grad",
    "Gradients",
    "output_shape",
    "depthwise_conv1d",
    "depthwise_conv1d_backprop_input",
    "depthwise_conv1d_backprop_filter",
    "depthwise_conv1d_grad",
    "depthwise_conv1d_causal",
    "convert_filters",
    "filter2d",
    "sep_filter2d",
    "show_config",
    "supported_isas",
    "use_isa",
    "release_memory",
]

_select_isa_at_import()
del _select_isa_at_import
