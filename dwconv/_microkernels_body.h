/* The instruction-set-specific inner loops of dwconv, written once.
 *
 * dwconv/_microkernels_level.h includes this file once per (instruction-set level, element type),
 * inside a region compiled for that level, with
 *   DW_T           the element type (float or double)
 *   DW_VBYTES      the level's vector width in bytes
 *   DW_LANES       lanes per vector (a preprocessor number)
 *   DW_FN(n)       the name of function n for this level and type
 *   DW_NARROWER_FN(n)  the same function of the next narrower level (where there is one)
 * defined. Everything here is arithmetic on pointers and strides handed in by the Cython scheduling
 * code; borders never reach this file (the caller clips the tap ranges).
 *
 * Strides are in elements and may be negative (the input gradient walks the output gradient
 * backwards). Three vector paths cover the layouts:
 *   channels -- NHWC, C >= one vector: a vector of channels x a tile of pixels;
 *   stream   -- NHWC, C below one vector, pixels adjacent: the row as one flat stream, each lane's
 *               channel (and so its weight) known from its offset;
 *   pixels   -- NCHW: a vector of neighbouring pixels along a row (stride 1 or 2).
 * Rows too short, or channels too few, for this level's vectors go to the narrower level; what no
 * path covers runs as plain scalar code. The filter gradient's reductions (dot, dot_taps) follow,
 * then the transposition that packs narrow NCHW planes for the channel path (transpose).
 */

typedef DW_T DW_FN(vec) __attribute__((vector_size(DW_LANES * sizeof(DW_T))));
#define DW_VEC DW_FN(vec)
#define DW_VLEN ((ptrdiff_t)DW_LANES)
/* output pixels per register tile on the channel path: as many as the registers hold */
#define DW_PIXEL_TILE (DW_VBYTES == 64 ? 12 : 6)
#define DW_VECTOR_TILE 4 /* vectors per register tile on the stream and pixel paths */
#define DW_STREAM_TABLE 512 /* largest taps x channels the stream path pre-arranges */
#define DW_INLINE static inline __attribute__((always_inline))
/* Loops with compile-time trip counts in the tiles below must unroll completely, or their sums
 * leave the registers; GCC's own limits stop short of the 7-tap rows. */
#if defined(__clang__)
#define DW_UNROLL _Pragma("unroll")
#else
#define DW_UNROLL _Pragma("GCC unroll 16")
#endif

DW_INLINE DW_VEC DW_FN(load)(const DW_T *p)
{
    DW_VEC v;
    memcpy(&v, p, sizeof v); /* an unaligned vector load */
    return v;
}

DW_INLINE void DW_FN(store)(DW_T *p, DW_VEC v) { memcpy(p, &v, sizeof v); }

DW_INLINE DW_VEC DW_FN(broadcast)(DW_T a)
{
    DW_VEC zero = {0};
    return a - zero; /* (exact for every a, -0 included, so one broadcast; zero + a costs an add first) */
}

/* The even-indexed elements of p[0 .. 2*DW_VLEN-1]: one vector of a stride-2 row. */
DW_INLINE DW_VEC DW_FN(load_even)(const DW_T *p)
{
#if defined(__clang__) || __GNUC__ >= 12
    const DW_VEC lo = DW_FN(load)(p), hi = DW_FN(load)(p + DW_VLEN);
#if DW_LANES == 16
    return __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
#elif DW_LANES == 8
    return __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14);
#elif DW_LANES == 4
    return __builtin_shufflevector(lo, hi, 0, 2, 4, 6);
#else
    return __builtin_shufflevector(lo, hi, 0, 2);
#endif
#else
    DW_T lanes[DW_LANES];
    for (int l = 0; l < DW_LANES; l++) lanes[l] = p[2 * l];
    return DW_FN(load)(lanes);
#endif
}

DW_INLINE DW_VEC DW_FN(load_strided)(const DW_T *p, ptrdiff_t stride)
{
    return stride == 1 ? DW_FN(load)(p) : DW_FN(load_even)(p);
}

DW_INLINE DW_T DW_FN(horizontal_sum)(DW_VEC v)
{
    DW_T lanes[DW_LANES];
    DW_T sum = 0;
    memcpy(lanes, &v, sizeof v);
    for (int l = 0; l < DW_LANES; l++) sum += lanes[l];
    return sum;
}

/* Advance i (by `unit` per unit of work) while whole units fit below `limit`: first tiles of
 * `tile_units`, then pairs, then single units, each through a separate constant-size instance of
 * `kernel` so that a tile's sums stay in registers. */
#define DW_TILED(i, limit, unit, tile_units, kernel)                                                   \
    do {                                                                                               \
        for (; (i) + (tile_units) * (unit) <= (limit); (i) += (tile_units) * (unit)) kernel(tile_units); \
        for (; (i) + 2 * (unit) <= (limit); (i) += 2 * (unit)) kernel(2);                              \
        for (; (i) + (unit) <= (limit); (i) += (unit)) kernel(1);                                      \
    } while (0)

DW_INLINE void DW_FN(store_out)(DW_T *p, DW_VEC v, int nt);

/* channels: dst[t*dst_pix + l] = start + sum_taps w[tap + l] * src[t*src_pix + tap + l], t < tile;
 * with `nt`, aligned vectors written with streaming stores. */
DW_INLINE void DW_FN(channel_tile)(const DW_T *src, ptrdiff_t src_pix, ptrdiff_t src_a, ptrdiff_t src_b,
                                   const DW_T *w, ptrdiff_t w_a, ptrdiff_t w_b, DW_VEC start, int accumulate,
                                   DW_T *dst, ptrdiff_t dst_pix, ptrdiff_t na, ptrdiff_t nb, int nt, const int tile)
{
    DW_VEC acc[DW_PIXEL_TILE];
    for (int t = 0; t < tile; t++) acc[t] = accumulate ? DW_FN(load)(dst + t * dst_pix) : start;
    for (ptrdiff_t a = 0; a < na; a++)
        for (ptrdiff_t b = 0; b < nb; b++) {
            const DW_VEC wv = DW_FN(load)(w + a * w_a + b * w_b);
            const DW_T *s = src + a * src_a + b * src_b;
            DW_UNROLL
            for (int t = 0; t < tile; t++) acc[t] += wv * DW_FN(load)(s + t * src_pix);
        }
    for (int t = 0; t < tile; t++) DW_FN(store_out)(dst + t * dst_pix, acc[t], nt);
}

/* stream: vector t of the tile starts at stream offset t*DW_VLEN, whose channel is phase[t]; its
 * weights for tap k are table[phase[t]*na*nb + k] and its bias start[phase[t]]. */
DW_INLINE void DW_FN(stream_tile)(const DW_T *src, ptrdiff_t src_a, ptrdiff_t src_b, const DW_VEC *table,
                                  const DW_VEC *start, const ptrdiff_t *phase, int accumulate, DW_T *dst,
                                  ptrdiff_t na, ptrdiff_t nb, const int tile)
{
    DW_VEC acc[DW_VECTOR_TILE];
    for (int t = 0; t < tile; t++) acc[t] = accumulate ? DW_FN(load)(dst + t * DW_VLEN) : start[phase[t]];
    for (ptrdiff_t a = 0; a < na; a++)
        for (ptrdiff_t b = 0; b < nb; b++) {
            const DW_T *s = src + a * src_a + b * src_b;
            const DW_VEC *wt = table + a * nb + b;
            for (int t = 0; t < tile; t++) acc[t] += wt[phase[t] * na * nb] * DW_FN(load)(s + t * DW_VLEN);
        }
    for (int t = 0; t < tile; t++) DW_FN(store)(dst + t * DW_VLEN, acc[t]);
}

