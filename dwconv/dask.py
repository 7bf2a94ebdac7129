"""Depthwise convolution of dask arrays: images and batches larger than memory, on one machine or a
``dask.distributed`` cluster, with results equal to one in-memory call.

The input may be chunked along batch, height, width and channels. Every output chunk is computed by
the in-memory function from the slab of (padded) input it reads: the slab's halo comes from the
kernel, the dilation and the stride, and output chunks start on stride-aligned input rows and
columns, so strided results are exact. Chunks smaller than the halo simply make slabs that span
several of them. A slab is not gathered by a task of its own: the chunk's call copies its pieces,
for an NHWC forward on one thread a band of rows at a time into one small buffer that the
convolution then reads from the cache (its rows of outputs are contiguous in the result); else
whole, once, into one array, or as a view of the chunk when it lies in one (the in-memory call
copies it if it is not contiguous, as it copies any such input). Channel chunks take the matching
slices of the filters and bias (depthwise channels are independent).

``depthwise_conv2d(..., out=array)`` computes the result now into a NumPy array of the caller's,
whole rows of it a task, each task padding its rows' columns itself: where the chunks are views of
one array (``dask.array.from_array``'s), the rows are read where they lie and the results written
where they go, as by one in-memory call, with no chunk results for ``.compute()`` to concatenate.

Arguments are checked by ``dwconv._args`` exactly as for the in-memory functions, when the graph is
built; nothing is computed before ``.compute()`` (but with ``out``). The padding modes are applied
lazily with ``numpy.pad``'s index semantics, so the kernels see only "VALID" problems (but the
columns of whole rows, with ``out``).

``num_threads`` (every function) sets the OpenMP threads of each chunk's call. By default a chunk
computed in a thread other than the main one, where a scheduler runs chunks in parallel (dask's
threaded scheduler, a ``dask.distributed`` worker's threads), runs on one: the scheduler's threads
are the parallelism, and more on top of them wait at every barrier for a thread that is not
running. In the main thread (the synchronous scheduler, one chunk at a time) it runs on OpenMP's
default. A threaded scheduler with fewer threads than cores leaves cores idle: pass ``num_threads``.
"""
import functools
import threading
from collections import namedtuple

import numpy as np

try:
    import dask
    import dask.array as da
    import dask.local
    import dask.threaded
    from dask.base import get_scheduler, tokenize
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph
except ImportError as exc:
    raise ImportError(f"dwconv.dask needs dask's arrays, which do not import ({exc}); install them with "
                      "`pip install \"dask[array]\"` (or `pip install -e \".[dask]\"` in a dwconv checkout)") from exc

import dwconv
from dwconv import _args, _conv1d, _kernels

__all__ = ["depthwise_conv2d", "depthwise_conv2d_backprop_input", "depthwise_conv2d_backprop_filter",
           "depthwise_conv1d", "depthwise_conv1d_backprop_input", "depthwise_conv1d_backprop_filter"]


