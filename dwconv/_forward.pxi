# The forward pass: scheduling of work items over rings (_rings.pxi) and the `row` micro-kernel.
#
# A work item is (image, block of channels, band of output rows). Its thread fills a ring with the
# source rows of the band as it goes down it, and computes each output row in one micro-kernel call.
# Four plans, by layout, stride, kernel size and plane width:
#   NHWC          rings of pixels; the output row is written in place;
#   flat planes   NCHW at stride 1 with small kernels (3x3): no ring and no item bands; each plane
#                 read in place as one flat run, the borders as lane masks (_microkernels_flat.h);
#                 3x3 kernels on planes a vector wide, at stride 1 or 2, and 5x5 and 7x7 at
#                 stride 1, in row tiles (flat_rows), 3x3 on narrower planes a row (or two
#                 planes' rows) to a vector; planes of a few dozen pixels a vector's worth at a
#                 time, each vector's lanes pixels of several planes (flat_groups);
#   packed NCHW   planes up to PACKED_FORWARD_WIDTH wide with a vector's worth of channels: source
#                 rows transposed once each into a ring of pixels; the band's output goes to the
#                 thread's scratch and is transposed back into the planes;
#   wide planes   one ring per plane, several output rows per call with vectors along the rows,
#                 each source vector loaded once for all of them (wider planes and few channels:
#                 a 1080p RGB blur 5x faster than packed);
#   interleaved   NHWC images of a few channels (images filtered channel by channel): each row
#                 one plane of W*C elements, its taps C apart, run as wide planes are, each lane
#                 weighted by its channel (one weight a tap where the filter serves every
#                 channel); float rows read in place but for their ends (from the ring's slots);
#                 the output rows written in place.
# The gradients share this machinery: at stride 1 the input gradient is a forward pass over dy
# (forward_input_grad), and the filter gradient of flat planes reduces over their lane masks
# (flat_filter_grad); at stride 2, NCHW planes of 3x3 kernels are read in place by both gradients
# along their rows (strided_input_grad, flat_filter_grad); at strides over 1, NHWC input gradients
# run phase by phase, each phase's pixels a forward row over dy (phase_input_grad).

cdef enum:
    # Threads get about this many items each, so that uneven items still balance (more cost more:
    # each item refills its ring).
    ITEMS_PER_THREAD = 2
    # NHWC rings are cut into channel blocks above this size (bytes), to stay in L2.
    RING_BYTES = 1 << 18
    # Channel blocks are whole multiples of this many channels (whole vectors at every level), and
    # hold at least MIN_BLOCK channels.
    LANE_BLOCK = 16
    MIN_BLOCK = 64
    # Threads share an NHWC image by bands of rows, or by channel blocks where each block holds at
    # least this many channels: a block reads part of every pixel, and the L2 prefetcher, which
    # streams whole rows, fetches the rest too (measured on 2 cores of an AVX-512 Xeon at batch 1:
    # bands 1.5-1.7x faster on mnv2-56x144 and -28x192, whose blocks held 64 to 80 channels; blocks
    # of 144 and 240 channels 1.0-1.2x faster than bands on mnv2-14x576 and -7x960).
    SHARED_BLOCK = 128
    # Packed NCHW blocks hold about this many elements per source row (channels x plane width, in
    # LANE_BLOCK to PACKED_CHANNELS channels): each channel's row is a stream of its own, and past
    # a few dozen streams from DRAM the prefetchers fall behind (measured at batch 16, 16 channels
    # against 128: mnv2-56x144 1.3-1.5x faster, mnv2-28x192 at 32 channels 1.2x; the 7- and
    # 14-pixel planes keep their 128 and 64).
    PACKED_ROW_LANES = 1024
    # Packed NCHW bands hold about this many output pixels: each band transposes kh - 1 source rows
    # again, and its scratch (this many pixels of 16 to 128 lanes) stays in L2 (measured against
    # the backward's 512: 1.1-1.45x faster on the suite's 28- to 112-pixel planes; 4096 no faster).
    PACKED_BAND_PIXELS = 2048
    # NCHW outputs at most this wide take the packed path when they have LANE_BLOCK channels or more,
    # or are too narrow for a plane vector (measured on 2 cores of an AVX-512 Xeon, batch 1 and 16:
    # packed 1.1-4x faster on every suite shape, mnv2-112x32 included; the plane path 1.1-1.5x
    # faster on 224-pixel planes and on fewer than 16 channels, 5x on a 3-channel image).
    PACKED_FORWARD_WIDTH = 128
    PLANE_MIN_WIDTH = 16
    # NCHW planes at stride 1 with kernels of at most this many taps are read in place (flat
    # planes, one masked load per tap and vector) where they would be packed, and wider planes too
    # from this many channels (measured on 2 cores of an AVX-512 Xeon against the packed and plane
    # paths: 1.03-1.47x faster on every 3x3 suite shape at batch 1 and 16, 224-pixel planes of 32
    # to 64 channels 1.1-1.7x; slower on 5x5 kernels, 0.7-0.9x, and on 16 channels of 160-pixel or
    # wider planes, 0.9x).
    FLAT_MAX_TAPS = 9
    FLAT_WIDE_CHANNELS = 32
    # The filter gradient reads flat planes in place for kernels of up to DW_FLAT_DOT_MAX_TAPS taps
    # (25: flat_dot, 9 taps a pass), where the packed path transposes x's and dy's planes (a third
    # of its time) and wider planes have only the row-by-row reduction (2 vCPUs of an AVX-512 AMD
    # EPYC, batch 16, 5x5 against those paths: 28x28x240 (effnet) 1.1-1.35x faster, 14x14x480 1.6x,
    # 7x7x960 1.3-2x, 32x32x128 1.9x; 80x80x64 3.6x, 112x112x32 2.5-3x, 224x224x32 at batch 4 2.5x;
    # 48- to 60-pixel planes 0.9-1.1x. 7x7 kernels 0.55-0.9x: they keep the packed path. At AVX-512,
    # 5x5 and 7x7 run along the rows instead: dot_shifted_fits.)
    # At AVX2 (8 lanes, masked loads that cost more), kernels past 3x3 read flat planes in place for
    # their filter gradient only on rows this wide or wider (2 vCPUs of an AVX2 AMD EPYC, one thread,
    # 5x5 in place against the other paths: 14x14x480 0.85x, 28x28x240 0.8x, 56x56x64 0.7x, 7x7x960
    # 1.0x; 112x112x32 1.7x faster).
    FLAT_DOT_AVX2_WIDTH = 96
    # Flat planes of at most this many pixels run in groups of a vector's worth of planes
    # (flat_groups: its DW_FLAT_GROUP_PIXELS), every lane computing a pixel where a plane alone
    # leaves the last vector's lanes idle (49 pixels in 64 lanes), where the call has this many
    # planes (images x channels), for which the groups' masks, built once per call, are worth it
    # (2 vCPUs of an AVX-512 AMD EPYC, against the flat path, 3x3: at batch 16, 7x7 planes of 32
    # channels 1.15x faster, 96 1.24x, 160 1.17x, 5x5 of 256 1.17x, 8x8 of 128 1.0x; at batch 1,
    # 7x7 of 16 and 64 channels 0.87x and 0.92x, 8x8 of 128 0.83x, 7x7 of 160 and 320 1.0x; earlier,
    # masks built by each work item: 7x7 of 960 at batch 16 1.24x, 6x6 of 1024 1.33x).
    GROUP_MAX_PIXELS = 64
    # Planes of up to this many pixels (DW_FLAT_GROUP_PIXELS) run in groups too where the taps lie
    # within a vector of the pixel and a batch fills tiles of images (groups_fit: 14x14x576 3x3 at
    # batch 16 1.07-1.15x faster than in row tiles; at batch 1, one image at a time, 0.8x).
    GROUP_NEAR_PIXELS = 256
    GROUP_MIN_PLANES = 320
    # Plane groups' items hold this many images (or the batch's last ones), which their kernel takes
    # a tile at a time for each vector of a group (flat_group_images, flat_group_near: 2 vCPUs of an
    # AVX-512 AMD EPYC, 7x7x960 3x3 at batch 16, against one image per item: 1.18x faster on one
    # thread, 1.12-1.2x on two, at 42% of the FMA peak, which the permutes that pick each tap's
    # lanes bound; 7x7x1024 1.2x, 8x8x512 1.09x).
    GROUP_IMAGES = 8
    # NHWC rows read in place compute their edge pixels (those with a tap in the padding) apart,
    # each tap of each loading its weights and source anew (edge_pixels): rows are read in place
    # where those are at most 1/IN_PLACE_EDGE_SHARE of the row, else copied whole (2 vCPUs of an
    # AVX-512 AMD EPYC, 3x3, in place against copied whole: 14x14x576 at batch 16 1.24x faster,
    # 10x10x576 1.1x, 7x7x960 1.03x but 0.88x at batch 1); in batches of IN_PLACE_BATCH images or
    # more, at most 1/IN_PLACE_BATCH_EDGE_SHARE (2 vCPUs of a Zen 5 EPYC, 7x7x960 at batch 16
    # 1.23x faster in place, its input gradient 1.16x; batch 4 1.0x, batch 1 on two threads 0.87x).
    IN_PLACE_EDGE_SHARE = 5
    IN_PLACE_BATCH = 8
    IN_PLACE_BATCH_EDGE_SHARE = 3
    IN_PLACE_MAX_TAPS = 9  # (at stride 1: see plan_init)
    HALF_LINE_RING_WIDTH = 28  # (see HALF_LINE_RING_CHANNELS)
    # NHWC rows read in place from memory ask for the next output row's new source rows a piece of
    # about this many bytes at a time, each before a piece of the row's pixels (of this many pixels
    # or more: smaller calls' tiles cost more than the requests save).
    PREFETCH_PIECE_BYTES = 4096
    PREFETCH_PIECE_PIXELS = 4
    # The most kernel columns an edge pixel of a row read in place may have inside the image for
    # edge_columns (its array of column pointers); wider kernels' edge pixels go one by one.
    EDGE_COLUMN_TAPS = 8
    # NHWC images of fewer channels than this (M 1) with kernels of this many taps or more, that the
    # interleaved rows do not take (SHARED_MAX_CHANNELS), are filtered channel by channel, each a
    # plane (RING_PLANES), where the taps outweigh taking the pixels apart and putting them back
    # together; RGB images with any kernel, whose pixels the micro-kernels take apart in shuffles
    # (measured on 2 vCPUs of an AVX-512 AMD EPYC against the stream path, on 1080p and 128x256
    # images: RGB 3x3 1.03-1.23x faster, 5x5 1.18-1.68x, 7x7 1.19-1.67x, 11x11 1.17-1.61x, 21x21
    # 1.29-2.19x; RGBA 7x7 1.05-1.17x, 11x11 1.14-1.39x, 21x21 1.56-2.13x, but 3x3 and 5x5
    # 0.54-0.96x).
    PLANAR_MAX_CHANNELS = 16
    PLANAR_MIN_TAPS = 49
    # NHWC images of at most this many channels (M 1, stride 1 along the rows) are filtered as planes
    # of W*C elements with taps C apart (interleaves): no channel taken apart, no output transposed
    # back. Where the filter is the same for every channel (shares_taps), each tap is one weight
    # (2 vCPUs of an AVX-512 AMD EPYC, one thread, 1080p, against the planes and pixel rings: RGB
    # 3x3 1.38x faster, 5x5 1.22x, 7x7 1.14x, 11x11 1.1x, 21x21 1.07x; RGBA 3x3 1.54x, 5x5 1.3x, 7x7
    # 1.23x; uint8 RGB 3x3 1.22x, 5x5 1.13x; 960x540, 8 channels 5x5 1.16x); else each lane gets its
    # channel's weight, where the plane-rows tiles take those lanes (dw_plane_lane_tiles; 2 threads,
    # against the planes and pixel rings: 1080p RGB 3x3 1.5x, RGBA 3x3 1.7x, 5x5 1.15x, 7x7
    # 1.1-1.6x, 2 channels 5x5 1.5x, 7x7 1.6x, uint8 RGB 3x3 1.2x; 960x540, 6 channels 3x3 1.3x, 8
    # channels 3x3 1.8x, 5x5 1.2x, 7x7 1.13x, 12 channels 3x3 1.9x). Not 16 channels, a whole vector
    # a pixel, which the channel tiles ran 1.1-1.3x faster, shared filter or not.
    SHARED_MAX_CHANNELS = 12
    # Elements per work item of convert(): items of 128-256 KB, a few per thread on small arrays.
    CONVERT_PIECE = 1 << 15


