"""dwconv inside PyTorch models: a differentiable depthwise convolution operator, drop-in modules,
and ``convert(model)``, which swaps a model's depthwise convolutions for them.

The arithmetic is dwconv's: tensors are handed to it as NumPy arrays without copies (a contiguous
tensor as NCHW, a channels_last one as NHWC), and it writes its results into tensors allocated by
PyTorch in the input's memory format. (PyTorch's allocator, not NumPy's: NumPy asks the kernel for
huge pages for large arrays, whose first touch can stall for milliseconds right after PyTorch has
freed memory, measured at 3-5x a 7x7 layer's time in a model.)

The forward pass and both gradients are PyTorch custom operators ("dwconv::..."), each with its own
autograd formula, so higher derivatives work, and each with a fake implementation, so
torch.compile and torch.export see one opaque operator per call.

Imported only on ``import dwconv.torch``: PyTorch is optional for dwconv.
"""
from __future__ import annotations

import torch
from torch import nn

import dwconv

__all__ = ["Conv1d", "Conv2d", "conv2d", "convert"]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


# ---------------------------------------------------------------------------------------------
# Tensors to arrays and back


def _channels_last(t):
    """Whether a 4-D tensor runs as NHWC. A tensor that is both contiguous and channels_last (one
    channel, or 1x1 pixels) runs as NCHW."""
    return not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)


def _format(t):
    return "NHWC" if _channels_last(t) else "NCHW"


def _array(t, data_format):
    """`t` as an array in `data_format`: a view of its memory when it is laid out that way already
    (NumPy for CPU tensors, CuPy for CUDA ones)."""
    t = t.detach()
    if data_format == "NHWC":
        t = t.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1)
    else:
        t = t.contiguous()
    if t.device.type == "cuda":
        return _cupy().from_dlpack(t)
    return t.numpy()


def _vector(t):
    if t is None:
        return None
    t = t.detach().contiguous()
    return _cupy().from_dlpack(t) if t.device.type == "cuda" else t.numpy()


def _cupy():
    try:
        import cupy
    except ImportError:
        raise RuntimeError("dwconv.torch runs CUDA tensors through CuPy, which is not installed: "
                           "`pip install cupy-cuda12x` (CUDA 12), or move the tensors to the CPU") from None
    return cupy


def _empty_like_result(like, shape):
    """An uninitialized tensor of `shape` in the memory format results for `like` come in."""
    memory_format = torch.channels_last if _channels_last(like) else torch.contiguous_format
    return torch.empty(shape, dtype=like.dtype, device=like.device, memory_format=memory_format)


def _pads(padding):
    """dwconv's explicit padding from the operators' (top, bottom, left, right)."""
    return (padding[0], padding[1]), (padding[2], padding[3])


def _output_size(size, kernel, stride, pad_before, pad_after, dilation):
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


# ---------------------------------------------------------------------------------------------
# The operators. Their arguments are already checked and normalized by conv2d: stride and
# dilation (h, w), padding (top, bottom, left, right).


def _conv2d_result(input, weight, stride, padding, dilation):
    kh, kw = weight.shape[2:]
    shape = (input.shape[0], weight.shape[0],
             _output_size(input.shape[2], kh, stride[0], padding[0], padding[1], dilation[0]),
             _output_size(input.shape[3], kw, stride[1], padding[2], padding[3], dilation[1]))
    return _empty_like_result(input, shape)


def _conv2d(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: list[int],
            padding: list[int], dilation: list[int], padding_mode: str, activation: str | None = None) -> torch.Tensor:
    """The forward operator's implementation. `activation` (one of dwconv's fused ones) only from
    modules running fused, without autograd."""
    data_format = _format(input)
    y = _conv2d_result(input, weight, stride, padding, dilation)
    dwconv.depthwise_conv2d(_array(input, data_format), _array(weight, "NCHW"), stride, _pads(padding),
                            data_format=data_format, dilations=dilation, bias=_vector(bias),
                            padding_mode=padding_mode, activation=activation, filter_format="torch",
                            out=_array(y, data_format), num_threads=torch.get_num_threads())
    return y


_conv2d_op = torch.library.custom_op("dwconv::conv2d", _conv2d, mutates_args=())


