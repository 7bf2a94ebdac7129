"""The parameter grid the forward and gradient tests sweep, and the argument spellings they use."""

import itertools

import numpy as np

from dwconv._names import PADDING_MODES
from reference import normalize_pair

FORMATS = ("NHWC", "NCHW")
STRIDES = (1, 2, 3, (1, 2))
DILATIONS = (1, 2, (2, 1))
KERNELS = ((1, 1), (3, 3), (5, 5), (2, 4), (7, 7))
PADDINGS = ("VALID", "SAME", 1, (1, 2), ((0, 2), (1, 0)), "TF4")
MULTIPLIERS = (1, 2, 3)
DTYPES = (np.float32, np.float64)
MODES = tuple(PADDING_MODES)

# ivy's documented array examples: (x shape, k, strides, padding, y shape, whether `out=` is given)
IVY_SEED_EXAMPLES = [
    ((1, 28, 28, 3), 3, (1, 1), "VALID", (1, 26, 26, 3), False),
    ((1, 32, 32, 3), 5, [2, 2], "SAME", (1, 16, 16, 3), True),
    ((1, 64, 64, 32), 4, [1, 1], "VALID", (1, 61, 61, 32), True),
    ((1, 7, 7, 64), 3, [1, 1], "SAME", (1, 7, 7, 64), False),
    ((1, 128, 128, 3), 3, 2, "SAME", (1, 64, 64, 3), False),
]

# the sweep: full product of (format, stride, dilation, kernel, padding); other parameters cycle
SWEEP = list(itertools.product(range(len(FORMATS)), range(len(STRIDES)),
                               range(len(DILATIONS)), range(len(KERNELS)),
                               range(len(PADDINGS))))


def sweep_id(case):
    f, s, d, k, p = case
    pad = PADDINGS[p]
    pad = pad if isinstance(pad, str) else str(pad).replace(" ", "")
    return (f"{FORMATS[f]}-s{STRIDES[s]}-d{DILATIONS[d]}-k{KERNELS[k][0]}x{KERNELS[k][1]}"
            f"-p{pad}").replace(" ", "")


def to_format(a_nhwc, data_format):
    return a_nhwc if data_format == "NHWC" else np.ascontiguousarray(a_nhwc.transpose(0, 3, 1, 2))


def tf4_padding(data_format, tb, lr):
    if data_format == "NHWC":
        return [[0, 0], list(tb), list(lr), [0, 0]]
    return [[0, 0], [0, 0], list(tb), list(lr)]


def api_pair(value, form, data_format):
    """Express an int-or-pair value as 0: int (when square), 1: tuple, 2: list,
    3: TF 4-form in data_format order."""
    h, w = normalize_pair(value)
    if form == 0:
        return h if h == w else (h, w)
    if form == 1:
        return (h, w)
    if form == 2:
        return [h, w]
    return [1, h, w, 1] if data_format == "NHWC" else [1, 1, h, w]
