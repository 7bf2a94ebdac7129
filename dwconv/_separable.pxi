# The fused separable filter (dwconv.sep_filter2d): both passes in one parallel loop over output
# rows, with one column and one row filter for every channel. Each output row takes the kh source
# rows it needs straight from the image (their indices mapped by the border mode), sums them into
# one padded row of column sums in its thread's scratch (sep_columns), fills that row's padded
# columns from the columns they mirror (a column sum at a padded column is the one at the column it
# mirrors), and filters it into the output row (sep_rows): the column sums never leave L1/L2, and the
# image is neither padded nor copied. The micro-kernels are in _microkernels_separable.h.

from libc.string cimport memcpy

cdef extern from "_microkernels.h" nogil:
    void dw_sep_columns_float(const void *const *rows, int type, const float *k, Py_ssize_t n_taps, int fold,
                              float *sums, Py_ssize_t n)
    void dw_sep_columns_double(const void *const *rows, int type, const double *k, Py_ssize_t n_taps, int fold,
                               double *sums, Py_ssize_t n)
    void dw_sep_rows_float(const float *sums, Py_ssize_t tap_step, const float *k, Py_ssize_t n_taps, int fold,
                           float delta, void *dst, int type, bint streaming, Py_ssize_t n)
    void dw_sep_rows_double(const double *sums, Py_ssize_t tap_step, const double *k, Py_ssize_t n_taps, int fold,
                            double delta, void *dst, int type, bint streaming, Py_ssize_t n)

# The DW_ELEM_* code of each element type the fused filter reads and writes itself, by NumPy's
# dtype.char: the float type it computes in, or (in float32) 8- and 16-bit integer pixels.
SEPARABLE_ELEMENTS = {"f": DW_ELEM_FLOAT, "d": DW_ELEM_FLOAT, "B": DW_ELEM_U8, "H": DW_ELEM_U16, "h": DW_ELEM_I16}


cdef int fold_of(const floating *k, Py_ssize_t n) noexcept nogil:
    """1 when the filter k is symmetric (k[a] == k[n-1-a]), -1 antisymmetric, 0 otherwise: the
    micro-kernels fold the pairs of taps of the first two."""
    cdef Py_ssize_t a
    cdef bint symmetric = True, antisymmetric = True
    for a in range(n):
        symmetric = symmetric and k[a] == k[n - 1 - a]
        antisymmetric = antisymmetric and k[a] == -k[n - 1 - a]
    return 1 if symmetric else -1 if antisymmetric else 0


cdef void separable_watch(bint on, const char *src, Py_ssize_t src_bytes, char *dst, Py_ssize_t dst_bytes,
                          char *scratch, Py_ssize_t scratch_bytes, const floating *column_filter, Py_ssize_t kh,
                          const floating *row_filter, Py_ssize_t kw) noexcept nogil:
    """Debug builds: register (on) or retire the buffers the passes read and write (see _bounds.h)."""
    watch_one(on, src, src_bytes, False)
    watch_one(on, dst, dst_bytes, True)
    watch_one(on, scratch, scratch_bytes, True)
    watch_one(on, column_filter, kh * sizeof(floating), False)
    watch_one(on, row_filter, kw * sizeof(floating), False)


cdef inline Py_ssize_t round_up_64(Py_ssize_t nbytes) noexcept nogil:
    return (nbytes + 63) // 64 * 64


cdef void separable_band(const char *src, int src_type, Py_ssize_t src_row, char *dst, int dst_type,
                         Py_ssize_t dst_row, const floating *column_filter, Py_ssize_t kh, int column_fold,
                         const floating *row_filter, Py_ssize_t kw, int row_fold, floating delta,
                         const Py_ssize_t *source_rows, const Py_ssize_t *source_columns, Py_ssize_t width,
                         Py_ssize_t channels, Py_ssize_t left, bint streaming, Py_ssize_t first, Py_ssize_t stop,
                         floating *sums, const void **rows) noexcept nogil:
    """Output rows [first, stop) of the fused filter (see separable), with one thread's padded row of
    column sums `sums` and room for kh row pointers `rows`."""
    cdef Py_ssize_t n = width * channels, right = kw - 1 - left
    cdef Py_ssize_t r, a, lo, hi, j
    cdef floating *inside = sums + left * channels  # the sums of the image's own columns
    for r in range(first, stop):
        lo, hi = 0, kh  # the source rows inside the image (for zeros, the others add nothing)
        while lo < hi and source_rows[r + lo] < 0:
            lo += 1
        while hi > lo and source_rows[r + hi - 1] < 0:
            hi -= 1
        for a in range(lo, hi):
            rows[a - lo] = src + source_rows[r + a] * src_row
        if hi > lo:
            if floating is float:
                dw_sep_columns_float(rows, src_type, column_filter + lo, hi - lo, column_fold if hi - lo == kh else 0,
                                     inside, n)
            else:
                dw_sep_columns_double(rows, src_type, column_filter + lo, hi - lo,
                                      column_fold if hi - lo == kh else 0, inside, n)
        else:
            memset(inside, 0, n * sizeof(floating))
        if source_columns != NULL:  # (zeros: the padded columns keep the zeros they were allocated with)
            for j in range(left):
                memcpy(sums + j * channels, inside + source_columns[j] * channels, channels * sizeof(floating))
            for j in range(right):
                memcpy(inside + (width + j) * channels, inside + source_columns[left + j] * channels,
                       channels * sizeof(floating))
        if floating is float:
            dw_sep_rows_float(sums, channels, row_filter, kw, row_fold, delta, dst + r * dst_row, dst_type, streaming, n)
        else:
            dw_sep_rows_double(sums, channels, row_filter, kw, row_fold, delta, dst + r * dst_row, dst_type, streaming,
                               n)