def _forward_function(input):
    """The operator, or in eager mode (no torch.compile or jit tracing, a plain tensor) its
    implementation itself, through _EagerConv2d where autograd records: PyTorch's dispatch of a
    custom operator costs ~25 us a call without autograd and ~100 us with it, the time of a whole
    3x3 layer's batch-1 work at small sizes."""
    if type(input) is not torch.Tensor or torch.compiler.is_compiling() or torch.jit.is_tracing():
        return _conv2d_op
    return _EagerConv2d.apply if torch.is_grad_enabled() else _conv2d


@_conv2d_op.register_fake
def _(input, weight, bias, stride, padding, dilation, padding_mode, activation=None):
    return _conv2d_result(input, weight, stride, padding, dilation)


def _input_grad(grad_output: torch.Tensor, weight: torch.Tensor, input_size: list[int], stride: list[int],
                padding: list[int], dilation: list[int], padding_mode: str) -> torch.Tensor:
    data_format = _format(grad_output)
    dx = _empty_like_result(grad_output, input_size)
    out = _array(dx, data_format)
    dwconv.depthwise_conv2d_backprop_input(
        out.shape, _array(weight, "NCHW"), _array(grad_output, data_format), stride, _pads(padding),
        data_format=data_format, dilations=dilation, padding_mode=padding_mode, filter_format="torch", out=out,
        num_threads=torch.get_num_threads())
    return dx


_input_grad_op = torch.library.custom_op("dwconv::conv2d_input_grad", _input_grad, mutates_args=())


@_input_grad_op.register_fake
def _(grad_output, weight, input_size, stride, padding, dilation, padding_mode):
    return _empty_like_result(grad_output, input_size)


def _weight_grad(input: torch.Tensor, grad_output: torch.Tensor, weight_size: list[int], stride: list[int],
                 padding: list[int], dilation: list[int], padding_mode: str) -> torch.Tensor:
    data_format = _format(input)
    dw = input.new_empty(weight_size)
    dwconv.depthwise_conv2d_backprop_filter(
        _array(input, data_format), tuple(weight_size), _array(grad_output, data_format), stride, _pads(padding),
        data_format=data_format, dilations=dilation, padding_mode=padding_mode, filter_format="torch",
        out=_array(dw, "NCHW"), num_threads=torch.get_num_threads())
    return dw


_weight_grad_op = torch.library.custom_op("dwconv::conv2d_weight_grad", _weight_grad, mutates_args=())


@_weight_grad_op.register_fake
def _(input, grad_output, weight_size, stride, padding, dilation, padding_mode):
    return input.new_empty(weight_size)


def _backward(grad_output: torch.Tensor, input: torch.Tensor, weight: torch.Tensor, stride: list[int],
              padding: list[int], dilation: list[int], padding_mode: str) -> tuple[torch.Tensor, torch.Tensor,
                                                                                   torch.Tensor]:
    """The input, weight and bias gradients together: dwconv's depthwise_conv2d_grad, which reads
    grad_output once for the weight and bias, and for NHWC 3x3 "same" once for all three."""
    data_format = _format(input)
    grads = _backward_results(input, weight)
    dwconv.depthwise_conv2d_grad(
        _array(input, data_format), _array(weight, "NCHW"), _array(grad_output, data_format), stride,
        _pads(padding), data_format=data_format, dilations=dilation, padding_mode=padding_mode,
        filter_format="torch", out=(_array(grads[0], data_format), _array(grads[1], "NCHW"), _vector(grads[2])),
        num_threads=torch.get_num_threads())
    return grads


def _backward_results(input, weight):
    return _empty_like_result(input, input.shape), weight.new_empty(weight.shape), weight.new_empty(weight.shape[0])


_backward_op = torch.library.custom_op("dwconv::conv2d_backward", _backward, mutates_args=())
_backward_op.register_fake(lambda grad_output, input, weight, *geometry: _backward_results(input, weight))


# The autograd formulas. The convolution is bilinear in (input, weight), and so are its two
# gradients; each operator's derivatives are therefore the other two operators:
#   y  = conv(x, w)          dL/dx = input_grad(dy, w)        dL/dw = weight_grad(x, dy)
#   dx = input_grad(dy, w)   dL/ddy = conv(g, w)              dL/dw = weight_grad(g, dy)
#   dw = weight_grad(x, dy)  dL/dx = input_grad(dy, g)        dL/ddy = conv(x, g)
# (g: the gradient arriving for the operator's result), which makes gradients of any order. When
# both are wanted, one operator computes the three gradients together (dwconv's
# depthwise_conv2d_grad); its derivatives are the sums of the three's.


