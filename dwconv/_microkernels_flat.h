/* The forward's flat-plane micro-kernels: NCHW planes read in place, their borders as lane masks.
 *
 * Included by _microkernels_level.h after _microkernels_body.h, once per (instruction-set level,
 * element type), with the same macros defined (DW_T, DW_VBYTES, DW_LANES, DW_FN). Only levels
 * with masked loads (AVX2, AVX-512) compile it.
 *
 * At stride 1, with output planes as wide as the input's, output pixel o of a plane (row-major,
 * any width) reads source element o + off[t] for tap t: one offset per tap for the whole plane.
 * A vector of neighbouring output pixels, however many rows of a narrow plane it spans, is then
 * one masked load and one FMA per tap: the mask (built once per call, _rings.pxi) clears the lanes
 * whose tap falls in the padding, and nothing is read there. No copy, no transposition, no border
 * code; only the plane's last vector is stored under a mask.
 *
 * 3x3 kernels on planes at least a vector wide run in row tiles instead (flat_rows), at stride 1
 * or 2, and 5x5 and 7x7 kernels at stride 1: several output rows x vectors along a row, each
 * source vector loaded once for every output row it serves, and the lanes outside the plane masked
 * where the tile's place says so (3x3: 1.4-1.9x faster than one load per tap on 28- to 112-pixel
 * planes, batch 1 and 16). 3x3 kernels on planes narrower than a vector run them a row to a vector
 * (narrow_tile; at AVX-512 two planes' rows to one where they fit half a vector), the tap columns
 * rotations of it. Planes of a few dozen pixels run a vector's worth at a time instead
 * (flat_groups): the group is whole vectors, each lane a pixel of one of its planes.
 */

#if defined(DW_X86) && DW_VBYTES >= 32
#define DW_VEC DW_FN(vec)
#define DW_VLEN ((ptrdiff_t)DW_LANES)
#define DW_INLINE static inline __attribute__((always_inline))
#define DW_FLAT_FLOAT (DW_LANES * 4 == DW_VBYTES)
/* Register tile: planes x vectors, 8 independent sums to cover the FMA latency (measured on the
 * AVX-512 Xeon with 7x7 planes: 4 x 2 1.1-1.3x faster than 2 x 4 or 1 x 4). At AVX2 its 16
 * registers keep a few vectors on the stack, yet 4 x 2 measured 1.1-1.45x faster than 2 x 2
 * there (every 3x3 suite shape, batch 1 and 16). */
#define DW_FLAT_PLANES 4
#define DW_FLAT_VECS 2
/* Taps per register tile of the filter gradient: one sum each, with the output-gradient vector
 * and a source vector in registers too (16 at AVX2); and planes whose sums it keeps between images
 * (flat_dot: 10 KB of AVX-512 float vectors). */
#define DW_FLAT_DOT_TAPS 9
#define DW_FLAT_DOT_PLANES 16
#define DW_FLAT_DOT_PIXELS 64
/* Row tiles (3x3 and 5x5 kernels on planes a vector wide or more): DW_TILE_ROWS(k, sw) output rows x
 * vectors along a row. At AVX2 one vector: its 4 sums and 9 taps leave 3 of the 16 registers.
 * (7x7 kernels have tiles of their own, wide_row_tile. Narrow tiles, one
 * vector per row, keep one plane of DW_FLAT_ROWS rows: on 14x14x576 at batch 16, two planes per
 * tile ran 0.65x, their 18 taps spilled, or broadcast within the FMAs and hoisted by GCC all the
 * same; 8-row tiles 0.78x; one masked load per tap (the flat path) 0.83x.) */
#define DW_FLAT_ROW_VECS (DW_VBYTES == 64 ? 2 : 1)
/* Output rows per narrow tile (a row to a vector): 8 sums in flight at AVX-512, or 7 where that
 * computes fewer rows past the plane's (MobileNet's 14- and 7-row planes), 4 in AVX2's 16 registers. */
#define DW_NARROW_ROWS (DW_VBYTES == 64 ? 8 : 4)
/* 5x5 tiles at AVX-512 only: AVX2's one-vector tiles, their taps broadcast anew for each use, ran
 * NCHW effnet-28x240 at batch 1 0.65x the packed path (batch 16 1.6x), for 7 KB of code. */
#define DW_FLAT_ROW_MAX_K (DW_VBYTES == 64 ? 5 : 3)
/* Plane groups (flat_groups): register tiles of this many vectors (AVX2: its 16 registers hold 4
 * sums next to their lanes' weights). */
#define DW_FLAT_GROUP_TILE (DW_VBYTES == 64 ? 8 : 4)
#if defined(__clang__)
#define DW_FLAT_UNROLL _Pragma("unroll")
#else
#define DW_FLAT_UNROLL _Pragma("GCC unroll 16")
#endif
_Static_assert(DW_FLAT_PLANES <= 8 && DW_FLAT_VECS <= 8 && DW_FLAT_DOT_TAPS <= 16 && (DW_FLAT_ROWS - 1) * 2 + 3 <= 16
               && DW_FLAT_ROWS_MAX >= DW_FLAT_ROWS_5 && DW_FLAT_ROWS_MAX >= DW_FLAT_ROWS_NARROW_S2
               && DW_FLAT_ROWS_5 - 1 + DW_FLAT_ROW_MAX_K <= 16 && (DW_FLAT_ROWS_NARROW_S2 - 1) * 2 + 3 <= 16
               && DW_FLAT_ROW_MAX_K * DW_FLAT_ROW_VECS <= 16
               && DW_FLAT_ROW_VECS <= DW_FLAT_VECS && DW_NARROW_ROWS + 2 <= 16,
               "the tile loops must unroll completely");

/* The DW_LANES bits of `mask` (a bitmap, bit i at byte i / 8) from bit o on (o a multiple of DW_LANES). */
DW_INLINE unsigned DW_FN(flat_bits)(const unsigned char *mask, ptrdiff_t o)
{
#if DW_LANES == 16
    uint16_t bits;
    memcpy(&bits, mask + o / 8, sizeof bits);
    return bits;
#elif DW_LANES == 8
    return mask[o / 8];
#else
    return (mask[o / 8] >> (o & 4)) & 15;
#endif
}

/* v's first n lanes (0 < n <= DW_VLEN) to p[0 .. n), writing nothing past them. */
DW_INLINE void DW_FN(store_first)(DW_T *p, DW_VEC v, ptrdiff_t n, int nt)
{
    if (n == DW_VLEN) {
        DW_FN(store_out)(p, v, nt);
        return;
    }
#if DW_VBYTES == 64 && DW_FLAT_FLOAT
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), (__m512)v);
#elif DW_VBYTES == 64
    _mm512_mask_storeu_pd(p, (__mmask8)((1u << n) - 1), (__m512d)v);
#elif DW_FLAT_FLOAT
    _mm256_maskstore_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
                        (__m256)v);
#else
    _mm256_maskstore_pd(p, _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3)), (__m256d)v);
#endif
}

#define DW_STAGED_ELEMENTS (DW_STAGED_BYTES / (ptrdiff_t)sizeof(DW_T))

/* dst[0 .. n) = src[0 .. n): dst's whole cache lines written with streaming stores, the parts of
 * lines before and after them with plain ones. */
DW_INLINE void DW_FN(stream_lines)(DW_T *dst, const DW_T *src, ptrdiff_t n)
{
    const ptrdiff_t line = 64 / (ptrdiff_t)sizeof(DW_T);
    ptrdiff_t i = (ptrdiff_t)((64 - (uintptr_t)dst % 64) % 64) / (ptrdiff_t)sizeof(DW_T);
    i = i < n ? i : n;
    for (ptrdiff_t j = 0; j < i; j++) dst[j] = src[j];
    for (; i + line <= n; i += line) {
        DW_FLAT_UNROLL
        for (ptrdiff_t v = 0; v < line; v += DW_VLEN) DW_FN(store_out)(dst + i + v, DW_FN(load)(src + i + v), 1);
    }
    for (; i < n; i++) dst[i] = src[i];
}

#if DW_VBYTES == 32
/* AVX2's lane mask of `bits`: lane i all ones where bit i is set, else zeros. */
DW_INLINE __m256i DW_FN(lane_mask)(unsigned bits)
{
#if DW_FLAT_FLOAT
    const __m256i lane = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)bits), lane), lane);
#else
    const __m256i lane = _mm256_setr_epi64x(1, 2, 4, 8);
    return _mm256_cmpeq_epi64(_mm256_and_si256(_mm256_set1_epi64x(bits), lane), lane);
#endif
}
#endif

/* p[i] in lane i where bit i of `bits` is set, else 0; nothing read for the lanes clear. */
DW_INLINE DW_VEC DW_FN(load_masked)(const DW_T *p, unsigned bits)
{
#if DW_VBYTES == 64 && DW_FLAT_FLOAT
    return (DW_VEC)_mm512_maskz_loadu_ps((__mmask16)bits, p);
#elif DW_VBYTES == 64
    return (DW_VEC)_mm512_maskz_loadu_pd((__mmask8)bits, p);
#elif DW_FLAT_FLOAT
    return (DW_VEC)_mm256_maskload_ps(p, DW_FN(lane_mask)(bits));
#else
    return (DW_VEC)_mm256_maskload_pd(p, DW_FN(lane_mask)(bits));
#endif
}

/* np planes x nv vectors from output pixel o (np, nv known at compile time), of which the last
 * holds n_last pixels. */
DW_INLINE void DW_FN(flat_tile)(const DW_T *src, ptrdiff_t src_plane, const ptrdiff_t *off, const unsigned char *masks,
                                ptrdiff_t mask_row, ptrdiff_t ntaps, const DW_T *w, ptrdiff_t w_plane, ptrdiff_t w_tap,
                                const DW_T *bias, ptrdiff_t bias_plane, DW_T *dst, ptrdiff_t dst_plane, ptrdiff_t o,
                                ptrdiff_t n_last, int nt, const int np, const int nv)
{
    DW_VEC acc[DW_FLAT_PLANES][DW_FLAT_VECS];
    const DW_T *sp[DW_FLAT_PLANES], *wp[DW_FLAT_PLANES];
    DW_FLAT_UNROLL
    for (int p = 0; p < np; p++) {
        const DW_VEC start = DW_FN(broadcast)(bias ? bias[p * bias_plane] : 0);
        DW_FLAT_UNROLL
        for (int v = 0; v < nv; v++) acc[p][v] = start;
        sp[p] = src + p * src_plane + o;
        wp[p] = w + p * w_plane;
    }
    const unsigned char *mask = masks;
    for (ptrdiff_t t = 0; t < ntaps; t++, mask += mask_row) {
        const ptrdiff_t d = off[t];
        unsigned bits[DW_FLAT_VECS];
        DW_FLAT_UNROLL
        for (int v = 0; v < nv; v++) bits[v] = DW_FN(flat_bits)(mask, o + v * DW_VLEN);
        DW_FLAT_UNROLL
        for (int p = 0; p < np; p++) {
            const DW_VEC wv = DW_FN(broadcast)(wp[p][t * w_tap]);
            DW_FLAT_UNROLL
            for (int v = 0; v < nv; v++) acc[p][v] += wv * DW_FN(load_masked)(sp[p] + d + v * DW_VLEN, bits[v]);
        }
    }
    DW_FLAT_UNROLL
    for (int p = 0; p < np; p++) {
        DW_FLAT_UNROLL
        for (int v = 0; v < nv; v++)
            DW_FN(store_first)(dst + p * dst_plane + o + v * DW_VLEN, acc[p][v], v < nv - 1 ? DW_VLEN : n_last, nt);
    }
}

#if DW_FLAT_FLOAT /* (the row tiles and plane groups: float only) */
/* The bits of lanes [lo, hi) (clipped to the vector's). */
DW_INLINE unsigned DW_FN(lane_range)(ptrdiff_t lo, ptrdiff_t hi)
{
    lo = lo < 0 ? 0 : lo;
    hi = hi > DW_VLEN ? DW_VLEN : hi;
    return lo < hi ? ((1u << hi) - 1) & ~((1u << lo) - 1) : 0;
}

/* Two vectors' lanes rearranged: lane l of the result is lane F(s, l) of a and b concatenated (F a
 * lane-list macro of _microkernels_body.h's kind, s a constant), in one shuffle where the compiler
 * has __builtin_shufflevector, else through memory (lanes_of_two). */
DW_INLINE DW_VEC DW_FN(lanes_of_two)(DW_VEC a, DW_VEC b, const int *lane)
{
    DW_T both[2 * DW_LANES], lanes[DW_LANES];
    memcpy(both, &a, sizeof a);
    memcpy(both + DW_LANES, &b, sizeof b);
    for (int l = 0; l < DW_LANES; l++) lanes[l] = both[lane[l]];
    return DW_FN(load)(lanes);
}
#if DW_LANES == 16
#define DW_FLAT_LANES DW_LANES_16
#elif DW_LANES == 8
#define DW_FLAT_LANES DW_LANES_8
#else
#define DW_FLAT_LANES DW_LANES_4
#endif
#if defined(__clang__) || __GNUC__ >= 12
#define DW_SHUFFLE_TWO(a, b, F, s) __builtin_shufflevector(a, b, DW_FLAT_LANES(F, s))
#else
#define DW_SHUFFLE_TWO(a, b, F, s) DW_FN(lanes_of_two)(a, b, (const int[]){DW_FLAT_LANES(F, s)})
#endif
#define DW_ALTERNATE_LANE(odd, l) (2 * (l) + (odd))
#define DW_INTERLEAVE_LANE(upper, l) (((l) & 1) * DW_LANES + (upper) * DW_LANES / 2 + (l) / 2)
#define DW_SHIFT_IN_LANE(s, l) ((l) + 1 + ((l) == DW_LANES - 1) * (s))

/* The even (odd: `odd`) elements of the 2 * DW_VLEN elements lo, hi. */
DW_INLINE DW_VEC DW_FN(alternate)(DW_VEC lo, DW_VEC hi, const int odd)
{
    return odd ? DW_SHUFFLE_TWO(lo, hi, DW_ALTERNATE_LANE, 1) : DW_SHUFFLE_TWO(lo, hi, DW_ALTERNATE_LANE, 0);
}

/* Lanes 1.. of a, then lane s of b (s 0, 1 or 2, known at compile time). */
DW_INLINE DW_VEC DW_FN(shift_in)(DW_VEC a, DW_VEC b, const int s)
{
    return s == 2 ? DW_SHUFFLE_TWO(a, b, DW_SHIFT_IN_LANE, 2)
           : s == 1 ? DW_SHUFFLE_TWO(a, b, DW_SHIFT_IN_LANE, 1) : DW_SHUFFLE_TWO(a, b, DW_SHIFT_IN_LANE, 0);
}

/* a's and b's lanes alternately, from lane 0 of each (`upper`: from lane DW_VLEN / 2). */
DW_INLINE DW_VEC DW_FN(interleave)(DW_VEC a, DW_VEC b, const int upper)
{
    return upper ? DW_SHUFFLE_TWO(a, b, DW_INTERLEAVE_LANE, 1) : DW_SHUFFLE_TWO(a, b, DW_INTERLEAVE_LANE, 0);
}

/* At AVX2, stride 2's tap columns of a 3x3 kernel come from pairs of a row's vectors within each
 * half of 128 bits (one vshufps each, where alternate's lanes across the halves take three
 * operations; 5x5 runs at AVX-512 alone), so that their lanes hold output pixels 0, 1, 4, 5, 2, 3,
 * 6, 7: elements 0..15 of the row from the tile's first column give tap columns 0 (`s` 0: the even
 * elements) and 1 (1: the odd ones), elements 2..9 and 9..16 tap column 2 (2: the even elements of
 * the first, the odd ones of the second). Sums over these lanes go back in order once (in_order). */
#define DW_S2_IN_HALVES (DW_VBYTES == 32 && DW_FLAT_FLOAT)
#if DW_S2_IN_HALVES
#define DW_HALVES_LANE(s, l) (((l) & 2) / 2 * DW_LANES + (l) / 4 * 4 + ((l) & 1) * 2 + ((s) == 1 || ((s) == 2 && ((l) & 2))))
#define DW_IN_ORDER_LANE(unused, l) (((l) & 1) | ((l) & 2) << 1 | ((l) & 4) >> 1)

/* Tap column s (0, 1 or 2, known at compile time) of a and b, as above. */
DW_INLINE DW_VEC DW_FN(s2_taps)(DW_VEC a, DW_VEC b, const int s)
{
    return s == 2 ? DW_SHUFFLE_TWO(a, b, DW_HALVES_LANE, 2)
           : s == 1 ? DW_SHUFFLE_TWO(a, b, DW_HALVES_LANE, 1) : DW_SHUFFLE_TWO(a, b, DW_HALVES_LANE, 0);
}

/* The lanes of s2_taps's order in the pixels' (the same permutation: it is its own inverse). */
DW_INLINE DW_VEC DW_FN(in_order)(DW_VEC v)
{
    return DW_SHUFFLE_TWO(v, v, DW_IN_ORDER_LANE, 0);
}
#endif

/* At AVX-512, stride 1's tap columns are a row's vectors shifted in registers (elements_from), each
 * source vector loaded once for all the tap columns and output vectors it serves: a 5x5 tile two
 * vectors wide loads 3 vectors and shifts 8 per row where a load per tap column and vector took 10,
 * most of them masked (2 vCPUs of an AVX-512 AMD EPYC, Zen 5: effnet-28x240 1.3-1.4x faster at
 * batch 1 and 16, 3x3 planes of 28 to 112 pixels 1.25-1.3x). AVX2's shifts, within 128-bit halves,
 * would take two operations each. */
#define DW_ROW_SHIFTS (DW_VBYTES == 64 && DW_FLAT_FLOAT)
#if DW_ROW_SHIFTS
/* The DW_VLEN elements from element b of lo, hi (0 <= b < DW_VLEN, known at compile time). */
DW_INLINE DW_VEC DW_FN(elements_from)(DW_VEC lo, DW_VEC hi, const int b)
{
    return b == 0 ? lo : (DW_VEC)_mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512((__m512)hi),
                                                                           _mm512_castps_si512((__m512)lo), b));
}
#endif

/* A row tile's source vectors of one row, relative to its first tap column: at stride 1, vector
 * k*v + b is tap column b's for output vector v (k x k kernels), output vectors vstep pixels
 * apart, or with DW_ROW_SHIFTS vector v the row's from element v*DW_VLEN (vstep DW_VLEN, nv + 1
 * vectors, the last read at its first k - 1 lanes); at stride 2, vectors 2v and 2v + 1 hold tap
 * columns 0 and 1 of output vector v as their even and odd elements, and tap columns 2, 3 and 4
 * are columns 0, 1 and 2 shifted by a lane, their last lanes lanes 0, 1 and 2 of vector 2v + 2
 * (3x3 reads lane 0 alone at v = nv - 1); at stride 2 and AVX2 (DW_S2_IN_HALVES), vectors
 * 4v..4v + 3 start at elements 0, DW_VLEN, 2 and DW_VLEN + 1 of output vector v's. */
