/* The forward's micro-kernel: one output row from the source rows of a ring (see _rings.pxi).
 *
 * Included by _microkernels_level.h after _microkernels_body.h, once per (instruction-set level,
 * element type), with the same macros defined (DW_T, DW_VBYTES, DW_LANES, DW_FN, DW_NARROWER_FN).
 *
 * A ring row holds every column its taps read, the padding already filled in, so no tap is ever
 * clipped: every output pixel of a row runs the same code, and the last tile of a row overlaps
 * the one before instead of shrinking. Three vector paths:
 *   channels -- nc >= one vector: a vector of lanes x a tile of pixels (at AVX2, where results
 *               stream, two vectors, a cache line, of each pixel: row_tile_lines);
 *   plane    -- nc == 1 (an NCHW plane): a tile of vectors of neighbouring pixels (stride 1 or 2);
 *   stream   -- 1 < nc < one vector, stride 1: the row as one flat stream, each lane's channel
 *               (and so its weight) known from its offset.
 * What no path covers goes to the narrower level, or runs as plain scalar code.
 */

#define DW_VEC DW_FN(vec) /* and its load, store, broadcast and load_even, from _microkernels_body.h */
#define DW_VLEN ((ptrdiff_t)DW_LANES)
#define DW_INLINE static inline __attribute__((always_inline))
/* Output pixels per register tile on the channel path: accumulators, kw <= 7 weights and one input
 * vector fit the 16 (AVX2) or 32 (AVX-512: 14 + 7 + 1) vector registers, and there are enough
 * independent sums (two FMA pipes of 4-5 cycles' latency want 8 or more) to keep the FMA pipes
 * busy. (AVX-512, 14 against 12, which split rows of 28 and 56 pixels into tiles of 9-12: 2 vCPUs
 * of a Zen 5 EPYC, batch 1, 28x28x240 5x5 1.13x faster, 56x56x144 3x3 1.1x, 56x56x96 7x7 1.07x on
 * one thread and two; 80 KB more code.) */
#define DW_ROW_TILE (DW_VBYTES == 64 ? 14 : 8)
#define DW_ROW_MAX_KW 7     /* widest kernel row with a register-resident tile of its own */
/* Tiles of line pairs (row_tile_lines), where a vector is half a line: accumulators and kw <= 3
 * weights of two vectors each fit AVX2's 16 registers with a source vector. */
#define DW_ROW_LINE_TILES (DW_VBYTES == 32 && DW_ROW_FLOAT)
#define DW_LINE_TILE 4
#define DW_LINE_MAX_KW 3
#define DW_ROW_MAX_STRIDE 2 /* widest stride whose tile loads each source pixel once */
#define DW_PLANE_TILE 8     /* vectors per register tile on the plane and stream paths (8 sums in flight) */
#define DW_PLANE_VECS 2     /* vectors per row of the plane-rows tile (x DW_PLANE_ROWS rows: 8 sums) */
/* ... and of the tile for larger kernels (plane_rows_wide_tile), at AVX2 3: each weight broadcast for
 * 12 multiply-adds rather than 8 (the loads had the FMAs waiting) */
#define DW_PLANE_WIDE_VECS (DW_VBYTES == 32 ? 3 : DW_PLANE_VECS)
#define DW_PLANE_MAX_VECS 3 /* ... and of its tile for interleaved channels whose lanes repeat every 3 (RGB) */
#define DW_LANE_MAX_CHANNELS 16 /* channels lane_table lays out: the stream's, fewer than a vector; plane rows' */
#define DW_ROW_TABLE 512    /* taps x channels the stream path pre-arranges at a time */
#define DW_EDGE_VECS 4      /* vectors of channels per edge pixel's tile (4 sums in flight) */
/* Vectors per stream tile whose lanes' channels repeat every vector (nc divides the vector: RGBA)
 * or every 3 (nc 3, 6, 12: RGB): the accumulators and each tap's 1 or 3 weight vectors in registers. */
#define DW_STREAM_TILE_1 (DW_VBYTES == 64 ? 12 : 8)
#define DW_STREAM_TILE_3 (DW_VBYTES == 64 ? 12 : 6)
#define DW_STREAM_MAX_TILE 12
_Static_assert(DW_STREAM_TILE_3 % 3 == 0, "a stream tile of period 3 holds whole periods");
#define DW_ROW_FLOAT (DW_LANES * 4 == DW_VBYTES)
/* Dense tiles for float only: each is compiled for every (kw, stride, tile size), and double is
 * there for accuracy rather than speed (it halves the build time). Not at the baseline level either,
 * whose 16 registers the larger tiles spill: there the general tile ran 3x3 kernels at 0.96-1.07x
 * the dense tiles' time and 5x5 and 7x7 at 0.7-0.85x, and the package has 0.4 MB less code. Nor
 * for 6x6 kernels, which no common network has: their tiles were 0.13 MB of the package's 2 MB
 * (the general tile runs them 1.15-1.5x slower, as it does 2x2 and 4x4 kernels without theirs).
 * Nor for 7x7 at stride 2: the wide kernels' pieces run it as fast (1.03x), in 0.09 MB less. */
#define DW_ROW_DENSE_TILES (DW_ROW_FLOAT && DW_VBYTES >= 32)
/* Loops with compile-time trip counts must unroll completely, or their sums leave the registers:
 * the longest is the dense tile's source loop, (tile - 1) * stride + kw iterations. */
#define DW_ROW_UNROLL_LIMIT 64
_Static_assert((DW_ROW_TILE - 1) * DW_ROW_MAX_STRIDE + DW_ROW_MAX_KW <= DW_ROW_UNROLL_LIMIT,
               "the dense tile's source loop must unroll completely");
_Static_assert(DW_ROW_TILE <= DW_ROW_UNROLL_LIMIT, "the pixel loops must unroll completely");
_Static_assert(DW_LINE_TILE * 2 + DW_LINE_MAX_KW * 2 + 1 <= 16, "a line tile's vectors fit AVX2's registers");
_Static_assert((DW_LINE_TILE - 1) * DW_ROW_MAX_STRIDE + DW_LINE_MAX_KW <= DW_ROW_UNROLL_LIMIT,
               "the line tile's source loop must unroll completely");
_Static_assert(DW_STREAM_TILE_1 <= DW_STREAM_MAX_TILE && DW_STREAM_TILE_3 <= DW_STREAM_MAX_TILE &&
                   DW_PLANE_TILE <= DW_STREAM_MAX_TILE && DW_STREAM_MAX_TILE <= DW_ROW_UNROLL_LIMIT,
               "the stream tiles fit their arrays and unroll completely");
/* The (k, stride) of every dense tile, for X(k, s): the functions of the channel and plane-rows
 * paths are compiled, and listed in their tables, from these lists. The plane-rows path has no 7x7
 * tile: its 49 taps, broadcast once per call, left the registers, and the wide-kernel tile, each
 * tap broadcast within the FMAs, runs 7x7 planes 1.1-1.2x faster (2 vCPUs of an AVX-512 AMD EPYC,
 * one thread: 1080p RGB and RGBA images, 512x512 gray, 3-channel NCHW and NHWC images, 224x224
 * NCHW planes; 5x5 kernels the same either way). */
_Static_assert(DW_ROW_MAX_KW == 7 && DW_ROW_MAX_STRIDE == 2, "DW_DENSE_SHAPES lists every dense tile");
#define DW_PLANE_DENSE_SHAPES(X) X(1, 1) X(2, 1) X(3, 1) X(4, 1) X(5, 1) X(1, 2) X(2, 2) X(3, 2) X(4, 2) X(5, 2)
#define DW_PLANE_DENSE_MAX_KW 5
/* The most taps of interleaved channels' weights the wide plane-rows tile lays out per call (7x7:
 * 1080p RGBA 9.3 -> 5.7 ms; 11x11 12.5, against its planes' 12.0). */
#define DW_PLANE_LANE_TAPS 49
#define DW_DENSE_SHAPES(X) DW_PLANE_DENSE_SHAPES(X) X(7, 1)
/* The table of those functions, fn##_k_s at [s - 1][k - 1] (NULL where there is none), with
 * `k7_1` at 7x7, stride 1. */
#define DW_DENSE_ENTRY(fn, k, s) DW_FN(fn##_##k##_##s),
#define DW_DENSE_TABLE(fn, k7_1) {{DW_DENSE_ENTRY(fn, 1, 1) DW_DENSE_ENTRY(fn, 2, 1) DW_DENSE_ENTRY(fn, 3, 1) \
                                   DW_DENSE_ENTRY(fn, 4, 1) DW_DENSE_ENTRY(fn, 5, 1) NULL, k7_1},           \
                                  {DW_DENSE_ENTRY(fn, 1, 2) DW_DENSE_ENTRY(fn, 2, 2) DW_DENSE_ENTRY(fn, 3, 2) \
                                   DW_DENSE_ENTRY(fn, 4, 2) DW_DENSE_ENTRY(fn, 5, 2) NULL, NULL}}
