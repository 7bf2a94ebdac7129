/* Bounds assertions around the micro-kernels, compiled in only by the debug build (DWCONV_DEBUG=1
 * defines the DWCONV_DEBUG macro). The release build gets empty macros and the plain dispatch of
 * _microkernels.h: it pays nothing.
 *
 * The Cython code registers each buffer it hands to the micro-kernels for the duration of a call
 * (dw_bounds_add / dw_bounds_remove), and every micro-kernel entry point is wrapped: before it
 * runs, the first and the last element it reads and writes, worked out from its counts and strides
 * as its comment in _microkernels_body.h defines them, must lie inside one registered buffer (a
 * writable one for what it writes). Otherwise the process aborts with a message naming the
 * micro-kernel, the argument and the offending range, before anything is touched.
 *
 * Concurrent calls share one registry, so an access is accepted inside any live buffer: an overrun
 * goes unnoticed only if it falls wholly inside another call's buffer.
 */
#ifndef DWCONV_BOUNDS_H
#define DWCONV_BOUNDS_H

#include "_microkernels.h"

#ifndef DWCONV_DEBUG

#define dw_bounds_add(begin, nbytes, writable) ((void)0)
#define dw_bounds_remove(begin, nbytes, writable) ((void)0)
#define dw_bounds_span(what, begin, nbytes, writes) ((void)0)

#else

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    const char *begin, *end;
    int writable;
} dw_buffer;

enum { DW_MAX_BUFFERS = 4096 };
static dw_buffer dw_buffers[DW_MAX_BUFFERS];
static int dw_n_buffers;
static char dw_buffers_busy; /* a spin lock: the registry is touched a few times per call */

static void dw_buffers_lock(void)
{
    while (__atomic_test_and_set(&dw_buffers_busy, __ATOMIC_ACQUIRE)) {
    }
}

static void dw_buffers_unlock(void) { __atomic_clear(&dw_buffers_busy, __ATOMIC_RELEASE); }

static void dw_bounds_fail(const char *what, const void *begin, const void *end)
{
    fprintf(stderr, "dwconv: bounds check failed: %s [%p, %p)\n", what, begin, end);
    fflush(stderr);
    abort();
}

static void dw_bounds_add(const void *begin, ptrdiff_t nbytes, int writable)
{
    dw_buffers_lock();
    if (dw_n_buffers == DW_MAX_BUFFERS) dw_bounds_fail("registry full, adding", begin, (const char *)begin + nbytes);
    dw_buffers[dw_n_buffers].begin = (const char *)begin;
    dw_buffers[dw_n_buffers].end = (const char *)begin + nbytes;
    dw_buffers[dw_n_buffers].writable = writable;
    dw_n_buffers++;
    dw_buffers_unlock();
}

static void dw_bounds_remove(const void *begin, ptrdiff_t nbytes, int writable)
{
    dw_buffers_lock();
    for (int i = dw_n_buffers - 1; i >= 0; i--)
        if (dw_buffers[i].begin == (const char *)begin && dw_buffers[i].end == (const char *)begin + nbytes &&
            dw_buffers[i].writable == writable) {
            dw_buffers[i] = dw_buffers[--dw_n_buffers];
            dw_buffers_unlock();
            return;
        }
    dw_bounds_fail("removing a buffer never added", begin, (const char *)begin + nbytes);
}

/* Abort unless the elements base[sum_k i_k*stride[k]], i_k < count[k], all lie in one registered
 * buffer (a writable one when `writes`). No element is accessed when a count is 0. */
static void dw_bounds_check(const char *what, const void *base, size_t elsize, int writes, int n,
                            const ptrdiff_t *count, const ptrdiff_t *stride)
{
    ptrdiff_t lo = 0, hi = 0;
    for (int k = 0; k < n; k++) {
        if (count[k] <= 0) return;
        const ptrdiff_t span = (count[k] - 1) * stride[k];
        if (span < 0) lo += span; else hi += span;
    }
    const char *first = (const char *)base + lo * (ptrdiff_t)elsize;
    const char *end = (const char *)base + (hi + 1) * (ptrdiff_t)elsize;
    int inside = 0;
    dw_buffers_lock();
    for (int i = 0; i < dw_n_buffers && !inside; i++)
        inside = dw_buffers[i].begin <= first && end <= dw_buffers[i].end && (dw_buffers[i].writable || !writes);
    dw_buffers_unlock();
    if (!inside) {
        char message[160];
        snprintf(message, sizeof message, "%s elements [%td, %td] of %p %s", what, lo, hi, base,
                 writes ? "written outside every writable buffer of the call" : "read outside every buffer of the call");
        dw_bounds_fail(message, first, end);
    }
}

/* Abort unless bytes [begin, begin + nbytes) lie in one registered buffer (a writable one when
 * `writes`): for the copies the Cython code makes itself (the forward's rings). */