/* Every other element from p on, as one vector: the lanes of a stride-2 row. */
DW_INLINE void DW_FN(store_even)(DW_T *p, DW_VEC v)
{
    DW_T lanes[DW_LANES];
    memcpy(lanes, &v, sizeof v);
    for (int l = 0; l < DW_LANES; l++) p[2 * l] = lanes[l];
}

/* pixels: dst[(t*DW_VLEN + l)*dst_pix] = start + sum_taps w[tap] * src[t*DW_VLEN + l + tap], dst_pix
 * 1 or 2 (stride-2 input gradients write every other pixel). */
DW_INLINE void DW_FN(pixel_tile)(const DW_T *src, ptrdiff_t src_a, ptrdiff_t src_b,
                                 const DW_T *w, ptrdiff_t w_a, ptrdiff_t w_b, DW_T start, int accumulate,
                                 DW_T *dst, const int dst_pix, ptrdiff_t na, ptrdiff_t nb, const int tile)
{
    DW_VEC acc[DW_VECTOR_TILE];
    for (int t = 0; t < tile; t++)
        acc[t] = accumulate ? DW_FN(load_strided)(dst + t * DW_VLEN * dst_pix, dst_pix) : DW_FN(broadcast)(start);
    for (ptrdiff_t a = 0; a < na; a++)
        for (ptrdiff_t b = 0; b < nb; b++) {
            const DW_VEC wv = DW_FN(broadcast)(w[a * w_a + b * w_b]);
            const DW_T *s = src + a * src_a + b * src_b;
            for (int t = 0; t < tile; t++) acc[t] += wv * DW_FN(load)(s + t * DW_VLEN);
        }
    for (int t = 0; t < tile; t++) {
        if (dst_pix == 1)
            DW_FN(store)(dst + t * DW_VLEN, acc[t]);
        else
            DW_FN(store_even)(dst + t * DW_VLEN * 2, acc[t]);
    }
}

/* stream: dst[e] = start + sum_taps w[tap + e % nc] * src[e + tap] for e < total, the row of a few
 * (nc) channels taken as one flat stream (src and dst pixels adjacent). A function of its own so
 * that its weight table is on the stack only when it runs. */
static void DW_FN(stream)(const DW_T *src, ptrdiff_t src_a, ptrdiff_t src_b, const DW_T *w, ptrdiff_t w_a,
                          ptrdiff_t w_b, const DW_T *bias, DW_T *dst, ptrdiff_t na, ptrdiff_t nb, ptrdiff_t total,
                          ptrdiff_t nc, int accumulate)
{
    /* Weights (and bias) pre-arranged per phase: table[ph*na*nb + tap] lane l = w[tap][(ph+l) % nc]. */
    DW_VEC table[DW_STREAM_TABLE], start[DW_LANES];
    const ptrdiff_t n_taps = na * nb;
    ptrdiff_t e, phase[DW_VECTOR_TILE];
    for (ptrdiff_t ph = 0; ph < nc; ph++) {
        DW_T lanes[DW_LANES];
        for (ptrdiff_t a = 0; a < na; a++)
            for (ptrdiff_t b = 0; b < nb; b++) {
                for (int l = 0; l < DW_LANES; l++) lanes[l] = w[a * w_a + b * w_b + (ph + l) % nc];
                table[ph * n_taps + a * nb + b] = DW_FN(load)(lanes);
            }
        for (int l = 0; l < DW_LANES; l++) lanes[l] = bias && !accumulate ? bias[(ph + l) % nc] : 0;
        start[ph] = DW_FN(load)(lanes);
    }
#define DW_STREAM_TILE(n)                                                                                \
    do {                                                                                                 \
        for (int t = 0; t < n; t++) phase[t] = (e + t * DW_VLEN) % nc;                                   \
        DW_FN(stream_tile)(src + e, src_a, src_b, table, start, phase, accumulate, dst + e, na, nb, n);  \
    } while (0)
    e = 0;
    DW_TILED(e, total, DW_VLEN, DW_VECTOR_TILE, DW_STREAM_TILE);
    if (e < total && !accumulate) { /* the last partial vector overlaps the one before */
        e = total - DW_VLEN;
        DW_STREAM_TILE(1);
        e = total;
    }
#undef DW_STREAM_TILE
    /* the last elements, less than a vector */
    for (ptrdiff_t c = e % nc; e < total; e++, c = (c + 1 == nc) ? 0 : c + 1) {
        DW_T sum = accumulate ? dst[e] : bias ? bias[c] : 0;
        for (ptrdiff_t a = 0; a < na; a++)
            for (ptrdiff_t b = 0; b < nb; b++) sum += w[a * w_a + b * w_b + c] * src[e + a * src_a + b * src_b];
        dst[e] = sum;
    }
}

/* The vectors of one row on the pixel path, with destination step dp (1 or 2) and, when kb is not
 * 0, nb == kb known at compile time; returns how many pixels it covered. */
DW_INLINE ptrdiff_t DW_FN(pixel_row)(const DW_T *src, ptrdiff_t src_a, ptrdiff_t src_b, const DW_T *w, ptrdiff_t w_a,
                                     ptrdiff_t w_b, DW_T start, int accumulate, DW_T *dst, ptrdiff_t na, ptrdiff_t nb,
                                     ptrdiff_t vector_pixels, const int dp, const int kb)
{
    ptrdiff_t p = 0;
#define DW_PIXEL_TILE_N(n)                                                                               \
    DW_FN(pixel_tile)(src + p, src_a, src_b, w, w_a, w_b, start, accumulate, dst + p * dp, dp, na, kb ? kb : nb, n)
    DW_TILED(p, vector_pixels, DW_VLEN, DW_VECTOR_TILE, DW_PIXEL_TILE_N);
    if (p < vector_pixels && vector_pixels >= DW_VLEN && !accumulate) { /* overlap, as on the other paths */
        p = vector_pixels - DW_VLEN;
        DW_PIXEL_TILE_N(1);
        p = vector_pixels;
    }
#undef DW_PIXEL_TILE_N
    return p;
}

/* The scalar form of DW_FN(taps) for one row, channels [c0, nc) and pixels [p0, npix): whatever no
 * vector path covers. */
DW_INLINE void DW_FN(scalar_row)(const DW_T *src, ptrdiff_t src_pix, ptrdiff_t src_c, ptrdiff_t src_a, ptrdiff_t src_b,
                                 const DW_T *w, ptrdiff_t w_c, ptrdiff_t w_a, ptrdiff_t w_b, const DW_T *bias,
                                 ptrdiff_t bias_c, DW_T *dst, ptrdiff_t dst_pix, ptrdiff_t dst_c, ptrdiff_t na,
                                 ptrdiff_t nb, ptrdiff_t p0, ptrdiff_t npix, ptrdiff_t c0, ptrdiff_t nc, int accumulate)
{
    for (ptrdiff_t c = c0; c < nc; c++)
        for (ptrdiff_t q = p0; q < npix; q++) {
            DW_T sum = accumulate ? dst[q * dst_pix + c * dst_c] : bias ? bias[c * bias_c] : 0;
            for (ptrdiff_t a = 0; a < na; a++)
                for (ptrdiff_t b = 0; b < nb; b++)
                    sum += w[a * w_a + b * w_b + c * w_c] * src[q * src_pix + a * src_a + b * src_b + c * src_c];
            dst[q * dst_pix + c * dst_c] = sum;
        }
}

