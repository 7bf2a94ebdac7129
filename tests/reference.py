"""Plain NumPy float64 reference for 2-D depthwise convolution.

Written from the definition (TensorFlow's ``tf.nn.depthwise_conv2d`` docs)::

    out[b, i, j, c*M + m] = sum_{di, dj} filters[di, dj, c, m]
                            * x_pad[b, sh*i + dh*di, sw*j + dw*dj, c]

It shares no code with ``dwconv`` and is deliberately slow and simple: the
input is padded explicitly with ``np.pad`` and every filter tap is one
strided-slice multiply-add.  All arithmetic is float64; results are float64.

Conventions used by every function here:

* ``strides`` / ``dilations``: ``(sh, sw)`` / ``(dh, dw)`` int pairs
  (use :func:`normalize_pair` to turn an API-style value into a pair);
* ``padding``: ``((top, bottom), (left, right))`` ints, already resolved
  (use :func:`resolve_padding` for the API forms);
* ``data_format``: "NHWC" or "NCHW" (Keras aliases and any case accepted);
* filters: ``(kh, kw, C, M)`` TensorFlow layout, or ``(kh, kw, C)`` (M = 1).
"""

import numpy as np

__all__ = [
    "normalize_format",
    "normalize_pair",
    "resolve_padding",
    "output_hw",
    "conv2d_forward",
    "conv2d_backprop_input",
    "conv2d_backprop_filter",
    "activate",
    "PADDING_MODES",
    "ACTIVATIONS",
]

# padding_mode name -> numpy.pad mode
PADDING_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap",
                 "symmetric": "symmetric"}


# ---------------------------------------------------------------------------
# argument helpers


def normalize_format(data_format):
    f = str(data_format).upper()
    if f in ("NHWC", "CHANNELS_LAST"):
        return "NHWC"
    if f in ("NCHW", "CHANNELS_FIRST"):
        return "NCHW"
    raise ValueError(f"bad data_format {data_format!r}")


def normalize_pair(value, data_format="NHWC"):
    """int | (h, w) | TF 4-form in data_format order  ->  (h, w)."""
    if np.ndim(value) == 0:
        return (int(value), int(value))
    v = [int(e) for e in value]
    if len(v) == 2:
        return (v[0], v[1])
    if len(v) == 4:
        if normalize_format(data_format) == "NHWC":
            return (v[1], v[2])
        return (v[2], v[3])
    raise ValueError(f"cannot make a pair of {value!r}")


