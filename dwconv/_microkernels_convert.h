/* Integer pixels into and out of the float32 kernels: images of uint8, uint16 or int16 are widened
 * to float as the forward's ring copies their rows, and results rounded and saturated into them as
 * each output row leaves its scratch, so no float copy of the image or result is ever made.
 *
 * Included by _microkernels_level.h for float only, after _microkernels_body.h (DW_VEC, load and
 * store), with DW_T, DW_LANES and DW_FN defined. Element types are DW_ELEM_* codes (_microkernels.h).
 */

#define DW_VEC DW_FN(vec)
#define DW_VLEN ((ptrdiff_t)DW_LANES)
#define DW_INLINE static inline __attribute__((always_inline))

typedef int32_t DW_FN(ivec) __attribute__((vector_size(DW_LANES * 4)));
typedef uint8_t DW_FN(u8vec) __attribute__((vector_size(DW_LANES)));
typedef uint16_t DW_FN(u16vec) __attribute__((vector_size(DW_LANES * 2)));
typedef int16_t DW_FN(i16vec) __attribute__((vector_size(DW_LANES * 2)));

/* Integer lanes to float, one width step at a time: GCC converts lanes of other steps one by one. */
DW_INLINE DW_VEC DW_FN(widened_i16)(DW_FN(i16vec) v)
{
    return __builtin_convertvector(__builtin_convertvector(v, DW_FN(ivec)), DW_VEC);
}

DW_INLINE DW_VEC DW_FN(widened_u16)(DW_FN(u16vec) v)
{
    return __builtin_convertvector(__builtin_convertvector(v, DW_FN(ivec)), DW_VEC);
}

DW_INLINE DW_VEC DW_FN(widened_u8)(DW_FN(u8vec) v) { return DW_FN(widened_u16)(__builtin_convertvector(v, DW_FN(u16vec))); }

/* v rounded to the nearest integer, ties to even, as rint does: adding 1.5 * 2^23 leaves no bits
 * below the units for |v| < 2^22, so the addition itself rounds (in the default rounding mode), and
 * the subtraction is exact. Callers clamp v into the type's range first. */
#define DW_ROUNDER 12582912.0f

/* v with NaN replaced by 0 and clamped into [lo, hi] (lane by lane, as comparisons: a NaN lane
 * compares false everywhere, so it is zeroed first), then rounded. */
DW_INLINE DW_VEC DW_FN(saturated)(DW_VEC v, float lo, float hi)
{
    const DW_VEC lov = DW_FN(broadcast)(lo), hiv = DW_FN(broadcast)(hi);
    DW_FN(ivec) bits = (DW_FN(ivec))v & (v == v);
    DW_FN(ivec) above = (DW_FN(vec))bits > lov, below = (DW_FN(vec))bits < hiv;
    bits = (bits & above) | ((DW_FN(ivec))lov & ~above);
    bits = (bits & below) | ((DW_FN(ivec))hiv & ~below);
    return ((DW_FN(vec))bits + DW_ROUNDER) - DW_ROUNDER;
}

DW_INLINE float DW_FN(saturated_one)(float v, float lo, float hi)
{
    v = v == v ? v : 0;
    v = v > lo ? v : lo;
    v = v < hi ? v : hi;
    return (v + DW_ROUNDER) - DW_ROUNDER;
}

/* The run loops of widen and narrow for one integer type T (V its short name: u8, u16 or i16; lo..hi
 * its range): whole vectors, then the last one overlapping the one before, or scalars where the run
 * is shorter than a vector. */
