# Rings of source rows: each source row an output row reads, copied once into a 64-byte aligned
# buffer with its padding columns filled in (zeros, or the pixels the padding mode mirrors), and
# reused by the following output rows. Rows above and below the image point at one shared zero row
# (zeros mode) or hold the row they mirror. An output row is then one uniform run of the `row`
# micro-kernel, with no tap to clip and no border code.
#
# Four layouts of a ring row, one per kind of work:
#   RING_PIXELS  NHWC: pixels of nc*M lanes, lane c*M + m holding input channel c0 + c;
#   RING_PACKED  NCHW planes transposed to pixels of nc*M lanes, lane m*nc + c holding channel c0 + c;
#                (these two kinds' pixels ring_pixel(nc*M) elements apart);
#   RING_PLANE   one NCHW plane: pixels of one element;
#   RING_PLANES  NHWC pixels of a few channels (M 1) taken apart into nc planes, plane c holding
#                channel c0 + c from element c*plane_size on: an image's channels, each then
#                filtered as an NCHW plane is.
# NCHW planes at stride 1 (3x3 kernels: and 2) can also be read in place, with no ring at all
# (FLAT_PLANES): their borders become lane masks (FlatMasks, at the end of this file; the row tiles
# of 3x3 kernels compute theirs from the tile's place).

cdef enum:
    RING_PIXELS, RING_PACKED, RING_PLANE, RING_PLANES, FLAT_PLANES
    # Ring rows start on cache lines, so that vectors of lanes aligned to their pixels are too.
    RING_ALIGN = 64
    # Ring pixels of a multiple of this many bytes take a cache line more (ring_pixel).
    PADDED_PIXEL_BYTES = 32 * RING_ALIGN
    # Interleaved rows (run as planes of W*C elements) read in place run at least this many bytes
    # of output pixels at either end from the slots: a tile of up to three vectors at any level.
    END_BYTES = 3 * RING_ALIGN
    # Packed rings that prefetch (Ring) ask for the row this many rows below the one they copy.
    PREFETCH_AHEAD = 2


cdef struct Ring:
    # Per thread, `slots` rows of `row_size` elements, slot s holding padded source row held[s]
    # (-1: none), and `span` row pointers for the output rows at hand (`out_rows` of them: kh
    # pointers for one, (out_rows - 1)*sh + kh consecutive rows for several, with dilation 1); one
    # zero row for every thread. Each thread's held[] and pointers lie on cache lines of their own
    # (`books`, book_size bytes apart): shared lines would bounce between the cores at every call.
    # A padded row holds `width` pixels: padded column p is source column p - pl. (A block of nc
    # channels has pixels of nc*M elements, a plane pixels of one; row_size fits the largest.)
    #
    # NHWC with one filter per channel (M 1) reads in place: output pixels [o_lo, o_hi), whose taps
    # all fall inside the image, read their rows straight from x (span more pointers follow the
    # slots'), and the slots hold only the padded columns [0, head_end) and [tail_start, width)
    # that the pixels before and after read; with zeros padding none at all, those pixels reading
    # x in place too, over their taps inside the image (edge_pixels). It saves a copy of every
    # source row (at stride 2, two per output row).
    # Interleaved rows (NHWC images of a few channels run as planes of W*C elements) read in place
    # the same way, the pixels before and after from the slots in every padding mode (ring_init's
    # `interleaved`). (NCHW planes read so measured 1.03-1.07x faster with 5x5 and 7x7 kernels on
    # 1080p planes, but 0.9x with 3x3, whose loads from x, 16 bytes past a cache line as NumPy's
    # may be, all split lines, and 0.6x on 256-pixel planes, a third of whose pixels the ends are.)
    #
    # A packed ring (RING_PACKED) of planes read from memory asks for each plane's row PREFETCH_AHEAD
    # below the one it copies (`prefetch`): its dozens of planes, each read a row at a time, are more
    # streams than the prefetchers follow (2 vCPUs of an AMD EPYC without AVX-512, 16x28x28x240 5x5:
    # 1.24x faster on one thread, 1.34x on two).
    int kind
    bint in_place, slotted, prefetch
    Py_ssize_t o_lo, o_hi, head_end, tail_start
    Py_ssize_t slots, span, width, row_size, plane_size, zero_size, elsize, book_size
    char *memory
    char *rows
    char *zeros
    char *book_memory
    char *books