def depthwise_conv2d(x, filters, strides=1, padding="VALID", *, data_format="NHWC", dilations=1,
                     bias=None, padding_mode="zeros", activation=None, dtype=None, filter_format=None,
                     num_threads=None, out=None):
    """``dwconv.depthwise_conv2d`` of a dask array: a lazy dask array equal to the in-memory result.

    ``x`` is a ``dask.array.Array`` (anything else is wrapped as one chunk); ``filters`` and ``bias``
    are small in-memory arrays. Arguments as for ``dwconv.depthwise_conv2d``. Output chunks follow
    the input's (divided by the stride); channel chunk ``c`` becomes ``c * M`` output channels. A
    callable ``activation`` is applied chunk by chunk, so it must be elementwise. ``num_threads``: the
    OpenMP threads of each chunk's call (see the module's docstring for the default).

    ``out``: a NumPy array of the result's shape and dtype (any strides; a ``numpy.memmap`` too) to
    compute the result into, now, whole rows of it a task (a row of chunks), and return. Where
    ``.compute()`` concatenates the chunks' results into a new array on one thread, this writes no
    chunk results, and reads the rows of an in-memory image's chunks where they lie (the bench's
    8000x8000x3 image: 5x faster than ``.compute()``, about the time of one in-memory call). It
    needs a scheduler that shares this process's memory (dask's threaded or synchronous one, as
    ``dask.config.set`` chooses), and ``out`` must not overlap ``x``'s memory."""
    x = _as_dask(x)
    _check_threads(num_threads)
    call = _args.forward_call(_virtual(x), filters, strides, padding, data_format, dilations, padding_mode, bias,
                              activation, dtype, filter_format)
    g, bias, dtype, activation = call.g, call.bias, call.dtype, call.activation
    filters = call.filters.reshape(g.filter_shape)
    index = _index(g.layout)
    rows = _output_bounds(x.chunks[index.index("h")], g.sh, g.OH)
    channel_chunks = x.chunks[index.index("c")]
    arguments = dict(strides=(g.sh, g.sw), dilations=(g.dil_h, g.dil_w), data_format=g.layout,
                     activation=activation, result_dtype=dtype, num_threads=num_threads)
    filter_chunks = [_channel_sliced(filters, channel_chunks), "ijcm"]
    if bias is not None:
        filter_chunks += [da.from_array(bias, chunks=(tuple(c * g.M for c in channel_chunks),)), "c"]
    if out is not None:
        # Each task computes whole rows of `out` (contiguous there for NHWC), padding the columns
        # itself: where x's chunks are views of one array (dask.array.from_array's), its rows are
        # read in place, as by one in-memory call. Rows of chunks are cut into tasks enough to keep
        # every thread busy (`_cut`).
        out = _args.output_array(out, call.shape, dtype, contiguous=False)
        rows = _cut(rows, -(-TASKS_PER_THREAD * _kernels.max_threads() // len(rows)), MIN_TASK_ROWS)
        chunks = dict(zip(index, x.chunks), h=_sizes(rows), w=(g.OW,), c=tuple(c * g.M for c in channel_chunks))
        slabs = _input_slabs(x, g, index, rows)
        return _computed_into(out, index, [chunks[axis] for axis in index], _forward_block,
                              [slabs, index] + filter_chunks,
                              dict(arguments, columns=(g.pl, g.pr), padding_mode=g.mode))
    cols = _output_bounds(x.chunks[index.index("w")], g.sw, g.OW)
    arrays = [_input_slabs(x, g, index, rows, cols), index] + filter_chunks
    return da.blockwise(
        _forward_block, index, *arrays, token="depthwise_conv2d",
        adjust_chunks={"h": _sizes(rows), "w": _sizes(cols), "c": lambda c: c * g.M},
        concatenate=True, align_arrays=False, meta=np.empty((0,) * 4, dtype), **arguments)


def depthwise_conv2d_backprop_input(input_shape, filters, grad_output, strides=1, padding="VALID", *,
                                    data_format="NHWC", dilations=1, padding_mode="zeros", dtype=None,
                                    filter_format=None, num_threads=None):
    """``dwconv.depthwise_conv2d_backprop_input`` of a dask ``grad_output``: a lazy dask array.

    Each chunk of the padded input's gradient comes from the output-gradient rows and columns whose
    windows reach it (the chunk's halo); the padding is then folded back onto the input as the
    transpose of ``padding_mode``."""
    grad_output = _as_dask(grad_output)
    _check_threads(num_threads)
    call = _args.input_grad_call(input_shape, filters, _virtual(grad_output), strides, padding, data_format,
                                 dilations, padding_mode, dtype, filter_format)
    g, dtype, compute = call.g, call.dtype, call.compute
    filters = call.filters.reshape(g.filter_shape)
    index = _index(g.layout)
    h, w, c = (index.index(axis) for axis in "hwc")
    grad_output = grad_output.rechunk({c: _whole_groups(grad_output.chunks[c], g.M)})
    # Output rows i reach padded rows i*sh .. i*sh + eh - 1: the padded rows of the chunk starting at
    # output row o are reached from rows o - halo on. Zero rows before the first and after the last
    # output row make every chunk's problem the same, and cover the whole padded input.
    eh, ew = _span(g.kh, g.dil_h), _span(g.kw, g.dil_w)
    halo = ((eh - 1) // g.sh, (ew - 1) // g.sw)
    padded_rows, padded_cols = -(-(g.H + g.pt + g.pb) // g.sh), -(-(g.W + g.pl + g.pr) // g.sw)
    pad_width = [(0, 0)] * 4
    pad_width[h], pad_width[w] = (halo[0], padded_rows - g.OH), (halo[1], padded_cols - g.OW)
    extended = da.pad(grad_output, pad_width, mode="constant")
    rows = _bounds(_chunk_starts(grad_output.chunks[h]), padded_rows)
    cols = _bounds(_chunk_starts(grad_output.chunks[w]), padded_cols)
    slabs = _slabs(extended, h, w, [(a, b + halo[0]) for a, b in rows], [(a, b + halo[1]) for a, b in cols])
    padded_grad = da.blockwise(
        _input_grad_block, index, slabs, index, _channel_sliced(filters, grad_output.chunks[c], g.M), "ijcm",
        token="depthwise_conv2d_backprop_input",
        adjust_chunks={"h": tuple(n * g.sh for n in _sizes(rows)), "w": tuple(n * g.sw for n in _sizes(cols)),
                       "c": lambda n: n // g.M},
        concatenate=True, align_arrays=False, meta=np.empty((0,) * 4, compute),
        result_dtype=compute, halo=halo, strides=(g.sh, g.sw), dilations=(g.dil_h, g.dil_w), data_format=g.layout,
        num_threads=num_threads,
        padding=((halo[0] * g.sh, max(eh - g.sh, 0)), (halo[1] * g.sw, max(ew - g.sw, 0))))
    grad = _fold_padding(_fold_padding(padded_grad, h, g.H, g.pt, g.pb, g.mode), w, g.W, g.pl, g.pr, g.mode)
    return grad.astype(dtype)


def depthwise_conv2d_backprop_filter(x, filter_shape, grad_output, strides=1, padding="VALID", *,
                                     data_format="NHWC", dilations=1, padding_mode="zeros", dtype=None,
                                     filter_format=None, num_threads=None):
    """``dwconv.depthwise_conv2d_backprop_filter`` of dask ``x`` and ``grad_output``: a lazy dask array.

    One partial gradient per output-gradient chunk (from the input slab it reads), summed by dask's
    tree reduction."""
    x = _as_dask(x)
    _check_threads(num_threads)
    grad_output = _as_dask(grad_output)
    call = _args.filter_grad_call(_virtual(x), filter_shape, _virtual(grad_output), strides, padding, data_format,
                                  dilations, padding_mode, dtype, filter_format)
    g, dtype, compute = call.g, call.dtype, call.compute
    index = _index(g.layout)
    n, h, w, c = (index.index(axis) for axis in "nhwc")
    grad_output = grad_output.rechunk({n: x.chunks[n], c: tuple(k * g.M for k in x.chunks[c])})
    rows = _bounds(_chunk_starts(grad_output.chunks[h]), g.OH)
    cols = _bounds(_chunk_starts(grad_output.chunks[w]), g.OW)
    partial = da.blockwise(
        _filter_grad_block, "nhwijcm", _input_slabs(x, g, index, rows, cols), index, grad_output, index,
        token="depthwise_conv2d_backprop_filter", new_axes={"i": g.kh, "j": g.kw, "m": g.M},
        adjust_chunks={"n": 1, "h": 1, "w": 1}, align_arrays=False, meta=np.empty((0,) * 7, compute),
        kernel=(g.kh, g.kw), strides=(g.sh, g.sw), dilations=(g.dil_h, g.dil_w), data_format=g.layout,
        result_dtype=compute, num_threads=num_threads)
    total = partial.sum(axis=(0, 1, 2)).astype(dtype)
    return _args.filters_in_format(total, call).reshape(call.shape)


# -- 1-D: the functions above on views of height 1 (dwconv._conv1d) -----------------------------------

def depthwise_conv1d(x, filters, strides=1, padding="VALID", *, data_format="NWC", dilations=1, bias=None,
                     padding_mode="zeros", activation=None, dtype=None, filter_format=None, num_threads=None,
                     out=None):
    """``dwconv.depthwise_conv1d`` of a dask array (chunked along batch, length and channels): a lazy
    dask array, ``depthwise_conv2d`` here of its view of height 1 (``out`` as there)."""
    return _conv1d.forward(depthwise_conv2d, _as_dask(x), _args.as_array(filters, "filters"), strides, padding,
                           data_format, dilations, filter_format, bias=bias, padding_mode=padding_mode,
                           activation=activation, dtype=dtype, num_threads=num_threads, out=out)


def depthwise_conv1d_backprop_input(input_shape, filters, grad_output, strides=1, padding="VALID", *,
                                    data_format="NWC", dilations=1, padding_mode="zeros", dtype=None,
                                    filter_format=None, num_threads=None):
    """``dwconv.depthwise_conv1d_backprop_input`` of a dask ``grad_output``: a lazy dask array."""
    return _conv1d.input_grad(depthwise_conv2d_backprop_input, input_shape, _args.as_array(filters, "filters"),
                              _as_dask(grad_output), strides, padding, data_format, dilations, filter_format,
                              padding_mode=padding_mode, dtype=dtype, num_threads=num_threads)


def depthwise_conv1d_backprop_filter(x, filter_shape, grad_output, strides=1, padding="VALID", *,
                                     data_format="NWC", dilations=1, padding_mode="zeros", dtype=None,
                                     filter_format=None, num_threads=None):
    """``dwconv.depthwise_conv1d_backprop_filter`` of dask ``x`` and ``grad_output``: a lazy dask array."""
    return _conv1d.filter_grad(depthwise_conv2d_backprop_filter, _as_dask(x), filter_shape, _as_dask(grad_output),
                               strides, padding, data_format, dilations, filter_format, padding_mode=padding_mode,
                               dtype=dtype, num_threads=num_threads)


# -- the work of one chunk: an in-memory call with explicit ("VALID"-style) padding amounts --------

# (blockwise keeps `dtype=` for itself: the blocks get theirs as `result_dtype`)

def _forward_block(slab, filters, bias=None, *, result_dtype, strides, dilations, data_format, num_threads,
                   columns=(0, 0), out=None, **arguments):
    """This chunk's outputs, from its slab of input (padded but for the `columns` of padding on each
    side its call adds), written into `out` (its region of the caller's array, any strides) or a new
    array. On one thread, NHWC outputs are computed a band of rows at a time (rows are contiguous in
    the result) from the rows of the slab they read: in place where they are contiguous in memory
    (`_rows_in_place`), else copied into one small buffer that the convolution reads from the cache,
    so that the slab is never copied whole. On more threads the short calls would wait at their
    barriers (a 2004x2004x3 chunk in bands on 2 threads of the shared 2-core machine: 0.6-1.5 s, on
    one 34 ms), and NCHW rows are not contiguous in the result: the slab is gathered whole."""
    num_threads = _chunk_threads(num_threads)
    padding = ((0, 0), columns)

    def conv(x, out):
        return dwconv.depthwise_conv2d(x, filters, strides, padding, bias=bias, dtype=result_dtype, out=out,
                                       num_threads=num_threads, filter_format="tf", dilations=dilations,
                                       data_format=data_format, **arguments)
    shape = _slab_shape(slab)
    if data_format != "NHWC" or num_threads != 1:
        rows, stop = _rows_in_place(slab, 0) if data_format == "NHWC" else (None, 0)
        whole = rows if rows is not None and stop == shape[1] else _gather(slab)
        return _written(out, lambda into: conv(whole, into))
    n, rows, cols, channels = dwconv.output_shape(shape, filters.shape, strides, padding, dilations=dilations,
                                                   filter_format="tf")
    if out is None:
        out = _args.output_array(None, (n, rows, cols, channels), np.dtype(result_dtype))
    span = _span(filters.shape[0], dilations[0])
    dtype = slab.blocks[0][0].dtype
    band = min(_band_rows(n * shape[2] * shape[3] * dtype.itemsize, strides[0]), rows)
    buffer = np.empty((n, (band - 1) * strides[0] + span) + shape[2:], dtype)
    # (the band's results, where its rows of `out` are not contiguous: they go there from the cache)
    results = None if out[:1, :band].flags.c_contiguous else np.empty((1, band, cols, channels), out.dtype)
    first = 0
    while first < rows:
        start = first * strides[0]
        piece, stop = _rows_in_place(slab, start)
        if stop - start >= span:  # (as many output rows as those rows give, a band where they go through results)
            last = min((stop - span) // strides[0] + 1, rows if results is None else first + band)
        else:
            last = min(first + band, rows)
            piece = _gather(slab, start, (last - 1) * strides[0] + span, out=buffer)
        for image in range(n):
            _written(out[image:image + 1, first:last],
                     lambda into: conv(piece[image:image + 1, :(last - first - 1) * strides[0] + span], into),
                     None if results is None else results[:, :last - first])
        first = last
    return out


def _written(out, compute, scratch=None):
    """`out` (a new array when None) holding `compute(into)`'s result, computed straight into it when
    it is C-contiguous (the kernels write flat arrays), else into `scratch` (or a new array) and
    copied."""
    if out is not None and not out.flags.c_contiguous:
        out[...] = compute(scratch)
        return out
    return compute(out)


# Bytes of input rows a band of outputs reads: small enough that the convolution reads the band
# from the cache where the copy left it, large enough that the halo's rows, copied twice, and each
# call's overhead stay small. An interior 2004x2004x3 float32 slab, one thread, on the project's
# machine (1 MiB L2, 32 MiB L3): the slab gathered whole 30 ms; bands of 0.5, 1, 2, 4 MiB 25.5, 23,
# 22, 24 ms (medians of 21).
_BAND_BYTES = 2 << 20


def _band_rows(row_bytes, stride):
    """Output rows a band, for input rows of `row_bytes` (the chunk's images together): a multiple of
    16, at least 16 (its rows of outputs then start on a cache line of the result when a row of
    outputs is a multiple of 4 bytes)."""
    return max(1, _BAND_BYTES // (row_bytes * stride) // 16) * 16


def _input_grad_block(slab, filters, *, halo, strides, data_format, result_dtype, num_threads,
                      **arguments):
    """The gradient of the padded-input rows and columns this chunk of outputs (and its `halo` of
    earlier ones, all in `slab`) reaches, `strides` rows and columns per output row and column."""
    grad_output = _gather(slab)
    multiplier = filters.shape[3]
    if data_format == "NHWC":
        n, rows, cols, channels = grad_output.shape
        input_shape = (n, (rows - halo[0]) * strides[0], (cols - halo[1]) * strides[1], channels // multiplier)
    else:
        n, channels, rows, cols = grad_output.shape
        input_shape = (n, channels // multiplier, (rows - halo[0]) * strides[0], (cols - halo[1]) * strides[1])
    return dwconv.depthwise_conv2d_backprop_input(input_shape, filters, grad_output, strides, filter_format="tf",
                                                  data_format=data_format, dtype=result_dtype,
                                                  num_threads=_chunk_threads(num_threads), **arguments)


def _filter_grad_block(slab, grad_output, *, kernel, data_format, result_dtype, num_threads, **arguments):
    """This chunk's share of the filter gradient, from the input `slab` it reads, with three leading
    axes of one for the batch, row and column chunk it sums over."""
    x = _gather(slab)
    channels = x.shape[data_format.index("C")]
    multiplier = grad_output.shape[data_format.index("C")] // channels
    grad = dwconv.depthwise_conv2d_backprop_filter(x, kernel + (channels, multiplier), grad_output, padding="VALID",
                                                   filter_format="tf", num_threads=_chunk_threads(num_threads),
                                                   data_format=data_format, dtype=result_dtype, **arguments)
    return grad[None, None, None]


def _computed_into(out, index, chunks, block_function, arrays, arguments):
    """`out` with every block of the result (chunked as `chunks` along the axes `index` names)
    written into its region of `out` by `block_function`, computed now; `arrays` and their indices
    as for ``dask.array.blockwise``."""
    scheduler = get_scheduler(collections=[arrays[0]])
    if scheduler not in (dask.threaded.get, dask.local.get_sync):
        raise ValueError(f"`out` needs a scheduler that shares this process's memory (dask's threaded or "
                         f"synchronous one), not {getattr(scheduler, '__qualname__', scheduler)}; compute the lazy "
                         "result (without `out`) and store it, e.g. with dask.array.store")
    name = "into-" + tokenize(*(array.name for array in arrays[::2]), index, chunks, out.ctypes.data, out.strides)
    edges = [np.cumsum((0,) + c).tolist() for c in chunks]
    graph = {}
    for block in np.ndindex(*map(len, chunks)):
        region = tuple(slice(e[i], e[i + 1]) for e, i in zip(edges, block))
        keys = [(array.name, *(block[index.index(axis)] if axis in index else 0 for axis in axes))
                for array, axes in zip(arrays[::2], arrays[1::2])]
        graph[(name, *block)] = (functools.partial(block_function, out=out[region], **arguments), *keys)
    graph[name] = (len, list(graph))
    Delayed(name, HighLevelGraph.from_collections(name, graph, dependencies=arrays[::2])).compute(scheduler=scheduler)
    return out


# Computed into `out`, rows of chunks are cut into at least this many tasks a thread, each of this
# many output rows or more: a task per row of chunks left a thread idle where they were fewer than
# the threads, or not a multiple of them (a one-chunk image on one thread of two).
TASKS_PER_THREAD = 2
MIN_TASK_ROWS = 16


def _cut(bounds, pieces, smallest):
    """`bounds` ((start, stop) pairs) each cut into `pieces` of about equal size, fewer where they
    would be smaller than `smallest` rows."""
    cut = []
    for start, stop in bounds:
        n = max(1, min(pieces, (stop - start) // smallest))
        edges = np.linspace(start, stop, n + 1).round().astype(int).tolist()
        cut += list(zip(edges[:-1], edges[1:]))
    return cut


def _chunk_threads(num_threads):
    """The OpenMP threads of a chunk's call: `num_threads` when given; by default one in a thread other
    than the main one, where a scheduler runs chunks in parallel (dask's threaded scheduler; a
    ``dask.distributed`` worker's threads, started with OMP_NUM_THREADS=1 anyway), and OpenMP's
    default in the main thread (the synchronous scheduler, one chunk at a time). On the project's
    2-core machine, shared with other work, dask's 2 threads with OpenMP's 2 each computed the
    benchmark's chunked image in a median 1370 ms, with one each 723 ms (11 interleaved rounds;
    another run 652 and 626): 4 threads wait at every barrier for one that is not running."""
    if num_threads is not None:
        return num_threads
    return 1 if threading.current_thread() is not threading.main_thread() else None


def _check_threads(num_threads):
    """`num_threads`'s errors when the graph is built, not when a chunk is computed."""
    if num_threads is not None:
        _args.resolve_threads(num_threads, _kernels.max_threads())


# -- the graph ---------------------------------------------------------------------------------------

def _as_dask(array):
    return array if isinstance(array, da.Array) else da.asarray(array)


def _virtual(array):
    """An ndarray with the shape and dtype of dask `array` and no memory, for dwconv._args to check."""
    return np.broadcast_to(np.zeros((), array.dtype), array.shape)


def _index(layout):
    """blockwise's index letters for the axes of an image in `layout`."""
    return layout.lower()


def _span(kernel, dilation):
    return (kernel - 1) * dilation + 1


def _sizes(bounds):
    return tuple(int(b - a) for a, b in bounds)


def _chunk_starts(chunks):
    return np.cumsum((0,) + chunks)[:-1]


def _bounds(starts, stop):
    """(start, stop) of chunks starting at `starts` (empty ones dropped), the last one ending at `stop`."""
    edges = np.unique(np.r_[starts, stop])
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def _output_bounds(input_chunks, stride, n_out):
    """Output chunks for an input axis chunked as `input_chunks`: each starts at the first output whose
    window starts in its input chunk (so that with stride 1 and "SAME" they are the input's chunks)."""
    return _bounds(np.minimum(-(-_chunk_starts(input_chunks) // stride), n_out), n_out)


def _whole_groups(chunks, multiplier):
    """`chunks` of C*M output channels moved to multiples of M, so that each holds whole input channels."""
    edges = np.cumsum((0,) + chunks) // multiplier * multiplier
    return tuple(int(n) for n in np.diff(np.unique(edges)))


def _channel_sliced(filters, channel_chunks, multiplier=1):
    """The filters as a dask array whose channel chunks match `channel_chunks` (of C * multiplier)."""
    chunks = tuple(n // multiplier for n in channel_chunks)
    return da.from_array(filters, chunks=filters.shape[:2] + (chunks,) + filters.shape[3:])


def _along(axis, index):
    """An index that applies `index` along `axis` and takes everything along the others."""
    return (slice(None),) * axis + (index,)


def _take(array, axis, index):
    return array[_along(axis, index)]


def _slabs(array, h, w, rows, cols):
    """`array` cut into one chunk per region `rows[k]` x `cols[l]` ((start, stop) pairs along axes `h`
    and `w`; the regions may overlap), each a `_Slab` of the chunks it overlaps: the block functions
    copy it (`_gather`) whole or a band of rows at a time."""
    name = "slabs-" + tokenize(array, h, w, rows, cols)
    row_pieces = [_pieces(array.chunks[h], start, stop) for start, stop in rows]
    col_pieces = [_pieces(array.chunks[w], start, stop) for start, stop in cols]
    numblocks = list(array.numblocks)
    numblocks[h], numblocks[w] = len(rows), len(cols)
    graph = {}
    for index in np.ndindex(*numblocks):
        keys = [[_key(array.name, index, {h: i, w: j}) for j, _ in col_pieces[index[w]]]
                for i, _ in row_pieces[index[h]]]
        graph[(name, *index)] = (_Slab, keys, [piece for _, piece in row_pieces[index[h]]],
                                 [piece for _, piece in col_pieces[index[w]]], h, w)
    chunks = list(array.chunks)
    chunks[h], chunks[w] = _sizes(rows), _sizes(cols)
    return da.Array(HighLevelGraph.from_collections(name, graph, dependencies=[array]), name, tuple(chunks),
                    meta=np.empty((0,) * array.ndim, array.dtype))


def _key(name, index, replaced):
    """The key of chunk `index` of array `name`, with the chunk numbers along some axes `replaced`."""
    return (name, *(replaced.get(axis, i) for axis, i in enumerate(index)))


def _pieces(chunks, start, stop):
    """(chunk number, slice in that chunk) of the chunks that [start, stop) overlaps."""
    edges = np.cumsum((0,) + chunks).tolist()
    return [(i, slice(max(start, lo) - lo, min(stop, hi) - lo))
            for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])) if lo < stop and start < hi and lo < hi]


# A region of an array, not copied yet: a grid of chunks (rows along axis h, columns along w) and the
# slice of each that the region takes. Gathering a whole slab before the call costs a copy of every
# chunk into memory nothing else touches; a band of rows at a time stays in the cache.
_Slab = namedtuple("_Slab", "blocks row_slices col_slices h w")


def _slab_shape(slab):
    shape = list(slab.blocks[0][0].shape)
    shape[slab.h] = _edges(slab.row_slices)[-1]
    shape[slab.w] = _edges(slab.col_slices)[-1]
    return tuple(shape)


def _edges(slices):
    """Where each of `slices`' pieces starts in their concatenation, then where the last ends."""
    return np.cumsum([0] + [s.stop - s.start for s in slices]).tolist()


def _rows_in_place(slab, start):
    """(rows, stop): the rows [start, stop) of NHWC `slab` as one array, its images' rows contiguous,
    viewed where they lie, for the largest stop they allow: rows of a row of chunks side by side in
    one array's memory (dask.array.from_array's chunks are views of the array), across the rows of
    chunks that continue them; (None, start) when the row at `start` is not such."""
    row_starts = _edges(slab.row_slices)
    origin, stop = None, start
    for blocks, taken, top, bottom in zip(slab.blocks, slab.row_slices, row_starts, row_starts[1:]):
        if bottom <= stop:
            continue
        strip = _strip(blocks, slab.col_slices, taken.start + stop - top)
        if strip is None or origin is not None and (
                strip.strides != origin.strides or _root(strip) is not _root(origin)
                or strip.ctypes.data != origin.ctypes.data + (stop - start) * origin.strides[1]):
            break
        origin = strip if origin is None else origin
        stop = bottom
    if origin is None:
        return None, start
    shape = (origin.shape[0], stop - start, _slab_shape(slab)[2], origin.shape[3])
    return np.lib.stride_tricks.as_strided(origin, shape, origin.strides, writeable=False), stop


def _strip(blocks, col_slices, row):
    """The rows from `row` on of one row of NHWC chunks (`blocks`, the `col_slices` of each), viewed
    from the first, when the chunks lie side by side in one array's memory and make whole rows of
    it; else None."""
    first = blocks[0]
    if not all(isinstance(block, np.ndarray) and block.strides == first.strides and _root(block) is _root(first)
               for block in blocks):
        return None
    _, row_stride, pixel_stride, channel_stride = first.strides
    col_starts = _edges(col_slices)
    if (channel_stride != first.itemsize or pixel_stride != first.shape[3] * first.itemsize
            or row_stride != col_starts[-1] * pixel_stride):
        return None
    at = first.ctypes.data + row * row_stride + col_slices[0].start * pixel_stride
    for block, cols, left in zip(blocks, col_slices, col_starts):
        if block.ctypes.data + row * row_stride + cols.start * pixel_stride != at + left * pixel_stride:
            return None
    return first[:, row:, col_slices[0].start:]


def _root(array):
    """The array whose memory `array` views (itself when it owns its memory)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def _gather(slab, start=0, stop=None, out=None):
    """Rows [start, stop) of `slab` (all of them by default) as one array: a view of a chunk when they
    lie in one and no `out` is given, else each piece written once into `out` or a new array
    (concatenating rows of concatenated pieces copied a slab twice: an interior 2004x2004x3 float32
    slab took 24 ms that way, 10 ms this way)."""
    h, w = slab.h, slab.w
    stop = _slab_shape(slab)[h] if stop is None else stop

    def index(rows, cols):
        where = [slice(None)] * slab.blocks[0][0].ndim
        where[h], where[w] = rows, cols
        return tuple(where)
    row_starts, col_starts = _edges(slab.row_slices), _edges(slab.col_slices)
    # (chunks, rows taken from them, rows of the result) for each row of chunks that [start, stop) overlaps
    pieces = [(row, slice(taken.start + max(start, top) - top, taken.start + min(stop, bottom) - top),
               slice(max(start, top) - start, min(stop, bottom) - start))
              for row, taken, top, bottom in zip(slab.blocks, slab.row_slices, row_starts, row_starts[1:])
              if top < stop and start < bottom]
    if out is None and len(pieces) == 1 and len(slab.col_slices) == 1:
        row, source, _ = pieces[0]
        return row[0][index(source, slab.col_slices[0])]
    if out is None:
        shape = list(_slab_shape(slab))
        shape[h] = stop - start
        out = np.empty(shape, slab.blocks[0][0].dtype)
    for row, source, target in pieces:
        for block, cols, left, right in zip(row, slab.col_slices, col_starts, col_starts[1:]):
            out[index(target, slice(left, right))] = block[index(source, cols)]
    return out


def _input_slabs(x, g, index, rows, cols=None):
    """The padded input cut into the slabs that the chunks of outputs (`rows` x `cols`) read; with
    `cols` None, the slabs of whole rows, padded along the rows only."""
    h, w = index.index("h"), index.index("w")
    padded = _pad(x, h, g.H, g.pt, g.pb, g.mode)
    eh, ew = _span(g.kh, g.dil_h), _span(g.kw, g.dil_w)
    if cols is None:
        regions = [(0, g.W)]
    else:
        padded = _pad(padded, w, g.W, g.pl, g.pr, g.mode)
        regions = [(a * g.sw, (b - 1) * g.sw + ew) for a, b in cols]
    return _slabs(padded, h, w, [(a * g.sh, (b - 1) * g.sh + eh) for a, b in rows], regions)


# Padded positions [start, stop) that read zeros (lo is None) or the axis positions [lo, hi): in
# order (step 1), reversed (step -1), or one position repeated (step 0, hi = lo + 1).
_Run = namedtuple("_Run", "start stop lo hi step")


def _padding_runs(n, before, after, mode):
    """The padding of an axis of length `n` as `_Run`s, before and after it, in order: numpy.pad
    says where each position reads from."""
    if mode == "zeros":
        source = np.pad(np.arange(n), (before, after), constant_values=-1)
    else:
        source = np.pad(np.arange(n), (before, after), mode=_args.PADDING_MODES[mode])
    runs = []
    for first, end in ((0, before), (before + n, before + n + after)):
        start = first
        for stop in range(first + 1, end + 1):
            if stop == end or not _one_run(source[start:stop + 1]):
                lo, hi = sorted((int(source[start]), int(source[stop - 1])))
                step = int(source[start + 1] - source[start]) if stop - start > 1 else 1
                runs.append(_Run(start, stop, None, None, 0) if lo < 0 else _Run(start, stop, lo, hi + 1, step))
                start = stop
    return runs


def _one_run(source):
    if (source < 0).any():
        return bool((source < 0).all())
    steps = np.diff(source)
    return bool(steps[0] in (-1, 0, 1) and (steps == steps[0]).all())


def _pad(x, axis, n, before, after, mode):
    """`x` padded along `axis` (of length `n`) as numpy.pad does in `mode`, lazily."""
    pieces = {True: [], False: []}
    for run in _padding_runs(n, before, after, mode):
        length = run.stop - run.start
        if run.lo is None:
            chunks = x.chunks[:axis] + ((length,),) + x.chunks[axis + 1:]
            piece = da.zeros(tuple(map(sum, chunks)), dtype=x.dtype, chunks=chunks)
        elif run.step == 0:
            piece = da.repeat(_take(x, axis, slice(run.lo, run.hi)), length, axis)
        else:
            piece = _take(x, axis, slice(run.lo, run.hi))[_along(axis, slice(None, None, run.step))]
        pieces[run.start < before].append(piece)
    return da.concatenate(pieces[True] + [x] + pieces[False], axis) if before + after else x


def _fold_padding(padded_grad, axis, n, before, after, mode):
    """The transpose of `_pad`: the gradient of the padded axis summed onto the positions it was read
    from (the padding's own positions dropped for zeros)."""
    grad = _take(padded_grad, axis, slice(before, before + n))
    for run in _padding_runs(n, before, after, mode):
        if run.lo is not None:
            piece = _take(padded_grad, axis, slice(run.start, run.stop))
            piece = (piece.sum(axis, keepdims=True) if run.step == 0
                     else piece[_along(axis, slice(None, None, run.step))])
            parts = [_take(grad, axis, slice(0, run.lo)), _take(grad, axis, slice(run.lo, run.hi)) + piece,
                     _take(grad, axis, slice(run.hi, n))]
            grad = da.concatenate([part for part in parts if part.shape[axis]], axis)
    return grad