static void dw_bounds_span(const char *what, const void *begin, ptrdiff_t nbytes, int writes)
{
    const ptrdiff_t count[1] = {nbytes}, stride[1] = {1};
    dw_bounds_check(what, begin, 1, writes, 1, count, stride);
}

#define DW_CHECK(what, base, T, writes, ...)                                                             \
    do {                                                                                                 \
        const ptrdiff_t dw_counts_strides_[] = {__VA_ARGS__};                                            \
        const int dw_n_ = (int)(sizeof dw_counts_strides_ / sizeof dw_counts_strides_[0] / 2);           \
        dw_bounds_check(what, base, sizeof(T), writes, dw_n_, dw_counts_strides_, dw_counts_strides_ + dw_n_); \
    } while (0)

/* The flat-plane kernels read, for each tap, the source elements of its mask's set bits only: the
 * number of pixels from the first set bit of `mask` (bits [0, npix)) to its last (0 when none is
 * set), the first in *first. */
static ptrdiff_t dw_mask_span(const unsigned char *mask, ptrdiff_t npix, ptrdiff_t *first)
{
    ptrdiff_t last = -1;
    *first = -1;
    for (ptrdiff_t o = 0; o < npix; o++)
        if (mask[o / 8] >> (o % 8) & 1) {
            if (*first < 0) *first = o;
            last = o;
        }
    return *first < 0 ? 0 : last - *first + 1;
}
/* The checking twin of each dispatched entry point, for element type T (suffix f32 or f64); the
 * index formulas are those of the micro-kernels' comments. Arguments: counts first, then strides. */
