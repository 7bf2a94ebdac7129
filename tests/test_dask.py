"""dwconv.dask on a two-process LocalCluster: chunked results equal the in-memory call and the NumPy
reference for random layouts, strides, dilations, padding forms and modes, multipliers and uneven
chunks; graphs stay lazy until computed; errors are the core's."""
import itertools
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("dask")
distributed = pytest.importorskip("dask.distributed")

import dask  # noqa: E402
import dask.array as da  # noqa: E402

import dwconv  # noqa: E402
import dwconv.dask  # noqa: E402
from reference import (activate, conv2d_backprop_filter, conv2d_backprop_input, conv2d_forward,  # noqa: E402
                       normalize_pair, resolve_padding)
from sweep import MODES, tf4_padding, to_format  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
PADDING_FORMS = ("VALID", "SAME", "int", "pair", "pairs", "TF4")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        yield client


def uneven_chunks(rng, n):
    """Random chunk sizes for an axis of length n, often down to a single element."""
    cuts = np.unique(rng.integers(1, n, size=rng.integers(1, 3))) if n > 1 else []
    return tuple(np.diff(np.r_[0, cuts, n]).tolist())


def chunked(rng, array):
    return da.from_array(array, chunks=tuple(uneven_chunks(rng, n) for n in array.shape))


def padding_of(form, rng, fmt):
    t, b, l, r = rng.integers(0, 4, size=4).tolist()
    return {"VALID": "VALID", "SAME": "SAME", "int": t, "pair": (t, l), "pairs": ((t, b), (l, r)),
            "TF4": tf4_padding(fmt, (t, b), (l, r))}[form]


def random_case(seed, mode, form):
    rng = np.random.default_rng(seed)
    fmt = ("NHWC", "NCHW")[seed % 2]
    N, C, M = rng.integers(1, 3), rng.integers(1, 5), rng.integers(1, 4)
    kernel = tuple(rng.integers(1, 5, size=2).tolist())
    strides = tuple(rng.integers(1, 4, size=2).tolist())
    dilations = tuple(rng.integers(1, 3, size=2).tolist())
    H, W = rng.integers(7, 13, size=2)
    padding = padding_of(form, rng, fmt)
    x = to_format(rng.standard_normal((N, H, W, C)), fmt)
    filters = rng.standard_normal(kernel + (C, M))
    if M == 1 and seed % 3 == 0:
        filters = filters[..., 0]                      # the (kh, kw, C) form
    args = dict(strides=strides, padding=padding, data_format=fmt, dilations=dilations, padding_mode=mode)
    return rng, x, filters, rng.standard_normal(C * M), args


def reference_args(x, filters, args):
    fmt = args["data_format"]
    hw = x.shape[1:3] if fmt == "NHWC" else x.shape[2:]
    strides, dilations = normalize_pair(args["strides"]), normalize_pair(args["dilations"])
    pad = resolve_padding(args["padding"], hw, filters.shape[:2], strides, dilations, fmt)
    return dict(strides=strides, padding=pad, data_format=fmt, dilations=dilations,
                padding_mode=args["padding_mode"])


@pytest.mark.parametrize("seed, mode, form", [(seed, mode, form) for seed, (mode, form) in
                                              enumerate(itertools.product(MODES, PADDING_FORMS))])
