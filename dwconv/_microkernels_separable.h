/* The fused separable filter's two passes over one output row (dwconv.sep_filter2d, scheduled by
 * _separable.pxi), with one column and one row filter for every channel:
 *   sep_columns  the column pass: the filter's source rows summed, weighted by its taps, into a row
 *                of column sums (the float type), element by element along the flat run of W*C
 *                elements, integer pixels widened on the fly (no float copy of the image);
 *   sep_rows     the row pass: taps `tap_step` (C) elements apart along that row of sums, plus delta,
 *                into the output row, integers rounded to nearest and saturated as they are stored.
 * A symmetric filter (k[a] == k[n-1-a]) is folded, as OpenCV's KERNEL_SYMMETRICAL: the two rows (or
 * elements) of a pair of taps are added first, then multiplied once, half the multiplies; an
 * antisymmetric one (k[a] == -k[n-1-a], derivatives) subtracts them.
 *
 * Included by _microkernels_level.h for float and for double, after _microkernels_body.h (DW_VEC,
 * load, store, broadcast) and, for float, _microkernels_convert.h, whose integer loads and stores
 * give float its uint8 and uint16 pixels (element types are DW_ELEM_* codes; double reads and writes
 * its own type only; int16 images the caller converts).
 */

#define DW_VEC DW_FN(vec)
#define DW_VLEN ((ptrdiff_t)DW_LANES)
#define DW_INLINE static inline __attribute__((always_inline))
#define DW_SEP_INTEGERS (DW_VBYTES / DW_LANES == 4) /* float: integer pixels too */
/* Vectors per register tile: each tap's weight is broadcast once for all of them. The two-row tile
 * holds four vectors for each of its own (two sums, two source rows): 4 fill AVX-512's 32 registers,
 * 2 the 16 of the narrower levels. */
#define DW_SEP_TILE 4
#define DW_SEP_PAIR_TILE (DW_VBYTES == 64 ? 4 : 2)
/* The loops over a tile's vectors must unroll completely, or its sums and rows leave the registers
 * (as _microkernels_body.h's DW_UNROLL, which it undefines: GCC kept the two-row tile's arrays on the
 * stack: 1080p RGB uint8, 1 thread, filtered with one tap each way took 2.1 ms, 1.2 with this; with
 * 11 taps 5.1 and 4.0). */
#if defined(__clang__)
#define DW_SEP_UNROLL _Pragma("unroll")
#else
#define DW_SEP_UNROLL _Pragma("GCC unroll 16")
#endif

/* Elements [i, i + DW_VLEN) of a row of `type` as they are read: the float type's, or the int32
 * lanes of integer pixels (bit for bit in a float vector); sep_value makes them values and sep_pair
 * adds (fold 1) or subtracts (-1) two of them, integer pixels exactly as integers (one conversion
 * for the two). */
DW_INLINE DW_VEC DW_FN(sep_raw_at)(const void *row, const int type, ptrdiff_t i)
{
#if DW_SEP_INTEGERS
    if (type != DW_ELEM_FLOAT) return (DW_VEC)DW_FN(integers_at)(row, type, i);
#endif
    return DW_FN(load)((const DW_T *)row + i);
}

DW_INLINE DW_VEC DW_FN(sep_value)(DW_VEC raw, const int type)
{
#if DW_SEP_INTEGERS
    if (type != DW_ELEM_FLOAT) return __builtin_convertvector((DW_FN(ivec))raw, DW_VEC);
#endif
    return raw;
}

DW_INLINE DW_VEC DW_FN(sep_pair)(DW_VEC raw0, DW_VEC raw1, const int type, const int fold)
{
#if DW_SEP_INTEGERS
    if (type != DW_ELEM_FLOAT) {
        const DW_FN(ivec) x0 = (DW_FN(ivec))raw0, x1 = (DW_FN(ivec))raw1;
        return __builtin_convertvector(fold > 0 ? x0 + x1 : x0 - x1, DW_VEC);
    }
#endif
    return fold > 0 ? raw0 + raw1 : raw0 - raw1;
}