#define DW_WIDEN_RUN(T, V)                                                                   \
    do {                                                                                     \
        const T *s = (const T *)src + p * src_pix;                                           \
        ptrdiff_t c = 0;                                                                     \
        if (nc < DW_VLEN) {                                                                  \
            for (; c < nc; c++) d[c] = (float)s[c];                                          \
            break;                                                                           \
        }                                                                                    \
        for (;; c += DW_VLEN) {                                                              \
            if (c + DW_VLEN > nc) c = nc - DW_VLEN;                                          \
            DW_FN(V##vec) v;                                                                 \
            memcpy(&v, s + c, sizeof v);                                                     \
            DW_FN(store)(d + c, DW_FN(widened_##V)(v));                                      \
            if (c + DW_VLEN == nc) break;                                                    \
        }                                                                                    \
    } while (0)

#define DW_NARROW_RUN(T, V, lo, hi)                                                          \
    do {                                                                                     \
        T *d = (T *)dst + p * dst_pix;                                                       \
        ptrdiff_t c = 0;                                                                     \
        if (nc < DW_VLEN) {                                                                  \
            for (; c < nc; c++) d[c] = (T)DW_FN(saturated_one)(s[c], lo, hi);                \
            break;                                                                           \
        }                                                                                    \
        for (;; c += DW_VLEN) {                                                              \
            if (c + DW_VLEN > nc) c = nc - DW_VLEN;                                          \
            const DW_FN(ivec) i = __builtin_convertvector(DW_FN(saturated)(DW_FN(load)(s + c), lo, hi), DW_FN(ivec)); \
            const DW_FN(V##vec) v = __builtin_convertvector(i, DW_FN(V##vec));               \
            memcpy(d + c, &v, sizeof v);                                                     \
            if (c + DW_VLEN == nc) break;                                                    \
        }                                                                                    \
    } while (0)

/* Element i of integers of type `type`, and the vector of elements [i, i + DW_VLEN), as floats. */
DW_INLINE float DW_FN(widened_one)(const void *src, int type, ptrdiff_t i)
{
    return type == DW_ELEM_U8 ? ((const uint8_t *)src)[i] : type == DW_ELEM_U16 ? ((const uint16_t *)src)[i]
                                                                                : ((const int16_t *)src)[i];
}

DW_INLINE DW_VEC DW_FN(widened_at)(const void *src, int type, ptrdiff_t i)
{
    DW_FN(u8vec) u8;
    DW_FN(u16vec) u16;
    DW_FN(i16vec) i16;
    if (type == DW_ELEM_U8) {
        memcpy(&u8, (const uint8_t *)src + i, sizeof u8);
        return DW_FN(widened_u8)(u8);
    }
    if (type == DW_ELEM_U16) {
        memcpy(&u16, (const uint16_t *)src + i, sizeof u16);
        return DW_FN(widened_u16)(u16);
    }
    memcpy(&i16, (const int16_t *)src + i, sizeof i16);
    return DW_FN(widened_i16)(i16);
}

/* dst[p*dst_pix + c*dst_c] = src[p*src_pix + c] for p < npix, c < nc, from integers of type `type`
 * (dst_c 1: pixels of nc channels; else planes dst_c apart, each pixel's channels taken apart). */
static void DW_FN(widen)(float *dst, ptrdiff_t dst_pix, ptrdiff_t dst_c, const void *src, int type, ptrdiff_t src_pix,
                         ptrdiff_t npix, ptrdiff_t nc)
{
    if (dst_c != 1) {
#ifdef DW_HAS_PLANES_OF
        if ((nc == 3 || nc == 4) && src_pix == nc && dst_pix == 1 && npix >= DW_VLEN) { /* RGB, RGBA: shuffles */
            DW_VEC pixels[4], planes[4];
            for (ptrdiff_t p_next = 0; p_next < npix; p_next += DW_VLEN) {
                const ptrdiff_t p = p_next + DW_VLEN <= npix ? p_next : npix - DW_VLEN;
                for (int k = 0; k < nc; k++) pixels[k] = DW_FN(widened_at)(src, type, nc * p + k * DW_VLEN);
                DW_FN(planes_of)(pixels, planes, nc);
                for (int c = 0; c < nc; c++) DW_FN(store)(dst + c * dst_c + p, planes[c]);
            }
            return;
        }
#endif
        for (ptrdiff_t p = 0; p < npix; p++)
            for (ptrdiff_t c = 0; c < nc; c++) dst[p * dst_pix + c * dst_c] = DW_FN(widened_one)(src, type, p * src_pix + c);
        return;
    }
    if (dst_pix == nc && src_pix == nc) { /* one run */
        nc *= npix;
        npix = 1;
    }
    for (ptrdiff_t p = 0; p < npix; p++) {
        float *d = dst + p * dst_pix;
        if (type == DW_ELEM_U8)
            DW_WIDEN_RUN(uint8_t, u8);
        else if (type == DW_ELEM_U16)
            DW_WIDEN_RUN(uint16_t, u16);
        else
            DW_WIDEN_RUN(int16_t, i16);
    }
}

/* dst[p*dst_pix + c] = src[p*src_pix + c] for p < npix, c < nc, into integers of type `type`:
 * rounded to nearest (ties to even) and saturated, NaN 0, as OpenCV's saturate_cast. */
static void DW_FN(narrow)(void *dst, int type, ptrdiff_t dst_pix, const float *src, ptrdiff_t src_pix, ptrdiff_t npix,
                          ptrdiff_t nc)
{
    if (dst_pix == nc && src_pix == nc) {
        nc *= npix;
        npix = 1;
    }
    for (ptrdiff_t p = 0; p < npix; p++) {
        const float *s = src + p * src_pix;
        if (type == DW_ELEM_U8)
            DW_NARROW_RUN(uint8_t, u8, 0.0f, 255.0f);
        else if (type == DW_ELEM_U16)
            DW_NARROW_RUN(uint16_t, u16, 0.0f, 65535.0f);
        else
            DW_NARROW_RUN(int16_t, i16, -32768.0f, 32767.0f);
    }
}

#undef DW_VEC
#undef DW_VLEN
#undef DW_INLINE
#undef DW_ROUNDER
#undef DW_WIDEN_RUN
#undef DW_NARROW_RUN
