# The fused separable filter (dwconv.sep_filter2d): both passes in one parallel loop over output
# rows, with one column and one row filter for every channel. Each output row takes the kh source
# rows it needs straight from the image (their indices mapped by the border mode), sums them into
# one padded row of column sums in its thread's scratch (sep_columns; for a symmetric filter two rows
# at a time where both windows lie in the image, sep_columns_pair, each source row read once for
# both), fills that row's padded columns from the columns they mirror (a column sum at a padded
# column is the one at the column it mirrors), and filters it into the output row (sep_rows): the
# column sums never leave L1/L2, and the image is neither padded nor copied. Every output row is
# computed the same way whichever band or pair it falls in, so the result does not depend on the
# number of threads. The micro-kernels are in _microkernels_separable.h.


cdef extern from "_microkernels.h" nogil:
    void dw_sep_columns_float(const void *const *rows, int type, const float *k, Py_ssize_t n_taps, int fold,
                              float *sums, Py_ssize_t n)
    void dw_sep_columns_double(const void *const *rows, int type, const double *k, Py_ssize_t n_taps, int fold,
                               double *sums, Py_ssize_t n)
    void dw_sep_columns_pair_float(const void *const *rows, int type, const float *k, Py_ssize_t n_taps,
                                   float *sums0, float *sums1, Py_ssize_t n)
    void dw_sep_columns_pair_double(const void *const *rows, int type, const double *k, Py_ssize_t n_taps,
                                    double *sums0, double *sums1, Py_ssize_t n)
    void dw_sep_rows_float(const float *sums, Py_ssize_t tap_step, const float *k, Py_ssize_t n_taps, int fold,
                           float delta, void *dst, int type, bint streaming, Py_ssize_t n)
    void dw_sep_rows_double(const double *sums, Py_ssize_t tap_step, const double *k, Py_ssize_t n_taps, int fold,
                            double delta, void *dst, int type, bint streaming, Py_ssize_t n)

# The DW_ELEM_* code of each element type the fused filter reads and writes itself, by NumPy's
# dtype.char: the float type it computes in, or (in float32) uint8 and uint16 pixels.
SEPARABLE_ELEMENTS = {"f": DW_ELEM_FLOAT, "d": DW_ELEM_FLOAT, "B": DW_ELEM_U8, "H": DW_ELEM_U16}


cdef int fold_of(const floating *k, Py_ssize_t n) noexcept nogil:
    """1 when the filter k is symmetric (k[a] == k[n-1-a]), -1 antisymmetric, 0 otherwise: the
    micro-kernels fold the pairs of taps of the first two."""
    cdef Py_ssize_t a
    cdef bint symmetric = True, antisymmetric = True
    for a in range(n):
        symmetric = symmetric and k[a] == k[n - 1 - a]
        antisymmetric = antisymmetric and k[a] == -k[n - 1 - a]
    return 1 if symmetric else -1 if antisymmetric else 0


cdef struct Separable:
    # One call of the fused filter (see separable): its images, as bytes, and its geometry
    const char *src
    char *dst
    int src_type, dst_type  # DW_ELEM_*
    Py_ssize_t src_row, dst_row  # bytes a row
    Py_ssize_t width, channels, kh, kw, left
    int column_fold, row_fold  # fold_of the filters
    const Py_ssize_t *source_rows
    const Py_ssize_t *source_columns  # NULL for zeros padding
    bint streaming


cdef void separable_watch(bint on, const Separable *f, Py_ssize_t height, char *scratch, Py_ssize_t scratch_bytes,
                          const floating *column_filter, const floating *row_filter) noexcept nogil:
    """Debug builds: register (on) or retire the buffers the passes read and write (see _bounds.h)."""
    watch_one(on, f.src, height * f.src_row, False)
    watch_one(on, f.dst, height * f.dst_row, True)
    watch_one(on, scratch, scratch_bytes, True)
    watch_one(on, column_filter, f.kh * sizeof(floating), False)
    watch_one(on, row_filter, f.kw * sizeof(floating), False)


cdef inline Py_ssize_t round_up_64(Py_ssize_t nbytes) noexcept nogil:
    return (nbytes + 63) // 64 * 64