#define DW_FLAT_ROW_LOADS (DW_S2_IN_HALVES ? 4 * DW_FLAT_ROW_VECS : DW_FLAT_ROW_MAX_K * DW_FLAT_ROW_VECS)
_Static_assert(DW_FLAT_ROW_LOADS >= DW_FLAT_ROW_MAX_K * DW_FLAT_ROW_VECS, "a row tile's loads fit loaded[]");
/* The output rows of a row tile of a k x k kernel at stride sw, on rows narrower than a vector
 * (`narrow`: at stride 2, their first OW lanes stored) or not. (5x5 at stride 2 keeps 4: the tile's
 * 5 source vectors and 10 tap columns beside 14 sums would not leave the registers for more.) */
#define DW_TILE_ROWS(k, sw, narrow) \
    ((k) == 5 && (sw) == 1 ? DW_FLAT_ROWS_5 : (k) == 3 && (narrow) ? DW_FLAT_ROWS_NARROW_S2 : DW_FLAT_ROWS)
DW_INLINE ptrdiff_t DW_FN(flat_rows_at)(int i, const int k, const int sw, ptrdiff_t vstep)
{
    return sw == 1 ? (DW_ROW_SHIFTS ? i * DW_VLEN : i % k + i / k * vstep)
           : DW_S2_IN_HALVES && k == 3 ? i / 4 * 2 * DW_VLEN + (i & 1) * DW_VLEN + (i & 2) / 2 * (2 - (i & 1))
           : i * DW_VLEN;
}

/* A row tile of a k x k kernel (dilation 1; k 3 or 5, at stride sw of 1 or 2): n_rows
 * (DW_TILE_ROWS) output rows (dst_row apart) x nv vectors along a row, from source row row0 and
 * column col0 (tap 0 of the tile's first pixel) of a plane `width` x `height`. Source row i of the
 * tile serves tap row i - r*sw of output row r: each of its vectors is loaded once for every
 * output row it serves. The taps come as vectors wt (3x3: kept in registers for the whole plane)
 * or as scalars wk (5x5: too many for the registers next to the sums and source vectors). Lanes
 * whose source element falls outside the plane (`masked` 1: columns, 2: rows too) are neither
 * read nor added, the same for every output row. The last vector stores its first n_out lanes. */
DW_INLINE void DW_FN(flat_rows_tile)(const DW_T *src, ptrdiff_t width, ptrdiff_t height, ptrdiff_t row0,
                                     ptrdiff_t col0, ptrdiff_t vstep, const DW_VEC *wt, const DW_T *wk, DW_VEC start,
                                     DW_T *dst, ptrdiff_t dst_row, ptrdiff_t n_out, int nt, const int k, const int nv,
                                     const int masked, const int sw, const int n_rows)
{
    DW_VEC acc[DW_FLAT_ROWS_MAX][DW_FLAT_ROW_VECS];
    unsigned inside_lanes[DW_FLAT_ROW_LOADS];
    const int halves = DW_S2_IN_HALVES && sw == 2 && k == 3;
    const int shifts = DW_ROW_SHIFTS && sw == 1;
    const int n_loads = shifts ? nv + 1 : sw == 1 ? k * nv : halves ? 4 * nv : 2 * nv + 1;
    DW_FLAT_UNROLL
    for (int r = 0; r < n_rows; r++) {
        DW_FLAT_UNROLL
        for (int v = 0; v < nv; v++) acc[r][v] = start;
    }
    DW_FLAT_UNROLL
    for (int i = 0; i < n_loads; i++) {
        const ptrdiff_t col = col0 + DW_FN(flat_rows_at)(i, k, sw, vstep);
        inside_lanes[i] = masked ? DW_FN(lane_range)(-col, width - col) : ~0u;
    }
    /* (the shifts' last vector: the last k - 1 columns' lanes alone, the rest maybe past the array) */
    if (shifts) inside_lanes[nv] &= (1u << (k - 1)) - 1;
    const int stepped = masked < 2;
    const DW_T *row = src + (stepped ? row0 * width + col0 : 0);
    DW_FLAT_UNROLL
    for (int i = 0; i < (n_rows - 1) * sw + k; i++) {
        const int inside = masked < 2 || (row0 + i >= 0 && row0 + i < height);
        /* (a row outside is read at none of its lanes) */
        const DW_T *s = stepped ? row : src + (inside ? (row0 + i) * width + col0 : 0);
        if (stepped) {
            row += width;
            DW_STEPPED(row);
        }
        /* (5x5's taps broadcast anew for each source row: left to itself, GCC keeps all 25 in
         * registers across the tile's rows and spills its sums) */
        const DW_T *wk_row = wk;
        __asm__ volatile("" : "+r"(wk_row));
        DW_VEC x[DW_FLAT_ROW_MAX_K][DW_FLAT_ROW_VECS], loaded[DW_FLAT_ROW_LOADS];
        DW_FLAT_UNROLL
        for (int j = 0; j < n_loads; j++) {
            const DW_T *at = s + DW_FN(flat_rows_at)(j, k, sw, vstep);
            if (sw == 2 && j == 2 * nv && k == 3 && !halves) /* (one element) */
                loaded[j] = DW_FN(broadcast)(!masked || (inside && (inside_lanes[j] & 1)) ? *at : 0);
            else
                loaded[j] = !masked && !(shifts && j == nv) ? DW_FN(load)(at)
                            : DW_FN(load_masked)(at, inside ? inside_lanes[j] : 0);
            DW_IN_REGISTER(loaded[j]);
        }
        DW_FLAT_UNROLL
        for (int v = 0; v < nv; v++) {
            DW_FLAT_UNROLL
            for (int b = 0; b < k; b++)
#if DW_S2_IN_HALVES
                if (halves)
                    x[b][v] = DW_FN(s2_taps)(loaded[4 * v + b / 2 * 2], loaded[4 * v + b / 2 * 2 + 1], b);
                else
#endif
#if DW_ROW_SHIFTS
                if (shifts)
                    x[b][v] = DW_FN(elements_from)(loaded[v], loaded[v + 1], b);
                else
#endif
                x[b][v] = sw == 1 ? loaded[k * v + b]
                          : b < 2 ? DW_FN(alternate)(loaded[2 * v], loaded[2 * v + 1], b)
                                  : DW_FN(shift_in)(x[b - 2][v], loaded[2 * v + 2], b - 2);
        }
        DW_FLAT_UNROLL
        for (int b = 0; b < k; b++) {
            DW_FLAT_UNROLL
            for (int r = 0; r < n_rows; r++)
                if (i - r * sw >= 0 && i - r * sw < k) {
                    const int t = (i - r * sw) * k + b;
                    DW_FLAT_UNROLL
                    for (int v = 0; v < nv; v++)
                        acc[r][v] += (k == 3 ? wt[t] : DW_FN(broadcast)(wk_row[t])) * x[b][v];
                }
        }
    }
    DW_FLAT_UNROLL
    for (int r = 0; r < n_rows; r++) {
        DW_FLAT_UNROLL
        for (int v = 0; v < nv; v++) {
#if DW_S2_IN_HALVES
            if (halves) acc[r][v] = DW_FN(in_order)(acc[r][v]);
#endif
            DW_FN(store_first)(dst + r * dst_row + v * vstep, acc[r][v], v == nv - 1 ? n_out : DW_VLEN, nt);
        }
    }
}

/* Ask for rows [ahead, ahead + n) of the `height` x `width` plane at `plane` (those inside it): the
 * source rows the next band of row tiles reads and this one does not, which the prefetchers,
 * seeing rows read a few lines at a time, fetch late from DRAM. */
DW_INLINE void DW_FN(prefetch_band)(const DW_T *plane, ptrdiff_t width, ptrdiff_t height, ptrdiff_t ahead, ptrdiff_t n)
{
    ahead = ahead > 0 ? ahead : 0;
    n = height - ahead < n ? height - ahead : n;
    if (n > 0) dw_prefetch(plane + ahead * width, n * width * (ptrdiff_t)sizeof(DW_T));
}

/* Narrow planes (3x3 kernels at stride 1 whose rows, with their padding, fit a vector: narrow_fits)
 * run a row to a vector, its lanes past the row zeros (one masked load), or at AVX-512, where rows
 * and padding fit half a vector, a row of each of two planes to a vector (g = 2: plane j's row in
 * slot j, the DW_VLEN / 2 lanes from lane j * DW_VLEN / 2; 7x7 planes then fill 7/8 of the lanes
 * rather than 7/16). Tap column b of output pixel j reads source column j + b - pl: the vector
 * rotated by b - pl lanes, whose lanes moved across a slot's edge are the zeros past a row, so no
 * tap needs a mask of its own, and the loads start on the rows rather than at each tap's offset
 * across cache lines. */
#define DW_ROTATE_LANE(s, l) (((l) + (s) + DW_LANES) % DW_LANES)

/* v's lanes rotated by s (-2 <= s <= 2, known at compile time): lane l is lane (l + s) mod DW_VLEN. */
DW_INLINE DW_VEC DW_FN(rotate)(DW_VEC v, const int s)
{
    switch (s) {
        case -2: return DW_SHUFFLE_TWO(v, v, DW_ROTATE_LANE, -2);
        case -1: return DW_SHUFFLE_TWO(v, v, DW_ROTATE_LANE, -1);
        case 1: return DW_SHUFFLE_TWO(v, v, DW_ROTATE_LANE, 1);
        case 2: return DW_SHUFFLE_TWO(v, v, DW_ROTATE_LANE, 2);
        default: return v;
    }
}

/* Whether rows of `width` with left padding pl, and output rows of OW, run two planes to a vector. */
DW_INLINE int DW_FN(narrow_pairs)(ptrdiff_t width, ptrdiff_t pl, ptrdiff_t OW)
{
    return DW_VBYTES == 64 && dw_narrow_rows_within(width, pl, OW, DW_VLEN / 2);
}

/* For each group of narrow planes p, p + 1, .. (np of them): CALL(g, pl) with the group's size g (2
 * where the planes pair, 1 for the last one left) and the left padding pl (0 to 2: narrow_fits) as
 * constants. */
#if DW_VBYTES == 64
#define DW_NARROW_PAIR_CASES(CALL) case 3: CALL(2, 0); break; case 4: CALL(2, 1); break; case 5: CALL(2, 2); break;
#else
#define DW_NARROW_PAIR_CASES(CALL)
#endif
#define DW_NARROW_GROUPS(width, pl, OW, np, CALL)                                                        \
    for (ptrdiff_t p = 0, g = DW_FN(narrow_pairs)(width, pl, OW) ? 2 : 1; p < (np); p += g)             \
        switch ((g == 2 && p + 1 < (np)) * 3 + ((pl) < 2 ? (int)(pl) : 2)) {                           \
            case 0: CALL(1, 0); break;                                                                  \
            case 1: CALL(1, 1); break;                                                                  \
            case 2: CALL(1, 2); break;                                                                  \
            DW_NARROW_PAIR_CASES(CALL)                                                                  \
        }

/* p moved by n elements (n may be negative), as an address: the second plane's row is loaded and
 * stored from half a vector before it, so that its elements meet the upper lanes, and that address
 * may lie before the array, where pointer arithmetic may not go. */
DW_INLINE DW_T *DW_FN(elements_on)(const DW_T *p, ptrdiff_t n)
{
    return (DW_T *)((uintptr_t)p + (uintptr_t)(n * (ptrdiff_t)sizeof(DW_T)));
}

/* Row r (`width` elements, rows `width` apart) of the g planes from `plane`, `plane_step` apart, in
 * their slots' lanes [0, width) (row_lanes); zeros elsewhere, and for a row outside [0, height). */
DW_INLINE DW_VEC DW_FN(narrow_row)(const DW_T *plane, ptrdiff_t plane_step, ptrdiff_t r, ptrdiff_t height,
                                   ptrdiff_t width, unsigned row_lanes, const int g)
{
    if (r < 0 || r >= height) return DW_FN(broadcast)(0);
    const DW_T *at = plane + r * width;
#if DW_VBYTES == 64
    if (g == 2)
        return (DW_VEC)_mm512_mask_loadu_ps(_mm512_maskz_loadu_ps((__mmask16)row_lanes, at),
                                            (__mmask16)(row_lanes << DW_VLEN / 2),
                                            DW_FN(elements_on)(at, plane_step - DW_VLEN / 2));
#endif
    (void)plane_step;
    return DW_FN(load_masked)(at, row_lanes);
}

/* The first n lanes of each of v's g slots to the row at `plane` of each plane (plane_step apart). */
DW_INLINE void DW_FN(narrow_store)(DW_T *plane, ptrdiff_t plane_step, DW_VEC v, ptrdiff_t n, int nt, const int g)
{
#if DW_VBYTES == 64
    if (g == 2) {
        const unsigned lanes = DW_FN(lane_range)(0, n);
        _mm512_mask_storeu_ps(plane, (__mmask16)lanes, (__m512)v);
        _mm512_mask_storeu_ps(DW_FN(elements_on)(plane, plane_step - DW_VLEN / 2), (__mmask16)(lanes << DW_VLEN / 2),
                              (__m512)v);
        return;
    }
#endif
    (void)plane_step;
    DW_FN(store_first)(plane, v, n, nt);
}

/* a in the lanes of slot 0, b in those of slot 1 (g 1: a in every lane). */
DW_INLINE DW_VEC DW_FN(narrow_slots)(DW_T a, DW_T b, const int g)
{
#if DW_VBYTES == 64
    if (g == 2) return (DW_VEC)_mm512_mask_mov_ps(_mm512_set1_ps(a), (__mmask16)0xFF00, _mm512_set1_ps(b));
#endif
    (void)b;
    return DW_FN(broadcast)(a);
}

/* The taps (wt, 9) and bias (start) of planes p and q in slots 0 and 1 (g 2; g 1: p's in every
 * lane), for tiles that run two planes to a vector. */
DW_INLINE void DW_FN(slot_taps)(const DW_T *w, ptrdiff_t w_plane, ptrdiff_t w_tap, const DW_T *bias, ptrdiff_t bias_plane,
                                ptrdiff_t p, ptrdiff_t q, DW_VEC *wt, DW_VEC *start, const int g)
{
    for (int t = 0; t < 9; t++) wt[t] = DW_FN(narrow_slots)(w[p * w_plane + t * w_tap], w[q * w_plane + t * w_tap], g);
    *start = bias ? DW_FN(narrow_slots)(bias[p * bias_plane], bias[q * bias_plane], g) : DW_FN(broadcast)(0);
}

/* Output rows y0 .. y0 + n - 1 (n <= DW_NARROW_ROWS) of g planes (src_plane, dst_plane apart), source
 * row y0 - pt + i loaded once (narrow_row) and rotated by b - pl for tap column b, for every output
 * row it serves; the first `rows` stored (OW lanes of each slot). n, g, pl known at compile time. */
DW_INLINE void DW_FN(narrow_tile)(const DW_T *src, ptrdiff_t src_plane, ptrdiff_t height, ptrdiff_t width,
                                  ptrdiff_t row0, const DW_VEC *wt, DW_VEC start, DW_T *dst, ptrdiff_t dst_plane,
                                  ptrdiff_t OW, ptrdiff_t rows, int nt, const int n, const int g, const int pl)
{
    const unsigned row_lanes = DW_FN(lane_range)(0, width);
    DW_VEC acc[DW_NARROW_ROWS];
    DW_FLAT_UNROLL
    for (int r = 0; r < n; r++) acc[r] = start;
    DW_FLAT_UNROLL
    for (int i = 0; i < n + 2; i++) {
        const DW_VEC row = DW_FN(narrow_row)(src, src_plane, row0 + i, height, width, row_lanes, g);
        DW_VEC x[3];
        DW_FLAT_UNROLL
        for (int b = 0; b < 3; b++) x[b] = DW_FN(rotate)(row, b - pl);
        DW_FLAT_UNROLL
        for (int j = 0; j < n; j++)
            if (i - j >= 0 && i - j < 3) {
                DW_FLAT_UNROLL
                for (int b = 0; b < 3; b++) acc[j] += wt[3 * (i - j) + b] * x[b];
            }
    }
    DW_FLAT_UNROLL
    for (int j = 0; j < n; j++)
        if (j < rows) DW_FN(narrow_store)(dst + j * OW, dst_plane, acc[j], OW, nt, g);
}

/* The narrow tiles of n rows over the OH output rows of the g planes at src and dst (n, g, pl known
 * at compile time; flat_rows' arguments), the last overlapping the one before (or, past the plane's
 * last row, computing rows it does not store). */
DW_INLINE void DW_FN(narrow_tiles)(const DW_T *src, ptrdiff_t src_plane, ptrdiff_t height, ptrdiff_t width,
                                   ptrdiff_t pt, const DW_VEC *wt, DW_VEC start, DW_T *dst, ptrdiff_t dst_plane,
                                   ptrdiff_t OH, ptrdiff_t OW, int nt, const int n, const int g, const int pl)
{
    for (ptrdiff_t y = 0; y < OH; y += n) {
        const ptrdiff_t y0 = y + n <= OH || OH < n ? y : OH - n;
        DW_FN(narrow_tile)(src, src_plane, height, width, y0 - pt, wt, start, dst + y0 * OW, dst_plane, OW,
                           OH - y0 < n ? OH - y0 : n, nt, n, g, pl);
    }
}

/* The narrow tiles over g planes from plane p, left padding pl (both known at compile time;
 * flat_rows' arguments). */
DW_INLINE void DW_FN(narrow_planes)(const DW_T *src, ptrdiff_t src_plane, ptrdiff_t height, ptrdiff_t width,
                                    ptrdiff_t pt, const DW_T *w, ptrdiff_t w_plane, ptrdiff_t w_tap, const DW_T *bias,
                                    ptrdiff_t bias_plane, DW_T *dst, ptrdiff_t dst_plane, ptrdiff_t OH, ptrdiff_t OW,
                                    ptrdiff_t p, int nt, const int g, const int pl)
{
    DW_VEC wt[9], start;
    DW_FN(slot_taps)(w, w_plane, w_tap, bias, bias_plane, p, p + g - 1, wt, &start, g);
    const DW_T *s = src + p * src_plane;
    DW_T *d = dst + p * dst_plane;
#if DW_VBYTES == 64
    /* (tiles of 7 rows where they compute fewer rows past the plane's: 2 vCPUs of an AVX-512 AMD
     * EPYC, batch 16, against 8: 14x14x576 1.15x faster, 7x7x960 1.09x, 12x12x256 1.14x; 7 rows
     * everywhere ran 15x15 0.75x) */
    const ptrdiff_t n_low = DW_NARROW_ROWS - 1;
    if ((OH + n_low - 1) / n_low * n_low < (OH + DW_NARROW_ROWS - 1) / DW_NARROW_ROWS * DW_NARROW_ROWS) {
        DW_FN(narrow_tiles)(s, src_plane, height, width, pt, wt, start, d, dst_plane, OH, OW, nt, DW_NARROW_ROWS - 1, g, pl);
        return;
    }
#endif
    DW_FN(narrow_tiles)(s, src_plane, height, width, pt, wt, start, d, dst_plane, OH, OW, nt, DW_NARROW_ROWS, g, pl);
}