/* dst[r*dst_row + p*dst_pix + c*dst_c] = start + sum_{a<na, b<nb} w[a*w_a + b*w_b + c*w_c] * src[r*src_row + p*src_pix + a*src_a + b*src_b + c*src_c]
 * for r < nrows, p < npix, c < nc: a block of destination pixels that share their taps.
 * start = dst[...] when accumulate, else bias[c*bias_c] (0 when bias is NULL). With `nt`, the
 * channel path writes its aligned vectors with streaming stores (whole cache lines: channel
 * vectors of pixels DW_VBYTES apart). */
static void DW_FN(taps)(const DW_T *src, ptrdiff_t src_row, ptrdiff_t src_pix, ptrdiff_t src_c, ptrdiff_t src_a,
                        ptrdiff_t src_b, const DW_T *w, ptrdiff_t w_c, ptrdiff_t w_a, ptrdiff_t w_b, const DW_T *bias,
                        ptrdiff_t bias_c, DW_T *dst, ptrdiff_t dst_row, ptrdiff_t dst_pix, ptrdiff_t dst_c, ptrdiff_t na, ptrdiff_t nb,
                        ptrdiff_t nrows, ptrdiff_t npix, ptrdiff_t nc, int accumulate, int nt)
{
    ptrdiff_t c = 0, p, r;
    const int unit_channels = src_c == 1 && w_c == 1 && dst_c == 1;
    if (unit_channels && nc >= DW_VLEN) {
        /* An unaligned vector load costs two when it straddles cache lines: after a first vector at
         * channel 0, continue from the channel where the source is vector-aligned (its pixels all
         * are when the pixel stride is a whole number of vectors), overlapping the first. With
         * both ends unaligned that pays from four vectors of channels on. */
        const size_t misalign = (uintptr_t)src % sizeof(DW_VEC);
        const ptrdiff_t shift = misalign && misalign % sizeof(DW_T) == 0 && !accumulate && !nt && nc >= 4 * DW_VLEN
                                ? (ptrdiff_t)((sizeof(DW_VEC) - misalign) / sizeof(DW_T)) : 0;
        for (;; c = c == 0 && shift ? shift : c + DW_VLEN) {
            if (c + DW_VLEN > nc) { /* a last partial vector overlaps the one before, unless it would add twice */
                if (c == nc || accumulate) break;
                c = nc - DW_VLEN;
            }
            const DW_VEC start = bias && !accumulate ? DW_FN(load)(bias + c) : DW_FN(broadcast)(0);
#define DW_CHANNEL_TILE(n)                                                                               \
    DW_FN(channel_tile)(src + r * src_row + p * src_pix + c, src_pix, src_a, src_b, w + c, w_a, w_b, start,  \
                        accumulate, dst + r * dst_row + p * dst_pix + c, dst_pix, na, nb, nt, n)
            for (r = 0; r < nrows; r++) {
                p = 0;
                DW_TILED(p, npix, 1, DW_PIXEL_TILE, DW_CHANNEL_TILE);
            }
#undef DW_CHANNEL_TILE
        }
#ifdef DW_X86
        if (nt) _mm_sfence(); /* streamed results reach memory before any later store */
#endif
        if (c == nc) return;
    } else if (unit_channels && src_pix == nc && dst_pix == nc && npix * nc >= DW_VLEN && na * nb * nc <= DW_STREAM_TABLE) {
        for (r = 0; r < nrows; r++)
            DW_FN(stream)(src + r * src_row, src_a, src_b, w, w_a, w_b, bias, dst + r * dst_row, na, nb, npix * nc, nc,
                          accumulate);
        return;
    }
    /* The pixel path (NCHW planes, channel by channel) writes pixels 1 or 2 apart: a stride-2
     * destination is loaded, when accumulating, one element past each vector's last, so its last
     * vector stops a pixel early. */
    const int pixel_path = src_pix == 1 && (dst_pix == 1 || dst_pix == 2);
    const ptrdiff_t vector_pixels = npix - (dst_pix == 2);
#ifdef DW_NARROWER
    /* Too few channels, or too short a row, for this level's vectors: a narrower level's may fit. */
    if ((unit_channels && nc < DW_VLEN && nc >= DW_VLEN / 2) ||
        (pixel_path && vector_pixels < DW_VLEN && vector_pixels >= DW_VLEN / 2)) {
        DW_NARROWER_FN(taps)(src, src_row, src_pix, src_c, src_a, src_b, w, w_c, w_a, w_b, bias, bias_c, dst, dst_row,
                             dst_pix, dst_c, na, nb, nrows, npix, nc, accumulate, nt);
        return;
    }
#endif
    if (pixel_path) {
        /* 3-, 5- and 7-wide rows at each destination step get their own compiled instance */
        const int kind = (dst_pix == 2 ? 20 : 0) + (nb == 3 || nb == 5 || nb == 7 ? (int)nb : 0);
        for (c = 0; c < nc; c++) {
            const DW_T start = bias && !accumulate ? bias[c * bias_c] : 0;
            for (r = 0; r < nrows; r++) {
                const DW_T *s = src + c * src_c + r * src_row;
                DW_T *d = dst + c * dst_c + r * dst_row;
#define DW_PIXEL_CASE(code, dp, kb)                                                                      \
    case code:                                                                                           \
        p = DW_FN(pixel_row)(s, src_a, src_b, w + c * w_c, w_a, w_b, start, accumulate, d, na, nb, vector_pixels, \
                             dp, kb);                                                                    \
        break;
                switch (kind) {
                    DW_PIXEL_CASE(0, 1, 0)
                    DW_PIXEL_CASE(3, 1, 3)
                    DW_PIXEL_CASE(5, 1, 5)
                    DW_PIXEL_CASE(7, 1, 7)
                    DW_PIXEL_CASE(20, 2, 0)
                    DW_PIXEL_CASE(23, 2, 3)
                    DW_PIXEL_CASE(25, 2, 5)
                    DW_PIXEL_CASE(27, 2, 7)
                default:
                    p = 0; /* not reached: kind is one of the cases */
                }
#undef DW_PIXEL_CASE
                DW_FN(scalar_row)(src + r * src_row, src_pix, src_c, src_a, src_b, w, w_c, w_a, w_b, bias, bias_c,
                                  dst + r * dst_row, dst_pix, dst_c, na, nb, p, npix, c, c + 1, accumulate);
            }
        }
        return;
    }
    for (r = 0; r < nrows; r++)
        DW_FN(scalar_row)(src + r * src_row, src_pix, src_c, src_a, src_b, w, w_c, w_a, w_b, bias, bias_c,
                          dst + r * dst_row, dst_pix, dst_c, na, nb, 0, npix, c, nc, accumulate);
}

/* acc[c*acc_c] += sum_{p<npix} src[p*src_pix + c*src_c] * dy[p*dy_pix + c*dy_c]  for c < nc.
 * (src == NULL reads ones: the bias gradient.) The order of the sum depends only on the arguments. */