#ifndef DW_ROW_TILE_KW_DEFINED
#define DW_ROW_TILE_KW_DEFINED
/* The tile the channel path runs a row of kh x kw taps at stride sw, dilation dil_w with, at levels
 * with dense tiles: kw itself (a dense tile), -1 (the pieces of wider kernels) or 0 (the general tile). */
static inline int dw_row_tile_kw(ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sw, ptrdiff_t dil_w)
{
#define DW_IS_DENSE(k, s) || (kw == k && sw == s)
    if (kh == kw && dil_w == 1 && (0 DW_DENSE_SHAPES(DW_IS_DENSE))) return (int)kw;
#undef DW_IS_DENSE
    if (dil_w == 1 && kw >= DW_ROW_MAX_KW && sw <= DW_ROW_MAX_STRIDE) return -1;
    return 0;
}

/* Whether a streamed row of npix output pixels of nc float channels, run by the tile dw_row_tile_kw
 * names, runs in tiles of line pairs (row_tile_lines) where a vector is half a line (AVX2: two
 * vectors of 8 floats): row_channels' test, and through dw_row_lines the planner's. */
static inline int dw_line_tiles_fit(int tile_kw, ptrdiff_t nc, ptrdiff_t npix)
{
    return tile_kw >= 0 && tile_kw <= DW_LINE_MAX_KW && nc % 16 == 0 && npix >= DW_LINE_TILE;
}

/* dw_line_tiles_fit for rows of that geometry: the planner streams such results only where every
 * row runs in line pairs. */
static inline int dw_row_lines(ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sw, ptrdiff_t dil_w, ptrdiff_t nc, ptrdiff_t npix)
{
    return dw_line_tiles_fit(dw_row_tile_kw(kh, kw, sw, dil_w), nc, npix);
}
#endif

#if defined(__clang__)
#define DW_ROW_UNROLL _Pragma("unroll")
#else
#define DW_ROW_UNROLL _Pragma("GCC unroll 64")
#endif

/* channels, a kw x kw kernel and stride sw known at compile time, dilation 1: source pixel u of the
 * tile serves tap b of output pixel t when u = t*sw + b, so each source vector is loaded once per
 * kernel row. */
DW_INLINE void DW_FN(row_tile_dense)(const DW_T *const *rows, ptrdiff_t off, ptrdiff_t pix,
                                     const DW_T *w, ptrdiff_t w_tap, DW_VEC start, DW_T *dst, ptrdiff_t dst_pix, int nt,
                                     const int kw, const int sw, const int tile)
{
    DW_VEC acc[DW_ROW_TILE], wv[DW_ROW_MAX_KW];
    DW_ROW_UNROLL
    for (int t = 0; t < tile; t++) acc[t] = start;
    DW_ROW_UNROLL
    for (int a = 0; a < kw; a++) {
        const DW_T *s = rows[a] + off;
        DW_ROW_UNROLL
        for (int b = 0; b < kw; b++) wv[b] = DW_FN(load)(w + (a * kw + b) * w_tap);
        DW_ROW_UNROLL
        for (int u = 0; u < (tile - 1) * sw + kw; u++, s += pix) {
            DW_STEPPED(s);
            DW_VEC x = DW_FN(load)(s);
            if (DW_VBYTES == 64) DW_IN_REGISTER(x); /* (AVX2's 16 registers then spill the sums) */
            DW_ROW_UNROLL
            for (int b = 0; b < kw; b++)
                if (u >= b && (u - b) % sw == 0 && (u - b) / sw < tile) acc[(u - b) / sw] += wv[b] * x;
        }
    }
    DW_ROW_UNROLL
    for (int t = 0; t < tile; t++) DW_FN(store_out)(dst + t * dst_pix, acc[t], nt);
}

/* row_tile_dense (kw > 0, stride sw) or row_tile_any (kw 0) over two vectors of channels, a cache
 * line at AVX2: each output pixel's line written whole by consecutive stores, which streaming
 * stores need (a tile of single vectors leaves each of its pixels' lines half-written until the
 * next tile). */
DW_INLINE void DW_FN(row_tile_lines)(const DW_T *const *rows, ptrdiff_t off, ptrdiff_t src_pix, ptrdiff_t src_tap,
                                     ptrdiff_t kh, ptrdiff_t nkw, const DW_T *w, ptrdiff_t w_tap, const DW_VEC *start,
                                     DW_T *dst, ptrdiff_t dst_pix, int nt, const int kw, const int sw)
{
    DW_VEC acc[DW_LINE_TILE][2], wv[DW_LINE_MAX_KW][2];
    DW_ROW_UNROLL
    for (int t = 0; t < DW_LINE_TILE; t++) acc[t][0] = start[0], acc[t][1] = start[1];
    if (kw > 0) { /* (each source vector loaded once per kernel row) */
        DW_ROW_UNROLL
        for (int a = 0; a < kw; a++) {
            const DW_T *s = rows[a] + off;
            DW_ROW_UNROLL
            for (int b = 0; b < kw; b++)
                for (int v = 0; v < 2; v++) wv[b][v] = DW_FN(load)(w + (a * kw + b) * w_tap + v * DW_VLEN);
            DW_ROW_UNROLL
            for (int u = 0; u < (DW_LINE_TILE - 1) * sw + kw; u++, s += src_tap) {
                DW_STEPPED(s);
                DW_ROW_UNROLL
                for (int v = 0; v < 2; v++) {
                    const DW_VEC x = DW_FN(load)(s + v * DW_VLEN);
                    DW_ROW_UNROLL
                    for (int b = 0; b < kw; b++)
                        if (u >= b && (u - b) % sw == 0 && (u - b) / sw < DW_LINE_TILE)
                            acc[(u - b) / sw][v] += wv[b][v] * x;
                }
            }
        }
    } else {
        for (ptrdiff_t a = 0; a < kh; a++)
            for (ptrdiff_t b = 0; b < nkw; b++) {
                const DW_T *s = rows[a] + off + b * src_tap, *wt = w + (a * nkw + b) * w_tap;
                DW_ROW_UNROLL
                for (int v = 0; v < 2; v++) {
                    const DW_VEC wb = DW_FN(load)(wt + v * DW_VLEN);
                    DW_ROW_UNROLL
                    for (int t = 0; t < DW_LINE_TILE; t++) acc[t][v] += wb * DW_FN(load)(s + t * src_pix + v * DW_VLEN);
                }
            }
    }
    DW_ROW_UNROLL
    for (int t = 0; t < DW_LINE_TILE; t++) {
        DW_FN(store_out)(dst + t * dst_pix, acc[t][0], nt);
        DW_FN(store_out)(dst + t * dst_pix + DW_VLEN, acc[t][1], nt);
    }
}

/* channels, kernels wider than the dense tiles (dilation 1, stride sw known at compile time): each
 * kernel row in pieces of DW_ROW_MAX_KW taps run as the dense tile runs its rows (each source
 * vector loaded once per piece), the taps past the last whole piece one load per tap and pixel. */
DW_INLINE void DW_FN(row_tile_pieces)(const DW_T *const *rows, ptrdiff_t off, ptrdiff_t pix, ptrdiff_t kh,
                                      ptrdiff_t kw, const DW_T *w, ptrdiff_t w_tap, DW_VEC start, DW_T *dst,
                                      ptrdiff_t dst_pix, int nt, const int sw, const int tile)
{
    DW_VEC acc[DW_ROW_TILE], wv[DW_ROW_MAX_KW];
    const ptrdiff_t whole = kw / DW_ROW_MAX_KW * DW_ROW_MAX_KW;
    DW_ROW_UNROLL
    for (int t = 0; t < tile; t++) acc[t] = start;
    for (ptrdiff_t a = 0; a < kh; a++)
        for (ptrdiff_t b0 = 0; b0 < kw; b0 += DW_ROW_MAX_KW) {
            const DW_T *s = rows[a] + off + b0 * pix, *wa = w + (a * kw + b0) * w_tap;
            if (b0 == whole) { /* (the last taps) */
                for (ptrdiff_t b = 0; b < kw - whole; b++) {
                    const DW_VEC wb = DW_FN(load)(wa + b * w_tap);
                    DW_ROW_UNROLL
                    for (int t = 0; t < tile; t++) acc[t] += wb * DW_FN(load)(s + (t * sw + b) * pix);
                }
                break;
            }
            DW_ROW_UNROLL
            for (int b = 0; b < DW_ROW_MAX_KW; b++) wv[b] = DW_FN(load)(wa + b * w_tap);
            DW_ROW_UNROLL
            for (int u = 0; u < (tile - 1) * sw + DW_ROW_MAX_KW; u++, s += pix) {
                DW_STEPPED(s);
                DW_VEC x = DW_FN(load)(s);
                if (DW_VBYTES == 64) DW_IN_REGISTER(x);
                DW_ROW_UNROLL
                for (int b = 0; b < DW_ROW_MAX_KW; b++)
                    if (u >= b && (u - b) % sw == 0 && (u - b) / sw < tile) acc[(u - b) / sw] += wv[b] * x;
            }
        }
    DW_ROW_UNROLL
    for (int t = 0; t < tile; t++) DW_FN(store_out)(dst + t * dst_pix, acc[t], nt);
}