cdef inline void plane_call(const floating *const *rows, Py_ssize_t off, Py_ssize_t out_rows, const Dims *d,
                            const floating *w, Py_ssize_t w_tap, const floating *bias, Py_ssize_t nc, floating *dst,
                            Py_ssize_t dst_row, bint streaming) noexcept nogil:
    """`out_rows` output rows (DW_PLANE_ROWS, or 1) of a plane of geometry d, dst_row apart, from
    their ring rows: with nc > 1, the rows of an image of nc interleaved channels, each weighted by
    its own (d's pixels their elements, its taps nc elements apart: plane_rows)."""
    if out_rows > 1:
        if floating is float:
            dw_plane_rows_float(rows, off, d.kh, d.kw, d.sh, d.sw, d.dil_w, w, w_tap, bias, nc, dst, dst_row, d.OW,
                                streaming)
        else:
            dw_plane_rows_double(rows, off, d.kh, d.kw, d.sh, d.sw, d.dil_w, w, w_tap, bias, nc, dst, dst_row, d.OW,
                                 streaming)
    elif floating is float:
        dw_row_float(rows, off, nc, d.kh, d.kw, d.sw, d.dil_w // nc, w, w_tap, bias, dst, nc, d.OW // nc, nc,
                     streaming)
    else:
        dw_row_double(rows, off, nc, d.kh, d.kw, d.sw, d.dil_w // nc, w, w_tap, bias, dst, nc, d.OW // nc, nc,
                      streaming)


cdef inline void ring_call(const Ring *ring, const floating *const *rows, Py_ssize_t out_rows, const Dims *d,
                           const floating *w, Py_ssize_t w_tap, const floating *bias, Py_ssize_t nc, floating *dst,
                           Py_ssize_t dst_row, bint streaming) noexcept nogil:
    """plane_call over a call's interleaved rows from the ring (d: the rows as a plane of W*C
    elements); where the ring reads in place, the output pixels before o_lo and from o_hi on from
    its slots, those between from the source rows."""
    cdef Py_ssize_t pix = d.C  # (the elements of a pixel)
    cdef Dims part = d[0]
    if not ring.in_place:
        plane_call(rows, 0, out_rows, d, w, w_tap, bias, nc, dst, dst_row, streaming)
        return
    part.OW = (ring.o_hi - ring.o_lo) * pix
    plane_call(rows + ring.span, (ring.o_lo - d.pl) * pix, out_rows, &part, w, w_tap, bias, nc, dst + ring.o_lo * pix,
               dst_row, streaming)
    part.OW = ring.o_lo * pix
    plane_call(rows, 0, out_rows, &part, w, w_tap, bias, nc, dst, dst_row, streaming)
    part.OW = d.OW - ring.o_hi * pix
    plane_call(rows, ring.o_hi * pix, out_rows, &part, w, w_tap, bias, nc, dst + ring.o_hi * pix, dst_row, streaming)


cdef inline void flat(const floating *src, Py_ssize_t src_plane, const FlatMasks *f, const Dims *d,
                      const floating *w, Py_ssize_t w_plane, Py_ssize_t w_tap, const floating *bias,
                      Py_ssize_t bias_plane, floating *dst, Py_ssize_t dst_plane, Py_ssize_t n_planes,
                      bint streaming) noexcept nogil:
    if floating is float:
        dw_flat_float(src, src_plane, f.off, f.bits, f.row_bytes, d.kh * d.kw, w, w_plane, w_tap, bias, bias_plane,
                      dst, dst_plane, d.OH * d.OW, n_planes, streaming)
    else:
        dw_flat_double(src, src_plane, f.off, f.bits, f.row_bytes, d.kh * d.kw, w, w_plane, w_tap, bias, bias_plane,
                       dst, dst_plane, d.OH * d.OW, n_planes, streaming)


cdef inline void flat_rows(const floating *src, Py_ssize_t src_plane, const Dims *d, const floating *w,
                           Py_ssize_t w_plane, Py_ssize_t w_tap, const floating *bias, Py_ssize_t bias_plane,
                           floating *dst, Py_ssize_t dst_plane, Py_ssize_t n_planes, bint streaming) noexcept nogil:
    if floating is float:  # (rows_fit: float only)
        dw_flat_rows_float(src, src_plane, d.H, d.W, d.pt, d.pl, d.kh, d.sw, w, w_plane, w_tap, bias, bias_plane, dst,
                           dst_plane, d.OH, d.OW, n_planes, streaming)


cdef inline void flat_groups(const floating *src, const dw_flat_group *group, const Dims *d, const floating *w,
                             const floating *bias, floating *dst, Py_ssize_t n_planes, Py_ssize_t n_images,
                             bint streaming) noexcept nogil:
    if floating is float:  # (groups_fit: float only)
        dw_flat_groups_float(src, group, d.H * d.W, d.kh * d.kw, w, d.C, bias, dst, n_planes, n_images,
                             d.C * d.H * d.W, streaming)


cdef inline void flat_dot(const floating *src, Py_ssize_t src_plane, Py_ssize_t src_image, const FlatMasks *f,
                          Py_ssize_t n_taps, const floating *dy, Py_ssize_t dy_plane, Py_ssize_t dy_image,
                          floating *acc, Py_ssize_t acc_tap, floating *bias_acc, Py_ssize_t npix, Py_ssize_t n_planes,
                          Py_ssize_t n_images) noexcept nogil:
    if floating is float:
        dw_flat_dot_float(src, src_plane, src_image, f.off, f.bits, f.row_bytes, n_taps, dy, dy_plane, dy_image, acc,
                          acc_tap, bias_acc, npix, n_planes, n_images)
    else:
        dw_flat_dot_double(src, src_plane, src_image, f.off, f.bits, f.row_bytes, n_taps, dy, dy_plane, dy_image, acc,
                           acc_tap, bias_acc, npix, n_planes, n_images)


cdef inline void row(const floating *const *rows, Py_ssize_t off, Py_ssize_t src_pix, const Dims *d,
                     const floating *w, Py_ssize_t w_tap, const floating *bias, floating *dst,
                     Py_ssize_t dst_pix, Py_ssize_t npix, Py_ssize_t nc, bint streaming) noexcept nogil:
    if npix <= 0:
        return
    if floating is float:
        dw_row_float(rows, off, src_pix, d.kh, d.kw, d.sw, d.dil_w, w, w_tap, bias, dst, dst_pix, npix, nc, streaming)
    else:
        dw_row_double(rows, off, src_pix, d.kh, d.kw, d.sw, d.dil_w, w, w_tap, bias, dst, dst_pix, npix, nc, streaming)


cdef void edge_pixels(const floating *const *rows, const Dims *d, Py_ssize_t q, Py_ssize_t o0, Py_ssize_t o1,
                      Py_ssize_t c0, Py_ssize_t nc, const floating *w, const floating *bias, floating *out,
                      Py_ssize_t pix, bint streaming) noexcept nogil:
    """Output pixels [o0, o1) of output row q, channels [c0, c0+nc), from the kh `rows` of x read
    in place (NHWC, M 1, zeros padding): each over only the taps whose source pixels lie in the
    image, the others adding zeros; `out` holds the row's pixels, `pix` apart."""
    cdef Py_ssize_t a0, b0, o, nb, kh, off
    cdef Py_ssize_t na = taps_inside(q * d.sh - d.pt, d.dil_h, d.kh, d.H, &a0)
    for o in range(o0, o1):
        nb = taps_inside(o * d.sw - d.pl, d.dil_w, d.kw, d.W, &b0) if na else 0
        kh, off = (na if nb else 0), (o * d.sw - d.pl + b0 * d.dil_w) * d.C + c0
        if floating is float:
            dw_row_edge_float(rows + a0, off, d.dil_w * d.C, kh, nb, w + (a0 * d.kw + b0) * d.C, d.kw * d.C, d.C, bias,
                              out + o * pix, nc, streaming)
        else:
            dw_row_edge_double(rows + a0, off, d.dil_w * d.C, kh, nb, w + (a0 * d.kw + b0) * d.C, d.kw * d.C, d.C,
                               bias, out + o * pix, nc, streaming)


cdef bint columns_fit(const Dims *d, bint in_place, Py_ssize_t *q_lo, Py_ssize_t *q_hi) noexcept nogil:
    """Whether NHWC rows read in place (`in_place`) compute their edge pixels as columns
    (edge_columns): zeros padding, float results (converted ones are narrowed row by row), output rows
    [q_lo, q_hi) whose kernel rows all fall inside the image, and edge pixels each with 1 to
    EDGE_COLUMN_TAPS kernel columns inside it."""
    cdef Py_ssize_t o_lo, o_hi, o, b0, nb
    if not (in_place and d.mode == ZEROS and d.y_type == DW_ELEM_FLOAT
            and inner_range(d.pt, d.H, d.kh, d.sh, d.dil_h, d.OH, q_lo, q_hi) and inner_pixels(d, &o_lo, &o_hi)):
        return False
    for o in range(d.OW):
        nb = taps_inside(o * d.sw - d.pl, d.dil_w, d.kw, d.W, &b0)
        if (o < o_lo or o >= o_hi) and not 0 < nb <= EDGE_COLUMN_TAPS:
            return False
    return True


cdef const floating *columns_major(const floating *w, const Dims *d) noexcept nogil:
    """A new copy of the filter w (kh, kw, C; M 1) as (kw, kh, C), for the caller to free; NULL
    when out of memory."""
    cdef floating *turned = <floating *> malloc(d.kh * d.kw * d.C * sizeof(floating))
    cdef Py_ssize_t a, b
    if turned != NULL:
        for a in range(d.kh):
            for b in range(d.kw):
                memcpy(turned + (b * d.kh + a) * d.C, w + (a * d.kw + b) * d.C, d.C * sizeof(floating))
    return turned


cdef void edge_columns(const floating *x, const Dims *d, const floating *w_columns, Py_ssize_t n, Py_ssize_t q0,
                       Py_ssize_t q1, Py_ssize_t o0, Py_ssize_t o1, Py_ssize_t c0, Py_ssize_t nc,
                       const floating *bias, floating *y, bint streaming) noexcept nogil:
    """Output pixels [o0, o1) of output rows [q0, q1) of image n, channels [c0, c0+nc), rows whose
    kernel rows all fall inside the image (columns_fit): each output column one `row` call down the
    image, its kernel columns inside the image as the call's kernel rows, x read in place. Each
    weight is then loaded once per column, not once per pixel as edge_pixels loads it (2 vCPUs of
    an AVX-512 AMD EPYC, 14x14x576 3x3 at batch 16: the edges 2x faster, the call 1.11-1.13x)."""
    cdef const floating *columns[EDGE_COLUMN_TAPS]
    cdef Dims t = d[0]  # the geometry of a column as a row: the kernel on its side
    cdef Py_ssize_t o, b0, j
    if q1 <= q0:
        return
    t.kw, t.sw, t.dil_w = d.kh, d.sh, d.dil_h
    for o in range(o0, o1):
        t.kh = taps_inside(o * d.sw - d.pl, d.dil_w, d.kw, d.W, &b0)
        for j in range(t.kh):
            columns[j] = x + (n * d.H * d.W + o * d.sw - d.pl + (b0 + j) * d.dil_w) * d.C
        row(columns, (q0 * d.sh - d.pt) * d.W * d.C + c0, d.W * d.C, &t, w_columns + b0 * d.kh * d.C + c0, d.C,
            offset(bias, c0), y + ((n * d.OH + q0) * d.OW + o) * d.C + c0, d.OW * d.C, q1 - q0, nc, streaming)


# The bytes of the last-level cache this process can count on (dwconv._cache), read once.
cdef Py_ssize_t LAST_LEVEL_CACHE_BYTES = last_level_cache_bytes()

# Results larger than this are written with streaming stores: larger than half the last-level
# cache, they would not be found there by the next layer anyway, and ordinary stores would first
# read every line in (measured on 2 vCPUs of an AVX-512 Xeon at batch 16, streaming against plain
# stores: 1.03-1.42x faster from 7 MB results up, NHWC mnv2-56x144 1.42x, effnet 1.32x; 0.93x on
# 3 MB).
cdef Py_ssize_t STREAMING_BYTES = LAST_LEVEL_CACHE_BYTES // 2


cdef inline bint tiles_streamed() noexcept nogil:
    """Whether results that tiles write a vector to each of several lines at a time (NHWC channel
    tiles: a vector of each of several pixels before the next vector of channels; transposed
    tiles: a vector to each of several planes' rows; interleaved images' plane-rows tiles: two or
    three vectors to each of several rows) stream: where a vector fills a cache line (AVX-512). At
    AVX2 a tile leaves 8-12 lines half-written until the next, and streamed they ran
    1.2-1.5x faster than plain stores one minute and 1.5-4.5x slower the next (2 vCPUs of an AMD
    EPYC without AVX-512, in one process: 16x112x112x32 3x3 NHWC forward 2.35 against 2.92 ms,
    then 6.7-7.3 against 3.6-3.9; the NHWC input gradient of 112x112x96 at stride 2, 4.8 MB, 0.26
    against 0.20, then 1.11-1.13 against 0.25-0.32; 16x28x28x240 5x5 NCHW, packed, 6.8 against
    4.6; filter2d of 1080p RGBA images, 5 runs of 5 each, 3x3 3.6 against 2.7 ms, 5x5 8.1 against
    6.3, 7x7 14.7 against 10.2; 1080p and 4K RGB 1.0-1.1x); plain stores never ran far from their
    best. (Rows of fewer channels than a vector that run as one stream, and NCHW row tiles, stream
    along the rows, a line filled by consecutive tiles; NHWC channel tiles of two vectors a pixel
    stream at AVX2 too: line_tiles.)"""
    return dw_vector_bytes() >= RING_ALIGN


