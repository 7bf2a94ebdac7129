# Spectral rows: the forward of large kernels through short Fourier transforms along the rows
# (_microkernels_spectral.h), in place of the `row` micro-kernel's taps on the rings of NHWC pixels
# (RING_PIXELS) and of packed NCHW planes (RING_PACKED). float32, stride 1, dilation 1, M 1, whole
# blocks of LANE_BLOCK channels; the input gradient at stride 1, a forward over dy, takes it too.
#
# A thread keeps the spectra of the source rows its output rows read (DW_SPECTRAL_ROWS of them per
# call, and kh + DW_SPECTRAL_ROWS - 1 source rows), padded row p in slot p % slots, as the ring's
# slots hold the rows themselves: each source row is transformed once per band of output rows, each
# output row transformed back once. Rows of zeros (the padding of zeros mode) have no spectrum at
# all. It keeps its block's kernel-row spectra too, made when its block changes: the items go block
# by block (forward_item), so each thread makes each block's once or twice.
# (Made once per call for every channel, they took 2 MB on 56x56x128 31x31, whose allocation and
# release made glibc return the heap's top to the system at each call, and the result's pages
# fault again: batch 1 on two threads 2.8 ms against 1.4 with `out` given.)

cdef extern from "_microkernels.h" nogil:
    enum: DW_SPECTRAL_MIN_LENGTH, DW_SPECTRAL_MAX_LENGTH, DW_SPECTRAL_MAX_SEGMENTS
    ctypedef struct dw_spectral:
        Py_ssize_t length, valid, width, n_out, n_segments
        Py_ssize_t starts[DW_SPECTRAL_MAX_SEGMENTS]
        float twiddles[DW_SPECTRAL_MAX_LENGTH]
    void dw_spectral_filter_float(const float *w, Py_ssize_t w_tap, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t nc,
                                  const dw_spectral *s, void *spectra)
    void dw_spectral_source_float(const float *row, Py_ssize_t pix, Py_ssize_t nc, const dw_spectral *s,
                                  Py_ssize_t span, Py_ssize_t end, void *spectra)
    void dw_spectral_correlate_float(const void *const *sources, const void *const *dys, Py_ssize_t kh,
                                     Py_ssize_t rows, Py_ssize_t nc, const dw_spectral *s, void *grads)
    void dw_spectral_filter_grad_float(void *grads, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t nc,
                                       const dw_spectral *s, float *dst, Py_ssize_t dst_tap)
    enum: DW_SPECTRAL_ROWS, DW_SPECTRAL_SUM_LANES
    void dw_spectral_rows_float(const void *const *sources, const void *filters, Py_ssize_t kh, Py_ssize_t rows,
                                Py_ssize_t nc, const dw_spectral *s, const float *bias, void *sums, float *dst,
                                Py_ssize_t dst_row, Py_ssize_t dst_pix)

from libc.math cimport cos, sin, M_PI

cdef enum:
    # Kernels of at least this many taps take the spectral rows, where their cost (spectral_cost)
    # is below the taps' too: 13x13 in NHWC, 9x9 in NCHW (2 vCPUs of an AVX-512 AMD EPYC, against
    # the taps, batch 1 and 16 on 28x28x256, 56x56x128 and 112x112x64: the forward at 13x13
    # 1.13-1.78x faster, 17x17 1.32-2.02x; NCHW 9x9 1.26-1.59x, its filter gradient 1.55-2.06x;
    # NHWC 9x9 and 11x11 0.72-0.96x at batch 16, both ways). And the NCHW filter gradient of planes
    # wider than PACKED_WIDTH, whose taps reduce each channel's rows alone, from 7x7 (3.6-4.6x
    # faster on 112x112x64 and 224x224x32; on 56x56x96, packed, 0.9-0.95x).
    SPECTRAL_MIN_TAPS = 13 * 13
    SPECTRAL_MIN_TAPS_PACKED = 9 * 9
    SPECTRAL_MIN_TAPS_WIDE = 7 * 7
    # A thread's kh source spectra (one block of channels) stay within this many bytes, in L2.
    SPECTRAL_SLOT_BYTES = 1 << 19