/* channels, any kernel width, stride and dilation: one load per tap and pixel. */
DW_INLINE void DW_FN(row_tile_any)(const DW_T *const *rows, ptrdiff_t off, ptrdiff_t src_pix, ptrdiff_t src_tap,
                                   ptrdiff_t kh, ptrdiff_t kw, const DW_T *w, ptrdiff_t w_tap, DW_VEC start, DW_T *dst,
                                   ptrdiff_t dst_pix, int nt, const int tile)
{
    DW_VEC acc[DW_ROW_TILE];
    DW_ROW_UNROLL
    for (int t = 0; t < tile; t++) acc[t] = start;
    for (ptrdiff_t a = 0; a < kh; a++)
        for (ptrdiff_t b = 0; b < kw; b++) {
            const DW_VEC wv = DW_FN(load)(w + (a * kw + b) * w_tap);
            const DW_T *s = rows[a] + off + b * src_tap;
            DW_ROW_UNROLL
            for (int t = 0; t < tile; t++) acc[t] += wv * DW_FN(load)(s + t * src_pix);
        }
    DW_ROW_UNROLL
    for (int t = 0; t < tile; t++) DW_FN(store_out)(dst + t * dst_pix, acc[t], nt);
}

/* The cases of a switch over tile sizes 1..DW_ROW_TILE, each calling TILE(n) with n constant. */
#define DW_TILE_CASE(n, TILE) \
    case n:                   \
        TILE(n);              \
        break;
#if DW_ROW_TILE == 14
#define DW_TILE_CASES(TILE)                                                                              \
    DW_TILE_CASE(1, TILE) DW_TILE_CASE(2, TILE) DW_TILE_CASE(3, TILE) DW_TILE_CASE(4, TILE)              \
    DW_TILE_CASE(5, TILE) DW_TILE_CASE(6, TILE) DW_TILE_CASE(7, TILE) DW_TILE_CASE(8, TILE)              \
    DW_TILE_CASE(9, TILE) DW_TILE_CASE(10, TILE) DW_TILE_CASE(11, TILE) DW_TILE_CASE(12, TILE)           \
    DW_TILE_CASE(13, TILE) DW_TILE_CASE(14, TILE)
#else
_Static_assert(DW_ROW_TILE == 8, "DW_TILE_CASES lists every tile size up to DW_ROW_TILE");
#define DW_TILE_CASES(TILE)                                                                              \
    DW_TILE_CASE(1, TILE) DW_TILE_CASE(2, TILE) DW_TILE_CASE(3, TILE) DW_TILE_CASE(4, TILE)              \
    DW_TILE_CASE(5, TILE) DW_TILE_CASE(6, TILE) DW_TILE_CASE(7, TILE) DW_TILE_CASE(8, TILE)
#endif

/* The channel path over one row with a dense tile of constant (kw, sw), the pieces of wider kernels
 * when kw < 0 (stride sw), or the general tile when kw == 0: as few tiles as the registers allow,
 * their sizes a pixel apart at most, so that no pixel is computed twice (a last tile overlapping the
 * one before computed 60 pixels for rows of 56 at AVX-512, 30 for 28, 120 for 112: 2 vCPUs of an
 * AVX-512 AMD EPYC (Zen 5), one thread: 56x56x96 7x7 1.09x faster at batch 1, 1.07x at 16), each
 * over every vector of lanes (the last overlapping). */
DW_INLINE void DW_FN(row_channels)(const DW_T *const *rows, ptrdiff_t off, ptrdiff_t src_pix, ptrdiff_t src_tap,
                                   ptrdiff_t kh, ptrdiff_t nkw, const DW_T *w, ptrdiff_t w_tap, const DW_T *bias,
                                   DW_T *dst, ptrdiff_t dst_pix, ptrdiff_t npix, ptrdiff_t nc, int nt, const int kw,
                                   const int sw)
{
#if DW_ROW_LINE_TILES
    _Static_assert(2 * DW_VLEN == 16, "dw_line_tiles_fit counts two vectors of 8 floats");
    if (nt && dw_line_tiles_fit(kw, nc, npix)) {
        for (ptrdiff_t o = 0;; o += DW_LINE_TILE) {
            if (o + DW_LINE_TILE > npix) o = npix - DW_LINE_TILE;
            for (ptrdiff_t c = 0; c < nc; c += 2 * DW_VLEN) {
                const DW_VEC start[2] = {bias ? DW_FN(load)(bias + c) : DW_FN(broadcast)(0),
                                         bias ? DW_FN(load)(bias + c + DW_VLEN) : DW_FN(broadcast)(0)};
                DW_FN(row_tile_lines)(rows, off + o * src_pix + c, src_pix, src_tap, kh, nkw, w + c, w_tap, start,
                                      dst + o * dst_pix + c, dst_pix, nt, kw, sw);
            }
            if (o + DW_LINE_TILE >= npix) break;
        }
        return;
    }
#endif
    const ptrdiff_t n_tiles = (npix + DW_ROW_TILE - 1) / DW_ROW_TILE;
    for (ptrdiff_t i = 0, o = 0, tile; i < n_tiles; i++, o += tile) {
        tile = (npix - o + n_tiles - i - 1) / (n_tiles - i); /* (of the pixels left, over the tiles left) */
        for (ptrdiff_t c = 0; c < nc; c += DW_VLEN) {
            if (c + DW_VLEN > nc) c = nc - DW_VLEN;
            const DW_VEC start = bias ? DW_FN(load)(bias + c) : DW_FN(broadcast)(0);
#define DW_ROW_TILE_N(n)                                                                                 \
    do {                                                                                                 \
        if (kw > 0)                                                                                      \
            DW_FN(row_tile_dense)(rows, off + o * src_pix + c, src_tap, w + c, w_tap, start,            \
                                  dst + o * dst_pix + c, dst_pix, nt, kw, sw, n);                        \
        else if (kw < 0)                                                                                 \
            DW_FN(row_tile_pieces)(rows, off + o * src_pix + c, src_tap, kh, nkw, w + c, w_tap, start,  \
                                   dst + o * dst_pix + c, dst_pix, nt, sw, n);                           \
        else                                                                                             \
            DW_FN(row_tile_any)(rows, off + o * src_pix + c, src_pix, src_tap, kh, nkw, w + c, w_tap, start, \
                                dst + o * dst_pix + c, dst_pix, nt, n);                                  \
    } while (0)
            switch (tile) { DW_TILE_CASES(DW_ROW_TILE_N) }
#undef DW_ROW_TILE_N
        }
    }
}

/* One function per (k, sw) of the channel path (square k x k kernels; k 0: the general tile), each
 * compiled apart so that its tiles get the registers to themselves (inlined into one, they spilled). */
typedef void (*DW_FN(row_channels_fn))(const DW_T *const *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                       const DW_T *, ptrdiff_t, const DW_T *, DW_T *, ptrdiff_t, ptrdiff_t, ptrdiff_t, int);
#define DW_ROW_CHANNELS(k, s)                                                                            \
    static __attribute__((noinline)) void DW_FN(row_channels_##k##_##s)(                                 \
        const DW_T *const *rows, ptrdiff_t off, ptrdiff_t src_pix, ptrdiff_t src_tap, ptrdiff_t kh, ptrdiff_t nkw, \
        const DW_T *w, ptrdiff_t w_tap, const DW_T *bias, DW_T *dst, ptrdiff_t dst_pix, ptrdiff_t npix, ptrdiff_t nc, \
        int nt)                                                                                          \
    {                                                                                                    \
        DW_FN(row_channels)(rows, off, src_pix, src_tap, kh, nkw, w, w_tap, bias, dst, dst_pix, npix, nc, nt, k, s); \
    }