def _save_geometry(ctx, stride, padding, dilation, padding_mode):
    ctx.geometry = (list(stride), list(padding), list(dilation), padding_mode)


def _conv2d_setup(ctx, inputs, output):
    input, weight, bias, *geometry, activation = inputs
    ctx.save_for_backward(input, weight)
    ctx.has_bias = bias is not None
    ctx.activation = activation
    _save_geometry(ctx, *geometry)


def _conv2d_backward(ctx, grad, gradients=None):
    """The forward's gradients from `gradients` (backward, input_grad, weight_grad): the
    operators, or (without a graph of the gradients to record) their implementations."""
    backward, input_grad, weight_grad = gradients or (_backward_op, _input_grad_op, _weight_grad_op)
    if ctx.activation is not None:
        raise RuntimeError("dwconv::conv2d has no gradient with a fused activation (modules fuse only without "
                           "autograd)")
    input, weight = ctx.saved_tensors
    # Both gradients read `grad` in the input's layout, and the input's gradient comes in it: one
    # copy here where autograd made `grad` otherwise (a slice's backward makes it contiguous),
    # rather than one in the filter gradient and an input gradient in the wrong layout.
    grad = grad.contiguous(memory_format=torch.channels_last if _channels_last(input) else torch.contiguous_format)
    dx = dw = db = None
    if ctx.needs_input_grad[0] and ctx.needs_input_grad[1]:
        dx, dw, db = backward(grad, input, weight, *ctx.geometry)
    elif ctx.needs_input_grad[0]:
        dx = input_grad(grad, weight, list(input.shape), *ctx.geometry)
    elif ctx.needs_input_grad[1]:
        dw = weight_grad(input, grad, list(weight.shape), *ctx.geometry)
    if ctx.has_bias and ctx.needs_input_grad[2] and db is None:
        db = grad.sum((0, 2, 3))
    return dx, dw, db if ctx.has_bias else None, None, None, None, None, None


_conv2d_op.register_autograd(_conv2d_backward, setup_context=_conv2d_setup)


class _EagerConv2d(torch.autograd.Function):
    """The forward operator and its autograd formula in eager mode, without the operators'
    dispatch: the implementations run directly, and the operators only where the gradients' own
    graph is recorded (create_graph, for higher derivatives). (A MobileNetV2 3x3 layer at batch 1,
    forward and input gradient: 0.44 ms through the operators, 0.29 ms this way; PyTorch's own 0.25.)"""

    @staticmethod
    def forward(ctx, input, weight, bias, stride, padding, dilation, padding_mode, activation=None):
        output = _conv2d(input, weight, bias, stride, padding, dilation, padding_mode, activation)
        _conv2d_setup(ctx, (input, weight, bias, stride, padding, dilation, padding_mode, activation), output)
        return output

    @staticmethod
    def backward(ctx, grad):
        return _conv2d_backward(ctx, grad, None if torch.is_grad_enabled() else (_backward, _input_grad, _weight_grad))


def _gradient_setup(ctx, inputs, output):
    """Both gradient operators' setup: their two tensors (grad_output and weight, input and
    grad_output) and the geometry; their third argument, a size, is the shape of a saved tensor."""
    first, second, _, *geometry = inputs
    ctx.save_for_backward(first, second)
    _save_geometry(ctx, *geometry)


def _input_grad_backward(ctx, grad):
    grad_output, weight = ctx.saved_tensors
    d_grad_output = dw = None
    if ctx.needs_input_grad[0]:
        d_grad_output = _conv2d_op(grad, weight, None, *ctx.geometry)
    if ctx.needs_input_grad[1]:
        dw = _weight_grad_op(grad, grad_output, list(weight.shape), *ctx.geometry)
    return d_grad_output, dw, None, None, None, None, None


_input_grad_op.register_autograd(_input_grad_backward, setup_context=_gradient_setup)


def _weight_grad_backward(ctx, grad):
    input, grad_output = ctx.saved_tensors
    dx = d_grad_output = None
    if ctx.needs_input_grad[0]:
        dx = _input_grad_op(grad_output, grad, list(input.shape), *ctx.geometry)
    if ctx.needs_input_grad[1]:
        d_grad_output = _conv2d_op(input, grad, None, *ctx.geometry)
    return dx, d_grad_output, None, None, None, None, None


