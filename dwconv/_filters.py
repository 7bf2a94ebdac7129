"""Depthwise filters in the layouts of the frameworks dwconv replaces.

dwconv's own layout is TensorFlow's ``(kh, kw, C, M)``: ``filters[:, :, c, m]`` makes output channel
``c*M + m``. Every framework below orders its output channels the same way; only the axes differ.
"""
import numpy as np

from dwconv import _args

__all__ = ["convert_filters"]

# name -> (the layout's shape in words, its axes; to TensorFlow's, from TensorFlow's).
# to_tf receives the array and C; from_tf receives a (kh, kw, C, M) array.
_LAYOUTS = {
    "tf": ("(kh, kw, C, M)", lambda w, C: w, lambda w: w),
    "ivy": ("(kh, kw, C)", lambda w, C: w[..., None], lambda w: w[..., 0]),
    "torch": ("(C*M, 1, kh, kw)",
              lambda w, C: w.reshape(C, w.shape[0] // max(C, 1), *w.shape[2:]).transpose(2, 3, 0, 1),
              lambda w: w.transpose(2, 3, 0, 1).reshape(-1, 1, *w.shape[:2])),
    "chainer": ("(M, C, kh, kw)", lambda w, C: w.transpose(2, 3, 1, 0), lambda w: w.transpose(3, 2, 0, 1)),
    "megengine": ("(C, M, 1, kh, kw)", lambda w, C: w[:, :, 0].transpose(2, 3, 0, 1),
                  lambda w: w.transpose(2, 3, 0, 1)[:, :, None]),
}
_ALIASES = {"keras": "tf"}
_NAMES = ", ".join(map(repr, (*_LAYOUTS, *_ALIASES)))

# Where each layout keeps C, and which axes must be 1.
_CHANNEL_AXIS = {"tf": 2, "ivy": 2, "torch": 0, "chainer": 1, "megengine": 0}
_UNIT_AXES = {"torch": (1,), "megengine": (2,)}
_NDIM = {"tf": 4, "ivy": 3, "torch": 4, "chainer": 4, "megengine": 5}


def _layout(value, name):
    layout = _ALIASES.get(value, value) if isinstance(value, str) else None
    if layout not in _LAYOUTS:
        raise ValueError(f"`{name}` must be one of {_NAMES}; got {value!r}")
    return layout


def convert_filters(w, source, target, *, in_channels=None):
    """Depthwise filters `w` in the `source` framework's layout, returned in the `target`'s.

    Parameters
    ----------
    w : array_like
        The filters as `source` holds them.
    source, target : {"tf", "keras", "ivy", "torch", "chainer", "megengine"}
        ``"tf"`` / ``"keras"``: ``(kh, kw, C, M)`` (dwconv's own layout);
        ``"ivy"``: ``(kh, kw, C)`` (one filter per channel, M = 1);
        ``"torch"``: ``(C*M, 1, kh, kw)`` (``Conv2d(C, C*M, k, groups=C).weight``);
        ``"chainer"``: ``(M, C, kh, kw)``;
        ``"megengine"``: ``(C, M, 1, kh, kw)`` (``Conv2d(C, C*M, k, groups=C).weight``).
    in_channels : int, optional
        C, for ``source="torch"``, whose shape does not tell C from M; by default M = 1. For
        another source it is checked against the shape.

    Returns
    -------
    ndarray, a new C-contiguous array of `w`'s dtype.
    """
    w = _args.as_array(w, "w")
    source, target = _layout(source, "source"), _layout(target, "target")
    shape, to_tf = _LAYOUTS[source][:2]
    if w.ndim != _NDIM[source] or any(w.shape[axis] != 1 for axis in _UNIT_AXES.get(source, ())):
        raise ValueError(f"`w` must have shape {shape} for source={source!r}, got {w.shape}")
    C = w.shape[_CHANNEL_AXIS[source]]
    if in_channels is not None:
        if not _args.is_int(in_channels) or in_channels < 1 or (
                C % in_channels if source == "torch" else C != in_channels):
            raise ValueError(f"`in_channels`={in_channels!r} does not fit `w` of shape {w.shape} "
                             f"in the {source!r} layout {shape}")
        C = int(in_channels)
    tf = to_tf(w, C)
    if target == "ivy" and tf.shape[3] != 1:
        raise ValueError(f"`target`='ivy' holds one filter per channel (M = 1), but these filters have "
                         f"M = {tf.shape[3]} (shape {w.shape} in the {source!r} layout {shape})")
    return np.array(_LAYOUTS[target][2](tf), order="C")
