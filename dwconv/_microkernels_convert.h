/* Integer pixels and half floats into and out of the float32 kernels: images of uint8, uint16, int16
 * or float16 are widened to float as the forward's ring copies their rows, and results rounded (and
 * integers saturated) into them as each output row leaves its scratch, so no float copy of the
 * image or result is ever made.
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

/* Elements [i, i + DW_VLEN) of integers of `type` (uint8, uint16 or int16) as int32 lanes. On x86 one
 * extending load: GCC's generic conversions widen uint8 lanes to int32 lane by lane, and through
 * uint16 in halves with extracts and inserts between (1080p RGB uint8, 3x3, one thread: the ring's
 * widening took a quarter of the call; the separable filter's 11 taps, 2 threads: 4.5 ms with them,
 * 2.4 with these and pairs of rows added as integers). */
DW_INLINE DW_FN(ivec) DW_FN(integers_at)(const void *src, const int type, ptrdiff_t i)
{
    const uint8_t *u8 = (const uint8_t *)src + i;
    const uint16_t *u16 = (const uint16_t *)src + i;
#if defined(DW_X86) && DW_VBYTES == 64
    if (type == DW_ELEM_U8) return (DW_FN(ivec))_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)u8));
    if (type == DW_ELEM_U16) return (DW_FN(ivec))_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)u16));
    return (DW_FN(ivec))_mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)u16));
#elif defined(DW_X86) && DW_VBYTES == 32
    if (type == DW_ELEM_U8) return (DW_FN(ivec))_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)u8));
    if (type == DW_ELEM_U16) return (DW_FN(ivec))_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)u16));
    return (DW_FN(ivec))_mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)u16));
#else
    DW_FN(u8vec) v8;
    DW_FN(u16vec) v16;
    DW_FN(i16vec) i16;
    if (type == DW_ELEM_U8) {
        memcpy(&v8, u8, sizeof v8);
        return __builtin_convertvector(__builtin_convertvector(v8, DW_FN(u16vec)), DW_FN(ivec));
    }
    if (type == DW_ELEM_U16) {
        memcpy(&v16, u16, sizeof v16);
        return __builtin_convertvector(v16, DW_FN(ivec));
    }
    memcpy(&i16, u16, sizeof i16);
    return __builtin_convertvector(i16, DW_FN(ivec));
#endif
}

/* Element i of elements of type `type`, and the vector of elements [i, i + DW_VLEN), as floats. */
DW_INLINE float DW_FN(widened_one)(const void *src, const int type, ptrdiff_t i)
{
    if (type == DW_ELEM_F16) return dw_half_to_float(((const uint16_t *)src)[i]);
    return type == DW_ELEM_U8 ? ((const uint8_t *)src)[i] : type == DW_ELEM_U16 ? ((const uint16_t *)src)[i]
                                                                                : ((const int16_t *)src)[i];
}

/* Half floats [i, i + DW_VLEN) as floats: F16C's conversion at x86's wider levels. */
DW_INLINE DW_VEC DW_FN(halves_at)(const void *src, ptrdiff_t i)
{
    const uint16_t *h = (const uint16_t *)src + i;
#if defined(DW_X86) && DW_VBYTES == 64
    return (DW_VEC)_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)h));
#elif defined(DW_X86) && DW_VBYTES == 32
    return (DW_VEC)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h));
#else
    DW_VEC v;
    for (int k = 0; k < DW_LANES; k++) v[k] = dw_half_to_float(h[k]);
    return v;
#endif
}

DW_INLINE DW_VEC DW_FN(widened_at)(const void *src, const int type, ptrdiff_t i)
{
    if (type == DW_ELEM_F16) return DW_FN(halves_at)(src, i);
    return __builtin_convertvector(DW_FN(integers_at)(src, type, i), DW_VEC);
}

/* v rounded to the nearest integer, ties to even, as rint does: adding 1.5 * 2^23 leaves no bits
 * below the units for |v| < 2^22, so the addition itself rounds (in the default rounding mode), and
 * the subtraction is exact. Callers clamp v into the type's range first. */
#define DW_ROUNDER 12582912.0f

/* The range of integers of `type`. */
#define DW_LOWEST(type) ((type) == DW_ELEM_I16 ? -32768.0f : 0.0f)
#define DW_HIGHEST(type) ((type) == DW_ELEM_U8 ? 255.0f : (type) == DW_ELEM_U16 ? 65535.0f : 32767.0f)

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

/* v stored as elements [i, i + DW_VLEN) (s as element i) of integers of `type`, rounded to nearest,
 * ties to even, and saturated, NaN 0, as OpenCV's saturate_cast. Unsigned types on x86: min,
 * convert (rounding as the default rounding mode does, which `saturated` assumes too), max with 0 and
 * a truncating or saturating pack: NaN stays NaN through min(hi, v), whose second operand it
 * returns, and converts to INT_MIN, as any v below 0 becomes 0 (a quarter of the instructions of the
 * generic code, whose masked moves and pack GCC spreads over shuffles). */