_weight_grad_op.register_autograd(_weight_grad_backward, setup_context=_gradient_setup)


def _backward_setup(ctx, inputs, output):
    grad_output, input, weight, *geometry = inputs
    ctx.save_for_backward(grad_output, input, weight)
    _save_geometry(ctx, *geometry)


def _backward_backward(ctx, grad_dx, grad_dw, grad_db):
    """The sum of the three gradients' own formulas (the bias gradient sums grad_output)."""
    grad_output, input, weight = ctx.saved_tensors
    d_grad_output = dx = dw = None
    if ctx.needs_input_grad[0]:
        d_grad_output = (torch.zeros_like(grad_output) if grad_db is None
                         else grad_db[:, None, None].expand_as(grad_output))
        if grad_dx is not None:
            d_grad_output = d_grad_output + _conv2d_op(grad_dx, weight, None, *ctx.geometry)
        if grad_dw is not None:
            d_grad_output = d_grad_output + _conv2d_op(input, grad_dw, None, *ctx.geometry)
    if ctx.needs_input_grad[1] and grad_dw is not None:
        dx = _input_grad_op(grad_output, grad_dw, list(input.shape), *ctx.geometry)
    if ctx.needs_input_grad[2] and grad_dx is not None:
        dw = _weight_grad_op(grad_dx, grad_output, list(weight.shape), *ctx.geometry)
    return d_grad_output, dx, dw, None, None, None, None


_backward_op.register_autograd(_backward_backward, setup_context=_backward_setup)


# ---------------------------------------------------------------------------------------------
# The public function


