/* The instruction-set-specific inner loops of dwconv, written once.
 *
 * dwconv/_microkernels.h includes this file once per (instruction-set level, element type), with
 *   DW_T       the element type (float or double)
 *   DW_VBYTES  the vector width in bytes (16 SSE2 / NEON, 32 AVX2, 64 AVX-512)
 *   DW_FN(n)   the name of function n for this level and type
 * defined, inside a region compiled for that level. Everything here is branch-free arithmetic on
 * pointers and strides handed in by the Cython scheduling code; borders never reach this file (the
 * caller clips the tap ranges).
 *
 * Strides are in elements and may be negative (the input gradient walks the output gradient
 * backwards). "Channels" is the axis the caller vectorises when it is contiguous (NHWC); when there
 * is one channel and pixels are contiguous (NCHW) the pixel axis is vectorised instead.
 */

typedef DW_T DW_FN(vec) __attribute__((vector_size(DW_VBYTES)));
#define DW_VEC DW_FN(vec)
#define DW_VLEN ((ptrdiff_t)(DW_VBYTES / sizeof(DW_T)))
/* Output pixels per register tile along the channel path, and vectors per tile along the pixel path. */
#define DW_PIXEL_TILE 6
#define DW_VECTOR_TILE 4

static inline DW_VEC DW_FN(load)(const DW_T *p)
{
    DW_VEC v;
    memcpy(&v, p, sizeof v); /* an unaligned vector load */
    return v;
}

static inline void DW_FN(store)(DW_T *p, DW_VEC v) { memcpy(p, &v, sizeof v); }

static inline DW_VEC DW_FN(broadcast)(DW_T a)
{
    DW_VEC zero = {0};
    return zero + a;
}

static inline DW_T DW_FN(horizontal_sum)(DW_VEC v)
{
    DW_T lanes[DW_VBYTES / sizeof(DW_T)];
    DW_T sum = 0;
    memcpy(lanes, &v, sizeof v);
    for (ptrdiff_t l = 0; l < DW_VLEN; l++) sum += lanes[l];
    return sum;
}

/* out[p*out_pix + c*out_c] = start + sum_{a<na, b<nb} w[a*w_a + b*w_b + c*w_c] * in[p*in_pix + a*in_a + b*in_b + c*in_c]
 * for p < npix, c < nc; start = out[...] when accumulate, else bias[c*out_c] (0 when bias is NULL). */
static void DW_FN(taps)(const DW_T *in, ptrdiff_t in_pix, ptrdiff_t in_c, ptrdiff_t in_a, ptrdiff_t in_b,
                        const DW_T *w, ptrdiff_t w_c, ptrdiff_t w_a, ptrdiff_t w_b, const DW_T *bias,
                        DW_T *out, ptrdiff_t out_pix, ptrdiff_t out_c, ptrdiff_t na, ptrdiff_t nb,
                        ptrdiff_t npix, ptrdiff_t nc, int accumulate)
{
    ptrdiff_t c = 0, p;
    if (in_c == 1 && w_c == 1 && out_c == 1) {
        /* Channel vectors x a tile of pixels: each weight vector is loaded once per tap and reused
         * across the tile, the sums stay in registers for all taps. */
        for (; c + DW_VLEN <= nc; c += DW_VLEN) {
            DW_VEC start = accumulate ? DW_FN(broadcast)(0) : bias ? DW_FN(load)(bias + c) : DW_FN(broadcast)(0);
            for (p = 0; p < npix; p += DW_PIXEL_TILE) {
                const ptrdiff_t tile = npix - p < DW_PIXEL_TILE ? npix - p : DW_PIXEL_TILE;
                DW_VEC acc[DW_PIXEL_TILE];
                for (ptrdiff_t t = 0; t < DW_PIXEL_TILE; t++)
                    acc[t] = t < tile && accumulate ? DW_FN(load)(out + (p + t) * out_pix + c) : start;
                for (ptrdiff_t a = 0; a < na; a++)
                    for (ptrdiff_t b = 0; b < nb; b++) {
                        const DW_VEC wv = DW_FN(load)(w + a * w_a + b * w_b + c);
                        const DW_T *src = in + p * in_pix + a * in_a + b * in_b + c;
                        if (tile == DW_PIXEL_TILE)
                            for (ptrdiff_t t = 0; t < DW_PIXEL_TILE; t++)
                                acc[t] += wv * DW_FN(load)(src + t * in_pix);
                        else
                            for (ptrdiff_t t = 0; t < tile; t++)
                                acc[t] += wv * DW_FN(load)(src + t * in_pix);
                    }
                for (ptrdiff_t t = 0; t < tile; t++) DW_FN(store)(out + (p + t) * out_pix + c, acc[t]);
            }
        }
    } else if (nc == 1 && in_pix == 1 && out_pix == 1) {
        /* One channel, contiguous pixels: vectors along the row, the weight broadcast per tap. */
        const DW_T start = accumulate ? 0 : bias ? bias[0] : 0;
        for (p = 0; npix - p >= DW_VLEN;) {
            const ptrdiff_t tile = (npix - p) / DW_VLEN < DW_VECTOR_TILE ? (npix - p) / DW_VLEN : DW_VECTOR_TILE;
            DW_VEC acc[DW_VECTOR_TILE];
            for (ptrdiff_t t = 0; t < DW_VECTOR_TILE; t++)
                acc[t] = t < tile && accumulate ? DW_FN(load)(out + p + t * DW_VLEN) : DW_FN(broadcast)(start);
            for (ptrdiff_t a = 0; a < na; a++)
                for (ptrdiff_t b = 0; b < nb; b++) {
                    const DW_VEC wv = DW_FN(broadcast)(w[a * w_a + b * w_b]);
                    const DW_T *src = in + p + a * in_a + b * in_b;
                    if (tile == DW_VECTOR_TILE)
                        for (ptrdiff_t t = 0; t < DW_VECTOR_TILE; t++)
                            acc[t] += wv * DW_FN(load)(src + t * DW_VLEN);
                    else
                        for (ptrdiff_t t = 0; t < tile; t++)
                            acc[t] += wv * DW_FN(load)(src + t * DW_VLEN);
                }
            for (ptrdiff_t t = 0; t < tile; t++) DW_FN(store)(out + p + t * DW_VLEN, acc[t]);
            p += tile * DW_VLEN;
        }
        in += p;
        out += p;
        npix -= p;
    }
    /* Whatever no vector path covered: remaining channels, or remaining pixels of the row. */
    for (; c < nc; c++)
        for (p = 0; p < npix; p++) {
            DW_T sum = accumulate ? out[p * out_pix + c * out_c] : bias ? bias[c * out_c] : 0;
            for (ptrdiff_t a = 0; a < na; a++)
                for (ptrdiff_t b = 0; b < nb; b++)
                    sum += w[a * w_a + b * w_b + c * w_c] * in[p * in_pix + a * in_a + b * in_b + c * in_c];
            out[p * out_pix + c * out_c] = sum;
        }
}