/* flat_rows on narrow planes: two at a time where they pair (narrow_pairs), the last odd one alone. */
static void DW_FN(flat_narrow)(const DW_T *src, ptrdiff_t src_plane, ptrdiff_t height, ptrdiff_t width, ptrdiff_t pt,
                               ptrdiff_t pl, const DW_T *w, ptrdiff_t w_plane, ptrdiff_t w_tap, const DW_T *bias,
                               ptrdiff_t bias_plane, DW_T *dst, ptrdiff_t dst_plane, ptrdiff_t OH, ptrdiff_t OW,
                               ptrdiff_t np, int nt)
{
#define DW_NARROW_PLANES(n, pad)                                                                         \
    DW_FN(narrow_planes)(src, src_plane, height, width, pt, w, w_plane, w_tap, bias, bias_plane, dst, dst_plane, OH, OW, \
                         p, nt, n, pad)
    DW_NARROW_GROUPS(width, pl, OW, np, DW_NARROW_PLANES)
#undef DW_NARROW_PLANES
}

#if DW_VBYTES == 64 && DW_FLAT_FLOAT
/* Narrow planes at stride 2 (dw_narrow_s2_pairs: 3x3), two to a vector: each plane's source row,
 * with its left padding, in 16 lanes (zeros past it); the even elements of plane j's row in the 8
 * lanes of slot j of one vector, its odd ones in another (tap columns 0 and 1), and tap column 2 the
 * even ones shifted along their slot by a lane, a zero filling in (the row's right padding). (5x5
 * kernels so, their taps 25 vectors that no longer stay in registers, ran 14x14x672 at batch 16
 * 0.9-1.1x the packed path.) */
#define DW_PAIR_EVEN_LANE(odd, l) (2 * ((l) & 7) + (odd) + ((l) >> 3) * 16)
#define DW_PAIR_SHIFT_LANE(unused, l) (((l) & 7) < 7 ? (l) + 1 : 16)

/* Output rows y0 .. y0 + n - 1 of the g planes (1 or 2; src_plane, dst_plane apart) at stride 2 for
 * a 3x3 kernel (taps wt: each a vector of the planes' taps in their slots), source row row0 + i
 * loaded once for the output rows it serves; the first `rows` stored (OW lanes of each slot). n and
 * g known at compile time. */
DW_INLINE void DW_FN(narrow_s2_tile)(const DW_T *src, ptrdiff_t src_plane, ptrdiff_t height, ptrdiff_t width,
                                     ptrdiff_t row0, ptrdiff_t pl, const DW_VEC *wt, DW_VEC start, DW_T *dst,
                                     ptrdiff_t dst_plane, ptrdiff_t OW, ptrdiff_t rows, const int n, const int g)
{
    const int k = 3;
    const unsigned row_lanes = DW_FN(lane_range)(pl, pl + width);
    DW_VEC acc[DW_FLAT_ROWS_NARROW_S2];
    DW_FLAT_UNROLL
    for (int r = 0; r < n; r++) acc[r] = start;
    DW_FLAT_UNROLL
    for (int i = 0; i < 2 * (n - 1) + k; i++) {
        DW_VEC a = DW_FN(broadcast)(0), b = a;
        if (row0 + i >= 0 && row0 + i < height) {
            const DW_T *at = DW_FN(elements_on)(src, (row0 + i) * width - pl);
            a = DW_FN(load_masked)(at, row_lanes);
            if (g == 2) b = DW_FN(load_masked)(DW_FN(elements_on)(at, src_plane), row_lanes);
        }
        const DW_VEC even = DW_SHUFFLE_TWO(a, b, DW_PAIR_EVEN_LANE, 0), odd = DW_SHUFFLE_TWO(a, b, DW_PAIR_EVEN_LANE, 1);
        const DW_VEC column[3] = {even, odd, DW_SHUFFLE_TWO(even, DW_FN(broadcast)(0), DW_PAIR_SHIFT_LANE, 0)};
        DW_FLAT_UNROLL
        for (int c = 0; c < k; c++) {
            const DW_VEC x = column[c];
            DW_FLAT_UNROLL
            for (int r = 0; r < n; r++)
                if (i - 2 * r >= 0 && i - 2 * r < k) acc[r] += wt[(i - 2 * r) * k + c] * x;
        }
    }
    DW_FLAT_UNROLL
    for (int r = 0; r < n; r++)
        if (r < rows) DW_FN(narrow_store)(dst + r * OW, dst_plane, acc[r], OW, 0, g);
}

/* flat_rows at stride 2 on narrow planes (dw_narrow_s2_pairs; 3x3), two planes at a time, the last
 * odd one alone, in tiles of DW_FLAT_ROWS_NARROW_S2 rows, the last overlapping the one before. */
static void DW_FN(flat_narrow_s2)(const DW_T *src, ptrdiff_t src_plane, ptrdiff_t height, ptrdiff_t width,
                                  ptrdiff_t pt, ptrdiff_t pl, const DW_T *w, ptrdiff_t w_plane, ptrdiff_t w_tap,
                                  const DW_T *bias, ptrdiff_t bias_plane, DW_T *dst, ptrdiff_t dst_plane, ptrdiff_t OH,
                                  ptrdiff_t OW, ptrdiff_t np)
{
    const int n = DW_FLAT_ROWS_NARROW_S2;
    for (ptrdiff_t p = 0; p < np; p += 2) {
        const ptrdiff_t q = p + 1 < np ? p + 1 : p; /* (the second slot's plane; the first's again alone) */
        DW_VEC wt[9], start;
        DW_FN(slot_taps)(w, w_plane, w_tap, bias, bias_plane, p, q, wt, &start, 2);
        for (ptrdiff_t y = 0; y < OH; y += n) {
            const ptrdiff_t y0 = y + n <= OH || OH < n ? y : OH - n, rows = OH - y0 < n ? OH - y0 : n;
            const DW_T *s = src + p * src_plane;
            DW_T *d = dst + p * dst_plane + y0 * OW;
            if (q > p)
                DW_FN(narrow_s2_tile)(s, src_plane, height, width, 2 * y0 - pt, pl, wt, start, d, dst_plane, OW, rows, n, 2);
            else
                DW_FN(narrow_s2_tile)(s, src_plane, height, width, 2 * y0 - pt, pl, wt, start, d, dst_plane, OW, rows, n, 1);
        }
    }
}
#endif

#if DW_FLAT_FLOAT
/* A mask of a vector's lanes, and a vector with the lanes outside it cleared (the rolling planes'
 * padding and summed-twice lanes): AVX2 ANDs a vector of lane masks, AVX-512 moves under a mask. */
#define DW_ALL_LANES ((1u << DW_VLEN) - 1)
#if DW_VBYTES == 64
typedef __mmask16 DW_FN(keep);
DW_INLINE DW_FN(keep) DW_FN(keep_of)(unsigned lanes) { return (__mmask16)lanes; }
DW_INLINE DW_VEC DW_FN(kept)(DW_VEC x, DW_FN(keep) lanes) { return (DW_VEC)_mm512_maskz_mov_ps(lanes, (__m512)x); }
#else
typedef __m256 DW_FN(keep);
DW_INLINE DW_FN(keep) DW_FN(keep_of)(unsigned lanes) { return _mm256_castsi256_ps(DW_FN(lane_mask)(lanes)); }
DW_INLINE DW_VEC DW_FN(kept)(DW_VEC x, DW_FN(keep) lanes) { return (DW_VEC)_mm256_and_ps((__m256)x, lanes); }
#endif

/* Source vector b (0 to 2: from column col - 1 to col + 1) of the row at `at` (its column col) of
 * the planes flat_rolling and flat_dot_rolling run, zeros in its lanes of padding (left: col is 0;
 * right: col is width - DW_VLEN) and, on rows narrower than a vector (narrow), past the row too:
 * lanes_read and keep give, for each b, a narrow row's lanes (and the lanes read in the block's
 * first row or last: nothing before or past the block is read). */
DW_INLINE DW_VEC DW_FN(rolling_source)(const DW_T *at, const int b, int first_row, int last_row,
                                       const unsigned *lanes_read, const DW_FN(keep) *keep, const int left,
                                       const int right, const int narrow)
{
    const int edge = narrow ? (b == 0 && first_row) || last_row
                            : (b == 0 && left && first_row) || (b == 2 && right && last_row);
    const DW_VEC x = edge ? DW_FN(load_masked)(at + b - 1, lanes_read[b]) : DW_FN(load)(at + b - 1);
    if (narrow) return DW_FN(kept)(x, keep[b]);
#if DW_VBYTES == 64
    if (b == 0 && left) return DW_FN(kept)(x, DW_ALL_LANES - 1);
    if (b == 2 && right) return DW_FN(kept)(x, DW_ALL_LANES >> 1);
#else
    if (b == 0 && left) return (DW_VEC)_mm256_blend_ps((__m256)x, _mm256_setzero_ps(), 0x01);
    if (b == 2 && right) return (DW_VEC)_mm256_blend_ps((__m256)x, _mm256_setzero_ps(), 0x80);
#endif
    return x;
}

/* The lanes rolling_source reads of narrow rows of `width` (or, all, of others at the block's first
 * and last element), and the masks that keep them. */
DW_INLINE void DW_FN(rolling_lanes)(ptrdiff_t width, const int narrow, unsigned *lanes_read, DW_FN(keep) *keep)
{
    const unsigned inside = narrow ? (1u << width) - 1 : DW_ALL_LANES;
    lanes_read[0] = narrow ? (inside << 1) & DW_ALL_LANES : DW_ALL_LANES - 1;
    lanes_read[1] = inside;
    lanes_read[2] = narrow ? inside >> 1 : DW_ALL_LANES >> 1;
    for (int b = 0; b < 3; b++) keep[b] = DW_FN(keep_of)(lanes_read[b]);
}

/* The rows ahead whose lines the first strip of a plane asks for: planes of more than a strip's
 * columns read each row's lines strip by strip, which the prefetchers, seeing a line or two a row,
 * fetch late (2 vCPUs of an AVX2 AMD EPYC, batch 16: the filter gradient of 112x112x32 and 56x56x144
 * 1.5x faster; the forward and input gradient of 112x112x32 2.3-2.7x, where the rows are more than
 * DW_ROLLING_WIDE_ROW bytes; on narrower rows, which the prefetchers follow, the forward gained
 * nothing and lost up to 1.2x on 28x28x192). */
#define DW_ROLLING_AHEAD 2
#define DW_ROLLING_WIDE_ROW 256

#if DW_VBYTES == 32
/* 3x3 kernels at stride 1 on planes more than half a vector wide with a pixel of zeros around them
 * (AVX2; rolling_fits): each plane in strips of two vectors' columns (the last vector at column
 * width - DW_VLEN, overlapping the one before), each strip from top to bottom: each source row's
 * vectors and their neighbours a column either side loaded once and added into the three output
 * rows they serve, an output row stored when its last source row is in. The lanes in the padding
 * columns (lane 0 of a vector's left neighbour at column 0, the last lane of its right one at the
 * last column) are blended to zeros: the loads are plain, one element past the row, inside the
 * block of planes but for its first and last element, which are loaded under masks. Rows narrower
 * than a vector (`narrow`: one vector at column 0, the padding lane of its right neighbour cleared
 * by a mask) store whole vectors, their lanes past the row into the next row's first pixels before
 * that row is stored; a plane's last row under a mask where the next plane's came first or is
 * another block's. (2 vCPUs of an AVX2 AMD EPYC against the flat path's masked loads (7x7 and
 * 14x14: plane groups and the flat path) and row tiles: one thread, 7x7x960 at batch 4 1.5x faster,
 * 14x14x576 2.5x, 28x28x192 1.6x, 56x56x144 1.2x, 112x112x32 1.1x; two, batch 16, 1.5x, 3x, 1.8x,
 * 1.0x (memory-bound), 1.2x; their input gradients alike.) */
DW_INLINE void DW_FN(rolling_strip)(const DW_T *s, ptrdiff_t width, ptrdiff_t height, const ptrdiff_t *col,
                                    const DW_VEC *wt, DW_VEC start, DW_T *d, ptrdiff_t dst_plane, int first, int last,
                                    int nt, const int nv, const int left, const int right, const int narrow)
{
    const int prefetch = left && !right && width * (ptrdiff_t)sizeof(DW_T) > DW_ROLLING_WIDE_ROW;
    unsigned lanes_read[3];
    DW_FN(keep) keep[3];
    DW_FN(rolling_lanes)(width, narrow, lanes_read, keep);
    DW_VEC above[2], here[2], below[2]; /* output rows r - 1, r, r + 1 */
    DW_FLAT_UNROLL
    for (int v = 0; v < nv; v++) above[v] = here[v] = start;
    for (ptrdiff_t r = 0; r < height; r++) {
        const DW_T *row = s + r * width;
        if (prefetch && r + DW_ROLLING_AHEAD < height) /* (the rows the strips after this one read) */
            dw_prefetch(s + (r + DW_ROLLING_AHEAD) * width, width * (ptrdiff_t)sizeof(DW_T));
        DW_FLAT_UNROLL
        for (int v = 0; v < nv; v++) {
            const int at_left = left && v == 0, at_right = right && v == nv - 1;
            below[v] = start;
            DW_FLAT_UNROLL
            for (int b = 0; b < 3; b++) {
                const DW_VEC x = DW_FN(rolling_source)(row + col[v], b, r == 0 && first, r == height - 1 && last,
                                                       lanes_read, keep, at_left, at_right, narrow);
                above[v] += wt[6 + b] * x;
                here[v] += wt[3 + b] * x;
                below[v] += wt[b] * x;
            }
        }
        DW_FLAT_UNROLL
        for (int v = 0; v < nv; v++) {
            if (r > 0) DW_FN(store_out)(d + (r - 1) * width + col[v], above[v], nt);
            above[v] = here[v], here[v] = below[v];
        }
    }
    DW_FLAT_UNROLL
    for (int v = 0; v < nv; v++) {
        /* (narrow rows: the lanes past the last would reach past the block, or a plane of another call) */
        if (narrow && (last || dst_plane != width * height))
            DW_FN(store_first)(d + (height - 1) * width, above[v], width, 0);
        else
            DW_FN(store_out)(d + (height - 1) * width + col[v], above[v], nt);
    }
}

/* One plane of flat_rolling's, strip by strip; `first` and `last`: whether it is the call's first
 * plane and last (whose first and last element rolling_source loads under masks). */
DW_INLINE void DW_FN(rolling_plane)(const DW_T *s, ptrdiff_t width, ptrdiff_t height, const DW_VEC *wt, DW_VEC start,
                                    DW_T *d, ptrdiff_t dst_plane, int first, int last, int nt)
{
    const ptrdiff_t n_vectors = (width + DW_VLEN - 1) / DW_VLEN;
    for (ptrdiff_t v = 0; v < n_vectors; v += 2) {
        /* (a strip's vectors: two, or the row's last alone; the last at width - DW_VLEN) */
        const ptrdiff_t col[2] = {v + 1 < n_vectors || width < DW_VLEN ? v * DW_VLEN : width - DW_VLEN,
                                  v + 2 < n_vectors ? (v + 1) * DW_VLEN : width - DW_VLEN};
        if (width < DW_VLEN) /* (its lanes past the row write the next row's first pixels, before that row) */
            DW_FN(rolling_strip)(s, width, height, col, wt, start, d, dst_plane, first, last, 0, 1, 1, 1, 1);
        else if (n_vectors == 1)
            DW_FN(rolling_strip)(s, width, height, col, wt, start, d, dst_plane, first, last, nt, 1, 1, 1, 0);
        else if (n_vectors == 2)
            DW_FN(rolling_strip)(s, width, height, col, wt, start, d, dst_plane, first, last, nt, 2, 1, 1, 0);
        else if (v == 0)
            DW_FN(rolling_strip)(s, width, height, col, wt, start, d, dst_plane, first, last, nt, 2, 1, 0, 0);
        else if (v + 2 < n_vectors)
            DW_FN(rolling_strip)(s, width, height, col, wt, start, d, dst_plane, first, last, nt, 2, 0, 0, 0);
        else if (v + 2 == n_vectors)
            DW_FN(rolling_strip)(s, width, height, col, wt, start, d, dst_plane, first, last, nt, 2, 0, 1, 0);
        else
            DW_FN(rolling_strip)(s, width, height, col, wt, start, d, dst_plane, first, last, nt, 1, 0, 1, 0);
    }
}

static void DW_FN(flat_rolling)(const DW_T *src, ptrdiff_t src_plane, ptrdiff_t height, ptrdiff_t width, const DW_T *w,
                                ptrdiff_t w_plane, ptrdiff_t w_tap, const DW_T *bias, ptrdiff_t bias_plane, DW_T *dst,
                                ptrdiff_t dst_plane, ptrdiff_t np, int nt)
{
    DW_T staged[DW_STAGED_ELEMENTS] __attribute__((aligned(64)));
    const int staging = nt == DW_STREAM_STAGED;
    for (ptrdiff_t p = 0; p < np; p++) {
        DW_VEC wt[9];
        for (int t = 0; t < 9; t++) wt[t] = DW_FN(broadcast)(w[p * w_plane + t * w_tap]);
        const DW_VEC start = DW_FN(broadcast)(bias ? bias[p * bias_plane] : 0);
        DW_T *d = staging ? staged : dst + p * dst_plane;
        if (p == 0 || p == np - 1)
            DW_FN(rolling_plane)(src + p * src_plane, width, height, wt, start, d, dst_plane, p == 0, p == np - 1,
                                 nt == DW_STREAM_IN_PLACE);
        else /* (the planes between: no masked first or last element, no test for one per row) */
            DW_FN(rolling_plane)(src + p * src_plane, width, height, wt, start, d, dst_plane, 0, 0,
                                 nt == DW_STREAM_IN_PLACE);
        if (staging) DW_FN(stream_lines)(dst + p * dst_plane, staged, width * height);
    }
#ifdef DW_X86
    if (nt) _mm_sfence(); /* streamed results reach memory before any later store */
#endif
}