#define DW_CHECKED_KERNELS(T, sfx)                                                                       \
    static void dw_checked_taps_##sfx(const T *src, ptrdiff_t src_row, ptrdiff_t src_pix, ptrdiff_t src_c,  \
                                      ptrdiff_t src_a, ptrdiff_t src_b, const T *w, ptrdiff_t w_c, ptrdiff_t w_a, \
                                      ptrdiff_t w_b, const T *bias, ptrdiff_t bias_c, T *dst, ptrdiff_t dst_row, \
                                      ptrdiff_t dst_pix, ptrdiff_t dst_c, ptrdiff_t na, ptrdiff_t nb,           \
                                      ptrdiff_t nrows, ptrdiff_t npix, ptrdiff_t nc, int accumulate, int nt)   \
    {                                                                                                    \
        DW_CHECK("taps: src", src, T, 0, nrows, npix, na, nb, nc, src_row, src_pix, src_a, src_b, src_c); \
        DW_CHECK("taps: w", w, T, 0, nrows * npix, na, nb, nc, 0, w_a, w_b, w_c);                        \
        if (bias && !accumulate) DW_CHECK("taps: bias", bias, T, 0, nrows * npix, nc, 0, bias_c);        \
        DW_CHECK("taps: dst", dst, T, 1, nrows, npix, nc, dst_row, dst_pix, dst_c);                      \
        dw_active->taps_##sfx(src, src_row, src_pix, src_c, src_a, src_b, w, w_c, w_a, w_b, bias, bias_c, dst, \
                              dst_row, dst_pix, dst_c, na, nb, nrows, npix, nc, accumulate, nt);         \
    }                                                                                                    \
    static void dw_checked_dot_##sfx(const T *src, ptrdiff_t src_pix, ptrdiff_t src_c, const T *dy,      \
                                     ptrdiff_t dy_pix, ptrdiff_t dy_c, T *acc, ptrdiff_t acc_c, ptrdiff_t npix, \
                                     ptrdiff_t nc)                                                       \
    {                                                                                                    \
        if (src) DW_CHECK("dot: src", src, T, 0, npix, nc, src_pix, src_c);                              \
        DW_CHECK("dot: dy", dy, T, 0, npix, nc, dy_pix, dy_c);                                           \
        DW_CHECK("dot: acc", acc, T, 1, nc, acc_c);                                                      \
        dw_active->dot_##sfx(src, src_pix, src_c, dy, dy_pix, dy_c, acc, acc_c, npix, nc);               \
    }                                                                                                    \
    static void dw_checked_dot_taps_##sfx(const T *src, ptrdiff_t src_pix, ptrdiff_t src_tap, const T *dy, \
                                          ptrdiff_t dy_pix, T *acc, ptrdiff_t acc_tap, ptrdiff_t ntap,     \
                                          ptrdiff_t npix, ptrdiff_t nc)                                  \
    {                                                                                                    \
        DW_CHECK("dot_taps: src", src, T, 0, npix, ntap, nc, src_pix, src_tap, 1);                       \
        DW_CHECK("dot_taps: dy", dy, T, 0, ntap, npix, nc, 0, dy_pix, 1);                                \
        DW_CHECK("dot_taps: acc", acc, T, 1, ntap, nc, acc_tap, 1);                                      \
        dw_active->dot_taps_##sfx(src, src_pix, src_tap, dy, dy_pix, acc, acc_tap, ntap, npix, nc);      \
    }                                                                                                    \
    static int dw_checked_dot_window_##sfx(const T *const *rows, const T *const *dys, ptrdiff_t nrows, ptrdiff_t off, \
                                           ptrdiff_t src_pix, ptrdiff_t src_tap, ptrdiff_t dy_pix, T *acc,     \
                                           ptrdiff_t acc_tap, T *bias_acc, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t npix, \
                                           ptrdiff_t nc, int edges)                                      \
    {                                                                                                    \
        /* from the first pixel's first tap read to the last pixel's last (edges: taps left out) */     \
        const ptrdiff_t left = (edges & DW_WINDOW_LEFT) != 0, right = (edges & DW_WINDOW_RIGHT) != 0;   \
        for (ptrdiff_t j = 0; j < nrows && npix > 0; j++) {                                              \
            for (ptrdiff_t a = 0; a < kh; a++)                                                           \
                DW_CHECK("dot_window: rows[j*kh + a]", rows[j * kh + a] + off + left * src_tap, T, 0,    \
                         (npix - 1) * src_pix + (kw - 1 - left - right) * src_tap + nc, 1);               \
            DW_CHECK("dot_window: dys[j]", dys[j], T, 0, npix, nc, dy_pix, 1);                           \
        }                                                                                                \
        DW_CHECK("dot_window: acc", acc, T, 1, kh * kw, nc, acc_tap, 1);                                 \
        if (bias_acc) DW_CHECK("dot_window: bias_acc", bias_acc, T, 1, nc, 1);                           \
        return dw_active->dot_window_##sfx(rows, dys, nrows, off, src_pix, src_tap, dy_pix, acc, acc_tap,   \
                                           bias_acc, kh, kw, npix, nc, edges);                           \
    }                                                                                                    \
    static void dw_checked_transpose_##sfx(const T *src, ptrdiff_t src_b, T *dst, ptrdiff_t dst_a, ptrdiff_t na, \
                                           ptrdiff_t nb, int nt)                                                 \
    {                                                                                                    \
        DW_CHECK("transpose: src", src, T, 0, nb, na, src_b, 1);                                         \
        DW_CHECK("transpose: dst", dst, T, 1, na, nb, dst_a, 1);                                         \
        dw_active->transpose_##sfx(src, src_b, dst, dst_a, na, nb, nt);                                      \
    }                                                                                                    \
    static void dw_checked_row_##sfx(const T *const *rows, ptrdiff_t off, ptrdiff_t src_pix, ptrdiff_t kh,   \
                                     ptrdiff_t kw, ptrdiff_t sw, ptrdiff_t dil_w, const T *w, ptrdiff_t w_tap, \
                                     const T *bias, T *dst, ptrdiff_t dst_pix, ptrdiff_t npix, ptrdiff_t nc, int nt) \
    {                                                                                                    \
        /* a stride-2 plane reads one element past each vector's last pixel */                           \
        const ptrdiff_t past = nc == 1 && sw == 2;                                                       \
        for (ptrdiff_t a = 0; a < kh; a++)                                                               \
            DW_CHECK("row: rows[a]", rows[a] + off, T, 0, npix, kw, nc + past, sw * src_pix, dil_w * src_pix, 1); \
        DW_CHECK("row: w", w, T, 0, kh * kw, nc, w_tap, 1);                                              \
        if (bias) DW_CHECK("row: bias", bias, T, 0, nc, 1);                                              \
        DW_CHECK("row: dst", dst, T, 1, npix, nc, dst_pix, 1);                                           \
        dw_active->row_##sfx(rows, off, src_pix, kh, kw, sw, dil_w, w, w_tap, bias, dst, dst_pix, npix, nc, nt); \
    }                                                                                                    \
    static void dw_checked_row_edge_##sfx(const T *const *rows, ptrdiff_t off, ptrdiff_t src_tap, ptrdiff_t kh, \
                                          ptrdiff_t nb, const T *w, ptrdiff_t w_row, ptrdiff_t w_tap, const T *bias, \
                                          T *dst, ptrdiff_t nc, int nt)                                  \
    {                                                                                                    \
        for (ptrdiff_t a = 0; a < kh; a++) DW_CHECK("row_edge: rows[a]", rows[a] + off, T, 0, nb, nc, src_tap, 1); \
        DW_CHECK("row_edge: w", w, T, 0, kh, nb, nc, w_row, w_tap, 1);                                   \
        if (bias) DW_CHECK("row_edge: bias", bias, T, 0, nc, 1);                                         \
        DW_CHECK("row_edge: dst", dst, T, 1, nc, 1);                                                     \
        dw_active->row_edge_##sfx(rows, off, src_tap, kh, nb, w, w_row, w_tap, bias, dst, nc, nt);       \
    }                                                                                                    \
    static void dw_checked_plane_rows_##sfx(const T *const *rows, ptrdiff_t off, ptrdiff_t kh, ptrdiff_t kw,     \
                                            ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t dil_w, const T *w, ptrdiff_t w_tap, const T *bias, \
                                            ptrdiff_t nc, T *dst, ptrdiff_t dst_row, ptrdiff_t npix, int nt) \
    {                                                                                                    \
        /* (a stride-2 vector reads one element past its last pixel) */                                  \
        for (ptrdiff_t i = 0; i < (DW_PLANE_ROWS - 1) * sh + kh; i++)                                    \
            DW_CHECK("plane_rows: rows[i]", rows[i] + off, T, 0, npix, kw, 1 + (sw == 2), sw, dil_w, 1);  \
        DW_CHECK("plane_rows: w", w, T, 0, kh * kw, nc, w_tap, 1);                                       \
        if (bias) DW_CHECK("plane_rows: bias", bias, T, 0, nc, 1);                                       \
        DW_CHECK("plane_rows: dst", dst, T, 1, DW_PLANE_ROWS, npix, dst_row, 1);                         \
        dw_active->plane_rows_##sfx(rows, off, kh, kw, sh, sw, dil_w, w, w_tap, bias, nc, dst, dst_row, npix, nt); \
    }                                                                                                    \
    static void dw_checked_flat_##sfx(const T *src, ptrdiff_t src_plane, const ptrdiff_t *off,                \
                                      const unsigned char *masks, ptrdiff_t mask_row, ptrdiff_t ntaps, const T *w, \
                                      ptrdiff_t w_plane, ptrdiff_t w_tap, const T *bias, ptrdiff_t bias_plane,  \
                                      T *dst, ptrdiff_t dst_plane, ptrdiff_t npix, ptrdiff_t np, int nt)         \
    {                                                                                                    \
        for (ptrdiff_t t = 0; t < ntaps; t++) {                                                          \
            ptrdiff_t first, n = dw_mask_span(masks + t * mask_row, npix, &first);                       \
            if (n) DW_CHECK("flat: src", src + off[t] + first, T, 0, np, n, src_plane, 1);               \
        }                                                                                                \
        DW_CHECK("flat: w", w, T, 0, np, ntaps, w_plane, w_tap);                                         \
        if (bias) DW_CHECK("flat: bias", bias, T, 0, np, bias_plane);                                    \
        DW_CHECK("flat: dst", dst, T, 1, np, npix, dst_plane, 1);                                        \
        dw_active->flat_##sfx(src, src_plane, off, masks, mask_row, ntaps, w, w_plane, w_tap, bias, bias_plane, dst, \
                              dst_plane, npix, np, nt);                                                  \
    }                                                                                                    \
    static void dw_checked_flat_dot_##sfx(const T *src, ptrdiff_t src_plane, ptrdiff_t src_image, const ptrdiff_t *off, \
                                          const unsigned char *masks, ptrdiff_t mask_row, ptrdiff_t ntaps, \
                                          const T *dy, ptrdiff_t dy_plane, ptrdiff_t dy_image, T *acc,   \
                                          ptrdiff_t acc_tap, T *bias_acc, ptrdiff_t npix, ptrdiff_t np,  \
                                          ptrdiff_t n_images)                                            \
    {                                                                                                    \
        for (ptrdiff_t t = 0; t < ntaps; t++) {                                                          \
            ptrdiff_t first, n = dw_mask_span(masks + t * mask_row, npix, &first);                       \
            if (n) DW_CHECK("flat_dot: src", src + off[t] + first, T, 0, n_images, np, n, src_image, src_plane, 1); \
        }                                                                                                \
        DW_CHECK("flat_dot: dy", dy, T, 0, n_images, np, npix, dy_image, dy_plane, 1);                   \
        DW_CHECK("flat_dot: acc", acc, T, 1, ntaps, np, acc_tap, 1);                                     \
        if (bias_acc) DW_CHECK("flat_dot: bias_acc", bias_acc, T, 1, np, 1);                             \
        dw_active->flat_dot_##sfx(src, src_plane, src_image, off, masks, mask_row, ntaps, dy, dy_plane, dy_image, acc, \
                                  acc_tap, bias_acc, npix, np, n_images);                               \
    }                                                                                                    \
    static void dw_checked_copy_##sfx(T *dst, ptrdiff_t dst_pix, const T *src, ptrdiff_t src_pix, ptrdiff_t npix, \
                                      ptrdiff_t nc)                                                      \
    {                                                                                                    \
        DW_CHECK("copy: src", src, T, 0, npix, nc, src_pix, 1);                                          \
        DW_CHECK("copy: dst", dst, T, 1, npix, nc, dst_pix, 1);                                          \
        dw_active->copy_##sfx(dst, dst_pix, src, src_pix, npix, nc);                                     \
    }

