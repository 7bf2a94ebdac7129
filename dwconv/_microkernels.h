/* Run-time instruction-set dispatch for dwconv's micro-kernels.
 *
 * _microkernels_body.h is compiled here once per instruction-set level, each copy inside a region
 * whose target attributes enable that level, so one wheel built for baseline x86-64 still carries
 * AVX2+FMA and AVX-512 code. dw_select_isa() picks a level at import (the best the CPU has, or the
 * one DWCONV_ISA names) and the Cython kernels call through the table it sets.
 */
#ifndef DWCONV_MICROKERNELS_H
#define DWCONV_MICROKERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* dw_ and DW_ begin every C symbol and macro of dwconv: the prefix is the library's namespace and
 * means "dwconv" only (a filter gradient is dfilters, a dilation dil_h or dil_w). */
#define DW_CAT3_(a, b, c) a##_##b##_##c
#define DW_CAT3(a, b, c) DW_CAT3_(a, b, c)

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define DW_X86 1
#include <immintrin.h> /* streaming stores; the target regions below enable each level's */
#endif

/* A region of functions compiled for the target features `f` (a string), as one level needs. */
#define DW_PRAGMA(x) _Pragma(#x)
#if defined(__clang__)
#define DW_TARGET_BEGIN(f) DW_PRAGMA(clang attribute push(__attribute__((target(f))), apply_to = function))
#define DW_TARGET_END _Pragma("clang attribute pop")
#else
#define DW_TARGET_BEGIN(f) _Pragma("GCC push_options") DW_PRAGMA(GCC target(f))
#define DW_TARGET_END _Pragma("GCC pop_options")
#endif
#ifdef DW_X86
/* Whether this CPU (and its OS, which the compiler's check includes) has `feature`. */
#define DW_CPU_HAS(feature) (__builtin_cpu_init(), __builtin_cpu_supports(feature))
#endif

/* A vector the compiler must hold in a register: loaded once, it serves several taps (left to
 * itself, GCC folds the load into each tap's FMA again, and runs out of load slots). */
#ifdef DW_X86
#define DW_IN_REGISTER(v) __asm__("" : "+v"(v))
#else
#define DW_IN_REGISTER(v) (void)(v)
#endif
/* A pointer the compiler must advance step by step, as the code does: left to itself, GCC keeps
 * each of a tile's source addresses apart, more than the registers hold, and spills them. */
#define DW_STEPPED(p) __asm__("" : "+r"(p))

/* What the elements of an image or result are, where the forward converts them (see
 * _microkernels_convert.h): the kernels' own float type, integer pixels, or IEEE half floats
 * (NumPy's float16) around float32 kernels. */
enum { DW_ELEM_FLOAT, DW_ELEM_U8, DW_ELEM_U16, DW_ELEM_I16, DW_ELEM_F16 };

/* One half float (its bits) as a float, and a float rounded to the nearest half (ties to even;
 * past 65504 to infinity, NaN kept quiet) as F16C's conversions do: the scalar ends of runs, and
 * every element at levels without F16C. */