#endif

/* The filter and bias gradients of the rolling planes (flat_rolling's at AVX2; the table's flat_dot_rows
 * signature): each plane of each image in strips of a vector's columns (the last at width -
 * DW_VLEN), each strip from top to bottom, each source row's vector and its neighbours a column
 * either side loaded once (their padding lanes cleared as flat_rolling's) and multiplied by the
 * output gradients of the three rows they serve (row r + 1 - i for tap row i), into a sum per tap.
 * Lanes summed twice or past the row are cleared in the output gradients (the last vector's lanes
 * the one before it covered; narrow rows' lanes past the row, in the source vectors too: whatever
 * lies there, NaN included, must not reach the sums). The sums run in an order fixed by the
 * geometry (images, strips, rows). (2 vCPUs of an AVX2 AMD EPYC, against flat_dot's masked loads
 * and, on 7-pixel rows, flat_dot_narrow: one thread, 14x14x576 at batch 4 2.4x faster, 28x28x192
 * 2x, 56x56x144 2.5x, 112x112x32 2.3x, 7x7x960 1.0x; two threads at batch 16, 14x14x576 2.3x,
 * 28x28x192 2.3x, 7x7x960 1.4x. 2 vCPUs of an AVX-512 AMD EPYC (Zen 5), two threads, against
 * flat_dot: batch 16, 112x112x32 1.8x, 56x56x144 1.9x, 28x28x192 1.6x; batch 1 1.3-1.4x; its rows
 * narrower than a vector keep flat_dot_narrow.) */
/* Planes whose sums stay in memory while the filter gradient goes through them image by image: a
 * plane at a time through every image jumped an image's planes at each step, and a small plane (a
 * few lines) was read before the prefetchers saw it (2 vCPUs of an AVX2 AMD EPYC, one thread,
 * batch 16: 14x14x576 1.7x faster, 28x28x192 1.4x, 7x7x960 1.3x; the sums added in the same order). */
#define DW_ROLLING_PLANES 32
/* Planes of this many bytes or more ask, strip by strip, for the lines of the plane after them,
 * spread evenly over their rows (a plane's next_row bytes a row, from DRAM to L2): with only the
 * first strip fetching its rows two ahead (DW_ROLLING_AHEAD), memory waited idle while the later
 * strips ran from L2, and the first strip waited on it (2 vCPUs of an AVX2 AMD EPYC, batch 16:
 * 112x112x32 1.5-1.7x faster, 56x56x144 1.0-1.2x; the smaller planes, which the prefetchers follow,
 * 14x14x576 0.8-0.9x). */
#define DW_NEXT_PLANE_BYTES 8192
DW_INLINE void DW_FN(rolling_dot_strip)(const DW_T *s, const DW_T *dy, ptrdiff_t width, ptrdiff_t height,
                                        ptrdiff_t col, unsigned dy_lanes, DW_VEC *sum, int first, int last,
                                        int prefetch, const char *next_s, const char *next_dy, ptrdiff_t next_row,
                                        ptrdiff_t next_left, const int left, const int right, const int narrow)
{
    const DW_VEC zero = DW_FN(broadcast)(0);
    const DW_FN(keep) keep_dy = DW_FN(keep_of)(dy_lanes);
    unsigned lanes_read[3];
    DW_FN(keep) keep[3];
    DW_FN(rolling_lanes)(width, narrow, lanes_read, keep);
    DW_VEC dy_above = zero, dy_here, dy_below; /* output rows r - 1, r, r + 1 */
    DW_VEC tap[9], dy_sum = sum[9];
    DW_FLAT_UNROLL
    for (int t = 0; t < 9; t++) tap[t] = sum[t];
    dy_here = DW_FN(kept)(height == 1 && last ? DW_FN(load_masked)(dy + col, dy_lanes) : DW_FN(load)(dy + col),
                          keep_dy);
    for (ptrdiff_t r = 0; r < height; r++) {
        const DW_T *row = s + r * width + col;
        if (prefetch && r + DW_ROLLING_AHEAD < height) { /* (the rows the strips after this one read) */
            dw_prefetch(s + (r + DW_ROLLING_AHEAD) * width, width * (ptrdiff_t)sizeof(DW_T));
            dw_prefetch(dy + (r + DW_ROLLING_AHEAD) * width, width * (ptrdiff_t)sizeof(DW_T));
        }
        dw_prefetch_piece(next_s, next_dy, r, next_row, next_left);
        if (r + 1 < height)
            dy_below = DW_FN(kept)(r + 2 == height && last ? DW_FN(load_masked)(dy + (r + 1) * width + col, dy_lanes)
                                                           : DW_FN(load)(dy + (r + 1) * width + col),
                                   keep_dy);
        else
            dy_below = zero;
        dy_sum += dy_here;
        DW_FLAT_UNROLL
        for (int b = 0; b < 3; b++) {
            const DW_VEC x = DW_FN(rolling_source)(row, b, r == 0 && first, r == height - 1 && last, lanes_read,
                                                   keep, left, right, narrow);
            tap[b] += dy_below * x;
            tap[3 + b] += dy_here * x;
            tap[6 + b] += dy_above * x;
        }
        dy_above = dy_here, dy_here = dy_below;
    }
    DW_FLAT_UNROLL
    for (int t = 0; t < 9; t++) sum[t] = tap[t];
    sum[9] = dy_sum;
}

/* One plane of one image into its sums (flat_dot_rolling), strip by strip; `first` and `last`:
 * whether it is the call's first plane and last (whose first and last element rolling_source
 * loads under masks); next_s and next_d: the plane read after this one, whose lines its strips
 * ask for (DW_NEXT_PLANE_BYTES), or NULL. */
DW_INLINE void DW_FN(rolling_dot_plane)(const DW_T *s, const DW_T *d, ptrdiff_t width, ptrdiff_t height, DW_VEC *sum,
                                        int first, int last, const DW_T *next_s, const DW_T *next_d)
{
    const ptrdiff_t n_vectors = (width + DW_VLEN - 1) / DW_VLEN, plane_bytes = width * height * (ptrdiff_t)sizeof(DW_T);
    /* (next_s, next_d: the next plane, NULL for none; each strip's rows ask for next_row bytes of it
     * each, whole lines, the strips one after another) */
    const ptrdiff_t steps = n_vectors * height;
    const ptrdiff_t next_row = next_s ? dw_piece_bytes(plane_bytes, steps) : 0;
    for (ptrdiff_t v = 0; v < n_vectors; v++) {
        const char *ns = next_row ? (const char *)next_s + v * height * next_row : NULL;
        const char *nd = next_row ? (const char *)next_d + v * height * next_row : NULL;
        const ptrdiff_t next_left = next_row ? plane_bytes - v * height * next_row : 0; /* (of the plane, from ns) */
        const ptrdiff_t col = v + 1 < n_vectors || width < DW_VLEN ? v * DW_VLEN : width - DW_VLEN;
        /* (the output gradients' lanes of this strip alone: past a narrow row, or summed before) */
        const unsigned dy_lanes = width < DW_VLEN ? (1u << width) - 1
                                                  : (DW_ALL_LANES << (v * DW_VLEN - col)) & DW_ALL_LANES;
        const int prefetch = v == 0 && n_vectors > 1;
        if (width < DW_VLEN)
            DW_FN(rolling_dot_strip)(s, d, width, height, col, dy_lanes, sum, first, last, prefetch, ns, nd, next_row,
                                     next_left, 1, 1, 1);
        else if (n_vectors == 1)
            DW_FN(rolling_dot_strip)(s, d, width, height, col, dy_lanes, sum, first, last, prefetch, ns, nd, next_row,
                                     next_left, 1, 1, 0);
        else if (v == 0)
            DW_FN(rolling_dot_strip)(s, d, width, height, col, dy_lanes, sum, first, last, prefetch, ns, nd, next_row,
                                     next_left, 1, 0, 0);
        else if (v + 1 < n_vectors)
            DW_FN(rolling_dot_strip)(s, d, width, height, col, dy_lanes, sum, first, last, prefetch, ns, nd, next_row,
                                     next_left, 0, 0, 0);
        else
            DW_FN(rolling_dot_strip)(s, d, width, height, col, dy_lanes, sum, first, last, prefetch, ns, nd, next_row,
                                     next_left, 0, 1, 0);
    }
}

/* flat_dot_rolling's planes p0 to p1 through every image; `fetch`: each plane's strips ask for the
 * lines of the plane after it. */
DW_INLINE void DW_FN(rolling_dot_planes)(const DW_T *src, ptrdiff_t src_plane, ptrdiff_t src_image, ptrdiff_t height,
                                         ptrdiff_t width, const DW_T *dy, ptrdiff_t dy_plane, ptrdiff_t dy_image,
                                         DW_VEC (*sums)[10], ptrdiff_t p0, ptrdiff_t p1, ptrdiff_t np,
                                         ptrdiff_t n_images, const int fetch)
{
    for (ptrdiff_t n = 0; n < n_images; n++)
        for (ptrdiff_t p = p0; p < p1; p++) {
            const ptrdiff_t next_n = p + 1 < p1 ? n : n + 1, next_p = p + 1 < p1 ? p + 1 : p0;
            const DW_T *next_s = fetch && next_n < n_images ? src + next_n * src_image + next_p * src_plane : NULL;
            const DW_T *next_d = fetch && next_n < n_images ? dy + next_n * dy_image + next_p * dy_plane : NULL;
            if (p == 0 || p == np - 1)
                DW_FN(rolling_dot_plane)(src + n * src_image + p * src_plane, dy + n * dy_image + p * dy_plane, width,
                                         height, sums[p - p0], p == 0, p == np - 1, next_s, next_d);
            else /* (the planes between: no masked first or last element, no test for one per row) */
                DW_FN(rolling_dot_plane)(src + n * src_image + p * src_plane, dy + n * dy_image + p * dy_plane, width,
                                         height, sums[p - p0], 0, 0, next_s, next_d);
        }
}

static void DW_FN(flat_dot_rolling)(const DW_T *src, ptrdiff_t src_plane, ptrdiff_t src_image, ptrdiff_t height,
                                    ptrdiff_t width, ptrdiff_t pt, ptrdiff_t pl, const DW_T *dy, ptrdiff_t dy_plane,
                                    ptrdiff_t dy_image, ptrdiff_t OH, ptrdiff_t OW, DW_T *acc, ptrdiff_t acc_tap,
                                    DW_T *bias_acc, ptrdiff_t np, ptrdiff_t n_images)
{
    (void)pt, (void)pl, (void)OH, (void)OW; /* (rolling_fits: a pixel of padding, output planes the input's) */
    for (ptrdiff_t p0 = 0; p0 < np; p0 += DW_ROLLING_PLANES) {
        const ptrdiff_t p1 = p0 + DW_ROLLING_PLANES < np ? p0 + DW_ROLLING_PLANES : np;
        DW_VEC sums[DW_ROLLING_PLANES][10];
        for (ptrdiff_t p = p0; p < p1; p++)
            for (int t = 0; t < 10; t++) sums[p - p0][t] = DW_FN(broadcast)(0);
        if (width * height * (ptrdiff_t)sizeof(DW_T) >= DW_NEXT_PLANE_BYTES)
            DW_FN(rolling_dot_planes)(src, src_plane, src_image, height, width, dy, dy_plane, dy_image, sums, p0, p1, np,
                                      n_images, 1);
        else
            DW_FN(rolling_dot_planes)(src, src_plane, src_image, height, width, dy, dy_plane, dy_image, sums, p0, p1, np,
                                      n_images, 0);
        for (ptrdiff_t p = p0; p < p1; p++) {
            for (int t = 0; t < 9; t++) acc[t * acc_tap + p] = DW_FN(horizontal_sum)(sums[p - p0][t]);
            if (bias_acc) bias_acc[p] = DW_FN(horizontal_sum)(sums[p - p0][9]);
        }
    }
}
#endif

#if DW_ROW_SHIFTS
/* The filter and bias gradients of k x k kernels (k 5 or 7, known at compile time) at stride 1 and
 * dilation 1 on flat planes (AVX-512's flat_dot_shifted): each plane of each image in strips of a
 * vector's output columns (the last at OW - DW_VLEN, its output-gradient lanes the one before
 * covered cleared), each strip from top to bottom in passes of 2 or 3 tap rows. A pass loads each
 * source row once, as two vectors whose lanes outside the plane are zeros, shifts its k tap columns
 * out of them in registers (elements_from) and multiplies each by the output-gradient rows it
 * serves (row i + pt - a for tap row a), kept in registers as the pass goes down the rows; its
 * taps' sums (3 rows of 7 beside 3 output-gradient rows and the source: all 25 or 49 would not fit)
 * stay in registers down the strip. Where flat_dot loads each tap's source vector under a mask for
 * each output-gradient vector, 25 loads for 5x5, this loads 4 vectors and shifts 8 per source row
 * and strip (2 vCPUs of an AVX-512 AMD EPYC, Zen 5, two threads, 5x5 against flat_dot: 28x28x240
 * 2.1x faster at batch 1 and 2.4x at batch 16, 14x14x480 2.5x, 56x56x64 2.4x, 7x7x960 1.4x,
 * 4x112x112x32 2.8x; 7x7 against the packed path: 56x56x96 1.45x at batch 1 and 1.55x at batch
 * 16, 14x14x384 1.9x). The sums run in an order fixed by the geometry (planes, images, strips,
 * passes, rows). */
#define DW_DOT_SHIFTED_ROWS 3 /* tap rows a pass, at most */
#define DW_DOT_SHIFTED_MAX_K 7
/* Planes of up to DW_DOT_SHIFTED_SPREAD bytes ask for the same plane of the next image, which the
 * block's planes reach an image later, in pages the prefetchers do not follow: up to
 * DW_DOT_SHIFTED_AT_ONCE as they start, larger ones a piece at each source row of each pass (2 vCPUs
 * of an AVX-512 AMD EPYC, Zen 5, batch 16: 56x56x96 7x7, all three gradients, 1.3x faster than at
 * once; 28x28x240 5x5 at once 1.04x faster than in pieces); larger planes the prefetchers follow
 * (4x112x112x32 5x5 fetched in pieces 0.8x). */
#define DW_DOT_SHIFTED_AT_ONCE 4096
#define DW_DOT_SHIFTED_SPREAD 16384
_Static_assert(DW_DOT_SHIFTED_ROWS * DW_DOT_SHIFTED_MAX_K + DW_DOT_SHIFTED_ROWS + 3 <= 32
               && DW_DOT_SHIFTED_MAX_K - 1 <= DW_VLEN,
               "a pass's sums, output-gradient rows and source vectors in registers; tap columns in two vectors");

/* Output-gradient row y of a strip (its lanes `lanes`), zeros outside the plane's OH rows. */
DW_INLINE DW_VEC DW_FN(shifted_dy)(const DW_T *d, ptrdiff_t y, ptrdiff_t OH, ptrdiff_t OW, unsigned lanes)
{
    return y >= 0 && y < OH ? DW_FN(load_masked)(d + y * OW, lanes) : DW_FN(broadcast)(0);
}

/* Tap rows a0 .. a0 + na - 1 of a strip into `sum` (a plane's k*k taps' vectors): s, the plane's
 * column of the strip's first tap; d, the output gradient's of its first pixel; lanes0 and lanes1,
 * the lanes of the two source vectors inside the plane (the second's first k - 1 alone). With
 * `fetch` (known at compile time: the test in the loop of every pass cost 4x112x112x32 1.2x), row i
 * asks for piece i of next_s and next_d (dw_prefetch_piece). */
DW_INLINE void DW_FN(shifted_dot_pass)(const DW_T *s, const DW_T *d, ptrdiff_t width, ptrdiff_t height, ptrdiff_t pt,
                                       ptrdiff_t OH, ptrdiff_t OW, unsigned dy_lanes, unsigned lanes0,
                                       unsigned lanes1, DW_VEC *sum, const char *next_s, const char *next_d,
                                       ptrdiff_t next_row, ptrdiff_t next_left, const int k, const int a0, const int na,
                                       const int fetch)
{
    DW_VEC tap[DW_DOT_SHIFTED_ROWS][DW_DOT_SHIFTED_MAX_K], dy_rows[DW_DOT_SHIFTED_ROWS]; /* (j: row i + pt - a0 - j) */
    DW_FLAT_UNROLL
    for (int j = 0; j < na; j++) {
        DW_FLAT_UNROLL
        for (int b = 0; b < k; b++) tap[j][b] = sum[(a0 + j) * k + b];
        dy_rows[j] = DW_FN(shifted_dy)(d, pt - a0 - j, OH, OW, dy_lanes);
    }
    for (ptrdiff_t i = 0; i < height; i++) {
        const DW_T *row = s + i * width;
        if (fetch) dw_prefetch_piece(next_s, next_d, i, next_row, next_left);
        const DW_VEC lo = DW_FN(load_masked)(row, lanes0), hi = DW_FN(load_masked)(row + DW_VLEN, lanes1);
        DW_FLAT_UNROLL
        for (int b = 0; b < k; b++) {
            const DW_VEC x = DW_FN(elements_from)(lo, hi, b);
            DW_FLAT_UNROLL
            for (int j = 0; j < na; j++) tap[j][b] += dy_rows[j] * x;
        }
        DW_FLAT_UNROLL
        for (int j = na - 1; j > 0; j--) dy_rows[j] = dy_rows[j - 1];
        dy_rows[0] = DW_FN(shifted_dy)(d, i + 1 + pt - a0, OH, OW, dy_lanes);
    }
    DW_FLAT_UNROLL
    for (int j = 0; j < na; j++) {
        DW_FLAT_UNROLL
        for (int b = 0; b < k; b++) sum[(a0 + j) * k + b] = tap[j][b];
    }
}