DW_INLINE DW_T DW_FN(sep_load_one)(const void *row, const int type, ptrdiff_t i)
{
#if DW_SEP_INTEGERS
    if (type != DW_ELEM_FLOAT) return DW_FN(widened_one)(row, type, i);
#endif
    return ((const DW_T *)row)[i];
}

/* v (s) stored as elements [i, i + DW_VLEN) (element i) of a row of `type`: floats streaming (past
 * the caches) when `nt` and the address allow it (1080p RGB float32, 11 taps, 2 threads: 4.0 against
 * 4.4 ms; 8-bit results gained nothing, 2.58 against 2.53 ms, and stay plain); uint8 and uint16
 * rounded to nearest and saturated (_microkernels_convert.h's store_narrowed). */
DW_INLINE void DW_FN(sep_store)(void *row, const int type, ptrdiff_t i, DW_VEC v, int nt)
{
#if DW_SEP_INTEGERS
    if (type != DW_ELEM_FLOAT) {
        DW_FN(store_narrowed)(row, type, i, v);
        return;
    }
#endif
    (void)type;
    DW_FN(store_out)((DW_T *)row + i, v, nt);
}

DW_INLINE void DW_FN(sep_store_one)(void *row, const int type, ptrdiff_t i, DW_T s)
{
#if DW_SEP_INTEGERS
    if (type != DW_ELEM_FLOAT) {
        DW_FN(store_narrowed_one)(row, type, i, s);
        return;
    }
#endif
    ((DW_T *)row)[i] = s;
}

/* sums[i + t*DW_VLEN + l] = sum_a k[a] * rows[a][i + t*DW_VLEN + l], for t < tile and l < DW_VLEN. */
DW_INLINE void DW_FN(sep_columns_tile)(const void *const *rows, const int type, const DW_T *k, ptrdiff_t n_taps,
                                       const int fold, DW_T *sums, ptrdiff_t i, const int tile)
{
    DW_VEC acc[DW_SEP_TILE];
    DW_SEP_UNROLL
    for (int t = 0; t < tile; t++) acc[t] = DW_FN(broadcast)(0);
    ptrdiff_t lo = 0, hi = n_taps; /* the taps not summed yet */
    if (fold)
        for (; hi - lo >= 2; lo++, hi--) {
            const DW_VEC kv = DW_FN(broadcast)(k[lo]);
            DW_SEP_UNROLL
            for (int t = 0; t < tile; t++)
                acc[t] += kv * DW_FN(sep_pair)(DW_FN(sep_raw_at)(rows[lo], type, i + t * DW_VLEN),
                                               DW_FN(sep_raw_at)(rows[hi - 1], type, i + t * DW_VLEN), type, fold);
        }
    for (; lo < hi; lo++) {
        const DW_VEC kv = DW_FN(broadcast)(k[lo]);
        DW_SEP_UNROLL
        for (int t = 0; t < tile; t++)
            acc[t] += kv * DW_FN(sep_value)(DW_FN(sep_raw_at)(rows[lo], type, i + t * DW_VLEN), type);
    }
    DW_SEP_UNROLL
    for (int t = 0; t < tile; t++) DW_FN(store)(sums + i + t * DW_VLEN, acc[t]);
}

/* The column sums of two output rows at once for a symmetric filter, sums0 from source rows
 * rows[0 .. n_taps) and sums1 from rows[1 .. n_taps], as sep_columns_tile's with DW_SEP_PAIR_TILE
 * vectors: each source vector is loaded once for both, half the loads (1080p RGB, 1 thread, 31 taps:
 * the column pass took about 6.0 ms of float32's 13.8, 9.7 before; 3.5 of uint8's 10.4, 5.2 before).
 * Sums0 pairs rows lo and hi - 1, sums1 rows lo + 1 and hi: low and high carry rows lo and hi from one
 * pair of taps to the next. */