def test_equals_single_call_and_reference(client, seed, mode, form):
    rng, x, filters, bias, args = random_case(seed, mode, form)
    ref = reference_args(x, filters, args)
    y = dwconv.depthwise_conv2d(x, filters, bias=bias, **args)
    grad_output = rng.standard_normal(y.shape)
    dx, dy = chunked(rng, x), chunked(rng, grad_output)

    lazy = (dwconv.dask.depthwise_conv2d(dx, filters, bias=bias, **args),
            dwconv.dask.depthwise_conv2d_backprop_input(x.shape, filters, dy, **args),
            dwconv.dask.depthwise_conv2d_backprop_filter(dx, filters.shape, dy, **args))
    got = dask.compute(*lazy)
    single = (y, dwconv.depthwise_conv2d_backprop_input(x.shape, filters, grad_output, **args),
              dwconv.depthwise_conv2d_backprop_filter(x, filters.shape, grad_output, **args))
    expected = (conv2d_forward(x, filters, bias=bias, **ref),
                conv2d_backprop_input(x.shape, filters, grad_output, **ref),
                conv2d_backprop_filter(x, filters.shape, grad_output, **ref))
    for result, array, one, reference in zip(got, lazy, single, expected):
        assert result.shape == array.shape == one.shape and result.dtype == array.dtype == one.dtype
        np.testing.assert_allclose(result, one, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(result, reference, rtol=1e-12, atol=1e-12)


def test_output_chunks_follow_the_input_and_the_stride(client):
    x = np.random.default_rng(1).standard_normal((2, 40, 30, 6)).astype(np.float32)
    dx = da.from_array(x, chunks=(1, (10, 18, 12), (7, 23), (4, 2)))
    w = np.ones((3, 3, 6, 2), np.float32)
    same = dwconv.dask.depthwise_conv2d(dx, w, padding="SAME")
    assert same.chunks == ((1, 1), (10, 18, 12), (7, 23), (8, 4))
    strided = dwconv.dask.depthwise_conv2d(dx, w, strides=2, padding="SAME")
    assert strided.chunks == ((1, 1), (5, 9, 6), (4, 11), (8, 4))
    np.testing.assert_allclose(strided.compute(), dwconv.depthwise_conv2d(x, w, strides=2, padding="SAME"),
                               rtol=1e-6, atol=1e-5)


def test_chunks_smaller_than_the_halo(client):
    """One-pixel chunks under a 5x5 kernel dilated by 2: slabs span many chunks."""
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((1, 1, 10, 11)), rng.standard_normal((5, 5, 1, 1))
    dx = da.from_array(x, chunks=(1, 1, 1, (1, 1, 9)))
    args = dict(padding="SAME", data_format="NCHW", dilations=2, padding_mode="circular")
    y = dwconv.dask.depthwise_conv2d(dx, w, **args)
    np.testing.assert_allclose(y.compute(), dwconv.depthwise_conv2d(x, w, **args), rtol=1e-12, atol=1e-12)
    dy = da.from_array(rng.standard_normal(y.shape), chunks=(1, 1, 1, 2))
    np.testing.assert_allclose(dwconv.dask.depthwise_conv2d_backprop_input(x.shape, w, dy, **args).compute(),
                               dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy.compute(), **args),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("activation", ["gelu", "relu6", np.tanh])
def test_activation_dtypes_and_integer_images(client, activation):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, size=(2, 17, 13, 3), dtype=np.uint8)
    w, bias = rng.standard_normal((3, 3, 3, 2)).astype(np.float32) / 100, rng.standard_normal(6)
    dx = da.from_array(x, chunks=(1, (5, 12), (9, 4), (1, 2)))
    for dtype in (None, np.float16, np.float64):
        args = dict(padding=1, padding_mode="reflect", bias=bias, activation=activation, dtype=dtype)
        got = dwconv.dask.depthwise_conv2d(dx, w, **args)
        one = dwconv.depthwise_conv2d(x, w, **args)
        assert got.dtype == one.dtype == (dtype or np.float64)  # (by default the float64 bias makes float64)
        np.testing.assert_allclose(got.compute(), one, rtol=1e-3 if dtype == np.float16 else 1e-6, atol=1e-6)
    name = activation if isinstance(activation, str) else "tanh"
    reference = activate(conv2d_forward(x, w, (1, 1), ((1, 1), (1, 1)), "NHWC", (1, 1), bias, "reflect"), name)
    np.testing.assert_allclose(got.compute(), reference, rtol=1e-9, atol=1e-9)