DW_ROW_CHANNELS(0, 1)
#if DW_ROW_DENSE_TILES
DW_DENSE_SHAPES(DW_ROW_CHANNELS)
/* kernels wider than the dense tiles, in pieces (kw -1), at stride 1 and 2 */
#define DW_ROW_CHANNELS_WIDE(s)                                                                          \
    static __attribute__((noinline)) void DW_FN(row_channels_wide_##s)(                                  \
        const DW_T *const *rows, ptrdiff_t off, ptrdiff_t src_pix, ptrdiff_t src_tap, ptrdiff_t kh, ptrdiff_t nkw, \
        const DW_T *w, ptrdiff_t w_tap, const DW_T *bias, DW_T *dst, ptrdiff_t dst_pix, ptrdiff_t npix, ptrdiff_t nc, \
        int nt)                                                                                          \
    {                                                                                                    \
        DW_FN(row_channels)(rows, off, src_pix, src_tap, kh, nkw, w, w_tap, bias, dst, dst_pix, npix, nc, nt, -1, s); \
    }
DW_ROW_CHANNELS_WIDE(1)
DW_ROW_CHANNELS_WIDE(2)
#undef DW_ROW_CHANNELS_WIDE
#endif
#undef DW_ROW_CHANNELS

/* The channel-path function for these (kw, sw, dil_w). */
static DW_FN(row_channels_fn) DW_FN(row_channels_for)(ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sw, ptrdiff_t dil_w)
{
#if DW_ROW_DENSE_TILES
    static const DW_FN(row_channels_fn) dense[DW_ROW_MAX_STRIDE][DW_ROW_MAX_KW] = DW_DENSE_TABLE(row_channels, DW_FN(row_channels_7_1));
    const int tile_kw = dw_row_tile_kw(kh, kw, sw, dil_w);
    if (tile_kw > 0) return dense[sw - 1][kw - 1];
    if (tile_kw < 0) /* (and 7x7 at stride 2) */
        return sw == 1 ? DW_FN(row_channels_wide_1) : DW_FN(row_channels_wide_2);
#else
    (void)kh, (void)kw, (void)sw, (void)dil_w;
#endif
    return DW_FN(row_channels_0_1);
}

/* plane: `tile` vectors of neighbouring output pixels, stride sw (1 or 2) known at compile time
 * (a stride-2 vector reads one element past its last source pixel: the ring leaves room). */
DW_INLINE void DW_FN(plane_tile)(const DW_T *const *rows, ptrdiff_t off, ptrdiff_t src_tap, ptrdiff_t kh, ptrdiff_t kw,
                                 const DW_T *w, ptrdiff_t w_tap, DW_T start, DW_T *dst, int nt, const int sw,
                                 const int tile)
{
    DW_VEC acc[DW_PLANE_TILE];
    DW_ROW_UNROLL
    for (int t = 0; t < tile; t++) acc[t] = DW_FN(broadcast)(start);
    for (ptrdiff_t a = 0; a < kh; a++)
        for (ptrdiff_t b = 0; b < kw; b++) {
            const DW_VEC wv = DW_FN(broadcast)(w[(a * kw + b) * w_tap]);
            const DW_T *s = rows[a] + off + b * src_tap;
            DW_ROW_UNROLL
            for (int t = 0; t < tile; t++)
                acc[t] += wv * (sw == 1 ? DW_FN(load)(s + t * DW_VLEN) : DW_FN(load_even)(s + 2 * t * DW_VLEN));
        }
    DW_ROW_UNROLL
    for (int t = 0; t < tile; t++) DW_FN(store_out)(dst + t * DW_VLEN, acc[t], nt);
}

/* The plane path over one row: tiles of equal numbers of vectors (the last overlapping). */
DW_INLINE void DW_FN(row_plane)(const DW_T *const *rows, ptrdiff_t off, ptrdiff_t src_tap, ptrdiff_t kh, ptrdiff_t kw,
                                const DW_T *w, ptrdiff_t w_tap, DW_T start, DW_T *dst, ptrdiff_t npix, int nt, const int sw)
{
    const ptrdiff_t n_vectors = npix / DW_VLEN; /* (npix >= DW_VLEN) */
    const ptrdiff_t n_tiles = (n_vectors + DW_PLANE_TILE - 1) / DW_PLANE_TILE;
    const int tile = (int)((n_vectors + n_tiles - 1) / n_tiles);
    for (ptrdiff_t o = 0;; o += tile * DW_VLEN) {
        if (o + tile * DW_VLEN > npix) o = npix - tile * DW_VLEN;
#define DW_PLANE_TILE_N(n) DW_FN(plane_tile)(rows, off + o * sw, src_tap, kh, kw, w, w_tap, start, dst + o, nt, sw, n)
        _Static_assert(DW_PLANE_TILE == 8, "the cases below list every plane tile size");
        switch (tile) {
            DW_TILE_CASE(1, DW_PLANE_TILE_N) DW_TILE_CASE(2, DW_PLANE_TILE_N) DW_TILE_CASE(3, DW_PLANE_TILE_N)
            DW_TILE_CASE(4, DW_PLANE_TILE_N) DW_TILE_CASE(5, DW_PLANE_TILE_N) DW_TILE_CASE(6, DW_PLANE_TILE_N)
            DW_TILE_CASE(7, DW_PLANE_TILE_N) DW_TILE_CASE(8, DW_PLANE_TILE_N)
        }
#undef DW_PLANE_TILE_N
        if (o + tile * DW_VLEN >= npix) break;
    }
}

/* One function per stride of the plane path, compiled apart from `row` as the channel path is. */
static __attribute__((noinline)) void DW_FN(row_plane_1)(const DW_T *const *rows, ptrdiff_t off, ptrdiff_t src_tap, ptrdiff_t kh, ptrdiff_t kw,
                               const DW_T *w, ptrdiff_t w_tap, DW_T start, DW_T *dst, ptrdiff_t npix, int nt)
{
    DW_FN(row_plane)(rows, off, src_tap, kh, kw, w, w_tap, start, dst, npix, nt, 1);
}

static __attribute__((noinline)) void DW_FN(row_plane_2)(const DW_T *const *rows, ptrdiff_t off, ptrdiff_t src_tap, ptrdiff_t kh, ptrdiff_t kw,
                               const DW_T *w, ptrdiff_t w_tap, DW_T start, DW_T *dst, ptrdiff_t npix, int nt)
{
    DW_FN(row_plane)(rows, off, src_tap, kh, kw, w, w_tap, start, dst, npix, nt, 2);
}

/* Per-lane weights for taps [k0, k0 + n) of a row-major kh x kw kernel whose lanes hold nc channels
 * interleaved (lane l of a vector starting on channel ph: channel (ph + l) % nc), per phase i <
 * n_phases, the vectors starting on channel ph = (i * step) % nc: table[i*n + k - k0] lane l =
 * w[k*w_tap + (ph + l) % nc]; start[i] likewise the bias (0 without). nc 1 broadcasts. Each tap's
 * channels are laid out once, repeated along `repeated`, and each phase's vector loaded from where
 * its first lane is (per lane, the build took as long as a 7x7 kernel's sums on a 256-pixel RGB
 * row). The stream builds every phase (step 1), the plane-rows tiles those of their vectors. */
DW_INLINE void DW_FN(lane_table)(DW_VEC *table, DW_VEC *start, const DW_T *w, ptrdiff_t w_tap, const DW_T *bias,
                                 ptrdiff_t k0, ptrdiff_t n, ptrdiff_t nc, ptrdiff_t step, ptrdiff_t n_phases)
{
    DW_T repeated[DW_LANES + DW_LANE_MAX_CHANNELS] = {0}; /* (all of it: a phase's load reads past nc) */
    for (ptrdiff_t k = -1; k < n; k++) { /* (k -1: the bias) */
        const DW_T *channels = k < 0 ? bias : w + (k0 + k) * w_tap;
        for (ptrdiff_t l = 0, c = 0; l < DW_LANES + nc; l++, c = c + 1 == nc ? 0 : c + 1)
            repeated[l] = channels ? channels[c] : 0;
        for (ptrdiff_t i = 0; i < n_phases; i++) {
            const DW_VEC v = DW_FN(load)(repeated + i * step % nc);
            if (k < 0)
                start[i] = v;
            else
                table[i * n + k] = v;
        }
    }
}

/* The vectors after which the lanes' channels repeat, for nc channels interleaved along a row. */
DW_INLINE int DW_FN(lane_period)(ptrdiff_t nc)
{
    int period = 1;
    while (period * DW_VLEN % nc) period++;
    return period;
}

