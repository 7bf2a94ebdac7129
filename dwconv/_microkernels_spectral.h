/* Spectral rows: the forward of large kernels (RepLKNet's 13x13 to 31x31) through short Fourier
 * transforms along the rows, scheduled by _spectral.pxi.
 *
 * Output row q of a kh x kw kernel (stride 1, dilation 1) is the sum over kernel rows i of the 1-D
 * correlation of padded source row q + i with kernel row i. A source row is cut into segments of L
 * columns (dw_spectral.length) whose starts lie `valid` = L - kw + 1 apart: the circular correlation
 * of a segment with a kernel row zero-padded to L holds `valid` exact outputs. Two segments travel
 * as the real and the imaginary part of one complex transform: the kernel rows are real, so their
 * two correlations come back apart, as the real and the imaginary part of the inverse. So
 *   spectral_filter  transforms every kernel row once per call (conjugated and scaled by 1/L: the
 *                    inverse below is unscaled);
 *   spectral_source  transforms each source row once, for the kh output rows that read it;
 *   spectral_rows    multiplies and adds an output row's kh source spectra with the kernel rows'
 *                    (4*L*kh FMAs per pair of segments, against 2*valid*kh*kw for the taps) and
 *                    transforms the sum back once;
 *   spectral_correlate and spectral_filter_grad: the filter gradient, the correlations of the
 *                    source rows with the output gradient's rows summed as spectra, transformed
 *                    back once per kernel row at the end.
 * Each complex element is a vector of channels (real parts and imaginary parts in vectors of their
 * own, side by side), so the transforms are plain vector arithmetic with no shuffle. They are
 * radix 2: the forward by decimation in frequency (natural order in, bit-reversed order out), the
 * inverse by decimation in time (bit-reversed in, natural out), so every spectrum stays in
 * bit-reversed order, the same for all of them, and no permutation is ever made.
 *
 * Included by _microkernels_level.h for float only, after _microkernels_body.h (DW_VEC, load,
 * store, broadcast). Channel counts (nc) are whole vectors; spectra are vector-aligned.
 */

#define DW_VEC DW_FN(vec)
#define DW_VLEN ((ptrdiff_t)DW_LANES)
#define DW_INLINE static inline __attribute__((always_inline))
/* Frequencies per register tile of spectral_rows: 2 sums each for each of DW_SPECTRAL_ROWS output
 * rows, and 2 source and 2 filter vectors each, within the 32 registers of AVX-512 (24) or the 16
 * of the narrower levels (12). */
#define DW_SPECTRAL_TILE (DW_VBYTES == 64 ? 2 : 1)
_Static_assert(DW_SPECTRAL_MIN_LENGTH % DW_SPECTRAL_TILE == 0, "a spectrum is whole register tiles");
#if defined(__clang__)
#define DW_SPECTRAL_UNROLL _Pragma("unroll")
#else
#define DW_SPECTRAL_UNROLL _Pragma("GCC unroll 16")
#endif

/* (a + ib) times (c + it) */
#define DW_CMUL(re, im, a, b, c, t) \
    do {                            \
        re = (a) * (c) - (b) * (t); \
        im = (a) * (t) + (b) * (c); \
    } while (0)

/* The twiddles (cos, sin) of element j of a block of 2h in a pair of passes: W_2h^j and W_2h^(j+h/2)
 * for the pass of span h, W_h^j for that of span h/2 (W_n = exp(-2 pi i / n)); conjugated for the
 * inverse (sign -1). */
DW_INLINE void DW_FN(fft_twiddles)(const dw_spectral *s, ptrdiff_t h, ptrdiff_t j, DW_T sign, DW_VEC *c1, DW_VEC *t1,
                                   DW_VEC *c2, DW_VEC *t2, DW_VEC *c3, DW_VEC *t3)
{
    const ptrdiff_t L = s->length, w1 = 2 * j * (L / (2 * h)), w2 = 2 * (j + h / 2) * (L / (2 * h)), w3 = 2 * j * (L / h);
    *c1 = DW_FN(broadcast)(s->twiddles[w1]);
    *t1 = DW_FN(broadcast)(sign * s->twiddles[w1 + 1]);
    *c2 = DW_FN(broadcast)(s->twiddles[w2]);
    *t2 = DW_FN(broadcast)(sign * s->twiddles[w2 + 1]);
    *c3 = DW_FN(broadcast)(s->twiddles[w3]);
    *t3 = DW_FN(broadcast)(sign * s->twiddles[w3 + 1]);
}