static void DW_FN(dot)(const DW_T *src, ptrdiff_t src_pix, ptrdiff_t src_c, const DW_T *dy, ptrdiff_t dy_pix,
                       ptrdiff_t dy_c, DW_T *acc, ptrdiff_t acc_c, ptrdiff_t npix, ptrdiff_t nc)
{
    ptrdiff_t c = 0, p;
    if ((src == NULL || src_c == 1) && dy_c == 1 && acc_c == 1) {
        for (; c + DW_VLEN <= nc; c += DW_VLEN) {
            DW_VEC sum0 = DW_FN(broadcast)(0), sum1 = sum0;
            for (p = 0; p + 1 < npix; p += 2) { /* two chains hide the add latency */
                const DW_VEC dy0 = DW_FN(load)(dy + p * dy_pix + c), dy1 = DW_FN(load)(dy + (p + 1) * dy_pix + c);
                sum0 += src ? DW_FN(load)(src + p * src_pix + c) * dy0 : dy0;
                sum1 += src ? DW_FN(load)(src + (p + 1) * src_pix + c) * dy1 : dy1;
            }
            if (p < npix) {
                const DW_VEC dy0 = DW_FN(load)(dy + p * dy_pix + c);
                sum0 += src ? DW_FN(load)(src + p * src_pix + c) * dy0 : dy0;
            }
            DW_FN(store)(acc + c, DW_FN(load)(acc + c) + (sum0 + sum1));
        }
    } else if (nc == 1 && (src == NULL || src_pix == 1) && dy_pix == 1 && npix >= DW_VLEN) {
        DW_VEC sum0 = DW_FN(broadcast)(0), sum1 = sum0;
        DW_T tail = 0;
        for (p = 0; p + 2 * DW_VLEN <= npix; p += 2 * DW_VLEN) {
            const DW_VEC dy0 = DW_FN(load)(dy + p), dy1 = DW_FN(load)(dy + p + DW_VLEN);
            sum0 += src ? DW_FN(load)(src + p) * dy0 : dy0;
            sum1 += src ? DW_FN(load)(src + p + DW_VLEN) * dy1 : dy1;
        }
        for (; p < npix; p++) tail += src ? src[p] * dy[p] : dy[p];
        acc[0] += DW_FN(horizontal_sum)(sum0 + sum1) + tail;
        return;
    }
    for (; c < nc; c++) {
        DW_T sum = 0;
        for (p = 0; p < npix; p++)
            sum += src ? src[p * src_pix + c * src_c] * dy[p * dy_pix + c * dy_c] : dy[p * dy_pix + c * dy_c];
        acc[c * acc_c] += sum;
    }
}

/* dot_taps for a constant number of taps: their sums stay in registers across the pixels, in
 * `phases` sets taking the pixels in turn, so that 8 or more sums are in flight (3 taps alone left
 * the FMA pipes waiting on each sum's previous product: 0.4 of their rate). */
#define DW_DOT_PHASES(ntap) ((ntap) >= 4 ? 2 : (8 + (ntap) - 1) / (ntap))
DW_INLINE void DW_FN(dot_taps_vector)(const DW_T *src, ptrdiff_t src_pix, ptrdiff_t src_tap, const DW_T *dy,
                                      ptrdiff_t dy_pix, DW_T *acc, ptrdiff_t acc_tap, ptrdiff_t npix, const int ntap)
{
    const int phases = DW_DOT_PHASES(ntap);
    DW_VEC sum[8][7];
    ptrdiff_t p = 0;
    DW_UNROLL
    for (int h = 0; h < phases; h++) {
        DW_UNROLL
        for (int j = 0; j < ntap; j++) sum[h][j] = DW_FN(broadcast)(0);
    }
    for (; p + phases <= npix; p += phases) {
        DW_UNROLL
        for (int h = 0; h < phases; h++) {
            const DW_VEC dyv = DW_FN(load)(dy + (p + h) * dy_pix);
            DW_UNROLL
            for (int j = 0; j < ntap; j++) sum[h][j] += DW_FN(load)(src + (p + h) * src_pix + j * src_tap) * dyv;
        }
    }
    for (; p < npix; p++) {
        const DW_VEC dyv = DW_FN(load)(dy + p * dy_pix);
        DW_UNROLL
        for (int j = 0; j < ntap; j++) sum[0][j] += DW_FN(load)(src + p * src_pix + j * src_tap) * dyv;
    }
    DW_UNROLL
    for (int j = 0; j < ntap; j++) {
        DW_VEC total = sum[0][j];
        DW_UNROLL
        for (int h = 1; h < phases; h++) total += sum[h][j];
        DW_FN(store)(acc + j * acc_tap, DW_FN(load)(acc + j * acc_tap) + total);
    }
}
#undef DW_DOT_PHASES

/* dot_taps_vector where the taps are whole pixels apart (src_tap == src_pix: stride 1 and dilation 1,
 * or stride and dilation 2): tap j of pixel p reads the source pixel tap 0 of pixel p + j does, so a
 * window of ntap source vectors slides along in registers, one new vector and one dy vector loaded
 * per pixel for its ntap FMAs, where loading each tap's vector took ntap + 1 loads, which AVX-512 on
 * AMD's cores issues one a cycle, the rate of its FMAs. The window's registers rotate by name: each
 * loop step takes ntap pixels, the source vector of pixel p + j in x[(u + j) % ntap] at its step u.
 * (2*ntap + 1 vector registers, 15 at 7 taps: AVX2's 16 hold them with no spill; there, one thread,
 * convnext-56x96 7x7 1.2x and effnet-28x240 5x5 1.09x faster than dot_taps_vector; float alone
 * there, for the package's size. The baseline level keeps dot_taps_vector.) */
DW_INLINE void DW_FN(dot_taps_sliding)(const DW_T *src, ptrdiff_t src_pix, const DW_T *dy, ptrdiff_t dy_pix,
                                       DW_T *acc, ptrdiff_t acc_tap, ptrdiff_t npix, const int ntap)
{
    _Static_assert(DW_DOT_MAX_TAPS <= 16, "DW_UNROLL unrolls the loops over the taps completely");
    DW_VEC sum[DW_DOT_MAX_TAPS], x[DW_DOT_MAX_TAPS];
    ptrdiff_t p = 0;
    DW_UNROLL
    for (int j = 0; j < ntap; j++) sum[j] = DW_FN(broadcast)(0);
    DW_UNROLL
    for (int j = 0; j + 1 < ntap; j++) x[j] = DW_FN(load)(src + j * src_pix);
    for (; p + ntap <= npix; p += ntap) {
        DW_UNROLL
        for (int u = 0; u < ntap; u++) {
            const DW_VEC dyv = DW_FN(load)(dy + (p + u) * dy_pix);
            x[(u + ntap - 1) % ntap] = DW_FN(load)(src + (p + u + ntap - 1) * src_pix);
            DW_UNROLL
            for (int j = 0; j < ntap; j++) sum[j] += x[(u + j) % ntap] * dyv;
        }
    }
    DW_UNROLL
    for (int u = 0; u < ntap; u++) { /* the last npix % ntap pixels */
        if (p + u >= npix) break;
        const DW_VEC dyv = DW_FN(load)(dy + (p + u) * dy_pix);
        x[(u + ntap - 1) % ntap] = DW_FN(load)(src + (p + u + ntap - 1) * src_pix);
        DW_UNROLL
        for (int j = 0; j < ntap; j++) sum[j] += x[(u + j) % ntap] * dyv;
    }
    DW_UNROLL
    for (int j = 0; j < ntap; j++) DW_FN(store)(acc + j * acc_tap, DW_FN(load)(acc + j * acc_tap) + sum[j]);
}