/* plane rows: DW_PLANE_ROWS output rows (dst_row apart) of a k x k kernel, stride sw, its taps
 * `step` elements apart along the rows (the dilation), each a tile of `tile` vectors. Output row
 * j's tap row a is source row j*sw + a, so each source vector, loaded once, serves every output row
 * whose taps cover it (up to k of them) with its weight from wt, the taps' vectors made once per
 * call: vector v's from phase v % period of wt and start (lane_table's; interleaved channels whose
 * lanes repeat every `period` vectors, the tile starting on channel 0). */
DW_INLINE void DW_FN(plane_rows_tile)(const DW_T *const *rows, ptrdiff_t off, ptrdiff_t step, const DW_VEC *wt,
                                      const DW_VEC *start, DW_T *dst, ptrdiff_t dst_row, int nt, const int k,
                                      const int sw, const int tile, const int period)
{
    DW_VEC acc[DW_PLANE_ROWS][DW_PLANE_MAX_VECS];
    DW_ROW_UNROLL
    for (int j = 0; j < DW_PLANE_ROWS; j++) {
        DW_ROW_UNROLL
        for (int v = 0; v < tile; v++) acc[j][v] = start[v % period];
    }
    DW_ROW_UNROLL
    for (int i = 0; i < (DW_PLANE_ROWS - 1) * sw + k; i++) {
        const DW_T *s = rows[i] + off;
        DW_ROW_UNROLL
        for (int b = 0; b < k; b++) {
            DW_VEC x[DW_PLANE_MAX_VECS];
            DW_ROW_UNROLL
            for (int v = 0; v < tile; v++)
                x[v] = sw == 1 ? DW_FN(load)(s + b * step + v * DW_VLEN)
                               : DW_FN(load_even)(s + b * step + 2 * v * DW_VLEN);
            DW_ROW_UNROLL
            for (int j = 0; j < DW_PLANE_ROWS; j++)
                if (i - j * sw >= 0 && i - j * sw < k) {
                    DW_ROW_UNROLL
                    for (int v = 0; v < tile; v++) acc[j][v] += wt[(v % period) * k * k + (i - j * sw) * k + b] * x[v];
                }
        }
    }
    DW_ROW_UNROLL
    for (int j = 0; j < DW_PLANE_ROWS; j++) {
        DW_ROW_UNROLL
        for (int v = 0; v < tile; v++) DW_FN(store_out)(dst + j * dst_row + v * DW_VLEN, acc[j][v], nt);
    }
}

/* The plane-rows path over DW_PLANE_ROWS rows (npix >= DW_VLEN): tiles of up to DW_PLANE_VECS
 * vectors, all of one size, the last overlapping; rows of nc > 1 interleaved channels (stride 1)
 * whose lanes' channels repeat every vector too, each tile starting on a multiple of nc. */
DW_INLINE void DW_FN(plane_rows_dense)(const DW_T *const *rows, ptrdiff_t off, ptrdiff_t step, const DW_T *w,
                                       ptrdiff_t w_tap, const DW_T *bias, ptrdiff_t nc, DW_T *dst, ptrdiff_t dst_row,
                                       ptrdiff_t npix, int nt, const int k, const int sw)
{
    DW_VEC wt[DW_ROW_MAX_KW * DW_ROW_MAX_KW], start;
    if (nc == 1) { /* (a plane: each tap one weight, broadcast; lane_table's loops took 7% of a 3x3 call) */
        for (int t = 0; t < k * k; t++) wt[t] = DW_FN(broadcast)(w[t * w_tap]);
        start = DW_FN(broadcast)(bias ? bias[0] : 0);
    } else {
        DW_FN(lane_table)(wt, &start, w, w_tap, bias, 0, k * k, nc, DW_VLEN, 1);
    }
    const ptrdiff_t n_vectors = npix / DW_VLEN;
    const ptrdiff_t n_tiles = (n_vectors + DW_PLANE_VECS - 1) / DW_PLANE_VECS;
    const int tile = (int)((n_vectors + n_tiles - 1) / n_tiles);
    _Static_assert(DW_PLANE_VECS == 2, "the calls below cover every tile size");
    for (ptrdiff_t o = 0;; o += tile * DW_VLEN) {
        if (o + tile * DW_VLEN > npix) o = npix - tile * DW_VLEN;
        if (tile == 2)
            DW_FN(plane_rows_tile)(rows, off + o * sw, step, wt, &start, dst + o, dst_row, nt, k, sw, 2, 1);
        else
            DW_FN(plane_rows_tile)(rows, off + o * sw, step, wt, &start, dst + o, dst_row, nt, k, sw, 1, 1);
        if (o + tile * DW_VLEN >= npix) break;
    }
}

/* The plane-rows path for 3x3 kernels over rows of nc interleaved channels whose lanes' channels
 * repeat every 3 vectors (RGB; npix >= 3 vectors), in tiles of 3 vectors that start on multiples
 * of nc, so that each vector of a tile has the same channels wherever the tile starts; compiled
 * apart from the plane tiles, whose registers it would share. Larger kernels' tiles of 3 loaded
 * more weight vectors than they did multiply-adds, and ran slower than the planes an RGB image is
 * taken apart into (2 vCPUs of an AVX-512 AMD EPYC, 1080p RGB 5x5: 3.7 ms, planes 3.0; 3x3 1.3,
 * planes 2.1). */
#if DW_ROW_DENSE_TILES
static __attribute__((noinline)) void DW_FN(plane_rows_lanes_3)(const DW_T *const *rows, ptrdiff_t off, ptrdiff_t step,
                                                              const DW_T *w, ptrdiff_t w_tap, const DW_T *bias,
                                                              ptrdiff_t nc, DW_T *dst, ptrdiff_t dst_row,
                                                              ptrdiff_t npix, int nt)
{
    DW_VEC wt[DW_PLANE_MAX_VECS * 3 * 3], start[DW_PLANE_MAX_VECS];
    DW_FN(lane_table)(wt, start, w, w_tap, bias, 0, 3 * 3, nc, DW_VLEN, DW_PLANE_MAX_VECS);
    for (ptrdiff_t o = 0;; o += DW_PLANE_MAX_VECS * DW_VLEN) {
        if (o + DW_PLANE_MAX_VECS * DW_VLEN > npix) o = npix - DW_PLANE_MAX_VECS * DW_VLEN;
        DW_FN(plane_rows_tile)(rows, off + o, step, wt, start, dst + o, dst_row, nt, 3, 1, DW_PLANE_MAX_VECS,
                               DW_PLANE_MAX_VECS);
        if (o + DW_PLANE_MAX_VECS * DW_VLEN >= npix) break;
    }
}
#endif

typedef void (*DW_FN(plane_rows_fn))(const DW_T *const *, ptrdiff_t, ptrdiff_t, const DW_T *, ptrdiff_t, const DW_T *,
                                     ptrdiff_t, DW_T *, ptrdiff_t, ptrdiff_t, int);
#define DW_PLANE_ROWS_DENSE(k, s)                                                                        \
    static __attribute__((noinline)) void DW_FN(plane_rows_##k##_##s)(                                   \
        const DW_T *const *rows, ptrdiff_t off, ptrdiff_t step, const DW_T *w, ptrdiff_t w_tap,            \
        const DW_T *bias, ptrdiff_t nc, DW_T *dst, ptrdiff_t dst_row, ptrdiff_t npix, int nt)              \
    {                                                                                                    \
        DW_FN(plane_rows_dense)(rows, off, step, w, w_tap, bias, nc, dst, dst_row, npix, nt, k, s);      \
    }
#if DW_ROW_DENSE_TILES
DW_PLANE_DENSE_SHAPES(DW_PLANE_ROWS_DENSE)
#endif
#undef DW_PLANE_ROWS_DENSE

/* Source row i's share of plane_rows_wide_tile's sums: each of its kw tap columns' vectors loaded
 * once for output rows j_lo to j_hi (kernel row i - j of output row j). */
DW_INLINE void DW_FN(plane_rows_wide_source)(const DW_T *s, ptrdiff_t step, ptrdiff_t i, ptrdiff_t kw, const DW_T *w,
                                             ptrdiff_t w_tap, const DW_VEC *table,
                                             DW_VEC acc[DW_PLANE_ROWS][DW_PLANE_WIDE_VECS], const int j_lo,
                                             const int j_hi, const int lanes)
{
    for (ptrdiff_t b = 0; b < kw; b++) {
        DW_VEC x[DW_PLANE_WIDE_VECS];
        DW_ROW_UNROLL
        for (int v = 0; v < DW_PLANE_WIDE_VECS; v++) x[v] = DW_FN(load)(s + b * step + v * DW_VLEN);
        DW_ROW_UNROLL
        for (int j = j_lo; j <= j_hi; j++) {
            const DW_VEC wv = lanes ? table[(i - j) * kw + b] : DW_FN(broadcast)(w[((i - j) * kw + b) * w_tap]);
            DW_ROW_UNROLL
            for (int v = 0; v < DW_PLANE_WIDE_VECS; v++) acc[j][v] += wv * x[v];
        }
    }
}

