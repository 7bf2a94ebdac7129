"""``dwconv.convert_filters`` between the frameworks' depthwise weight layouts.

Each layout is checked element by element against its definition (which input channel c and which
multiplier m a weight belongs to), and the converted weights against the frameworks' own
convolutions where they are installed.
"""
import itertools

import numpy as np
import pytest

import dwconv
from reference import conv2d_forward

LAYOUTS = ("tf", "ivy", "torch", "chainer", "megengine")


def in_layout(w_tf, layout):
    """`w_tf` (kh, kw, C, M) placed in `layout` one element at a time, from the layouts' definitions."""
    kh, kw, C, M = w_tf.shape
    shapes = {"tf": (kh, kw, C, M), "ivy": (kh, kw, C), "torch": (C * M, 1, kh, kw), "chainer": (M, C, kh, kw),
              "megengine": (C, M, 1, kh, kw)}
    out = np.empty(shapes[layout], w_tf.dtype)
    for i, j, c, m in itertools.product(range(kh), range(kw), range(C), range(M)):
        index = {"tf": (i, j, c, m), "ivy": (i, j, c), "torch": (c * M + m, 0, i, j), "chainer": (m, c, i, j),
                 "megengine": (c, m, 0, i, j)}[layout]
        out[index] = w_tf[i, j, c, m]
    return out


# ivy holds one filter per channel only (M == 1): see test_ivy_needs_one_filter_per_channel
@pytest.mark.parametrize("source, target, M", [(s, t, M) for s, t in itertools.product(LAYOUTS, LAYOUTS)
                                               for M in (1, 3) if M == 1 or "ivy" not in (s, t)])
def test_every_pair_matches_the_definitions(source, target, M):
    rng = np.random.default_rng(1)
    w_tf = rng.standard_normal((3, 2, 4, M)).astype(np.float32)
    w = in_layout(w_tf, source)
    got = dwconv.convert_filters(w, source, target, in_channels=4 if source == "torch" else None)
    want = in_layout(w_tf, target)
    assert got.dtype == w.dtype and got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)
    assert not np.shares_memory(got, w)
    # and back again
    np.testing.assert_array_equal(
        dwconv.convert_filters(got, target, source, in_channels=4 if target == "torch" else None), w)


def test_keras_is_tf_and_torch_defaults_to_one_filter_per_channel():
    w = np.arange(2 * 3 * 5, dtype=np.float64).reshape(5, 1, 2, 3)     # torch (C*M, 1, kh, kw)
    np.testing.assert_array_equal(dwconv.convert_filters(w, "torch", "keras"),
                                  in_layout(w[:, 0].transpose(1, 2, 0)[..., None], "tf"))


@pytest.mark.parametrize("layout", ["torch", "chainer", "megengine"])
def test_converted_filters_give_the_frameworks_convolution(layout):
    """The NCHW frameworks all compute out[c*M + m] from input channel c: converted weights give
    the reference's numbers."""
    rng = np.random.default_rng(2)
    C, M = 3, 2
    x = rng.standard_normal((2, C, 7, 6))
    w_tf = rng.standard_normal((3, 3, C, M))
    filters = dwconv.convert_filters(in_layout(w_tf, layout), layout, "tf",
                                     in_channels=C if layout == "torch" else None)
    got = dwconv.depthwise_conv2d(x, filters, 1, 1, data_format="NCHW")
    np.testing.assert_allclose(got, conv2d_forward(x, w_tf, (1, 1), ((1, 1), (1, 1)), "NCHW", (1, 1)),
                               rtol=1e-12, atol=1e-12)


def test_against_pytorch_grouped_conv():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    C, M = 4, 3
    x = rng.standard_normal((2, C, 9, 8))
    conv = torch.nn.Conv2d(C, C * M, (3, 2), padding=1, groups=C, dtype=torch.float64)
    weight, bias = conv.weight.detach().numpy(), conv.bias.detach().numpy()
    want = conv(torch.from_numpy(x)).detach().numpy()
    filters = dwconv.convert_filters(weight, "torch", "tf", in_channels=C)
    got = dwconv.depthwise_conv2d(x, filters, 1, 1, data_format="NCHW", bias=bias)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(dwconv.convert_filters(filters, "tf", "torch"), weight)


def test_ivy_needs_one_filter_per_channel():
    with pytest.raises(ValueError, match=r"`target`='ivy'.*M = 2"):
        dwconv.convert_filters(np.zeros((3, 3, 4, 2)), "tf", "ivy")


@pytest.mark.parametrize("w, source, target, kwargs, match", [
    (np.zeros((3, 3, 4, 1)), "pytorch", "tf", {}, r"`source` must be one of .*'pytorch'"),
    (np.zeros((3, 3, 4, 1)), "tf", None, {}, r"`target` must be one of .*None"),
    (np.zeros((3, 3, 4)), "tf", "torch", {}, r"`w` must have shape \(kh, kw, C, M\) for source='tf', got \(3, 3, 4\)"),
    (np.zeros((6, 2, 3, 3)), "torch", "tf", {}, r"`w` must have shape \(C\*M, 1, kh, kw\).*\(6, 2, 3, 3\)"),
    (np.zeros((3, 2, 2, 3, 3)), "megengine", "tf", {}, r"`w` must have shape \(C, M, 1, kh, kw\)"),
    (np.zeros((6, 1, 3, 3)), "torch", "tf", {"in_channels": 4}, r"`in_channels`=4 does not fit"),
    (np.zeros((2, 3, 3, 3)), "chainer", "tf", {"in_channels": 2}, r"`in_channels`=2 does not fit"),
    (np.zeros((6, 1, 3, 3)), "torch", "tf", {"in_channels": 0}, r"`in_channels`=0"),
])
def test_bad_arguments(w, source, target, kwargs, match):
    with pytest.raises(ValueError, match=match):
        dwconv.convert_filters(w, source, target, **kwargs)


def test_non_numeric_weights():
    with pytest.raises(TypeError, match="`w` has dtype object"):
        dwconv.convert_filters(np.array([[[["a"]]]], dtype=object), "tf", "torch")