DW_CHECKED_KERNELS(float, f32)
DW_CHECKED_KERNELS(double, f64)

/* (float only, as the row tiles are; they read inside the planes only, under masks of their own) */
static void dw_checked_flat_rows_f32(const float *src, ptrdiff_t src_plane, ptrdiff_t height, ptrdiff_t width,
                                     ptrdiff_t pt, ptrdiff_t pl, ptrdiff_t k, ptrdiff_t sw, const float *w,
                                     ptrdiff_t w_plane, ptrdiff_t w_tap, const float *bias, ptrdiff_t bias_plane,
                                     float *dst, ptrdiff_t dst_plane, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t np, int nt)
{
    DW_CHECK("flat_rows: src", src, float, 0, np, height * width, src_plane, 1);
    DW_CHECK("flat_rows: w", w, float, 0, np, k * k, w_plane, w_tap);
    if (bias) DW_CHECK("flat_rows: bias", bias, float, 0, np, bias_plane);
    DW_CHECK("flat_rows: dst", dst, float, 1, np, OH * OW, dst_plane, 1);
    dw_active->flat_rows_f32(src, src_plane, height, width, pt, pl, k, sw, w, w_plane, w_tap, bias, bias_plane, dst,
                             dst_plane, OH, OW, np, nt);
}