/* acc[c*acc_c] += sum_{p<npix} in[p*in_pix + c*in_c] * g[p*g_pix + c*g_c]  for c < nc.
 * (in == NULL reads ones: the bias gradient.) The order of the sum depends only on the arguments. */
static void DW_FN(dot)(const DW_T *in, ptrdiff_t in_pix, ptrdiff_t in_c, const DW_T *g, ptrdiff_t g_pix,
                       ptrdiff_t g_c, DW_T *acc, ptrdiff_t acc_c, ptrdiff_t npix, ptrdiff_t nc)
{
    ptrdiff_t c = 0, p;
    if ((in == NULL || in_c == 1) && g_c == 1 && acc_c == 1) {
        for (; c + DW_VLEN <= nc; c += DW_VLEN) {
            DW_VEC sum0 = DW_FN(broadcast)(0), sum1 = sum0;
            for (p = 0; p + 1 < npix; p += 2) { /* two chains hide the add latency */
                const DW_VEC g0 = DW_FN(load)(g + p * g_pix + c), g1 = DW_FN(load)(g + (p + 1) * g_pix + c);
                sum0 += in ? DW_FN(load)(in + p * in_pix + c) * g0 : g0;
                sum1 += in ? DW_FN(load)(in + (p + 1) * in_pix + c) * g1 : g1;
            }
            if (p < npix) {
                const DW_VEC g0 = DW_FN(load)(g + p * g_pix + c);
                sum0 += in ? DW_FN(load)(in + p * in_pix + c) * g0 : g0;
            }
            DW_FN(store)(acc + c, DW_FN(load)(acc + c) + (sum0 + sum1));
        }
    } else if (nc == 1 && (in == NULL || in_pix == 1) && g_pix == 1 && npix >= DW_VLEN) {
        DW_VEC sum0 = DW_FN(broadcast)(0), sum1 = sum0;
        DW_T tail = 0;
        for (p = 0; p + 2 * DW_VLEN <= npix; p += 2 * DW_VLEN) {
            const DW_VEC g0 = DW_FN(load)(g + p), g1 = DW_FN(load)(g + p + DW_VLEN);
            sum0 += in ? DW_FN(load)(in + p) * g0 : g0;
            sum1 += in ? DW_FN(load)(in + p + DW_VLEN) * g1 : g1;
        }
        for (; p < npix; p++) tail += in ? in[p] * g[p] : g[p];
        acc[0] += DW_FN(horizontal_sum)(sum0 + sum1) + tail;
        return;
    }
    for (; c < nc; c++) {
        DW_T sum = 0;
        for (p = 0; p < npix; p++)
            sum += in ? in[p * in_pix + c * in_c] * g[p * g_pix + c * g_c] : g[p * g_pix + c * g_c];
        acc[c * acc_c] += sum;
    }
}

#undef DW_VEC
#undef DW_VLEN
#undef DW_PIXEL_TILE
#undef DW_VECTOR_TILE