def test_pytorch_filter_format(client):
    """PyTorch-layout weights read as they are; the filter gradient comes back in their layout."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 14, 11))
    w_tf = rng.standard_normal((3, 3, 3, 2))
    w_torch = np.ascontiguousarray(w_tf.transpose(2, 3, 0, 1).reshape(6, 1, 3, 3))
    dy = rng.standard_normal((2, 6, 14, 11))
    dx, ddy = da.from_array(x, chunks=(1, 2, 6, 5)), da.from_array(dy, chunks=(1, 3, 6, 5))
    args = dict(padding="SAME", data_format="NCHW")
    ref = conv2d_forward(x, w_tf, (1, 1), ((1, 1), (1, 1)), "NCHW", (1, 1))
    np.testing.assert_allclose(dwconv.dask.depthwise_conv2d(dx, w_torch, filter_format="torch", **args).compute(),
                               ref, rtol=1e-12, atol=1e-12)
    ref_dx = conv2d_backprop_input(x.shape, w_tf, dy, (1, 1), ((1, 1), (1, 1)), "NCHW", (1, 1))
    got_dx = dwconv.dask.depthwise_conv2d_backprop_input(x.shape, w_torch, ddy, filter_format="torch", **args)
    np.testing.assert_allclose(got_dx.compute(), ref_dx, rtol=1e-12, atol=1e-12)
    ref_dw = conv2d_backprop_filter(x, w_tf.shape, dy, (1, 1), ((1, 1), (1, 1)), "NCHW", (1, 1))
    got_dw = dwconv.dask.depthwise_conv2d_backprop_filter(dx, w_torch.shape, ddy, filter_format="torch", **args)
    assert got_dw.shape == w_torch.shape
    np.testing.assert_allclose(got_dw.compute(), ref_dw.transpose(2, 3, 0, 1).reshape(6, 1, 3, 3), rtol=1e-11)


def test_float16_gradients_accumulate_like_the_core(client):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 20, 20, 4)).astype(np.float16)
    dy = rng.standard_normal((1, 20, 20, 4)).astype(np.float16)
    w = rng.standard_normal((3, 3, 4)).astype(np.float32)
    args = dict(padding="SAME", padding_mode="replicate")
    dx_, ddy = da.from_array(x, chunks=(1, 6, 7, 3)), da.from_array(dy, chunks=(1, 5, 20, 4))
    for lazy, one in [(dwconv.dask.depthwise_conv2d_backprop_input(x.shape, w, ddy, **args),
                       dwconv.depthwise_conv2d_backprop_input(x.shape, w, dy, **args)),
                      (dwconv.dask.depthwise_conv2d_backprop_filter(dx_, w.shape, ddy, **args),
                       dwconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, **args))]:
        assert lazy.dtype == one.dtype == np.float16
        # both round a float32 sum once: at most one float16 unit in the last place apart
        np.testing.assert_allclose(lazy.compute().astype(np.float32), one.astype(np.float32), rtol=2**-10)


def _unreachable(block):
    raise AssertionError("computed before .compute()")


def test_lazy_until_computed(client, monkeypatch):
    """Building the graphs computes nothing: no chunk of the input is read and no kernel runs."""
    source = da.zeros((1, 12, 12, 2), chunks=6).map_blocks(_unreachable, dtype=np.float32)
    for name in ("depthwise_conv2d", "depthwise_conv2d_backprop_input", "depthwise_conv2d_backprop_filter"):
        monkeypatch.setattr(dwconv, name, _unreachable)
    w = np.ones((3, 3, 2, 2), np.float32)
    y = dwconv.dask.depthwise_conv2d(source, w, padding="SAME", padding_mode="reflect")
    dx = dwconv.dask.depthwise_conv2d_backprop_input(source.shape, w, y, padding="SAME", padding_mode="reflect")
    dw = dwconv.dask.depthwise_conv2d_backprop_filter(source, w.shape, y, padding="SAME", padding_mode="reflect")
    assert all(isinstance(a, da.Array) for a in (y, dx, dw))
    with pytest.raises(AssertionError, match="computed before"):
        dw.compute(scheduler="sync")


# Bad arguments for each function: the dask functions must raise exactly what the core raises.
BAD = [
    dict(strides=0), dict(strides=(1, 2, 3)), dict(dilations=[2, 1, 1, 1]), dict(padding="FULL"),
    dict(padding=-1), dict(padding=((1, 2), (3,))), dict(data_format="NWHC"), dict(padding_mode="mirror"),
    dict(filters=np.ones((3, 3, 4))), dict(filters=np.ones((9, 9, 2)), padding="VALID"), dict(x=np.ones((2, 5, 5, 2), np.int64)),
    dict(x=np.ones((5, 5, 2))), dict(grad_output=np.ones((2, 3, 3, 2))), dict(bias=np.ones(3)),
    dict(activation="swish"), dict(dtype=np.int32), dict(filter_shape=(3, -3, 2)),
]


@pytest.mark.parametrize("fn", ["forward", "input", "filter"])
@pytest.mark.parametrize("bad", BAD, ids=lambda bad: "-".join(map(str, bad)))
def test_errors_are_the_cores(fn, bad):
    given = dict(x=np.ones((2, 5, 5, 2)), filters=np.ones((3, 3, 2)), grad_output=np.ones((2, 5, 5, 2)),
                 filter_shape=(3, 3, 2), strides=1, padding="SAME", data_format="NHWC", dilations=1,
                 padding_mode="zeros")
    given.update(bad)
    x, filters, grad_output, filter_shape = (given.pop(k) for k in ("x", "filters", "grad_output", "filter_shape"))
    extra = {k: given.pop(k) for k in ("bias", "activation") if k in given}
    if fn != "forward" and extra:
        pytest.skip("forward-only argument")
    calls = {"forward": lambda mod, lazy: mod.depthwise_conv2d(lazy(x), filters, **given, **extra),
             "input": lambda mod, lazy: mod.depthwise_conv2d_backprop_input(x.shape, filters, lazy(grad_output),
                                                                            **given),
             "filter": lambda mod, lazy: mod.depthwise_conv2d_backprop_filter(lazy(x), filter_shape,
                                                                              lazy(grad_output), **given)}
    try:
        calls[fn](dwconv, lambda a: a)
    except (ValueError, TypeError) as core:
        with pytest.raises(type(core)) as chunked_error:
            calls[fn](dwconv.dask, lambda a: da.from_array(a, chunks=2))
        assert str(chunked_error.value) == str(core)
    else:                                   # not an error for this function: not for dask either
        calls[fn](dwconv.dask, lambda a: da.from_array(a, chunks=2))


def test_import_dwconv_does_not_import_dask():
    code = "import sys, dwconv; assert not any(m == 'dask' or m.startswith('dask.') for m in sys.modules)"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_example_runs_and_writes_the_edges(tmp_path):
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import dask_blur
    finally:
        sys.path.remove(str(ROOT / "examples"))
    out = tmp_path / "edges.npy"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT)] + sys.path))
    subprocess.run([sys.executable, str(ROOT / "examples" / "dask_blur.py"), "--size", "70", "--channels", "2",
                    "--chunk", "25", "--out", str(out)], cwd=tmp_path, env=env, check=True, capture_output=True)
    image = dask_blur.synthetic_image(70, 2, 25).compute(scheduler="sync")
    blur = np.repeat(dask_blur.gaussian()[:, :, None], 2, axis=2)
    args = dict(strides=(1, 1), padding=((3, 3), (3, 3)), data_format="NHWC", dilations=(1, 1))
    blurred = conv2d_forward(image, blur, padding_mode="reflect", **args)
    gradients = conv2d_forward(blurred, dask_blur.edge_filters(2), padding_mode="replicate",
                               **dict(args, padding=((1, 1), (1, 1))))
    expected = np.hypot(gradients[..., 0::2], gradients[..., 1::2])
    np.testing.assert_allclose(np.load(out), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", MODES)
def test_integer_results_chunk_by_chunk(mode):
    """8-bit images in and out, chunked: rounded to nearest (ties to even) and saturated as in memory.
    The weights are multiples of 5/8, so every sum, ties included, is exact in float32 and in the
    reference."""
    rng = np.random.default_rng(11)
    image = rng.integers(0, 256, (1, 37, 29, 3)).astype(np.uint8)
    filters = rng.integers(-8, 9, (5, 5, 3)).astype(np.float32) * 5 / 8
    y = dwconv.dask.depthwise_conv2d(da.from_array(image, chunks=(1, 10, 12, 3)), filters, 1, "SAME",
                                     padding_mode=mode, dtype=np.uint8)
    assert y.dtype == np.uint8
    reference = conv2d_forward(image, filters, (1, 1), ((2, 2), (2, 2)), "NHWC", (1, 1), padding_mode=mode)
    assert np.any(reference % 1 == 0.5) and reference.min() < 0 and reference.max() > 255
    np.testing.assert_array_equal(y.compute(), np.clip(np.rint(reference), 0, 255))


def test_gather_writes_each_piece_once_or_returns_a_view():
    """A slab across chunks is the chunks' pieces in place, whole or a band of its rows (into a given
    buffer); one inside a single chunk is a view of it, not a copy."""
    rng = np.random.default_rng(12)
    blocks = [[rng.standard_normal((1, rows, cols, 2)) for cols in (4, 7, 3)] for rows in (5, 2)]
    row_slices, col_slices = [slice(3, 5), slice(0, 1)], [slice(2, 4), slice(0, 7), slice(0, 1)]
    slab = dwconv.dask._Slab(blocks, row_slices, col_slices, 1, 2)
    expected = np.concatenate([np.concatenate([block[:, rows, cols] for block, cols in zip(row, col_slices)], 2)
                               for row, rows in zip(blocks, row_slices)], 1)
    np.testing.assert_array_equal(dwconv.dask._gather(slab), expected)
    for start, stop in ((0, 1), (1, 3), (2, 3)):
        buffer = np.full((1, 4, 10, 2), np.nan)
        band = dwconv.dask._gather(slab, start, stop, out=buffer[:, :stop - start])
        np.testing.assert_array_equal(band, expected[:, start:stop])
        assert np.shares_memory(band, buffer) and np.isnan(buffer[:, stop - start:]).all()
    view = dwconv.dask._gather(dwconv.dask._Slab([[blocks[0][1]]], [slice(1, 4)], [slice(2, 6)], 1, 2))
    np.testing.assert_array_equal(view, blocks[0][1][:, 1:4, 2:6])
    assert np.shares_memory(view, blocks[0][1])


@pytest.mark.parametrize("mode", MODES)
def test_slabs_views_and_copies_give_the_in_memory_result(mode, monkeypatch):
    """Slabs inside one chunk (views) and across chunks and the padding (one copy each), in every
    padding mode: the result is the in-memory call's."""
    rng = np.random.default_rng(13)
    x = rng.standard_normal((1, 31, 23, 2))
    dx = da.from_array(x, chunks=(1, (9, 12, 10), (8, 15), 2))
    views = []

    def gather(slab, *rows, **out):
        array = real_gather(slab, *rows, **out)
        views.append(any(np.shares_memory(array, block) for row in slab.blocks for block in row))
        return array

    real_gather = dwconv.dask._gather
    monkeypatch.setattr(dwconv.dask, "_gather", gather)
    # a 1x1 kernel padded after the image only: the slabs are the output chunks, some inside one input chunk
    for kernel, padding in (((1, 1), ((0, 2), (0, 1))), ((5, 3), "SAME")):
        w = rng.standard_normal(kernel + (2,))
        args = {"padding": padding, "padding_mode": mode}
        np.testing.assert_allclose(dwconv.dask.depthwise_conv2d(dx, w, **args).compute(scheduler="sync"),
                                   dwconv.depthwise_conv2d(x, w, **args), rtol=1e-12, atol=1e-12)
    assert any(views) and not all(views)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype, activation", [(np.float32, None), (np.float64, np.tanh), (np.uint8, "relu")])