static inline float dw_half_to_float(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
    uint32_t bits;
    float f;
    if (exponent == 0) { /* zero or subnormal: mantissa * 2^-24, exact in float */
        f = (float)mantissa * 5.9604644775390625e-8f;
        return sign ? -f : f;
    }
    bits = sign | (exponent == 0x1f ? 0x7f800000u | mantissa << 13 : (exponent + 112) << 23 | mantissa << 13);
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint16_t dw_float_to_half(float f)
{
    uint32_t bits, magnitude;
    memcpy(&bits, &f, sizeof bits);
    const uint16_t sign = (uint16_t)((bits >> 16) & 0x8000u);
    magnitude = bits & 0x7fffffffu;
    if (magnitude > 0x7f800000u) /* NaN: its top mantissa bits, quiet */
        return sign | 0x7e00u | (uint16_t)((magnitude >> 13) & 0x3ffu);
    if (magnitude >= 0x477ff000u) /* 65520 and up (infinity too) round to infinity */
        return sign | 0x7c00u;
    if (magnitude < 0x38800000u) { /* below 2^-14: a subnormal half, |f| * 2^24 rounded (exact scaling;
                                    * the addition rounds, ties to even; 1024 is the smallest normal) */
        const float scaled = (sign ? -f : f) * 16777216.0f;
        return sign | (uint16_t)((scaled + 12582912.0f) - 12582912.0f);
    }
    /* normal: the exponent rebiased (-112), the 13 bits dropped rounded to nearest, ties to even
     * (a carry out of the mantissa steps the exponent, as it should) */
    return sign | (uint16_t)((magnitude - 0x38000000u + 0xfffu + ((magnitude >> 13) & 1u)) >> 13);
}

/* Output rows per call of the plane-rows micro-kernel, at every level (the forward's rings hold the
 * source rows of this many output rows of an NCHW plane). */
#define DW_PLANE_ROWS 4
/* Output rows per row tile of the flat-plane path (flat_rows), and the pixels along a row of its
 * 7x7 tiles (AVX-512's: 3.5 vectors of floats). 5x5 tiles at stride 1 (AVX-512's) have
 * DW_FLAT_ROWS_5: 11 source rows loaded for 7 output rows, where 4 rows took 8 (2 vCPUs of an
 * AVX-512 AMD EPYC, against 4 rows: effnet-28x240 1.07-1.08x faster at batch 1 and 16, on one
 * thread and two; 56- and 112-pixel planes 1.06-1.09x; 32-pixel ones, which 8-row tiles divide,
 * 0.99x, where 8 rows ran 1.1x, but 28-pixel ones 0.97x, and 6 rows 1.0x). */
#define DW_FLAT_ROWS 4
#define DW_FLAT_ROWS_5 7
/* The filter gradient reads flat planes in place for kernels of up to this many taps (flat_dot, its
 * sums in registers 9 taps a pass; the planner's flat_dot_fits: measured there). */
#define DW_FLAT_DOT_MAX_TAPS 25
/* Output rows per row tile of 3x3 kernels at stride 2 on rows narrower than a vector (AVX-512's:
 * rows_fit), one vector wide: 2 vCPUs of an AVX-512 AMD EPYC, one thread, 28x28x192 at batch 16,
 * 1.19x faster than 4 rows (8 rows 1.03x). Wide planes' stride-2 tiles keep 4 rows: 112x112x96 at
 * batch 16, which streams from DRAM, ran 7-row tiles 1.35x slower. */
#define DW_FLAT_ROWS_NARROW_S2 7
#define DW_FLAT_ROWS_MAX 7 /* the most of any tile above */
#define DW_WIDE_ROW_PIXELS 56
/* How results are streamed (flat_rows' `nt`): rows of whole cache lines in place; others through a
 * buffer of DW_STAGED_BYTES, where a plane (flat_rolling) or a band of rows (the row tiles) fits it,
 * then stream_lines: stored in place, tiles and strips write a vector or two to each row, and the
 * lines that rows share would be left half-written; plain stores read every line in first (2 vCPUs
 * of an AVX2 AMD EPYC, batch 16, staged against plain: 56x56x144 forward 1.3x faster, its input
 * gradient 1.6x, 112x112x96 at stride 2 1.1x). */
enum { DW_STREAM_IN_PLACE = 1, DW_STREAM_STAGED = 2 };
#define DW_STAGED_BYTES 16384
/* Plane groups (flat_groups): planes of up to this many pixels and kernels of up to this many
 * taps. */
#define DW_FLAT_GROUP_PIXELS 256
#define DW_FLAT_GROUP_TAPS 9
/* The farthest a tap's offset may lie from its pixel for flat_group_near (a vector of AVX-512's
 * floats), as flat_group_masks sets `near` and the plan (groups_fit) chooses larger planes. */
#define DW_FLAT_GROUP_NEAR 16
/* What the plane groups of one call share (flat_group_masks builds it, flat_groups reads it): each
 * tap's source offset, its lanes inside their plane for each vector of a group, and each element's
 * plane. Built once per call: each call of flat_groups built its own, a tenth of its time on
 * 7x7x960 planes at batch 16. Sized for 16 lanes, AVX-512's floats. */
typedef struct {
    ptrdiff_t off[DW_FLAT_GROUP_TAPS];
    unsigned masks[DW_FLAT_GROUP_TAPS * DW_FLAT_GROUP_PIXELS]; /* tap t's of vector v at t*npix + v */
    int32_t lane_planes[DW_FLAT_GROUP_PIXELS * 16];
    /* Where every tap's offset is at most DW_FLAT_GROUP_NEAR away (`near`): lane l of tap t's
     * source vector as lane shift[16*t + l] of the vector pair (before, at) or (at, after), as
     * off[t] is negative or not. */
    int near;
    int32_t shift[DW_FLAT_GROUP_TAPS * 16];
} dw_flat_group;

/* The spectral rows' transforms (_microkernels_spectral.h): L (`length`), a power of two from
 * DW_SPECTRAL_MIN_LENGTH to DW_SPECTRAL_MAX_LENGTH; segment s of a padded source row of `width`
 * pixels covers its columns [starts[s], starts[s] + L) and gives outputs [starts[s], starts[s] +
 * valid) of the n_out; the twiddles are (cos, -sin)(2 pi k / L) for k < L/2. Built once per call. */
#define DW_SPECTRAL_MIN_LENGTH 16
#define DW_SPECTRAL_MAX_LENGTH 256
#define DW_SPECTRAL_MAX_SEGMENTS 16
/* Output rows per call of spectral_rows (the rings hold their source rows); its `sums` hold rows*2L
 * vectors of up to DW_SPECTRAL_SUM_LANES floats (AVX-512's). */
#define DW_SPECTRAL_ROWS 4
#define DW_SPECTRAL_SUM_LANES 16
typedef struct {
    ptrdiff_t length, valid, width, n_out, n_segments;
    ptrdiff_t starts[DW_SPECTRAL_MAX_SEGMENTS];
    float twiddles[DW_SPECTRAL_MAX_LENGTH];
} dw_spectral;
#define DW_MIN(a, b) ((a) < (b) ? (a) : (b))

/* The clamping activations, which the clamp micro-kernel applies. */
enum { DW_CLAMP_RELU, DW_CLAMP_RELU6, DW_CLAMP_HARD_SWISH };

/* Ask the caches for bytes [p, p + nbytes) into L2, a line at a time (rows a kernel reads next:
 * the same instruction at every level). */
static inline void dw_prefetch(const void *p, ptrdiff_t nbytes)
{
    for (ptrdiff_t i = 0; i < nbytes; i += 64) __builtin_prefetch((const char *)p + i, 0, 2);
}

/* The bytes each of `steps` steps asks for (whole lines) of a plane of `nbytes` fetched evenly over
 * them (the filter gradients' next planes: dw_prefetch_piece). */
static inline ptrdiff_t dw_piece_bytes(ptrdiff_t nbytes, ptrdiff_t steps)
{
    return (nbytes + 64 * steps - 1) / (64 * steps) * 64;
}

/* Step i's piece (`piece` bytes) of the two planes at a and b, of which `left` bytes remain from a
 * and b on: nothing past them. */
static inline void dw_prefetch_piece(const char *a, const char *b, ptrdiff_t i, ptrdiff_t piece, ptrdiff_t left)
{
    if (i * piece < left) {
        const ptrdiff_t n = left - i * piece < piece ? left - i * piece : piece;
        dw_prefetch(a + i * piece, n);
        dw_prefetch(b + i * piece, n);
    }
}

/* Whether 3x3 rows of `width` elements with left padding pl, and output rows of OW, fit `lanes`
 * lanes a row, so that rotating a row's lanes by up to two moves only the zeros past it across the
 * lanes' edges (narrow planes: the planner's narrow_fits and narrow_slot, the kernels' narrow_pairs). */
static inline int dw_narrow_rows_within(ptrdiff_t width, ptrdiff_t pl, ptrdiff_t OW, ptrdiff_t lanes)
{
    return width + pl <= lanes && OW + 2 - pl <= lanes;
}

/* Whether stride-2 rows of `width` elements with left padding pl, and output rows of OW, run two
 * planes to a 16-lane vector (AVX-512's flat_rows, 3x3 kernels: narrow_s2_tile): each row and its
 * left padding within 16 lanes, whose even and odd elements then fill the 8 lanes of a plane's
 * half, an output row of 5 to 8 pixels in each (the planner's rows_fit, the kernel's flat_rows_k). */
static inline int dw_narrow_s2_pairs(ptrdiff_t width, ptrdiff_t pl, ptrdiff_t OW)
{
    return width + pl <= 16 && OW >= 5 && OW <= 8;
}

/* Whether 3x3 planes of height x width at stride 1 run a plane at a time from top to bottom (AVX2's
 * flat_rolling): a pixel of zeros around them, output planes the input's size, rows more than half
 * a vector of `lanes` wide (the planner's rows_fit, the kernel's flat_rows_at_stride). */
static inline int dw_rolling_fits(ptrdiff_t height, ptrdiff_t width, ptrdiff_t pt, ptrdiff_t pl, ptrdiff_t OH,
                                  ptrdiff_t OW, ptrdiff_t lanes)
{
    return pt == 1 && pl == 1 && OH == height && OW == width && 2 * width > lanes;
}

/* What dot_window is told about its rows (see there): the first pixel's first column of taps lies in
 * the padding, the last pixel's last; the rows are an image's, read in place; and (with STRIDED)
 * the image lies in the last-level cache. */
enum { DW_WINDOW_LEFT = 1, DW_WINDOW_RIGHT = 2, DW_WINDOW_STRIDED = 4, DW_WINDOW_CACHED = 8 };

/* The most taps dot_taps (the filter gradient's register-resident reduction) sums at once. */
#define DW_DOT_MAX_TAPS 7

/* The levels, from the most portable up. Each block names its level (DW_ISA), gives its vector
 * width (DW_VBYTES) and the level below it (DW_NARROWER), compiles the micro-kernels for it inside
 * its target region, and says whether a CPU runs it (dw_supported_<level>); a new level is one
 * block here and one line in dw_isas below. */

/* baseline: what the build targets (SSE2 on x86-64), 16-byte vectors. On AArch64 these are NEON's
 * (Advanced SIMD, part of every AArch64 CPU), and the level is named after it, "neon": its table
 * name (DW_BASELINE_NAME) says what it runs, while its functions keep the name baseline. */
#if defined(__aarch64__) && defined(__ARM_NEON)
#define DW_BASELINE_NAME "neon"
#else
#define DW_BASELINE_NAME "baseline"
#endif
#define DW_ISA baseline
#define DW_VBYTES 16
#include "_microkernels_level.h"
static int dw_supported_baseline(void) { return 1; }

#ifdef DW_X86
/* AVX2, FMA and F16C (half floats: every AVX2 CPU has it): 32-byte vectors, 16 registers. */
DW_TARGET_BEGIN("avx2,fma,f16c")
#define DW_ISA avx2
#define DW_VBYTES 32
#define DW_NARROWER baseline
#include "_microkernels_level.h"
DW_TARGET_END
static int dw_supported_avx2(void) { return DW_CPU_HAS("avx2") && DW_CPU_HAS("fma") && DW_CPU_HAS("f16c"); }

/* AVX-512 F: 64-byte vectors, 32 registers; run where VL is there too (every AVX-512 CPU but the
 * Xeon Phi): the 7x7 row tiles' 256-bit sums (inline assembly, _microkernels_flat.h) may sit in
 * registers 16-31, which only VL's encoding reaches. */
DW_TARGET_BEGIN("avx512f,avx2,fma,f16c")
#define DW_ISA avx512
#define DW_VBYTES 64
#define DW_NARROWER avx2
#include "_microkernels_level.h"
DW_TARGET_END
static int dw_supported_avx512(void)
{
    return dw_supported_avx2() && DW_CPU_HAS("avx512f") && DW_CPU_HAS("avx512vl");
}
#endif

typedef void (*dw_taps_f32_fn)(const float *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, const float *,
                               ptrdiff_t, ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t, float *, ptrdiff_t, ptrdiff_t,
                               ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, int, int);
typedef void (*dw_taps_f64_fn)(const double *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, const double *,
                               ptrdiff_t, ptrdiff_t, ptrdiff_t, const double *, ptrdiff_t, double *, ptrdiff_t, ptrdiff_t,
                               ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, int, int);
typedef void (*dw_dot_f32_fn)(const float *, ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t, ptrdiff_t, float *,
                              ptrdiff_t, ptrdiff_t, ptrdiff_t);
typedef void (*dw_dot_f64_fn)(const double *, ptrdiff_t, ptrdiff_t, const double *, ptrdiff_t, ptrdiff_t, double *,
                              ptrdiff_t, ptrdiff_t, ptrdiff_t);

typedef int (*dw_dot_window_f32_fn)(const float *const *, const float *const *, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                    ptrdiff_t, ptrdiff_t, float *, ptrdiff_t, float *, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                    ptrdiff_t, int);
typedef int (*dw_dot_window_f64_fn)(const double *const *, const double *const *, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                    ptrdiff_t, ptrdiff_t, double *, ptrdiff_t, double *, ptrdiff_t, ptrdiff_t,
                                    ptrdiff_t, ptrdiff_t, int);
typedef void (*dw_dot_taps_f32_fn)(const float *, ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t, float *, ptrdiff_t,
                                   ptrdiff_t, ptrdiff_t, ptrdiff_t);
typedef void (*dw_dot_taps_f64_fn)(const double *, ptrdiff_t, ptrdiff_t, const double *, ptrdiff_t, double *,
                                   ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t);

typedef void (*dw_row_f32_fn)(const float *const *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                              const float *, ptrdiff_t, const float *, float *, ptrdiff_t, ptrdiff_t, ptrdiff_t, int);
typedef void (*dw_row_f64_fn)(const double *const *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                              const double *, ptrdiff_t, const double *, double *, ptrdiff_t, ptrdiff_t, ptrdiff_t, int);
typedef void (*dw_row_edge_f32_fn)(const float *const *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, const float *,
                                   ptrdiff_t, ptrdiff_t, const float *, float *, ptrdiff_t, int);
typedef void (*dw_row_edge_f64_fn)(const double *const *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, const double *,
                                   ptrdiff_t, ptrdiff_t, const double *, double *, ptrdiff_t, int);

typedef void (*dw_plane_rows_f32_fn)(const float *const *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                     ptrdiff_t, const float *, ptrdiff_t, const float *, ptrdiff_t, float *, ptrdiff_t,
                                     ptrdiff_t, int);
typedef void (*dw_plane_rows_f64_fn)(const double *const *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                     ptrdiff_t, const double *, ptrdiff_t, const double *, ptrdiff_t, double *, ptrdiff_t,
                                     ptrdiff_t, int);
typedef int (*dw_plane_lane_tiles_fn)(ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t);

typedef void (*dw_flat_f32_fn)(const float *, ptrdiff_t, const ptrdiff_t *, const unsigned char *, ptrdiff_t, ptrdiff_t,
                               const float *, ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t, float *, ptrdiff_t,
                               ptrdiff_t, ptrdiff_t, int);
typedef void (*dw_flat_f64_fn)(const double *, ptrdiff_t, const ptrdiff_t *, const unsigned char *, ptrdiff_t, ptrdiff_t,
                               const double *, ptrdiff_t, ptrdiff_t, const double *, ptrdiff_t, double *, ptrdiff_t,
                               ptrdiff_t, ptrdiff_t, int);

typedef void (*dw_flat_rows_f32_fn)(const float *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                    ptrdiff_t, const float *, ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t, float *,
                                    ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, int);

typedef void (*dw_flat_group_masks_f32_fn)(ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                           ptrdiff_t, dw_flat_group *);
typedef void (*dw_flat_groups_f32_fn)(const float *, const dw_flat_group *, ptrdiff_t, ptrdiff_t, const float *,
                                      ptrdiff_t, const float *, float *, ptrdiff_t, ptrdiff_t, ptrdiff_t, int);

typedef void (*dw_flat_dot_f32_fn)(const float *, ptrdiff_t, ptrdiff_t, const ptrdiff_t *, const unsigned char *,
                                   ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t, ptrdiff_t, float *, ptrdiff_t,
                                   float *, ptrdiff_t, ptrdiff_t, ptrdiff_t);
typedef void (*dw_flat_dot_f64_fn)(const double *, ptrdiff_t, ptrdiff_t, const ptrdiff_t *, const unsigned char *,
                                   ptrdiff_t, ptrdiff_t, const double *, ptrdiff_t, ptrdiff_t, double *, ptrdiff_t,
                                   double *, ptrdiff_t, ptrdiff_t, ptrdiff_t);

typedef void (*dw_flat_input_grad_s2_f32_fn)(const float *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                             const float *, ptrdiff_t, ptrdiff_t, float *, ptrdiff_t, ptrdiff_t,
                                             ptrdiff_t, ptrdiff_t);
/* (flat_dot_s2 and flat_dot_narrow: a 3x3 kernel's filter gradient along the rows) */
typedef void (*dw_flat_dot_rows_f32_fn)(const float *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                        const float *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, float *, ptrdiff_t,
                                        float *, ptrdiff_t, ptrdiff_t);
/* (flat_dot_shifted: 5x5 and 7x7 kernels' along the rows; the same, and the kernel's size) */
typedef void (*dw_flat_dot_shifted_f32_fn)(const float *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                           ptrdiff_t, const float *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, float *,
                                           ptrdiff_t, float *, ptrdiff_t, ptrdiff_t, ptrdiff_t);

typedef void (*dw_copy_f32_fn)(float *, ptrdiff_t, const float *, ptrdiff_t, ptrdiff_t, ptrdiff_t);
typedef void (*dw_copy_f64_fn)(double *, ptrdiff_t, const double *, ptrdiff_t, ptrdiff_t, ptrdiff_t);

typedef void (*dw_transpose_f32_fn)(const float *, ptrdiff_t, float *, ptrdiff_t, ptrdiff_t, ptrdiff_t, int);
typedef void (*dw_transpose_f64_fn)(const double *, ptrdiff_t, double *, ptrdiff_t, ptrdiff_t, ptrdiff_t, int);

typedef void (*dw_clamp_f32_fn)(float *, ptrdiff_t, int);
typedef void (*dw_clamp_f64_fn)(double *, ptrdiff_t, int);

typedef void (*dw_widen_fn)(float *, ptrdiff_t, ptrdiff_t, const void *, int, ptrdiff_t, ptrdiff_t, ptrdiff_t);
typedef void (*dw_narrow_fn)(void *, int, ptrdiff_t, const float *, ptrdiff_t, ptrdiff_t, ptrdiff_t);

typedef void (*dw_sep_columns_f32_fn)(const void *const *, int, const float *, ptrdiff_t, int, float *, ptrdiff_t);
typedef void (*dw_sep_columns_f64_fn)(const void *const *, int, const double *, ptrdiff_t, int, double *, ptrdiff_t);
typedef void (*dw_sep_columns_pair_f32_fn)(const void *const *, int, const float *, ptrdiff_t, float *, float *,
                                           ptrdiff_t);
typedef void (*dw_sep_columns_pair_f64_fn)(const void *const *, int, const double *, ptrdiff_t, double *, double *,
                                           ptrdiff_t);
typedef void (*dw_sep_rows_f32_fn)(const float *, ptrdiff_t, const float *, ptrdiff_t, int, float, void *, int, int,
                                   ptrdiff_t);
typedef void (*dw_sep_rows_f64_fn)(const double *, ptrdiff_t, const double *, ptrdiff_t, int, double, void *, int,
                                   int, ptrdiff_t);

typedef void (*dw_spectral_filter_f32_fn)(const float *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, const dw_spectral *,
                                          void *);
typedef void (*dw_spectral_source_f32_fn)(const float *, ptrdiff_t, ptrdiff_t, const dw_spectral *, ptrdiff_t, ptrdiff_t,
                                          void *);
typedef void (*dw_spectral_correlate_f32_fn)(const void *const *, const void *const *, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                             const dw_spectral *, void *);
typedef void (*dw_spectral_filter_grad_f32_fn)(void *, ptrdiff_t, ptrdiff_t, ptrdiff_t, const dw_spectral *, float *,
                                               ptrdiff_t);
typedef void (*dw_spectral_rows_f32_fn)(const void *const *, const void *, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                        const dw_spectral *, const float *, void *, float *, ptrdiff_t, ptrdiff_t);

typedef struct {
    const char *name;
    int (*supported)(void);
    dw_taps_f32_fn taps_f32;
    dw_taps_f64_fn taps_f64;
    dw_dot_f32_fn dot_f32;
    dw_dot_f64_fn dot_f64;
    dw_dot_taps_f32_fn dot_taps_f32;
    dw_dot_taps_f64_fn dot_taps_f64;
    dw_dot_window_f32_fn dot_window_f32;
    dw_dot_window_f64_fn dot_window_f64;
    dw_transpose_f32_fn transpose_f32;
    dw_transpose_f64_fn transpose_f64;
    dw_row_f32_fn row_f32;
    dw_row_f64_fn row_f64;
    dw_row_edge_f32_fn row_edge_f32;
    dw_row_edge_f64_fn row_edge_f64;
    dw_plane_rows_f32_fn plane_rows_f32;
    dw_plane_rows_f64_fn plane_rows_f64;
    dw_plane_lane_tiles_fn plane_lane_tiles_f32;
    dw_flat_f32_fn flat_f32; /* the flat-plane kernels: NULL at levels without masked loads */
    dw_flat_f64_fn flat_f64;
    dw_flat_rows_f32_fn flat_rows_f32; /* (float only) */
    dw_flat_group_masks_f32_fn flat_group_masks_f32; /* (float only) */
    dw_flat_groups_f32_fn flat_groups_f32; /* (float only) */
    dw_flat_dot_f32_fn flat_dot_f32;
    dw_flat_dot_f64_fn flat_dot_f64;
    dw_flat_input_grad_s2_f32_fn flat_input_grad_s2_f32; /* (float only) */
    dw_flat_dot_rows_f32_fn flat_dot_s2_f32; /* (float only) */
    dw_flat_dot_rows_f32_fn flat_dot_narrow_f32; /* (float only) */
    dw_flat_dot_rows_f32_fn flat_dot_rolling_f32; /* (float only) */
    dw_flat_dot_shifted_f32_fn flat_dot_shifted_f32; /* (float only; NULL but at AVX-512) */
    dw_copy_f32_fn copy_f32;
    dw_copy_f64_fn copy_f64;
    dw_clamp_f32_fn clamp_f32;
    dw_clamp_f64_fn clamp_f64;
    dw_widen_fn widen;
    dw_narrow_fn narrow;
    dw_sep_columns_f32_fn sep_columns_f32;
    dw_sep_columns_f64_fn sep_columns_f64;
    dw_sep_columns_pair_f32_fn sep_columns_pair_f32;
    dw_sep_columns_pair_f64_fn sep_columns_pair_f64;
    dw_sep_rows_f32_fn sep_rows_f32;
    dw_sep_rows_f64_fn sep_rows_f64;
    dw_spectral_filter_f32_fn spectral_filter_f32; /* (float only) */
    dw_spectral_source_f32_fn spectral_source_f32;
    dw_spectral_rows_f32_fn spectral_rows_f32;
    dw_spectral_correlate_f32_fn spectral_correlate_f32;
    dw_spectral_filter_grad_f32_fn spectral_filter_grad_f32;
} dw_isa;

/* A level's table entry; after the level, its flat-plane micro-kernels, DW_FLAT_OF(level) or
 * DW_FLAT_NONE (variadic: DW_ISA_ENTRY passes them on expanded, as twelve entries). */
#define DW_ISA_ENTRY(isa, ...) DW_ISA_ENTRY_NAMED(#isa, isa, __VA_ARGS__)
/* The same, with the name `name` (a string) in the table. */
#define DW_ISA_ENTRY_NAMED(name, isa, ...)                                                               \
    {name, dw_supported_##isa, taps_##isa##_f32, taps_##isa##_f64, dot_##isa##_f32, dot_##isa##_f64,       \
     dot_taps_##isa##_f32, dot_taps_##isa##_f64, dot_window_##isa##_f32, dot_window_##isa##_f64, transpose_##isa##_f32, transpose_##isa##_f64,            \
     row_##isa##_f32, row_##isa##_f64, row_edge_##isa##_f32, row_edge_##isa##_f64, plane_rows_##isa##_f32,        \
     plane_rows_##isa##_f64, plane_lane_tiles_##isa##_f32, __VA_ARGS__, copy_##isa##_f32,                                                         \
     copy_##isa##_f64, clamp_##isa##_f32, clamp_##isa##_f64, widen_##isa##_f32, narrow_##isa##_f32,  \
     sep_columns_##isa##_f32, sep_columns_##isa##_f64, sep_columns_pair_##isa##_f32, sep_columns_pair_##isa##_f64, \
     sep_rows_##isa##_f32, sep_rows_##isa##_f64, spectral_filter_##isa##_f32, spectral_source_##isa##_f32,      \
     spectral_rows_##isa##_f32, spectral_correlate_##isa##_f32, spectral_filter_grad_##isa##_f32}
#define DW_FLAT_OF(isa, dot_shifted) \
    flat_##isa##_f32, flat_##isa##_f64, flat_rows_##isa##_f32, flat_group_masks_##isa##_f32, flat_groups_##isa##_f32, \
        flat_dot_##isa##_f32, flat_dot_##isa##_f64, flat_input_grad_s2_##isa##_f32, flat_dot_s2_##isa##_f32, \
        flat_dot_narrow_##isa##_f32, flat_dot_rolling_##isa##_f32, dot_shifted
#define DW_FLAT_NONE NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL

static const dw_isa dw_isas[] = {
    DW_ISA_ENTRY_NAMED(DW_BASELINE_NAME, baseline, DW_FLAT_NONE),
#ifdef DW_X86
    DW_ISA_ENTRY(avx2, DW_FLAT_OF(avx2, NULL)),
    DW_ISA_ENTRY(avx512, DW_FLAT_OF(avx512, flat_dot_shifted_avx512_f32)),
#endif
};
static const int dw_isa_count = (int)(sizeof dw_isas / sizeof dw_isas[0]);
static const dw_isa *dw_active = &dw_isas[0];

static int dw_isa_supported(int i) { return dw_isas[i].supported(); }

static void dw_set_isa(int i) { dw_active = &dw_isas[i]; }

#define dw_taps_float(...) dw_active->taps_f32(__VA_ARGS__)
#define dw_taps_double(...) dw_active->taps_f64(__VA_ARGS__)
#define dw_dot_float(...) dw_active->dot_f32(__VA_ARGS__)
#define dw_dot_double(...) dw_active->dot_f64(__VA_ARGS__)
#define dw_dot_taps_float(...) dw_active->dot_taps_f32(__VA_ARGS__)
#define dw_dot_taps_double(...) dw_active->dot_taps_f64(__VA_ARGS__)
#define dw_dot_window_float(...) dw_active->dot_window_f32(__VA_ARGS__)
#define dw_dot_window_double(...) dw_active->dot_window_f64(__VA_ARGS__)
#define dw_transpose_float(...) dw_active->transpose_f32(__VA_ARGS__)
#define dw_transpose_double(...) dw_active->transpose_f64(__VA_ARGS__)
#define dw_row_float(...) dw_active->row_f32(__VA_ARGS__)
#define dw_row_double(...) dw_active->row_f64(__VA_ARGS__)
#define dw_row_edge_float(...) dw_active->row_edge_f32(__VA_ARGS__)
#define dw_row_edge_double(...) dw_active->row_edge_f64(__VA_ARGS__)
#define dw_plane_rows_float(...) dw_active->plane_rows_f32(__VA_ARGS__)
#define dw_plane_rows_double(...) dw_active->plane_rows_f64(__VA_ARGS__)
/* Whether the active level's plane_rows runs float rows of nc > 1 interleaved channels in tiles. */
#define dw_plane_lane_tiles(...) dw_active->plane_lane_tiles_f32(__VA_ARGS__)
#define dw_flat_float(...) dw_active->flat_f32(__VA_ARGS__)
#define dw_flat_double(...) dw_active->flat_f64(__VA_ARGS__)
#define dw_flat_rows_float(...) dw_active->flat_rows_f32(__VA_ARGS__)
#define dw_flat_group_masks_float(...) dw_active->flat_group_masks_f32(__VA_ARGS__)
#define dw_flat_groups_float(...) dw_active->flat_groups_f32(__VA_ARGS__)
#define dw_flat_dot_float(...) dw_active->flat_dot_f32(__VA_ARGS__)
#define dw_flat_dot_double(...) dw_active->flat_dot_f64(__VA_ARGS__)
#define dw_flat_input_grad_s2_float(...) dw_active->flat_input_grad_s2_f32(__VA_ARGS__)
#define dw_flat_dot_s2_float(...) dw_active->flat_dot_s2_f32(__VA_ARGS__)
#define dw_flat_dot_narrow_float(...) dw_active->flat_dot_narrow_f32(__VA_ARGS__)
#define dw_flat_dot_rolling_float(...) dw_active->flat_dot_rolling_f32(__VA_ARGS__)
#define dw_flat_dot_shifted_float(...) dw_active->flat_dot_shifted_f32(__VA_ARGS__)
/* Whether the active level has the flat-plane micro-kernels. */
static int dw_has_flat(void) { return dw_active->flat_f32 != NULL; }
/* Whether the active level's filter gradient runs flat planes a plane at a time from top to bottom
 * (flat_dot_rolling). */
static int dw_has_rolling_dot(void) { return dw_active->flat_dot_rolling_f32 != NULL; }
/* Whether it runs 5x5 and 7x7 kernels' along the rows (flat_dot_shifted: AVX-512's). */
static int dw_has_dot_shifted(void) { return dw_active->flat_dot_shifted_f32 != NULL; }
#ifdef DW_X86
/* Whether its forward does too (flat_rolling: AVX2's; AVX-512 runs them in row tiles). */
static int dw_has_rolling(void) { return dw_active->flat_rows_f32 == flat_rows_avx2_f32; }
/* Whether the flat planes' row tiles take 5x5 and 7x7 kernels at the active level (AVX-512's only). */
static int dw_has_wide_row_tiles(void) { return dw_active->flat_rows_f32 == flat_rows_avx512_f32; }
/* Whether the plane groups pick the taps near a pixel from aligned vectors (flat_group_near: AVX-512's). */
static int dw_has_near_groups(void) { return dw_active->flat_groups_f32 == flat_groups_avx512_f32; }
/* The lanes of the active level's vectors of narrow planes (flat_dot_narrow), 0 where it has none. */
static int dw_narrow_lanes(void)
{
    return dw_active->flat_dot_narrow_f32 == flat_dot_narrow_avx512_f32 ? 16 : dw_active->flat_dot_narrow_f32 ? 8 : 0;
}
/* The bytes of the active level's vectors. */
static int dw_vector_bytes(void)
{
    return dw_active->row_f32 == row_avx512_f32 ? 64 : dw_active->row_f32 == row_avx2_f32 ? 32 : 16;
}
#else
static int dw_has_rolling(void) { return 0; }
static int dw_has_wide_row_tiles(void) { return 0; }
static int dw_has_near_groups(void) { return 0; }
static int dw_narrow_lanes(void) { return 0; }
static int dw_vector_bytes(void) { return 16; }
#endif
#define dw_copy_float(...) dw_active->copy_f32(__VA_ARGS__)
#define dw_copy_double(...) dw_active->copy_f64(__VA_ARGS__)
#define dw_clamp_float(...) dw_active->clamp_f32(__VA_ARGS__)
#define dw_clamp_double(...) dw_active->clamp_f64(__VA_ARGS__)
#define dw_widen(...) dw_active->widen(__VA_ARGS__)
#define dw_narrow(...) dw_active->narrow(__VA_ARGS__)
#define dw_sep_columns_float(...) dw_active->sep_columns_f32(__VA_ARGS__)
#define dw_sep_columns_double(...) dw_active->sep_columns_f64(__VA_ARGS__)
#define dw_sep_columns_pair_float(...) dw_active->sep_columns_pair_f32(__VA_ARGS__)
#define dw_sep_columns_pair_double(...) dw_active->sep_columns_pair_f64(__VA_ARGS__)
#define dw_sep_rows_float(...) dw_active->sep_rows_f32(__VA_ARGS__)
#define dw_sep_rows_double(...) dw_active->sep_rows_f64(__VA_ARGS__)
#define dw_spectral_filter_float(...) dw_active->spectral_filter_f32(__VA_ARGS__)
#define dw_spectral_source_float(...) dw_active->spectral_source_f32(__VA_ARGS__)
#define dw_spectral_rows_float(...) dw_active->spectral_rows_f32(__VA_ARGS__)
#define dw_spectral_correlate_float(...) dw_active->spectral_correlate_f32(__VA_ARGS__)
#define dw_spectral_filter_grad_float(...) dw_active->spectral_filter_grad_f32(__VA_ARGS__)

#endif