DW_INLINE void DW_FN(sep_columns_pair_tile)(const void *const *rows, const int type, const DW_T *k, ptrdiff_t n_taps,
                                            DW_T *sums0, DW_T *sums1, ptrdiff_t i)
{
    DW_VEC acc0[DW_SEP_PAIR_TILE], acc1[DW_SEP_PAIR_TILE], low[DW_SEP_PAIR_TILE], high[DW_SEP_PAIR_TILE];
    ptrdiff_t lo = 0, hi = n_taps;
    DW_SEP_UNROLL
    for (int t = 0; t < DW_SEP_PAIR_TILE; t++) {
        acc0[t] = acc1[t] = DW_FN(broadcast)(0);
        low[t] = DW_FN(sep_raw_at)(rows[lo], type, i + t * DW_VLEN);
        high[t] = DW_FN(sep_raw_at)(rows[hi], type, i + t * DW_VLEN);
    }
    for (; hi - lo >= 2; lo++, hi--) {
        const DW_VEC kv = DW_FN(broadcast)(k[lo]);
        DW_SEP_UNROLL
        for (int t = 0; t < DW_SEP_PAIR_TILE; t++) {
            const DW_VEC next_low = DW_FN(sep_raw_at)(rows[lo + 1], type, i + t * DW_VLEN);
            const DW_VEC next_high = DW_FN(sep_raw_at)(rows[hi - 1], type, i + t * DW_VLEN);
            acc0[t] += kv * DW_FN(sep_pair)(low[t], next_high, type, 1);
            acc1[t] += kv * DW_FN(sep_pair)(next_low, high[t], type, 1);
            low[t] = next_low;
            high[t] = next_high;
        }
    }
    if (hi > lo) { /* the middle tap: rows lo and lo + 1 == hi */
        const DW_VEC kv = DW_FN(broadcast)(k[lo]);
        DW_SEP_UNROLL
        for (int t = 0; t < DW_SEP_PAIR_TILE; t++) {
            acc0[t] += kv * DW_FN(sep_value)(low[t], type);
            acc1[t] += kv * DW_FN(sep_value)(high[t], type);
        }
    }
    DW_SEP_UNROLL
    for (int t = 0; t < DW_SEP_PAIR_TILE; t++) {
        DW_FN(store)(sums0 + i + t * DW_VLEN, acc0[t]);
        DW_FN(store)(sums1 + i + t * DW_VLEN, acc1[t]);
    }
}

/* dst[i + t*DW_VLEN + l] = delta + sum_b k[b] * sums[i + t*DW_VLEN + l + b*tap_step], stored as `type`. */
DW_INLINE void DW_FN(sep_rows_tile)(const DW_T *sums, ptrdiff_t tap_step, const DW_T *k, ptrdiff_t n_taps,
                                    const int fold, DW_T delta, void *dst, const int type, int nt, ptrdiff_t i,
                                    const int tile)
{
    DW_VEC acc[DW_SEP_TILE];
    DW_SEP_UNROLL
    for (int t = 0; t < tile; t++) acc[t] = DW_FN(broadcast)(delta);
    const DW_T *s = sums + i;
    ptrdiff_t lo = 0, hi = n_taps;
    if (fold)
        for (; hi - lo >= 2; lo++, hi--) {
            const DW_VEC kv = DW_FN(broadcast)(k[lo]);
            DW_SEP_UNROLL
            for (int t = 0; t < tile; t++)
                acc[t] += kv * DW_FN(sep_pair)(DW_FN(load)(s + lo * tap_step + t * DW_VLEN),
                                               DW_FN(load)(s + (hi - 1) * tap_step + t * DW_VLEN), DW_ELEM_FLOAT, fold);
        }
    for (; lo < hi; lo++) {
        const DW_VEC kv = DW_FN(broadcast)(k[lo]);
        DW_SEP_UNROLL
        for (int t = 0; t < tile; t++) acc[t] += kv * DW_FN(load)(s + lo * tap_step + t * DW_VLEN);
    }
    DW_SEP_UNROLL
    for (int t = 0; t < tile; t++) DW_FN(sep_store)(dst, type, i + t * DW_VLEN, acc[t], nt);
}

