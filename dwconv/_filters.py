"""Depthwise filters in the layouts of the frameworks dwconv replaces.

dwconv's own layout is TensorFlow's ``(kh, kw, C, M)``: ``filters[:, :, c, m]`` makes output channel
``c*M + m``. Every framework below orders its output channels the same way; only the axes differ.
"""
import numpy as np

from dwconv import _args

__all__ = ["convert_filters"]


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
    source, target = _args.check_filter_format(source, "source"), _args.check_filter_format(target, "target")
    f = _args.FILTER_FORMATS[source]
    if w.ndim != f.ndim or any(w.shape[axis] != 1 for axis in f.unit_axes):
        raise ValueError(f"`w` must have shape {f.shape} for source={source!r}, got {w.shape}")
    C = w.shape[f.channel_axis]
    if in_channels is not None:
        if not _args.is_int(in_channels) or in_channels < 1 or (
                C % in_channels if source == "torch" else C != in_channels):
            raise ValueError(f"`in_channels`={in_channels!r} does not fit `w` of shape {w.shape} "
                             f"in the {source!r} layout {f.shape}")
        C = int(in_channels)
    tf = f.to_tf(w, C)
    if target == "ivy" and tf.shape[3] != 1:
        raise ValueError(f"`target`='ivy' holds one filter per channel (M = 1), but these filters have "
                         f"M = {tf.shape[3]} (shape {w.shape} in the {source!r} layout {f.shape})")
    return np.array(_args.FILTER_FORMATS[target].from_tf(tf), order="C")