/* The radix-2 pass of span 1, whose twiddles are all 1: the same in both directions. */
DW_INLINE void DW_FN(fft_unit_pass)(DW_VEC *x, ptrdiff_t L)
{
    for (ptrdiff_t b = 0; b < L; b += 2) {
        DW_VEC *u = x + 2 * b, *v = u + 2;
        const DW_VEC dr = u[0] - v[0], di = u[1] - v[1];
        u[0] += v[0];
        u[1] += v[1];
        v[0] = dr;
        v[1] = di;
    }
}

/* x[2k] + i x[2k+1], k < L: transformed in place, natural order in, bit-reversed order out. The
 * radix-2 passes go two at a time (spans h and h/2 of each block of 2h: four elements loaded and
 * stored once for both), then the last alone where there is an odd number: half the loads and
 * stores of one pass per span, which bound these in-cache transforms. */
static void DW_FN(fft_forward)(DW_VEC *x, const dw_spectral *s)
{
    const ptrdiff_t L = s->length;
    ptrdiff_t h = L / 2;
    for (; h >= 2; h /= 4)
        for (ptrdiff_t b = 0; b < L; b += 2 * h)
            for (ptrdiff_t j = 0; j < h / 2; j++) {
                DW_VEC *p0 = x + 2 * (b + j), *p1 = p0 + h, *p2 = p0 + 2 * h, *p3 = p0 + 3 * h;
                DW_VEC c1, t1, c2, t2, c3, t3;
                DW_FN(fft_twiddles)(s, h, j, 1, &c1, &t1, &c2, &t2, &c3, &t3);
                DW_VEC ar = p0[0] + p2[0], ai = p0[1] + p2[1], br = p1[0] + p3[0], bi = p1[1] + p3[1];
                DW_VEC cr, ci, dr, di, er, ei;
                DW_CMUL(cr, ci, p0[0] - p2[0], p0[1] - p2[1], c1, t1);
                DW_CMUL(dr, di, p1[0] - p3[0], p1[1] - p3[1], c2, t2);
                p0[0] = ar + br;
                p0[1] = ai + bi;
                DW_CMUL(er, ei, ar - br, ai - bi, c3, t3);
                p1[0] = er;
                p1[1] = ei;
                p2[0] = cr + dr;
                p2[1] = ci + di;
                DW_CMUL(er, ei, cr - dr, ci - di, c3, t3);
                p3[0] = er;
                p3[1] = ei;
            }
    if (h == 1) /* (the last pass alone) */
        DW_FN(fft_unit_pass)(x, L);
}

/* The unscaled inverse of fft_forward, in place: bit-reversed order in, natural order out; its
 * passes in the reverse order, the first alone where there is an odd number. */
static void DW_FN(fft_inverse)(DW_VEC *x, const dw_spectral *s)
{
    const ptrdiff_t L = s->length;
    ptrdiff_t h = 2;
    if (L & 0xAAAAAAAA) { /* (an odd number of passes: L = 2^(odd)) */
        DW_FN(fft_unit_pass)(x, L);
        h = 4;
    }
    for (; h <= L / 2; h *= 4)
        for (ptrdiff_t b = 0; b < L; b += 2 * h)
            for (ptrdiff_t j = 0; j < h / 2; j++) {
                DW_VEC *p0 = x + 2 * (b + j), *p1 = p0 + h, *p2 = p0 + 2 * h, *p3 = p0 + 3 * h;
                DW_VEC c1, t1, c2, t2, c3, t3; /* (conjugated) */
                DW_FN(fft_twiddles)(s, h, j, -1, &c1, &t1, &c2, &t2, &c3, &t3);
                DW_VEC tr, ti, ur, ui;
                DW_CMUL(tr, ti, p1[0], p1[1], c3, t3);
                const DW_VEC ar = p0[0] + tr, ai = p0[1] + ti, br = p0[0] - tr, bi = p0[1] - ti;
                DW_CMUL(ur, ui, p3[0], p3[1], c3, t3);
                const DW_VEC cr = p2[0] + ur, ci = p2[1] + ui, dr = p2[0] - ur, di = p2[1] - ui;
                DW_CMUL(tr, ti, cr, ci, c1, t1);
                p0[0] = ar + tr;
                p0[1] = ai + ti;
                p2[0] = ar - tr;
                p2[1] = ai - ti;
                DW_CMUL(ur, ui, dr, di, c2, t2);
                p1[0] = br + ur;
                p1[1] = bi + ui;
                p3[0] = br - ur;
                p3[1] = bi - ui;
            }
}

/* The spectra of channels [0, nc) of filter w (kh, kw, channels `w_tap` apart): kernel row i of
 * vector v of channels at spectra + (v*kh + i)*2L vectors, conjugated and scaled by 1/L. */