cdef inline bint line_tiles(const Dims *d, size_t elsize) noexcept nogil:
    """Whether the channel tiles of geometry d write each output pixel's cache lines whole where a
    vector is half a line (dw_row_lines: float pixels of whole lines, 3x3 kernels at strides 1 and
    2 or the general tile's), so that their results may stream where tiles_streamed says others may
    not (2 vCPUs of an AVX2 AMD EPYC, 16x112x112x32 NHWC forward, 3 processes: streamed 2.25-2.84 ms
    against plain stores' 2.56-3.40, where the single-vector tiles streamed took 6.8-6.9)."""
    return row_lines(d.kh, d.kw, d.sw, d.dil_w, d.C * d.M, d.OW, elsize)


cdef inline bint row_lines(Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sw, Py_ssize_t dil_w, Py_ssize_t nc,
                           Py_ssize_t npix, size_t elsize) noexcept nogil:
    """dw_row_lines at this level: rows of float elements where a vector is half a line."""
    return 2 * dw_vector_bytes() == RING_ALIGN and elsize == sizeof(float) and dw_row_lines(kh, kw, sw, dil_w, nc, npix)


cdef inline bint whole_lines(Py_ssize_t plane, Py_ssize_t band, size_t elsize) noexcept nogil:
    """Whether vectors transposed into planes of `plane` elements, in bands of `band`, fill cache
    lines of their own, and so may be streamed (a line of streamed and plain stores mixed ran 2.5x
    slower than plain stores alone), where tiles stream at all (tiles_streamed)."""
    return plane * elsize % RING_ALIGN == 0 and band * elsize % RING_ALIGN == 0 and tiles_streamed()


# Inputs larger than this are read from memory, not from the last-level cache: NHWC rows read in
# place, or interleaved (images of a few channels), ask for the source rows of the next output
# rows while the micro-kernels compute the present ones (prefetch_rows). The prefetchers alone left
# the reads at about half the copy bandwidth (2 vCPUs of an AVX-512 AMD EPYC, against none: batch
# 16, mnv2-112x96-s2 1.1-1.2x faster, -112x32 1.06-1.22x, -56x144 1.13-1.2x; 1080p RGB 5x5 1.09x,
# uint8 3x3 1.4x, 4K RGB 5x5 1.23x; at batch 1, inputs in the cache, 0.9x; the rings that copy
# every source row, 5x5 and 7x7 at batch 16, 0.9-0.94x). Packed NCHW rings ask for their planes'
# rows ahead as they copy them (Ring's `prefetch`).
cdef Py_ssize_t PREFETCH_BYTES = LAST_LEVEL_CACHE_BYTES


cdef inline bint x_from_memory(const Dims *d, size_t float_size) noexcept nogil:
    """Whether x is larger than PREFETCH_BYTES: read from memory rather than the last-level cache."""
    return d.N * d.H * d.W * d.C * element_size(d.x_type, float_size) > PREFETCH_BYTES


def set_streaming_bytes(Py_ssize_t nbytes):
    """Stream results larger than `nbytes` from now on (tests and benchmarks); returns the old limit."""
    global STREAMING_BYTES
    old, STREAMING_BYTES = STREAMING_BYTES, nbytes
    return old


# Where a vector is half a cache line (AVX2), NHWC rows of this many channels or more and at least
# HALF_LINE_RING_WIDTH output pixels go through the ring at stride 1, and at stride 2 when x is
# larger than the last-level cache: each source row copied as one stream, which the prefetchers
# follow, then read by the tiles from L1 and L2, beat the tiles' half lines read in place (2 vCPUs
# of an AVX2 AMD EPYC, 2 threads, against in place: batch 16, mnv2-112x96-s2 1.35-1.7x faster,
# -56x144 1.13-1.4x, its input gradient 1.27x, -28x192 1.22x; batch 1, -28x192 1.3x, -56x144
# 1.08x. Not -112x32, 32 channels: 1.36x slower at batch 1, the same at 16; nor -112x96-s2 at
# batch 1, 0.94x; nor narrower rows: -14x576's input gradient at batch 16 0.75x, -7x960 1.0x.)
cdef Py_ssize_t HALF_LINE_RING_CHANNELS = 64


def set_prefetch_bytes(Py_ssize_t nbytes):
    """Ask for the next rows of inputs larger than `nbytes` from now on (tests); returns the old limit."""
    global PREFETCH_BYTES
    old, PREFETCH_BYTES = PREFETCH_BYTES, nbytes
    return old


def set_half_line_ring_channels(Py_ssize_t channels):
    """Take NHWC rows of `channels` or more through the ring where a vector is half a cache line
    from now on (tests); returns the old count."""
    global HALF_LINE_RING_CHANNELS
    old, HALF_LINE_RING_CHANNELS = HALF_LINE_RING_CHANNELS, channels
    return old


cdef inline bint flat_fits(const Dims *d, Py_ssize_t max_taps=FLAT_MAX_TAPS) noexcept nogil:
    """Whether NCHW geometry d reads its planes in place (flat planes): stride 1, output planes as
    wide as the input's, zeros padding, kernels of at most `max_taps` taps (the forward's, or the
    filter gradient's DW_FLAT_DOT_MAX_TAPS), and where measured faster than packing or plane rows."""
    return (not d.nhwc and dw_has_flat() and d.sh == 1 and d.sw == 1 and d.OW == d.W and d.mode == ZEROS
            and d.kh * d.kw <= max_taps
            and (d.C >= FLAT_WIDE_CHANNELS
                 or d.OW <= PACKED_FORWARD_WIDTH and (d.C >= LANE_BLOCK or d.OW < PLANE_MIN_WIDTH)))


cdef inline bint flat_dot_fits(const Dims *d) noexcept nogil:
    """Whether the filter gradient of NCHW geometry d reads its planes in place, 9 taps a pass
    (flat_dot): flat_fits to DW_FLAT_DOT_MAX_TAPS taps, at AVX2 past 3x3 on rows of FLAT_DOT_AVX2_WIDTH
    or more only."""
    return (flat_fits(d, DW_FLAT_DOT_MAX_TAPS)
            and (d.kh * d.kw <= FLAT_MAX_TAPS or dw_vector_bytes() != 32 or d.OW >= FLAT_DOT_AVX2_WIDTH))


cdef inline bint dot_shifted_fits(const Dims *d) noexcept nogil:
    """Whether the float32 filter gradient of NCHW geometry d runs its planes along the rows, 5x5
    kernels and 7x7 on rows more than half a vector wide, of dilation 1, read in place (AVX-512's
    flat_dot_shifted; flat_fits). (7x7 on 7x7x768 at batch 16, a strip's lanes half idle: 0.96x
    the packed path.)"""
    return (dw_has_dot_shifted() and flat_fits(d, 49) and d.kh == d.kw and d.dil_h == 1 and d.dil_w == 1
            and (d.kh == 5 or d.kh == 7 and 2 * d.OW * sizeof(float) > <size_t> dw_vector_bytes()))


cdef inline bint rows_fit(const Dims *d, size_t elsize) noexcept nogil:
    """Whether NCHW geometry d runs its planes in place in row tiles (flat_rows): float32, square
    kernels of dilation 1, zeros padding, output planes as high as a tile or more and a vector wide
    (64 bytes: every level's); 3x3 kernels at stride 1 or 2, at stride 1 on narrow planes
    (narrow_rows_fit: a row to a vector, or two planes' to one); at stride 2 and AVX-512, 3x3 and
    5x5 kernels on output rows that fill more than half a vector (9-15 pixels: a vector each; 2 vCPUs
    of an AVX-512 AMD EPYC, 3x3 on 28x28x192 at batch 1 and 16 1.9-2.3x faster than packed, one
    plane of 7-pixel rows to a vector 0.9-0.95x), and 3x3 on rows of 5-8 pixels two planes to a
    vector (dw_narrow_s2_pairs: 14x14x576 1.5-1.9x faster); 5x5 at stride 1 and 2 and 7x7 at stride
    1, at AVX-512, where the tiles' vectors fill the rows (tiles_fill, wide_tiles_fill). (float64
    keeps the other paths: its tiles would add 30 KB of code to a package near its size bound.)"""
    return (not d.nhwc and dw_has_flat() and elsize == sizeof(float) and d.kh == d.kw and d.dil_h == 1
            and d.dil_w == 1 and d.sh == d.sw and d.mode == ZEROS
            and d.OH >= (DW_FLAT_ROWS_5 if d.kh == 5 and d.sh == 1 else DW_FLAT_ROWS)
            and (d.kh == 3 and d.sh <= 2 and (d.OW * elsize >= 64 or narrow_rows_fit(d, elsize))
                 or rolling_fits(d, elsize)
                 or (d.kh == 3 or d.kh == 5) and d.sh == 2 and dw_has_wide_row_tiles()
                 and (2 * d.OW * elsize > 64 and d.OH >= DW_FLAT_ROWS_NARROW_S2
                      or d.kh == 3 and dw_narrow_s2_pairs(d.W, d.pl, d.OW))
                 or d.kh == 5 and d.sh <= 2 and dw_has_wide_row_tiles() and tiles_fill(d.OW, elsize)
                 or d.kh == 7 and d.sh == 1 and dw_has_wide_row_tiles() and wide_tiles_fill(d.OW)))


cdef inline bint rolling_fits(const Dims *d, size_t elsize) noexcept nogil:
    """Whether NCHW geometry d runs a plane at a time from top to bottom in the forward and the input
    gradient (AVX2's flat_rolling; rolling_geometry)."""
    return dw_has_rolling() and rolling_geometry(d, elsize)