def resolve_padding(padding_spec, in_hw, k_hw, strides, dilations, data_format="NHWC"):
    """Any API padding form -> ((top, bottom), (left, right)).

    ``in_hw``/``k_hw``: (H, W) of the input and (kh, kw) of the filter;
    ``strides``/``dilations``: anything :func:`normalize_pair` accepts.
    """
    strides = normalize_pair(strides, data_format)
    dilations = normalize_pair(dilations, data_format)
    if isinstance(padding_spec, str):
        mode = padding_spec.upper()
        if mode == "VALID":
            return ((0, 0), (0, 0))
        if mode == "SAME":
            # TensorFlow SAME, per dimension:
            #   eff = (k-1)*d + 1, out = ceil(n/s),
            #   total = max((out-1)*s + eff - n, 0), before = total//2.
            pads = []
            for n, k, s, d in zip(in_hw, k_hw, strides, dilations):
                eff = (k - 1) * d + 1
                out = -(-n // s)
                total = max((out - 1) * s + eff - n, 0)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        raise ValueError(f"bad padding {padding_spec!r}")
    if np.ndim(padding_spec) == 0:                       # int p
        p = int(padding_spec)
        return ((p, p), (p, p))
    spec = np.asarray(padding_spec, dtype=np.int64)
    if spec.shape == (2,):                               # (ph, pw)
        return ((int(spec[0]),) * 2, (int(spec[1]),) * 2)
    if spec.shape == (2, 2):                             # ((t, b), (l, r))
        return tuple((int(a), int(b)) for a, b in spec)
    if spec.shape == (4, 2):                             # TF explicit 4 pairs
        if normalize_format(data_format) == "NHWC":
            hw = spec[1:3]
        else:
            hw = spec[2:4]
        return tuple((int(a), int(b)) for a, b in hw)
    raise ValueError(f"bad padding {padding_spec!r}")


def output_hw(in_hw, k_hw, strides, padding, dilations):
    """Output (OH, OW) for resolved pairs; raises if the kernel does not fit."""
    res = []
    for n, k, s, d, (p0, p1) in zip(in_hw, k_hw, strides, dilations, padding):
        eff = (k - 1) * d + 1
        if n + p0 + p1 < eff:
            raise ValueError("dilated kernel larger than padded input")
        res.append((n + p0 + p1 - eff) // s + 1)
    return tuple(res)


def _to_nhwc(a, data_format):
    return a if normalize_format(data_format) == "NHWC" else a.transpose(0, 2, 3, 1)


def _from_nhwc(a, data_format):
    return a if normalize_format(data_format) == "NHWC" else a.transpose(0, 3, 1, 2)


def _filters4(filters):
    w = np.asarray(filters, dtype=np.float64)
    if w.ndim == 3:
        w = w[..., None]
    if w.ndim != 4:
        raise ValueError("filters must be (kh, kw, C, M) or (kh, kw, C)")
    return w


def _pad(x_nhwc, padding, padding_mode="zeros"):
    (t, b), (l, r) = padding
    return np.pad(x_nhwc, ((0, 0), (t, b), (l, r), (0, 0)), mode=PADDING_MODES[padding_mode])


def _fold(buf, in_hw, padding, padding_mode):
    """The adjoint of _pad: add each padded pixel's gradient into the input pixel it copies.

    np.pad applied to the coordinates themselves says which input pixel each padded one copies."""
    (t, b), (l, r) = padding
    H, W = in_hw
    if padding_mode == "zeros":
        return buf[:, t: t + H, l: l + W, :]
    rows = np.pad(np.arange(H), (t, b), mode=PADDING_MODES[padding_mode])
    cols = np.pad(np.arange(W), (l, r), mode=PADDING_MODES[padding_mode])
    out = np.zeros((buf.shape[0], H, W, buf.shape[3]), dtype=np.float64)
    np.add.at(out, (slice(None), rows[:, None], cols[None, :]), buf)
    return out


# ---------------------------------------------------------------------------
# forward


def conv2d_forward(x, filters, strides, padding, data_format, dilations, bias=None,
                   padding_mode="zeros"):
    """Depthwise conv forward in float64; returns data_format layout."""
    x = _to_nhwc(np.asarray(x, dtype=np.float64), data_format)
    w = _filters4(filters)
    kh, kw, C, M = w.shape
    N, H, W, Cx = x.shape
    if Cx != C:
        raise ValueError("channel mismatch")
    sh, sw = strides
    dh, dw = dilations
    OH, OW = output_hw((H, W), (kh, kw), strides, padding, dilations)
    xp = _pad(x, padding, padding_mode)
    acc = np.zeros((N, OH, OW, C, M), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            win = xp[:, i * dh: i * dh + (OH - 1) * sh + 1: sh,
                        j * dw: j * dw + (OW - 1) * sw + 1: sw, :]
            acc += win[..., None] * w[i, j]
    out = acc.reshape(N, OH, OW, C * M)           # channel c*M + m
    if bias is not None:
        out = out + np.asarray(bias, dtype=np.float64).reshape(C * M)
    return _from_nhwc(out, data_format)


# ---------------------------------------------------------------------------
# gradients


def conv2d_backprop_input(input_shape, filters, grad_output, strides, padding,
                          data_format, dilations, padding_mode="zeros"):
    """d(sum(forward * grad_output)) / dx in float64, shape ``input_shape``.

    Scatter-add of grad_output * w into a zero buffer the size of the padded
    input, then fold the padding back onto the pixels it copies (crop it for zeros).
    """
    fmt = normalize_format(data_format)
    input_shape = tuple(int(s) for s in input_shape)
    if fmt == "NHWC":
        N, H, W, C = input_shape
    else:
        N, C, H, W = input_shape
    w = _filters4(filters)
    kh, kw, Cw, M = w.shape
    if Cw != C:
        raise ValueError("channel mismatch")
    g = _to_nhwc(np.asarray(grad_output, dtype=np.float64), fmt)
    sh, sw = strides
    dh, dw = dilations
    OH, OW = output_hw((H, W), (kh, kw), strides, padding, dilations)
    if g.shape != (N, OH, OW, C * M):
        raise ValueError("grad_output shape mismatch")
    g = g.reshape(N, OH, OW, C, M)
    (t, b), (l, r) = padding
    buf = np.zeros((N, H + t + b, W + l + r, C), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            buf[:, i * dh: i * dh + (OH - 1) * sh + 1: sh,
                   j * dw: j * dw + (OW - 1) * sw + 1: sw, :] += (g * w[i, j]).sum(axis=-1)
    gx = _fold(buf, (H, W), padding, padding_mode)
    return np.ascontiguousarray(_from_nhwc(gx, fmt))


def conv2d_backprop_filter(x, filter_shape, grad_output, strides, padding,
                           data_format, dilations, padding_mode="zeros"):
    """d(sum(forward * grad_output)) / dfilters in float64, shape ``filter_shape``.

    ``filter_shape`` is (kh, kw, C, M) or (kh, kw, C) (then M must be 1).
    """
    fmt = normalize_format(data_format)
    x = _to_nhwc(np.asarray(x, dtype=np.float64), fmt)
    N, H, W, C = x.shape
    filter_shape = tuple(int(s) for s in filter_shape)
    kh, kw = filter_shape[:2]
    if filter_shape[2] != C:
        raise ValueError("channel mismatch")
    M = filter_shape[3] if len(filter_shape) == 4 else 1
    sh, sw = strides
    dh, dw = dilations
    OH, OW = output_hw((H, W), (kh, kw), strides, padding, dilations)
    g = _to_nhwc(np.asarray(grad_output, dtype=np.float64), fmt)
    if g.shape != (N, OH, OW, C * M):
        raise ValueError("grad_output shape mismatch")
    g = g.reshape(N, OH, OW, C, M)
    xp = _pad(x, padding, padding_mode)
    gw = np.zeros((kh, kw, C, M), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            win = xp[:, i * dh: i * dh + (OH - 1) * sh + 1: sh,
                        j * dw: j * dw + (OW - 1) * sw + 1: sw, :]
            gw[i, j] = (win[..., None] * g).sum(axis=(0, 1, 2))
    return gw.reshape(filter_shape)


# ---------------------------------------------------------------------------
# activations, from their definitions


def _erf(v):
    from math import erf
    return np.vectorize(erf, otypes=[np.float64])(v)


ACTIVATIONS = {
    "relu": lambda v: np.maximum(v, 0),
    "relu6": lambda v: np.clip(v, 0, 6),
    "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
    "tanh": np.tanh,
    "gelu": lambda v: 0.5 * v * (1 + _erf(v / np.sqrt(2))),
    "silu": lambda v: v / (1 + np.exp(-v)),
    "hard_swish": lambda v: v * np.clip(v + 3, 0, 6) / 6,
}


def activate(y, name):
    """`name`d activation of float64 `y` (None: unchanged)."""
    return y if name is None else ACTIVATIONS[name](np.asarray(y, dtype=np.float64))