static void DW_FN(spectral_filter)(const DW_T *w, ptrdiff_t w_tap, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t nc,
                                   const dw_spectral *s, void *spectra)
{
    const ptrdiff_t L = s->length;
    const DW_VEC zero = {0}, scale = DW_FN(broadcast)((DW_T)1 / (DW_T)L); /* (L a power of 2: exact) */
    DW_VEC *x = (DW_VEC *)spectra;
    for (ptrdiff_t c = 0; c < nc; c += DW_VLEN)
        for (ptrdiff_t i = 0; i < kh; i++, x += 2 * L) {
            for (ptrdiff_t k = 0; k < L; k++) {
                x[2 * k] = k < kw ? DW_FN(load)(w + (i * kw + k) * w_tap + c) : zero;
                x[2 * k + 1] = zero;
            }
            DW_FN(fft_forward)(x, s);
            for (ptrdiff_t k = 0; k < L; k++) {
                x[2 * k] *= scale;
                x[2 * k + 1] *= -scale;
            }
        }
}

/* The spectra of one row (`pix` elements apart, channels [0, nc) of each pixel): pixels [start,
 * start + span) of segment p, start = s->starts[p], those from `end` on read as zeros (past the
 * row), then zeros up to L; the segments in pairs, pair p/2 of vector v of channels at spectra +
 * (v*n_pairs + p/2)*2L vectors. A padded source row has span L and ends at s->width; an output
 * gradient's row (the filter gradient) span `valid` and ends at s->n_out. */
static void DW_FN(spectral_source)(const DW_T *row, ptrdiff_t pix, ptrdiff_t nc, const dw_spectral *s,
                                   ptrdiff_t span, ptrdiff_t end, void *spectra)
{
    const ptrdiff_t L = s->length;
    const DW_VEC zero = {0};
    DW_VEC *x = (DW_VEC *)spectra;
    for (ptrdiff_t c = 0; c < nc; c += DW_VLEN)
        for (ptrdiff_t p = 0; p < s->n_segments; p += 2, x += 2 * L) {
            const ptrdiff_t a = s->starts[p], na = DW_MIN(span, end - a);
            const ptrdiff_t b = p + 1 < s->n_segments ? s->starts[p + 1] : 0;
            const ptrdiff_t nb = p + 1 < s->n_segments ? DW_MIN(span, end - b) : 0;
            for (ptrdiff_t k = 0; k < L; k++) {
                x[2 * k] = k < na ? DW_FN(load)(row + (a + k) * pix + c) : zero;
                x[2 * k + 1] = k < nb ? DW_FN(load)(row + (b + k) * pix + c) : zero;
            }
            DW_FN(fft_forward)(x, s);
        }
}

/* The spectra of `rows` output rows (1 or DW_SPECTRAL_ROWS), frequencies [f, f + DW_SPECTRAL_TILE)
 * of pair `pair` of vector c of channels, from the kh + rows - 1 source spectra they read, into sums
 * (row r's at sums + r*2L): source row j serves output row r through kernel row j - r, so each
 * source vector is loaded once for all the rows, each kernel vector once per row from L1, and the
 * rows' kh spectra come from L2 once for all of them (one row at a time, every product's two
 * vectors came from L2: 58% of the FMA peak on 56x56x128 31x31). */
DW_INLINE void DW_FN(spectral_tile)(const void *const *sources, const DW_VEC *k0, ptrdiff_t kh, const int rows,
                                    ptrdiff_t pair, ptrdiff_t f, ptrdiff_t L, DW_VEC *sums)
{
    DW_VEC acc[DW_SPECTRAL_ROWS][2 * DW_SPECTRAL_TILE] = {{{0}}};
    for (ptrdiff_t j = 0; j < kh + rows - 1; j++) {
        const DW_VEC *x = (const DW_VEC *)sources[j];
        if (!x) continue;
        x += pair + f;
        DW_VEC xr[DW_SPECTRAL_TILE], xi[DW_SPECTRAL_TILE];
        DW_SPECTRAL_UNROLL
        for (int t = 0; t < DW_SPECTRAL_TILE; t++) {
            xr[t] = x[2 * t];
            xi[t] = x[2 * t + 1];
            DW_IN_REGISTER(xr[t]); /* (loaded once: GCC folds them into each FMA again) */
            DW_IN_REGISTER(xi[t]);
        }
        DW_SPECTRAL_UNROLL
        for (int r = 0; r < rows; r++) {
            if (j - r < 0 || j - r >= kh) continue;
            const DW_VEC *k = k0 + (j - r) * 2 * L + f;
            DW_SPECTRAL_UNROLL
            for (int t = 0; t < DW_SPECTRAL_TILE; t++) {
                DW_VEC kr = k[2 * t], ki = k[2 * t + 1];
                DW_IN_REGISTER(kr);
                DW_IN_REGISTER(ki);
                /* (one product per statement: four FMAs, where a difference of products added to
                 * a sum takes a multiply, an FMA and an add per part) */
                acc[r][2 * t] += xr[t] * kr;
                acc[r][2 * t] -= xi[t] * ki;
                acc[r][2 * t + 1] += xr[t] * ki;
                acc[r][2 * t + 1] += xi[t] * kr;
            }
        }
    }
    DW_SPECTRAL_UNROLL
    for (int r = 0; r < rows; r++)
        DW_SPECTRAL_UNROLL
        for (int t = 0; t < 2 * DW_SPECTRAL_TILE; t++) sums[r * 2 * L + f + t] = acc[r][t];
}