def separable(x, y, const floating[::1] column_filter, const floating[::1] row_filter,
              const Py_ssize_t[::1] source_rows, const Py_ssize_t[::1] source_columns, Py_ssize_t left,
              double delta, int n_threads):
    """y[0, r, j, c] = delta + sum_{a, b} column_filter[a] * row_filter[b] * x[0, source_rows[r + a],
    source_column(j + b), c] for the C-contiguous NHWC images x and y (one image), whose elements
    are in SEPARABLE_ELEMENTS (integer results rounded to nearest and saturated).

    source_rows: the image row of each of the H + kh - 1 rows of the padded image, -1 for a row of
    zeros; source_column(q) is q - left inside the image, and for the padded columns the image
    column given by source_columns (the left ones, then the right ones; empty for zeros padding)."""
    cdef Py_ssize_t height = x.shape[1], width = x.shape[2], channels = x.shape[3]
    cdef Py_ssize_t kh = column_filter.shape[0], kw = row_filter.shape[0]
    cdef int src_type = SEPARABLE_ELEMENTS[x.dtype.char], dst_type = SEPARABLE_ELEMENTS[y.dtype.char]
    cdef Py_ssize_t src_row = width * channels * x.itemsize, dst_row = width * channels * y.itemsize
    cdef const char *src = <const char *> <size_t> data_address(x)
    cdef char *dst = <char *> <size_t> data_address(y)
    cdef const Py_ssize_t *columns_of = &source_columns[0] if source_columns.shape[0] else NULL
    cdef int column_fold = fold_of(&column_filter[0], kh), row_fold = fold_of(&row_filter[0], kw)
    # Each thread's scratch: the padded row of column sums, then the kh source row pointers, each
    # 64-byte aligned (whole cache lines: no two threads write one).
    cdef Py_ssize_t sums_bytes = round_up_64((width + kw - 1) * channels * sizeof(floating))
    cdef Py_ssize_t scratch_bytes = sums_bytes + round_up_64(kh * sizeof(void *))
    cdef Py_ssize_t item, n_items
    # (streaming stores: as the forward's, for results the next call would not find in the cache)
    cdef bint streaming = height * dst_row > STREAMING_BYTES
    if height * width * channels * (kh + kw) < SERIAL_WORK:
        n_threads = 1
    # One band of rows a thread: every band costs the same, and each item refills kh - 1 rows of
    # its window from L3 or memory (which a band's next rows then find in cache).
    n_items = n_threads = max(1, min(n_threads, height))
    cdef char *block = <char *> calloc(n_items * scratch_bytes + 64, 1)  # (calloc: zeros' padded columns)
    if block == NULL:
        raise MemoryError()
    cdef char *scratch = block + (64 - <size_t> block % 64) % 64
    try:
        with nogil:
            separable_watch(True, src, height * src_row, dst, height * dst_row, scratch, n_items * scratch_bytes,
                            &column_filter[0], kh, &row_filter[0], kw)
            for item in prange(n_items, schedule="static", num_threads=n_threads):
                separable_band(src, src_type, src_row, dst, dst_type, dst_row, &column_filter[0], kh, column_fold,
                               &row_filter[0], kw, row_fold, <floating> delta, &source_rows[0], columns_of, width,
                               channels, left, streaming, height * item // n_items, height * (item + 1) // n_items,
                               <floating *> (scratch + item * scratch_bytes),
                               <const void **> (scratch + item * scratch_bytes + sums_bytes))
            separable_watch(False, src, height * src_row, dst, height * dst_row, scratch, n_items * scratch_bytes,
                            &column_filter[0], kh, &row_filter[0], kw)
    finally:
        free(block)