/* acc[j*acc_tap + c] += sum_{p<npix} src[p*src_pix + j*src_tap + c] * dy[p*dy_pix + c]  for j < ntap <= 7,
 * c < nc: the filter gradient of one kernel row, each dy vector loaded once for all its taps. */
static void DW_FN(dot_taps)(const DW_T *src, ptrdiff_t src_pix, ptrdiff_t src_tap, const DW_T *dy, ptrdiff_t dy_pix,
                            DW_T *acc, ptrdiff_t acc_tap, ptrdiff_t ntap, ptrdiff_t npix, ptrdiff_t nc)
{
    _Static_assert(DW_DOT_MAX_TAPS == 7, "the cases below list every tap count up to DW_DOT_MAX_TAPS");
    ptrdiff_t c = 0;
    const int sliding = (DW_VBYTES == 64 || (DW_VBYTES == 32 && sizeof(DW_T) == 4)) && src_tap == src_pix
                        && ntap >= 4;
    for (; c + DW_VLEN <= nc; c += DW_VLEN) {
#define DW_DOT_TAPS_CASE(k)                                                                              \
    case k:                                                                                              \
        if (sliding)                                                                                     \
            DW_FN(dot_taps_sliding)(src + c, src_pix, dy + c, dy_pix, acc + c, acc_tap, npix, k);          \
        else                                                                                             \
            DW_FN(dot_taps_vector)(src + c, src_pix, src_tap, dy + c, dy_pix, acc + c, acc_tap, npix, k);  \
        break;
        switch (ntap) {
            DW_DOT_TAPS_CASE(1)
            DW_DOT_TAPS_CASE(2)
            DW_DOT_TAPS_CASE(3)
            DW_DOT_TAPS_CASE(4)
            DW_DOT_TAPS_CASE(5)
            DW_DOT_TAPS_CASE(6)
            DW_DOT_TAPS_CASE(7)
        }
#undef DW_DOT_TAPS_CASE
    }
    for (ptrdiff_t j = 0; j < ntap; j++)
        DW_FN(dot)(src + j * src_tap + c, src_pix, 1, dy + c, dy_pix, 1, acc + j * acc_tap + c, 1, npix, nc - c);
}

/* One output pixel's share of a window's sums: its dy vector times the source vectors of taps
 * b0 <= b < b1 of each of kh rows (the taps whose columns lie in the image), at element `at`. */
#define DW_WINDOW_MAX 3
/* Rows read in place are strided by whole pixels of many channels, one vector at a time: a stride
 * the prefetchers do not follow across pages. So each pixel's rows are fetched ahead: from memory,
 * DW_WINDOW_AHEAD elements past its last tap, lines a later vector reads (2 vCPUs of an AVX-512
 * AMD EPYC, one thread, batch 16, 3x3: 128 bytes 1.1-1.4x faster than none, 256 bytes 1.0-1.2x);
 * from the last-level cache (DW_WINDOW_CACHED), the lanes at hand DW_WINDOW_AHEAD_PIXELS pixels
 * ahead, which the other misses in pixels wider than 128 bytes (see WINDOW_CACHED_WIDTH in
 * _kernels.pyx; from memory they ran 0.8-0.9x). */
#define DW_WINDOW_AHEAD (128 / (ptrdiff_t)sizeof(DW_T))
#define DW_WINDOW_AHEAD_PIXELS 2
/* `ahead`: the element past `at` fetched for each row (0: none). */
DW_INLINE void DW_FN(window_pixel)(DW_VEC sum[DW_WINDOW_MAX][DW_WINDOW_MAX], DW_VEC *bias, const DW_T *const *rows,
                                   ptrdiff_t at, ptrdiff_t src_tap, DW_VEC dyv, ptrdiff_t ahead, const int kh,
                                   const int b0, const int b1)
{
    DW_IN_REGISTER(dyv);
    *bias += dyv;
    DW_UNROLL
    for (int a = 0; a < kh; a++) {
        if (ahead) __builtin_prefetch(rows[a] + at + ahead);
        DW_UNROLL
        for (int b = b0; b < b1; b++) sum[a][b] += DW_FN(load)(rows[a] + at + b * src_tap) * dyv;
    }
}

/* dot_window for one vector of lanes (lane c on) and a kh x kw window known at compile time: every
 * tap's sum (and the bias's) in a register across the rows, started from acc and stored back once.
 * The first pixel leaves out its first column of taps with DW_WINDOW_LEFT in `edges`, the last its
 * last with DW_WINDOW_RIGHT; DW_WINDOW_STRIDED prefetches the rows and dy (DW_WINDOW_CACHED: how). */
DW_INLINE void DW_FN(dot_window_vector)(const DW_T *const *rows, const DW_T *const *dys, ptrdiff_t nrows,
                                        ptrdiff_t off, ptrdiff_t src_pix, ptrdiff_t src_tap, ptrdiff_t dy_pix,
                                        ptrdiff_t c, DW_T *acc, ptrdiff_t acc_tap, DW_T *bias_acc, ptrdiff_t npix,
                                        int edges, const int kh, const int kw)
{
    const int left = edges & DW_WINDOW_LEFT, right = (edges & DW_WINDOW_RIGHT) != 0;
    const int cached = (edges & DW_WINDOW_CACHED) != 0;
    const ptrdiff_t ahead = !(edges & DW_WINDOW_STRIDED) ? 0
                            : cached ? DW_WINDOW_AHEAD_PIXELS * src_pix : (kw - 1) * src_tap + DW_WINDOW_AHEAD;
    const ptrdiff_t dy_ahead = cached ? DW_WINDOW_AHEAD_PIXELS * dy_pix : DW_WINDOW_AHEAD;
    DW_VEC sum[DW_WINDOW_MAX][DW_WINDOW_MAX], bias = bias_acc ? DW_FN(load)(bias_acc + c) : DW_FN(broadcast)(0);
    DW_UNROLL
    for (int a = 0; a < kh; a++) {
        DW_UNROLL
        for (int b = 0; b < kw; b++) sum[a][b] = DW_FN(load)(acc + (a * kw + b) * acc_tap + c);
    }
    for (ptrdiff_t j = 0; j < nrows; j++, rows += kh) {
        const DW_T *dy = dys[j] + c;
        ptrdiff_t p = 0, end = npix - right;
        if (left && right && npix == 1) {
            DW_FN(window_pixel)(sum, &bias, rows, off + c, src_tap, DW_FN(load)(dy), 0, kh, 1, kw - 1);
            p = end = npix;
        } else if (left) {
            DW_FN(window_pixel)(sum, &bias, rows, off + c, src_tap, DW_FN(load)(dy), 0, kh, 1, kw);
            p = 1;
        }
        for (; p < end; p++) {
            if (ahead) __builtin_prefetch(dy + p * dy_pix + dy_ahead);
            DW_FN(window_pixel)(sum, &bias, rows, off + c + p * src_pix, src_tap, DW_FN(load)(dy + p * dy_pix),
                                ahead, kh, 0, kw);
        }
        if (p < npix)
            DW_FN(window_pixel)(sum, &bias, rows, off + c + p * src_pix, src_tap, DW_FN(load)(dy + p * dy_pix), 0, kh,
                                0, kw - 1);
    }
    DW_UNROLL
    for (int a = 0; a < kh; a++) {
        DW_UNROLL
        for (int b = 0; b < kw; b++) DW_FN(store)(acc + (a * kw + b) * acc_tap + c, sum[a][b]);
    }
    if (bias_acc) DW_FN(store)(bias_acc + c, bias);
}