/* Tiles of whole vectors over elements [0, n), then the last vector overlapping the one before (both
 * passes write, never accumulate, so an element computed twice comes out the same); rows shorter
 * than a vector run as scalars (`scalar`, with e the element). */
#define DW_SEP_RUN(tile_kernel, scalar)                                                                \
    do {                                                                                               \
        if (n < DW_VLEN) {                                                                             \
            for (ptrdiff_t e = 0; e < n; e++) scalar;                                                  \
            break;                                                                                     \
        }                                                                                              \
        ptrdiff_t i = 0;                                                                               \
        for (; i + DW_SEP_TILE * DW_VLEN <= n; i += DW_SEP_TILE * DW_VLEN) tile_kernel(i, DW_SEP_TILE); \
        for (; i + DW_VLEN <= n; i += DW_VLEN) tile_kernel(i, 1);                                      \
        if (i < n) tile_kernel(n - DW_VLEN, 1);                                                        \
    } while (0)

/* One pass for compile-time `type` and `fold`, so that neither is tested inside the tiles. */
DW_INLINE void DW_FN(sep_columns_of)(const void *const *rows, const int type, const DW_T *k, ptrdiff_t n_taps,
                                     const int fold, DW_T *sums, ptrdiff_t n)
{
#define DW_TILE(i, tile) DW_FN(sep_columns_tile)(rows, type, k, n_taps, fold, sums, i, tile)
#define DW_SCALAR                                                                                      \
    do {                                                                                               \
        DW_T sum = 0;                                                                                  \
        for (ptrdiff_t a = 0; a < n_taps; a++) sum += k[a] * DW_FN(sep_load_one)(rows[a], type, e);    \
        sums[e] = sum;                                                                                 \
    } while (0)
    DW_SEP_RUN(DW_TILE, DW_SCALAR);
#undef DW_TILE
#undef DW_SCALAR
}

DW_INLINE void DW_FN(sep_columns_pair_of)(const void *const *rows, const int type, const DW_T *k, ptrdiff_t n_taps,
                                          DW_T *sums0, DW_T *sums1, ptrdiff_t n)
{
    const ptrdiff_t step = DW_SEP_PAIR_TILE * DW_VLEN;
    if (n < step) { /* (rows shorter than a tile: one row at a time) */
        DW_FN(sep_columns_of)(rows, type, k, n_taps, 1, sums0, n);
        DW_FN(sep_columns_of)(rows + 1, type, k, n_taps, 1, sums1, n);
        return;
    }
    ptrdiff_t i = 0;
    for (; i + step <= n; i += step) DW_FN(sep_columns_pair_tile)(rows, type, k, n_taps, sums0, sums1, i);
    if (i < n) DW_FN(sep_columns_pair_tile)(rows, type, k, n_taps, sums0, sums1, n - step);
}

DW_INLINE void DW_FN(sep_rows_of)(const DW_T *sums, ptrdiff_t tap_step, const DW_T *k, ptrdiff_t n_taps,
                                  const int fold, DW_T delta, void *dst, const int type, int nt, ptrdiff_t n)
{
#define DW_TILE(i, tile) DW_FN(sep_rows_tile)(sums, tap_step, k, n_taps, fold, delta, dst, type, nt, i, tile)
#define DW_SCALAR                                                                                      \
    do {                                                                                               \
        DW_T sum = delta;                                                                              \
        for (ptrdiff_t b = 0; b < n_taps; b++) sum += k[b] * sums[e + b * tap_step];                   \
        DW_FN(sep_store_one)(dst, type, e, sum);                                                       \
    } while (0)
    DW_SEP_RUN(DW_TILE, DW_SCALAR);
#undef DW_TILE
#undef DW_SCALAR
}

