"""The parameter grid the forward and gradient tests sweep, the argument spellings they use, and
the one builder (`build_case`) that turns a grid point into arrays and arguments."""

import dataclasses
import itertools

import numpy as np

from dwconv._names import PADDING_MODES
from reference import normalize_pair, output_hw, resolve_padding

FORMATS = ("NHWC", "NCHW")
STRIDES = (1, 2, 3, (1, 2))
DILATIONS = (1, 2, (2, 1))
KERNELS = ((1, 1), (3, 3), (5, 5), (2, 4), (7, 7))
PADDINGS = ("VALID", "SAME", 1, (1, 2), ((0, 2), (1, 0)), "TF4")
MULTIPLIERS = (1, 2, 3)
DTYPES = (np.float32, np.float64)
MODES = tuple(PADDING_MODES)

# the sweep: full product of (format, stride, dilation, kernel, padding); other parameters cycle
SWEEP = list(itertools.product(range(len(FORMATS)), range(len(STRIDES)),
                               range(len(DILATIONS)), range(len(KERNELS)),
                               range(len(PADDINGS))))


# how many values each extra of `sweep_extras` cycles through (the dtype: len(dtypes))
SWEEP_EXTRAS_CARDINALITY = {"M": 3, "N": 2, "C": 4, "extra_h": 5, "extra_w": 6,
                            "bias": 2, "ivy": 2, "strides_form": 4, "dilations_form": 4}


def sweep_extras(case, n_dtypes=len(DTYPES)):
    """Index of each cycled extra for a sweep case.  The formulas are chosen so that every pair
    of (axis or extra) values occurs together somewhere (tests/test_forward.py checks it)."""
    f, s, d, k, p = case
    return {
        "M": (p + k + s) % 3,
        "dtype": (p + d + f + k) % n_dtypes,
        "N": (s + d + p) % 2,
        "C": (k + 2 * d + p + 3 * f + s) % 4,
        "extra_h": (p + 2 * s + k + f) % 5,
        "extra_w": (2 * p + s + 3 * d + 2 * k) % 6,
        "bias": int((s + k + d + p) % 3 == 0),
        "ivy": int((s + d + f) % 2 == 0),        # 3-D filters when M == 1
        "strides_form": (k + p) % 4,
        "dilations_form": (s + p + 1) % 4,
    }


@dataclasses.dataclass(frozen=True)
class SweepCase:
    """One grid point made concrete.  The API spellings (`strides`, `padding`, `dilations`) are
    what the code under test gets; `strides_pair`, `pad` and `dilations_pair` the same values
    normalized for tests/reference.py."""
    index: int                  # position in SWEEP
    data_format: str
    x: np.ndarray
    filters: np.ndarray         # (kh, kw, C, M), or (kh, kw, C) when M == 1 on some cases
    bias: np.ndarray            # (C * M,) or None
    dy: np.ndarray              # a gradient of the result's shape
    strides: object
    padding: object
    dilations: object
    strides_pair: tuple
    pad: tuple                  # ((top, bottom), (left, right))
    dilations_pair: tuple
    dtype: np.dtype
    multiplier: int


def build_case(case, seed, dtypes=DTYPES):
    """The arrays and arguments of sweep `case` (an element of SWEEP), drawn from
    ``default_rng(seed + its index)``; the dtype cycles over `dtypes`."""
    f, s, d, k, p = case
    index = SWEEP.index(case)
    rng = np.random.default_rng(seed + index)
    fmt = FORMATS[f]
    kh, kw = KERNELS[k]
    sp, dp = normalize_pair(STRIDES[s]), normalize_pair(DILATIONS[d])
    e = sweep_extras(case, len(dtypes))
    M = MULTIPLIERS[e["M"]]
    dtype = np.dtype(dtypes[e["dtype"]])
    N = (1, 2)[e["N"]]
    C = (3, 1, 4, 2)[e["C"]]

    eff_h, eff_w = (kh - 1) * dp[0] + 1, (kw - 1) * dp[1] + 1
    padding = tf4_padding(fmt, (2, 1), (0, 3)) if PADDINGS[p] == "TF4" else PADDINGS[p]
    if padding == "SAME":
        # any size works with SAME; include inputs smaller than the kernel
        H = max(1, eff_h + 2 * e["extra_h"] - 4)
        W = max(1, eff_w + 2 * e["extra_w"] - 5)
    else:
        (t, b), (l, r) = resolve_padding(padding, (0, 0), (kh, kw), sp, dp, fmt)
        H = max(1, eff_h - t - b + e["extra_h"])
        W = max(1, eff_w - l - r + e["extra_w"])
    pad = resolve_padding(padding, (H, W), (kh, kw), sp, dp, fmt)
    OH, OW = output_hw((H, W), (kh, kw), sp, pad, dp)

    x = to_format(rng.standard_normal((N, H, W, C)), fmt).astype(dtype)
    w = rng.standard_normal((kh, kw, C, M)).astype(dtype)
    if M == 1 and e["ivy"]:
        w = np.ascontiguousarray(w[..., 0])
    bias = rng.standard_normal(C * M).astype(dtype) if e["bias"] else None
    dy = to_format(rng.standard_normal((N, OH, OW, C * M)), fmt).astype(dtype)
    return SweepCase(index=index, data_format=fmt, x=x, filters=w, bias=bias, dy=dy,
                     strides=api_pair(STRIDES[s], e["strides_form"], fmt), padding=padding,
                     dilations=api_pair(DILATIONS[d], e["dilations_form"], fmt),
                     strides_pair=sp, pad=pad, dilations_pair=dp, dtype=dtype, multiplier=M)


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