/* Output rows [0, rows) (1 or DW_SPECTRAL_ROWS), channels [0, nc): pixel o of row r at dst + r*dst_row
 * + o*dst_pix, plus bias (NULL: none), from the spectra of their kh + rows - 1 source rows
 * (sources[j]: spectral_source's, NULL for a row of zeros) and of the kernel rows (spectral_filter's
 * for these channels); `sums` holds rows*2L vectors (see DW_SPECTRAL_SUM_LANES). */
static void DW_FN(spectral_rows)(const void *const *sources, const void *filters, ptrdiff_t kh, ptrdiff_t rows,
                                 ptrdiff_t nc, const dw_spectral *s, const DW_T *bias, void *sums, DW_T *dst,
                                 ptrdiff_t dst_row, ptrdiff_t dst_pix)
{
    const ptrdiff_t L = s->length, n_pairs = (s->n_segments + 1) / 2;
    DW_VEC *sum = (DW_VEC *)sums;
    for (ptrdiff_t c = 0; c < nc; c += DW_VLEN) {
        const DW_VEC *k0 = (const DW_VEC *)filters + c / DW_VLEN * kh * 2 * L;
        for (ptrdiff_t p = 0; p < s->n_segments; p += 2) {
            const ptrdiff_t pair = (c / DW_VLEN * n_pairs + p / 2) * 2 * L;
            for (ptrdiff_t f = 0; f < 2 * L; f += 2 * DW_SPECTRAL_TILE) {
                if (rows == DW_SPECTRAL_ROWS)
                    DW_FN(spectral_tile)(sources, k0, kh, DW_SPECTRAL_ROWS, pair, f, L, sum);
                else
                    DW_FN(spectral_tile)(sources, k0, kh, 1, pair, f, L, sum);
            }
            for (ptrdiff_t r = 0; r < rows; r++) {
                DW_VEC *row = sum + r * 2 * L;
                if (bias) { /* (the zero frequency, first in bit-reversed order too: every output once) */
                    const DW_VEC b = DW_FN(load)(bias + c);
                    row[0] += b;
                    row[1] += b;
                }
                DW_FN(fft_inverse)(row, s);
                for (int part = 0; part < 2 && p + part < s->n_segments; part++) {
                    const ptrdiff_t start = s->starts[p + part], n = DW_MIN(s->valid, s->n_out - start);
                    for (ptrdiff_t o = 0; o < n; o++)
                        DW_FN(store)(dst + r * dst_row + (start + o) * dst_pix + c, row[2 * o + part]);
                }
            }
        }
    }
}

/* The vectors from one kernel row's gradient sums to the next: 2L and one more, so that the sums a
 * tile stores and the next row's it loads are not a multiple of 4 KB apart, where the loads wait
 * for the stores (replknet 31x31, L 64: 8 KB apart, dW at batch 16 1.4-1.6x faster than 8 KB apart). */
#define DW_GRAD_ROW(L) (2 * (L) + 1)

/* The filter gradient's spectra: grads[i] += sum over r < rows (1 or DW_SPECTRAL_ROWS) of source
 * row r + i's spectrum times the conjugate of output-gradient row r's, kernel rows i < kh, summed
 * over the pairs of segments too (sources[j]: spectral_source's, NULL for a row of zeros; dys[r]
 * the same of an output gradient's row; kernel row i of vector v of channels at grads + (v*kh +
 * i)*DW_GRAD_ROW(L) vectors). With a pair's two segments a + ib in both, the real part of the product's inverse
 * is corr(a) + corr(b): the cross terms land in the imaginary part (filter_grad_rows keeps only the
 * real). Each output-gradient vector is loaded once for all kh kernel rows, each sum once for all
 * the rows. */