def test_bands_of_rows_give_the_whole_slabs_result(mode, dtype, activation, monkeypatch):
    """NHWC chunks on one thread computed 16 output rows a band (the smallest band), with strides,
    dilations, a batch of 2, a channel multiplier, integer results and a callable activation: the
    result of each chunk's slab gathered whole (OpenMP's default threads, in the main thread),
    exactly, and the in-memory call's (float32 sums of these shapes may run in another order)."""
    rng = np.random.default_rng(14)
    x = (rng.random((2, 75, 23, 3)) * 255).astype(dtype)
    w = rng.standard_normal((5, 3, 3, 2)).astype(np.float32 if dtype == np.uint8 else dtype)
    dx = da.from_array(x, chunks=(1, (40, 35), (10, 13), 3))
    calls = []

    def conv(*a, **k):
        calls.append(k["out"] is not None)
        return real_conv(*a, **k)

    real_conv = dwconv.depthwise_conv2d
    for strides, bands in (((1, 2), 3 + 3), ((2, 1), 2 + 2)):
        args = {"strides": strides, "padding": "SAME", "padding_mode": mode, "dilations": (2, 1),
                "activation": activation, "dtype": dtype}
        whole = dwconv.dask.depthwise_conv2d(dx, w, **args).compute(scheduler="sync")
        calls.clear()
        monkeypatch.setattr(dwconv.dask, "_BAND_BYTES", 1)
        monkeypatch.setattr(dwconv, "depthwise_conv2d", conv)
        banded = dwconv.dask.depthwise_conv2d(dx, w, num_threads=1, **args).compute(scheduler="sync")
        monkeypatch.undo()
        np.testing.assert_array_equal(banded, whole)
        # (results reach 1000: float32 sums in another order differ by up to 1e-4)
        np.testing.assert_allclose(banded, dwconv.depthwise_conv2d(x, w, **args), rtol=1e-12,
                                   atol={np.float32: 1e-3, np.float64: 1e-9, np.uint8: 1}[dtype])
        # 2 images x 2 column chunks x 2 row chunks of 40 and 35 input rows: 3 + 3 bands of 16 output
        # rows with stride 1, 2 + 2 with stride 2
        assert all(calls) and len(calls) == 2 * 2 * bands