def _pair(value, name):
    """(h, w) from an int or a pair of ints."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        return tuple(value)
    raise TypeError(f"`{name}` must be an int or a pair of ints (h, w), got {value!r}")


def _explicit_padding(padding, kernel, stride, dilation):
    """(top, bottom, left, right) from PyTorch's padding forms, or dwconv's ((top, bottom), (left, right))."""
    if isinstance(padding, str):
        if padding == "valid":
            return [0, 0, 0, 0]
        if padding != "same":
            raise ValueError(f"`padding` must be 'same', 'valid', an int or a pair of ints, got {padding!r}")
        if stride != (1, 1):
            raise ValueError(f"`padding`='same' needs `stride` 1 (as in PyTorch), got stride {stride}")
        # as PyTorch: the odd pixel of an even total goes after (bottom, right)
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return [totals[0] // 2, totals[0] - totals[0] // 2, totals[1] // 2, totals[1] - totals[1] // 2]
    if (isinstance(padding, (tuple, list)) and len(padding) == 2
            and all(isinstance(p, (tuple, list)) for p in padding)):
        pairs = [_pair(p, "padding") for p in padding]
        return [*pairs[0], *pairs[1]]
    ph, pw = _pair(padding, "padding")
    return [ph, ph, pw, pw]


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=None, padding_mode="zeros"):
    """Depthwise 2-D convolution with ``torch.nn.functional.conv2d``'s conventions, differentiable.

    Parameters
    ----------
    input : Tensor, (N, C, H, W) or unbatched (C, H, W); float32, float64 or float16
        Contiguous tensors run as NCHW, channels_last ones as NHWC (no layout copies); the result
        comes in the input's memory format. CUDA tensors run on dwconv's CuPy path.
    weight : Tensor, (C*M, 1, kh, kw)
        PyTorch's depthwise weights: output channel ``c*M + m`` filters input channel c.
    bias : Tensor, (C*M,), optional
    stride, dilation : int or (h, w)
    padding : int, (h, w), ((top, bottom), (left, right)), "same" or "valid"
    groups : int, optional
        Must be C (depthwise); None means C.
    padding_mode : "zeros", "reflect", "replicate" or "circular"
        What the padding holds, as ``nn.Conv2d``'s ``padding_mode``.
    """
    return _checked_conv2d(input, weight, bias, stride, padding, dilation, groups, padding_mode)


def _checked_conv2d(input, weight, bias, stride, padding, dilation, groups, padding_mode, activation=None):
    """conv2d after checking its arguments; `activation` as for the operator."""
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"`input` must be a torch.Tensor, got {type(input).__name__}")
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"`weight` must be a torch.Tensor, got {type(weight).__name__}")
    if input.dim() == 3:
        return _checked_conv2d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups, padding_mode,
                               activation).squeeze(0)
    if input.dim() != 4:
        raise ValueError(f"`input` must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape {tuple(input.shape)}")
    channels = input.shape[1]
    if groups is not None and groups != channels:
        raise ValueError(f"`groups` must equal the input's {channels} channels (dwconv is depthwise only), "
                         f"got {groups!r}")
    if weight.dim() != 4 or weight.shape[1] != 1 or weight.shape[0] % channels or not weight.shape[0]:
        raise ValueError(f"`weight` must be (C*M, 1, kh, kw) for the input's C = {channels} channels, "
                         f"got shape {tuple(weight.shape)}")
    if bias is not None and not isinstance(bias, torch.Tensor):
        raise TypeError(f"`bias` must be a torch.Tensor or None, got {type(bias).__name__}")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"`bias` must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != input.dtype:
            raise TypeError(f"`{name}` must have the input's dtype {input.dtype}, got {t.dtype}")
    if input.device.type not in ("cpu", "cuda"):
        raise ValueError(f"`input` must be on the CPU or a CUDA device, got a tensor on {input.device}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.device != input.device:
            raise ValueError(f"`{name}` must be on the input's device {input.device}, got {t.device}")
    if input.dtype not in (torch.float32, torch.float64, torch.float16):
        raise TypeError(f"`input` must be float32, float64 or float16, got {input.dtype}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"`padding_mode` must be one of {', '.join(map(repr, PADDING_MODES))}, got {padding_mode!r}")
    stride = _pair(stride, "stride")
    dilation = _pair(dilation, "dilation")
    padding = _explicit_padding(padding, tuple(weight.shape[2:]), stride, dilation)
    return _forward_function(input)(input, weight, bias, list(stride), padding, list(dilation), padding_mode,
                                    activation)


# ---------------------------------------------------------------------------------------------
# Modules


def _check_depthwise(module):
    if module.groups != module.in_channels:
        raise ValueError(f"`groups` must equal `in_channels` ({module.in_channels}): dwconv is depthwise only, "
                         f"got groups={module.groups}")


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (same constructor, parameters, initialization and state_dict keys) for depthwise
    convolutions (``groups == in_channels``), computed by dwconv."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _check_depthwise(self)
        # (batch norm or None, activation name or None) after it that `convert` fused into it; kept
        # in a tuple, so that the norm stays its parent's child and not this module's
        self._fusion = None
        self._folded_key, self._folded = None, None

    def fused(self):
        """Whether this call does the work of the modules `convert` fused into it: in eval mode (its
        batch norm's too), without autograd, outside torch.compile (which sees them apart)."""
        return (self._fusion is not None and not self.training and not torch.is_grad_enabled()
                and (self._fusion[0] is None or not self._fusion[0].training) and not torch.compiler.is_compiling())

    def forward(self, input):
        if self.fused():
            weight, bias = self._folded_weights()
            return _checked_conv2d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups,
                                   self.padding_mode, self._fusion[1])
        return conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
                      self.padding_mode)

    def _folded_weights(self):
        """The weight and bias with the batch norm's affine map folded in, remade when any tensor
        they come from changes (an optimizer step, load_state_dict, .to())."""
        norm = self._fusion[0]
        if norm is None:
            return self.weight, self.bias
        sources = (self.weight, self.bias, norm.weight, norm.bias, norm.running_mean, norm.running_var)
        key = (norm.eps, *((t.data_ptr(), t._version) for t in sources if t is not None))
        if key != self._folded_key:
            scale = (norm.running_var + norm.eps).rsqrt()
            if norm.weight is not None:
                scale = scale * norm.weight
            bias = -norm.running_mean * scale if self.bias is None else (self.bias - norm.running_mean) * scale
            if norm.bias is not None:
                bias = bias + norm.bias
            self._folded_key, self._folded = key, (self.weight * scale[:, None, None, None], bias)
        return self._folded