/* (float only, as the plane groups are; they read inside the planes only, under masks of their own) */
static void dw_checked_flat_groups_f32(const float *src, const dw_flat_group *group, ptrdiff_t npix, ptrdiff_t ntaps,
                                       const float *w, ptrdiff_t w_tap, const float *bias, float *dst, ptrdiff_t np,
                                       ptrdiff_t n_images, ptrdiff_t image_step, int nt)
{
    DW_CHECK("flat_groups: src", src, float, 0, n_images, np * npix, image_step, 1);
    DW_CHECK("flat_groups: w", w, float, 0, ntaps, np, w_tap, 1);
    if (bias) DW_CHECK("flat_groups: bias", bias, float, 0, np, 1);
    DW_CHECK("flat_groups: dst", dst, float, 1, n_images, np * npix, image_step, 1);
    dw_active->flat_groups_f32(src, group, npix, ntaps, w, w_tap, bias, dst, np, n_images, image_step, nt);
}

/* (float only, as the strided gradients are; they read inside the planes only, under masks of their own) */
static void dw_checked_flat_input_grad_s2_f32(const float *dy, ptrdiff_t dy_plane, ptrdiff_t OH, ptrdiff_t OW,
                                              ptrdiff_t pt, ptrdiff_t pl, const float *w, ptrdiff_t w_plane,
                                              ptrdiff_t w_tap, float *dx, ptrdiff_t dx_plane, ptrdiff_t height,
                                              ptrdiff_t width, ptrdiff_t np)
{
    DW_CHECK("flat_input_grad_s2: dy", dy, float, 0, np, OH * OW, dy_plane, 1);
    DW_CHECK("flat_input_grad_s2: w", w, float, 0, np, 9, w_plane, w_tap);
    DW_CHECK("flat_input_grad_s2: dx", dx, float, 1, np, height * width, dx_plane, 1);
    dw_active->flat_input_grad_s2_f32(dy, dy_plane, OH, OW, pt, pl, w, w_plane, w_tap, dx, dx_plane, height, width, np);
}

/* The checks of a filter gradient along the rows (the arguments of dw_flat_dot_rows_f32_fn) named
 * `name`, of kernels of `taps` taps. */
#define DW_CHECK_FLAT_DOT_ROWS(name, taps)                                                               \
    DW_CHECK(name ": src", src, float, 0, n_images, np, height * width, src_image, src_plane, 1);        \
    DW_CHECK(name ": dy", dy, float, 0, n_images, np, OH * OW, dy_image, dy_plane, 1);                  \
    DW_CHECK(name ": acc", acc, float, 1, taps, np, acc_tap, 1);                                        \
    if (bias_acc) DW_CHECK(name ": bias_acc", bias_acc, float, 1, np, 1)

/* The checked filter gradients along the rows (dw_flat_dot_rows_f32_fn: flat_dot_s2, flat_dot_narrow,
 * flat_dot_rolling), each around its table entry `name`, of 3x3 kernels. */
#define DW_CHECKED_FLAT_DOT_ROWS(name)                                                                        \
    static void dw_checked_##name##_f32(const float *src, ptrdiff_t src_plane, ptrdiff_t src_image,             \
                                        ptrdiff_t height, ptrdiff_t width, ptrdiff_t pt, ptrdiff_t pl,         \
                                        const float *dy, ptrdiff_t dy_plane, ptrdiff_t dy_image, ptrdiff_t OH, \
                                        ptrdiff_t OW, float *acc, ptrdiff_t acc_tap, float *bias_acc,          \
                                        ptrdiff_t np, ptrdiff_t n_images)                                      \
    {                                                                                                         \
        DW_CHECK_FLAT_DOT_ROWS(#name, 9);                                                                      \
        dw_active->name##_f32(src, src_plane, src_image, height, width, pt, pl, dy, dy_plane, dy_image, OH, OW, \
                              acc, acc_tap, bias_acc, np, n_images);                                          \
    }