def test_num_threads_of_each_chunk(monkeypatch):
    """A chunk computed in a scheduler's thread runs on one OpenMP thread by default, one computed in
    the main thread on OpenMP's default; `num_threads` is passed to every call as it is, and its
    errors are the core's, when the graph is built."""
    rng = np.random.default_rng(15)
    x = da.from_array(rng.standard_normal((1, 20, 20, 2)), chunks=(1, 10, 10, 2))
    w = rng.standard_normal((3, 3, 2))
    seen = []

    def conv(*a, num_threads, **k):
        seen.append(num_threads)
        return real_conv(*a, num_threads=num_threads, **k)

    real_conv = dwconv.depthwise_conv2d
    monkeypatch.setattr(dwconv, "depthwise_conv2d", conv)
    for scheduler, num_threads, expected in (("threads", None, 1), ("sync", None, None), ("threads", 2, 2),
                                             ("sync", 1, 1)):
        seen.clear()
        dwconv.dask.depthwise_conv2d(x, w, padding="SAME", num_threads=num_threads).compute(scheduler=scheduler)
        assert seen and set(seen) == {expected}, (scheduler, num_threads)
    for bad, error in ((0, ValueError), (1.5, TypeError)):
        with pytest.raises(error, match="num_threads"):
            dwconv.dask.depthwise_conv2d(x, w, num_threads=bad)
        with pytest.raises(error, match="num_threads"):
            dwconv.dask.depthwise_conv2d_backprop_filter(x, (3, 3, 2), x, padding="SAME", num_threads=bad)