/* The plane-rows path for kernels the dense tiles do not cover (at least DW_PLANE_ROWS rows; stride
 * 1, taps `step` elements apart): a tile of DW_PLANE_WIDE_VECS vectors x DW_PLANE_ROWS rows, each
 * source vector loaded once for every output row it serves, the weights broadcast from memory (row
 * by row, each output row loads its own: 9 loads for 8 multiply-adds, against 6 here); with `lanes`,
 * each tap's vector from `table` instead (lane_table's: interleaved channels whose lanes repeat
 * every vector). */
DW_INLINE void DW_FN(plane_rows_wide_tile)(const DW_T *const *rows, ptrdiff_t off, ptrdiff_t step, ptrdiff_t kh,
                                           ptrdiff_t kw, const DW_T *w, ptrdiff_t w_tap, const DW_VEC *table,
                                           DW_VEC start, DW_T *dst, ptrdiff_t dst_row, int nt, const int lanes)
{
    DW_VEC acc[DW_PLANE_ROWS][DW_PLANE_WIDE_VECS];
    DW_ROW_UNROLL
    for (int j = 0; j < DW_PLANE_ROWS; j++) {
        DW_ROW_UNROLL
        for (int v = 0; v < DW_PLANE_WIDE_VECS; v++) acc[j][v] = start;
    }
    /* Source row i is kernel row i - j of output row j: the first and last DW_PLANE_ROWS - 1 rows
     * serve some output rows (their loops unrolled, which ones known at compile time), those
     * between all of them (kh >= DW_PLANE_ROWS: no test in the loop; a test per output row and tap
     * ran 7x7 planes at a third of the FMA peak). */
    DW_ROW_UNROLL
    for (int i = 0; i < DW_PLANE_ROWS - 1; i++)
        DW_FN(plane_rows_wide_source)(rows[i] + off, step, i, kw, w, w_tap, table, acc, 0, i, lanes);
    for (ptrdiff_t i = DW_PLANE_ROWS - 1; i < kh; i++)
        DW_FN(plane_rows_wide_source)(rows[i] + off, step, i, kw, w, w_tap, table, acc, 0, DW_PLANE_ROWS - 1, lanes);
    DW_ROW_UNROLL
    for (int e = 1; e < DW_PLANE_ROWS; e++)
        DW_FN(plane_rows_wide_source)(rows[kh - 1 + e] + off, step, kh - 1 + e, kw, w, w_tap, table, acc, e,
                                      DW_PLANE_ROWS - 1, lanes);
    DW_ROW_UNROLL
    for (int j = 0; j < DW_PLANE_ROWS; j++) {
        DW_ROW_UNROLL
        for (int v = 0; v < DW_PLANE_WIDE_VECS; v++) DW_FN(store_out)(dst + j * dst_row + v * DW_VLEN, acc[j][v], nt);
    }
}

/* One tile of the stream path, `tile` vectors from element e, over taps [k0, k0 + n) (the
 * table's): from the bias when k0 is 0, else adding to what dst holds (`nt` only for the last taps:
 * dst is read again after the others). The vectors' phases repeat every `period` vectors (0: no
 * known period): each tap loads one weight vector per phase, for all the vectors of that phase. */
DW_INLINE void DW_FN(row_stream_tile)(const DW_T *const *rows, ptrdiff_t off, ptrdiff_t src_tap, ptrdiff_t kw,
                                  const DW_VEC *table, const DW_VEC *start, ptrdiff_t k0, ptrdiff_t n, DW_T *dst,
                                  ptrdiff_t e, ptrdiff_t nc, int nt, const int period, const int tile)
{
    const int n_phases = period ? period : tile;
    ptrdiff_t phase[DW_STREAM_MAX_TILE];
    DW_VEC acc[DW_STREAM_MAX_TILE], wv[DW_STREAM_MAX_TILE];
    for (int t = 0; t < n_phases; t++) phase[t] = (e + t * DW_VLEN) % nc;
    DW_ROW_UNROLL
    for (int t = 0; t < tile; t++) acc[t] = k0 ? DW_FN(load)(dst + e + t * DW_VLEN) : start[phase[t % n_phases]];
    ptrdiff_t a = k0 / kw, b = k0 % kw;
    for (ptrdiff_t k = 0; k < n; k++) {
        const DW_T *s = rows[a] + off + b * src_tap + e;
        DW_ROW_UNROLL
        for (int j = 0; j < n_phases; j++) wv[j] = table[phase[j] * n + k];
        DW_ROW_UNROLL
        for (int t = 0; t < tile; t++) acc[t] += wv[t % n_phases] * DW_FN(load)(s + t * DW_VLEN);
        if (++b == kw) b = 0, a++;
    }
    DW_ROW_UNROLL
    for (int t = 0; t < tile; t++) DW_FN(store_out)(dst + e + t * DW_VLEN, acc[t], nt);
}

/* The stream tile's period for these channels (0: none the tiles specialise in) and its vectors. */
DW_INLINE int DW_FN(row_stream_period)(ptrdiff_t total, ptrdiff_t nc)
{
    const int period = DW_FN(lane_period)(nc);
    if (period == 1 && total >= DW_STREAM_TILE_1 * DW_VLEN) return 1;
    if (period == 3 && total >= DW_STREAM_TILE_3 * DW_VLEN) return 3;
    return 0;
}

DW_INLINE int DW_FN(row_stream_tile_size)(int period)
{
    return period == 1 ? DW_STREAM_TILE_1 : period == 3 ? DW_STREAM_TILE_3 : DW_PLANE_TILE;
}

/* row_stream_tile for these taps, called apart for kernels whose taps come in several chunks
 * (large ones): inlined at those calls too, it would add 20 KB of code at every level for no
 * measurable gain there. */
static __attribute__((noinline)) void DW_FN(row_stream_chunk_tile)(const DW_T *const *rows, ptrdiff_t off,
                                                                   ptrdiff_t src_tap, ptrdiff_t kw,
                                                                   const DW_VEC *table, const DW_VEC *start,
                                                                   ptrdiff_t k0, ptrdiff_t n, DW_T *dst, ptrdiff_t e,
                                                                   ptrdiff_t nc, int nt, int period)
{
    if (period == 1)
        DW_FN(row_stream_tile)(rows, off, src_tap, kw, table, start, k0, n, dst, e, nc, nt, 1, DW_STREAM_TILE_1);
    else if (period == 3)
        DW_FN(row_stream_tile)(rows, off, src_tap, kw, table, start, k0, n, dst, e, nc, nt, 3, DW_STREAM_TILE_3);
    else
        DW_FN(row_stream_tile)(rows, off, src_tap, kw, table, start, k0, n, dst, e, nc, nt, 0, DW_PLANE_TILE);
}

/* The stream path with all taps in one chunk: tiles of `tile` vectors (period as for the tile),
 * the last overlapping. */
DW_INLINE void DW_FN(row_stream_one_chunk)(const DW_T *const *rows, ptrdiff_t off, ptrdiff_t src_tap, ptrdiff_t kw,
                                           const DW_VEC *table, const DW_VEC *start, ptrdiff_t n_taps, DW_T *dst,
                                           ptrdiff_t total, ptrdiff_t nc, int nt, const int period, const int tile)
{
    for (ptrdiff_t e = 0;; e += tile * DW_VLEN) {
        if (e + tile * DW_VLEN > total) e = total - tile * DW_VLEN;
        DW_FN(row_stream_tile)(rows, off, src_tap, kw, table, start, 0, n_taps, dst, e, nc, nt, period, tile);
        if (e + tile * DW_VLEN >= total) break;
    }
}

/* stream: dst[e] = start + sum_taps w[tap + e % nc] * src[e + tap] for e < total (at least one
 * tile), where the taps read rows[a] + b*src_tap. The weights go into the table a chunk of taps at
 * a time (all of them, unless kh * kw * nc outgrows it: large kernels); each chunk after the first
 * adds to what dst holds. The last tile overlaps the one before it: with one chunk it is one more
 * tile, with several it runs on its own after the others, from the bias again (else the overlap
 * would get a chunk twice). */