/* flat_dot_shifted for one kernel size k (known at compile time). */
DW_INLINE void DW_FN(flat_dot_shifted_k)(const DW_T *src, ptrdiff_t src_plane, ptrdiff_t src_image, ptrdiff_t height,
                                         ptrdiff_t width, ptrdiff_t pt, ptrdiff_t pl, const DW_T *dy,
                                         ptrdiff_t dy_plane, ptrdiff_t dy_image, ptrdiff_t OH, ptrdiff_t OW, DW_T *acc,
                                         ptrdiff_t acc_tap, DW_T *bias_acc, ptrdiff_t np, ptrdiff_t n_images,
                                         const int k)
{
    const int n_passes = (k + DW_DOT_SHIFTED_ROWS - 1) / DW_DOT_SHIFTED_ROWS, taps = k * k;
    DW_VEC sums[DW_FLAT_DOT_PLANES][DW_DOT_SHIFTED_MAX_K * DW_DOT_SHIFTED_MAX_K + 1]; /* (taps, then bias) */
    for (ptrdiff_t p0 = 0; p0 < np; p0 += DW_FLAT_DOT_PLANES) {
        const ptrdiff_t planes = np - p0 < DW_FLAT_DOT_PLANES ? np - p0 : DW_FLAT_DOT_PLANES;
        for (ptrdiff_t p = 0; p < planes; p++)
            for (int t = 0; t <= taps; t++) sums[p][t] = DW_FN(broadcast)(0);
        for (ptrdiff_t n = 0; n < n_images; n++)
            for (ptrdiff_t p = 0; p < planes; p++) {
                const DW_T *s = src + n * src_image + (p0 + p) * src_plane, *d = dy + n * dy_image + (p0 + p) * dy_plane;
                /* (the same plane of the next image: asked for at once, or a piece at each source row of
                 * each pass, next_row bytes, whole lines) */
                const ptrdiff_t plane_bytes = height * width * (ptrdiff_t)sizeof(DW_T);
                const ptrdiff_t steps = (OW + DW_VLEN - 1) / DW_VLEN * n_passes * height;
                const int fetch = n + 1 < n_images && plane_bytes <= DW_DOT_SHIFTED_SPREAD;
                const ptrdiff_t next_row =
                    fetch && plane_bytes > DW_DOT_SHIFTED_AT_ONCE ? dw_piece_bytes(plane_bytes, steps) : 0;
                ptrdiff_t fetched = 0;
                if (fetch && !next_row) {
                    dw_prefetch(s + src_image, plane_bytes);
                    dw_prefetch(d + dy_image, OH * OW * (ptrdiff_t)sizeof(DW_T));
                }
                for (ptrdiff_t x = 0; x < OW; x += DW_VLEN) {
                    const ptrdiff_t x0 = x + DW_VLEN <= OW || OW < DW_VLEN ? x : OW - DW_VLEN, col = x0 - pl;
                    const unsigned dy_lanes = OW < DW_VLEN ? (1u << OW) - 1 : (DW_ALL_LANES << (x - x0)) & DW_ALL_LANES;
                    const unsigned lanes0 = DW_FN(lane_range)(-col, width - col);
                    const unsigned lanes1 = DW_FN(lane_range)(-col - DW_VLEN, width - col - DW_VLEN)
                                            & ((1u << (k - 1)) - 1);
                    /* (passes of tap rows as even as they go: 5 rows in 2 and 3, 7 in 2, 2 and 3) */
                    DW_FLAT_UNROLL
                    for (int q = 0; q < n_passes; q++) {
#define DW_SHIFTED_PASS(fetch)                                                                                   \
    DW_FN(shifted_dot_pass)(s + col, d + x0, width, height, pt, OH, OW, dy_lanes, lanes0, lanes1, sums[p],        \
                            (const char *)(s + src_image) + fetched, (const char *)(d + dy_image) + fetched,      \
                            next_row, plane_bytes - fetched, k, q * k / n_passes,                                 \
                            (q + 1) * k / n_passes - q * k / n_passes, fetch)
                        if (next_row)
                            DW_SHIFTED_PASS(1);
                        else
                            DW_SHIFTED_PASS(0);
#undef DW_SHIFTED_PASS
                        fetched += next_row * height;
                    }
                    DW_VEC bias = sums[p][taps];
                    for (ptrdiff_t y = 0; y < OH; y++) bias += DW_FN(load_masked)(d + y * OW + x0, dy_lanes);
                    sums[p][taps] = bias;
                }
            }
        for (ptrdiff_t p = 0; p < planes; p++) {
            for (int t = 0; t < taps; t++) acc[t * acc_tap + p0 + p] = DW_FN(horizontal_sum)(sums[p][t]);
            if (bias_acc) bias_acc[p0 + p] = DW_FN(horizontal_sum)(sums[p][taps]);
        }
    }
}

static void DW_FN(flat_dot_shifted)(const DW_T *src, ptrdiff_t src_plane, ptrdiff_t src_image, ptrdiff_t height,
                                    ptrdiff_t width, ptrdiff_t pt, ptrdiff_t pl, const DW_T *dy, ptrdiff_t dy_plane,
                                    ptrdiff_t dy_image, ptrdiff_t OH, ptrdiff_t OW, DW_T *acc, ptrdiff_t acc_tap,
                                    DW_T *bias_acc, ptrdiff_t np, ptrdiff_t n_images, ptrdiff_t k)
{
    _Static_assert(DW_DOT_SHIFTED_MAX_K == 7, "the cases below list every kernel size");
    if (k == 5)
        DW_FN(flat_dot_shifted_k)(src, src_plane, src_image, height, width, pt, pl, dy, dy_plane, dy_image, OH, OW, acc,
                                  acc_tap, bias_acc, np, n_images, 5);
    else
        DW_FN(flat_dot_shifted_k)(src, src_plane, src_image, height, width, pt, pl, dy, dy_plane, dy_image, OH, OW, acc,
                                  acc_tap, bias_acc, np, n_images, 7);
}
#endif

/* Whether flat_rows runs these planes a plane at a time (flat_rolling) rather than in row tiles. */
DW_INLINE int DW_FN(runs_rolling)(ptrdiff_t height, ptrdiff_t width, ptrdiff_t pt, ptrdiff_t pl, ptrdiff_t OH,
                                  ptrdiff_t OW, ptrdiff_t k, ptrdiff_t sw)
{
    return DW_VBYTES == 32 && DW_FLAT_FLOAT && k == 3 && sw == 1
           && dw_rolling_fits(height, width, pt, pl, OH, OW, DW_VLEN);
}

/* flat_rows for one kernel size k and stride sw (known at compile time). */
DW_INLINE void DW_FN(flat_rows_at_stride)(const DW_T *src, ptrdiff_t src_plane, ptrdiff_t height, ptrdiff_t width,
                                          ptrdiff_t pt, ptrdiff_t pl, const DW_T *w, ptrdiff_t w_plane,
                                          ptrdiff_t w_tap, const DW_T *bias, ptrdiff_t bias_plane, DW_T *dst,
                                          ptrdiff_t dst_plane, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t np, int nt,
                                          const int k, const int sw)
{
    const int narrow = sw == 2 && OW < DW_VLEN, n_rows = DW_TILE_ROWS(k, sw, narrow);
    const ptrdiff_t band_rows = (n_rows - 1) * sw + k; /* the source rows a band reads */
    /* A tile's vectors a vector apart; at stride 1 on planes less than two vectors wide, two vectors
     * fill the row in one tile (8 sums in flight where 4 would wait on the FMA latency): overlapping,
     * or with DW_ROW_SHIFTS, whose vectors are a vector apart, the second's first lanes stored */
    _Static_assert(DW_FLAT_ROW_VECS <= 2, "two vectors fill a row");
    const ptrdiff_t vstep = sw == 1 && OW < 2 * DW_VLEN && !DW_ROW_SHIFTS ? OW - DW_VLEN : DW_VLEN;
#if DW_VBYTES == 32 && DW_FLAT_FLOAT
    if (DW_FN(runs_rolling)(height, width, pt, pl, OH, OW, k, sw)) {
        DW_FN(flat_rolling)(src, src_plane, height, width, w, w_plane, w_tap, bias, bias_plane, dst, dst_plane, np, nt);
        return;
    }
#endif
    if (k == 3 && sw == 1 && OW < DW_VLEN) { /* (narrow planes: each row and its padding within a vector) */
        DW_FN(flat_narrow)(src, src_plane, height, width, pt, pl, w, w_plane, w_tap, bias, bias_plane, dst, dst_plane, OH,
                           OW, np, nt);
        return;
    }
#if DW_VBYTES == 64 && DW_FLAT_FLOAT
    if (k == 3 && sw == 2 && dw_narrow_s2_pairs(width, pl, OW)) {
        DW_FN(flat_narrow_s2)(src, src_plane, height, width, pt, pl, w, w_plane, w_tap, bias, bias_plane, dst, dst_plane,
                              OH, OW, np);
        return;
    }
#endif
    DW_T staged[DW_STAGED_ELEMENTS] __attribute__((aligned(64)));
    const int staging = nt == DW_STREAM_STAGED, tile_nt = nt == DW_STREAM_IN_PLACE;
    for (ptrdiff_t p = 0; p < np; p++) {
        DW_T wk[DW_FLAT_ROW_MAX_K * DW_FLAT_ROW_MAX_K];
        DW_VEC wt[9];
        for (int t = 0; t < k * k; t++) wk[t] = w[p * w_plane + t * w_tap];
        for (int t = 0; k == 3 && t < 9; t++) wt[t] = DW_FN(broadcast)(wk[t]);
        const DW_VEC start = DW_FN(broadcast)(bias ? bias[p * bias_plane] : 0);
        const DW_T *s = src + p * src_plane;
        DW_T *d = dst + p * dst_plane;
        for (ptrdiff_t y = 0; y < OH; y += n_rows) {
            const ptrdiff_t y0 = y + n_rows <= OH ? y : OH - n_rows, row0 = y0 * sw - pt;
            DW_T *band = staging ? staged : d + y0 * OW; /* (the tiles' output rows) */
            DW_FN(prefetch_band)(s, width, height, row0 + band_rows, n_rows * sw);
            const int masked_rows = row0 < 0 || row0 + band_rows > height;
            for (ptrdiff_t x = 0; x < OW;) {
                const int nv = OW - x > DW_VLEN && (sw == 1 || OW >= DW_FLAT_ROW_VECS * DW_VLEN) ? DW_FLAT_ROW_VECS : 1;
                const ptrdiff_t tile_width = (nv - 1) * vstep + DW_VLEN;
                const int partial = tile_width > OW; /* (its last vector's first n_last lanes stored) */
                const ptrdiff_t x0 = x + tile_width <= OW || partial ? x : OW - tile_width, col0 = x0 * sw - pl;
                const ptrdiff_t n_last = partial ? OW - (nv - 1) * DW_VLEN : DW_VLEN;
                /* (the columns the tile reads) */
                const ptrdiff_t span = sw == 1 ? tile_width + k - 1 : 2 * nv * DW_VLEN + k - 2;
                /* (5x5: tiles inside the plane masked as at its columns, for the code's size) */
                const int masked = masked_rows ? 2 : col0 < 0 || col0 + span > width || k > 3 || partial;
/* (n_out: the last vector's lanes stored, a constant where the tile is never partial, which keeps
 * the stores' test out of the code: 28x28x192 at batch 16 ran 1.06x slower with it there) */
#define DW_FLAT_ROWS_TILE(n, m, st, rows, n_out)                                                                     \
    DW_FN(flat_rows_tile)(s, width, height, row0, col0, vstep, wt, wk, start, band + x0, OW, n_out, tile_nt, k, n, \
                          m, st, rows)
#define DW_FLAT_ROWS_TILES(st)                                                                                \
    switch ((nv == DW_FLAT_ROW_VECS) * 3 + masked) {                                                          \
        case 0: if (k == 3) DW_FLAT_ROWS_TILE(1, 0, st, DW_TILE_ROWS(k, st, 0), DW_VLEN); break;                \
        case 1: DW_FLAT_ROWS_TILE(1, 1, st, DW_TILE_ROWS(k, st, 0), DW_VLEN); break;                            \
        case 2: DW_FLAT_ROWS_TILE(1, 2, st, DW_TILE_ROWS(k, st, 0), DW_VLEN); break;                            \
        case 3: if (k == 3) DW_FLAT_ROWS_TILE(DW_FLAT_ROW_VECS, 0, st, DW_TILE_ROWS(k, st, 0), DW_VLEN); break; \
        case 4: DW_FLAT_ROWS_TILE(DW_FLAT_ROW_VECS, 1, st, DW_TILE_ROWS(k, st, 0), n_last); break;              \
        case 5: DW_FLAT_ROWS_TILE(DW_FLAT_ROW_VECS, 2, st, DW_TILE_ROWS(k, st, 0), n_last); break;              \
    }
                if (sw == 1)
                    DW_FLAT_ROWS_TILES(1)
                else if (narrow) /* (one vector, its first lanes reaching past the row: masked) */
                    DW_FLAT_ROWS_TILE(1, masked_rows ? 2 : 1, 2, DW_TILE_ROWS(k, 2, 1), n_last);
                else
                    DW_FLAT_ROWS_TILES(2)
#undef DW_FLAT_ROWS_TILES
#undef DW_FLAT_ROWS_TILE
                x = x0 + tile_width;
            }
            if (staging) DW_FN(stream_lines)(d + y0 * OW, staged, n_rows * OW);
        }
    }
}

/* flat_rows at stride 2, compiled apart from stride 1's (the 3x3 code at stride 1 ran 28x28x192 at
 * batch 16 1.04-1.06x slower with the stride-2 tiles beside it). */
static __attribute__((noinline)) void DW_FN(flat_rows_stride_2)(const DW_T *src, ptrdiff_t src_plane, ptrdiff_t height,
                                                                ptrdiff_t width, ptrdiff_t pt, ptrdiff_t pl, const DW_T *w,
                                                                ptrdiff_t w_plane, ptrdiff_t w_tap, const DW_T *bias,
                                                                ptrdiff_t bias_plane, DW_T *dst, ptrdiff_t dst_plane,
                                                                ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t np, int nt,
                                                                ptrdiff_t k)
{
#if DW_FLAT_ROW_MAX_K == 5
    if (k == 5) {
        DW_FN(flat_rows_at_stride)(src, src_plane, height, width, pt, pl, w, w_plane, w_tap, bias, bias_plane, dst,
                                   dst_plane, OH, OW, np, nt, 5, 2);
        return;
    }
#endif
    (void)k;
    DW_FN(flat_rows_at_stride)(src, src_plane, height, width, pt, pl, w, w_plane, w_tap, bias, bias_plane, dst,
                               dst_plane, OH, OW, np, nt, 3, 2);
}

/* flat_rows for one kernel size k (known at compile time). */
DW_INLINE void DW_FN(flat_rows_k)(const DW_T *src, ptrdiff_t src_plane, ptrdiff_t height, ptrdiff_t width,
                                  ptrdiff_t pt, ptrdiff_t pl, ptrdiff_t sw, const DW_T *w, ptrdiff_t w_plane,
                                  ptrdiff_t w_tap, const DW_T *bias, ptrdiff_t bias_plane, DW_T *dst,
                                  ptrdiff_t dst_plane, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t np, int nt, const int k)
{
    if (sw == 1)
        DW_FN(flat_rows_at_stride)(src, src_plane, height, width, pt, pl, w, w_plane, w_tap, bias, bias_plane, dst,
                                   dst_plane, OH, OW, np, nt, k, 1);
    else
        DW_FN(flat_rows_stride_2)(src, src_plane, height, width, pt, pl, w, w_plane, w_tap, bias, bias_plane, dst,
                                  dst_plane, OH, OW, np, nt, k);
}

/* One function per kernel size, compiled apart so that each gets the registers to itself. */
#define DW_FLAT_ROWS_OF(k)                                                                               \
    static __attribute__((noinline)) void DW_FN(flat_rows_##k)(                                          \
        const DW_T *src, ptrdiff_t src_plane, ptrdiff_t height, ptrdiff_t width, ptrdiff_t pt, ptrdiff_t pl, \
        ptrdiff_t sw, const DW_T *w, ptrdiff_t w_plane, ptrdiff_t w_tap, const DW_T *bias, ptrdiff_t bias_plane, \
        DW_T *dst, ptrdiff_t dst_plane, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t np, int nt)                \
    {                                                                                                    \
        DW_FN(flat_rows_k)(src, src_plane, height, width, pt, pl, sw, w, w_plane, w_tap, bias, bias_plane, dst, \
                           dst_plane, OH, OW, np, nt, k);                                                \
    }
DW_FLAT_ROWS_OF(3)
#if DW_FLAT_ROW_MAX_K == 5
DW_FLAT_ROWS_OF(5)
#endif
#undef DW_FLAT_ROWS_OF

#if DW_VBYTES == 64
/* Wide row tiles (7x7 kernels at stride 1, AVX-512): DW_FLAT_ROWS output rows x 3.5 vectors along
 * a row (56 pixels: ConvNeXt's first stage in one tile). Each source row is 4 masked loads; its
 * tap columns are those vectors shifted in registers (valignd), each used for every output row it
 * serves, each tap broadcast once for the tile's vectors: 4 loads and 24 shifts per 112
 * multiply-adds, where the 3x3 and 5x5 tiles' one load per tap column and vector would be 28
 * (those 7x7 tiles, two vectors wide, ran 0.85-0.93x the packed path). The half vector's sums are
 * 256-bit: AMD's AVX-512 (Zen 4) runs two of those per cycle where it runs one of 512 bits (4
 * whole vectors, 64 pixels, ran ConvNeXt's 56-pixel planes 1.14x slower); Intel's as many. (5x5
 * kernels in such tiles, two vectors wide, ran effnet-28x240's planes 0.95x their own tiles.) */
#define DW_WIDE_ROW_K 7
#define DW_WIDE_ROW_VECS 3 /* whole vectors, then a half */
_Static_assert(DW_WIDE_ROW_PIXELS == DW_WIDE_ROW_VECS * DW_VLEN + DW_VLEN / 2 && DW_WIDE_ROW_K - 1 <= DW_VLEN / 2
               && DW_WIDE_ROW_VECS + 1 <= 7 && DW_FLAT_ROWS - 1 + DW_WIDE_ROW_K <= 16,
               "3.5 vectors; the half vector's taps lie in the last vector loaded; masks in k registers");

/* acc + w * x in the low halves of the vectors (256-bit, the high half cleared). (In assembly: the
 * same in C, with 256-bit vector types or casts, had GCC 12 keep those sums on the stack. In
 * registers 16-31 it is AVX-512 VL's, which dw_supported_avx512 asks for.) */
DW_INLINE DW_VEC DW_FN(fma_low_half)(DW_VEC acc, DW_VEC w, DW_VEC x)
{
    __asm__("vfmadd231ps %t1, %t2, %t0" : "+v"(acc) : "v"(w), "v"(x));
    return acc;
}

/* Source row i of a wide tile, loaded (x), into the sums (acc; the half vector's in its low half)
 * of output rows r_lo..r_hi (those whose tap rows i - r it holds), taps wi = wk + i*k. (Those rows
 * as a branch per row and tap column, not one copy of the code per set of rows: 7 copies took
 * 12 KB, for the same speed.) */