# -- computed into the caller's array (out=) ---------------------------------------------------------

def copied_chunks(array):
    """`array` as a dask array whose chunks are arrays of their own (as chunks read from files are),
    not views of it."""
    return array.map_blocks(np.copy)


@pytest.mark.parametrize("seed, mode, form", [(seed, mode, form) for seed, (mode, form) in
                                              enumerate(itertools.product(MODES, PADDING_FORMS))])
def test_computed_into_out_equals_the_reference(seed, mode, form):
    """out= on random geometries, both layouts, every padding form and mode: chunks viewing x or
    copied, a C-contiguous `out` or one with gaps between its elements, the threaded and the
    synchronous scheduler: `out` holds the reference and is what is returned."""
    rng, x, filters, bias, args = random_case(seed, mode, form)
    expected = conv2d_forward(x, filters, bias=bias, **reference_args(x, filters, args))
    for chunks, scheduler, gaps in ((chunked(rng, x), "threads", False), (chunked(rng, x), "sync", True),
                                    (copied_chunks(chunked(rng, x)), "sync", True),
                                    (copied_chunks(chunked(rng, x)), "threads", False)):
        out = np.full(expected.shape[:3] + (expected.shape[3] * (2 if gaps else 1),), np.nan)[..., ::2 if gaps else 1]
        with dask.config.set(scheduler=scheduler):
            result = dwconv.dask.depthwise_conv2d(chunks, filters, bias=bias, out=out, **args)
        assert result is out
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_computed_into_out_reads_viewed_rows_in_place(mode, monkeypatch):
    """NHWC chunks of an in-memory image (views of it), computed into `out` on one thread a task:
    each task's whole rows are read where they lie but for the bands around the rows' padding (16
    output rows a band, the smallest), with a stride, a dilation and a batch of 2; chunks of their
    own are copied a band at a time. Both give the reference."""
    rng = np.random.default_rng(16)
    x = rng.standard_normal((2, 75, 23, 3))
    w = rng.standard_normal((5, 3, 3))
    args = {"strides": (2, 1), "padding": "SAME", "padding_mode": mode, "dilations": (2, 1)}
    expected = conv2d_forward(x, w, **reference_args(x, w, dict(args, data_format="NHWC")))
    in_place = []

    def rows_in_place(slab, start):
        rows, stop = real_rows_in_place(slab, start)
        in_place.append(rows is not None)
        if rows is not None:
            assert any(np.shares_memory(rows, block) for row in slab.blocks for block in row) and stop > start
        return rows, stop

    real_rows_in_place = dwconv.dask._rows_in_place
    monkeypatch.setattr(dwconv.dask, "_rows_in_place", rows_in_place)
    monkeypatch.setattr(dwconv.dask, "_BAND_BYTES", 1)
    for chunks, viewed in ((da.from_array(x, chunks=(1, (40, 35), (10, 13), 3)), True),
                           (copied_chunks(da.from_array(x, chunks=(1, (40, 35), (10, 13), 3))), False)):
        in_place.clear()
        out = np.full(expected.shape, np.nan)
        with dask.config.set(scheduler="threads"):
            dwconv.dask.depthwise_conv2d(chunks, w, num_threads=1, out=out, **args)
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
        assert any(in_place) == viewed and not all(in_place)


