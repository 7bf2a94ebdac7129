"""``megengine.module.Conv2d`` in its depthwise configurations, on NumPy arrays.

``from dwconv.compat import megengine as M`` keeps ``M.Conv2d(C, K * C, k, groups=C)(x)`` working,
with MegEngine's weight and bias layouts, so a MegEngine state dict loads unchanged. dwconv is a
depthwise library: any other ``groups`` is refused at construction.
"""
import numpy as np

import dwconv
from dwconv import _args

__all__ = ["Conv2d"]

_CONV_MODES = ("cross_correlation", "convolution")
_COMPUTE_MODES = ("default", "float32")


def _choice(value, name, choices):
    """`value` lower-cased when it is one of `choices` (MegEngine accepts either case)."""
    if isinstance(value, str) and value.lower() in choices:
        return value.lower()
    raise ValueError(f"`{name}` must be one of {', '.join(map(repr, choices))}, got {value!r}")


class Conv2d:
    """Depthwise 2-D convolution with MegEngine's ``Conv2d`` arguments, on NCHW arrays.

    Only ``groups == in_channels`` with ``out_channels = K * in_channels`` is accepted (any ``K >= 1``).

    Attributes
    ----------
    weight : ndarray, float32
        ``(groups, K, 1, kh, kw)``, or ``(out_channels, 1, kh, kw)`` when ``groups == 1`` (one input
        channel): MegEngine's layouts. Initialized as MegEngine does, normal with std
        ``1 / sqrt(kh * kw * in_channels)``. May be changed in place or replaced.
    bias : ndarray ``(1, out_channels, 1, 1)``, float32, zeros; None when ``bias=False``.

    ``conv_mode="convolution"`` flips the kernel (true convolution). ``compute_mode="float32"`` asks
    for float32 accumulation of float16 inputs, which dwconv always does, so both modes give the
    same numbers. ``padding_mode`` is "zeros", "reflect" or "replicate" (and dwconv's "circular").
    ``name`` is the module's name, as MegEngine's ``Module`` takes it (its only other keyword).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, conv_mode="cross_correlation", compute_mode="default", padding_mode="zeros", *,
                 name=None):
        if name is not None and not (isinstance(name, str) and name.strip()):
            raise ValueError(f"`name` must be None or a non-empty str, got {name!r}")
        self.name = name
        self.conv_mode = _choice(conv_mode, "conv_mode", _CONV_MODES)
        self.compute_mode = _choice(compute_mode, "compute_mode", _COMPUTE_MODES)
        for argument, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if not _args.is_int(value) or value < 1:
                raise ValueError(f"`{argument}` must be a positive int, got {value!r}")
        if groups != in_channels or out_channels % in_channels:
            raise ValueError(
                f"dwconv is a depthwise convolution library: Conv2d(in_channels={in_channels}, "
                f"out_channels={out_channels}, groups={groups}) is not depthwise. Set `groups` to "
                f"in_channels ({in_channels}) and `out_channels` to a multiple of it "
                f"({in_channels}, {2 * in_channels}, ...); for a dense or other grouped convolution, "
                f"use MegEngine itself")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        # MegEngine keeps these as pairs; the padding is checked now and resolved per input.
        self.kernel_size = _args.spatial_pair(kernel_size, "kernel_size", "NCHW")
        self.stride = _args.spatial_pair(stride, "stride", "NCHW")
        self.dilation = _args.spatial_pair(dilation, "dilation", "NCHW")
        _args.padding_spec(padding, "NCHW")
        self.padding, self.padding_mode = padding, _args.check_padding_mode(padding_mode)
        kh, kw = self.kernel_size
        K = out_channels // in_channels
        self._weight_shape = (out_channels, 1, kh, kw) if groups == 1 else (groups, K, 1, kh, kw)
        std = np.sqrt(1 / (kh * kw * in_channels))
        self.weight = np.random.default_rng().normal(0.0, std, self._weight_shape).astype(np.float32)
        self.bias = np.zeros((1, out_channels, 1, 1), np.float32) if bias else None

    def forward(self, inp):
        """The convolution of ``inp`` ``(N, in_channels, H, W)``: ``(N, out_channels, OH, OW)``."""
        weight = np.asarray(self.weight)
        if weight.shape != self._weight_shape:
            raise ValueError(f"`weight` must have shape {self._weight_shape}, got {weight.shape}")
        filters = dwconv.convert_filters(weight.reshape(self.in_channels, -1, *weight.shape[-3:]),
                                         "megengine", "tf")
        if self.conv_mode == "convolution":
            filters = filters[::-1, ::-1]
        bias = None if self.bias is None else np.asarray(self.bias).reshape(-1)
        return dwconv.depthwise_conv2d(inp, filters, self.stride, self.padding, data_format="NCHW",
                                       dilations=self.dilation, bias=bias, padding_mode=self.padding_mode,
                                       filter_format="tf")

    __call__ = forward

    def __repr__(self):
        return (f"Conv2d(in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, groups={self.groups}, bias={self.bias is not None}, "
                f"conv_mode={self.conv_mode!r}, compute_mode={self.compute_mode!r}, "
                f"padding_mode={self.padding_mode!r})")