cdef inline bint rolling_geometry(const Dims *d, size_t elsize) noexcept nogil:
    """Whether NCHW geometry d fits the planes run a plane at a time from top to bottom (flat_rolling,
    flat_dot_rolling): float32 3x3 kernels of dilation 1 at stride 1, zeros padding, a pixel of it
    around planes more than half a vector wide, output planes as high as a row tile (DW_FLAT_ROWS)
    or more."""
    return (not d.nhwc and elsize == sizeof(float) and d.kh == 3 and d.kw == 3 and d.sh == 1
            and d.sw == 1 and d.dil_h == 1 and d.dil_w == 1 and d.mode == ZEROS and d.OH >= DW_FLAT_ROWS
            and dw_rolling_fits(d.H, d.W, d.pt, d.pl, d.OH, d.OW, dw_vector_bytes() // elsize))


cdef inline bint tiles_fill(Py_ssize_t OW, size_t elsize) noexcept nogil:
    """Whether AVX-512's row tiles (vectors of 64 bytes, two per tile) compute 7/8 of their lanes or
    more on rows of OW elements: where 5x5 kernels run faster in them than packed (2 vCPUs of an
    AVX-512 AMD EPYC, against the packed path: planes of 28, 56 and 112 pixels, 7/8 and whole,
    1.05-1.3x faster at batch 1 and 16; 40 pixels, 5/6, 0.98-1.07x; 24 and 20, 3/4 and 5/8,
    0.8-0.9x)."""
    cdef Py_ssize_t lanes = 64 // elsize
    cdef Py_ssize_t computed = lanes if OW <= lanes else round_up(max(OW, 2 * lanes), lanes)
    return OW >= lanes and 8 * OW >= 7 * computed


cdef inline bint wide_tiles_fill(Py_ssize_t OW) noexcept nogil:
    """Whether the 7x7 row tiles (DW_WIDE_ROW_PIXELS, 56 pixels a tile) compute 6/7 of their lanes
    or more on rows of OW pixels: where they run faster than packed (2 vCPUs of an AVX-512 AMD EPYC,
    one thread, against the packed path: planes of 56 pixels 1.2x faster at batch 1, 1.33x at 16;
    of 96, 112, 150 and 224 pixels 1.09-1.41x at batch 4; of 48, 6/7, 1.0x; of 28, 40 and 64
    pixels, 1/2 to 5/7, 0.64-0.82x)."""
    return 7 * OW >= 6 * round_up(OW, DW_WIDE_ROW_PIXELS)


cdef inline bint groups_fit(const Dims *d, size_t elsize) noexcept nogil:
    """Whether flat NCHW geometry d (flat_fits) runs its planes in groups of a vector's worth
    (flat_groups): float32, M 1, whole groups of LANE_BLOCK channels (every level's vector divides
    it), GROUP_MIN_PLANES planes or more, output planes the input's size, of GROUP_MAX_PIXELS pixels
    or fewer; or of up to GROUP_NEAR_PIXELS in GROUP_IMAGES images or more, where the taps lie within
    DW_FLAT_GROUP_NEAR elements of the pixel and AVX-512 picks them from aligned vectors (flat_group_near)."""
    cdef Py_ssize_t nearest = -d.pt * d.W - d.pl  # (the first tap's offset, then the last's)
    cdef Py_ssize_t farthest = ((d.kh - 1) * d.dil_h - d.pt) * d.W + (d.kw - 1) * d.dil_w - d.pl
    return (elsize == sizeof(float) and d.M == 1 and d.C % LANE_BLOCK == 0 and d.N * d.C >= GROUP_MIN_PLANES
            and d.OH == d.H and d.OW == d.W
            and (d.H * d.W <= GROUP_MAX_PIXELS
                 or d.H * d.W <= GROUP_NEAR_PIXELS and d.N >= GROUP_IMAGES and dw_has_near_groups()
                 and nearest >= -DW_FLAT_GROUP_NEAR and farthest <= DW_FLAT_GROUP_NEAR))


cdef inline bint narrow_fits(const Dims *d, size_t elsize) noexcept nogil:
    """Whether NCHW geometry d's planes run a row to a vector (the forward's narrow_tile, the filter
    gradient's flat_dot_narrow): float32, 3x3 kernels of dilation 1 at stride 1, zeros padding, and
    rows narrower than the active level's vectors with room past them for the taps' rotations (the
    row and its left padding, the output row and its right, each within a vector)."""
    cdef Py_ssize_t lanes = dw_narrow_lanes()
    return (not d.nhwc and elsize == sizeof(float) and d.kh == 3 and d.kw == 3 and d.sh == 1 and d.sw == 1
            and d.dil_h == 1 and d.dil_w == 1 and d.mode == ZEROS and 0 <= d.pl <= 2
            and dw_narrow_rows_within(d.W, d.pl, d.OW, lanes) and d.OH > 0 and d.OW > 0)


cdef inline Py_ssize_t narrow_slot(const Dims *d) noexcept nogil:
    """The lanes a row of narrow planes (narrow_fits) runs in: half an AVX-512 vector where rows and
    their padding fit one (two planes to a vector: narrow_pairs), else a vector."""
    cdef Py_ssize_t lanes = dw_narrow_lanes()
    return lanes // 2 if lanes == 16 and dw_narrow_rows_within(d.W, d.pl, d.OW, lanes // 2) else lanes


cdef inline bint narrow_rows_fit(const Dims *d, size_t elsize) noexcept nogil:
    """Whether NCHW geometry d runs in row tiles of narrow planes (narrow_fits): a row to a vector on
    planes more than half a vector wide (64 bytes), or at AVX-512 two planes' rows to one where they
    fill 3/4 of their half or more (2 vCPUs of an AVX-512 AMD EPYC, 3x3, against plane groups at
    batch 16: 7x7 of 256 and 960 channels 1.1-1.25x faster, 6x6 of 512 1.15x; 5x5 and 4x4 0.9x and
    0.68x; at batch 1 7x7 of 960 1.56x)."""
    cdef Py_ssize_t slot = narrow_slot(d)
    return narrow_fits(d, elsize) and (2 * d.OW * elsize > 64 if slot == dw_narrow_lanes() else 4 * d.W >= 3 * slot)


cdef inline bint converts(const Dims *d) noexcept nogil:
    """Whether the input or the result holds integer pixels or half floats, which only NHWC rings and
    plane rings convert (the flat and packed plans read or write the arrays directly)."""
    return d.x_type != DW_ELEM_FLOAT or d.y_type != DW_ELEM_FLOAT


cdef int planes_kind(const Dims *d, size_t elsize) noexcept nogil:
    """The plan for NCHW planes of float elements: FLAT_PLANES, RING_PACKED or RING_PLANE (see
    plan_init)."""
    if flat_fits(d) or (d.sh == 2 or d.kh > 3) and rows_fit(d, elsize) and d.C >= LANE_BLOCK:
        # (stride 2, 5x5 and 7x7 kernels in row tiles where the packed path would run: 2 vCPUs of an
        # AVX-512 AMD EPYC, mnv2-112x96-s2, 1.4-1.8x faster at batch 1, 1.2-1.3x at batch 16;
        # effnet-28x240 5x5 1.0x at batch 1 on one thread, 1.07x on two, 1.15-1.2x at batch 16;
        # convnext-56x96 7x7 1.2x at batch 1, 1.3x at batch 16, on one thread and two)
        return FLAT_PLANES
    if d.OW <= PACKED_FORWARD_WIDTH and (d.C >= LANE_BLOCK or d.OW < PLANE_MIN_WIDTH):
        return RING_PACKED
    return RING_PLANE


def converts_itself(g):
    """Whether the float32 forward of geometry g reads and writes uint8, uint16, int16 or float16
    pixels itself at float32's speed: NHWC rings, which copy every row anyway, and the NCHW planes
    that plane rings take in float32 too. Other NCHW planes are converted around the float32 path:
    plane rings would trade its flat or packed plans for theirs (2 vCPUs of an AVX-512 AMD EPYC,
    float16 3x3 at batch 16 through plane rings against converted around: 14x14x576 11x slower,
    56x56x144 1.0x, 112x112x32 1.36x faster)."""
    cdef Dims d = dims_of(g)
    return d.nhwc and d.C * d.M > 1 or planes_kind(&d, sizeof(float)) == RING_PLANE


cdef struct Plan:
    int kind  # the ring's layout: RING_PIXELS or RING_PLANES (NHWC), RING_PACKED or RING_PLANE (NCHW)
    bint streaming  # results written with streaming stores
    bint in_place  # NHWC rings read the inner pixels' rows in place (see Ring)
    # In place with zeros padding: the edge pixels of output rows [q_lo, q_hi), whose kernel rows
    # all fall inside the image, as columns (edge_columns), from the filter with its kernel
    # columns major (kw, kh, C); NULL where they go pixel by pixel (edge_pixels)
    const void *w_columns
    Py_ssize_t q_lo, q_hi
    Py_ssize_t block, n_blocks, band_rows, n_bands
    Py_ssize_t item_images  # images per work item: GROUP_IMAGES (plane groups, the last item fewer) or 1
    Py_ssize_t out_rows  # output rows per micro-kernel call (several: NCHW planes of dilation 1)
    Py_ssize_t max_block  # channels in the largest block (the last is the largest or the smallest)
    # each thread's scratch: packed NCHW, one band's output; NHWC planes and integer results, one
    # call's; and (packed NCHW) the filter and bias with their channels multiplier-major (kh, kw, M,
    # C), as the ring's lanes are
    Py_ssize_t out_bytes
    void *scratch
    const void *w_mc
    const void *bias_mc
    FlatMasks flat  # flat planes: each tap's offset and lane masks
    bint flat_rows  # flat planes in row tiles (rows_fit), which need no masks
    bint flat_groups  # flat planes in groups (groups_fit)
    dw_flat_group group  # what the groups share: their taps' offsets and lane masks
    bint prefetch  # NHWC rows of every channel read in place, or interleaved, ask for the next
    # call's new source rows (prefetch_rows); packed rings for their planes' rows ahead (Ring)
    Py_ssize_t prefetch_pieces  # (rows in place, not interleaved) the pieces of an output row (prefetch_rows's)
    bint interleaved  # RING_PIXELS of a few channels (interleaves): rows run as `row_plane`
    Dims row_plane  # (interleaved) the geometry of one row as a plane of W*C elements, its taps C apart
    Py_ssize_t lane_channels  # (interleaved) C, each lane weighted by its channel; 1 for a shared filter
    bint spectral  # RING_PIXELS and RING_PACKED rows through `spectra` (_spectral.pxi) rather than `row`
    Spectra spectra


cdef inline Py_ssize_t ceil_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return (a + b - 1) // b


cdef void prefetch_rows(const floating *x, const Dims *d, Py_ssize_t n, Py_ssize_t q, Py_ssize_t out_rows,
                        Py_ssize_t piece=0, Py_ssize_t n_pieces=1) noexcept nogil:
    """Ask the caches for the source rows of image n that output rows [q, q + out_rows) read and
    output row q - 1 did not (in NHWC: rows of every channel), to come in while the rows before
    them are computed: piece `piece` of n_pieces of each row, whole cache lines."""
    cdef Py_ssize_t row_bytes = d.W * d.C * element_size(d.x_type, sizeof(floating))
    cdef Py_ssize_t r = max(0, (q - 1) * d.sh + (d.kh - 1) * d.dil_h - d.pt + 1)
    cdef Py_ssize_t last = min(d.H - 1, (q + out_rows - 1) * d.sh + (d.kh - 1) * d.dil_h - d.pt)
    cdef Py_ssize_t begin = row_bytes * piece // n_pieces // RING_ALIGN * RING_ALIGN
    cdef Py_ssize_t end = (row_bytes * (piece + 1) // n_pieces // RING_ALIGN * RING_ALIGN if piece + 1 < n_pieces
                           else row_bytes)
    while r <= last:
        dw_prefetch(element_at(x, (n * d.H + r) * d.W * d.C, d.x_type, sizeof(floating)) + begin, end - begin)
        r += 1


cdef inline bint interleaves(const Dims *d) noexcept nogil:
    """Whether d is an NHWC image of a few channels (1 < C <= SHARED_MAX_CHANNELS, M 1, stride 1
    along the rows), whose rows may run as planes of W*C elements."""
    return d.nhwc and d.M == 1 and 1 < d.C <= SHARED_MAX_CHANNELS and d.sw == 1 and d.OW * d.C >= PLANE_MIN_WIDTH


cdef bint shares_taps(const floating *w, const floating *bias, const Dims *d) noexcept nogil:
    """Whether the filter w, and bias, are the same for every channel: an image filter."""
    cdef Py_ssize_t tap, c
    for tap in range(d.kh * d.kw):
        for c in range(1, d.C):
            if w[tap * d.C + c] != w[tap * d.C]:
                return False
    if bias != NULL:
        for c in range(1, d.C):
            if bias[c] != bias[0]:
                return False
    return True


cdef bint plan_init(Plan *plan, const floating *w, const floating *bias, const Dims *d, int act,
                    int n_threads) noexcept nogil:
    """Choose the plan's work items for geometry d (allocations released by plan_free); False when
    out of memory. Each image gets enough items for the threads to share (rows first: a band shares
    its ring's rows; channel blocks where rows run short or the ring would leave L2)."""
    cdef Py_ssize_t C = d.C, M = d.M, CM = d.C * d.M, n_taps = d.kh * d.kw, wanted, max_blocks, ring_bytes, block
    cdef Py_ssize_t lanes, o_lo, o_hi, spectral_size
    cdef int kind = RING_PLANE if d.nhwc or converts(d) else planes_kind(d, sizeof(floating))
    cdef bint narrow, few_channels
    cdef floating *w_mc
    plan.scratch = plan.w_columns = NULL
    plan.flat.off, plan.flat.bits = NULL, NULL
    plan.flat_rows = plan.flat_groups = False
    plan.spectra.memory = NULL
    plan.w_mc, plan.bias_mc = w, bias
    plan.out_bytes = 0
    plan.out_rows = 1
    plan.item_images = 1
    # In place at strides over 1, where the ring would copy several source pixels per output pixel
    # (measured on 2 cores of an AVX-512 Xeon: mnv2-112x96-s2 1.13x faster at batch 16, 1.2x at
    # batch 1), and for small kernels, whose few taps per pixel leave the copy a third of the time
    # (2 vCPUs of an AVX-512 AMD EPYC, 3x3: mnv2-112x32 and -28x192 1.17-1.25x faster at batch 16,
    # mnv2-56x144 1.03x, and 1.12x at batch 1); not where the edge pixels are too many
    # (IN_PLACE_EDGE_SHARE). At stride 1 the ring's rows, which start on cache lines, win for 5x5
    # and 7x7 kernels where x does not: 28x28x240 5x5 at batch 16 in place 0.94x, 56x56x96 7x7
    # 0.86x, x starting 16 bytes past a cache line, as NumPy's arrays may (on one: 0.99x, 1.0x).
    # Nor where x's pixels are a multiple of 2 KB, whose rows the ring pads (ring_pixel): 14x14x512
    # 3x3 at batch 16 1.55x faster through the ring.
    # Nor at AVX2 for many channels (HALF_LINE_RING_CHANNELS).
    plan.in_place = (d.nhwc and d.M == 1 and d.x_type == DW_ELEM_FLOAT and (d.sw > 1 or n_taps <= IN_PLACE_MAX_TAPS)
                     and ring_pixel(C, sizeof(floating)) == C
                     and inner_pixels(d, &o_lo, &o_hi)
                     and d.OW >= (IN_PLACE_BATCH_EDGE_SHARE if d.N >= IN_PLACE_BATCH else IN_PLACE_EDGE_SHARE)
                     * (d.OW - (o_hi - o_lo))
                     and not (dw_vector_bytes() < RING_ALIGN and C >= HALF_LINE_RING_CHANNELS
                              and d.OW >= HALF_LINE_RING_WIDTH
                              and (d.sw == 1 or x_from_memory(d, sizeof(floating)))))
    wanted = 1 if n_threads == 1 else ceil_div(ITEMS_PER_THREAD * n_threads, d.N)  # items per image
    # (a filter that differs by channel too, where the plane-rows tiles take its lanes: see
    # SHARED_MAX_CHANNELS)
    few_channels = interleaves(d)
    plan.lane_channels = 1 if few_channels and shares_taps(w, bias, d) else C
    plan.interleaved = few_channels and (plan.lane_channels == 1 or floating is float and d.dil_h == 1
                                         and d.OH >= DW_PLANE_ROWS and dw_plane_lane_tiles(C, d.kh, d.kw, d.sh, d.sw))
    if plan.interleaved:
        plan.kind = RING_PIXELS
        # Float rows in place but for their ends, where the rows are wide enough (ring_init): the
        # ring's copy of each row took a fifth of the time (2 vCPUs of an AVX-512 AMD EPYC, 1080p,
        # against the ring: RGBA 5x5 1.4x faster, RGB 5x5 1.3x, 3x3 1.2x, 4K RGB 3x3 1.3x, 7x7 1.15x;
        # 1.0-1.1x where y's rows lie within a few lines of x's modulo 4 KB: 4K aliasing)
        plan.in_place = d.x_type == DW_ELEM_FLOAT
        plan.n_blocks, plan.block = 1, C
        plan.n_bands = wanted
        plan.row_plane = d[0]
        plan.row_plane.dil_w, plan.row_plane.OW = d.dil_w * C, d.OW * C
        if d.dil_h == 1 and d.OH >= DW_PLANE_ROWS:
            plan.out_rows = DW_PLANE_ROWS
            plan.n_bands = min(plan.n_bands, d.OH // DW_PLANE_ROWS)  # bands of whole calls
    elif (d.nhwc and d.M == 1 and C < PLANAR_MAX_CHANNELS and (n_taps >= PLANAR_MIN_TAPS or C == 3)
            and d.OW >= PLANE_MIN_WIDTH):
        plan.kind = RING_PLANES
        plan.n_blocks, plan.block = 1, C
        plan.n_bands = wanted
        if d.dil_h == 1 and d.OH >= DW_PLANE_ROWS:
            plan.out_rows = DW_PLANE_ROWS
            plan.n_bands = min(plan.n_bands, d.OH // DW_PLANE_ROWS)  # bands of whole calls
    elif d.nhwc:
        # Channel blocks as the ring's size asks, or of SHARED_BLOCK channels or more for the
        # threads (unlike bands, they copy no source row twice); then bands.
        plan.kind = RING_PIXELS
        ring_bytes = ((d.kh - 1) * d.dil_h + 1) * ((d.OW - 1) * d.sw + (d.kw - 1) * d.dil_w + 1) * CM * sizeof(floating)
        max_blocks = max(1, C // MIN_BLOCK)
        plan.n_blocks = min(max_blocks, max(ceil_div(ring_bytes, RING_BYTES), min(wanted, C // SHARED_BLOCK)))
        plan.block = round_up(ceil_div(C, plan.n_blocks), LANE_BLOCK) if plan.n_blocks > 1 else C
        plan.n_blocks = ceil_div(C, plan.block)
        plan.n_bands = max(1, min(ceil_div(wanted, plan.n_blocks), ceil_div(d.OH, 2)))  # bands of 2 rows or more
    elif kind == FLAT_PLANES:
        plan.kind = FLAT_PLANES
        # (planes of more than GROUP_MAX_PIXELS whose rows fill 3/4 of a vector or more run a row to
        # a vector rather than in groups: 2 vCPUs of an AVX-512 AMD EPYC, batch 16, 3x3: 14x14x576
        # 1.43x faster, 15x15 and 12x12 of 256 channels 1.6x and 1.27x; 11x11, 10x10 and 9x9 0.93x,
        # 0.83x and 0.65x. Smaller planes in row tiles, rows_fit's, are not grouped either: 7x7 and
        # 6x6 two planes to a vector, narrow_rows_fit)
        narrow = (narrow_fits(d, sizeof(floating)) and d.H * d.W > GROUP_MAX_PIXELS
                  and 4 * d.W >= 3 * dw_narrow_lanes())
        plan.flat_groups = (groups_fit(d, sizeof(floating)) and not narrow
                            and (d.H * d.W > GROUP_MAX_PIXELS or not rows_fit(d, sizeof(floating))))
        plan.flat_rows = not plan.flat_groups and (rows_fit(d, sizeof(floating)) or narrow)
        if plan.flat_groups:  # (items of GROUP_IMAGES images, in as many blocks of channels as make enough)
            plan.item_images = GROUP_IMAGES
            if n_threads > 1:
                wanted = ceil_div(ITEMS_PER_THREAD * n_threads, ceil_div(d.N, GROUP_IMAGES))
        plan.n_blocks = min(C, wanted)
        plan.block = ceil_div(C, plan.n_blocks)
        if plan.flat_groups:  # (blocks of whole groups)
            plan.block = round_up(plan.block, LANE_BLOCK)
            dw_flat_group_masks_float(d.H, d.W, d.kh, d.kw, d.dil_h, d.dil_w, d.pt, d.pl, &plan.group)
        plan.n_blocks = ceil_div(C, plan.block)
        plan.n_bands = 1
    elif kind == RING_PACKED:
        plan.kind = RING_PACKED
        block = min(PACKED_CHANNELS, max(LANE_BLOCK, PACKED_ROW_LANES // d.OW // LANE_BLOCK * LANE_BLOCK))
        plan.n_blocks = max(1, C // block)
        plan.block = block if plan.n_blocks > 1 else C
        plan.n_bands = max(ceil_div(wanted, plan.n_blocks), ceil_div(d.OH * d.OW, PACKED_BAND_PIXELS))
    else:
        plan.kind = RING_PLANE
        plan.n_blocks = ceil_div(C, PLANE_BLOCK)
        plan.block = PLANE_BLOCK
        plan.n_bands = ceil_div(wanted, plan.n_blocks)
        if d.dil_h == 1 and d.OH >= DW_PLANE_ROWS:
            plan.out_rows = DW_PLANE_ROWS
            plan.n_bands = min(plan.n_bands, d.OH // DW_PLANE_ROWS)  # bands of whole calls
    spectral_size = (spectral_length(d, sizeof(floating), SPECTRAL_MIN_TAPS_PACKED) if plan.kind == RING_PACKED
                     else spectral_length(d, sizeof(floating), SPECTRAL_MIN_TAPS)
                     if plan.kind == RING_PIXELS and not plan.interleaved else 0)
    plan.spectral = spectral_size > 0
    if plan.spectral:  # (blocks of a vector's worth of channels, whose spectra stay in L2; bands of whole calls)
        if not spectra_init(&plan.spectra, spectral_size, d, n_threads, False):
            return False
        plan.in_place = False
        plan.block = LANE_BLOCK
        plan.n_blocks = C // LANE_BLOCK
        plan.n_bands = ceil_div(wanted, plan.n_blocks)
        if d.OH >= DW_SPECTRAL_ROWS:
            plan.out_rows = DW_SPECTRAL_ROWS
            plan.n_bands = min(plan.n_bands, d.OH // DW_SPECTRAL_ROWS)
    plan.max_block = max(plan.block, C - (plan.n_blocks - 1) * plan.block)
    plan.prefetch = (((plan.in_place or plan.interleaved) and plan.n_blocks == 1 or plan.kind == RING_PACKED)
                     and x_from_memory(d, sizeof(floating)))
    # (a row's new source rows asked for at once queued most of them behind the first: 2 vCPUs of
    # an AVX-512 AMD EPYC, batch 16, a piece of PREFETCH_PIECE_BYTES a few pixels each against one:
    # mnv2-112x96-s2 1.45x faster, -112x32 1.3x, -56x144 1.6x)
    plan.prefetch_pieces = (max(1, min(ceil_div(d.sh * d.W * C * element_size(d.x_type, sizeof(floating)),
                                                PREFETCH_PIECE_BYTES), (o_hi - o_lo) // PREFETCH_PIECE_PIXELS))
                            if plan.in_place and not plan.interleaved else 1)
    plan.band_rows = ceil_div(d.OH, min(d.OH, plan.n_bands))
    plan.n_bands = ceil_div(d.OH, plan.band_rows)
    if columns_fit(d, plan.in_place and plan.kind == RING_PIXELS and not plan.interleaved, &plan.q_lo, &plan.q_hi):
        plan.w_columns = columns_major(w, d)
        if plan.w_columns == NULL:
            return False
    # (an activation rereads the rows; packed NCHW results stream from the thread's scratch into
    # the planes)
    plan.streaming = act == IDENTITY and d.N * d.OH * d.OW * d.C * d.M * sizeof(floating) > STREAMING_BYTES
    if plan.kind == RING_PLANES or d.y_type != DW_ELEM_FLOAT:
        # Each call's results go to the thread's scratch: NHWC planes, each call's planes, then
        # (integer results) one row of pixels; integer results, the call's rows, then narrowed into y.
        plan.streaming = plan.streaming and d.y_type == DW_ELEM_FLOAT
        if plan.kind == RING_PLANES:
            lanes = (plan.out_rows + (d.y_type != DW_ELEM_FLOAT)) * C
        else:
            lanes = plan.out_rows * (plan.max_block * M if d.nhwc else 1)
        plan.out_bytes = round_up(lanes * d.OW * sizeof(floating), RING_ALIGN)
        plan.scratch = malloc(RING_ALIGN + n_threads * plan.out_bytes)
        return plan.scratch != NULL
    if plan.kind == FLAT_PLANES:
        # (a group of planes is whole vectors, whatever the planes' size. Row tiles whose rows are
        # not whole lines stream through a buffer, whose copy costs about what streaming saves on
        # results the cache could hold: they stream from twice STREAMING_BYTES, the whole cache, on
        # (2 vCPUs of a Zen 5 EPYC, batch 16, through the buffer against plain stores: 28x28x192
        # forward, 9.6 MB, 0.88-0.94x, its input gradient 0.89-0.99x; 28x28x240 5x5, 12 MB, 0.91x,
        # 0.94x; 56x56x144, 29 MB, 1.43x))
        plan.streaming = (plan.streaming and (plan.flat_groups or d.OH * d.OW * sizeof(floating) % RING_ALIGN == 0)
                          and (not plan.flat_rows or d.OW * sizeof(floating) % RING_ALIGN == 0
                               or d.N * d.OH * d.OW * d.C * d.M * sizeof(floating) > 2 * STREAMING_BYTES))
        return plan.flat_rows or plan.flat_groups or flat_masks_init(&plan.flat, d)
    if (plan.kind == RING_PLANE and d.OW * sizeof(floating) % RING_ALIGN
            or plan.interleaved and (d.OW * C * sizeof(floating) % RING_ALIGN or not tiles_streamed())
            or plan.kind == RING_PIXELS and not plan.interleaved and CM * sizeof(floating) > dw_vector_bytes()
            and CM * sizeof(floating) % dw_vector_bytes()
            or plan.kind == RING_PIXELS and not plan.interleaved and CM * sizeof(floating) >= dw_vector_bytes()
            and not (tiles_streamed() or line_tiles(d, sizeof(floating)))):
        # (rows that do not fill whole cache lines, or pixels of a vector or more that are not whole
        # vectors, would mix streamed and plain stores in a line: measured 2.5x slower than plain
        # stores alone on 56-pixel planes; at AVX-512, 960x540 NHWC 3x3 images of 20 and 24
        # channels 3.9x and 2.5x, 40 channels 1.55x, 4x112x112x72 2.75x, 5x5 1.5x, 16x56x56x120 5x5
        # 1.23x; at AVX2, 12 and 20 channels 13-17x. Pixels of fewer channels than a vector run as
        # one stream along the row, its vectors on lines.)
        plan.streaming = False
    if plan.kind != RING_PACKED:
        return True
    plan.streaming = plan.streaming and whole_lines(d.OH * d.OW, plan.band_rows * d.OW, sizeof(floating))
    plan.out_bytes = round_up(plan.band_rows * d.OW * plan.max_block * M * sizeof(floating), RING_ALIGN)
    plan.scratch = malloc(RING_ALIGN + n_threads * plan.out_bytes)
    if M > 1:
        w_mc = <floating *> malloc((n_taps + 1) * CM * sizeof(floating))
        plan.w_mc = w_mc
        if w_mc != NULL:
            multiplier_major(w_mc, w, n_taps, C, M)
            if bias != NULL:
                plan.bias_mc = w_mc + n_taps * CM
                multiplier_major(w_mc + n_taps * CM, bias, 1, C, M)
    return plan.scratch != NULL and plan.w_mc != NULL


cdef void plan_free(Plan *plan, const void *w) noexcept nogil:
    free(plan.scratch)
    spectra_free(&plan.spectra)
    free(<void *> plan.w_columns)
    flat_masks_free(&plan.flat)
    if plan.w_mc != w:
        free(<void *> plan.w_mc)
    plan.scratch = plan.w_mc = plan.w_columns = NULL


cdef inline char *plan_scratch(const Plan *plan, int tid) noexcept nogil:
    """Thread `tid`'s scratch for a band's output (packed NCHW)."""
    return <char *> round_up(<Py_ssize_t> plan.scratch, RING_ALIGN) + tid * plan.out_bytes


cdef void plan_watch(bint on, const Plan *plan, const Dims *d, const void *w, size_t elsize, int n_threads) noexcept nogil:
    """Debug builds: register (on) or retire the plan's scratch and rearranged filter."""
    if plan.scratch != NULL:
        watch_one(on, plan_scratch(plan, 0), n_threads * plan.out_bytes, True)
    if plan.w_mc != w:
        watch_one(on, plan.w_mc, (d.kh * d.kw + 1) * d.C * d.M * elsize, False)
    if plan.w_columns != NULL:
        watch_one(on, plan.w_columns, d.kh * d.kw * d.C * elsize, False)
    if plan.spectral:
        spectra_watch(on, &plan.spectra, n_threads)


cdef void activate_outputs(floating *y, int act, const Dims *d, Py_ssize_t n, Py_ssize_t oh0, Py_ssize_t oh1,
                           Py_ssize_t c0, Py_ssize_t nc) noexcept nogil:
    """Apply the activation to output rows [oh0, oh1) of image n, input channels [c0, c0+nc), while
    they are in cache."""
    cdef Py_ssize_t CM = d.C * d.M, oh, ow, co
    if act == IDENTITY:
        return
    if d.nhwc:
        for oh in range(oh0, oh1):
            for ow in range(d.OW):
                activate(y + ((n * d.OH + oh) * d.OW + ow) * CM + c0 * d.M, nc * d.M, act)
    else:
        for co in range(c0 * d.M, (c0 + nc) * d.M):
            activate(y + ((n * CM + co) * d.OH + oh0) * d.OW, (oh1 - oh0) * d.OW, act)


cdef void narrow_results(floating *results, floating *y, Py_ssize_t index, Py_ssize_t y_pix, Py_ssize_t npix,
                         Py_ssize_t nc, int act, const Dims *d) noexcept nogil:
    """Elements index + p*y_pix + c (p < npix, c < nc) of the integer or half-float result y from
    the float `results` (npix*nc, in order), activated, then rounded (and integers saturated)."""
    if act != IDENTITY:
        activate(results, npix * nc, act)
    if floating is float:
        dw_narrow(element_at(y, index, d.y_type, sizeof(float)), d.y_type, y_pix, results, nc, npix, nc)


cdef void forward_item(const floating *x, const floating *w, const floating *bias, floating *y, Ring *ring,
                       const Plan *plan, int act, const Dims *d, Py_ssize_t item, int tid) noexcept nogil:
    cdef Py_ssize_t C = d.C, M = d.M, CM = d.C * d.M, OW = d.OW
    # (items image by image, a block of channels and a band each; the spectral rows' block by block)
    cdef Py_ssize_t n_groups = ceil_div(d.N, plan.item_images)
    cdef Py_ssize_t group = item // plan.n_bands % n_groups if plan.spectral else item // (plan.n_blocks * plan.n_bands)
    cdef Py_ssize_t block = item // (n_groups * plan.n_bands) if plan.spectral else item // plan.n_bands % plan.n_blocks
    cdef Py_ssize_t n = group * plan.item_images
    cdef Py_ssize_t n_images = min(plan.item_images, d.N - n)
    cdef Py_ssize_t c0 = block * plan.block
    cdef Py_ssize_t nc = C - c0 if c0 == (plan.n_blocks - 1) * plan.block else plan.block
    cdef Py_ssize_t q0 = item % plan.n_bands * plan.band_rows
    cdef Py_ssize_t q1 = min(d.OH, q0 + plan.band_rows)
    cdef Py_ssize_t q, m, c, index, pix, rows_per_call, ring_pix, image, inner0, inner1, piece, n_pieces, o0, o1
    cdef bint narrowing = d.y_type != DW_ELEM_FLOAT, prefetching
    cdef const floating **rows
    cdef const floating *w_mc = <const floating *> plan.w_mc
    cdef const floating *bias_mc = <const floating *> plan.bias_mc
    cdef floating *out
    if plan.kind == FLAT_PLANES:
        for m in range(M):
            if plan.flat_groups:  # (M 1)
                flat_groups(x + (n * C + c0) * d.H * d.W, &plan.group, d, w + c0, offset(bias, c0),
                            y + (n * C + c0) * d.OH * OW, nc, n_images, plan.streaming)
            elif plan.flat_rows:
                flat_rows(x + (n * C + c0) * d.H * d.W, d.H * d.W, d, w + c0 * M + m, M, CM, offset(bias, c0 * M + m),
                          M, y + (n * CM + c0 * M + m) * d.OH * OW, M * d.OH * OW, nc, plan.streaming)
            else:
                flat(x + (n * C + c0) * d.H * d.W, d.H * d.W, &plan.flat, d, w + c0 * M + m, M, CM,
                     offset(bias, c0 * M + m), M, y + (n * CM + c0 * M + m) * d.OH * OW, M * d.OH * OW, nc,
                     plan.streaming)
        for image in range(n, n + n_images):
            activate_outputs(y, act, d, image, 0, d.OH, c0, nc)
    elif plan.interleaved:
        ring_reset(ring, tid)
        rows_per_call = plan.out_rows if q1 - q0 >= plan.out_rows else 1
        q = q0
        while q < q1:
            q = min(q, q1 - rows_per_call)  # (the band's last call overlapping the one before)
            if plan.prefetch and q + rows_per_call < q1:
                prefetch_rows(x, d, n, q + rows_per_call, rows_per_call)
            rows = ring_rows(ring, tid, x, d, n, q, rows_per_call, 0, C)
            index = (n * d.OH + q) * OW * C
            out = <floating *> plan_scratch(plan, tid) if narrowing else y + index
            ring_call(ring, rows, rows_per_call, &plan.row_plane, w, C, bias, plan.lane_channels, out, OW * C,
                      plan.streaming)
            if narrowing:
                narrow_results(out, y, index, 0, 1, rows_per_call * OW * C, act, d)
            q += rows_per_call
        if not narrowing:
            activate_outputs(y, act, d, n, q0, q1, 0, C)
    elif plan.spectral:
        spectral_item(x, w, bias, y, ring, &plan.spectra, plan, act, d, n, c0, q0, q1, tid)
    elif plan.kind == RING_PIXELS:
        ring_reset(ring, tid)
        pix = nc * M if narrowing else CM
        ring_pix = ring_pixel(nc * M, sizeof(floating))
        for q in range(q0, q1):
            rows = ring_rows(ring, tid, x, d, n, q, 1, c0, nc)
            index = ((n * d.OH + q) * OW * C + c0) * M
            out = <floating *> plan_scratch(plan, tid) if narrowing else y + index
            if not ring.in_place:
                row(rows, 0, ring_pix, d, w + c0 * M, CM, offset(bias, c0 * M), out, pix, OW, nc * M, plan.streaming)
            else:  # the pixels before o_lo and from o_hi on from the slots or edge_pixels, those between from x
                prefetching = plan.prefetch and q + 1 < q1
                n_pieces = plan.prefetch_pieces if prefetching else 1
                for piece in range(n_pieces):  # (each after asking for its share of the next row's new rows)
                    if prefetching:
                        prefetch_rows(x, d, n, q + 1, 1, piece, n_pieces)
                    o0 = ring.o_lo + (ring.o_hi - ring.o_lo) * piece // n_pieces
                    o1 = ring.o_lo + (ring.o_hi - ring.o_lo) * (piece + 1) // n_pieces
                    row(rows + ring.span, (o0 * d.sw - d.pl) * C + c0, C, d, w + c0, C, offset(bias, c0),
                        out + o0 * pix, pix, o1 - o0, nc, plan.streaming)
                if ring.slotted:
                    row(rows, 0, ring_pix, d, w + c0, C, offset(bias, c0), out, pix, ring.o_lo, nc, plan.streaming)
                    row(rows, ring.o_hi * d.sw * ring_pix, ring_pix, d, w + c0, C, offset(bias, c0),
                        out + ring.o_hi * pix, pix, OW - ring.o_hi, nc, plan.streaming)
                elif plan.w_columns == NULL or q < plan.q_lo or q >= plan.q_hi:
                    edge_pixels(rows + ring.span, d, q, 0, ring.o_lo, c0, nc, w + c0, offset(bias, c0), out, pix,
                                plan.streaming)
                    edge_pixels(rows + ring.span, d, q, ring.o_hi, OW, c0, nc, w + c0, offset(bias, c0), out, pix,
                                plan.streaming)
            if narrowing:
                narrow_results(out, y, index, CM, OW, nc * M, act, d)
            elif plan.w_columns == NULL:
                activate_outputs(y, act, d, n, q, q + 1, c0, nc)
        if plan.w_columns != NULL:  # (the edge pixels of the band's inner rows, then its activation)
            inner0, inner1 = max(q0, plan.q_lo), min(q1, plan.q_hi)
            edge_columns(x, d, <const floating *> plan.w_columns, n, inner0, inner1, 0, ring.o_lo, c0, nc, bias, y,
                         plan.streaming)
            edge_columns(x, d, <const floating *> plan.w_columns, n, inner0, inner1, ring.o_hi, OW, c0, nc, bias, y,
                         plan.streaming)
            activate_outputs(y, act, d, n, q0, q1, c0, nc)
    elif plan.kind == RING_PLANES:
        ring_reset(ring, tid)
        out = <floating *> plan_scratch(plan, tid)  # channel c of output row j at (j*C + c)*OW
        rows_per_call = plan.out_rows if q1 - q0 >= plan.out_rows else 1
        q = q0
        while q < q1:
            q = min(q, q1 - rows_per_call)  # (the band's last call overlapping the one before)
            rows = ring_rows(ring, tid, x, d, n, q, rows_per_call, 0, C)
            for c in range(C):
                plane_call(rows, c * ring.plane_size, rows_per_call, d, w + c, C, offset(bias, c), 1, out + c * OW,
                           C * OW, False)
            for m in range(rows_per_call):  # (each output row's planes back into pixels)
                index = (n * d.OH + q + m) * OW * C
                if narrowing:
                    transpose(out + m * C * OW, OW, out + plan.out_rows * C * OW, C, OW, C)
                    narrow_results(out + plan.out_rows * C * OW, y, index, C, OW, C, act, d)
                else:
                    transpose(out + m * C * OW, OW, y + index, C, OW, C, plan.streaming)
            q += rows_per_call
        if not narrowing:
            activate_outputs(y, act, d, n, q0, q1, 0, C)
    elif plan.kind == RING_PACKED:
        ring_reset(ring, tid)
        out = <floating *> plan_scratch(plan, tid)
        ring_pix = ring_pixel(nc * M, sizeof(floating))
        for q in range(q0, q1):
            rows = ring_rows(ring, tid, x, d, n, q, 1, c0, nc)
            for m in range(M):
                row(rows, m * nc, ring_pix, d, w_mc + m * C + c0, CM, offset(bias_mc, m * C + c0),
                    out + (q - q0) * OW * nc * M + m * nc, nc * M, OW, nc, False)
        for m in range(M):
            transpose(out + m * nc, nc * M, y + ((n * CM + c0 * M + m) * d.OH + q0) * OW, M * d.OH * OW, nc,
                      (q1 - q0) * OW, plan.streaming)
        activate_outputs(y, act, d, n, q0, q1, c0, nc)
    else:
        rows_per_call = plan.out_rows if q1 - q0 >= plan.out_rows else 1
        for c in range(c0, c0 + nc):
            ring_reset(ring, tid)
            q = q0
            while q < q1:
                q = min(q, q1 - rows_per_call)  # (the band's last call overlapping the one before)
                rows = ring_rows(ring, tid, x, d, n, q, rows_per_call, c, 1)
                for m in range(M):
                    index = ((n * CM + c * M + m) * d.OH + q) * OW
                    out = <floating *> plan_scratch(plan, tid) if narrowing else y + index
                    plane_call(rows, 0, rows_per_call, d, w + c * M + m, CM, offset(bias, c * M + m), 1, out, OW,
                               plan.streaming)
                    if narrowing:
                        narrow_results(out, y, index, 0, 1, rows_per_call * OW, act, d)
                q += rows_per_call
        if not narrowing:
            activate_outputs(y, act, d, n, q0, q1, c0, nc)


cdef int forward_dims(const floating *x, Py_ssize_t n_x, const floating *w, Py_ssize_t n_w, const floating *bias,
                      Py_ssize_t n_bias, floating *y, Py_ssize_t n_y, const Dims *d, int act, int n_threads) except -1:
    """forward() on buffers of n_x, n_w, n_bias (bias NULL: none) and n_y elements (of d.x_type and
    d.y_type for x and y), for geometry d."""
    cdef Py_ssize_t item, n_items
    cdef Plan plan
    cdef Ring ring
    plan.scratch = plan.w_mc = plan.w_columns = NULL
    plan.flat.off, plan.flat.bits = NULL, NULL
    ring.memory = NULL
    ring.zeros = NULL
    ring.book_memory = NULL
    n_threads = threads_for(d, n_threads)
    try:
        with nogil:
            if not plan_init(&plan, w, bias, d, act, n_threads) or (plan.kind != FLAT_PLANES and not ring_init(
                    &ring, plan.kind, 1 if plan.kind == RING_PLANE else plan.max_block * d.M, plan.out_rows,
                    plan.in_place, d, sizeof(floating), n_threads, plan.interleaved)):
                with gil:
                    raise MemoryError()
            ring.prefetch = plan.kind == RING_PACKED and plan.prefetch
            if not tiles_streamed() and <size_t> y % RING_ALIGN:  # (line_tiles' lines start where y's do)
                plan.streaming = plan.streaming and not (plan.kind == RING_PIXELS and not plan.interleaved)
            n_items = ceil_div(d.N, plan.item_images) * plan.n_blocks * plan.n_bands
            watch_io(True, x, n_x, w, n_w, bias, n_bias, y, n_y, d)
            if plan.kind != FLAT_PLANES:
                ring_watch(True, &ring, d, n_threads)
            plan_watch(True, &plan, d, w, sizeof(floating), n_threads)
            for item in prange(n_items, schedule="static", num_threads=n_threads):
                forward_item(x, w, bias, y, &ring, &plan, act, d, item, threadid())
            plan_watch(False, &plan, d, w, sizeof(floating), n_threads)
            if plan.kind != FLAT_PLANES:
                ring_watch(False, &ring, d, n_threads)
            watch_io(False, x, n_x, w, n_w, bias, n_bias, y, n_y, d)
    finally:
        plan_free(&plan, w)
        ring_free(&ring)
    return 0


cdef void watch_io(bint on, const floating *x, Py_ssize_t n_x, const floating *w, Py_ssize_t n_w,
                   const floating *bias, Py_ssize_t n_bias, floating *y, Py_ssize_t n_y, const Dims *d) noexcept nogil:
    """watch() for the forward, whose x and y may hold integers."""
    watch(on, w, n_w, bias, n_bias, NULL, 0, NULL, 0)
    watch_one(on, x, n_x * element_size(d.x_type, sizeof(floating)), False)
    watch_one(on, y, n_y * element_size(d.y_type, sizeof(floating)), True)


# The buffer-protocol format character of each kind of pixels the float32 forward converts itself.
CONVERTED_FORMATS = {"B": DW_ELEM_U8, "H": DW_ELEM_U16, "h": DW_ELEM_I16, "e": DW_ELEM_F16}


cdef int element_type(Py_buffer *view, size_t float_size, name) except -1:
    """The DW_ELEM_* code of the elements of `view` (obtained with PyBUF_FORMAT)."""
    cdef char code = view.format[strlen(view.format) - 1]  # (after any byte-order character)
    if <size_t> view.itemsize == float_size and code == (c'f' if float_size == sizeof(float) else c'd'):
        return DW_ELEM_FLOAT
    if float_size == sizeof(float) and view.itemsize <= 2 and chr(code) in CONVERTED_FORMATS:
        return CONVERTED_FORMATS[chr(code)]
    raise TypeError(f"forward: `{name}` holds {view.format.decode()!r} elements, not the filter's float type or "
                    f"uint8, uint16, int16 or float16 pixels (with float32 filters)")


def forward(x, const floating[::1] w, const floating[::1] bias, y, g, activation, int n_threads):
    """y = activation(depthwise_conv2d(x, w) + bias) for geometry g; all arrays flat, C-ordered,
    non-empty y; `activation` None or a name from dwconv._names.ACTIVATIONS. x and y hold w's float
    type or, with float32 filters, uint8, uint16, int16 or float16 pixels: read widened to float32,
    and results rounded to nearest (ties to even; integers saturated, NaN 0) as they are written."""
    cdef Dims d = dims_of(g)
    cdef const floating *bias_data = NULL if bias is None else &bias[0]
    cdef int act = ACTIVATION_CODES[activation]
    cdef Py_buffer x_view, y_view
    # One channel in and out (a gray image): NHWC and NCHW hold the same, and NCHW's plane rows
    # compute several output rows per call where NHWC's rings compute one.
    d.nhwc = d.nhwc and d.C * d.M > 1
    PyObject_GetBuffer(x, &x_view, PyBUF_ANY_CONTIGUOUS | PyBUF_FORMAT)
    try:
        PyObject_GetBuffer(y, &y_view, PyBUF_ANY_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE)
        try:
            d.x_type = element_type(&x_view, sizeof(floating), "x")
            d.y_type = element_type(&y_view, sizeof(floating), "y")
            forward_dims(<const floating *> x_view.buf if x_view.len else NULL, x_view.len // x_view.itemsize,
                         &w[0], w.shape[0], bias_data, 0 if bias is None else bias.shape[0],
                         <floating *> y_view.buf, y_view.len // y_view.itemsize, &d, act, n_threads)
        finally:
            PyBuffer_Release(&y_view)
    finally:
        PyBuffer_Release(&x_view)


def convert(src, dst, int n_threads):
    """dst[i] = src[i] for flat arrays of one size, one float32, the other of pixels the forward
    converts (uint8, uint16, int16, float16): widened, or rounded to nearest (ties to even; integers
    saturated, NaN 0) as the forward's results are. NumPy converts float16 an element at a time
    (1.6-3 ns each, 10-20x a float32 convolution's time per element); this, in vectors (F16C)."""
    cdef Py_buffer src_view, dst_view
    cdef int src_type, dst_type
    cdef Py_ssize_t n, item, e
    PyObject_GetBuffer(src, &src_view, PyBUF_ANY_CONTIGUOUS | PyBUF_FORMAT)
    try:
        PyObject_GetBuffer(dst, &dst_view, PyBUF_ANY_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE)
        try:
            src_type = element_type(&src_view, sizeof(float), "src")
            dst_type = element_type(&dst_view, sizeof(float), "dst")
            n = src_view.len // src_view.itemsize
            if (src_type == DW_ELEM_FLOAT) == (dst_type == DW_ELEM_FLOAT) or dst_view.len // dst_view.itemsize != n:
                raise ValueError(f"convert: `src` ({src_view.format.decode()!r}, {n}) and `dst` "
                                 f"({dst_view.format.decode()!r}, {dst_view.len // dst_view.itemsize}) must be "
                                 f"as many elements, one of them float32")
            watch_one(True, src_view.buf, src_view.len, False)
            watch_one(True, dst_view.buf, dst_view.len, True)
            for item in prange(ceil_div(n, CONVERT_PIECE), nogil=True, schedule="static", num_threads=n_threads):
                e = item * CONVERT_PIECE
                if src_type == DW_ELEM_FLOAT:
                    dw_narrow(element_at(dst_view.buf, e, dst_type, sizeof(float)), dst_type, 0,
                              <const float *> src_view.buf + e, 0, 1, min(<Py_ssize_t> CONVERT_PIECE, n - e))
                else:
                    dw_widen(<float *> dst_view.buf + e, 0, 1, element_at(src_view.buf, e, src_type, sizeof(float)),
                             src_type, 0, 1, min(<Py_ssize_t> CONVERT_PIECE, n - e))
            watch_one(False, src_view.buf, src_view.len, False)
            watch_one(False, dst_view.buf, dst_view.len, True)
        finally:
            PyBuffer_Release(&dst_view)
    finally:
        PyBuffer_Release(&src_view)


cdef bint input_grad_dims(Dims *t, const Dims *d) noexcept nogil:
    """t: the geometry of the forward pass over dy that gives dx for geometry d (the filter turned
    by 180 degrees); False where dx is not one (stride 1, M 1, zeros padding no wider than the
    kernel)."""
    t[0] = d[0]
    t.H, t.W, t.OH, t.OW = d.OH, d.OW, d.H, d.W
    t.pt, t.pl = (d.kh - 1) * d.dil_h - d.pt, (d.kw - 1) * d.dil_w - d.pl
    return (d.M == 1 and d.sh == 1 and d.sw == 1 and d.mode == ZEROS and d.OH > 0 and d.OW > 0 and t.pt >= 0
            and t.pl >= 0)


cdef floating *turned_filter(const floating *w, const Dims *d) except NULL:
    """A new copy of the filter w (M 1) turned by 180 degrees, for the caller to free."""
    cdef Py_ssize_t n_taps = d.kh * d.kw, tap, c
    cdef floating *turned = <floating *> malloc(n_taps * d.C * sizeof(floating))
    if turned == NULL:
        raise MemoryError()
    for tap in range(n_taps):
        for c in range(d.C):
            turned[tap * d.C + c] = w[(n_taps - 1 - tap) * d.C + c]
    return turned


cdef bint forward_input_grad(const floating[::1] dy, const floating[::1] w, floating[::1] dx, const Dims *d,
                             int n_threads) except -1:
    """dx as the forward pass over dy of the turned filter where input_grad_dims allows; True when
    done. Each pixel of dx is one sum, so the result does not depend on the number of threads."""
    cdef Dims t
    cdef floating *turned
    if not input_grad_dims(&t, d):
        return False
    turned = turned_filter(&w[0], d)
    try:
        forward_dims(&dy[0], dy.shape[0], turned, d.kh * d.kw * d.C, NULL, 0, &dx[0], dx.shape[0], &t, IDENTITY,
                     n_threads)
    finally:
        free(turned)
    return True


cdef inline bint strided_fits(const Dims *d, size_t elsize) noexcept nogil:
    """Whether NCHW geometry d's gradients read the planes in place at stride 2 (flat_input_grad_s2,
    flat_dot_s2): float32, 3x3 kernels of dilation 1 at stride 2, M 1, input rows an AVX-512 vector
    wide or more, at levels with masked loads (2 vCPUs of an AVX-512 AMD EPYC, against the packed
    path, whose transposes took half its time: mnv2-112x96-s2 at batch 16, the input gradient 2.5x
    faster, the filter gradient 1.8x, both then at the DRAM copy bandwidth; 28x28x192 1.4x and 1.6x
    at batch 16, 1.6x and 2x at batch 1; 20-pixel rows, a partial tile of the input gradient's, 1.0x
    and 1.45x; 14-pixel rows 0.7x and 0.95x)."""
    return (not d.nhwc and dw_has_flat() and elsize == sizeof(float) and d.kh == 3 and d.kw == 3 and d.sh == 2
            and d.sw == 2 and d.dil_h == 1 and d.dil_w == 1 and d.M == 1 and d.W * elsize >= 64 and d.OH > 0
            and d.OW > 0)


def runs_phases(g):
    """Whether the input gradient of geometry g runs phase by phase (phases_fit): for the tests,
    which check that their cases do."""
    cdef Dims d = dims_of(g)
    return phases_fit(&d)


def runs_row_tiles(g):
    """Whether the float32 forward of geometry g runs its NCHW planes in row tiles (rows_fit): for
    the tests, which check that their cases do."""
    cdef Dims d = dims_of(g)
    return rows_fit(&d, sizeof(float))


def reads_narrow_planes(g):
    """Whether the float32 filter gradient of geometry g reads its planes a row to a vector
    (narrow_fits): for the tests, which check that their cases do."""
    cdef Dims d = dims_of(g)
    return narrow_fits(&d, sizeof(float))


def reads_shifted_rows(g):
    """Whether the float32 filter gradient of geometry g reads its 5x5 or 7x7 planes along the rows
    (dot_shifted_fits): for the tests, which check that their cases do."""
    cdef Dims d = dims_of(g)
    return dot_shifted_fits(&d)


def reads_strided_planes(g):
    """Whether the float32 gradients of geometry g read its planes in place at stride 2
    (strided_fits): for the tests, which check that their cases do."""
    cdef Dims d = dims_of(g)
    return strided_fits(&d, sizeof(float))


cdef bint strided_input_grad(const floating[::1] dy, const floating[::1] w, floating[::1] dx, const Dims *d,
                             int n_threads) noexcept nogil:
    """dx where strided_fits allows (the taps inside the image: input_grad adds the padding's share);
    True when done. Work items are (image, block of channels); each pixel of dx is one sum, so the
    result does not depend on the number of threads."""
    cdef Py_ssize_t n_blocks, block, item, n, c0
    if floating is double or not strided_fits(d, sizeof(floating)) or d.N == 0 or d.C == 0:
        return False
    n_threads = threads_for(d, n_threads)
    block = ceil_div(d.C, min(d.C, ceil_div(ITEMS_PER_THREAD * n_threads, d.N)))
    n_blocks = ceil_div(d.C, block)
    watch(True, &dy[0], dy.shape[0], &w[0], w.shape[0], NULL, 0, &dx[0], dx.shape[0])
    for item in prange(d.N * n_blocks, schedule="static", num_threads=n_threads):
        n, c0 = item // n_blocks, item % n_blocks * block
        dw_flat_input_grad_s2_float(<const float *> &dy[0] + (n * d.C + c0) * d.OH * d.OW, d.OH * d.OW, d.OH, d.OW,
                                    d.pt, d.pl, <const float *> &w[0] + c0, 1, d.C,
                                    <float *> &dx[0] + (n * d.C + c0) * d.H * d.W, d.H * d.W, d.H, d.W,
                                    min(block, d.C - c0))
    watch(False, &dy[0], dy.shape[0], &w[0], w.shape[0], NULL, 0, &dx[0], dx.shape[0])
    return True


cdef inline Py_ssize_t phase_taps(Py_ssize_t k, Py_ssize_t s, Py_ssize_t e) noexcept nogil:
    """How many taps e, e + s, e + 2s, ... a kernel axis of k taps has: phase e of stride s."""
    return (k - e + s - 1) // s if e < k else 0


cdef inline Py_ssize_t phase_start(Py_ssize_t k, Py_ssize_t s, Py_ssize_t e) noexcept nogil:
    """The taps of the phases before phase e."""
    cdef Py_ssize_t before = 0, p
    for p in range(e):
        before += phase_taps(k, s, p)
    return before


cdef inline Py_ssize_t phase_offset(const Dims *d, Py_ssize_t e_h, Py_ssize_t e_w) noexcept nogil:
    """Where phase (e_h, e_w) starts in phase_filters' copy, in elements: after the whole kernel
    rows of the row phases before e_h, and the taps of e_h's rows in the column phases before e_w."""
    return (phase_start(d.kh, d.sh, e_h) * d.kw + phase_taps(d.kh, d.sh, e_h) * phase_start(d.kw, d.sw, e_w)) * d.C


cdef floating *phase_filters(const floating *w, const Dims *d) except NULL:
    """A new copy of the filter w (M 1), for the caller to free, phase by phase: phase (e_h, e_w)
    from element phase_offset(d, e_h, e_w) on, a kernel of phase_taps(kh, sh, e_h) x
    phase_taps(kw, sw, e_w) taps whose tap (t_h, u) is
    w's tap (t_h*sh + e_h, (nt_w - 1 - u)*sw + e_w): each row turned, so that its output-gradient
    pixels run forwards (phase_input_grad)."""
    cdef floating *phases = <floating *> malloc(d.kh * d.kw * d.C * sizeof(floating))
    cdef floating *dst
    cdef Py_ssize_t e_h, e_w, nt_h, nt_w, t_h, u
    if phases == NULL:
        raise MemoryError()
    for e_h in range(min(d.sh, d.kh)):
        nt_h = phase_taps(d.kh, d.sh, e_h)
        for e_w in range(min(d.sw, d.kw)):
            nt_w = phase_taps(d.kw, d.sw, e_w)
            dst = phases + phase_offset(d, e_h, e_w)
            for t_h in range(nt_h):
                for u in range(nt_w):
                    memcpy(dst + (t_h * nt_w + u) * d.C,
                           w + ((t_h * d.sh + e_h) * d.kw + (nt_w - 1 - u) * d.sw + e_w) * d.C, d.C * sizeof(floating))
    return phases


cdef inline bint phases_fit(const Dims *d) noexcept nogil:
    """Whether the input gradient of geometry d runs phase by phase (phase_input_grad): NHWC, one
    filter per channel, a stride over 1, dilation 1 (2 vCPUs of an AVX-512 AMD EPYC, against the
    gather, whose tiles of taps spilled: 56x56x144 3x3 at stride 2 1.7x faster at batch 1,
    112x112x96 1.1-1.3x at batch 1 and 16, 28x28x240 5x5 1.7x, 56x56x64 4x4 at stride 4 1.5-3x)."""
    return d.nhwc and d.M == 1 and (d.sh > 1 or d.sw > 1) and d.dil_h == 1 and d.dil_w == 1


cdef void phase_row(const floating *dy, const floating *w, const floating *phases, floating *dx, const Dims *d,
                    Py_ssize_t n, Py_ssize_t i, const floating **rows, bint streaming) noexcept nogil:
    """Row i of image n of dx (the taps inside the image), column phase by column phase: the pixels
    j = m*sw - pl + e_w of phase e_w, whose taps (t*sw + e_w) read dy's pixels m - t, are a forward
    row over dy at stride 1 with that phase's filter (phase_filters), written sw pixels apart; the
    few at either end whose taps leave dy go one by one (row_edge). `rows`: room for the thread's
    row pointers, one per kernel row of the phase."""
    cdef Py_ssize_t C = d.C, sw = d.sw, e_h = (i + d.pt) % d.sh, o_h = (i + d.pt) // d.sh
    cdef Py_ssize_t nt_h = phase_taps(d.kh, d.sh, e_h)
    cdef Py_ssize_t t_lo = max(0, o_h - d.OH + 1), nr = min(nt_h - 1, o_h) - t_lo + 1  # (the kernel rows inside dy)
    cdef Py_ssize_t a, e_w, nt_w, m, m_lo, m_hi, in_lo, in_hi, u_lo, nu
    cdef floating *dx_row = dx + (n * d.H + i) * d.W * C
    cdef const floating *w_phase
    cdef const floating *w_edge
    cdef Dims sub = d[0]  # (the phase's forward geometry: nr x nt_w taps at stride 1)
    if nr <= 0:
        memset(dx_row, 0, d.W * C * sizeof(floating))
        return
    for a in range(nr):  # (kernel row t_lo + a reads dy row o_h - t_lo - a)
        rows[a] = dy + (n * d.OH + o_h - t_lo - a) * d.OW * C
    sub.kh, sub.sw, sub.dil_w = nr, 1, 1
    for e_w in range(sw):
        nt_w = phase_taps(d.kw, sw, e_w)
        m_lo = (max(0, d.pl - e_w) + sw - 1) // sw  # (the phase's pixels lie in [0, W))
        m_hi = (d.W - 1 + d.pl - e_w) // sw + 1 if d.W - 1 + d.pl >= e_w else 0
        in_lo, in_hi = min(max(m_lo, nt_w - 1), m_hi), max(min(m_hi, d.OW), m_lo)
        if in_hi > in_lo and nt_w > 0:
            sub.kw = nt_w
            w_phase = phases + phase_offset(d, e_h, e_w) + t_lo * nt_w * C
            row(rows, (in_lo - nt_w + 1) * C, C, &sub, w_phase, C, NULL, dx_row + (in_lo * sw - d.pl + e_w) * C, sw * C,
                in_hi - in_lo, C, streaming)
        else:
            in_lo = in_hi = m_hi
        for m in range(m_lo, m_hi):
            if in_lo <= m < in_hi:
                continue
            u_lo = max(0, m - d.OW + 1)  # (the taps t in [u_lo, u_lo + nu) read dy inside it)
            nu = min(nt_w - 1, m) - u_lo + 1
            if nu <= 0:
                memset(dx_row + (m * sw - d.pl + e_w) * C, 0, C * sizeof(floating))
                continue
            w_edge = w + ((t_lo * d.sh + e_h) * d.kw + u_lo * sw + e_w) * C
            if floating is float:
                dw_row_edge_float(rows, (m - u_lo) * C, -C, nr, nu, w_edge, d.sh * d.kw * C, sw * C, NULL,
                                  dx_row + (m * sw - d.pl + e_w) * C, C, streaming)
            else:
                dw_row_edge_double(rows, (m - u_lo) * C, -C, nr, nu, w_edge, d.sh * d.kw * C, sw * C, NULL,
                                   dx_row + (m * sw - d.pl + e_w) * C, C, streaming)


cdef bint phase_lines(const Dims *d, size_t elsize) noexcept nogil:
    """line_tiles for the rows phase_row runs: every phase's, with every number of its kernel rows
    that fall inside dy (16x112x112x96 at stride 2, 77 MB of dx, streamed: 1.7x faster)."""
    cdef Py_ssize_t e_h, e_w, nr
    for e_h in range(min(d.sh, d.kh)):
        for nr in range(1, phase_taps(d.kh, d.sh, e_h) + 1):
            for e_w in range(min(d.sw, d.kw)):
                if not row_lines(nr, phase_taps(d.kw, d.sw, e_w), 1, 1, d.C, d.OW - phase_taps(d.kw, d.sw, 0), elsize):
                    return False
    return True


cdef bint phase_input_grad(const floating[::1] dy, const floating[::1] w, floating[::1] dx, const Dims *d,
                           int n_threads) except -1:
    """dx of a strided NHWC convolution of dilation 1 and one filter per channel (the taps inside
    the image: input_grad adds the padding's share), row by row through phase_row; True when done.
    Work items are dx's rows; each pixel of dx is one sum, so the result does not depend on the
    number of threads."""
    cdef floating *phases
    cdef const floating **rows
    cdef Py_ssize_t item, span = phase_taps(d.kh, d.sh, 0)
    cdef bint streaming = (d.C * sizeof(floating) % RING_ALIGN == 0 and dx.shape[0] * sizeof(floating) > STREAMING_BYTES
                           and (tiles_streamed()
                                or phase_lines(d, sizeof(floating)) and <size_t> &dx[0] % RING_ALIGN == 0))
    if not (phases_fit(d) and d.N * d.H * d.W * d.C and d.OH > 0 and d.OW > 0):
        return False
    n_threads = threads_for(d, n_threads)
    phases = phase_filters(&w[0], d)
    rows = <const floating **> malloc(n_threads * span * sizeof(void *))
    try:
        if rows == NULL:
            raise MemoryError()
        with nogil:
            watch(True, &dy[0], dy.shape[0], &w[0], w.shape[0], phases, w.shape[0], &dx[0], dx.shape[0])
            for item in prange(d.N * d.H, schedule="static", num_threads=n_threads):
                phase_row(&dy[0], &w[0], phases, &dx[0], d, item // d.H, item % d.H, rows + threadid() * span,
                          streaming)
            watch(False, &dy[0], dy.shape[0], &w[0], w.shape[0], phases, w.shape[0], &dx[0], dx.shape[0])
    finally:
        free(phases)
        free(rows)
    return True


cdef bint flat_filter_grad(const floating[::1] x, const floating[::1] dy, floating[::1] dfilters, floating[::1] dbias,
                           const Dims *d, int n_threads) except -1:
    """filter_grad where its planes are read in place (flat_dot_fits: to 5x5 kernels, M 1;
    dot_shifted_fits: 5x5 and 7x7 at AVX-512), or its gradients do at stride 2 (strided_fits, zeros
    padding), or its rows fit a vector each (narrow_fits), or it runs a plane at a time
    (rolling_fits); True when done. Each item sums the planes of a block of channels over every
    image, from the forward's lane masks (flat_dot) or along the rows (flat_dot_s2, flat_dot_narrow,
    flat_dot_rolling, flat_dot_shifted); every sum runs in an order fixed by the geometry, so the
    result does not depend on the number of threads."""
    cdef FlatMasks f
    cdef Py_ssize_t n_blocks, block, item, c0
    cdef floating *dbias_data = NULL if dbias is None else &dbias[0]
    cdef floating *dbias_block
    cdef bint strided = floating is float and d.mode == ZEROS and strided_fits(d, sizeof(floating))
    cdef bint narrow = floating is float and narrow_fits(d, sizeof(floating))
    # (AVX-512's rows narrower than a vector: flat_dot_narrow's rotations, 1.07x faster than rolling
    # on 14x14x576 at batch 16; AVX2's 5-7 pixel rows roll, 1.4x faster on 7x7x960)
    cdef bint rolling = (floating is float and dw_has_rolling_dot() and rolling_geometry(d, sizeof(floating))
                         and flat_dot_fits(d) and not (narrow and dw_vector_bytes() == 64))
    cdef bint shifted = floating is float and dot_shifted_fits(d)
    narrow = narrow and not rolling
    if (d.M != 1 or d.N == 0 or d.C == 0 or d.OH == 0
            or not (flat_dot_fits(d) or strided or narrow or rolling or shifted)):
        return False
    n_threads = threads_for(d, n_threads)
    block = ceil_div(d.C, min(d.C, ITEMS_PER_THREAD * n_threads))
    n_blocks = ceil_div(d.C, block)
    f.off, f.bits = NULL, NULL
    try:
        if not (strided or narrow or rolling or shifted) and not flat_masks_init(&f, d):
            raise MemoryError()
        with nogil:
            watch(True, &x[0], x.shape[0], &dy[0], dy.shape[0], NULL, 0, &dfilters[0], dfilters.shape[0])
            if dbias_data != NULL:
                watch_one(True, dbias_data, d.C * sizeof(floating), True)
            for item in prange(n_blocks, schedule="static", num_threads=n_threads):
                c0 = item * block
                dbias_block = dbias_data + c0 if dbias_data != NULL else NULL
                if strided:
                    dw_flat_dot_s2_float(<const float *> &x[0] + c0 * d.H * d.W, d.H * d.W, d.C * d.H * d.W, d.H, d.W,
                                         d.pt, d.pl, <const float *> &dy[0] + c0 * d.OH * d.OW, d.OH * d.OW,
                                         d.C * d.OH * d.OW, d.OH, d.OW, <float *> &dfilters[0] + c0, d.C,
                                         <float *> dbias_block, min(block, d.C - c0), d.N)
                elif rolling:
                    dw_flat_dot_rolling_float(<const float *> &x[0] + c0 * d.H * d.W, d.H * d.W, d.C * d.H * d.W, d.H,
                                              d.W, d.pt, d.pl, <const float *> &dy[0] + c0 * d.OH * d.OW, d.OH * d.OW,
                                              d.C * d.OH * d.OW, d.OH, d.OW, <float *> &dfilters[0] + c0, d.C,
                                              <float *> dbias_block, min(block, d.C - c0), d.N)
                elif shifted:
                    dw_flat_dot_shifted_float(<const float *> &x[0] + c0 * d.H * d.W, d.H * d.W, d.C * d.H * d.W, d.H,
                                              d.W, d.pt, d.pl, <const float *> &dy[0] + c0 * d.OH * d.OW, d.OH * d.OW,
                                              d.C * d.OH * d.OW, d.OH, d.OW, <float *> &dfilters[0] + c0, d.C,
                                              <float *> dbias_block, min(block, d.C - c0), d.N, d.kh)
                elif narrow:
                    dw_flat_dot_narrow_float(<const float *> &x[0] + c0 * d.H * d.W, d.H * d.W, d.C * d.H * d.W, d.H,
                                             d.W, d.pt, d.pl, <const float *> &dy[0] + c0 * d.OH * d.OW, d.OH * d.OW,
                                             d.C * d.OH * d.OW, d.OH, d.OW, <float *> &dfilters[0] + c0, d.C,
                                             <float *> dbias_block, min(block, d.C - c0), d.N)
                else:
                    flat_dot(&x[0] + c0 * d.H * d.W, d.H * d.W, d.C * d.H * d.W, &f, d.kh * d.kw,
                             &dy[0] + c0 * d.OH * d.OW, d.OH * d.OW, d.C * d.OH * d.OW, &dfilters[0] + c0, d.C,
                             dbias_block, d.OH * d.OW, min(block, d.C - c0), d.N)
            if dbias_data != NULL:
                watch_one(False, dbias_data, d.C * sizeof(floating), True)
            watch(False, &x[0], x.shape[0], &dy[0], dy.shape[0], NULL, 0, &dfilters[0], dfilters.shape[0])
    finally:
        flat_masks_free(&f)
    return True