class Conv1d(nn.Conv1d):
    """``nn.Conv1d`` for depthwise convolutions (``groups == in_channels``), computed by dwconv as a
    2-D convolution of height 1 (views of the input and weight, no copies)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _check_depthwise(self)

    def forward(self, input):
        padding = self.padding if isinstance(self.padding, str) else (0, self.padding[0])
        y = conv2d(input.unsqueeze(-2), self.weight.unsqueeze(-2), self.bias, (1, self.stride[0]), padding,
                   (1, self.dilation[0]), self.groups, self.padding_mode)
        return y.squeeze(-2)


_REPLACEMENTS = {nn.Conv2d: Conv2d, nn.Conv1d: Conv1d}

# The activation modules a depthwise Conv2d fuses (dwconv's activation of the same arithmetic)
_ACTIVATIONS = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.SiLU: "silu",
                nn.Hardswish: "hard_swish"}


def _activation_name(module):
    if type(module) is nn.GELU:
        return "gelu" if module.approximate == "none" else None
    return _ACTIVATIONS.get(type(module))


def _replacement(module):
    """dwconv's module for a depthwise nn.Conv1d / nn.Conv2d, sharing its parameters; None for others
    (subclasses too: their forward may do more)."""
    cls = _REPLACEMENTS.get(type(module))
    if cls is None or module.groups != module.in_channels or module.padding_mode not in PADDING_MODES:
        return None
    # built on the meta device, so nothing is initialized only to be replaced
    new = cls(module.in_channels, module.out_channels, module.kernel_size, module.stride, module.padding,
              module.dilation, module.groups, module.bias is not None, module.padding_mode, device="meta")
    new.weight = module.weight
    new.bias = module.bias
    new.train(module.training)
    return new


class _FusedAway:
    """Mixin for a module whose work the dwconv Conv2d before it does when that runs fused: it then
    passes its input through, and otherwise does its own work."""

    def forward(self, input):
        return input if self._fused_into[0].fused() else super().forward(input)


_FUSED_CLASSES = {}


def _fuse_away(module, conv):
    """Make `module` (the same object: its parameters, buffers, hooks and state_dict keys stay) pass
    through when `conv` runs fused."""
    cls = type(module)
    if cls not in _FUSED_CLASSES:  # named as the class it extends, so the model prints as before
        _FUSED_CLASSES[cls] = type(cls.__name__, (_FusedAway, cls), {"__module__": cls.__module__})
    module.__class__ = _FUSED_CLASSES[cls]
    module._fused_into = (conv,)


def _fuse(sequence):
    """Fuse into each dwconv Conv2d of an nn.Sequential the BatchNorm2d (with running statistics) and
    the activation that follow it."""
    children = list(sequence.children())
    for i, conv in enumerate(children):
        if type(conv) is not Conv2d or conv._fusion is not None:
            continue
        norm, activation, following = None, None, children[i + 1:i + 3]
        if (following and type(following[0]) is nn.BatchNorm2d and following[0].track_running_stats
                and following[0].num_features == conv.out_channels):
            norm, following = following[0], following[1:]
        activation_name = _activation_name(following[0]) if following else None
        if activation_name:
            activation = following[0]
        if norm is None and activation is None:
            continue
        conv._fusion = (norm, activation_name)
        for module in (norm, activation):
            if module is not None:
                _fuse_away(module, conv)


def convert(model, fuse=True):
    """Swap every depthwise ``nn.Conv1d`` / ``nn.Conv2d`` in `model` (``groups == in_channels``) for
    dwconv's ``Conv1d`` / ``Conv2d``, which share its Parameter objects; returns the model (the
    replacement, when `model` itself is such a convolution).

    With `fuse`, a depthwise Conv2d followed in an ``nn.Sequential`` by a ``BatchNorm2d`` and/or an
    activation (ReLU, ReLU6, SiLU, GELU, Hardswish, Sigmoid, Tanh) does their work in its own call
    when the model runs in eval mode without autograd (``torch.no_grad()`` / ``inference_mode()``):
    the norm folded into its weights and bias (refolded whenever they change), the activation
    applied as its results are written, while the two modules pass their input through. They stay
    the same objects (parameters, buffers, state_dict keys); in training, or with autograd, every
    module does its own work as before."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    own = _replacement(model)
    if own is not None:
        return own
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            new = _replacement(child)
            if new is not None:
                setattr(parent, name, new)
    if fuse:
        for parent in model.modules():
            if isinstance(parent, nn.Sequential) and type(parent).forward is nn.Sequential.forward:
                _fuse(parent)
    return model
