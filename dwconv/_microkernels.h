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

#define DW_CAT3_(a, b, c) a##_##b##_##c
#define DW_CAT3(a, b, c) DW_CAT3_(a, b, c)

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define DW_X86 1
#include <immintrin.h> /* streaming stores; the target regions below enable each level's */
#endif

#if defined(__clang__)
#define DW_TARGET_BEGIN_AVX2 _Pragma("clang attribute push(__attribute__((target(\"avx2,fma\"))), apply_to = function)")
#define DW_TARGET_BEGIN_AVX512 _Pragma("clang attribute push(__attribute__((target(\"avx512f,avx2,fma\"))), apply_to = function)")
#define DW_TARGET_END _Pragma("clang attribute pop")
#else
#define DW_TARGET_BEGIN_AVX2 _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma\")")
#define DW_TARGET_BEGIN_AVX512 _Pragma("GCC push_options") _Pragma("GCC target(\"avx512f,avx2,fma\")")
#define DW_TARGET_END _Pragma("GCC pop_options")
#endif

/* Output rows per call of the plane-rows micro-kernel, at every level (the forward's rings hold the
 * source rows of this many output rows of an NCHW plane). */
#define DW_PLANE_ROWS 4

#define DW_ISA baseline
#define DW_VBYTES 16
#include "_microkernels_level.h"

#ifdef DW_X86
DW_TARGET_BEGIN_AVX2
#define DW_ISA avx2
#define DW_VBYTES 32
#define DW_NARROWER baseline
#include "_microkernels_level.h"
DW_TARGET_END

DW_TARGET_BEGIN_AVX512
#define DW_ISA avx512
#define DW_VBYTES 64
#define DW_NARROWER avx2
#include "_microkernels_level.h"
DW_TARGET_END
#endif

typedef void (*dw_taps_f32_fn)(const float *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, const float *,
                               ptrdiff_t, ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t, float *, ptrdiff_t, ptrdiff_t,
                               ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, int);
typedef void (*dw_taps_f64_fn)(const double *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, const double *,
                               ptrdiff_t, ptrdiff_t, ptrdiff_t, const double *, ptrdiff_t, double *, ptrdiff_t, ptrdiff_t,
                               ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, int);
typedef void (*dw_dot_f32_fn)(const float *, ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t, ptrdiff_t, float *,
                              ptrdiff_t, ptrdiff_t, ptrdiff_t);
typedef void (*dw_dot_f64_fn)(const double *, ptrdiff_t, ptrdiff_t, const double *, ptrdiff_t, ptrdiff_t, double *,
                              ptrdiff_t, ptrdiff_t, ptrdiff_t);

typedef void (*dw_dot_taps_f32_fn)(const float *, ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t, float *, ptrdiff_t,
                                   ptrdiff_t, ptrdiff_t, ptrdiff_t);
typedef void (*dw_dot_taps_f64_fn)(const double *, ptrdiff_t, ptrdiff_t, const double *, ptrdiff_t, double *,
                                   ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t);

typedef void (*dw_row_f32_fn)(const float *const *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                              const float *, ptrdiff_t, const float *, float *, ptrdiff_t, ptrdiff_t, ptrdiff_t, int);
typedef void (*dw_row_f64_fn)(const double *const *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                              const double *, ptrdiff_t, const double *, double *, ptrdiff_t, ptrdiff_t, ptrdiff_t, int);

typedef void (*dw_plane_rows_f32_fn)(const float *const *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                     ptrdiff_t, const float *,
                                     ptrdiff_t, const float *, float *, ptrdiff_t, ptrdiff_t, int);
typedef void (*dw_plane_rows_f64_fn)(const double *const *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                     ptrdiff_t, const double *,
                                     ptrdiff_t, const double *, double *, ptrdiff_t, ptrdiff_t, int);