DW_CHECKED_FLAT_DOT_ROWS(flat_dot_s2)
DW_CHECKED_FLAT_DOT_ROWS(flat_dot_narrow)
DW_CHECKED_FLAT_DOT_ROWS(flat_dot_rolling)
#undef DW_CHECKED_FLAT_DOT_ROWS

/* flat_dot_shifted's: the same, and the kernel's size k. */
static void dw_checked_flat_dot_shifted_f32(const float *src, ptrdiff_t src_plane, ptrdiff_t src_image,
                                            ptrdiff_t height, ptrdiff_t width, ptrdiff_t pt, ptrdiff_t pl,
                                            const float *dy, ptrdiff_t dy_plane, ptrdiff_t dy_image, ptrdiff_t OH,
                                            ptrdiff_t OW, float *acc, ptrdiff_t acc_tap, float *bias_acc,
                                            ptrdiff_t np, ptrdiff_t n_images, ptrdiff_t k)
{
    DW_CHECK_FLAT_DOT_ROWS("flat_dot_shifted", k * k);
    dw_active->flat_dot_shifted_f32(src, src_plane, src_image, height, width, pt, pl, dy, dy_plane, dy_image, OH, OW,
                                    acc, acc_tap, bias_acc, np, n_images, k);
}
#undef DW_CHECK_FLAT_DOT_ROWS

/* The integer pixels' conversions (_microkernels_convert.h): elements of 1 or 2 bytes. */
static size_t dw_elem_size(int type) { return type == DW_ELEM_U8 ? 1 : 2; }

static void dw_checked_widen(float *dst, ptrdiff_t dst_pix, ptrdiff_t dst_c, const void *src, int type,
                             ptrdiff_t src_pix, ptrdiff_t npix, ptrdiff_t nc)
{
    const ptrdiff_t src_counts_strides[] = {npix, nc, src_pix, 1};
    dw_bounds_check("widen: src", src, dw_elem_size(type), 0, 2, src_counts_strides, src_counts_strides + 2);
    DW_CHECK("widen: dst", dst, float, 1, npix, nc, dst_pix, dst_c);
    dw_active->widen(dst, dst_pix, dst_c, src, type, src_pix, npix, nc);
}

static void dw_checked_narrow(void *dst, int type, ptrdiff_t dst_pix, const float *src, ptrdiff_t src_pix,
                              ptrdiff_t npix, ptrdiff_t nc)
{
    const ptrdiff_t dst_counts_strides[] = {npix, nc, dst_pix, 1};
    DW_CHECK("narrow: src", src, float, 0, npix, nc, src_pix, 1);
    dw_bounds_check("narrow: dst", dst, dw_elem_size(type), 1, 2, dst_counts_strides, dst_counts_strides + 2);
    dw_active->narrow(dst, type, dst_pix, src, src_pix, npix, nc);
}

/* The separable filter's passes (_microkernels_separable.h): elements of `type`, the float type T's
 * (elsize bytes) or integer pixels'. */
#define DW_CHECKED_SEPARABLE(T, sfx)                                                                     \
    static void dw_checked_sep_columns_##sfx(const void *const *rows, int type, const T *k, ptrdiff_t n_taps, \
                                             int fold, T *sums, ptrdiff_t n)                             \
    {                                                                                                    \
        const ptrdiff_t row_counts_strides[] = {n, 1};                                                   \
        const size_t elsize = type == DW_ELEM_FLOAT ? sizeof(T) : dw_elem_size(type);                    \
        for (ptrdiff_t a = 0; a < n_taps; a++)                                                           \
            dw_bounds_check("sep_columns: rows[a]", rows[a], elsize, 0, 1, row_counts_strides, row_counts_strides + 1); \
        DW_CHECK("sep_columns: k", k, T, 0, n_taps, 1);                                                  \
        DW_CHECK("sep_columns: sums", sums, T, 1, n, 1);                                                 \
        dw_active->sep_columns_##sfx(rows, type, k, n_taps, fold, sums, n);                              \
    }                                                                                                    \
    static void dw_checked_sep_columns_pair_##sfx(const void *const *rows, int type, const T *k, ptrdiff_t n_taps, \
                                                  T *sums0, T *sums1, ptrdiff_t n)                       \
    {                                                                                                    \
        const ptrdiff_t row_counts_strides[] = {n, 1};                                                   \
        const size_t elsize = type == DW_ELEM_FLOAT ? sizeof(T) : dw_elem_size(type);                    \
        for (ptrdiff_t a = 0; a <= n_taps; a++)                                                          \
            dw_bounds_check("sep_columns_pair: rows[a]", rows[a], elsize, 0, 1, row_counts_strides, row_counts_strides + 1); \
        DW_CHECK("sep_columns_pair: k", k, T, 0, n_taps, 1);                                             \
        DW_CHECK("sep_columns_pair: sums0", sums0, T, 1, n, 1);                                          \
        DW_CHECK("sep_columns_pair: sums1", sums1, T, 1, n, 1);                                          \
        dw_active->sep_columns_pair_##sfx(rows, type, k, n_taps, sums0, sums1, n);                       \
    }                                                                                                    \
    static void dw_checked_sep_rows_##sfx(const T *sums, ptrdiff_t tap_step, const T *k, ptrdiff_t n_taps, int fold, \
                                          T delta, void *dst, int type, int nt, ptrdiff_t n)             \
    {                                                                                                    \
        const ptrdiff_t dst_counts_strides[] = {n, 1};                                                   \
        const size_t elsize = type == DW_ELEM_FLOAT ? sizeof(T) : dw_elem_size(type);                    \
        DW_CHECK("sep_rows: sums", sums, T, 0, n, n_taps, 1, tap_step);                                  \
        DW_CHECK("sep_rows: k", k, T, 0, n_taps, 1);                                                     \
        dw_bounds_check("sep_rows: dst", dst, elsize, 1, 1, dst_counts_strides, dst_counts_strides + 1); \
        dw_active->sep_rows_##sfx(sums, tap_step, k, n_taps, fold, delta, dst, type, nt, n);                \
    }