/* acc[(a*kw + b)*acc_tap + c] += sum_{j<nrows, p<npix} rows[j*kh + a][off + p*src_pix + b*src_tap + c]
 *                                                    * dys[j][p*dy_pix + c],
 * and bias_acc[c] += sum_{j, p} dys[j][p*dy_pix + c] (bias_acc NULL: none), for c < nc: the filter
 * (and bias) gradient of nrows output rows of the same window rows in the image (rows j*kh to
 * j*kh + kh - 1 those of output row j), whole windows at once, each dy vector loaded once for
 * every tap, the sums in registers across the rows (7-pixel rows of 960 channels, one at a time
 * with their sums loaded and stored, ran 1.08x slower). `edges` (DW_WINDOW_* flags): with LEFT,
 * pixel 0's taps b = 0 lie in the padding, with RIGHT, pixel npix - 1's taps b = kw - 1; those are
 * neither read nor added (so that rows can be read in place, with no padded copy). STRIDED: the
 * rows are strided by more channels than nc (the image's, read in place), and are prefetched
 * (CACHED: as suits an image in the last-level cache). 3-wide windows of 1 to 3 rows only (returns
 * 0, nothing done, for others: the rows of a 3x3 kernel that lie in the image): a 5x5 window's sums
 * still fit AVX-512's registers, but its 25 source pointers do not fit the general ones, and
 * reloading them halved the rate. */
static int DW_FN(dot_window)(const DW_T *const *rows, const DW_T *const *dys, ptrdiff_t nrows, ptrdiff_t off,
                             ptrdiff_t src_pix, ptrdiff_t src_tap, ptrdiff_t dy_pix, DW_T *acc, ptrdiff_t acc_tap,
                             DW_T *bias_acc, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t npix, ptrdiff_t nc, int edges)
{
    if (kh < 1 || kh > DW_WINDOW_MAX || kw != DW_WINDOW_MAX) return 0;
    if (npix <= 0) return 1;
    const int left = (edges & DW_WINDOW_LEFT) != 0, right = (edges & DW_WINDOW_RIGHT) != 0;
    ptrdiff_t c = 0;
    for (; c + DW_VLEN <= nc; c += DW_VLEN) {
        switch (kh) {
            case 1: DW_FN(dot_window_vector)(rows, dys, nrows, off, src_pix, src_tap, dy_pix, c, acc, acc_tap, bias_acc,
                                             npix, edges, 1, DW_WINDOW_MAX); break;
            case 2: DW_FN(dot_window_vector)(rows, dys, nrows, off, src_pix, src_tap, dy_pix, c, acc, acc_tap, bias_acc,
                                             npix, edges, 2, DW_WINDOW_MAX); break;
            default: DW_FN(dot_window_vector)(rows, dys, nrows, off, src_pix, src_tap, dy_pix, c, acc, acc_tap,
                                              bias_acc, npix, edges, DW_WINDOW_MAX, DW_WINDOW_MAX);
        }
    }
    if (c < nc) /* the last lanes: each tap over the pixels whose column of it lies in the image */
        for (ptrdiff_t j = 0; j < nrows; j++) {
            for (ptrdiff_t a = 0; a < kh; a++)
                for (ptrdiff_t b = 0; b < kw; b++) {
                    const ptrdiff_t p0 = b == 0 && left, p1 = npix - (b == kw - 1 && right);
                    DW_FN(dot)(rows[j * kh + a] + off + p0 * src_pix + b * src_tap + c, src_pix, 1,
                               dys[j] + p0 * dy_pix + c, dy_pix, 1, acc + (a * kw + b) * acc_tap + c, 1, p1 - p0,
                               nc - c);
                }
            if (bias_acc) DW_FN(dot)(NULL, 0, 0, dys[j] + c, dy_pix, 1, bias_acc + c, 1, npix, nc - c);
        }
    return 1;
}

#define DW_STORE_FLOAT (DW_LANES * 4 == DW_VBYTES)
/* An output store, streaming (past the caches) when `nt` and the address allows it: for results
 * much larger than the caches, whose lines would otherwise be read in before being overwritten. */
DW_INLINE void DW_FN(store_out)(DW_T *p, DW_VEC v, int nt)
{
#ifdef DW_X86
    if (nt && (uintptr_t)p % sizeof v == 0) {
#if DW_VBYTES == 64 && DW_STORE_FLOAT
        _mm512_stream_ps(p, (__m512)v);
#elif DW_VBYTES == 64
        _mm512_stream_pd(p, (__m512d)v);
#elif DW_VBYTES == 32 && DW_STORE_FLOAT
        _mm256_stream_ps(p, (__m256)v);
#elif DW_VBYTES == 32
        _mm256_stream_pd(p, (__m256d)v);
#elif DW_STORE_FLOAT
        _mm_stream_ps(p, (__m128)v);
#else
        _mm_stream_pd(p, (__m128d)v);
#endif
        return;
    }
#else
    (void)nt;
#endif
    DW_FN(store)(p, v);
}

#if defined(DW_X86) && DW_VBYTES == 64
/* p[0 .. n), n < DW_VLEN, in the first lanes of a vector (the others zero), reading nothing past them. */
DW_INLINE DW_VEC DW_FN(load_first)(const DW_T *p, ptrdiff_t n)
{
#if DW_STORE_FLOAT
    return (DW_VEC)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
#else
    return (DW_VEC)_mm512_maskz_loadu_pd((__mmask8)((1u << n) - 1), p);
#endif
}
#define DW_HAS_LOAD_FIRST 1
#endif

#undef DW_STORE_FLOAT

/* Lane lists for the register transpose: the stage of block size s maps vectors a, b (rows i and i + s
 * of a tile, i without bit s) to these lanes of a and b concatenated. */
#ifndef DW_LANES_2
#define DW_SWAP_LO(s, j) (((j) & (s)) ? DW_LANES + (j) - (s) : (j))
#define DW_SWAP_HI(s, j) (((j) & (s)) ? DW_LANES + (j) : (j) + (s))
#define DW_LANES_2(F, s) F(s, 0), F(s, 1)
#define DW_LANES_4(F, s) DW_LANES_2(F, s), F(s, 2), F(s, 3)
#define DW_LANES_8(F, s) DW_LANES_4(F, s), F(s, 4), F(s, 5), F(s, 6), F(s, 7)
#define DW_LANES_16(F, s) DW_LANES_8(F, s), F(s, 8), F(s, 9), F(s, 10), F(s, 11), F(s, 12), F(s, 13), F(s, 14), F(s, 15)
#endif

#if defined(__clang__) || __GNUC__ >= 12
#define DW_TRANSPOSE_IN_REGISTERS 1
#if DW_LANES == 16
#define DW_LANE_LIST DW_LANES_16
#elif DW_LANES == 8
#define DW_LANE_LIST DW_LANES_8
#elif DW_LANES == 4
#define DW_LANE_LIST DW_LANES_4
#else
#define DW_LANE_LIST DW_LANES_2
#endif

/* The DW_VLEN x DW_VLEN tile v transposed in registers, in log2(DW_VLEN) stages: the stage of size s
 * swaps the off-diagonal s x s blocks of every 2s x 2s block. */