DW_INLINE void DW_FN(wide_row_source)(DW_VEC acc[][DW_WIDE_ROW_VECS + 1], const DW_VEC *x,
                                      const DW_T *wi, int r_lo, int r_hi)
{
    DW_FLAT_UNROLL
    for (int b = 0; b < DW_WIDE_ROW_K; b++) {
        DW_VEC xb[DW_WIDE_ROW_VECS];
        DW_FLAT_UNROLL
        for (int v = 0; v < DW_WIDE_ROW_VECS; v++) xb[v] = DW_FN(elements_from)(x[v], x[v + 1], b);
        const DW_VEC xh = DW_FN(elements_from)(x[DW_WIDE_ROW_VECS], x[DW_WIDE_ROW_VECS], b);
        DW_FLAT_UNROLL
        for (int r = 0; r < DW_FLAT_ROWS; r++)
            if (r >= r_lo && r <= r_hi) {
                const DW_VEC wv = DW_FN(broadcast)(wi[b - r * DW_WIDE_ROW_K]);
                DW_FLAT_UNROLL
                for (int v = 0; v < DW_WIDE_ROW_VECS; v++) acc[r][v] += wv * xb[v];
                acc[r][DW_WIDE_ROW_VECS] = DW_FN(fma_low_half)(acc[r][DW_WIDE_ROW_VECS], wv, xh);
            }
    }
}

/* A wide tile: output rows [row0 + pt, ...) of which the first `rows` are stored, pixels [col0 + pl,
 * ...) of which the first n_out, from the `height` x `width` plane src, taps wk (k x k, row-major);
 * source elements outside the plane neither read nor added. */
DW_INLINE void DW_FN(wide_row_tile)(const DW_T *src, ptrdiff_t width, ptrdiff_t height, ptrdiff_t row0,
                                    ptrdiff_t col0, const DW_T *wk, DW_VEC start, DW_T *dst, ptrdiff_t dst_row,
                                    ptrdiff_t rows, ptrdiff_t n_out)
{
    const int k = DW_WIDE_ROW_K;
    DW_VEC acc[DW_FLAT_ROWS][DW_WIDE_ROW_VECS + 1];
    unsigned inside[DW_WIDE_ROW_VECS + 1];
    DW_FLAT_UNROLL
    for (int r = 0; r < DW_FLAT_ROWS; r++) {
        DW_FLAT_UNROLL
        for (int v = 0; v <= DW_WIDE_ROW_VECS; v++) acc[r][v] = start;
    }
    DW_FLAT_UNROLL
    for (int v = 0; v <= DW_WIDE_ROW_VECS; v++)
        inside[v] = DW_FN(lane_range)(-(col0 + v * DW_VLEN), width - (col0 + v * DW_VLEN));
    for (int i = 0; i < DW_FLAT_ROWS - 1 + k; i++) {
        if (row0 + i < 0 || row0 + i >= height) continue; /* (padding: nothing to add) */
        const DW_T *s = src + (row0 + i) * width + col0;
        DW_VEC x[DW_WIDE_ROW_VECS + 1];
        DW_FLAT_UNROLL
        for (int v = 0; v <= DW_WIDE_ROW_VECS; v++) x[v] = DW_FN(load_masked)(s + v * DW_VLEN, inside[v]);
        DW_FN(wide_row_source)(acc, x, wk + i * k, i - k + 1 > 0 ? i - k + 1 : 0,
                               i < DW_FLAT_ROWS - 1 ? i : DW_FLAT_ROWS - 1);
    }
    DW_FLAT_UNROLL
    for (int r = 0; r < DW_FLAT_ROWS; r++) {
        if (r >= rows) break;
        DW_T *d = dst + r * dst_row;
        DW_FLAT_UNROLL
        for (int v = 0; v <= DW_WIDE_ROW_VECS; v++) /* (the half vector: at most half its lanes) */
            if (n_out > v * DW_VLEN)
                DW_FN(store_first)(d + v * DW_VLEN, acc[r][v],
                                   n_out - v * DW_VLEN < DW_VLEN ? n_out - v * DW_VLEN : DW_VLEN, 0);
    }
}

/* flat_rows for 7x7 kernels at stride 1, in wide tiles: each band of DW_FLAT_ROWS rows (the last
 * stored up to OH) in tiles of DW_WIDE_ROW_PIXELS along the rows (the last stored up to OW). Plain
 * stores: tiles of 56 pixels start off the cache lines that streaming stores need, and streaming
 * each band from a buffer on the stack measured no faster (convnext-56x96 at batch 16, 19 MB). */
static __attribute__((noinline)) void DW_FN(flat_rows_7)(const DW_T *src, ptrdiff_t src_plane, ptrdiff_t height,
                                                         ptrdiff_t width, ptrdiff_t pt, ptrdiff_t pl, ptrdiff_t sw,
                                                         const DW_T *w, ptrdiff_t w_plane, ptrdiff_t w_tap,
                                                         const DW_T *bias, ptrdiff_t bias_plane, DW_T *dst,
                                                         ptrdiff_t dst_plane, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t np,
                                                         int nt)
{
    const int k = DW_WIDE_ROW_K;
    (void)sw, (void)nt;
    for (ptrdiff_t p = 0; p < np; p++) {
        DW_T wk[DW_WIDE_ROW_K * DW_WIDE_ROW_K];
        for (int t = 0; t < k * k; t++) wk[t] = w[p * w_plane + t * w_tap];
        const DW_VEC start = DW_FN(broadcast)(bias ? bias[p * bias_plane] : 0);
        const DW_T *s = src + p * src_plane;
        DW_T *d = dst + p * dst_plane;
        for (ptrdiff_t y = 0; y < OH; y += DW_FLAT_ROWS) {
            DW_FN(prefetch_band)(s, width, height, y - pt + DW_FLAT_ROWS - 1 + k, DW_FLAT_ROWS);
            for (ptrdiff_t x = 0; x < OW; x += DW_WIDE_ROW_PIXELS)
                DW_FN(wide_row_tile)(s, width, height, y - pt, x - pl, wk, start, d + y * OW + x, OW,
                                     OH - y < DW_FLAT_ROWS ? OH - y : DW_FLAT_ROWS,
                                     OW - x < DW_WIDE_ROW_PIXELS ? OW - x : DW_WIDE_ROW_PIXELS);
        }
    }
}
#endif

/* A k x k kernel (k 3, or 5 up to DW_FLAT_ROW_MAX_K, or 7 at AVX-512 (flat_rows_7); dilation 1) at
 * stride sw (1, or 2 with k 3 or 5)
 * over np NCHW planes read in place, in row tiles:
 * dst[p*dst_plane + y*OW + x] = bias[p*bias_plane] + sum_{a, b < k} w[p*w_plane + (k*a + b)*w_tap] * src[p*src_plane + (y*sw + a - pt)*width + x*sw + b - pl],
 * the taps outside the `height` x `width` plane (zero padding) left out, for y < OH, x < OW
 * (bias NULL: 0). Needs OH >= its tiles' rows (DW_TILE_ROWS), and OW >= DW_VLEN or, with k 3 at
 * stride 1, each source row and its padding, and output row and its, within a vector (narrow_tile,
 * a row to a vector; narrow_fits), or at stride 2 (AVX-512) OW < DW_VLEN: rows of 9 to 15 pixels
 * a vector each, 3x3 rows that pair (dw_narrow_s2_pairs) two planes to one. Each source vector is loaded once
 * for the output rows it serves (3x3 at stride 1: 3 loads per row and vector where `flat` has 9),
 * and the borders' lanes follow from the tile's place. Each band of rows runs in tiles of
 * DW_FLAT_ROW_VECS vectors, the last overlapping the one before where the row is not whole tiles
 * (at stride 1 and DW_ROW_SHIFTS, rows narrower than a tile: its last vector's first lanes stored);
 * the last band overlaps the one before likewise. With `nt`, results are streamed (DW_STREAM_*):
 * output rows of whole cache lines in place, others a plane (flat_rolling) or a band of rows at a
 * time through a buffer. */
static void DW_FN(flat_rows)(const DW_T *src, ptrdiff_t src_plane, ptrdiff_t height, ptrdiff_t width, ptrdiff_t pt,
                             ptrdiff_t pl, ptrdiff_t k, ptrdiff_t sw, const DW_T *w, ptrdiff_t w_plane,
                             ptrdiff_t w_tap, const DW_T *bias, ptrdiff_t bias_plane, DW_T *dst, ptrdiff_t dst_plane,
                             ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t np, int nt)
{
    /* (the elements staged at a time: a plane, or a band of rows) */
    const ptrdiff_t staged = DW_FN(runs_rolling)(height, width, pt, pl, OH, OW, k, sw) ? OH * OW
                                                                                       : DW_FLAT_ROWS_MAX * OW;
    /* (in place, an overlapping tile, or a line shared by two rows, would mix streamed and plain stores) */
    nt = !nt ? 0
         : OW * (ptrdiff_t)sizeof(DW_T) % 64 == 0 ? DW_STREAM_IN_PLACE
         : OW >= DW_VLEN && staged <= DW_STAGED_ELEMENTS ? DW_STREAM_STAGED : 0;
#define DW_FLAT_ROWS_K(k) \
    DW_FN(flat_rows_##k)(src, src_plane, height, width, pt, pl, sw, w, w_plane, w_tap, bias, bias_plane, dst, \
                         dst_plane, OH, OW, np, nt)
    _Static_assert(DW_FLAT_ROW_MAX_K <= 5, "the cases below list every kernel size");
    switch (k) {
        case 3: DW_FLAT_ROWS_K(3); break;
#if DW_FLAT_ROW_MAX_K == 5
        case 5: DW_FLAT_ROWS_K(5); break;
#endif
#if DW_VBYTES == 64
        case 7: DW_FLAT_ROWS_K(7); break;
#endif
    }
#undef DW_FLAT_ROWS_K
    if (nt) _mm_sfence(); /* streamed results reach memory before any later store */
}

/* The lanes of `table` that idx names (DW_LANES 32-bit indices; float only, as the plane groups
 * are: one permutation of 32-bit lanes). */
DW_INLINE DW_VEC DW_FN(lanes_of)(DW_VEC table, const int32_t *idx)
{
#if DW_VBYTES == 64
    return (DW_VEC)_mm512_permutexvar_ps(_mm512_loadu_si512(idx), (__m512)table);
#else
    return (DW_VEC)_mm256_permutevar8x32_ps((__m256)table, _mm256_loadu_si256((const __m256i *)idx));
#endif
}

/* Vectors v0 .. v0 + n of a group (n known at compile time): each tap one masked load and one FMA
 * per vector, its lanes' weights picked from the group's by lane_planes. */
DW_INLINE void DW_FN(flat_group_tile)(const DW_T *src, const ptrdiff_t *off, const unsigned *masks,
                                      const int32_t *lane_planes, ptrdiff_t npix, ptrdiff_t ntaps, const DW_VEC *wg,
                                      DW_VEC bias, DW_T *dst, ptrdiff_t v0, int nt, const int n)
{
    DW_VEC acc[DW_FLAT_GROUP_TILE];
    DW_FLAT_UNROLL
    for (int j = 0; j < n; j++) acc[j] = DW_FN(lanes_of)(bias, lane_planes + (v0 + j) * DW_LANES);
    for (ptrdiff_t t = 0; t < ntaps; t++) {
        const DW_T *s = src + v0 * DW_VLEN + off[t];
        DW_FLAT_UNROLL
        for (int j = 0; j < n; j++)
            acc[j] += DW_FN(lanes_of)(wg[t], lane_planes + (v0 + j) * DW_LANES)
                      * DW_FN(load_masked)(s + j * DW_VLEN, masks[t * npix + v0 + j]);
    }
    DW_FLAT_UNROLL
    for (int j = 0; j < n; j++) DW_FN(store_out)(dst + (v0 + j) * DW_VLEN, acc[j], nt);
}

/* Vector v of a group in DW_FLAT_GROUP_TILE images (image_step elements apart): each tap's lane
 * weights picked once for all of them and its mask loaded once, where a tile of vectors of one
 * image picks and loads them for each vector (the picks, permutes, then competed with the FMAs
 * for their ports one for one). */
DW_INLINE void DW_FN(flat_group_images)(const DW_T *src, ptrdiff_t image_step, const ptrdiff_t *off,
                                        const unsigned *masks, const int32_t *lane_planes, ptrdiff_t npix,
                                        ptrdiff_t ntaps, const DW_VEC *wg, DW_VEC bias, DW_T *dst, ptrdiff_t v, int nt)
{
    DW_VEC acc[DW_FLAT_GROUP_TILE];
    const int32_t *lanes = lane_planes + v * DW_LANES;
    const DW_VEC start = DW_FN(lanes_of)(bias, lanes);
    DW_FLAT_UNROLL
    for (int i = 0; i < DW_FLAT_GROUP_TILE; i++) acc[i] = start;
    for (ptrdiff_t t = 0; t < ntaps; t++) {
        const DW_T *s = src + v * DW_VLEN + off[t];
        const DW_VEC wv = DW_FN(lanes_of)(wg[t], lanes);
        const unsigned bits = masks[t * npix + v];
        DW_FLAT_UNROLL
        for (int i = 0; i < DW_FLAT_GROUP_TILE; i++) acc[i] += wv * DW_FN(load_masked)(s + i * image_step, bits);
    }
    DW_FLAT_UNROLL
    for (int i = 0; i < DW_FLAT_GROUP_TILE; i++) DW_FN(store_out)(dst + i * image_step + v * DW_VLEN, acc[i], nt);
}

#if DW_VBYTES == 64 && DW_FLAT_FLOAT
#define DW_FLAT_NEAR_IMAGES 4 /* (their vectors before, at and after v in registers, and a sum each) */
/* flat_group_images where every tap's offset is at most a vector away (group->near): each image's
 * vectors before, at and after v loaded once, aligned, and each tap's lanes picked from two of them
 * by one permute, its mask zeroing the lanes outside their plane (those are the only lanes that
 * reach past the group's ends: the vectors there are left zero). The loads of flat_group_images
 * are split across cache lines for 8 taps of 9. */
DW_INLINE void DW_FN(flat_group_near)(const DW_T *src, ptrdiff_t image_step, const dw_flat_group *group,
                                      ptrdiff_t npix, ptrdiff_t ntaps, const DW_VEC *wg, DW_VEC bias, DW_T *dst,
                                      ptrdiff_t v, int nt)
{
    DW_VEC acc[DW_FLAT_NEAR_IMAGES], before[DW_FLAT_NEAR_IMAGES], at[DW_FLAT_NEAR_IMAGES], after[DW_FLAT_NEAR_IMAGES];
    const int32_t *lanes = group->lane_planes + v * DW_LANES;
    const DW_VEC start = DW_FN(lanes_of)(bias, lanes);
    DW_FLAT_UNROLL
    for (int i = 0; i < DW_FLAT_NEAR_IMAGES; i++) {
        const DW_T *s = src + i * image_step + v * DW_VLEN;
        acc[i] = start;
        at[i] = DW_FN(load)(s);
        before[i] = v > 0 ? DW_FN(load)(s - DW_VLEN) : DW_FN(broadcast)(0);
        after[i] = v + 1 < npix ? DW_FN(load)(s + DW_VLEN) : DW_FN(broadcast)(0);
    }
    for (ptrdiff_t t = 0; t < ntaps; t++) {
        const DW_VEC wv = DW_FN(lanes_of)(wg[t], lanes);
        const __m512i shift = _mm512_loadu_si512(group->shift + t * DW_LANES);
        const __mmask16 bits = (__mmask16)group->masks[t * npix + v];
        if (group->off[t] < 0) {
            DW_FLAT_UNROLL
            for (int i = 0; i < DW_FLAT_NEAR_IMAGES; i++)
                acc[i] += wv * (DW_VEC)_mm512_maskz_permutex2var_ps(bits, (__m512)before[i], shift, (__m512)at[i]);
        } else {
            DW_FLAT_UNROLL
            for (int i = 0; i < DW_FLAT_NEAR_IMAGES; i++)
                acc[i] += wv * (DW_VEC)_mm512_maskz_permutex2var_ps(bits, (__m512)at[i], shift, (__m512)after[i]);
        }
    }
    DW_FLAT_UNROLL
    for (int i = 0; i < DW_FLAT_NEAR_IMAGES; i++) DW_FN(store_out)(dst + i * image_step + v * DW_VLEN, acc[i], nt);
}
#endif

/* The plane groups' shared part (flat_groups) for a kh x kw kernel (kh*kw <= DW_FLAT_GROUP_TAPS,
 * dilation dil_h x dil_w, padding pt above and pl left) on planes of height x width <=
 * DW_FLAT_GROUP_PIXELS pixels. */
static void DW_FN(flat_group_masks)(ptrdiff_t height, ptrdiff_t width, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t dil_h,
                                    ptrdiff_t dil_w, ptrdiff_t pt, ptrdiff_t pl, dw_flat_group *group)
{
    _Static_assert(DW_LANES <= sizeof group->lane_planes / sizeof group->lane_planes[0] / DW_FLAT_GROUP_PIXELS,
                   "lane_planes holds a group's elements");
    const ptrdiff_t npix = height * width;
    ptrdiff_t *const off = group->off;
    unsigned *const masks = group->masks;
    for (ptrdiff_t e = 0, plane = 0, o = 0; e < npix * DW_VLEN; e++, o++) {
        if (o == npix) o = 0, plane++;
        group->lane_planes[e] = (int32_t)plane;
    }
    group->near = 1;
    for (ptrdiff_t a = 0; a < kh; a++)
        for (ptrdiff_t b = 0; b < kw; b++) {
            const ptrdiff_t t = a * kw + b, dy = a * dil_h - pt, dx = b * dil_w - pl;
            off[t] = dy * width + dx;
            group->near = group->near && off[t] >= -DW_FLAT_GROUP_NEAR && off[t] <= DW_FLAT_GROUP_NEAR;
            for (int l = 0; l < 16; l++) group->shift[t * 16 + l] = (int32_t)(l + off[t] + (off[t] < 0 ? 16 : 0));
            /* the tap's pixels inside the plane, bit o of inside[] */
            uint64_t inside[DW_FLAT_GROUP_PIXELS / 64 + 1] = {0};
            for (ptrdiff_t y = 0; y < height; y++)
                for (ptrdiff_t x = 0; x < width; x++)
                    if (y + dy >= 0 && y + dy < height && x + dx >= 0 && x + dx < width)
                        inside[(y * width + x) / 64] |= (uint64_t)1 << ((y * width + x) % 64);
            /* vector v's lanes from pixel v*DW_VLEN % npix of its plane on, plane after plane
             * (stepped without a division: the modulo per mask was half the setup's time) */
            for (ptrdiff_t v = 0, first = 0; v < npix; v++, first += DW_VLEN) {
                while (first >= npix) first -= npix;
                unsigned bits = 0;
                for (ptrdiff_t lane = 0, o = first; lane < DW_VLEN; o = 0) {
                    const ptrdiff_t n = npix - o < DW_VLEN - lane ? npix - o : DW_VLEN - lane; /* (at most 16) */
                    uint64_t run = inside[o / 64] >> (o % 64);
                    if (o % 64 + n > 64) run |= inside[o / 64 + 1] << (64 - o % 64);
                    bits |= (unsigned)(run & ((1u << n) - 1)) << lane;
                    lane += n;
                }
                masks[t * npix + v] = bits;
            }
        }
}