DW_CHECKED_SEPARABLE(float, f32)
DW_CHECKED_SEPARABLE(double, f64)

/* The spectral rows (float only): a row's spectra are pairs of segments of 2L floats per channel. */
static ptrdiff_t dw_spectra_floats(const dw_spectral *s, ptrdiff_t nc)
{
    return nc * ((s->n_segments + 1) / 2) * 2 * s->length;
}
static void dw_checked_spectral_filter_f32(const float *w, ptrdiff_t w_tap, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t nc,
                                           const dw_spectral *s, void *spectra)
{
    DW_CHECK("spectral_filter: w", w, float, 0, kh * kw, nc, w_tap, 1);
    DW_CHECK("spectral_filter: spectra", (float *)spectra, float, 1, nc * kh * 2 * s->length, 1);
    dw_active->spectral_filter_f32(w, w_tap, kh, kw, nc, s, spectra);
}
static void dw_checked_spectral_source_f32(const float *row, ptrdiff_t pix, ptrdiff_t nc, const dw_spectral *s,
                                           ptrdiff_t span, ptrdiff_t end, void *spectra)
{
    DW_CHECK("spectral_source: row", row, float, 0, end, nc, pix, 1);
    DW_CHECK("spectral_source: spectra", (float *)spectra, float, 1, dw_spectra_floats(s, nc), 1);
    dw_active->spectral_source_f32(row, pix, nc, s, span, end, spectra);
}
static void dw_checked_spectral_correlate_f32(const void *const *sources, const void *const *dys, ptrdiff_t kh,
                                              ptrdiff_t rows, ptrdiff_t nc, const dw_spectral *s, void *grads)
{
    for (ptrdiff_t a = 0; a < kh + rows - 1; a++)
        if (sources[a]) DW_CHECK("spectral_correlate: sources[a]", (const float *)sources[a], float, 0, dw_spectra_floats(s, nc), 1);
    for (ptrdiff_t r = 0; r < rows; r++)
        DW_CHECK("spectral_correlate: dys[r]", (const float *)dys[r], float, 0, dw_spectra_floats(s, nc), 1);
    DW_CHECK("spectral_correlate: grads", (float *)grads, float, 1, nc * kh * (2 * s->length + 1), 1);
    dw_active->spectral_correlate_f32(sources, dys, kh, rows, nc, s, grads);
}
static void dw_checked_spectral_filter_grad_f32(void *grads, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t nc,
                                                const dw_spectral *s, float *dst, ptrdiff_t dst_tap)
{
    DW_CHECK("spectral_filter_grad: grads", (float *)grads, float, 1, nc * kh * (2 * s->length + 1), 1);
    DW_CHECK("spectral_filter_grad: dst", dst, float, 1, kh * kw, nc, dst_tap, 1);
    dw_active->spectral_filter_grad_f32(grads, kh, kw, nc, s, dst, dst_tap);
}
static void dw_checked_spectral_rows_f32(const void *const *sources, const void *filters, ptrdiff_t kh, ptrdiff_t rows,
                                         ptrdiff_t nc, const dw_spectral *s, const float *bias, void *sums, float *dst,
                                         ptrdiff_t dst_row, ptrdiff_t dst_pix)
{
    for (ptrdiff_t a = 0; a < kh + rows - 1; a++)
        if (sources[a]) DW_CHECK("spectral_rows: sources[a]", (const float *)sources[a], float, 0, dw_spectra_floats(s, nc), 1);
    DW_CHECK("spectral_rows: filters", (const float *)filters, float, 0, nc * kh * 2 * s->length, 1);
    if (bias) DW_CHECK("spectral_rows: bias", bias, float, 0, nc, 1);
    DW_CHECK("spectral_rows: sums", (float *)sums, float, 1, rows * 2 * s->length * DW_SPECTRAL_SUM_LANES, 1);
    DW_CHECK("spectral_rows: dst", dst, float, 1, rows, s->n_out, nc, dst_row, dst_pix, 1);
    dw_active->spectral_rows_f32(sources, filters, kh, rows, nc, s, bias, sums, dst, dst_row, dst_pix);
}