def test_computed_into_out_integer_results_and_memmap(tmp_path):
    """8-bit results into a memory-mapped file, rounded to nearest and saturated as in memory (the
    weights of test_integer_results_chunk_by_chunk: every sum is exact)."""
    rng = np.random.default_rng(17)
    image = rng.integers(0, 256, (1, 37, 29, 3)).astype(np.uint8)
    filters = rng.integers(-8, 9, (5, 5, 3)).astype(np.float32) * 5 / 8
    out = np.lib.format.open_memmap(tmp_path / "y.npy", mode="w+", dtype=np.uint8, shape=image.shape)
    with dask.config.set(scheduler="threads"):
        dwconv.dask.depthwise_conv2d(da.from_array(image, chunks=(1, 10, 12, 3)), filters, 1, "SAME",
                                     padding_mode="reflect", dtype=np.uint8, out=out)
    out.flush()
    reference = conv2d_forward(image, filters, (1, 1), ((2, 2), (2, 2)), "NHWC", (1, 1), padding_mode="reflect")
    assert reference.min() < 0 and reference.max() > 255
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), np.clip(np.rint(reference), 0, 255))


def test_computed_into_out_of_a_signal():
    """dwconv.dask.depthwise_conv1d's `out`, through its 2-D view."""
    rng = np.random.default_rng(18)
    x, w = rng.standard_normal((2, 50, 3)), rng.standard_normal((4, 3))
    out = np.full((2, 50, 3), np.nan)
    with dask.config.set(scheduler="sync"):
        result = dwconv.dask.depthwise_conv1d(da.from_array(x, chunks=(1, 17, 3)), w, padding="SAME",
                                              padding_mode="circular", out=out)
    assert result is out
    expected = conv2d_forward(x[:, None], w[None], (1, 1), ((0, 0), (1, 2)), "NHWC", (1, 1),
                              padding_mode="circular")[:, 0]
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_bad_out_is_refused_before_anything_is_written(client):
    """A wrong `out` or a scheduler in other processes: a clear error, and `out` untouched."""
    x = da.from_array(np.ones((1, 8, 8, 2)), chunks=(1, 4, 4, 2))
    w = np.ones((3, 3, 2))
    bad = [(np.full((1, 6, 6, 3), np.nan), ValueError, r"`out` has shape \(1, 6, 6, 3\)"),
           (np.full((1, 6, 6, 2), np.nan, np.float32), ValueError, "`out` has dtype float32"),
           ([[0.0]], TypeError, "`out` must be a numpy.ndarray, got list")]
    read_only = np.full((1, 6, 6, 2), np.nan)
    read_only.flags.writeable = False
    bad.append((read_only, ValueError, "`out` is read-only"))
    for out, error, message in bad:
        with pytest.raises(error, match=message):
            dwconv.dask.depthwise_conv2d(x, w, out=out)
    # (the module's client makes the distributed scheduler dask's default)
    for scheduler in (None, "processes"):
        out = np.full((1, 6, 6, 2), np.nan)
        with dask.config.set(scheduler=scheduler), pytest.raises(ValueError, match="`out` needs a scheduler"):
            dwconv.dask.depthwise_conv2d(x, w, out=out)
        assert np.isnan(out).all()