/* A kernel of ntaps taps at stride 1 over np NCHW planes of npix pixels in each of n_images
 * images (image_step elements apart), read in place, output planes the input's size, their shared
 * part `group` (flat_group_masks):
 * dst[i*image_step + p*npix + o] = bias[p] + sum_{t < ntaps} w[t*w_tap + p] * src[i*image_step + p*npix + o + off[t]],
 * the taps outside the plane (zero padding) left out, for i < n_images, p < np (a multiple of
 * DW_VLEN), o < npix (bias NULL: 0). The planes run DW_VLEN at a time, a group: its DW_VLEN*npix
 * elements are npix whole vectors, lane l of vector v being element e = v*DW_VLEN + l, pixel
 * e % npix of plane e / npix. Each tap is then, as on the flat path, one masked load per vector
 * (its lanes masked where the tap leaves their plane), with the lanes' weights picked from the
 * group's weights for that tap, one vector: no lane computed for nothing, where a plane of 49
 * pixels alone computes 64. The images go a tile at a time for each vector (flat_group_near where
 * the taps are near, flat_group_images), those left over one at a time in tiles of vectors
 * (flat_group_tile). With `nt`, results are written with streaming stores. */
static void DW_FN(flat_groups)(const DW_T *src, const dw_flat_group *group, ptrdiff_t npix, ptrdiff_t ntaps,
                               const DW_T *w, ptrdiff_t w_tap, const DW_T *bias, DW_T *dst, ptrdiff_t np,
                               ptrdiff_t n_images, ptrdiff_t image_step, int nt)
{
    const ptrdiff_t *const off = group->off;
    const unsigned *const masks = group->masks;
    const int32_t *const lane_planes = group->lane_planes;
    nt = nt && (uintptr_t)dst % sizeof(DW_VEC) == 0 && image_step * sizeof(DW_T) % sizeof(DW_VEC) == 0;
    for (ptrdiff_t g = 0; g < np / DW_VLEN; g++) {
        DW_VEC wg[DW_FLAT_GROUP_TAPS];
        for (ptrdiff_t t = 0; t < ntaps; t++) wg[t] = DW_FN(load)(w + t * w_tap + g * DW_VLEN);
        const DW_VEC bg = bias ? DW_FN(load)(bias + g * DW_VLEN) : DW_FN(broadcast)(0);
        ptrdiff_t i = 0;
#if DW_VBYTES == 64 && DW_FLAT_FLOAT
        for (; group->near && i + DW_FLAT_NEAR_IMAGES <= n_images; i += DW_FLAT_NEAR_IMAGES)
            for (ptrdiff_t v = 0; v < npix; v++)
                DW_FN(flat_group_near)(src + i * image_step + g * DW_VLEN * npix, image_step, group, npix, ntaps, wg,
                                       bg, dst + i * image_step + g * DW_VLEN * npix, v, nt);
#endif
        for (; i + DW_FLAT_GROUP_TILE <= n_images; i += DW_FLAT_GROUP_TILE) /* tiles of images */
            for (ptrdiff_t v = 0; v < npix; v++)
                DW_FN(flat_group_images)(src + i * image_step + g * DW_VLEN * npix, image_step, off, masks,
                                         lane_planes, npix, ntaps, wg, bg, dst + i * image_step + g * DW_VLEN * npix,
                                         v, nt);
        for (; i < n_images; i++) { /* the images left, in tiles of vectors */
            const DW_T *sg = src + i * image_step + g * DW_VLEN * npix;
            DW_T *dg = dst + i * image_step + g * DW_VLEN * npix;
            ptrdiff_t v = 0;
#define DW_FLAT_GROUP_TILE_N(n) DW_FN(flat_group_tile)(sg, off, masks, lane_planes, npix, ntaps, wg, bg, dg, v, nt, n)
            for (; v + DW_FLAT_GROUP_TILE <= npix; v += DW_FLAT_GROUP_TILE) DW_FLAT_GROUP_TILE_N(DW_FLAT_GROUP_TILE);
            _Static_assert(DW_FLAT_GROUP_TILE == 8 || DW_FLAT_GROUP_TILE == 4, "the cases below list every tile");
            switch (npix - v) { /* (the vectors left) */
                case 7: DW_FLAT_GROUP_TILE_N(7); break;
                case 6: DW_FLAT_GROUP_TILE_N(6); break;
                case 5: DW_FLAT_GROUP_TILE_N(5); break;
                case 4: DW_FLAT_GROUP_TILE_N(4); break;
                case 3: DW_FLAT_GROUP_TILE_N(3); break;
                case 2: DW_FLAT_GROUP_TILE_N(2); break;
                case 1: DW_FLAT_GROUP_TILE_N(1); break;
            }
#undef DW_FLAT_GROUP_TILE_N
        }
    }
    if (nt) _mm_sfence(); /* streamed results reach memory before any later store */
}
/* Stride 2, 3x3 kernels (dilation 1): the gradients of flat_rows' strided tiles, planes read in
 * place. Along a row, output pixel x reads source columns 2x + b - pl: the even and odd elements of
 * two source vectors (alternate), and the even ones shifted by a lane (shift_in). No transposition
 * into pixel rings and back (which took half of the packed path's time on mnv2-112x96-s2). */

/* v's lanes where `bits` has them set, zeros elsewhere. */
DW_INLINE DW_VEC DW_FN(keep_lanes)(DW_VEC v, unsigned bits)
{
#if DW_VBYTES == 64
    return (DW_VEC)_mm512_maskz_mov_ps((__mmask16)bits, (__m512)v);
#else
    return (DW_VEC)_mm256_and_ps((__m256)v, _mm256_castsi256_ps(DW_FN(lane_mask)(bits)));
#endif
}

/* Two vectors of an input-gradient row from pixel j0 on (`odd`: j0 + pl odd), from the n output-
 * gradient rows `rows` its kernel rows read (wr: their taps, one vector per column). Pixels j0 + 2t
 * and j0 + 2t + 1 read output-gradient columns `base` + t and its neighbours, so the row's even and
 * odd pixels are a vector each, interleaved at the store. */
DW_INLINE void DW_FN(input_grad_s2_tile)(const DW_T *const *rows, DW_VEC wr[2][3], ptrdiff_t base, ptrdiff_t OW,
                                         DW_T *dst, ptrdiff_t n_out, const int n, const int odd)
{
    DW_VEC even = DW_FN(broadcast)(0), odd_pixels = even;
    /* (columns past dy's edges: not read) */
    const ptrdiff_t near = odd ? base + 1 : base - 1;
    const unsigned at_base = DW_FN(lane_range)(-base, OW - base), at_near = DW_FN(lane_range)(-near, OW - near);
    DW_FLAT_UNROLL
    for (int r = 0; r < n; r++) {
        const DW_VEC v = DW_FN(load_masked)(rows[r] + base, at_base), u = DW_FN(load_masked)(rows[r] + near, at_near);
        if (odd) {
            even += wr[r][1] * v;
            odd_pixels += wr[r][0] * u + wr[r][2] * v;
        } else {
            even += wr[r][0] * v + wr[r][2] * u;
            odd_pixels += wr[r][1] * v;
        }
    }
    DW_FN(store_first)(dst, DW_FN(interleave)(even, odd_pixels, 0), n_out < DW_VLEN ? n_out : DW_VLEN, 0);
    if (n_out > DW_VLEN) DW_FN(store_first)(dst + DW_VLEN, DW_FN(interleave)(even, odd_pixels, 1), n_out - DW_VLEN, 0);
}

/* The whole tiles of an input-gradient row (input_grad_s2_tile's, pixels j0 + pl of parity `odd`
 * at each, as for every tile 2*DW_VLEN apart), their taps held in registers from wr: those whose
 * columns lie inside dy read them with plain loads. */
DW_INLINE void DW_FN(input_grad_s2_row)(const DW_T *const *rows, DW_VEC wr[2][3], ptrdiff_t pl, ptrdiff_t OW,
                                        DW_T *out, ptrdiff_t width, const int n, const int odd)
{
    const DW_VEC a0 = wr[0][0], a1 = wr[0][1], a2 = wr[0][2], b0 = wr[1][0], b1 = wr[1][1], b2 = wr[1][2];
    for (ptrdiff_t j = 0; j + 2 * DW_VLEN <= width; j += 2 * DW_VLEN) {
        const ptrdiff_t base = (j + pl - odd) / 2, near = odd ? base + 1 : base - 1;
        if ((odd ? base : near) < 0 || (odd ? near : base) + DW_VLEN > OW) {
            DW_FN(input_grad_s2_tile)(rows, wr, base, OW, out + j, 2 * DW_VLEN, n, odd);
            continue;
        }
        DW_VEC even = DW_FN(broadcast)(0), odd_pixels = even;
        if (n > 0) { /* (assigned, not added to the zeros: an addition the compiler must keep, for -0) */
            const DW_VEC v = DW_FN(load)(rows[0] + base), u = DW_FN(load)(rows[0] + near);
            even = odd ? a1 * v : a0 * v + a2 * u;
            odd_pixels = odd ? a0 * u + a2 * v : a1 * v;
        }
        if (n > 1) {
            const DW_VEC v = DW_FN(load)(rows[1] + base), u = DW_FN(load)(rows[1] + near);
            even += odd ? b1 * v : b0 * v + b2 * u;
            odd_pixels += odd ? b0 * u + b2 * v : b1 * v;
        }
        DW_FN(store)(out + j, DW_FN(interleave)(even, odd_pixels, 0));
        DW_FN(store)(out + j + DW_VLEN, DW_FN(interleave)(even, odd_pixels, 1));
    }
}

/* The input gradient of a 3x3 kernel at stride 2 (dilation 1), for p < np:
 * dx[p*dx_plane + i*width + j] = sum_{a, b < 3} w[p*w_plane + (3*a + b)*w_tap] * dy[p*dy_plane + (i + pt - a)/2 * OW + (j + pl - b)/2],
 * the sum over the taps whose halves are whole and inside dy's OH x OW plane, for dx's `height` x
 * `width` planes. Row i's kernel rows are those of i + pt's parity (one or two); each tile is two
 * vectors of the row (input_grad_s2_row), a last one overlapping the one before (rows narrower: one
 * tile, its first `width` elements stored). (Plain stores: streamed ones ran 1.03x slower on
 * mnv2-112x96-s2 at batch 16, 77 MB of dx. Its taps in registers along the row, and plain loads
 * inside dy: there at batch 1 1.1-1.8x faster on one thread, 1.1-1.25x on two, than each tile
 * loading its taps and masking every load.) */
static void DW_FN(flat_input_grad_s2)(const DW_T *dy, ptrdiff_t dy_plane, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t pt,
                                      ptrdiff_t pl, const DW_T *w, ptrdiff_t w_plane, ptrdiff_t w_tap, DW_T *dx,
                                      ptrdiff_t dx_plane, ptrdiff_t height, ptrdiff_t width, ptrdiff_t np)
{
    for (ptrdiff_t p = 0; p < np; p++) {
        DW_VEC wt[9], wr[2][3];
        for (int t = 0; t < 9; t++) wt[t] = DW_FN(broadcast)(w[p * w_plane + t * w_tap]);
        for (ptrdiff_t i = 0; i < height; i++) {
            const DW_T *rows[2];
            int n = 0;
            for (ptrdiff_t a = (i + pt) & 1; a < 3; a += 2) { /* (i + pt - a even: its half exact) */
                const ptrdiff_t m = (i + pt - a) / 2;
                if (m >= 0 && m < OH) {
                    rows[n] = dy + p * dy_plane + m * OW;
                    for (int b = 0; b < 3; b++) wr[n][b] = wt[3 * a + b];
                    n++;
                }
            }
            for (int r = n; r < 2; r++)
                for (int b = 0; b < 3; b++) wr[r][b] = DW_FN(broadcast)(0);
            DW_T *out = dx + p * dx_plane + i * width;
            switch (n * 2 + (pl & 1)) {
                case 0: case 1: DW_FN(input_grad_s2_row)(rows, wr, pl, OW, out, width, 0, 0); break;
                case 2: DW_FN(input_grad_s2_row)(rows, wr, pl, OW, out, width, 1, 0); break;
                case 3: DW_FN(input_grad_s2_row)(rows, wr, pl, OW, out, width, 1, 1); break;
                case 4: DW_FN(input_grad_s2_row)(rows, wr, pl, OW, out, width, 2, 0); break;
                case 5: DW_FN(input_grad_s2_row)(rows, wr, pl, OW, out, width, 2, 1); break;
            }
            if (width % (2 * DW_VLEN) == 0)
                continue;
            /* (the last tile, overlapping the one before; rows narrower than a tile: one, its first
             * `width` elements stored) */
            const ptrdiff_t j0 = width < 2 * DW_VLEN ? 0 : width - 2 * DW_VLEN;
            const ptrdiff_t odd = (j0 + pl) & 1, base = (j0 + pl - odd) / 2;
#define DW_INPUT_GRAD_S2_TILE(n, odd) \
    DW_FN(input_grad_s2_tile)(rows, wr, base, OW, out + j0, width < 2 * DW_VLEN ? width : 2 * DW_VLEN, n, odd)
            switch (n * 2 + odd) {
                case 0: case 1: DW_INPUT_GRAD_S2_TILE(0, 0); break;
                case 2: DW_INPUT_GRAD_S2_TILE(1, 0); break;
                case 3: DW_INPUT_GRAD_S2_TILE(1, 1); break;
                case 4: DW_INPUT_GRAD_S2_TILE(2, 0); break;
                case 5: DW_INPUT_GRAD_S2_TILE(2, 1); break;
            }
#undef DW_INPUT_GRAD_S2_TILE
        }
    }
}

#if DW_S2_IN_HALVES
/* flat_dot_s2's sums of an output-gradient vector dyv, in s2_taps's lanes, from the rows of its tap
 * rows 0, 1, 2 (NULL: outside the plane) at column col: tap columns 0 and 1 read elements
 * [0, n01) from col, tap column 2 [2, n01 + 1), those inside the row of `width` alone (`whole`: all
 * of them, plain loads), so lanes past dy's row (n01 below 2 * DW_VLEN) read zeros, NaN or not. */
DW_INLINE void DW_FN(s2_dot_vector)(const DW_T *const *rows, ptrdiff_t col, ptrdiff_t width, ptrdiff_t n01, DW_VEC dyv,
                                    DW_VEC *sum, const int whole)
{
    unsigned lanes[4] = {0, 0, 0, 0};
    const ptrdiff_t end = width - col < n01 + 1 ? width - col : n01 + 1;
    DW_FLAT_UNROLL
    for (int j = 0; !whole && j < 4; j++) {
        const ptrdiff_t at = DW_FN(flat_rows_at)(j, 3, 2, 0);
        lanes[j] = DW_FN(lane_range)(-col - at, (j < 2 && end > n01 ? n01 : end) - at);
    }
    const DW_VEC dyp = DW_FN(in_order)(dyv);
    DW_FLAT_UNROLL
    for (int a = 0; a < 3; a++) {
        if (!rows[a]) continue;
        DW_VEC x[4];
        DW_FLAT_UNROLL
        for (int j = 0; j < 4; j++) {
            const DW_T *at = rows[a] + col + DW_FN(flat_rows_at)(j, 3, 2, 0);
            x[j] = whole ? DW_FN(load)(at) : DW_FN(load_masked)(at, lanes[j]);
        }
        DW_FLAT_UNROLL
        for (int b = 0; b < 3; b++) sum[3 * a + b] += dyp * DW_FN(s2_taps)(x[b / 2 * 2], x[b / 2 * 2 + 1], b);
    }
}
#endif

/* The filter gradient of a 3x3 kernel at stride 2 (dilation 1), for p < np, t = 3*a + b:
 * acc[t*acc_tap + p] = sum_{n < n_images, y < OH, x < OW} dy[n*dy_image + p*dy_plane + y*OW + x] * src[n*src_image + p*src_plane + (2y + a - pt)*width + 2x + b - pl],
 * over the source pixels inside the `height` x `width` plane, and bias_acc[p] the sum of dy (unless
 * NULL). Each output-gradient vector is loaded once for the 9 taps; each sum runs in an order fixed
 * by the geometry (n, y, then x in vectors). Planes of DW_NEXT_PLANE_BYTES or more ask, row by row,
 * for the lines of the plane read after them (the next image's, an image's planes apart: pages the
 * prefetchers do not follow; 2 vCPUs of an AVX-512 AMD EPYC (Zen 5), batch 16: 112x112x96 4.7x
 * faster, 56x56x144 4.2x; batch 1 the same). */