DW_INLINE void DW_FN(transpose_tile)(DW_VEC *v)
{
#define DW_SWAP_STAGE(s)                                                                                 \
    DW_UNROLL                                                                                            \
    for (int i = 0; i < DW_LANES; i++)                                                                   \
        if (!(i & (s))) {                                                                                \
            const DW_VEC a = v[i], b = v[i + (s)];                                                       \
            v[i] = __builtin_shufflevector(a, b, DW_LANE_LIST(DW_SWAP_LO, s));                           \
            v[i + (s)] = __builtin_shufflevector(a, b, DW_LANE_LIST(DW_SWAP_HI, s));                     \
        }
    DW_SWAP_STAGE(1)
#if DW_LANES >= 4
    DW_SWAP_STAGE(2)
#endif
#if DW_LANES >= 8
    DW_SWAP_STAGE(4)
#endif
#if DW_LANES >= 16
    DW_SWAP_STAGE(8)
#endif
#undef DW_SWAP_STAGE
}

/* Three or four planes' vectors of DW_VLEN pixels to the vectors of those pixels (an RGB or RGBA
 * image's channels put back together), and back. Each result vector k gathers its lanes from three
 * vectors in two two-vector shuffles (lane lists A, then B), or from four in three (A of vectors 0
 * and 1, B of 2 and 3, then PAIRS of the two). */
#define DW_MIX3(out, in, A, B, k)                                                                        \
    out[k] = __builtin_shufflevector(__builtin_shufflevector(in[0], in[1], DW_LANE_LIST(A, k)), in[2],     \
                                     DW_LANE_LIST(B, k))
#define DW_MIX4(out, in, A, B, PAIRS, k)                                                                 \
    out[k] = __builtin_shufflevector(__builtin_shufflevector(in[0], in[1], DW_LANE_LIST(A, k)),           \
                                     __builtin_shufflevector(in[2], in[3], DW_LANE_LIST(B, k)), DW_LANE_LIST(PAIRS, k))
/* Lane l of pixel vector k is element e = k*DW_VLEN + l of the pixels: pixel e / n of plane e % n. */
#define DW_PIX_E(k, l) ((k) * DW_LANES + (l))
#define DW_RGB_A(k, l) (DW_PIX_E(k, l) % 3 == 0 ? DW_PIX_E(k, l) / 3 : DW_PIX_E(k, l) % 3 == 1 ? DW_LANES + DW_PIX_E(k, l) / 3 : 0)
#define DW_RGB_B(k, l) (DW_PIX_E(k, l) % 3 == 2 ? DW_LANES + DW_PIX_E(k, l) / 3 : (l))
#define DW_RGBA_A(k, l) (DW_PIX_E(k, l) % 4 == 0 ? DW_PIX_E(k, l) / 4 : DW_LANES + DW_PIX_E(k, l) / 4)
#define DW_RGBA_B(k, l) (DW_PIX_E(k, l) % 4 == 2 ? DW_PIX_E(k, l) / 4 : DW_LANES + DW_PIX_E(k, l) / 4)
#define DW_RGBA_PAIRS(k, l) (DW_PIX_E(k, l) % 4 < 2 ? (l) : DW_LANES + (l))
/* Lane l of plane c is element e = n*l + c of the pixels: lane e % DW_VLEN of pixel vector e / DW_VLEN. */
#define DW_PLANE_E(n, c, l) ((n) * (l) + (c))
#define DW_PLANE3_A(c, l) (DW_PLANE_E(3, c, l) < 2 * DW_LANES ? DW_PLANE_E(3, c, l) : 0)
#define DW_PLANE3_B(c, l) (DW_PLANE_E(3, c, l) >= 2 * DW_LANES ? DW_PLANE_E(3, c, l) - DW_LANES : (l))
#define DW_PLANE4_A(c, l) (DW_PLANE_E(4, c, l) < 2 * DW_LANES ? DW_PLANE_E(4, c, l) : 0)
#define DW_PLANE4_B(c, l) (DW_PLANE_E(4, c, l) >= 2 * DW_LANES ? DW_PLANE_E(4, c, l) - 2 * DW_LANES : 0)
#define DW_PLANE4_PAIRS(c, l) (DW_PLANE_E(4, c, l) < 2 * DW_LANES ? (l) : DW_LANES + (l))

/* n (3 or 4) planes' vectors to pixel vectors and back. */
DW_INLINE void DW_FN(pixels_of)(const DW_VEC *planes, DW_VEC *pixels, ptrdiff_t n)
{
    if (n == 3) {
        DW_MIX3(pixels, planes, DW_RGB_A, DW_RGB_B, 0);
        DW_MIX3(pixels, planes, DW_RGB_A, DW_RGB_B, 1);
        DW_MIX3(pixels, planes, DW_RGB_A, DW_RGB_B, 2);
    } else {
        DW_MIX4(pixels, planes, DW_RGBA_A, DW_RGBA_B, DW_RGBA_PAIRS, 0);
        DW_MIX4(pixels, planes, DW_RGBA_A, DW_RGBA_B, DW_RGBA_PAIRS, 1);
        DW_MIX4(pixels, planes, DW_RGBA_A, DW_RGBA_B, DW_RGBA_PAIRS, 2);
        DW_MIX4(pixels, planes, DW_RGBA_A, DW_RGBA_B, DW_RGBA_PAIRS, 3);
    }
}

DW_INLINE void DW_FN(planes_of)(const DW_VEC *pixels, DW_VEC *planes, ptrdiff_t n)
{
    if (n == 3) {
        DW_MIX3(planes, pixels, DW_PLANE3_A, DW_PLANE3_B, 0);
        DW_MIX3(planes, pixels, DW_PLANE3_A, DW_PLANE3_B, 1);
        DW_MIX3(planes, pixels, DW_PLANE3_A, DW_PLANE3_B, 2);
    } else {
        DW_MIX4(planes, pixels, DW_PLANE4_A, DW_PLANE4_B, DW_PLANE4_PAIRS, 0);
        DW_MIX4(planes, pixels, DW_PLANE4_A, DW_PLANE4_B, DW_PLANE4_PAIRS, 1);
        DW_MIX4(planes, pixels, DW_PLANE4_A, DW_PLANE4_B, DW_PLANE4_PAIRS, 2);
        DW_MIX4(planes, pixels, DW_PLANE4_A, DW_PLANE4_B, DW_PLANE4_PAIRS, 3);
    }
}

/* (for _microkernels_convert.h, which takes integer RGB and RGBA pixels apart too) */
#define DW_HAS_PLANES_OF 1
#undef DW_MIX3
#undef DW_MIX4
#undef DW_PIX_E
#undef DW_RGB_A
#undef DW_RGB_B
#undef DW_RGBA_A
#undef DW_RGBA_B
#undef DW_RGBA_PAIRS
#undef DW_PLANE_E
#undef DW_PLANE3_A
#undef DW_PLANE3_B
#undef DW_PLANE4_A
#undef DW_PLANE4_B
#undef DW_PLANE4_PAIRS
#undef DW_LANE_LIST
#endif

/* dst[a*dst_a + b] = src[b*src_b + a] for a < na, b < nb: planes (NCHW) to channel-interleaved pixels
 * and back, for the NCHW packed path. Square tiles of a vector's lanes go through registers, the last
 * tile along each side overlapping the one before (a copy may write an element twice). */