cdef struct Spectra:
    dw_spectral shape
    # per thread, thread_size bytes apart: `slots` slots of slot_size bytes (source rows); the
    # spectra of its block's kernel rows, or the filter gradient's sums (filter_size bytes); the
    # forward's sums of a call's output rows, or the filter gradient's DW_SPECTRAL_ROWS slots of
    # output-gradient rows and those rows' pixels (sums_size bytes); held[slots], the padded row each
    # slot holds (-1: none), and the block's first channel (-1: none); the source pointers of the
    # output rows at hand (and the filter gradient's output-gradient rows')
    char *memory
    Py_ssize_t slots, slot_size, filter_size, sums_size, thread_size


cdef inline Py_ssize_t spectral_segments(Py_ssize_t length, const Dims *d) noexcept nogil:
    """The segments of `length` columns an output row of geometry d takes."""
    cdef Py_ssize_t valid = length - d.kw + 1
    return 1 if d.OW <= valid else ceil_div(d.OW, valid)


cdef inline Py_ssize_t spectral_slot_bytes(Py_ssize_t length, const Dims *d) noexcept nogil:
    """The bytes of one source row's spectra: pairs of segments of `length` complex vectors."""
    return ceil_div(spectral_segments(length, d), 2) * 2 * length * LANE_BLOCK * sizeof(float)


cdef inline Py_ssize_t spectral_cost(Py_ssize_t length, const Dims *d) noexcept nogil:
    """About the cycles an output row of one vector of channels takes with transforms of `length`
    (its multiply-adds, 4*L*kh per pair of segments, and a forward and an inverse transform of
    about 3.5 cycles per element and radix-2 pass)."""
    cdef Py_ssize_t passes = 0
    while (1 << passes) < length:
        passes += 1
    return ceil_div(spectral_segments(length, d), 2) * length * (4 * d.kh + 7 * passes)


cdef Py_ssize_t spectral_length(const Dims *d, size_t elsize, Py_ssize_t min_taps) noexcept nogil:
    """The transform length for geometry d's spectral rows, from kernels of min_taps taps (one of
    the above), 0 where it takes none."""
    cdef Py_ssize_t length = DW_SPECTRAL_MIN_LENGTH, best = 0
    if not (elsize == sizeof(float) and d.sh == 1 and d.sw == 1 and d.dil_h == 1 and d.dil_w == 1 and d.M == 1
            and d.C % LANE_BLOCK == 0 and d.kh * d.kw >= min_taps):
        return 0
    while length <= DW_SPECTRAL_MAX_LENGTH:
        if (length >= d.kw and spectral_segments(length, d) <= DW_SPECTRAL_MAX_SEGMENTS
                and d.kh * spectral_slot_bytes(length, d) <= SPECTRAL_SLOT_BYTES
                and (best == 0 or spectral_cost(length, d) < spectral_cost(best, d))):
            best = length
        length *= 2
    # (the taps: kh*kw multiply-adds per output pixel, at about 85% of the FMA peak)
    return best if best and spectral_cost(best, d) * 85 < d.OW * d.kh * d.kw * 100 else 0