DW_INLINE void DW_FN(store_narrowed)(void *dst, const int type, ptrdiff_t i, DW_VEC v)
{
    uint8_t *u8 = (uint8_t *)dst + i;
    uint16_t *u16 = (uint16_t *)dst + i;
    if (type == DW_ELEM_F16) { /* rounded to nearest, ties to even */
#if defined(DW_X86) && DW_VBYTES == 64
        _mm256_storeu_si256((__m256i *)u16, _mm512_cvtps_ph((__m512)v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#elif defined(DW_X86) && DW_VBYTES == 32
        _mm_storeu_si128((__m128i *)u16, _mm256_cvtps_ph((__m256)v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#else
        for (int k = 0; k < DW_LANES; k++) u16[k] = dw_float_to_half(v[k]);
#endif
        return;
    }
#if defined(DW_X86) && DW_VBYTES == 64
    if (type != DW_ELEM_I16) {
        const __m512i n = _mm512_max_epi32(_mm512_cvtps_epi32(_mm512_min_ps(_mm512_set1_ps(DW_HIGHEST(type)), (__m512)v)),
                                           _mm512_setzero_si512());
        if (type == DW_ELEM_U8)
            _mm_storeu_si128((__m128i *)u8, _mm512_cvtepi32_epi8(n));
        else
            _mm256_storeu_si256((__m256i *)u16, _mm512_cvtepi32_epi16(n));
        return;
    }
#elif defined(DW_X86) && DW_VBYTES == 32
    if (type != DW_ELEM_I16) {
        const __m256i n = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_set1_ps(DW_HIGHEST(type)), (__m256)v));
        const __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(n), _mm256_extracti128_si256(n, 1));
        if (type == DW_ELEM_U8)
            _mm_storel_epi64((__m128i *)u8, _mm_packus_epi16(packed, packed));
        else
            _mm_storeu_si128((__m128i *)u16, packed);
        return;
    }
#endif
    const DW_FN(ivec) n = __builtin_convertvector(DW_FN(saturated)(v, DW_LOWEST(type), DW_HIGHEST(type)), DW_FN(ivec));
    if (type == DW_ELEM_U8) {
        const DW_FN(u8vec) n8 = __builtin_convertvector(n, DW_FN(u8vec));
        memcpy(u8, &n8, sizeof n8);
    } else if (type == DW_ELEM_U16) {
        const DW_FN(u16vec) n16 = __builtin_convertvector(n, DW_FN(u16vec));
        memcpy(u16, &n16, sizeof n16);
    } else {
        const DW_FN(i16vec) s16 = __builtin_convertvector(n, DW_FN(i16vec));
        memcpy(u16, &s16, sizeof s16);
    }
}

DW_INLINE void DW_FN(store_narrowed_one)(void *dst, const int type, ptrdiff_t i, float s)
{
    if (type == DW_ELEM_F16) {
        ((uint16_t *)dst)[i] = dw_float_to_half(s);
        return;
    }
    s = DW_FN(saturated_one)(s, DW_LOWEST(type), DW_HIGHEST(type));
    if (type == DW_ELEM_U8)
        ((uint8_t *)dst)[i] = (uint8_t)s;
    else if (type == DW_ELEM_U16)
        ((uint16_t *)dst)[i] = (uint16_t)s;
    else
        ((int16_t *)dst)[i] = (int16_t)s;
}

/* The run loops of widen and narrow over elements [i0, i0 + nc) of one `type` (a constant where
 * they are inlined): whole vectors, then the last one overlapping the one before, or scalars where
 * the run is shorter than a vector. */
DW_INLINE void DW_FN(widen_run)(float *d, const void *src, const int type, ptrdiff_t i0, ptrdiff_t nc)
{
    if (nc < DW_VLEN) {
        for (ptrdiff_t c = 0; c < nc; c++) d[c] = DW_FN(widened_one)(src, type, i0 + c);
        return;
    }
    for (ptrdiff_t c = 0;; c += DW_VLEN) {
        if (c + DW_VLEN > nc) c = nc - DW_VLEN;
        DW_FN(store)(d + c, DW_FN(widened_at)(src, type, i0 + c));
        if (c + DW_VLEN == nc) return;
    }
}

DW_INLINE void DW_FN(narrow_run)(void *dst, const int type, ptrdiff_t i0, const float *s, ptrdiff_t nc)
{
    if (nc < DW_VLEN) {
        for (ptrdiff_t c = 0; c < nc; c++) DW_FN(store_narrowed_one)(dst, type, i0 + c, s[c]);
        return;
    }
    for (ptrdiff_t c = 0;; c += DW_VLEN) {
        if (c + DW_VLEN > nc) c = nc - DW_VLEN;
        DW_FN(store_narrowed)(dst, type, i0 + c, DW_FN(load)(s + c));
        if (c + DW_VLEN == nc) return;
    }
}

/* dst[p*dst_pix + c*dst_c] = src[p*src_pix + c] for p < npix, c < nc, from elements of type `type`
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
            DW_FN(widen_run)(d, src, DW_ELEM_U8, p * src_pix, nc);
        else if (type == DW_ELEM_F16)
            DW_FN(widen_run)(d, src, DW_ELEM_F16, p * src_pix, nc);
        else if (type == DW_ELEM_U16)
            DW_FN(widen_run)(d, src, DW_ELEM_U16, p * src_pix, nc);
        else
            DW_FN(widen_run)(d, src, DW_ELEM_I16, p * src_pix, nc);
    }
}

/* dst[p*dst_pix + c] = src[p*src_pix + c] for p < npix, c < nc, into elements of type `type`:
 * rounded to nearest (ties to even), and integers saturated, NaN 0, as OpenCV's saturate_cast. */
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
            DW_FN(narrow_run)(dst, DW_ELEM_U8, p * dst_pix, s, nc);
        else if (type == DW_ELEM_F16)
            DW_FN(narrow_run)(dst, DW_ELEM_F16, p * dst_pix, s, nc);
        else if (type == DW_ELEM_U16)
            DW_FN(narrow_run)(dst, DW_ELEM_U16, p * dst_pix, s, nc);
        else
            DW_FN(narrow_run)(dst, DW_ELEM_I16, p * dst_pix, s, nc);
    }
}

#undef DW_VEC
#undef DW_VLEN
#undef DW_INLINE
#undef DW_ROUNDER
#undef DW_LOWEST
#undef DW_HIGHEST