DW_INLINE void DW_FN(correlate_tile)(const void *const *sources, const void *const *dys, ptrdiff_t kh,
                                     const int rows, ptrdiff_t pair, ptrdiff_t f, ptrdiff_t L, DW_VEC *g0)
{
    DW_VEC pr[DW_SPECTRAL_ROWS][DW_SPECTRAL_TILE], pi[DW_SPECTRAL_ROWS][DW_SPECTRAL_TILE];
    DW_SPECTRAL_UNROLL
    for (int r = 0; r < rows; r++) {
        const DW_VEC *dy = (const DW_VEC *)dys[r] + pair + f;
        DW_SPECTRAL_UNROLL
        for (int t = 0; t < DW_SPECTRAL_TILE; t++) {
            pr[r][t] = dy[2 * t];
            pi[r][t] = dy[2 * t + 1];
        }
    }
    for (ptrdiff_t i = 0; i < kh; i++) {
        DW_VEC *g = g0 + i * DW_GRAD_ROW(L) + f;
        DW_VEC acc[2 * DW_SPECTRAL_TILE];
        DW_SPECTRAL_UNROLL
        for (int t = 0; t < 2 * DW_SPECTRAL_TILE; t++) acc[t] = g[t];
        DW_SPECTRAL_UNROLL
        for (int r = 0; r < rows; r++) {
            const DW_VEC *x = (const DW_VEC *)sources[r + i];
            if (!x) continue;
            x += pair + f;
            DW_SPECTRAL_UNROLL
            for (int t = 0; t < DW_SPECTRAL_TILE; t++) {
                DW_VEC xr = x[2 * t], xi = x[2 * t + 1];
                DW_IN_REGISTER(xr);
                DW_IN_REGISTER(xi);
                /* x times the conjugate of dy, a product per statement (four FMAs) */
                acc[2 * t] += xr * pr[r][t];
                acc[2 * t] += xi * pi[r][t];
                acc[2 * t + 1] += xi * pr[r][t];
                acc[2 * t + 1] -= xr * pi[r][t];
            }
        }
        DW_SPECTRAL_UNROLL
        for (int t = 0; t < 2 * DW_SPECTRAL_TILE; t++) g[t] = acc[t];
    }
}

static void DW_FN(spectral_correlate)(const void *const *sources, const void *const *dys, ptrdiff_t kh,
                                      ptrdiff_t rows, ptrdiff_t nc, const dw_spectral *s, void *grads)
{
    const ptrdiff_t L = s->length, n_pairs = (s->n_segments + 1) / 2;
    for (ptrdiff_t c = 0; c < nc; c += DW_VLEN) {
        DW_VEC *g0 = (DW_VEC *)grads + c / DW_VLEN * kh * DW_GRAD_ROW(L);
        for (ptrdiff_t p = 0; p < s->n_segments; p += 2) {
            const ptrdiff_t pair = (c / DW_VLEN * n_pairs + p / 2) * 2 * L;
            for (ptrdiff_t f = 0; f < 2 * L; f += 2 * DW_SPECTRAL_TILE) {
                if (rows == DW_SPECTRAL_ROWS)
                    DW_FN(correlate_tile)(sources, dys, kh, DW_SPECTRAL_ROWS, pair, f, L, g0);
                else
                    DW_FN(correlate_tile)(sources, dys, kh, 1, pair, f, L, g0);
            }
        }
    }
}

/* The filter gradient, kernel rows i < kh and columns j < kw of channels [0, nc), at dst +
 * (i*kw + j)*dst_tap, from spectral_correlate's sums (transformed back in place): the real parts,
 * scaled by 1/L. */
static void DW_FN(spectral_filter_grad)(void *grads, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t nc, const dw_spectral *s,
                                        DW_T *dst, ptrdiff_t dst_tap)
{
    const ptrdiff_t L = s->length;
    const DW_VEC scale = DW_FN(broadcast)((DW_T)1 / (DW_T)L);
    DW_VEC *g = (DW_VEC *)grads;
    for (ptrdiff_t c = 0; c < nc; c += DW_VLEN)
        for (ptrdiff_t i = 0; i < kh; i++, g += DW_GRAD_ROW(L)) {
            DW_FN(fft_inverse)(g, s);
            for (ptrdiff_t j = 0; j < kw; j++) DW_FN(store)(dst + (i * kw + j) * dst_tap + c, g[2 * j] * scale);
        }
}

#undef DW_VEC
#undef DW_VLEN
#undef DW_INLINE
#undef DW_SPECTRAL_TILE
#undef DW_SPECTRAL_UNROLL
#undef DW_GRAD_ROW
#undef DW_CMUL