cdef void finish_row(const Separable *f, floating *sums, const floating *row_filter, floating delta,
                     Py_ssize_t r) noexcept nogil:
    """Output row r from its padded row of column sums `sums`, whose image columns are summed: the
    padded columns filled in, then the row pass."""
    cdef Py_ssize_t j, C = f.channels
    cdef floating *inside = sums + f.left * C
    if f.source_columns != NULL:  # (zeros: the padded columns keep the zeros they were allocated with)
        for j in range(f.left):
            memcpy(sums + j * C, inside + f.source_columns[j] * C, C * sizeof(floating))
        for j in range(f.kw - 1 - f.left):
            memcpy(inside + (f.width + j) * C, inside + f.source_columns[f.left + j] * C, C * sizeof(floating))
    if floating is float:
        dw_sep_rows_float(sums, C, row_filter, f.kw, f.row_fold, delta, f.dst + r * f.dst_row, f.dst_type,
                          f.streaming, f.width * C)
    else:
        dw_sep_rows_double(sums, C, row_filter, f.kw, f.row_fold, delta, f.dst + r * f.dst_row, f.dst_type,
                           f.streaming, f.width * C)


cdef void separable_band(const Separable *f, const floating *column_filter, const floating *row_filter,
                         floating delta, Py_ssize_t first, Py_ssize_t stop, floating *sums, floating *next_sums,
                         const void **rows) noexcept nogil:
    """Output rows [first, stop) of the fused filter, with one thread's two padded rows of column
    sums and room for kh + 1 row pointers."""
    cdef Py_ssize_t n = f.width * f.channels, kh = f.kh, offset = f.left * f.channels
    cdef Py_ssize_t r = first, a, lo, hi
    while r < stop:
        if f.column_fold == 1 and r + 1 < stop and f.source_rows[r] >= 0 and f.source_rows[r + kh] >= 0:
            # rows r and r + 1 of a symmetric filter, both windows in the image (the rows outside it
            # are the first or last)
            for a in range(kh + 1):
                rows[a] = f.src + f.source_rows[r + a] * f.src_row
            if floating is float:
                dw_sep_columns_pair_float(rows, f.src_type, column_filter, kh, sums + offset, next_sums + offset, n)
            else:
                dw_sep_columns_pair_double(rows, f.src_type, column_filter, kh, sums + offset, next_sums + offset, n)
            finish_row(f, sums, row_filter, delta, r)
            finish_row(f, next_sums, row_filter, delta, r + 1)
            r += 2
            continue
        # the source rows inside the image (for zeros, the others add nothing; the anchor's row is
        # always inside)
        lo, hi = 0, kh
        while f.source_rows[r + lo] < 0:
            lo += 1
        while f.source_rows[r + hi - 1] < 0:
            hi -= 1
        for a in range(lo, hi):
            rows[a - lo] = f.src + f.source_rows[r + a] * f.src_row
        if floating is float:
            dw_sep_columns_float(rows, f.src_type, column_filter + lo, hi - lo,
                                 f.column_fold if hi - lo == kh else 0, sums + offset, n)
        else:
            dw_sep_columns_double(rows, f.src_type, column_filter + lo, hi - lo,
                                  f.column_fold if hi - lo == kh else 0, sums + offset, n)
        finish_row(f, sums, row_filter, delta, r)
        r += 1


cdef void separable_run(const Separable *f, const floating *column_filter, const floating *row_filter,
                        floating delta, Py_ssize_t height, char *scratch, Py_ssize_t sums_bytes, Py_ssize_t n_items,
                        int n_threads) noexcept nogil:
    """The fused filter's parallel loop: band `item` of n_items in the item-th scratch (see separable)."""
    cdef Py_ssize_t item, scratch_bytes = 2 * sums_bytes + round_up_64((f.kh + 1) * sizeof(void *))
    cdef floating *sums
    separable_watch(True, f, height, scratch, n_items * scratch_bytes, column_filter, row_filter)
    for item in prange(n_items, schedule="static", num_threads=n_threads):
        sums = <floating *> (scratch + item * scratch_bytes)
        separable_band(f, column_filter, row_filter, delta, height * item // n_items, height * (item + 1) // n_items,
                       sums, sums + sums_bytes // sizeof(floating),
                       <const void **> (scratch + item * scratch_bytes + 2 * sums_bytes))
    separable_watch(False, f, height, scratch, n_items * scratch_bytes, column_filter, row_filter)


