/* The machine's limits for the benchmark's header (dwconv/_machine.pxi): the floating-point peak of
 * one core, and a copy loop to measure memory and cache bandwidth with.
 *
 * dw_peak_fma(level, iterations, seed) runs DW_PEAK_*_CHAINS independent chains of
 * acc = acc * a + b on full float vectors of the given instruction-set level, `iterations` times
 * each, and returns the sum of all lanes so that the compiler must compute every chain. With a just
 * below 1 and b small, every chain tends to b / (1 - a) = 1000: no overflow, and no denormals, which
 * would be slower.
 *
 * Why so many chains: each multiply-add waits for its chain's previous one (FMA latency, 4-5
 * cycles), and a core retires two per cycle, so about ten chains must be in flight to fill the
 * pipes. AVX2 has 16 vector registers: 12 chains plus a and b; AVX-512 has 32: 16 chains. The
 * chains start from different values, so none can be merged with another.
 *
 * The levels are those of the micro-kernels, in their order (dwconv._kernels.ISA_NAMES):
 *   0 baseline -- plain vector arithmetic, 16 bytes: SSE2 on x86-64 (no FMA: a multiply then an
 *                 add, still 2 flops), NEON on AArch64 (named "neon" there, 2 flops per FMLA lane),
 *                 whatever the compiler targets elsewhere;
 *   1 avx2     -- _mm256_fmadd_ps, 8 floats;
 *   2 avx512   -- _mm512_fmadd_ps, 16 floats.
 * The x86 levels call the FMA intrinsics rather than writing a * b + c, which is fused only
 * under -ffp-contract=fast (GCC's default outside ISO C modes): a peak must not depend on it.
 *
 * dw_peak_copy(level, dst, src, n) copies n bytes in vectors of the level with ordinary stores, as
 * the kernels write their results. Not memcpy: glibc's picks its method by size, and two of them
 * measure something else -- non-temporal stores that bypass the caches above a few MB (so a copy
 * meant to stay in L3 streams to DRAM), and `rep movsb`, which copies buffers at the same offset in
 * their pages at a tenth of the cache's speed on some AMD CPUs (measured: 4-5 GB/s in 4-256 KB
 * pieces on Zen 3).
 */
#ifndef DWCONV_PEAK_H
#define DWCONV_PEAK_H

/* The levels, and whether this CPU runs one, are the micro-kernels' (dw_isas, dw_isa_supported). */
#include "_microkernels.h"

/* Pins a value to this point of the program: the compiler must assume that the empty asm reads and
 * rewrites it, and any memory, and keep it in order with the caller's calls. The FMA loops pass
 * their seed through it on entry and their sum on exit, so their work stays between the caller's
 * timer readings (a serial build had inlined a loop, which has no side effects, and moved it past
 * the closing reading). */
#define DW_PEAK_OPAQUE(v) __asm__ volatile("" : "+m"(v) : : "memory")

#define DW_PEAK_BASELINE_CHAINS 12
#define DW_PEAK_AVX2_CHAINS 12
#define DW_PEAK_AVX512_CHAINS 16

typedef float dw_peak_vec4 __attribute__((vector_size(16)));

static float dw_peak_baseline(int64_t iterations, float seed)
{
    dw_peak_vec4 acc[DW_PEAK_BASELINE_CHAINS];
    DW_PEAK_OPAQUE(seed);
    const dw_peak_vec4 zero = {0};
    const dw_peak_vec4 a = zero + (1.0f - 1e-6f), b = zero + 1e-3f;
    for (int c = 0; c < DW_PEAK_BASELINE_CHAINS; c++) acc[c] = zero + seed * (float)(c + 1);
    for (int64_t i = 0; i < iterations; i++) {
#pragma GCC unroll 16
        for (int c = 0; c < DW_PEAK_BASELINE_CHAINS; c++) acc[c] = acc[c] * a + b;
    }
    float sum = 0.0f;
    for (int c = 0; c < DW_PEAK_BASELINE_CHAINS; c++)
        for (int l = 0; l < 4; l++) sum += acc[c][l];
    DW_PEAK_OPAQUE(sum);
    return sum;
}