/* `call`(type, fold) with `type` and `fold` (variables) as constants; DW_SEP_TYPED_ONLY for calls
 * without a fold (`call`(type)). */
#define DW_SEP_FOLDED(call, type) (fold > 0 ? call(type, 1) : fold < 0 ? call(type, -1) : call(type, 0))
#define DW_SEP_UNFOLDED(call, type) call(type)
#if DW_SEP_INTEGERS
#define DW_SEP_TYPED_BY(by, call)                                                                      \
    (type == DW_ELEM_U8 ? by(call, DW_ELEM_U8) : type == DW_ELEM_U16 ? by(call, DW_ELEM_U16) : by(call, DW_ELEM_FLOAT))
#else
#define DW_SEP_TYPED_BY(by, call) by(call, DW_ELEM_FLOAT)
#endif
#define DW_SEP_TYPED(call) DW_SEP_TYPED_BY(DW_SEP_FOLDED, call)
#define DW_SEP_TYPED_ONLY(call) DW_SEP_TYPED_BY(DW_SEP_UNFOLDED, call)

/* The column pass: sums[e] = sum_{a < n_taps} k[a] * rows[a][e] for e < n, from rows of elements of
 * `type`. fold: 1 when k is symmetric, -1 antisymmetric, 0 otherwise. */
static void DW_FN(sep_columns)(const void *const *rows, int type, const DW_T *k, ptrdiff_t n_taps, int fold,
                               DW_T *sums, ptrdiff_t n)
{
#define DW_CALL(type, fold) DW_FN(sep_columns_of)(rows, type, k, n_taps, fold, sums, n)
    DW_SEP_TYPED(DW_CALL);
#undef DW_CALL
}

/* The column pass of two output rows with a symmetric filter k: sums0 from rows[0 .. n_taps), sums1
 * from rows[1 .. n_taps], as sep_columns's. */
static void DW_FN(sep_columns_pair)(const void *const *rows, int type, const DW_T *k, ptrdiff_t n_taps, DW_T *sums0,
                                    DW_T *sums1, ptrdiff_t n)
{
#define DW_CALL(type) DW_FN(sep_columns_pair_of)(rows, type, k, n_taps, sums0, sums1, n)
    DW_SEP_TYPED_ONLY(DW_CALL);
#undef DW_CALL
}

/* The row pass: dst[e] = delta + sum_{b < n_taps} k[b] * sums[e + b*tap_step] for e < n, into
 * elements of `type`, with streaming stores when `nt`. fold as sep_columns's. */
static void DW_FN(sep_rows)(const DW_T *sums, ptrdiff_t tap_step, const DW_T *k, ptrdiff_t n_taps, int fold,
                            DW_T delta, void *dst, int type, int nt, ptrdiff_t n)
{
#define DW_CALL(type, fold) DW_FN(sep_rows_of)(sums, tap_step, k, n_taps, fold, delta, dst, type, nt, n)
    DW_SEP_TYPED(DW_CALL);
#undef DW_CALL
#ifdef DW_X86
    if (nt) _mm_sfence(); /* streamed results reach memory before any later store */
#endif
}

#undef DW_VEC
#undef DW_VLEN
#undef DW_INLINE
#undef DW_SEP_INTEGERS
#undef DW_SEP_TILE
#undef DW_SEP_PAIR_TILE
#undef DW_SEP_UNROLL
#undef DW_SEP_RUN
#undef DW_SEP_FOLDED
#undef DW_SEP_TYPED
#undef DW_SEP_UNFOLDED
#undef DW_SEP_TYPED_BY
#undef DW_SEP_TYPED_ONLY