static void DW_FN(row_stream)(const DW_T *const *rows, ptrdiff_t off, ptrdiff_t src_tap, ptrdiff_t kh, ptrdiff_t kw,
                              const DW_T *w, ptrdiff_t w_tap, const DW_T *bias, DW_T *dst, ptrdiff_t total, ptrdiff_t nc,
                              int nt)
{
    DW_VEC table[DW_ROW_TABLE], start[DW_LANES];
    const ptrdiff_t n_taps = kh * kw, chunk = DW_ROW_TABLE / nc;
    const int period = DW_FN(row_stream_period)(total, nc);
    if (n_taps <= chunk) { /* one chunk: every tile once, the last overlapping */
        DW_FN(lane_table)(table, start, w, w_tap, bias, 0, n_taps, nc, 1, nc);
        if (period == 1)
            DW_FN(row_stream_one_chunk)(rows, off, src_tap, kw, table, start, n_taps, dst, total, nc, nt, 1,
                                        DW_STREAM_TILE_1);
        else if (period == 3)
            DW_FN(row_stream_one_chunk)(rows, off, src_tap, kw, table, start, n_taps, dst, total, nc, nt, 3,
                                        DW_STREAM_TILE_3);
        else
            DW_FN(row_stream_one_chunk)(rows, off, src_tap, kw, table, start, n_taps, dst, total, nc, nt, 0,
                                        DW_PLANE_TILE);
        return;
    }
    const ptrdiff_t tile = DW_FN(row_stream_tile_size)(period) * DW_VLEN, last = total - tile;
    for (ptrdiff_t k0 = 0; k0 < n_taps; k0 += chunk) {
        const ptrdiff_t n = n_taps - k0 < chunk ? n_taps - k0 : chunk;
        DW_FN(lane_table)(table, start, w, w_tap, bias, k0, n, nc, 1, nc);
        for (ptrdiff_t e = 0; e < last; e += tile)
            DW_FN(row_stream_chunk_tile)(rows, off, src_tap, kw, table, start, k0, n, dst, e, nc,
                                         nt && k0 + n == n_taps, period);
    }
    for (ptrdiff_t k0 = 0; k0 < n_taps; k0 += chunk) {
        const ptrdiff_t n = n_taps - k0 < chunk ? n_taps - k0 : chunk;
        DW_FN(lane_table)(table, start, w, w_tap, bias, k0, n, nc, 1, nc);
        DW_FN(row_stream_chunk_tile)(rows, off, src_tap, kw, table, start, k0, n, dst, last, nc, nt && k0 + n == n_taps,
                                     period);
    }
}

/* dst[p*dst_pix + c] = src[p*src_pix + c] for p < npix, c < nc: source pixels into a ring row, in
 * vectors (glibc's memcpy runs `rep movsb` at these sizes, at a quarter of this speed on Zen 3). */
static void DW_FN(copy)(DW_T *dst, ptrdiff_t dst_pix, const DW_T *src, ptrdiff_t src_pix, ptrdiff_t npix, ptrdiff_t nc)
{
    if (dst_pix == nc && src_pix == nc) { /* one run */
        nc *= npix;
        npix = 1;
    }
    for (ptrdiff_t p = 0; p < npix; p++) {
        DW_T *d = dst + p * dst_pix;
        const DW_T *s = src + p * src_pix;
        ptrdiff_t c = 0;
        if (nc < DW_VLEN) {
            for (; c < nc; c++) d[c] = s[c];
            continue;
        }
        for (; c + 4 * DW_VLEN <= nc; c += 4 * DW_VLEN) {
            const DW_VEC v0 = DW_FN(load)(s + c), v1 = DW_FN(load)(s + c + DW_VLEN);
            const DW_VEC v2 = DW_FN(load)(s + c + 2 * DW_VLEN), v3 = DW_FN(load)(s + c + 3 * DW_VLEN);
            DW_FN(store)(d + c, v0);
            DW_FN(store)(d + c + DW_VLEN, v1);
            DW_FN(store)(d + c + 2 * DW_VLEN, v2);
            DW_FN(store)(d + c + 3 * DW_VLEN, v3);
            __asm__ volatile("" ::: "memory"); /* or GCC turns the loop back into a call to memcpy */
        }
        for (; c + DW_VLEN <= nc; c += DW_VLEN) DW_FN(store)(d + c, DW_FN(load)(s + c));
        if (c < nc) DW_FN(store)(d + nc - DW_VLEN, DW_FN(load)(s + nc - DW_VLEN)); /* overlapping the last */
    }
}

/* One output pixel, `vecs` vectors of channels:
 * dst[l] = bias[l] + sum_{a<kh, b<nb} w[a*w_row + b*w_tap + l] * rows[a][off + b*src_tap + l]. */
DW_INLINE void DW_FN(edge_tile)(const DW_T *const *rows, ptrdiff_t off, ptrdiff_t src_tap, ptrdiff_t kh, ptrdiff_t nb,
                                const DW_T *w, ptrdiff_t w_row, ptrdiff_t w_tap, const DW_T *bias, DW_T *dst, int nt,
                                const int vecs)
{
    DW_VEC acc[DW_EDGE_VECS];
    DW_ROW_UNROLL
    for (int v = 0; v < vecs; v++) acc[v] = bias ? DW_FN(load)(bias + v * DW_VLEN) : DW_FN(broadcast)(0);
    for (ptrdiff_t a = 0; a < kh; a++)
        for (ptrdiff_t b = 0; b < nb; b++) {
            const DW_T *s = rows[a] + off + b * src_tap, *wt = w + a * w_row + b * w_tap;
            DW_ROW_UNROLL
            for (int v = 0; v < vecs; v++) acc[v] += DW_FN(load)(wt + v * DW_VLEN) * DW_FN(load)(s + v * DW_VLEN);
        }
    DW_ROW_UNROLL
    for (int v = 0; v < vecs; v++) DW_FN(store_out)(dst + v * DW_VLEN, acc[v], nt);
}

/* An edge pixel of a row read in place, whose taps past the image's side add zeros (zeros padding),
 * over the kh x nb taps inside:
 * dst[c] = bias[c] + sum_{a<kh, b<nb} w[a*w_row + b*w_tap + c] * rows[a][off + b*src_tap + c]
 * for c < nc (bias NULL: 0). A pixel alone has one sum per vector of channels, each a chain of
 * FMAs, so the channels go DW_EDGE_VECS vectors at a time. */
static void DW_FN(row_edge)(const DW_T *const *rows, ptrdiff_t off, ptrdiff_t src_tap, ptrdiff_t kh, ptrdiff_t nb,
                            const DW_T *w, ptrdiff_t w_row, ptrdiff_t w_tap, const DW_T *bias, DW_T *dst, ptrdiff_t nc,
                            int nt)
{
    ptrdiff_t c = 0;
    for (; c + DW_EDGE_VECS * DW_VLEN <= nc; c += DW_EDGE_VECS * DW_VLEN)
        DW_FN(edge_tile)(rows, off + c, src_tap, kh, nb, w + c, w_row, w_tap, bias ? bias + c : NULL, dst + c, nt,
                         DW_EDGE_VECS);
    if (nc >= DW_VLEN) {
        for (; c < nc; c += DW_VLEN) {
            if (c + DW_VLEN > nc) c = nc - DW_VLEN; /* (the last overlapping) */
            DW_FN(edge_tile)(rows, off + c, src_tap, kh, nb, w + c, w_row, w_tap, bias ? bias + c : NULL, dst + c, nt,
                             1);
        }
    } else {
#ifdef DW_NARROWER
        DW_NARROWER_FN(row_edge)(rows, off, src_tap, kh, nb, w, w_row, w_tap, bias, dst, nc, nt);
#else
        for (; c < nc; c++) {
            DW_T sum = bias ? bias[c] : 0;
            for (ptrdiff_t a = 0; a < kh; a++)
                for (ptrdiff_t b = 0; b < nb; b++) sum += w[a * w_row + b * w_tap + c] * rows[a][off + b * src_tap + c];
            dst[c] = sum;
        }
#endif
    }
#ifdef DW_X86
    if (nt) _mm_sfence();
#endif
}

/* dst[o*dst_pix + c] = bias[c] + sum_{a<kh, b<kw} w[(a*kw + b)*w_tap + c] * rows[a][off + (o*sw + b*dil_w)*src_pix + c]
 * for o < npix, c < nc (bias NULL: 0). The rows hold pixels of src_pix elements; dst must not
 * overlap them. With `nt`, aligned vectors of dst are written with streaming stores. */