cdef inline Py_ssize_t round_up(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return (a + b - 1) // b * b


cdef inline Py_ssize_t ring_pixel(Py_ssize_t lanes, size_t elsize) noexcept nogil:
    """The elements a ring pixel of `lanes` elements takes (RING_PIXELS, RING_PACKED): a cache line
    more where pixels of a multiple of 2 KB would put a row's pixels in 2 of L1's 64 sets (or 1),
    which a tile's dozens of lines then thrash (2 vCPUs of an AVX-512 AMD EPYC, 14x14 3x3 at batch
    16: 512 channels 28 GFLOP/s on one thread against 66 for 576; 1 KB pixels, 4 sets, as fast
    unpadded, 28x28x256 in place 0.98-1.05x the padded ring)."""
    return lanes + RING_ALIGN // elsize if lanes * elsize % PADDED_PIXEL_BYTES == 0 else lanes


cdef inline bint inner_range(Py_ssize_t pad, Py_ssize_t size, Py_ssize_t k, Py_ssize_t s, Py_ssize_t dil,
                             Py_ssize_t n_out, Py_ssize_t *lo, Py_ssize_t *hi) noexcept nogil:
    """The outputs [lo, hi) of n_out along an axis (padding `pad` before `size` sources, k taps,
    stride s, dilation dil) whose taps all fall inside the source; whether any do."""
    cdef Py_ssize_t last = pad + size - 1 - (k - 1) * dil  # the last padded index they may start at
    lo[0] = min(n_out, (pad + s - 1) // s)
    hi[0] = min(n_out, last // s + 1) if last >= 0 else 0
    return hi[0] > lo[0]


cdef inline bint inner_pixels(const Dims *d, Py_ssize_t *o_lo, Py_ssize_t *o_hi) noexcept nogil:
    """The output pixels [o_lo, o_hi) of a row whose taps all fall inside the image; whether any do."""
    return inner_range(d.pl, d.W, d.kw, d.sw, d.dil_w, d.OW, o_lo, o_hi)


cdef bint ring_init(Ring *ring, int kind, Py_ssize_t lanes, Py_ssize_t out_rows, bint in_place, const Dims *d,
                    size_t elsize, int n_threads, bint interleaved=False) noexcept nogil:
    """Fill in `ring` for rows of `lanes` elements per pixel, read by `out_rows` output rows at a
    time (several only with dilation 1), in place where it can (NHWC, M 1) and `in_place` asks;
    released by ring_free. False when out of memory. `interleaved`: the rows of an image of a few
    channels run as planes (interleaves), whose pixels before o_lo and from o_hi on run from the
    slots in every padding mode, each end whole cache lines of output pixels (END_BYTES or more)."""
    cdef Py_ssize_t pixel, line = RING_ALIGN // gcd(RING_ALIGN, d.C * elsize)  # (pixels per whole line)
    ring.kind, ring.elsize = kind, elsize
    ring.slots = (out_rows - 1) * d.sh + (d.kh - 1) * d.dil_h + 1  # the rows the output rows span
    ring.span = (out_rows - 1) * d.sh + d.kh
    ring.width = (d.OW - 1) * d.sw + (d.kw - 1) * d.dil_w + 1
    ring.in_place = ring.prefetch = False
    ring.head_end, ring.tail_start = ring.width, ring.width
    if in_place and kind == RING_PIXELS and d.M == 1:
        ring.in_place = inner_pixels(d, &ring.o_lo, &ring.o_hi)
        if interleaved:
            ring.o_lo = round_up(max(ring.o_lo, ceil_div(END_BYTES, d.C * elsize)), line)
            ring.o_hi = min(ring.o_hi, d.OW - ceil_div(END_BYTES, d.C * elsize)) // line * line
            ring.in_place = ring.in_place and ring.o_lo < ring.o_hi
        if ring.in_place and d.mode == ZEROS and not interleaved:  # (edge_pixels reads those pixels in place too)
            ring.head_end = 0
        elif ring.in_place:
            ring.head_end = (ring.o_lo - 1) * d.sw + (d.kw - 1) * d.dil_w + 1 if ring.o_lo > 0 else 0
            ring.tail_start = ring.o_hi * d.sw if ring.o_hi < d.OW else ring.width
    ring.slotted = ring.head_end > 0 or ring.tail_start < ring.width
    # (a stride-2 plane vector reads one element past its last pixel: one more element per row)
    ring.plane_size = round_up((ring.width + 1) * elsize, RING_ALIGN) // elsize
    if kind == RING_PLANES:
        ring.row_size = lanes * ring.plane_size
    else:
        # (room for the pixels of any block up to `lanes`, padded by ring_pixel where one can be)
        pixel = lanes + RING_ALIGN // elsize if lanes * elsize >= PADDED_PIXEL_BYTES else lanes
        ring.row_size = round_up((ring.width * pixel + 1) * elsize, RING_ALIGN) // elsize
    ring.zero_size = max(ring.row_size, d.W * d.C if ring.in_place else 0) * elsize
    ring.memory = <char *> malloc(RING_ALIGN + (n_threads * ring.slots * ring.row_size * elsize if ring.slotted else 0))
    ring.zeros = <char *> calloc(ring.zero_size, 1)
    ring.book_size = round_up(ring.slots * sizeof(Py_ssize_t) + 2 * ring.span * sizeof(void *), RING_ALIGN)
    ring.book_memory = <char *> malloc(RING_ALIGN + n_threads * ring.book_size)
    ring.rows = <char *> round_up(<Py_ssize_t> ring.memory, RING_ALIGN)
    ring.books = <char *> round_up(<Py_ssize_t> ring.book_memory, RING_ALIGN)
    return ring.memory != NULL and ring.zeros != NULL and ring.book_memory != NULL


cdef void ring_free(Ring *ring) noexcept nogil:
    free(ring.memory)
    free(ring.zeros)
    free(ring.book_memory)
    ring.memory = NULL
    ring.zeros = NULL
    ring.book_memory = NULL


cdef void ring_watch(bint on, const Ring *ring, const Dims *d, int n_threads) noexcept nogil:
    """Debug builds: register (on) or retire the ring's rows, which the micro-kernels read and
    fill_slot writes."""
    watch_one(on, ring.zeros, ring.zero_size, False)
    if ring.slotted:
        watch_one(on, ring.rows, n_threads * ring.slots * ring.row_size * ring.elsize, True)


cdef inline Py_ssize_t *ring_held(const Ring *ring, int tid) noexcept nogil:
    """Thread `tid`'s held[] (its row pointers follow)."""
    return <Py_ssize_t *> (ring.books + tid * ring.book_size)


cdef inline void ring_reset(Ring *ring, int tid) noexcept nogil:
    """Forget what thread `tid`'s slots hold (a new image or block of channels)."""
    cdef Py_ssize_t *held = ring_held(ring, tid)
    cdef Py_ssize_t s
    for s in range(ring.slots):
        held[s] = -1


cdef inline void copy(floating *dst, Py_ssize_t dst_pix, const floating *src, Py_ssize_t src_pix, Py_ssize_t npix,
                      Py_ssize_t nc) noexcept nogil:
    if floating is float:
        dw_copy_float(dst, dst_pix, src, src_pix, npix, nc)
    else:
        dw_copy_double(dst, dst_pix, src, src_pix, npix, nc)


cdef void copy_columns(const Ring *ring, floating *dst, const floating *x, const Dims *d, Py_ssize_t n,
                       Py_ssize_t r, Py_ssize_t col0, Py_ssize_t ncols, Py_ssize_t c0, Py_ssize_t nc) noexcept nogil:
    """Source columns [col0, col0+ncols) of row r of image n, channels [c0, c0+nc), to consecutive
    ring pixels from dst on, in the ring's layout; integer pixels widened to float (NHWC rings and
    planes, M 1)."""
    cdef Py_ssize_t C = d.C, M = d.M, pix = ring_pixel(nc * M, sizeof(floating)), p, c, m
    cdef const floating *src
    if ring.kind == RING_PLANES:  # (each pixel's channels to their planes)
        if d.x_type == DW_ELEM_FLOAT:
            transpose(x + ((n * d.H + r) * d.W + col0) * C + c0, C, dst, ring.plane_size, nc, ncols)
        elif floating is float:
            dw_widen(dst, 1, ring.plane_size, element_at(x, ((n * d.H + r) * d.W + col0) * C + c0, d.x_type,
                                                          sizeof(float)), d.x_type, C, ncols, nc)
        return
    if d.x_type != DW_ELEM_FLOAT:
        if floating is float:
            if ring.kind == RING_PIXELS:
                dw_widen(dst, pix, 1, element_at(x, ((n * d.H + r) * d.W + col0) * C + c0, d.x_type, sizeof(float)),
                         d.x_type, C, ncols, nc)
            else:
                dw_widen(dst, ncols, 1, element_at(x, ((n * C + c0) * d.H + r) * d.W + col0, d.x_type, sizeof(float)),
                         d.x_type, ncols, 1, ncols)
        return
    if ring.kind == RING_PIXELS:
        src = x + ((n * d.H + r) * d.W + col0) * C + c0
        if M == 1:
            copy(dst, pix, src, C, ncols, nc)
        else:  # (debug builds: the copy micro-kernel checks itself; this loop is checked here)
            dw_bounds_span("copy_columns: x", src, ((ncols - 1) * C + nc) * sizeof(floating), False)
            dw_bounds_span("copy_columns: ring", dst, ((ncols - 1) * pix + nc * M) * sizeof(floating), True)
            for p in range(ncols):
                for c in range(nc):
                    for m in range(M):
                        dst[p * pix + c * M + m] = src[p * C + c]
    else:
        src = x + ((n * C + c0) * d.H + r) * d.W + col0
        if ring.kind == RING_PLANE:
            copy(dst, ncols, src, ncols, 1, ncols)
        else:
            for m in range(M):
                transpose(src, d.H * d.W, dst + m * nc, pix, ncols, nc)
            if ring.prefetch and r + PREFETCH_AHEAD < d.H:
                for c in range(nc):
                    dw_prefetch(src + c * d.H * d.W + PREFETCH_AHEAD * d.W, ncols * sizeof(floating))


cdef void fill_columns(const Ring *ring, floating *slot, const floating *x, const Dims *d, Py_ssize_t n,
                       Py_ssize_t r, Py_ssize_t c0, Py_ssize_t nc, Py_ssize_t p0, Py_ssize_t p1) noexcept nogil:
    """Padded columns [p0, p1) of a slot from source row r (inside the image) of image n, channels
    [c0, c0+nc)."""
    cdef bint planar = ring.kind == RING_PLANE or ring.kind == RING_PLANES
    cdef Py_ssize_t pix = 1 if planar else ring_pixel(nc * d.M, ring.elsize)
    cdef Py_ssize_t p, c
    cdef Py_ssize_t first = min(max(d.pl, p0), p1), last = max(min(d.pl + d.W, p1), first)
    if last > first:
        copy_columns(ring, slot + first * pix, x, d, n, r, first - d.pl, last - first, c0, nc)
    if d.mode == ZEROS:
        for c in range(nc if ring.kind == RING_PLANES else 1):
            memset(slot + c * ring.plane_size + p0 * pix, 0, (first - p0) * pix * sizeof(floating))
            memset(slot + c * ring.plane_size + last * pix, 0, (p1 - last) * pix * sizeof(floating))
        return
    for p in range(p0, first):
        copy_columns(ring, slot + p * pix, x, d, n, r, padded_source(p - d.pl, d.W, d.mode), 1, c0, nc)
    for p in range(last, p1):
        copy_columns(ring, slot + p * pix, x, d, n, r, padded_source(p - d.pl, d.W, d.mode), 1, c0, nc)


cdef void fill_slot(const Ring *ring, floating *slot, const floating *x, const Dims *d, Py_ssize_t n,
                    Py_ssize_t r, Py_ssize_t c0, Py_ssize_t nc) noexcept nogil:
    """The padded row from source row r (inside the image) of image n, channels [c0, c0+nc): the
    columns that are read from the slot."""
    if not ring.in_place:
        fill_columns(ring, slot, x, d, n, r, c0, nc, 0, ring.width)
        return
    fill_columns(ring, slot, x, d, n, r, c0, nc, 0, ring.head_end)
    fill_columns(ring, slot, x, d, n, r, c0, nc, max(ring.head_end, ring.tail_start), ring.width)


cdef const floating **ring_rows(Ring *ring, int tid, const floating *x, const Dims *d, Py_ssize_t n, Py_ssize_t q,
                                Py_ssize_t out_rows, Py_ssize_t c0, Py_ssize_t nc) noexcept nogil:
    """The rows that output rows [q, q+out_rows) of image n read (channels [c0, c0+nc)): kh rows
    for one, (out_rows - 1)*sh + kh consecutive rows for several (dilation 1); filling the slots of
    thread `tid` that do not hold them yet. When the ring reads in place, the rows of x (from
    channel 0) follow, from pointer span on."""
    cdef Py_ssize_t *held = ring_held(ring, tid)
    cdef const floating **pointers = <const floating **> (held + ring.slots)
    cdef const floating **sources = pointers + ring.span
    cdef Py_ssize_t a, p, r, slot = q * d.sh % ring.slots - d.dil_h  # (one division per call, not one per row)
    cdef floating *slot_row
    for a in range((out_rows - 1) * d.sh + d.kh):
        p = q * d.sh + a * d.dil_h  # padded row, held in slot p % slots
        slot += d.dil_h
        if slot >= ring.slots:
            slot -= ring.slots
        r = p - d.pt
        if r < 0 or r >= d.H:
            if d.mode == ZEROS:
                pointers[a] = sources[a] = <const floating *> ring.zeros
                continue
            r = padded_source(r, d.H, d.mode)
        if ring.in_place:
            sources[a] = x + (n * d.H + r) * d.W * d.C
        if not ring.slotted:
            continue
        slot_row = <floating *> (ring.rows + ((tid * ring.slots + slot) * ring.row_size) * ring.elsize)
        if held[slot] != p:
            fill_slot(ring, slot_row, x, d, n, r, c0, nc)
            held[slot] = p
        pointers[a] = slot_row
    return pointers


# ----------------------------------------------------------------------------------------------
# Flat planes: NCHW planes read in place, the borders as lane masks
#
# At stride 1, with output planes as wide as the input's, output pixel o of a plane (row-major)
# reads, for tap t, source element o + off[t] of its plane, the same offset for every pixel. Where
# the tap falls in the padding (zeros only), that element belongs to a neighbouring row or lies
# outside the plane: bit o of tap t's bitmap is clear, and the flat-plane micro-kernel neither reads
# it nor adds it.

cdef struct FlatMasks:
    Py_ssize_t *off  # off[t]: tap t's source element, relative to the output pixel's index
    unsigned char *bits  # tap t's bitmap at bits + t*row_bytes: bit o at byte o / 8, bit o % 8
    Py_ssize_t row_bytes


cdef inline void set_bits(unsigned char *bits, Py_ssize_t begin, Py_ssize_t end) noexcept nogil:
    """Set bits [begin, end)."""
    while begin < end and begin % 8:
        bits[begin // 8] |= 1 << (begin % 8)
        begin += 1
    if end - begin >= 8:
        memset(bits + begin // 8, 0xFF, (end - begin) // 8)
        begin += (end - begin) // 8 * 8
    while begin < end:
        bits[begin // 8] |= 1 << (begin % 8)
        begin += 1


cdef inline void clear_bits(unsigned char *bits, Py_ssize_t begin, Py_ssize_t end) noexcept nogil:
    """Clear bits [begin, end) (a few)."""
    while begin < end:
        bits[begin // 8] &= ~(1 << (begin % 8))
        begin += 1


cdef bint flat_masks_init(FlatMasks *f, const Dims *d) noexcept nogil:
    """Each tap's offset and bitmap for geometry d (stride 1, OW == W, zeros padding); released by
    flat_masks_free. False when out of memory."""
    cdef Py_ssize_t a, b, t, oy, oy0, oy1, lo, hi, n_taps = d.kh * d.kw
    # (the micro-kernel reads the bits of whole tiles of vectors: up to 32 past the last pixel)
    f.row_bytes = round_up(d.OH * d.OW // 8 + 5, 8)
    f.off = <Py_ssize_t *> malloc(n_taps * sizeof(Py_ssize_t))
    f.bits = <unsigned char *> calloc(n_taps * f.row_bytes, 1)
    if f.off == NULL or f.bits == NULL:
        return False
    for a in range(d.kh):
        for b in range(d.kw):
            t = a * d.kw + b
            f.off[t] = (a * d.dil_h - d.pt) * d.W + b * d.dil_w - d.pl
            lo = max(0, d.pl - b * d.dil_w)  # the output columns whose tap column lies in the image
            hi = min(d.OW, d.W + d.pl - b * d.dil_w)
            oy0 = min(max(0, d.pt - a * d.dil_h), d.OH)  # the output rows whose tap row does
            oy1 = max(min(d.OH, d.H + d.pt - a * d.dil_h), oy0)
            if lo >= hi:
                continue
            # (the rows' bits all set in one run, then each row's few columns in the padding
            # cleared: a run per row took 6% of a one-thread batch-1 call on 112-pixel planes,
            # measured before their 3x3 kernels took the row tiles, which need no masks)
            set_bits(f.bits + t * f.row_bytes, oy0 * d.OW, oy1 * d.OW)
            for oy in range(oy0, oy1):
                clear_bits(f.bits + t * f.row_bytes, oy * d.OW, oy * d.OW + lo)
                clear_bits(f.bits + t * f.row_bytes, oy * d.OW + hi, (oy + 1) * d.OW)
    return True


cdef void flat_masks_free(FlatMasks *f) noexcept nogil:
    free(f.off)
    free(f.bits)
    f.off = NULL
    f.bits = NULL