typedef void (*dw_copy_f32_fn)(float *, ptrdiff_t, const float *, ptrdiff_t, ptrdiff_t, ptrdiff_t);
typedef void (*dw_copy_f64_fn)(double *, ptrdiff_t, const double *, ptrdiff_t, ptrdiff_t, ptrdiff_t);

typedef void (*dw_transpose_f32_fn)(const float *, ptrdiff_t, float *, ptrdiff_t, ptrdiff_t, ptrdiff_t, int);
typedef void (*dw_transpose_f64_fn)(const double *, ptrdiff_t, double *, ptrdiff_t, ptrdiff_t, ptrdiff_t, int);

typedef struct {
    const char *name;
    dw_taps_f32_fn taps_f32;
    dw_taps_f64_fn taps_f64;
    dw_dot_f32_fn dot_f32;
    dw_dot_f64_fn dot_f64;
    dw_dot_taps_f32_fn dot_taps_f32;
    dw_dot_taps_f64_fn dot_taps_f64;
    dw_transpose_f32_fn transpose_f32;
    dw_transpose_f64_fn transpose_f64;
    dw_row_f32_fn row_f32;
    dw_row_f64_fn row_f64;
    dw_plane_rows_f32_fn plane_rows_f32;
    dw_plane_rows_f64_fn plane_rows_f64;
    dw_copy_f32_fn copy_f32;
    dw_copy_f64_fn copy_f64;
} dw_isa;

#define DW_ISA_ENTRY(isa)                                                                                \
    {#isa, taps_##isa##_f32, taps_##isa##_f64, dot_##isa##_f32, dot_##isa##_f64, dot_taps_##isa##_f32,       \
     dot_taps_##isa##_f64, transpose_##isa##_f32, transpose_##isa##_f64, row_##isa##_f32, row_##isa##_f64, \
     plane_rows_##isa##_f32, plane_rows_##isa##_f64, copy_##isa##_f32, copy_##isa##_f64}

/* Levels from the most portable up. */
static const dw_isa dw_isas[] = {
    DW_ISA_ENTRY(baseline),
#ifdef DW_X86
    DW_ISA_ENTRY(avx2),
    DW_ISA_ENTRY(avx512),
#endif
};
static const int dw_isa_count = (int)(sizeof dw_isas / sizeof dw_isas[0]);
static const dw_isa *dw_active = &dw_isas[0];

/* Whether this CPU (and its OS, which the compiler's check includes) runs level i. */
static int dw_isa_supported(int i)
{
#ifdef DW_X86
    __builtin_cpu_init();
    if (i == 1) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (i == 2) return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return i == 0;
}

static void dw_set_isa(int i) { dw_active = &dw_isas[i]; }

#define dw_taps_float(...) dw_active->taps_f32(__VA_ARGS__)
#define dw_taps_double(...) dw_active->taps_f64(__VA_ARGS__)
#define dw_dot_float(...) dw_active->dot_f32(__VA_ARGS__)
#define dw_dot_double(...) dw_active->dot_f64(__VA_ARGS__)
#define dw_dot_taps_float(...) dw_active->dot_taps_f32(__VA_ARGS__)
#define dw_dot_taps_double(...) dw_active->dot_taps_f64(__VA_ARGS__)
#define dw_transpose_float(...) dw_active->transpose_f32(__VA_ARGS__)
#define dw_transpose_double(...) dw_active->transpose_f64(__VA_ARGS__)
#define dw_row_float(...) dw_active->row_f32(__VA_ARGS__)
#define dw_row_double(...) dw_active->row_f64(__VA_ARGS__)
#define dw_plane_rows_float(...) dw_active->plane_rows_f32(__VA_ARGS__)
#define dw_plane_rows_double(...) dw_active->plane_rows_f64(__VA_ARGS__)
#define dw_copy_float(...) dw_active->copy_f32(__VA_ARGS__)
#define dw_copy_double(...) dw_active->copy_f64(__VA_ARGS__)

#endif