#ifdef DW_X86
/* The FMA loop of one x86 level: its vector type, intrinsics (set1, fmadd, storeu) and lanes. */
#define DW_PEAK_FMA_LOOP(name, features, chains, vec, set1, fmadd, storeu, lanes)                       \
    __attribute__((target(features))) static float name(int64_t iterations, float seed)               \
    {                                                                                                  \
        vec acc[chains];                                                                               \
        DW_PEAK_OPAQUE(seed);                                                                          \
        const vec a = set1(1.0f - 1e-6f), b = set1(1e-3f);                                             \
        for (int c = 0; c < chains; c++) acc[c] = set1(seed * (float)(c + 1));                         \
        for (int64_t i = 0; i < iterations; i++) {                                                     \
            _Pragma("GCC unroll 16") for (int c = 0; c < chains; c++) acc[c] = fmadd(acc[c], a, b);    \
        }                                                                                              \
        float out[lanes], sum = 0.0f;                                                                  \
        for (int c = 0; c < chains; c++) {                                                             \
            storeu(out, acc[c]);                                                                       \
            for (int l = 0; l < lanes; l++) sum += out[l];                                             \
        }                                                                                              \
        DW_PEAK_OPAQUE(sum);                                                                           \
        return sum;                                                                                    \
    }

DW_PEAK_FMA_LOOP(dw_peak_avx2, "avx2,fma", DW_PEAK_AVX2_CHAINS, __m256, _mm256_set1_ps, _mm256_fmadd_ps,
                 _mm256_storeu_ps, 8)
DW_PEAK_FMA_LOOP(dw_peak_avx512, "avx512f,avx2,fma", DW_PEAK_AVX512_CHAINS, __m512, _mm512_set1_ps,
                 _mm512_fmadd_ps, _mm512_storeu_ps, 16)
#endif

/* Flops one iteration of level's loop performs: 2 per multiply-add and lane. */
static int64_t dw_peak_flops_per_iteration(int level)
{
    if (level == 1) return 2 * 8 * DW_PEAK_AVX2_CHAINS;
    if (level == 2) return 2 * 16 * DW_PEAK_AVX512_CHAINS;
    return 2 * 4 * DW_PEAK_BASELINE_CHAINS;
}

/* Level must be supported (dw_isa_supported). */
static float dw_peak_fma(int level, int64_t iterations, float seed)
{
#ifdef DW_X86
    if (level == 1) return dw_peak_avx2(iterations, seed);
    if (level == 2) return dw_peak_avx512(iterations, seed);
#endif
    return dw_peak_baseline(iterations, seed);
}

/* dst[0:n] = src[0:n], four vectors of `bytes` bytes a step, then the bytes left one by one. */
#define DW_PEAK_COPY(name, bytes, target)                                                              \
    target static void name(char *dst, const char *src, size_t n)                                     \
    {                                                                                                  \
        typedef char vec __attribute__((vector_size(bytes)));                                          \
        vec a, b, c, d;                                                                                \
        size_t i = 0;                                                                                  \
        for (; i + 4 * bytes <= n; i += 4 * bytes) {                                                   \
            memcpy(&a, src + i, bytes);                                                                \
            memcpy(&b, src + i + bytes, bytes);                                                        \
            memcpy(&c, src + i + 2 * bytes, bytes);                                                    \
            memcpy(&d, src + i + 3 * bytes, bytes);                                                    \
            memcpy(dst + i, &a, bytes);                                                                \
            memcpy(dst + i + bytes, &b, bytes);                                                        \
            memcpy(dst + i + 2 * bytes, &c, bytes);                                                    \
            memcpy(dst + i + 3 * bytes, &d, bytes);                                                    \
            /* a compiler barrier: without it GCC may turn the loop back into a call to memcpy */     \
            __asm__ volatile("" ::: "memory");                                                         \
        }                                                                                              \
        for (; i < n; i++) dst[i] = src[i];                                                            \
    }

DW_PEAK_COPY(dw_peak_copy_baseline, 16, )
#ifdef DW_X86
DW_PEAK_COPY(dw_peak_copy_avx2, 32, __attribute__((target("avx2,fma"))))
DW_PEAK_COPY(dw_peak_copy_avx512, 64, __attribute__((target("avx512f,avx2,fma"))))
#endif

/* Level must be supported (dw_isa_supported). */
static void dw_peak_copy(int level, char *dst, const char *src, size_t n)
{
#ifdef DW_X86
    if (level == 1) {
        dw_peak_copy_avx2(dst, src, n);
        return;
    }
    if (level == 2) {
        dw_peak_copy_avx512(dst, src, n);
        return;
    }
#endif
    dw_peak_copy_baseline(dst, src, n);
}

#endif