def separable(x, y, column_filter, row_filter, source_rows, source_columns, Py_ssize_t left, double delta,
              int n_threads):
    """y[0, r, j, c] = delta + sum_{a, b} column_filter[a] * row_filter[b] * x[0, source_rows[r + a],
    source_column(j + b), c] for the C-contiguous NHWC images x and y (one image), whose elements
    are in SEPARABLE_ELEMENTS (integer results rounded to nearest and saturated), with the
    contiguous filters of the type computed in (float32 or float64).

    source_rows: the image row (intp) of each of the H + kh - 1 rows of the padded image, -1 for a
    row of zeros; source_column(q) is q - left inside the image, and for the padded columns the
    image column given by source_columns (the left ones, then the right ones; empty for zeros
    padding). (Arrays by address, not typed memoryviews: a fused def function's argument unpacking
    took 30 KB of machine code.)"""
    cdef Separable f
    cdef Py_ssize_t height = x.shape[1]
    cdef bint double_precision = column_filter.dtype.char == "d"
    cdef Py_ssize_t elsize = 8 if double_precision else 4
    f.width, f.channels = x.shape[2], x.shape[3]
    f.kh, f.kw, f.left = column_filter.shape[0], row_filter.shape[0], left
    f.src_type, f.dst_type = SEPARABLE_ELEMENTS[x.dtype.char], SEPARABLE_ELEMENTS[y.dtype.char]
    f.src_row, f.dst_row = f.width * f.channels * x.itemsize, f.width * f.channels * y.itemsize
    f.src = <const char *> <size_t> data_address(x)
    f.dst = <char *> <size_t> data_address(y)
    f.source_rows = <const Py_ssize_t *> <size_t> data_address(source_rows)
    f.source_columns = <const Py_ssize_t *> <size_t> data_address(source_columns) if len(source_columns) else NULL
    cdef const void *column_taps = <const void *> <size_t> data_address(column_filter)
    cdef const void *row_taps = <const void *> <size_t> data_address(row_filter)
    if double_precision:
        f.column_fold = fold_of(<const double *> column_taps, f.kh)
        f.row_fold = fold_of(<const double *> row_taps, f.kw)
    else:
        f.column_fold = fold_of(<const float *> column_taps, f.kh)
        f.row_fold = fold_of(<const float *> row_taps, f.kw)
    # (streaming stores: as the forward's, for results the next call would not find in the cache)
    f.streaming = height * f.dst_row > STREAMING_BYTES
    # Each thread's scratch: two padded rows of column sums, then the kh + 1 source row pointers,
    # each 64-byte aligned (whole cache lines: no two threads write one).
    cdef Py_ssize_t sums_bytes = round_up_64((f.width + f.kw - 1) * f.channels * elsize)
    cdef Py_ssize_t scratch_bytes = 2 * sums_bytes + round_up_64((f.kh + 1) * sizeof(void *))
    if height * f.width * f.channels * (f.kh + f.kw) < SERIAL_WORK:
        n_threads = 1
    # One band of rows a thread: every band costs the same, and each band reads kh - 1 rows of its
    # first window that the band above reads too.
    cdef Py_ssize_t n_items = max(1, min(n_threads, height))
    cdef char *block = <char *> calloc(n_items * scratch_bytes + 64, 1)  # (calloc: zeros' padded columns)
    if block == NULL:
        raise MemoryError()
    cdef char *scratch = block + (64 - <size_t> block % 64) % 64
    try:
        with nogil:
            if double_precision:
                separable_run(&f, <const double *> column_taps, <const double *> row_taps, delta, height, scratch,
                              sums_bytes, n_items, n_items)
            else:
                separable_run(&f, <const float *> column_taps, <const float *> row_taps, <float> delta, height,
                              scratch, sums_bytes, n_items, n_items)
    finally:
        free(block)