def test_computed_into_out_cuts_rows_of_chunks_into_tasks(monkeypatch):
    """Into `out`, a one-chunk image still runs as TASKS_PER_THREAD tasks a thread (of at least
    MIN_TASK_ROWS output rows each), which together cover every output row once."""
    assert dwconv.dask._cut([(0, 100), (100, 103), (103, 140)], 4, 16) == [
        (0, 25), (25, 50), (50, 75), (75, 100), (100, 103), (103, 122), (122, 140)]
    rng = np.random.default_rng(19)
    x, w = rng.standard_normal((1, 64, 9, 2)), rng.standard_normal((3, 3, 2))
    tasks = []

    def forward_block(slab, *arrays, out, **arguments):
        tasks.append(out.shape)
        return real_forward_block(slab, *arrays, out=out, **arguments)

    real_forward_block = dwconv.dask._forward_block
    monkeypatch.setattr(dwconv.dask, "_forward_block", forward_block)
    monkeypatch.setattr(dwconv._kernels, "max_threads", lambda: 2)
    out = np.full((1, 64, 9, 2), np.nan)
    with dask.config.set(scheduler="threads"):
        dwconv.dask.depthwise_conv2d(da.from_array(x), w, padding="SAME", padding_mode="symmetric", out=out)
    assert sorted(tasks) == [(1, 16, 9, 2)] * 4
    np.testing.assert_allclose(out, conv2d_forward(x, w, (1, 1), ((1, 1), (1, 1)), "NHWC", (1, 1),
                                                   padding_mode="symmetric"), rtol=1e-12, atol=1e-12)