static void DW_FN(transpose)(const DW_T *src, ptrdiff_t src_b, DW_T *dst, ptrdiff_t dst_a, ptrdiff_t na, ptrdiff_t nb,
                             int nt)
{
#ifdef DW_TRANSPOSE_IN_REGISTERS
    /* Three or four planes to pixels of as many elements and back (an RGB or RGBA image taken apart
     * for its planes' kernels: the register tiles below took as long as a 7x7 kernel's sums); the
     * pixels (results) streamed with `nt`, the planes (a ring's rows) never. */
    if ((nb == 3 || nb == 4) && dst_a == nb && na >= DW_VLEN) {
        DW_VEC planes[4], pixels[4];
        for (ptrdiff_t a_next = 0; a_next < na; a_next += DW_VLEN) {
            const ptrdiff_t a = a_next + DW_VLEN <= na ? a_next : na - DW_VLEN;
            for (int c = 0; c < nb; c++) planes[c] = DW_FN(load)(src + c * src_b + a);
            DW_FN(pixels_of)(planes, pixels, nb);
            for (int k = 0; k < nb; k++) DW_FN(store_out)(dst + nb * a + k * DW_VLEN, pixels[k], nt);
        }
#ifdef DW_X86
        if (nt) _mm_sfence(); /* streamed results reach memory before any later store */
#endif
        return;
    }
    if ((na == 3 || na == 4) && src_b == na && nb >= DW_VLEN) {
        DW_VEC planes[4], pixels[4];
        for (ptrdiff_t b_next = 0; b_next < nb; b_next += DW_VLEN) {
            const ptrdiff_t b = b_next + DW_VLEN <= nb ? b_next : nb - DW_VLEN;
            for (int k = 0; k < na; k++) pixels[k] = DW_FN(load)(src + na * b + k * DW_VLEN);
            DW_FN(planes_of)(pixels, planes, na);
            for (int c = 0; c < na; c++) DW_FN(store)(dst + c * dst_a + b, planes[c]);
        }
        return;
    }
    if (na >= DW_VLEN && nb >= DW_VLEN) {
        /* The tiles go along the rows of the side whose rows lie farther apart (the planes, read
         * or written), a vector's worth of them at a time: a few streams of whole lines, where
         * the other order wrote part of a line of every plane in turn. */
        const int along_b = dst_a > src_b;
        const ptrdiff_t n_outer = along_b ? na : nb, n_inner = along_b ? nb : na;
        DW_VEC v[DW_LANES];
        for (ptrdiff_t outer_next = 0; outer_next < n_outer; outer_next += DW_VLEN) {
            const ptrdiff_t outer = outer_next + DW_VLEN <= n_outer ? outer_next : n_outer - DW_VLEN;
            for (ptrdiff_t inner_next = 0; inner_next < n_inner; inner_next += DW_VLEN) {
                const ptrdiff_t inner = inner_next + DW_VLEN <= n_inner ? inner_next : n_inner - DW_VLEN;
                const ptrdiff_t a = along_b ? outer : inner, b = along_b ? inner : outer;
                DW_UNROLL
                for (int i = 0; i < DW_LANES; i++) v[i] = DW_FN(load)(src + (b + i) * src_b + a);
                DW_FN(transpose_tile)(v);
                DW_UNROLL
                for (int i = 0; i < DW_LANES; i++) DW_FN(store_out)(dst + (a + i) * dst_a + b, v[i], nt);
            }
        }
#ifdef DW_X86
        if (nt) _mm_sfence(); /* streamed results reach memory before any later store */
#endif
        return;
    }
#endif
#if defined(DW_TRANSPOSE_IN_REGISTERS) && defined(DW_HAS_LOAD_FIRST)
    /* Rows shorter than a vector (the 7- and 14-pixel planes of the packed path) in this level's
     * tiles too: each row loaded under a mask of its na elements, na transposed vectors stored
     * (the narrower levels' tiles took 62% of mnv2-7x960's NCHW forward). */
    if (na < DW_VLEN && nb >= DW_VLEN) {
        DW_VEC v[DW_LANES];
        for (ptrdiff_t b_next = 0; b_next < nb; b_next += DW_VLEN) {
            const ptrdiff_t b = b_next + DW_VLEN <= nb ? b_next : nb - DW_VLEN;
            DW_UNROLL
            for (int i = 0; i < DW_LANES; i++) v[i] = DW_FN(load_first)(src + (b + i) * src_b, na);
            DW_FN(transpose_tile)(v);
            DW_UNROLL
            for (int i = 0; i < DW_LANES; i++)
                if (i < na) DW_FN(store_out)(dst + i * dst_a + b, v[i], nt);
        }
        if (nt) _mm_sfence();
        return;
    }
#endif
#ifdef DW_NARROWER
    if (na >= DW_VLEN / 2 && nb >= DW_VLEN / 2) {
        DW_NARROWER_FN(transpose)(src, src_b, dst, dst_a, na, nb, nt);
        return;
    }
#endif
    for (ptrdiff_t b = 0; b < nb; b++)
        for (ptrdiff_t a = 0; a < na; a++) dst[a * dst_a + b] = src[b * src_b + a];
}
#undef DW_TRANSPOSE_IN_REGISTERS
#undef DW_HAS_LOAD_FIRST

/* p[:n] = a clamping activation of p[:n] (DW_CLAMP_*): relu, relu6 = min(max(p, 0), 6), hard_swish
 * = p * relu6(p + 3) / 6, applied as results leave a thread's scratch. Compare-and-mask selects,
 * exact: NaN compares false and is kept, as -0 is. (Scalar code keeps a mispredicted branch per
 * element of random sign: a fused ReLU then cost 8-17x the 3x3 convolution it followed.) */
typedef __typeof__((DW_VEC){0} < (DW_VEC){0}) DW_FN(mask);
DW_INLINE DW_VEC DW_FN(select)(DW_FN(mask) m, DW_VEC if_set, DW_VEC if_clear)
{
    return (DW_VEC)(((DW_FN(mask))if_set & m) | ((DW_FN(mask))if_clear & ~m));
}

DW_INLINE DW_VEC DW_FN(relu6)(DW_VEC v)
{
    const DW_VEC zero = DW_FN(broadcast)(0), six = DW_FN(broadcast)(6);
    v = DW_FN(select)(v < zero, zero, v);
    return DW_FN(select)(v > six, six, v);
}

static void DW_FN(clamp)(DW_T *p, ptrdiff_t n, int which)
{
    const DW_VEC zero = DW_FN(broadcast)(0), three = DW_FN(broadcast)(3), six = DW_FN(broadcast)(6);
    ptrdiff_t i = 0;
    for (; i + DW_VLEN <= n; i += DW_VLEN) {
        const DW_VEC v = DW_FN(load)(p + i);
        DW_VEC r;
        if (which == DW_CLAMP_RELU)
            r = DW_FN(select)(v < zero, zero, v);
        else if (which == DW_CLAMP_RELU6)
            r = DW_FN(relu6)(v);
        else
            r = v * DW_FN(relu6)(v + three) / six;
        DW_FN(store)(p + i, r);
    }
    for (; i < n; i++) {
        const DW_T v = p[i];
        DW_T t = which == DW_CLAMP_HARD_SWISH ? v + 3 : v;
        t = t < 0 ? 0 : t;
        t = which != DW_CLAMP_RELU && t > 6 ? 6 : t;
        p[i] = which == DW_CLAMP_HARD_SWISH ? v * t / 6 : t;
    }
}

#undef DW_VEC
#undef DW_VLEN
#undef DW_PIXEL_TILE
#undef DW_VECTOR_TILE
#undef DW_STREAM_TABLE
#undef DW_INLINE
#undef DW_UNROLL
#undef DW_TILED
#undef DW_WINDOW_MAX