#undef dw_taps_float
#undef dw_taps_double
#undef dw_dot_float
#undef dw_dot_double
#undef dw_dot_taps_float
#undef dw_dot_taps_double
#undef dw_dot_window_float
#undef dw_dot_window_double
#undef dw_transpose_float
#undef dw_transpose_double
#undef dw_row_float
#undef dw_row_double
#undef dw_row_edge_float
#undef dw_row_edge_double
#undef dw_copy_float
#undef dw_plane_rows_float
#undef dw_plane_rows_double
#undef dw_copy_double
#undef dw_flat_float
#undef dw_flat_double
#undef dw_flat_rows_float
#undef dw_flat_groups_float
#undef dw_flat_dot_float
#undef dw_widen
#undef dw_narrow
#undef dw_flat_dot_double
#undef dw_flat_input_grad_s2_float
#undef dw_flat_dot_s2_float
#undef dw_flat_dot_narrow_float
#undef dw_flat_dot_rolling_float
#undef dw_flat_dot_shifted_float
#undef dw_sep_columns_float
#undef dw_sep_columns_double
#undef dw_sep_columns_pair_float
#undef dw_sep_columns_pair_double
#undef dw_sep_rows_float
#undef dw_sep_rows_double
#undef dw_spectral_filter_float
#undef dw_spectral_source_float
#undef dw_spectral_rows_float
#undef dw_spectral_correlate_float
#undef dw_spectral_filter_grad_float
#define dw_spectral_correlate_float dw_checked_spectral_correlate_f32
#define dw_spectral_filter_grad_float dw_checked_spectral_filter_grad_f32
#define dw_spectral_filter_float dw_checked_spectral_filter_f32
#define dw_spectral_source_float dw_checked_spectral_source_f32
#define dw_spectral_rows_float dw_checked_spectral_rows_f32
#define dw_sep_columns_float dw_checked_sep_columns_f32
#define dw_sep_columns_double dw_checked_sep_columns_f64
#define dw_sep_columns_pair_float dw_checked_sep_columns_pair_f32
#define dw_sep_columns_pair_double dw_checked_sep_columns_pair_f64
#define dw_sep_rows_float dw_checked_sep_rows_f32
#define dw_sep_rows_double dw_checked_sep_rows_f64
#define dw_flat_dot_float dw_checked_flat_dot_f32
#define dw_flat_dot_double dw_checked_flat_dot_f64
#define dw_flat_input_grad_s2_float dw_checked_flat_input_grad_s2_f32
#define dw_flat_dot_s2_float dw_checked_flat_dot_s2_f32
#define dw_flat_dot_narrow_float dw_checked_flat_dot_narrow_f32
#define dw_flat_dot_rolling_float dw_checked_flat_dot_rolling_f32
#define dw_flat_dot_shifted_float dw_checked_flat_dot_shifted_f32
#define dw_flat_float dw_checked_flat_f32
#define dw_flat_double dw_checked_flat_f64
#define dw_flat_rows_float dw_checked_flat_rows_f32
#define dw_flat_groups_float dw_checked_flat_groups_f32
#define dw_copy_float dw_checked_copy_f32
#define dw_plane_rows_float dw_checked_plane_rows_f32
#define dw_plane_rows_double dw_checked_plane_rows_f64
#define dw_copy_double dw_checked_copy_f64
#define dw_row_float dw_checked_row_f32
#define dw_row_double dw_checked_row_f64
#define dw_row_edge_float dw_checked_row_edge_f32
#define dw_row_edge_double dw_checked_row_edge_f64
#define dw_taps_float dw_checked_taps_f32
#define dw_taps_double dw_checked_taps_f64
#define dw_dot_float dw_checked_dot_f32
#define dw_dot_double dw_checked_dot_f64
#define dw_dot_taps_float dw_checked_dot_taps_f32
#define dw_dot_taps_double dw_checked_dot_taps_f64
#define dw_dot_window_float dw_checked_dot_window_f32
#define dw_dot_window_double dw_checked_dot_window_f64
#define dw_transpose_float dw_checked_transpose_f32
#define dw_transpose_double dw_checked_transpose_f64
#define dw_widen dw_checked_widen
#define dw_narrow dw_checked_narrow

#endif /* DWCONV_DEBUG */
#endif /* DWCONV_BOUNDS_H */