cdef bint spectra_init(Spectra *s, Py_ssize_t length, const Dims *d, int n_threads, bint gradient) noexcept nogil:
    """Fill in `s` for transforms of `length` (spectral_length's) for the forward, or for the filter
    `gradient`; released by spectra_free. False when out of memory."""
    cdef dw_spectral *shape = &s.shape
    cdef Py_ssize_t k, seg
    cdef int tid
    shape.length, shape.valid = length, length - d.kw + 1
    shape.width, shape.n_out = d.OW + d.kw - 1, d.OW
    shape.n_segments = spectral_segments(length, d)
    for seg in range(shape.n_segments):
        # (the forward's last overlapping the one before rather than shrinking; the gradient's each
        # output once: the last shorter)
        shape.starts[seg] = seg * shape.valid if gradient else max(0, min(seg * shape.valid, d.OW - shape.valid))
    for k in range(length // 2):
        shape.twiddles[2 * k] = cos(2 * M_PI * k / length)
        shape.twiddles[2 * k + 1] = -sin(2 * M_PI * k / length)
    s.slots = d.kh + DW_SPECTRAL_ROWS - 1
    s.slot_size = spectral_slot_bytes(length, d)
    # (the gradient's sums a vector more per kernel row: DW_GRAD_ROW)
    s.filter_size = d.kh * (2 * length + gradient) * LANE_BLOCK * sizeof(float)
    if gradient:
        s.sums_size = DW_SPECTRAL_ROWS * (s.slot_size + round_up(d.OW * LANE_BLOCK * sizeof(float), RING_ALIGN))
    else:
        s.sums_size = DW_SPECTRAL_ROWS * 2 * length * DW_SPECTRAL_SUM_LANES * sizeof(float)
    s.thread_size = round_up(s.slots * (s.slot_size + sizeof(Py_ssize_t) + 2 * sizeof(void *)) + s.filter_size
                             + s.sums_size + sizeof(Py_ssize_t), RING_ALIGN)
    s.memory = <char *> malloc(RING_ALIGN + n_threads * s.thread_size)
    if s.memory == NULL:
        return False
    for tid in range(n_threads):
        spectra_held(s, tid)[s.slots] = -1
    return True


cdef void spectra_free(Spectra *s) noexcept nogil:
    free(s.memory)
    s.memory = NULL


cdef inline char *spectra_slots(const Spectra *s, int tid) noexcept nogil:
    """Thread `tid`'s kh slots, then its filter spectra, held[], block and source pointers."""
    return <char *> round_up(<Py_ssize_t> s.memory, RING_ALIGN) + tid * s.thread_size


cdef inline char *spectra_filters(const Spectra *s, int tid) noexcept nogil:
    return spectra_slots(s, tid) + s.slots * s.slot_size


cdef inline char *spectra_sums(const Spectra *s, int tid) noexcept nogil:
    return spectra_filters(s, tid) + s.filter_size


cdef inline Py_ssize_t *spectra_held(const Spectra *s, int tid) noexcept nogil:
    """Thread `tid`'s held[slots], then its block's first channel, then (as void *) its source
    pointers."""
    return <Py_ssize_t *> (spectra_sums(s, tid) + s.sums_size)


cdef void spectra_reset(const Spectra *s, const floating *w, const Dims *d, Py_ssize_t c0, int tid) noexcept nogil:
    """Thread `tid`'s slots all empty (a new work item, of channels [c0, c0 + LANE_BLOCK)), and its
    kernel rows' spectra those of that block of filter w (kh, kw, C)."""
    cdef Py_ssize_t *held = spectra_held(s, tid)
    cdef Py_ssize_t i
    for i in range(s.slots):
        held[i] = -1
    if held[s.slots] != c0:
        held[s.slots] = c0
        if floating is float:
            dw_spectral_filter_float(w + c0, d.C, d.kh, d.kw, LANE_BLOCK, &s.shape, spectra_filters(s, tid))


cdef void spectra_watch(bint on, const Spectra *s, int n_threads) noexcept nogil:
    """Debug builds: register (on) or retire the threads' spectra, which the micro-kernels read
    and write."""
    watch_one(on, spectra_slots(s, 0), n_threads * s.thread_size, True)


cdef void source_spectra(const Spectra *s, const Ring *ring, const floating *const *rows, Py_ssize_t q,
                         Py_ssize_t out_rows, int tid, Py_ssize_t nc, const void **sources, const Dims *d) noexcept nogil:
    """sources[i]: the spectra of ring row i of output rows [q, q + out_rows) (out_rows + kh - 1 of
    them), NULL for a row of zeros; transforming those no slot of thread `tid` holds yet."""
    cdef char *slots = spectra_slots(s, tid)
    cdef Py_ssize_t *held = spectra_held(s, tid)
    cdef Py_ssize_t i, p, slot
    if floating is float:
        for i in range(out_rows + d.kh - 1):
            p = q + i  # (the padded row, at stride 1 and dilation 1)
            if rows[i] == <const floating *> ring.zeros:
                sources[i] = NULL
                continue
            slot = p % s.slots
            if held[slot] != p:
                dw_spectral_source_float(rows[i], ring_pixel(nc, sizeof(floating)), nc, &s.shape, s.shape.length,
                                         s.shape.width, slots + slot * s.slot_size)
                held[slot] = p
            sources[i] = slots + slot * s.slot_size


cdef void spectral_rows(const Spectra *s, const Ring *ring, const floating *const *rows, Py_ssize_t q,
                        Py_ssize_t out_rows, int tid, Py_ssize_t nc, const floating *bias, floating *out,
                        Py_ssize_t out_row, Py_ssize_t out_pix, const Dims *d) noexcept nogil:
    """Output rows [q, q + out_rows) (1 or DW_SPECTRAL_ROWS) of the block of nc channels spectra_reset
    set, pixel o of row r at out + r*out_row + o*out_pix, from the ring's rows for them, as `row`
    computes them."""
    cdef const void **sources = <const void **> (spectra_held(s, tid) + s.slots + 1)
    source_spectra(s, ring, rows, q, out_rows, tid, nc, sources, d)
    if floating is float:
        dw_spectral_rows_float(sources, spectra_filters(s, tid), d.kh, out_rows, nc, &s.shape, bias,
                               spectra_sums(s, tid), out, out_row, out_pix)


cdef void spectral_item(const floating *x, const floating *w, const floating *bias, floating *y, Ring *ring,
                        const Spectra *s, const Plan *plan, int act, const Dims *d, Py_ssize_t n, Py_ssize_t c0,
                        Py_ssize_t q0, Py_ssize_t q1, int tid) noexcept nogil:
    """forward_item's work item through the spectral rows (M 1): output rows [q0, q1) of image n,
    channels [c0, c0 + plan.block). NHWC rows are written in place (integer results narrowed from
    the thread's scratch); packed NCHW rows go to the scratch, then are transposed into the planes."""
    cdef Py_ssize_t C = d.C, OW = d.OW, nc = plan.block, q, r, index
    cdef Py_ssize_t rows_per_call = plan.out_rows if q1 - q0 >= plan.out_rows else 1
    cdef bint packed = plan.kind == RING_PACKED, narrowing = d.y_type != DW_ELEM_FLOAT
    cdef Py_ssize_t pix = nc if packed or narrowing else C
    cdef floating *scratch = <floating *> plan_scratch(plan, tid)
    cdef floating *out
    ring_reset(ring, tid)
    spectra_reset(s, w, d, c0, tid)
    q = q0
    while q < q1:
        q = min(q, q1 - rows_per_call)  # (the band's last call overlapping the one before)
        index = (n * d.OH + q) * OW * C + c0
        out = scratch + (q - q0) * OW * nc if packed else scratch if narrowing else y + index
        spectral_rows(s, ring, ring_rows(ring, tid, x, d, n, q, rows_per_call, c0, nc), q, rows_per_call, tid, nc,
                      offset(bias, c0), out, OW * pix, pix, d)
        if narrowing:  # (NHWC)
            for r in range(rows_per_call):
                narrow_results(out + r * OW * nc, y, index + r * OW * C, C, OW, nc, act, d)
        q += rows_per_call
    if packed:
        transpose(scratch, nc, y + ((n * C + c0) * d.OH + q0) * OW, d.OH * OW, nc, (q1 - q0) * OW, plan.streaming)
    if not narrowing:
        activate_outputs(y, act, d, n, q0, q1, c0, nc)


def spectral_rows_length(g, bint filter_gradient=False):
    """The transform length of the spectral rows the float32 forward of geometry g takes (of a
    filter with a different value at every tap and channel), or its filter gradient; 0 where it
    takes the taps: for the tests, which check that their cases take them."""
    cdef Dims d = dims_of(g)
    cdef Py_ssize_t n_w = d.kh * d.kw * d.C * d.M, i, length
    cdef float *w
    cdef Plan plan
    if filter_gradient:
        return gradient_spectral_length(&d, sizeof(float))
    w = <float *> malloc(n_w * sizeof(float))
    if w == NULL:
        raise MemoryError()
    d.nhwc = d.nhwc and d.C * d.M > 1  # (as forward() has it)
    for i in range(n_w):
        w[i] = i
    plan.scratch = plan.w_mc = plan.w_columns = NULL
    try:
        if not plan_init(&plan, w, NULL, &d, IDENTITY, 1):
            raise MemoryError()
        length = plan.spectra.shape.length if plan.spectral else 0
    finally:
        plan_free(&plan, w)
        free(w)
    return length


cdef inline Py_ssize_t gradient_spectral_length(const Dims *d, size_t elsize) noexcept nogil:
    """spectral_length for the filter gradient of geometry d."""
    return spectral_length(d, elsize, SPECTRAL_MIN_TAPS if d.nhwc else SPECTRAL_MIN_TAPS_WIDE if d.OW > PACKED_WIDTH
                           else SPECTRAL_MIN_TAPS_PACKED)


cdef bint spectral_filter_grad(const floating[::1] x, const floating[::1] dy, floating[::1] dfilters,
                               floating[::1] dbias, const Dims *d, int n_threads) except -1:
    """filter_grad through the spectral rows where gradient_spectral_length allows (on the forward's
    rings); True when done. Items are (block of LANE_BLOCK channels, chunk of images), the
    chunks fixed by the geometry alone: each sums the spectra of its images' rows, transforms them
    back into a partial gradient of its own, and the partials are added in chunk order, so the
    result does not depend on the number of threads."""
    cdef Py_ssize_t length = gradient_spectral_length(d, sizeof(floating))
    cdef Py_ssize_t n_blocks = d.C // LANE_BLOCK, n_taps = d.kh * d.kw
    cdef Py_ssize_t n_chunks, item, partial_size
    cdef floating *partials = NULL
    cdef floating *dbias_data = NULL if dbias is None else &dbias[0]
    cdef Spectra s
    cdef Ring ring
    if floating is double or length == 0:
        return False
    n_chunks = max(1, min(d.N, ceil_div(REDUCTION_ITEMS, n_blocks)))  # (of images, split by chunk_start)
    partial_size = (n_taps + 1) * d.C
    n_threads = threads_for(d, n_threads)
    s.memory = NULL
    ring.memory = ring.zeros = ring.book_memory = NULL
    try:
        partials = <floating *> malloc(n_chunks * partial_size * sizeof(floating))
        if (partials == NULL or not spectra_init(&s, length, d, n_threads, True)
                or not ring_init(&ring, RING_PIXELS if d.nhwc else RING_PACKED, LANE_BLOCK, DW_SPECTRAL_ROWS, False, d,
                                 sizeof(floating), n_threads)):
            raise MemoryError()
        with nogil:
            watch(True, &x[0], x.shape[0], &dy[0], dy.shape[0], NULL, 0, partials, n_chunks * partial_size)
            ring_watch(True, &ring, d, n_threads)
            spectra_watch(True, &s, n_threads)
            for item in prange(n_blocks * n_chunks, schedule="static", num_threads=n_threads):
                gradient_item(&x[0], &dy[0], partials + item % n_chunks * partial_size, &ring, &s, d,
                              item // n_chunks * LANE_BLOCK, chunk_start(item % n_chunks, n_chunks, d.N),
                              chunk_start(item % n_chunks + 1, n_chunks, d.N), threadid())
            spectra_watch(False, &s, n_threads)
            ring_watch(False, &ring, d, n_threads)
            add_partials(partials, partial_size, n_chunks, n_threads)
            watch(False, &x[0], x.shape[0], &dy[0], dy.shape[0], NULL, 0, partials, n_chunks * partial_size)
            memcpy(&dfilters[0], partials, n_taps * d.C * sizeof(floating))
            if dbias_data != NULL:
                memcpy(dbias_data, partials + n_taps * d.C, d.C * sizeof(floating))
    finally:
        free(partials)
        spectra_free(&s)
        ring_free(&ring)
    return True


cdef void gradient_item(const floating *x, const floating *dy, floating *partial, Ring *ring, const Spectra *s,
                        const Dims *d, Py_ssize_t c0, Py_ssize_t n0, Py_ssize_t n1, int tid) noexcept nogil:
    """spectral_filter_grad's item: the partial filter gradient (kh, kw, C) and bias gradient (C)
    of images [n0, n1), channels [c0, c0 + LANE_BLOCK), into `partial`."""
    cdef Py_ssize_t C = d.C, OW = d.OW, n, q, r, o, c, i, out_rows
    cdef Py_ssize_t *held = spectra_held(s, tid)
    cdef const void **sources = <const void **> (held + s.slots + 1)
    cdef const void **dys = sources + s.slots
    cdef char *dy_slots = spectra_sums(s, tid)
    cdef floating *pixels = <floating *> (dy_slots + DW_SPECTRAL_ROWS * s.slot_size)
    cdef Py_ssize_t pixels_row = round_up(OW * LANE_BLOCK * sizeof(floating), RING_ALIGN) // sizeof(floating)
    cdef const floating *dy_row
    cdef floating *bias = partial + d.kh * d.kw * C + c0
    if floating is not float:
        return
    memset(spectra_filters(s, tid), 0, s.filter_size)
    for c in range(LANE_BLOCK):
        bias[c] = 0
    for n in range(n0, n1):
        ring_reset(ring, tid)
        for i in range(s.slots):
            held[i] = -1
        q = 0
        while q < d.OH:
            out_rows = DW_SPECTRAL_ROWS if d.OH - q >= DW_SPECTRAL_ROWS else 1  # (each output row once)
            source_spectra(s, ring, ring_rows(ring, tid, x, d, n, q, out_rows, c0, LANE_BLOCK), q, out_rows, tid,
                           LANE_BLOCK, sources, d)
            for r in range(out_rows):
                if d.nhwc:
                    dy_row = dy + (n * d.OH + q + r) * OW * C + c0
                else:  # (the row's LANE_BLOCK planes as pixels)
                    transpose(dy + ((n * C + c0) * d.OH + q + r) * OW, d.OH * OW, pixels + r * pixels_row, LANE_BLOCK,
                              OW, LANE_BLOCK)
                    dy_row = pixels + r * pixels_row
                for o in range(OW):  # (not dot(NULL, ...) per row: 1.08x slower on 56x56x128 31x31 NHWC)
                    for c in range(LANE_BLOCK):
                        bias[c] += dy_row[o * (C if d.nhwc else LANE_BLOCK) + c]
                dw_spectral_source_float(dy_row, C if d.nhwc else LANE_BLOCK, LANE_BLOCK, &s.shape, s.shape.valid,
                                         OW, dy_slots + r * s.slot_size)
                dys[r] = dy_slots + r * s.slot_size
            dw_spectral_correlate_float(sources, dys, d.kh, out_rows, LANE_BLOCK, &s.shape, spectra_filters(s, tid))
            q += out_rows
    dw_spectral_filter_grad_float(spectra_filters(s, tid), d.kh, d.kw, LANE_BLOCK, &s.shape, partial + c0, C)