static void DW_FN(flat_dot_s2)(const DW_T *src, ptrdiff_t src_plane, ptrdiff_t src_image, ptrdiff_t height,
                               ptrdiff_t width, ptrdiff_t pt, ptrdiff_t pl, const DW_T *dy, ptrdiff_t dy_plane,
                               ptrdiff_t dy_image, ptrdiff_t OH, ptrdiff_t OW, DW_T *acc, ptrdiff_t acc_tap,
                               DW_T *bias_acc, ptrdiff_t np, ptrdiff_t n_images)
{
    for (ptrdiff_t p = 0; p < np; p++) {
        DW_VEC sum[9], dy_sum = DW_FN(broadcast)(0);
        DW_FLAT_UNROLL
        for (int t = 0; t < 9; t++) sum[t] = dy_sum;
        for (ptrdiff_t n = 0; n < n_images; n++) {
            const DW_T *s = src + n * src_image + p * src_plane, *d = dy + n * dy_image + p * dy_plane;
            /* (the next plane: the next image's, or the next plane's first image; its rows a row of
             * dy asks for, `ahead` of them. One image's planes follow each other: the prefetchers
             * see them, and fetched, 112x112x96 at batch 1 ran 1.05x slower) */
            const int fetch = height * width * (ptrdiff_t)sizeof(DW_T) >= DW_NEXT_PLANE_BYTES && n_images > 1
                              && (n + 1 < n_images || p + 1 < np);
            const DW_T *next_s = n + 1 < n_images ? s + src_image : src + (p + 1) * src_plane;
            const DW_T *next_d = n + 1 < n_images ? d + dy_image : dy + (p + 1) * dy_plane;
            const ptrdiff_t ahead = (height + OH - 1) / OH;
            for (ptrdiff_t y = 0; y < OH; y++, d += OW) {
                if (fetch) {
                    DW_FN(prefetch_band)(next_s, width, height, y * ahead, ahead);
                    dw_prefetch(next_d + y * OW, OW * (ptrdiff_t)sizeof(DW_T));
                }
                const DW_T *rows[3];
                DW_FLAT_UNROLL
                for (int a = 0; a < 3; a++) {
                    const ptrdiff_t r = 2 * y + a - pt;
                    rows[a] = r >= 0 && r < height ? s + r * width : NULL;
                }
                for (ptrdiff_t x = 0; x < OW; x += DW_VLEN) {
                    /* (lanes past dy's row read as zeros, the source columns only they read too, and
                     * tap column 0's lane `valid` cleared: the one source column a lane inside reads
                     * as well, for tap column 2; a NaN there must not reach tap column 0's sums; at
                     * AVX2, s2_dot_vector's loads read no element past those a lane inside uses) */
                    const ptrdiff_t valid = OW - x < DW_VLEN ? OW - x : DW_VLEN, col = 2 * x - pl;
                    const unsigned inside = (unsigned)((1ull << valid) - 1);
                    const DW_VEC dyv = valid == DW_VLEN ? DW_FN(load)(d + x) : DW_FN(load_masked)(d + x, inside);
                    dy_sum += dyv;
#if DW_S2_IN_HALVES
                    if (valid == DW_VLEN && col >= 0 && col + 2 * DW_VLEN < width)
                        DW_FN(s2_dot_vector)(rows, col, width, 2 * valid, dyv, sum, 1);
                    else
                        DW_FN(s2_dot_vector)(rows, col, width, 2 * valid, dyv, sum, 0);
#else
                    const ptrdiff_t end = width - col < 2 * valid + 1 ? width - col : 2 * valid + 1;
                    const unsigned lo = DW_FN(lane_range)(-col, end), hi = DW_FN(lane_range)(-col - DW_VLEN, end - DW_VLEN);
                    const int last = end > 2 * DW_VLEN && col + 2 * DW_VLEN >= 0; /* (col + 2 * DW_VLEN: the last lane's tap 2) */
                    DW_FLAT_UNROLL
                    for (int a = 0; a < 3; a++) {
                        if (!rows[a]) continue;
                        const DW_T *at = rows[a] + col;
                        const DW_VEC l0 = DW_FN(load_masked)(at, lo), l1 = DW_FN(load_masked)(at + DW_VLEN, hi);
                        const DW_VEC even = DW_FN(alternate)(l0, l1, 0);
                        sum[3 * a] += dyv * DW_FN(keep_lanes)(even, inside);
                        sum[3 * a + 1] += dyv * DW_FN(alternate)(l0, l1, 1);
                        sum[3 * a + 2] += dyv * DW_FN(shift_in)(even, DW_FN(broadcast)(last ? at[2 * DW_VLEN] : 0), 0);
                    }
#endif
                }
            }
        }
        /* (unrolled, as every loop over the sums: one with a variable index keeps them in memory,
         * stored after every multiply-add) */
        DW_FLAT_UNROLL
        for (int t = 0; t < 9; t++) acc[t * acc_tap + p] = DW_FN(horizontal_sum)(sum[t]);
        if (bias_acc) bias_acc[p] = DW_FN(horizontal_sum)(dy_sum);
    }
}

/* The filter gradient on narrow planes, their rows as the forward's narrow tiles have them
 * (narrow_row, rotate). At AVX-512 each row is rotated once for the three output-gradient rows it
 * serves (its 32 registers keep the rotations); AVX2's 16 rotate it anew for each. */

/* flat_dot_narrow over the g planes from plane p, left padding pl (both known at compile time). */
DW_INLINE void DW_FN(narrow_dot_planes)(const DW_T *src, ptrdiff_t src_plane, ptrdiff_t src_image, ptrdiff_t height,
                                        ptrdiff_t width, ptrdiff_t pt, const DW_T *dy, ptrdiff_t dy_plane,
                                        ptrdiff_t dy_image, ptrdiff_t OH, ptrdiff_t OW, DW_T *acc, ptrdiff_t acc_tap,
                                        DW_T *bias_acc, ptrdiff_t p, ptrdiff_t n_images, const int g, const int pl)
{
    const int keep = DW_VBYTES == 64; /* (the rotated rows kept for the next output row) */
    const unsigned row_lanes = DW_FN(lane_range)(0, width), dy_lanes = DW_FN(lane_range)(0, OW);
    DW_VEC sum[9], dy_sum = DW_FN(broadcast)(0);
    DW_FLAT_UNROLL
    for (int t = 0; t < 9; t++) sum[t] = dy_sum;
    for (ptrdiff_t n = 0; n < n_images; n++) {
        const DW_T *s = src + n * src_image + p * src_plane, *d = dy + n * dy_image + p * dy_plane;
        DW_VEC taps[3][3]; /* tap row a's source row y + a - pt, rotated for tap columns b */
        for (ptrdiff_t y = 0; y < OH; y++) {
            const DW_VEC dyv = DW_FN(narrow_row)(d, dy_plane, y, OH, OW, dy_lanes, g);
            dy_sum += dyv;
            DW_FLAT_UNROLL
            for (int a = 0; a < 3; a++) {
                if (keep && y > 0 && a < 2) {
                    DW_FLAT_UNROLL
                    for (int b = 0; b < 3; b++) taps[a][b] = taps[a + 1][b];
                } else {
                    const DW_VEC row = DW_FN(narrow_row)(s, src_plane, y + a - pt, height, width, row_lanes, g);
                    DW_FLAT_UNROLL
                    for (int b = 0; b < 3; b++) taps[a][b] = DW_FN(rotate)(row, b - pl);
                }
                DW_FLAT_UNROLL
                for (int b = 0; b < 3; b++) sum[3 * a + b] += dyv * taps[a][b];
            }
        }
    }
    /* (each slot's lanes from OW on: products of the zeros past dy's row with source pixels no
     * output reads, NaN for a NaN there; left out of the sums. Unrolled, as every loop over the
     * sums: one with a variable index keeps them in memory, stored after every multiply-add) */
    DW_FLAT_UNROLL
    for (int j = 0; j < g; j++) {
        const unsigned slot = dy_lanes << j * DW_VLEN / 2;
        DW_FLAT_UNROLL
        for (int t = 0; t < 9; t++) acc[t * acc_tap + p + j] = DW_FN(horizontal_sum)(DW_FN(keep_lanes)(sum[t], slot));
        if (bias_acc) bias_acc[p + j] = DW_FN(horizontal_sum)(g == 1 ? dy_sum : DW_FN(keep_lanes)(dy_sum, slot));
    }
}

/* The filter gradient of a 3x3 kernel at stride 1 (dilation 1) on planes narrower than a vector
 * (narrow_fits), for p < np, t = 3*a + b:
 * acc[t*acc_tap + p] = sum_{n < n_images, y < OH, x < OW} dy[n*dy_image + p*dy_plane + y*OW + x] * src[n*src_image + p*src_plane + (y + a - pt)*width + x + b - pl],
 * over the source pixels inside the `height` x `width` plane, and bias_acc[p] the sum of dy (unless
 * NULL); two planes at a time where they pair (narrow_pairs). Each sum runs in an order fixed by
 * the geometry (n, y, then the lanes). */
static void DW_FN(flat_dot_narrow)(const DW_T *src, ptrdiff_t src_plane, ptrdiff_t src_image, ptrdiff_t height,
                                   ptrdiff_t width, ptrdiff_t pt, ptrdiff_t pl, const DW_T *dy, ptrdiff_t dy_plane,
                                   ptrdiff_t dy_image, ptrdiff_t OH, ptrdiff_t OW, DW_T *acc, ptrdiff_t acc_tap,
                                   DW_T *bias_acc, ptrdiff_t np, ptrdiff_t n_images)
{
#define DW_NARROW_DOT_PLANES(n, pad)                                                                     \
    DW_FN(narrow_dot_planes)(src, src_plane, src_image, height, width, pt, dy, dy_plane, dy_image, OH, OW, acc, \
                             acc_tap, bias_acc, p, n_images, n, pad)
    DW_NARROW_GROUPS(width, pl, OW, np, DW_NARROW_DOT_PLANES)
#undef DW_NARROW_DOT_PLANES
}
#endif

/* dst[p*dst_plane + o] = bias[p*bias_plane] + sum_{t < ntaps} w[p*w_plane + t*w_tap] * src[p*src_plane + o + off[t]],
 * the sum over the taps t whose bit o is set in mask t (masks + t*mask_row, bit o at byte o / 8;
 * the bits from npix on clear up to npix + 2*DW_VLEN), for p < np, o < npix (bias NULL: 0). Only
 * the source elements of set bits are read. With `nt`, aligned vectors of dst are written with
 * streaming stores. */
static void DW_FN(flat)(const DW_T *src, ptrdiff_t src_plane, const ptrdiff_t *off, const unsigned char *masks,
                        ptrdiff_t mask_row, ptrdiff_t ntaps, const DW_T *w, ptrdiff_t w_plane, ptrdiff_t w_tap,
                        const DW_T *bias, ptrdiff_t bias_plane, DW_T *dst, ptrdiff_t dst_plane, ptrdiff_t npix,
                        ptrdiff_t np, int nt)
{
    for (ptrdiff_t p = 0; p < np; p += DW_FLAT_PLANES) {
        const ptrdiff_t planes = np - p < DW_FLAT_PLANES ? np - p : DW_FLAT_PLANES;
        for (ptrdiff_t o = 0; o < npix; o += DW_FLAT_VECS * DW_VLEN) {
            /* whole tiles, then the vectors left, the last of them masked where the plane ends */
            const ptrdiff_t left = npix - o, nv = left > DW_VLEN ? DW_FLAT_VECS : 1;
            const ptrdiff_t n_last = left >= nv * DW_VLEN ? DW_VLEN : left - (nv - 1) * DW_VLEN;
#define DW_FLAT_TILE(n, v)                                                                               \
    DW_FN(flat_tile)(src + p * src_plane, src_plane, off, masks, mask_row, ntaps, w + p * w_plane, w_plane, w_tap, \
                     bias ? bias + p * bias_plane : NULL, bias_plane, dst + p * dst_plane, dst_plane, o, n_last, nt, \
                     n, v)
            _Static_assert(DW_FLAT_PLANES == 4 && DW_FLAT_VECS == 2, "the cases below list every tile");
            switch (planes * 2 + (nv == DW_FLAT_VECS)) {
                case 2: DW_FLAT_TILE(1, 1); break;
                case 3: DW_FLAT_TILE(1, 2); break;
                case 4: DW_FLAT_TILE(2, 1); break;
                case 5: DW_FLAT_TILE(2, 2); break;
                case 6: DW_FLAT_TILE(3, 1); break;
                case 7: DW_FLAT_TILE(3, 2); break;
                case 8: DW_FLAT_TILE(4, 1); break;
                case 9: DW_FLAT_TILE(4, 2); break;
            }
#undef DW_FLAT_TILE
        }
    }
    if (nt) _mm_sfence(); /* streamed results reach memory before any later store */
}

/* The filter gradient's reduction over one plane of n_images images, nt taps (known at compile
 * time) from tap t0, added to its vector sums `sums` (nt taps') and, unless NULL, the bias's
 * `bias_sum`: one output-gradient vector loaded once for all of them, each tap's source vector
 * under its mask. */
DW_INLINE void DW_FN(flat_dot_tile)(const DW_T *src, ptrdiff_t src_image, const ptrdiff_t *off,
                                    const unsigned char *masks, ptrdiff_t mask_row, const DW_T *dy, ptrdiff_t dy_image,
                                    DW_VEC *sums, DW_VEC *bias_sum, ptrdiff_t npix, ptrdiff_t n_images, ptrdiff_t t0,
                                    const int nt)
{
    DW_VEC sum[DW_FLAT_DOT_TAPS], dy_sum = bias_sum ? *bias_sum : DW_FN(broadcast)(0);
    DW_FLAT_UNROLL
    for (int t = 0; t < nt; t++) sum[t] = sums[t];
    for (ptrdiff_t n = 0; n < n_images; n++) {
        const DW_T *s = src + n * src_image, *dyp = dy + n * dy_image;
        for (ptrdiff_t o = 0; o < npix; o += DW_VLEN) {
            /* (lanes past the plane's end read as zeros: a NaN there must not reach the sums) */
            const DW_VEC dyv = o + DW_VLEN <= npix ? DW_FN(load)(dyp + o)
                                                  : DW_FN(load_masked)(dyp + o, (1u << (npix - o)) - 1);
            dy_sum += dyv;
            DW_FLAT_UNROLL
            for (int t = 0; t < nt; t++)
                sum[t] += dyv * DW_FN(load_masked)(s + o + off[t0 + t],
                                                  DW_FN(flat_bits)(masks + (t0 + t) * mask_row, o));
        }
    }
    DW_FLAT_UNROLL
    for (int t = 0; t < nt; t++) sums[t] = sum[t];
    if (bias_sum) *bias_sum = dy_sum;
}

/* The filter gradient over flat planes, for p < np:
 * acc[t*acc_tap + p] = sum_{n < n_images, o < npix, bit o of mask t} dy[n*dy_image + p*dy_plane + o] * src[n*src_image + p*src_plane + o + off[t]]
 * and, unless bias_acc is NULL, bias_acc[p] = sum_{n, o} dy[n*dy_image + p*dy_plane + o] (masks as
 * for flat). Each sum runs in an order fixed by npix and n_images alone (n, then o, in vectors).
 * Planes of DW_FLAT_DOT_PIXELS or more run a block at a time, image by image, their vector sums
 * kept in between: the planes of one image lie together in memory, those of one plane in several
 * images a whole image apart, in pages of their own that the prefetchers do not follow; smaller
 * planes run each through every image in turn, as the sums' loads and stores would cost more (2
 * vCPUs of an AVX-512 AMD EPYC, one thread, batch 16, blocks against planes in turn: mnv2-56x144
 * 1.24x faster, -28x192 1.22x, -112x32 1.07x, -14x576 1.06x; -7x960 0.87x). Kernels of more than
 * DW_FLAT_DOT_TAPS taps run theirs in passes over each plane of each image while it is in L1, not
 * over the whole block (2 vCPUs of an AVX-512 AMD EPYC (Zen 5), 5x5, batch 16: 28x28x240 1.2x
 * faster, 14x14x480 1.1x, 56x56x64 1.17x; batch 1 28x28x240 1.17x). */
static void DW_FN(flat_dot)(const DW_T *src, ptrdiff_t src_plane, ptrdiff_t src_image, const ptrdiff_t *off,
                            const unsigned char *masks, ptrdiff_t mask_row, ptrdiff_t ntaps, const DW_T *dy,
                            ptrdiff_t dy_plane, ptrdiff_t dy_image, DW_T *acc, ptrdiff_t acc_tap, DW_T *bias_acc,
                            ptrdiff_t npix, ptrdiff_t np, ptrdiff_t n_images)
{
    DW_VEC sums[DW_FLAT_DOT_PLANES][DW_FLAT_DOT_MAX_TAPS + 1]; /* (a plane's taps, then its bias) */
    const ptrdiff_t step = npix < DW_FLAT_DOT_PIXELS ? n_images : 1; /* images per tile */
    for (ptrdiff_t p0 = 0; p0 < np; p0 += DW_FLAT_DOT_PLANES) {
        const ptrdiff_t planes = np - p0 < DW_FLAT_DOT_PLANES ? np - p0 : DW_FLAT_DOT_PLANES;
        for (ptrdiff_t p = 0; p < planes; p++)
            for (ptrdiff_t t = 0; t <= ntaps; t++) sums[p][t] = DW_FN(broadcast)(0);
        for (ptrdiff_t n = 0; n < n_images; n += step)
            for (ptrdiff_t p = 0; p < planes; p++) {
                const DW_T *s = src + n * src_image + (p0 + p) * src_plane, *d = dy + n * dy_image + (p0 + p) * dy_plane;
                for (ptrdiff_t t0 = 0; t0 < ntaps; t0 += DW_FLAT_DOT_TAPS) {
                    const ptrdiff_t nt = ntaps - t0 < DW_FLAT_DOT_TAPS ? ntaps - t0 : DW_FLAT_DOT_TAPS;
                    DW_VEC *bias_sum = t0 == 0 ? &sums[p][ntaps] : NULL;
#define DW_FLAT_DOT_TILE(k) \
    DW_FN(flat_dot_tile)(s, src_image, off, masks, mask_row, d, dy_image, sums[p] + t0, bias_sum, npix, step, t0, k)
                    _Static_assert(DW_FLAT_DOT_TAPS == 9, "the cases below list every tile");
                    switch (nt) {
                        case 1: DW_FLAT_DOT_TILE(1); break;
                        case 2: DW_FLAT_DOT_TILE(2); break;
                        case 3: DW_FLAT_DOT_TILE(3); break;
                        case 4: DW_FLAT_DOT_TILE(4); break;
                        case 5: DW_FLAT_DOT_TILE(5); break;
                        case 6: DW_FLAT_DOT_TILE(6); break;
                        case 7: DW_FLAT_DOT_TILE(7); break;
                        case 8: DW_FLAT_DOT_TILE(8); break;
                        case 9: DW_FLAT_DOT_TILE(9); break;
                    }
#undef DW_FLAT_DOT_TILE
                }
            }
        for (ptrdiff_t p = 0; p < planes; p++) {
            for (ptrdiff_t t = 0; t < ntaps; t++) acc[t * acc_tap + p0 + p] = DW_FN(horizontal_sum)(sums[p][t]);
            if (bias_acc) bias_acc[p0 + p] = DW_FN(horizontal_sum)(sums[p][ntaps]);
        }
    }
}

#undef DW_VEC
#undef DW_VLEN
#undef DW_INLINE
#undef DW_FLAT_FLOAT
#undef DW_FLAT_PLANES
#undef DW_FLAT_VECS
#undef DW_FLAT_DOT_TAPS
#undef DW_FLAT_DOT_PLANES
#undef DW_FLAT_DOT_PIXELS
#undef DW_FLAT_ROW_VECS
#undef DW_NARROW_ROWS
#undef DW_FLAT_ROW_LOADS
#undef DW_S2_IN_HALVES
#undef DW_STAGED_ELEMENTS
#undef DW_HALVES_LANE
#undef DW_IN_ORDER_LANE
#undef DW_FLAT_ROW_MAX_K
#undef DW_FLAT_GROUP_TILE
#undef DW_FLAT_LANES
#undef DW_SHUFFLE_TWO
#undef DW_ALTERNATE_LANE
#undef DW_INTERLEAVE_LANE
#undef DW_SHIFT_IN_LANE
#undef DW_ROTATE_LANE
#undef DW_NARROW_PAIR_CASES
#undef DW_NARROW_GROUPS
#undef DW_FLAT_UNROLL
#undef DW_ALL_LANES
#endif