static void DW_FN(row)(const DW_T *const *rows, ptrdiff_t off, ptrdiff_t src_pix, ptrdiff_t kh, ptrdiff_t kw,
                       ptrdiff_t sw, ptrdiff_t dil_w, const DW_T *w, ptrdiff_t w_tap, const DW_T *bias, DW_T *dst,
                       ptrdiff_t dst_pix, ptrdiff_t npix, ptrdiff_t nc, int nt)
{
    const ptrdiff_t src_tap = dil_w * src_pix;
    if (nc >= DW_VLEN) {
        DW_FN(row_channels_for)(kh, kw, sw, dil_w)(rows, off, sw * src_pix, src_tap, kh, kw, w, w_tap, bias, dst,
                                                   dst_pix, npix, nc, nt);
    } else if (nc == 1 && src_pix == 1 && dst_pix == 1 && sw <= 2 && npix >= DW_VLEN) {
        (sw == 1 ? DW_FN(row_plane_1) : DW_FN(row_plane_2))(rows, off, src_tap, kh, kw, w, w_tap, bias ? bias[0] : 0, dst,
                                                             npix, nt);
    } else if (nc > 1 && sw == 1 && src_pix == nc && dst_pix == nc && npix * nc >= DW_PLANE_TILE * DW_VLEN) {
        DW_FN(row_stream)(rows, off, src_tap, kh, kw, w, w_tap, bias, dst, npix * nc, nc, nt);
    } else {
#ifdef DW_NARROWER
        /* Too few lanes, or too short a row, for this level's vectors: a narrower level's may fit. */
        DW_NARROWER_FN(row)(rows, off, src_pix, kh, kw, sw, dil_w, w, w_tap, bias, dst, dst_pix, npix, nc, nt);
#else
        for (ptrdiff_t o = 0; o < npix; o++)
            for (ptrdiff_t c = 0; c < nc; c++) {
                DW_T sum = bias ? bias[c] : 0;
                for (ptrdiff_t a = 0; a < kh; a++)
                    for (ptrdiff_t b = 0; b < kw; b++)
                        sum += w[(a * kw + b) * w_tap + c] * rows[a][off + o * sw * src_pix + b * src_tap + c];
                dst[o * dst_pix + c] = sum;
            }
#endif
    }
#ifdef DW_X86
    if (nt) _mm_sfence(); /* streamed results reach memory before any later store (the end of the call) */
#endif
}

/* Whether plane_rows runs rows of nc > 1 interleaved channels (stride 1) in tiles of several rows
 * rather than row by row (the stream): the dense tiles take them where the lanes' channels repeat
 * every vector or every 3 (RGB), the wide one where they repeat every vector and its table fits. */
static int DW_FN(plane_lane_tiles)(ptrdiff_t nc, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw)
{
    if (nc > DW_LANE_MAX_CHANNELS || sh != 1 || sw != 1) return 0;
    const int period = DW_FN(lane_period)(nc);
    if (DW_ROW_DENSE_TILES && kh == kw && ((period == 1 && kw <= DW_PLANE_DENSE_MAX_KW) ||
                                           (period == DW_PLANE_MAX_VECS && kw == 3)))
        return 1;
    return period == 1 && kh >= DW_PLANE_ROWS && kh * kw <= DW_PLANE_LANE_TAPS;
}

/* DW_PLANE_ROWS output rows of one plane, dilation 1 down the plane:
 * dst[j*dst_row + o] = bias[0] + sum_{a<kh, b<kw} w[(a*kw + b)*w_tap] * rows[j*sh + a][off + o*sw + b*dil_w]
 * for j < DW_PLANE_ROWS, o < npix (bias NULL: 0); rows holds (DW_PLANE_ROWS - 1)*sh + kh source rows.
 * With nc > 1 the rows interleave nc channels (an NHWC image's, dil_w a multiple of nc), each
 * element weighted by its own: w[(a*kw + b)*w_tap + o % nc] and bias[o % nc]; npix a multiple of nc.
 * Square kernels up to DW_ROW_MAX_KW, of equal strides up to DW_ROW_MAX_STRIDE, and kernels of
 * DW_PLANE_ROWS rows or more at stride 1, load each source vector once for all the output rows (any
 * dilation along the rows: the taps of interleaved channels, nc elements apart, too; for nc > 1
 * where plane_lane_tiles says); the rest run row by row. */
static void DW_FN(plane_rows)(const DW_T *const *rows, ptrdiff_t off, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh,
                              ptrdiff_t sw, ptrdiff_t dil_w, const DW_T *w, ptrdiff_t w_tap, const DW_T *bias,
                              ptrdiff_t nc, DW_T *dst, ptrdiff_t dst_row, ptrdiff_t npix, int nt)
{
    /* (interleaved channels, each lane weighted by its own, take the tiles where plane_lane_tiles says) */
    const int lanes = nc > 1, tiled = !lanes || DW_FN(plane_lane_tiles)(nc, kh, kw, sh, sw);
    const int period = DW_FN(lane_period)(nc);
#if DW_ROW_DENSE_TILES
    static const DW_FN(plane_rows_fn) dense[DW_ROW_MAX_STRIDE][DW_ROW_MAX_KW] = DW_DENSE_TABLE(plane_rows, NULL);
    if (tiled && kh == kw && kw <= DW_ROW_MAX_KW && sh == sw && sw <= DW_ROW_MAX_STRIDE &&
        npix >= period * DW_VLEN && dense[sw - 1][kw - 1]) {
        (period == 1 ? dense[sw - 1][kw - 1] : DW_FN(plane_rows_lanes_3))(rows, off, dil_w, w, w_tap, bias, nc, dst,
                                                                         dst_row, npix, nt);
#ifdef DW_X86
        if (nt) _mm_sfence();
#endif
        return;
    }
#endif
    if (tiled && kh >= DW_PLANE_ROWS && sh == 1 && sw == 1 && npix >= DW_PLANE_WIDE_VECS * DW_VLEN &&
        (!lanes || (period == 1 && kh * kw <= DW_PLANE_LANE_TAPS))) {
        DW_VEC table[DW_PLANE_LANE_TAPS], start = DW_FN(broadcast)(bias ? bias[0] : 0);
        if (lanes) DW_FN(lane_table)(table, &start, w, w_tap, bias, 0, kh * kw, nc, DW_VLEN, 1);
        for (ptrdiff_t o = 0;; o += DW_PLANE_WIDE_VECS * DW_VLEN) { /* (the last tile overlapping) */
            if (o + DW_PLANE_WIDE_VECS * DW_VLEN > npix) o = npix - DW_PLANE_WIDE_VECS * DW_VLEN;
            if (lanes)
                DW_FN(plane_rows_wide_tile)(rows, off + o, dil_w, kh, kw, w, w_tap, table, start, dst + o, dst_row, nt,
                                            1);
            else
                DW_FN(plane_rows_wide_tile)(rows, off + o, dil_w, kh, kw, w, w_tap, table, start, dst + o, dst_row, nt,
                                            0);
            if (o + DW_PLANE_WIDE_VECS * DW_VLEN >= npix) break;
        }
#ifdef DW_X86
        if (nt) _mm_sfence();
#endif
        return;
    }
    for (ptrdiff_t j = 0; j < DW_PLANE_ROWS; j++)
        DW_FN(row)(rows + j * sh, off, nc, kh, kw, sw, dil_w / nc, w, w_tap, bias, dst + j * dst_row, nc, npix / nc,
                   nc, nt);
}

#undef DW_VEC
#undef DW_VLEN
#undef DW_INLINE
#undef DW_ROW_TILE
#undef DW_ROW_MAX_KW
#undef DW_ROW_MAX_STRIDE
#undef DW_PLANE_TILE
#undef DW_STREAM_TILE_1
#undef DW_STREAM_TILE_3
#undef DW_STREAM_MAX_TILE
#undef DW_PLANE_VECS
#undef DW_PLANE_WIDE_VECS
#undef DW_PLANE_MAX_VECS
#undef DW_PLANE_DENSE_MAX_KW
#undef DW_LANE_MAX_CHANNELS
#undef DW_PLANE_LANE_TAPS
#undef DW_ROW_TABLE
#undef DW_EDGE_VECS
#undef DW_ROW_DENSE_TILES
#undef DW_ROW_FLOAT
#undef DW_ROW_UNROLL_LIMIT
#undef DW_ROW_UNROLL
#undef DW_TILE_CASE
#undef DW_TILE_CASES
#undef DW_DENSE_SHAPES
#undef DW_PLANE_DENSE_SHAPES
#undef DW_DENSE_ENTRY
#undef DW_DENSE_TABLE
