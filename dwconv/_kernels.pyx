# cython: language_level=3
"""Depthwise convolution kernels: scheduling and border handling.

Every function here takes flat C-contiguous buffers and a geometry already validated by
``dwconv._args``, and runs with the GIL released. Three concerns are kept apart:

* scheduling -- which output rows and channel blocks each thread computes (the ``prange`` loops);
* borders -- the forward pass reads rings of source rows with their padding filled in
  (``_rings.pxi``, scheduled by ``_forward.pxi``), so every output row is one uniform run. The
  gradients work out, once per call and per axis (``Axis``), which taps of the kernel land inside
  the source for each coordinate, so no inner loop tests a coordinate; padding modes other than
  zeros add the taps that land in the padding afterwards, over the border pixels only (``Border``);
* arithmetic -- the micro-kernels of ``_microkernels.h``, chosen per instruction set at import.

At stride 1, with one filter per channel, the input gradient over the taps inside the image (zeros
padding's, in every mode) is the forward pass over the output gradient with the filter turned by 180
degrees (``_forward.pxi``: 1.03-4.8x faster than the gather on the suite at batch 16). At strides
over 1 (NHWC, one filter per channel, dilation 1) the pixels of dx fall into phases (their index
modulo the stride), each a forward row over dy with the taps of that phase (``_forward.pxi``);
otherwise it is a gather ("each input pixel sums weighted output-gradient pixels over its valid
taps"). The filter gradient is a reduction, computed in fixed chunks and combined in a fixed order
so that its result does not depend on the number of threads; NCHW planes the forward reads in place
are reduced plane by plane from its lane masks.
"""
from cpython.buffer cimport (PyBUF_ANY_CONTIGUOUS, PyBUF_FORMAT, PyBUF_STRIDED_RO, PyBUF_WRITABLE, PyBuffer_Release,
                             PyObject_GetBuffer)
from cython.parallel cimport prange, threadid
from libc.math cimport M_SQRT1_2, erf, erff, exp, expf, tanh, tanhf
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset, strlen

from dwconv._openmp cimport DW_OPENMP, dw_release_threads, omp_get_max_threads

from dwconv import _names
from dwconv._cache import last_level_cache_bytes

ctypedef fused floating:
    float
    double

cdef extern from "_microkernels.h" nogil:
    ctypedef struct dw_isa:
        const char *name
    ctypedef struct dw_flat_group:
        pass
    const dw_isa dw_isas[]
    const int dw_isa_count
    enum: DW_PLANE_ROWS
    enum: DW_FLAT_ROWS, DW_FLAT_ROWS_5, DW_FLAT_ROWS_NARROW_S2, DW_FLAT_DOT_MAX_TAPS
    enum: DW_WIDE_ROW_PIXELS
    enum: DW_DOT_MAX_TAPS
    enum: DW_FLAT_GROUP_NEAR
    enum: DW_ELEM_FLOAT, DW_ELEM_U8, DW_ELEM_U16, DW_ELEM_I16, DW_ELEM_F16
    const dw_isa *dw_active
    bint dw_isa_supported(int level)
    void dw_set_isa(int level)
    void dw_taps_float(const float *src, Py_ssize_t src_row, Py_ssize_t src_pix, Py_ssize_t src_c,
                       Py_ssize_t src_a, Py_ssize_t src_b, const float *w, Py_ssize_t w_c, Py_ssize_t w_a,
                       Py_ssize_t w_b, const float *bias, Py_ssize_t bias_c, float *dst, Py_ssize_t dst_row,
                       Py_ssize_t dst_pix, Py_ssize_t dst_c, Py_ssize_t na, Py_ssize_t nb, Py_ssize_t nrows,
                       Py_ssize_t npix, Py_ssize_t nc, bint accumulate, bint streaming)
    void dw_taps_double(const double *src, Py_ssize_t src_row, Py_ssize_t src_pix, Py_ssize_t src_c,
                        Py_ssize_t src_a, Py_ssize_t src_b, const double *w, Py_ssize_t w_c, Py_ssize_t w_a,
                        Py_ssize_t w_b, const double *bias, Py_ssize_t bias_c, double *dst, Py_ssize_t dst_row,
                        Py_ssize_t dst_pix, Py_ssize_t dst_c, Py_ssize_t na, Py_ssize_t nb, Py_ssize_t nrows,
                        Py_ssize_t npix, Py_ssize_t nc, bint accumulate, bint streaming)
    void dw_dot_float(const float *src, Py_ssize_t src_pix, Py_ssize_t src_c, const float *dy,
                      Py_ssize_t dy_pix, Py_ssize_t dy_c, float *acc, Py_ssize_t acc_c,
                      Py_ssize_t npix, Py_ssize_t nc)
    void dw_dot_double(const double *src, Py_ssize_t src_pix, Py_ssize_t src_c, const double *dy,
                       Py_ssize_t dy_pix, Py_ssize_t dy_c, double *acc, Py_ssize_t acc_c,
                       Py_ssize_t npix, Py_ssize_t nc)
    void dw_dot_taps_float(const float *src, Py_ssize_t src_pix, Py_ssize_t src_tap, const float *dy,
                           Py_ssize_t dy_pix, float *acc, Py_ssize_t acc_tap, Py_ssize_t ntap, Py_ssize_t npix,
                           Py_ssize_t nc)
    void dw_dot_taps_double(const double *src, Py_ssize_t src_pix, Py_ssize_t src_tap, const double *dy,
                            Py_ssize_t dy_pix, double *acc, Py_ssize_t acc_tap, Py_ssize_t ntap, Py_ssize_t npix,
                            Py_ssize_t nc)
    bint dw_dot_window_float(const float *const *rows, const float *const *dys, Py_ssize_t nrows, Py_ssize_t off,
                             Py_ssize_t src_pix, Py_ssize_t src_tap, Py_ssize_t dy_pix, float *acc, Py_ssize_t acc_tap,
                             float *bias_acc, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t npix, Py_ssize_t nc, int edges)
    bint dw_dot_window_double(const double *const *rows, const double *const *dys, Py_ssize_t nrows, Py_ssize_t off,
                              Py_ssize_t src_pix, Py_ssize_t src_tap, Py_ssize_t dy_pix, double *acc,
                              Py_ssize_t acc_tap, double *bias_acc, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t npix,
                              Py_ssize_t nc, int edges)
    void dw_transpose_float(const float *src, Py_ssize_t src_b, float *dst, Py_ssize_t dst_a, Py_ssize_t na,
                            Py_ssize_t nb, bint streaming)
    void dw_transpose_double(const double *src, Py_ssize_t src_b, double *dst, Py_ssize_t dst_a, Py_ssize_t na,
                             Py_ssize_t nb, bint streaming)
    void dw_copy_float(float *dst, Py_ssize_t dst_pix, const float *src, Py_ssize_t src_pix, Py_ssize_t npix,
                       Py_ssize_t nc)
    void dw_copy_double(double *dst, Py_ssize_t dst_pix, const double *src, Py_ssize_t src_pix, Py_ssize_t npix,
                        Py_ssize_t nc)
    enum: DW_CLAMP_RELU, DW_CLAMP_RELU6, DW_CLAMP_HARD_SWISH
    enum: DW_WINDOW_LEFT, DW_WINDOW_RIGHT, DW_WINDOW_STRIDED, DW_WINDOW_CACHED
    void dw_prefetch(const void *p, Py_ssize_t nbytes)
    void dw_clamp_float(float *p, Py_ssize_t n, int which)
    void dw_clamp_double(double *p, Py_ssize_t n, int which)
    void dw_widen(float *dst, Py_ssize_t dst_pix, Py_ssize_t dst_c, const void *src, int type, Py_ssize_t src_pix,
                  Py_ssize_t npix, Py_ssize_t nc)
    void dw_narrow(void *dst, int type, Py_ssize_t dst_pix, const float *src, Py_ssize_t src_pix, Py_ssize_t npix,
                   Py_ssize_t nc)
    void dw_plane_rows_float(const float *const *rows, Py_ssize_t off, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,
                             Py_ssize_t sw, Py_ssize_t dil_w, const float *w, Py_ssize_t w_tap, const float *bias,
                             Py_ssize_t nc, float *dst, Py_ssize_t dst_row, Py_ssize_t npix, bint streaming)
    void dw_plane_rows_double(const double *const *rows, Py_ssize_t off, Py_ssize_t kh, Py_ssize_t kw,
                              Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dil_w, const double *w, Py_ssize_t w_tap,
                              const double *bias, Py_ssize_t nc, double *dst, Py_ssize_t dst_row, Py_ssize_t npix,
                              bint streaming)
    bint dw_plane_lane_tiles(Py_ssize_t nc, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw)
    bint dw_has_flat()
    bint dw_has_wide_row_tiles()
    bint dw_has_near_groups()
    int dw_narrow_lanes()
    int dw_vector_bytes()
    bint dw_row_lines(Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sw, Py_ssize_t dil_w, Py_ssize_t nc, Py_ssize_t npix)
    bint dw_has_rolling()
    bint dw_has_rolling_dot()
    bint dw_has_dot_shifted()
    bint dw_narrow_rows_within(Py_ssize_t width, Py_ssize_t pl, Py_ssize_t OW, Py_ssize_t lanes)
    bint dw_narrow_s2_pairs(Py_ssize_t width, Py_ssize_t pl, Py_ssize_t OW)
    bint dw_rolling_fits(Py_ssize_t height, Py_ssize_t width, Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t OH,
                         Py_ssize_t OW, Py_ssize_t lanes)
    void dw_flat_float(const float *src, Py_ssize_t src_plane, const Py_ssize_t *off, const unsigned char *masks,
                       Py_ssize_t mask_row, Py_ssize_t ntaps, const float *w, Py_ssize_t w_plane, Py_ssize_t w_tap,
                       const float *bias, Py_ssize_t bias_plane, float *dst, Py_ssize_t dst_plane, Py_ssize_t npix,
                       Py_ssize_t np, bint streaming)
    void dw_flat_double(const double *src, Py_ssize_t src_plane, const Py_ssize_t *off, const unsigned char *masks,
                        Py_ssize_t mask_row, Py_ssize_t ntaps, const double *w, Py_ssize_t w_plane, Py_ssize_t w_tap,
                        const double *bias, Py_ssize_t bias_plane, double *dst, Py_ssize_t dst_plane,
                        Py_ssize_t npix, Py_ssize_t np, bint streaming)
    void dw_flat_rows_float(const float *src, Py_ssize_t src_plane, Py_ssize_t height, Py_ssize_t width, Py_ssize_t pt,
                            Py_ssize_t pl, Py_ssize_t k, Py_ssize_t sw, const float *w, Py_ssize_t w_plane,
                            Py_ssize_t w_tap, const float *bias, Py_ssize_t bias_plane, float *dst,
                            Py_ssize_t dst_plane, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t np, bint streaming)
    void dw_flat_group_masks_float(Py_ssize_t height, Py_ssize_t width, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t dil_h,
                                   Py_ssize_t dil_w, Py_ssize_t pt, Py_ssize_t pl, dw_flat_group *group)
    void dw_flat_groups_float(const float *src, const dw_flat_group *group, Py_ssize_t npix, Py_ssize_t ntaps,
                              const float *w, Py_ssize_t w_tap, const float *bias, float *dst, Py_ssize_t np,
                              Py_ssize_t n_images, Py_ssize_t image_step, bint streaming)
    void dw_flat_dot_float(const float *src, Py_ssize_t src_plane, Py_ssize_t src_image, const Py_ssize_t *off,
                           const unsigned char *masks, Py_ssize_t mask_row, Py_ssize_t ntaps, const float *dy,
                           Py_ssize_t dy_plane, Py_ssize_t dy_image, float *acc, Py_ssize_t acc_tap, float *bias_acc,
                           Py_ssize_t npix, Py_ssize_t np, Py_ssize_t n_images)
    void dw_flat_dot_double(const double *src, Py_ssize_t src_plane, Py_ssize_t src_image, const Py_ssize_t *off,
                            const unsigned char *masks, Py_ssize_t mask_row, Py_ssize_t ntaps, const double *dy,
                            Py_ssize_t dy_plane, Py_ssize_t dy_image, double *acc, Py_ssize_t acc_tap,
                            double *bias_acc, Py_ssize_t npix, Py_ssize_t np, Py_ssize_t n_images)
    void dw_flat_input_grad_s2_float(const float *dy, Py_ssize_t dy_plane, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t pt,
                                     Py_ssize_t pl, const float *w, Py_ssize_t w_plane, Py_ssize_t w_tap, float *dx,
                                     Py_ssize_t dx_plane, Py_ssize_t height, Py_ssize_t width, Py_ssize_t np)
    void dw_flat_dot_s2_float(const float *src, Py_ssize_t src_plane, Py_ssize_t src_image, Py_ssize_t height,
                              Py_ssize_t width, Py_ssize_t pt, Py_ssize_t pl, const float *dy, Py_ssize_t dy_plane,
                              Py_ssize_t dy_image, Py_ssize_t OH, Py_ssize_t OW, float *acc, Py_ssize_t acc_tap,
                              float *bias_acc, Py_ssize_t np, Py_ssize_t n_images)
    void dw_flat_dot_narrow_float(const float *src, Py_ssize_t src_plane, Py_ssize_t src_image, Py_ssize_t height,
                                  Py_ssize_t width, Py_ssize_t pt, Py_ssize_t pl, const float *dy, Py_ssize_t dy_plane,
                                  Py_ssize_t dy_image, Py_ssize_t OH, Py_ssize_t OW, float *acc, Py_ssize_t acc_tap,
                                  float *bias_acc, Py_ssize_t np, Py_ssize_t n_images)
    void dw_flat_dot_rolling_float(const float *src, Py_ssize_t src_plane, Py_ssize_t src_image, Py_ssize_t height,
                                   Py_ssize_t width, Py_ssize_t pt, Py_ssize_t pl, const float *dy, Py_ssize_t dy_plane,
                                   Py_ssize_t dy_image, Py_ssize_t OH, Py_ssize_t OW, float *acc, Py_ssize_t acc_tap,
                                   float *bias_acc, Py_ssize_t np, Py_ssize_t n_images)
    void dw_flat_dot_shifted_float(const float *src, Py_ssize_t src_plane, Py_ssize_t src_image, Py_ssize_t height,
                                   Py_ssize_t width, Py_ssize_t pt, Py_ssize_t pl, const float *dy, Py_ssize_t dy_plane,
                                   Py_ssize_t dy_image, Py_ssize_t OH, Py_ssize_t OW, float *acc, Py_ssize_t acc_tap,
                                   float *bias_acc, Py_ssize_t np, Py_ssize_t n_images, Py_ssize_t k)
    void dw_row_float(const float *const *rows, Py_ssize_t off, Py_ssize_t src_pix, Py_ssize_t kh, Py_ssize_t kw,
                      Py_ssize_t sw, Py_ssize_t dil_w, const float *w, Py_ssize_t w_tap, const float *bias, float *dst,
                      Py_ssize_t dst_pix, Py_ssize_t npix, Py_ssize_t nc, bint streaming)
    void dw_row_double(const double *const *rows, Py_ssize_t off, Py_ssize_t src_pix, Py_ssize_t kh, Py_ssize_t kw,
                       Py_ssize_t sw, Py_ssize_t dil_w, const double *w, Py_ssize_t w_tap, const double *bias,
                       double *dst, Py_ssize_t dst_pix, Py_ssize_t npix, Py_ssize_t nc, bint streaming)
    void dw_row_edge_float(const float *const *rows, Py_ssize_t off, Py_ssize_t src_tap, Py_ssize_t kh, Py_ssize_t nb,
                           const float *w, Py_ssize_t w_row, Py_ssize_t w_tap, const float *bias, float *dst,
                           Py_ssize_t nc, bint streaming)
    void dw_row_edge_double(const double *const *rows, Py_ssize_t off, Py_ssize_t src_tap, Py_ssize_t kh,
                            Py_ssize_t nb, const double *w, Py_ssize_t w_row, Py_ssize_t w_tap, const double *bias,
                            double *dst, Py_ssize_t nc, bint streaming)

# Debug builds (DWCONV_DEBUG) wrap every micro-kernel in a check that what it reads and writes lies
# inside the buffers registered here for the call; in release builds these are empty macros.
cdef extern from "_bounds.h" nogil:
    void dw_bounds_add(const void *begin, Py_ssize_t nbytes, bint writable)
    void dw_bounds_remove(const void *begin, Py_ssize_t nbytes, bint writable)
    void dw_bounds_span(const char *what, const void *begin, Py_ssize_t nbytes, bint writes)

cdef extern from *:
    """
    #define DW_STR_(x) #x
    #define DW_STR(x) DW_STR_(x)
    #ifndef DWCONV_CFLAGS
    #define DWCONV_CFLAGS unknown
    #endif
    static const char *dw_cflags = DW_STR(DWCONV_CFLAGS);
    """
    const char *dw_cflags

cdef enum:
    # NHWC forward and input-gradient work items are rows of all channels, cut into blocks of whole
    # multiples of this many (whole vectors at every level) only when there are fewer rows than
    # threads: measured, one micro-kernel call per row beats several per block even at batch 1
    # (mnv2-7x960: 7 rows for 2 threads 0.028 ms, in blocks 0.037 ms; batch 16 up to 2.4x).
    CHANNEL_BLOCK = 64
    # The filter gradient cuts its reduction into chunks fixed by the problem's shape alone, so that
    # the summation order is too: about this many (chunk x channel block) items (reduce_ring's blocks
    # follow the threads: as many chunks as items), fewer chunks where one would hold fewer
    # multiply-adds than PARTIAL_WORK times its partial sums, which it zeroes and the end adds up
    # (reduction_chunks).
    REDUCTION_ITEMS = 32
    PARTIAL_WORK = 64
    # ... and from this many chunks on, a multiple of it: 2 threads got 6 and 5 of mnv2-7x960's 11
    # chunks at batch 16, the last of 2 rows, so one waited a third of the time
    CHUNK_MULTIPLE = 4
    # The filter gradient of narrow NCHW planes packs the padding columns of kernel rows this long
    # with the pixels (packed_band)
    PADDED_BAND_TAPS = 5
    # Rows per chunk of the filter gradient's ring path (ring_reduction_block)
    CHUNK_ROWS = 4
    # Elements per item of the sum of the filter gradient's partial sums
    SUM_PIECE = 1024
    # The filter gradient's ring path reads x's rows in place in blocks of at least this many channels
    # (window_in_place), and sums up to WINDOW_BATCH rows of whole windows per dot_window call, their
    # sums held in registers across the rows: as many as keep the pixels of a batch (each output row
    # sh source rows and a dy row, counted as W pixels each) within WINDOW_PIXELS. dot_window runs
    # one channel vector at a time over the batch and fetches ahead the next vectors' lines, which
    # a batch of wide rows pushes out of the caches before they are read (2 vCPUs of an AVX-512 AMD
    # EPYC, batch 16, against batches of 16 rows: mnv2-112x96-s2 in 2 rows 1.5x faster on one
    # thread, 1.6x on two, mnv2-56x144 in 8 rows 1.17x and 1.05x; -112x32 in 4, -28x192, -14x576
    # and -7x960 in 16 unchanged)
    # (blocks of 128 rather than 256: mnv2-7x960's 4 blocks of 240 at batch 1, 2 threads, went through
    # the ring, 1.35x slower; 7x7x640's blocks of 160 1.15x; 7x7x512's of 128 the same)
    IN_PLACE_BLOCK = 128
    WINDOW_BATCH = 16
    WINDOW_PIXELS = 896
    # ... and where x lies in the last-level cache and its output rows are this wide, fetches the
    # lanes at hand some pixels ahead instead (DW_WINDOW_CACHED; 2 vCPUs of an AVX2 AMD EPYC, 2
    # threads: batch 1, mnv2-56x144 1.2-1.4x faster, -112x96-s2 1.15x, -28x192 1.1x; batch 16,
    # -28x192 (L3) the same; narrower rows keep the other: -14x576 at batch 16 0.8x, at batch 1
    # 1.1x, -7x960 at batch 16 0.93x). "In the cache": x and dy together, which the reduction reads
    # side by side (2 vCPUs of a Zen 5 EPYC, 16x28x28x192, 19 MB of them against a cache counted
    # at 16 MB: the other 1.12x faster)
    WINDOW_CACHED_WIDTH = 28
    # NCHW work items cover at most this many rows of a plane that share their taps, in this many
    # planes: enough work per micro-kernel call even for the 7x7 planes of late network layers.
    ROW_PIECE = 8
    PLANE_BLOCK = 16
    # NCHW convolutions with outputs at most this wide take the packed path instead
    # (gather_nchw_packed): vectors along their rows would be partly empty or, at stride 2, need
    # shuffles, and borders would be a large share of the work. (By instruction count the packed
    # path costs a third to a half of the other at widths 7 to 56, and as much at width 112.)
    PACKED_WIDTH = 64
    # A packed work item covers this many channels (the last block also the remainder) and about
    # this many destination pixels of each plane: its scratch buffers stay in L2, and bands tall
    # enough that the source rows shared with the next band are repacked rarely. (128 channels
    # measured 5-15% faster than 64 on the 7- and 14-pixel planes; 256 no better than 128.)
    PACKED_CHANNELS = 128
    PACKED_PIXELS = 512
    # Below this many multiply-adds a call runs on one thread: waking a second one costs more.
    # (Measured on 2 cores of an AVX-512 Xeon, 3x3 kernels with x out of cache: 0.17 M, 24 us on
    # one thread and 26 on two; 0.34 M, 34 and 33; mnv2-7x960 at batch 1, 0.42 M, 44 and 34.)
    SERIAL_WORK = 1 << 18

# The codes of the padding modes and activations are dwconv._names's, which the CUDA kernels' enums
# are generated from; these enums are checked against them on import, so that a reorder on either
# side fails loudly instead of changing results.
cdef enum:
    ZEROS, REFLECT, REPLICATE, CIRCULAR, SYMMETRIC

cdef enum:
    IDENTITY, RELU, RELU6, SIGMOID, TANH, GELU, SILU, HARD_SWISH

MODE_CODES = {"zeros": ZEROS, "reflect": REFLECT, "replicate": REPLICATE, "circular": CIRCULAR,
              "symmetric": SYMMETRIC}
ACTIVATION_CODES = {None: IDENTITY, "relu": RELU, "relu6": RELU6, "sigmoid": SIGMOID, "tanh": TANH, "gelu": GELU,
                    "silu": SILU, "hard_swish": HARD_SWISH}


def check_codes(what, kernels, registry):
    """Raise ImportError unless the kernels number `what` as the registry (dwconv._names) does."""
    if kernels != registry:
        raise ImportError(f"dwconv._kernels numbers the {what} {kernels}, but dwconv._names {registry}: "
                          "make the enum in _kernels.pyx follow dwconv._names and rebuild")


check_codes("padding modes", MODE_CODES, _names.MODE_CODES)
check_codes("activations", ACTIVATION_CODES, _names.ACTIVATION_CODES)


# ----------------------------------------------------------------------------------------------
# Instruction-set dispatch and build facts

ISA_NAMES = tuple(dw_isas[i].name.decode() for i in range(dw_isa_count))


def supported_isas():
    """The instruction-set levels this CPU runs, from the most portable up."""
    return tuple(ISA_NAMES[i] for i in range(dw_isa_count) if dw_isa_supported(i))


def set_isa(name):
    """Make ``name`` the level the kernels use from now on (it must be supported)."""
    dw_set_isa(ISA_NAMES.index(name))


def active_isa():
    return dw_active.name.decode()


def openmp_enabled():
    return bool(DW_OPENMP)


def release_threads():
    """Shut down the calling thread's OpenMP thread pool, so that a process forked next starts
    without a stale one (see dwconv._fork); 0 on success, nonzero when the runtime cannot."""
    return dw_release_threads()


def max_threads():
    """OpenMP's current default thread count (honours OMP_NUM_THREADS and threadpoolctl)."""
    return omp_get_max_threads()


def compile_flags():
    return dw_cflags.decode()


def data_address(array):
    """The address of `array`'s first element: `array.ctypes.data` without building a ctypes object
    (which costs a microsecond, a fifth of a small call's budget)."""
    cdef Py_buffer view
    PyObject_GetBuffer(array, &view, PyBUF_STRIDED_RO)
    cdef size_t address = <size_t>view.buf
    PyBuffer_Release(&view)
    return address


# ----------------------------------------------------------------------------------------------
# Borders: the valid taps of every destination coordinate along one axis

cdef struct Axis:
    # Destination coordinate q reads taps tap0[q] + u*tap_step for u < ntaps[q], at source
    # coordinate src0[q] + u*src_tap_step.
    Py_ssize_t *tap0
    Py_ssize_t *ntaps
    Py_ssize_t *src0
    Py_ssize_t tap_step, src_tap_step
    # Destinations grouped into runs sharing their taps: run r covers run_dst0[r] + v*dst_step for
    # v < run_count[r], and its source advances by src_step per destination.
    Py_ssize_t *run_dst0
    Py_ssize_t *run_count
    Py_ssize_t n_runs, dst_step, src_step


cdef inline Py_ssize_t floordiv(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """a // b for b > 0, rounding towards minus infinity like Python."""
    return a // b if a >= 0 else -((-a + b - 1) // b)


cdef inline Py_ssize_t gcd(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    while b:
        a, b = b, a % b
    return a


cdef bint axis_alloc(Axis *axis, Py_ssize_t n_dst) noexcept nogil:
    cdef Py_ssize_t *block = <Py_ssize_t *> malloc(5 * (n_dst + 1) * sizeof(Py_ssize_t))
    if block == NULL:
        return False
    axis.tap0 = block
    axis.ntaps = block + (n_dst + 1)
    axis.src0 = block + 2 * (n_dst + 1)
    axis.run_dst0 = block + 3 * (n_dst + 1)
    axis.run_count = block + 4 * (n_dst + 1)
    return True


cdef void axis_set(Axis *axis, Py_ssize_t q, Py_ssize_t tap0, Py_ssize_t ntaps, Py_ssize_t src0) noexcept nogil:
    if ntaps <= 0:
        tap0, ntaps, src0 = 0, 0, 0  # keeps pointer arithmetic of empty tap sets inside the arrays
    axis.tap0[q] = tap0
    axis.ntaps[q] = ntaps
    axis.src0[q] = src0


cdef inline Py_ssize_t taps_inside(Py_ssize_t start, Py_ssize_t dil, Py_ssize_t k, Py_ssize_t size,
                                   Py_ssize_t *first) noexcept nogil:
    """How many taps t of k read a source index start + t*dil inside [0, size); the first is *first."""
    first[0] = 0 if start >= 0 else min(k, (-start + dil - 1) // dil)
    return 0 if start + first[0] * dil >= size else min(k, (size - 1 - start) // dil + 1) - first[0]


cdef void axis_forward(Axis *axis, Py_ssize_t n_src, Py_ssize_t n_dst, Py_ssize_t k, Py_ssize_t s,
                       Py_ssize_t dil, Py_ssize_t pad) noexcept nogil:
    """Output coordinate o reads source o*s - pad + t*dil for taps t in [0, k) inside [0, n_src)."""
    cdef Py_ssize_t o, start, first, n
    axis.tap_step, axis.src_tap_step, axis.dst_step, axis.src_step = 1, dil, 1, s
    for o in range(n_dst):
        start = o * s - pad
        n = taps_inside(start, dil, k, n_src, &first)
        axis_set(axis, o, first, n, start + first * dil)
    axis_group_runs(axis, n_dst)


cdef void axis_input_grad(Axis *axis, Py_ssize_t n_src, Py_ssize_t n_dst, Py_ssize_t k, Py_ssize_t s,
                          Py_ssize_t dil, Py_ssize_t pad) noexcept nogil:
    """Input coordinate i receives output gradient y = (i + pad - t*dil) / s from every tap t for
    which that is a whole number in [0, n_src). Such taps form the progression
    t0 + u*(s/common), common = gcd(s, dil), along which y falls by dil/common: a gather, found by
    congruence, with no atomics."""
    cdef Py_ssize_t i, t, t0, y0, u0, u_end, n_prog
    cdef Py_ssize_t common = gcd(s, dil)
    cdef Py_ssize_t step = dil // common
    axis.tap_step, axis.src_tap_step, axis.dst_step, axis.src_step = s // common, -step, s, 1
    for i in range(n_dst):
        t0 = -1
        for t in range(min(k, s // common)):
            if (i + pad - t * dil) % s == 0:
                t0 = t
                break
        if t0 < 0:
            axis_set(axis, i, 0, 0, 0)
            continue
        y0 = floordiv(i + pad - t0 * dil, s)
        n_prog = (k - t0 + s // common - 1) // (s // common)
        u0 = max(0, (y0 - (n_src - 1) + step - 1) // step) if y0 > n_src - 1 else 0
        u_end = min(n_prog, floordiv(y0, step) + 1)
        axis_set(axis, i, t0 + u0 * (s // common), u_end - u0, y0 - u0 * step)
    axis_group_runs(axis, n_dst)


cdef void axis_group_runs(Axis *axis, Py_ssize_t n_dst) noexcept nogil:
    """Group destinations (phase by phase, dst_step apart) whose taps match and whose sources
    advance regularly, so the micro-kernel gets long runs of identical work."""
    cdef Py_ssize_t phase, q, prev, r = -1
    for phase in range(min(axis.dst_step, n_dst)):
        prev = -1
        q = phase
        while q < n_dst:
            if (prev >= 0 and axis.tap0[q] == axis.tap0[prev] and axis.ntaps[q] == axis.ntaps[prev]
                    and axis.src0[q] == axis.src0[prev] + axis.src_step):
                axis.run_count[r] += 1
            else:
                r += 1
                axis.run_dst0[r] = q
                axis.run_count[r] = 1
            prev = q
            q += axis.dst_step
    axis.n_runs = r + 1


cdef void axis_free(Axis *axis) noexcept nogil:
    free(axis.tap0)
    axis.tap0 = NULL


# ----------------------------------------------------------------------------------------------
# Arithmetic: one entry per micro-kernel, typed

cdef inline void taps(const floating *src, Py_ssize_t src_row, Py_ssize_t src_pix, Py_ssize_t src_c,
                      Py_ssize_t src_a, Py_ssize_t src_b, const floating *w, Py_ssize_t w_c, Py_ssize_t w_a,
                      Py_ssize_t w_b, const floating *bias, Py_ssize_t bias_c, floating *dst,
                      Py_ssize_t dst_row, Py_ssize_t dst_pix, Py_ssize_t dst_c, Py_ssize_t na, Py_ssize_t nb,
                      Py_ssize_t nrows, Py_ssize_t npix, Py_ssize_t nc, bint accumulate,
                      bint streaming=False) noexcept nogil:
    if floating is float:
        dw_taps_float(src, src_row, src_pix, src_c, src_a, src_b, w, w_c, w_a, w_b, bias, bias_c, dst,
                      dst_row, dst_pix, dst_c, na, nb, nrows, npix, nc, accumulate, streaming)
    else:
        dw_taps_double(src, src_row, src_pix, src_c, src_a, src_b, w, w_c, w_a, w_b, bias, bias_c, dst,
                       dst_row, dst_pix, dst_c, na, nb, nrows, npix, nc, accumulate, streaming)


cdef inline void dot(const floating *src, Py_ssize_t src_pix, Py_ssize_t src_c, const floating *dy,
                     Py_ssize_t dy_pix, Py_ssize_t dy_c, floating *acc, Py_ssize_t acc_c, Py_ssize_t npix,
                     Py_ssize_t nc) noexcept nogil:
    if floating is float:
        dw_dot_float(src, src_pix, src_c, dy, dy_pix, dy_c, acc, acc_c, npix, nc)
    else:
        dw_dot_double(src, src_pix, src_c, dy, dy_pix, dy_c, acc, acc_c, npix, nc)


cdef inline bint dot_window(const floating *const *rows, const floating *const *dys, Py_ssize_t nrows, Py_ssize_t off,
                            Py_ssize_t src_pix, Py_ssize_t src_tap, Py_ssize_t dy_pix, floating *acc,
                            Py_ssize_t acc_tap, floating *bias_acc, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t npix,
                            Py_ssize_t nc, int edges) noexcept nogil:
    if floating is float:
        return dw_dot_window_float(rows, dys, nrows, off, src_pix, src_tap, dy_pix, acc, acc_tap, bias_acc, kh, kw,
                                   npix, nc, edges)
    else:
        return dw_dot_window_double(rows, dys, nrows, off, src_pix, src_tap, dy_pix, acc, acc_tap, bias_acc, kh, kw,
                                    npix, nc, edges)


cdef inline void dot_taps(const floating *src, Py_ssize_t src_pix, Py_ssize_t src_tap, const floating *dy,
                          Py_ssize_t dy_pix, floating *acc, Py_ssize_t acc_tap, Py_ssize_t ntap, Py_ssize_t npix,
                          Py_ssize_t nc) noexcept nogil:
    if floating is float:
        dw_dot_taps_float(src, src_pix, src_tap, dy, dy_pix, acc, acc_tap, ntap, npix, nc)
    else:
        dw_dot_taps_double(src, src_pix, src_tap, dy, dy_pix, acc, acc_tap, ntap, npix, nc)


cdef inline void transpose(const floating *src, Py_ssize_t src_b, floating *dst, Py_ssize_t dst_a, Py_ssize_t na,
                           Py_ssize_t nb, bint streaming=False) noexcept nogil:
    if floating is float:
        dw_transpose_float(src, src_b, dst, dst_a, na, nb, streaming)
    else:
        dw_transpose_double(src, src_b, dst, dst_a, na, nb, streaming)


# ----------------------------------------------------------------------------------------------
# The geometry, as the nogil code reads it

cdef struct Dims:
    # the geometry of one convolution (see dwconv._args.Geometry)
    Py_ssize_t N, H, W, C, M, kh, kw, sh, sw, dil_h, dil_w, pt, pl, OH, OW
    bint nhwc
    int mode
    # What the forward's input and result hold (DW_ELEM_*): the kernels' float type (always, but in
    # the float32 forward), or integer pixels or half floats, which only the ring's copies read
    # (widened) and only narrow_results writes (rounded, integers saturated): a pointer of the float
    # type then addresses them, through element_at.
    int x_type, y_type


cdef inline Py_ssize_t element_size(int elem, size_t float_size) noexcept nogil:
    return float_size if elem == DW_ELEM_FLOAT else 1 if elem == DW_ELEM_U8 else 2  # (uint16, int16, float16)


cdef inline char *element_at(const void *base, Py_ssize_t index, int elem, size_t float_size) noexcept nogil:
    """The address of element `index` of an array of `elem` elements."""
    return <char *> base + index * element_size(elem, float_size)


cdef Dims dims_of(geometry):
    cdef tuple g = <tuple> geometry
    cdef Dims d
    cdef Py_ssize_t *fields[17]
    cdef Py_ssize_t i
    d.x_type = d.y_type = DW_ELEM_FLOAT
    # (read as a tuple, the Geometry namedtuple is: a lookup by name per field cost a microsecond a
    # call; and in a loop, as unpacking it into the fields compiled to 17 KB of code)
    fields[:] = [&d.N, &d.H, &d.W, &d.C, &d.M, &d.kh, &d.kw, &d.sh, &d.sw, &d.dil_h, &d.dil_w, &d.pt, NULL, &d.pl,
                 NULL, &d.OH, &d.OW]
    for i in range(17):
        if fields[i] != NULL:
            fields[i][0] = g[i + 1]
    d.nhwc = g[0] == "NHWC"
    d.mode = MODE_CODES[g[18]]
    return d


# ----------------------------------------------------------------------------------------------
# Borders in other padding modes: the taps that land in the padding, output pixel by output pixel

cdef inline Py_ssize_t padded_source(Py_ssize_t p, Py_ssize_t n, int mode) noexcept nogil:
    """The input coordinate whose value padded coordinate p (outside [0, n)) holds, as in numpy.pad
    with modes reflect, edge, wrap and symmetric (any distance from the input, so any padding is
    valid)."""
    cdef Py_ssize_t period
    if mode == REPLICATE:
        return 0 if p < 0 else n - 1
    if mode == CIRCULAR:
        return p - floordiv(p, n) * n
    if mode == SYMMETRIC:  # reflection about the edges themselves: the edge pixel repeats
        period = 2 * n
        p = p - floordiv(p, period) * period
        return period - 1 - p if p >= n else p
    if n == 1:
        return 0
    period = 2 * (n - 1)  # reflection about the first and the last element repeats with this period
    p = p - floordiv(p, period) * period
    return period - p if p >= n else p


cdef struct Border:
    # Along each axis, for output coordinate o and tap t: whether the tap falls in the padding
    # (*_outside[o*k + t]) and the source coordinate it reads (*_src[o*k + t], mapped by the mode
    # when outside). Every pixel of a border row has taps in the padding; in other rows only the
    # pixels of the border columns do.
    Py_ssize_t *row_src
    Py_ssize_t *col_src
    Py_ssize_t *border_cols
    Py_ssize_t n_border_cols
    char *row_outside
    char *col_outside
    char *row_border


cdef void border_axis(Py_ssize_t *src, char *outside, char *border, Py_ssize_t n_src, Py_ssize_t n_dst,
                      Py_ssize_t k, Py_ssize_t s, Py_ssize_t dil, Py_ssize_t pad, int mode) noexcept nogil:
    cdef Py_ssize_t o, t, p
    for o in range(n_dst):
        border[o] = False
        for t in range(k):
            p = o * s - pad + t * dil
            outside[o * k + t] = p < 0 or p >= n_src
            src[o * k + t] = padded_source(p, n_src, mode) if outside[o * k + t] else p
            border[o] = border[o] or outside[o * k + t]


cdef bint border_init(Border *b, const Dims *d) noexcept nogil:
    """Fill in `b` for geometry `d` (one allocation, released by border_free); False when out of memory."""
    cdef Py_ssize_t n_src = d.OH * d.kh + d.OW * d.kw, o
    cdef char *block = <char *> malloc((n_src + d.OW) * sizeof(Py_ssize_t) + n_src + d.OH + d.OW)
    cdef char *col_border
    if block == NULL:
        return False
    b.row_src = <Py_ssize_t *> block
    b.col_src = b.row_src + d.OH * d.kh
    b.border_cols = b.col_src + d.OW * d.kw
    b.row_outside = block + (n_src + d.OW) * sizeof(Py_ssize_t)
    b.col_outside = b.row_outside + d.OH * d.kh
    b.row_border = b.col_outside + d.OW * d.kw
    col_border = b.row_border + d.OH
    border_axis(b.row_src, b.row_outside, b.row_border, d.H, d.OH, d.kh, d.sh, d.dil_h, d.pt, d.mode)
    border_axis(b.col_src, b.col_outside, col_border, d.W, d.OW, d.kw, d.sw, d.dil_w, d.pl, d.mode)
    b.n_border_cols = 0
    for o in range(d.OW):
        if col_border[o]:
            b.border_cols[b.n_border_cols] = o
            b.n_border_cols += 1
    return True


cdef void border_free(Border *b) noexcept nogil:
    free(b.row_src)
    b.row_src = NULL


cdef inline Py_ssize_t pixel_at(const Dims *d, Py_ssize_t n, Py_ssize_t h, Py_ssize_t w, Py_ssize_t h_size,
                                Py_ssize_t w_size, Py_ssize_t channels) noexcept nogil:
    """The offset of channel 0 of pixel (n, h, w) in an image batch of this size and layout."""
    if d.nhwc:
        return ((n * h_size + h) * w_size + w) * channels
    return (n * channels * h_size + h) * w_size + w


cdef enum:
    # what border_pixel adds up: the input gradient, the filter gradient
    ADD_TO_SOURCE, ADD_TO_FILTER


cdef void border_pixel(int op, floating *x, floating *w, floating *y, const Border *b, const Dims *d,
                       Py_ssize_t n, Py_ssize_t oh, Py_ssize_t ow, Py_ssize_t c0, Py_ssize_t nc) noexcept nogil:
    """For the taps of output pixel (n, oh, ow) that fall in the padding, input channels [c0, c0+nc):
    ADD_TO_SOURCE  x += w * y   (input gradient: x is dx, y is dy, summed over the multiplier);
    ADD_TO_FILTER  w += y * x   (filter gradient: w is dW, y is dy)."""
    cdef Py_ssize_t M = d.M, CM = d.C * d.M, kh = d.kh, kw = d.kw, i, j, c, m
    cdef Py_ssize_t x_c = 1 if d.nhwc else d.H * d.W, y_c = 1 if d.nhwc else d.OH * d.OW
    cdef floating *y_pix = y + pixel_at(d, n, oh, ow, d.OH, d.OW, CM) + c0 * M * y_c
    cdef floating *x_pix
    cdef floating *w_tap
    for i in range(kh):
        for j in range(kw):
            if not (b.row_outside[oh * kh + i] or b.col_outside[ow * kw + j]):
                continue
            x_pix = x + pixel_at(d, n, b.row_src[oh * kh + i], b.col_src[ow * kw + j], d.H, d.W, d.C) + c0 * x_c
            w_tap = w + (i * kw + j) * CM + c0 * M
            if M == 1 and d.nhwc:  # (one filter per channel, channels adjacent: loops the compiler vectorises)
                if op == ADD_TO_SOURCE:
                    for c in range(nc):
                        x_pix[c] += w_tap[c] * y_pix[c]
                else:
                    for c in range(nc):
                        w_tap[c] += y_pix[c] * x_pix[c]
            elif op == ADD_TO_SOURCE:
                for c in range(nc):
                    for m in range(M):
                        x_pix[c * x_c] += w_tap[c * M + m] * y_pix[(c * M + m) * y_c]
            else:
                for c in range(nc):
                    for m in range(M):
                        w_tap[c * M + m] += y_pix[(c * M + m) * y_c] * x_pix[c * x_c]


cdef void border_rows(int op, floating *x, floating *w, floating *y, const Border *b, const Dims *d,
                      Py_ssize_t n, Py_ssize_t oh0, Py_ssize_t oh1, Py_ssize_t c0, Py_ssize_t nc) noexcept nogil:
    """border_pixel over the border pixels of output rows [oh0, oh1) of image n."""
    cdef Py_ssize_t oh, ow, k
    for oh in range(oh0, oh1):
        if b.row_border[oh]:
            for ow in range(d.OW):
                border_pixel(op, x, w, y, b, d, n, oh, ow, c0, nc)
        else:
            for k in range(b.n_border_cols):
                border_pixel(op, x, w, y, b, d, n, oh, b.border_cols[k], c0, nc)


# ----------------------------------------------------------------------------------------------
# Activations, applied to each block of output right after it is computed, while it is in cache

cdef inline floating exp_(floating v) noexcept nogil:
    if floating is float:
        return expf(v)
    else:
        return exp(v)


cdef void activate(floating *p, Py_ssize_t count, int act) noexcept nogil:
    """p[:count] = act(p[:count]); NaN stays NaN."""
    cdef Py_ssize_t i
    cdef floating v
    cdef int clamp = (DW_CLAMP_RELU if act == RELU else DW_CLAMP_RELU6 if act == RELU6
                      else DW_CLAMP_HARD_SWISH if act == HARD_SWISH else -1)
    if clamp >= 0:
        if floating is float:
            dw_clamp_float(p, count, clamp)
        else:
            dw_clamp_double(p, count, clamp)
    elif act == SIGMOID:
        for i in range(count):
            p[i] = 1 / (1 + exp_(-p[i]))
    elif act == TANH:
        for i in range(count):
            p[i] = tanhf(p[i]) if floating is float else tanh(p[i])
    elif act == GELU:
        for i in range(count):
            v = p[i]
            p[i] = 0.5 * v * (1 + (erff(v * <float> M_SQRT1_2) if floating is float else erf(v * M_SQRT1_2)))
    elif act == SILU:
        for i in range(count):
            p[i] = p[i] / (1 + exp_(-p[i]))


# ----------------------------------------------------------------------------------------------
# Scheduling

cdef inline const floating *offset(const floating *p, Py_ssize_t k) noexcept nogil:
    """p + k, keeping an absent (NULL) array absent."""
    if p == NULL:
        return NULL
    return p + k


cdef inline int threads_for(const Dims *d, int n_threads) noexcept nogil:
    """n_threads, or 1 for a convolution too small to be worth sharing."""
    if d.N * d.C * d.M * d.OH * d.OW * d.kh * d.kw < SERIAL_WORK:
        return 1
    return n_threads


cdef void gather_nhwc(const floating *dy, const floating *w, floating *dx, const Axis *rows, const Axis *cols,
                      const Dims *d, bint streaming, int n_threads) noexcept nogil:
    """dx[n, i_h, i_w, c] = sum over m and the valid taps of w * dy, for every input pixel: dy's
    C*M channels (channel c*M+m from c) sum into dx's C. Work items are (image, input row, block of
    input channels). With `streaming` (M 1, pixels of whole cache lines), dx is written with
    streaming stores."""
    cdef Py_ssize_t C = d.C, M = d.M, CM = d.C * d.M, kw = d.kw
    # as many blocks as it takes to give every thread an item; the last takes the remainder
    cdef Py_ssize_t n_blocks = max(1, min(C // CHANNEL_BLOCK, (n_threads + d.N * d.H - 1) // max(1, d.N * d.H)))
    cdef Py_ssize_t block = C // n_blocks // CHANNEL_BLOCK * CHANNEL_BLOCK
    cdef Py_ssize_t item, row, q_h, c0, nc, r, q_w, m
    cdef const floating *dy_row
    cdef floating *dx_row
    for item in prange(d.N * d.H * n_blocks, nogil=True, schedule="static", num_threads=n_threads):
        row = item // n_blocks
        c0 = (item % n_blocks) * block
        nc = C - c0 if item % n_blocks == n_blocks - 1 else block
        q_h = row % d.H
        dy_row = dy + ((row // d.H) * d.OH + rows.src0[q_h]) * d.OW * CM
        dx_row = dx + row * d.W * C
        for r in range(cols.n_runs):
            q_w = cols.run_dst0[r]
            for m in range(M):
                taps(dy_row + cols.src0[q_w] * CM + c0 * M + m, 0, cols.src_step * CM, M,
                     rows.src_tap_step * d.OW * CM, cols.src_tap_step * CM,
                     w + (rows.tap0[q_h] * kw + cols.tap0[q_w]) * CM + c0 * M + m, M,
                     rows.tap_step * kw * CM, cols.tap_step * CM, NULL, 0,
                     dx_row + q_w * C + c0, 0, cols.dst_step * C, 1,
                     rows.ntaps[q_h], cols.ntaps[q_w], 1, cols.run_count[r], nc, m > 0, streaming)


cdef void gather_nchw(const floating *dy, const floating *w, floating *dx, const Axis *rows, const Axis *cols,
                      const Py_ssize_t *pieces, Py_ssize_t n_pieces, const Dims *d, int n_threads) noexcept nogil:
    """The NCHW twin of gather_nhwc: planes instead of interleaved channels, so the micro-kernel
    vectorises along rows. Work items are (image, block of PLANE_BLOCK input channels, piece of a
    row run), a piece being up to ROW_PIECE input rows that share their taps (pieces[2k] its first
    row, pieces[2k+1] its row count)."""
    cdef Py_ssize_t C = d.C, M = d.M, CM = d.C * d.M, kw = d.kw
    cdef Py_ssize_t n_blocks = (C + PLANE_BLOCK - 1) // PLANE_BLOCK
    cdef Py_ssize_t item, n, c0, k, q_h, r, q_w, m
    cdef const floating *dy_row
    cdef floating *dx_row
    for item in prange(d.N * n_blocks * n_pieces, nogil=True, schedule="static", num_threads=n_threads):
        k = item % n_pieces
        c0 = (item // n_pieces) % n_blocks * PLANE_BLOCK
        n = item // (n_pieces * n_blocks)
        q_h = pieces[2 * k]
        for m in range(M):
            dy_row = dy + ((n * CM + c0 * M + m) * d.OH + rows.src0[q_h]) * d.OW
            dx_row = dx + ((n * C + c0) * d.H + q_h) * d.W
            for r in range(cols.n_runs):
                q_w = cols.run_dst0[r]
                taps(dy_row + cols.src0[q_w], rows.src_step * d.OW, cols.src_step, M * d.OH * d.OW,
                     rows.src_tap_step * d.OW, cols.src_tap_step,
                     w + (rows.tap0[q_h] * kw + cols.tap0[q_w]) * CM + c0 * M + m, M,
                     rows.tap_step * kw * CM, cols.tap_step * CM, NULL, 0,
                     dx_row + q_w, rows.dst_step * d.W, cols.dst_step, d.H * d.W,
                     rows.ntaps[q_h], cols.ntaps[q_w], pieces[2 * k + 1], cols.run_count[r],
                     min(<Py_ssize_t> PLANE_BLOCK, C - c0), m > 0)


cdef struct Packing:
    # The plan of gather_nchw_packed and reduce_packed: work items cover `band_rows` destination
    # rows, and read at most `src_rows` source rows; each thread's scratch holds `src_size` source
    # elements, then `dst_size` destination ones. The filter has its channels multiplier-major,
    # (kh, kw, M, C).
    Py_ssize_t band_rows, n_bands, src_rows, src_size, dst_size
    bint streaming  # the input gradient's planes written with streaming stores
    void *scratch
    const void *w_mc


cdef struct Span:
    Py_ssize_t lo, hi


cdef Span band_sources(const Axis *rows, Py_ssize_t q0, Py_ssize_t q1) noexcept nogil:
    """The source rows [lo, hi) that destination rows [q0, q1) read (empty when they read none)."""
    cdef Py_ssize_t q, first, last
    cdef Span span
    span.lo = span.hi = 0
    for q in range(q0, q1):
        if rows.ntaps[q]:
            first = rows.src0[q]
            last = first + (rows.ntaps[q] - 1) * rows.src_tap_step
            first, last = min(first, last), max(first, last)
            if span.hi == span.lo or first < span.lo:
                span.lo = first
            span.hi = max(span.hi, last + 1)
    return span


cdef void multiplier_major(floating *dst, const floating *src, Py_ssize_t n_rows, Py_ssize_t C,
                           Py_ssize_t M) noexcept nogil:
    """dst[row, m, c] = src[row, c, m] for rows of C*M elements: a filter (rows its taps; its bias
    a row more) laid out as packed lanes m*nc + c are."""
    cdef Py_ssize_t row, c, m
    for row in range(n_rows):
        for c in range(C):
            for m in range(M):
                dst[(row * M + m) * C + c] = src[(row * C + c) * M + m]


cdef bint packing_init(Packing *pack, const floating *w, const Axis *rows, const Dims *d, bint input_grad,
                       int n_threads) noexcept nogil:
    """Fill in `pack` (allocations released by packing_free); False when out of memory. The source
    or destination with C*M planes is packed multiplier-major too (lane m*nc + c of a block of nc
    channels), so that every micro-kernel call reads and writes unit-stride channels."""
    cdef Py_ssize_t C = d.C, M = d.M, CM = d.C * d.M, n_taps = d.kh * d.kw, band
    cdef Span span
    cdef Py_ssize_t src_w = d.OW if input_grad else packed_band(d, 1).W, dst_w = d.W if input_grad else d.OW
    cdef Py_ssize_t dst_h = d.H if input_grad else d.OH
    cdef Py_ssize_t block = C - (max(1, C // PACKED_CHANNELS) - 1) * PACKED_CHANNELS  # the largest, the last
    cdef floating *w_mc
    # Bands as even as they go, and an even number of them where there are several: the threads of a
    # static schedule get as many rows each (mnv2-like 28x28 planes made a band of 18 rows and one of
    # 10, and one of 2 threads waited a quarter of the filter gradient's time at batch 1).
    pack.n_bands = ceil_div(dst_h, max(1, PACKED_PIXELS // dst_w))
    if pack.n_bands > 1:
        pack.n_bands = min(dst_h, round_up(pack.n_bands, 2))
    pack.band_rows = ceil_div(dst_h, pack.n_bands)
    pack.n_bands = ceil_div(dst_h, pack.band_rows)
    pack.src_rows = 0
    for band in range(pack.n_bands):
        span = band_sources(rows, band * pack.band_rows, min(dst_h, (band + 1) * pack.band_rows))
        pack.src_rows = max(pack.src_rows, span.hi - span.lo)
    pack.src_size = pack.src_rows * src_w * block * (M if input_grad else 1)
    pack.dst_size = pack.band_rows * dst_w * block * (1 if input_grad else M)
    pack.streaming = (input_grad and d.N * C * d.H * d.W * sizeof(floating) > STREAMING_BYTES
                      and whole_lines(d.H * d.W, pack.band_rows * d.W, sizeof(floating)))
    pack.scratch = malloc(n_threads * (pack.src_size + pack.dst_size) * sizeof(floating))
    pack.w_mc = w
    if M > 1:
        w_mc = <floating *> malloc(n_taps * CM * sizeof(floating))
        pack.w_mc = w_mc
        if w_mc != NULL:
            multiplier_major(w_mc, w, n_taps, C, M)
    return pack.scratch != NULL and pack.w_mc != NULL


cdef void packing_watch(bint on, const Packing *pack, const Dims *d, const void *w, size_t elsize,
                        int n_threads) noexcept nogil:
    """Debug builds: register (on) or retire the buffers packing_init allocated, which the
    micro-kernels read (the rearranged filter) and write (the scratch)."""
    watch_one(on, pack.scratch, n_threads * (pack.src_size + pack.dst_size) * elsize, True)
    if pack.w_mc != w:
        watch_one(on, pack.w_mc, d.kh * d.kw * d.C * d.M * elsize, False)


cdef void packing_free(Packing *pack, const void *w) noexcept nogil:
    free(pack.scratch)
    if pack.w_mc != w:
        free(<void *> pack.w_mc)
    pack.scratch = pack.w_mc = NULL


cdef void gather_nchw_packed(const floating *dy, const floating *w, floating *dx, const Axis *rows,
                             const Axis *cols, const Packing *pack, const Dims *d, int n_threads) noexcept nogil:
    """gather_nchw for narrow planes, whose rows are too short for vectors along them: each work
    item transposes its block of planes (the dy rows it reads) into its thread's scratch in
    channel-interleaved order (lane m*nc + c), runs the channel micro-kernel there row by row as
    gather_nhwc does, and transposes the result back into the planes. Work items are (image, block
    of input channels, band of input rows)."""
    cdef Py_ssize_t C = d.C, M = d.M, CM = d.C * d.M, kw = d.kw
    cdef Py_ssize_t n_blocks = max(1, C // PACKED_CHANNELS), n_bands = pack.n_bands
    cdef Py_ssize_t item, n, c0, nc, q0, q1, q, r, q_w, m
    cdef Span src_rows
    cdef const floating *w_mc = <const floating *> pack.w_mc
    cdef floating *packed_dy
    cdef floating *packed_dx
    for item in prange(d.N * n_blocks * n_bands, nogil=True, schedule="static", num_threads=n_threads):
        n = item // (n_blocks * n_bands)
        c0 = item // n_bands % n_blocks * PACKED_CHANNELS
        nc = C - c0 if c0 == (n_blocks - 1) * PACKED_CHANNELS else PACKED_CHANNELS
        q0 = item % n_bands * pack.band_rows
        q1 = min(d.H, q0 + pack.band_rows)
        src_rows = band_sources(rows, q0, q1)
        packed_dy = <floating *> pack.scratch + threadid() * (pack.src_size + pack.dst_size)
        packed_dx = packed_dy + pack.src_size
        for m in range(M):
            transpose(dy + ((n * CM + c0 * M + m) * d.OH + src_rows.lo) * d.OW, M * d.OH * d.OW,
                      packed_dy + m * nc, nc * M, (src_rows.hi - src_rows.lo) * d.OW, nc)
        for q in range(q0, q1):
            for r in range(cols.n_runs):
                q_w = cols.run_dst0[r]
                for m in range(M):
                    taps(packed_dy + ((rows.src0[q] - src_rows.lo) * d.OW + cols.src0[q_w]) * nc * M + m * nc, 0,
                         cols.src_step * nc * M, 1, rows.src_tap_step * d.OW * nc * M, cols.src_tap_step * nc * M,
                         w_mc + (rows.tap0[q] * kw + cols.tap0[q_w]) * CM + m * C + c0, 1,
                         rows.tap_step * kw * CM, cols.tap_step * CM, NULL, 0,
                         packed_dx + ((q - q0) * d.W + q_w) * nc, 0, cols.dst_step * nc, 1,
                         rows.ntaps[q], cols.ntaps[q_w], 1, cols.run_count[r], nc, m > 0)
        transpose(packed_dx, nc, dx + ((n * C + c0) * d.H + q0) * d.W, d.H * d.W, nc, (q1 - q0) * d.W, pack.streaming)


cdef Py_ssize_t cut_runs(const Axis *axis, Py_ssize_t *pieces) noexcept nogil:
    """Cut the runs of `axis` into pieces of at most ROW_PIECE destinations; return their count."""
    cdef Py_ssize_t r, v, n = 0
    for r in range(axis.n_runs):
        v = 0
        while v < axis.run_count[r]:
            pieces[2 * n] = axis.run_dst0[r] + v * axis.dst_step
            pieces[2 * n + 1] = min(<Py_ssize_t> ROW_PIECE, axis.run_count[r] - v)
            n += 1
            v += ROW_PIECE
    return n


cdef inline void watch_one(bint on, const void *begin, Py_ssize_t nbytes, bint writable) noexcept nogil:
    if on:
        dw_bounds_add(begin, nbytes, writable)
    else:
        dw_bounds_remove(begin, nbytes, writable)


cdef inline void watch(bint on, const floating *read1, Py_ssize_t n1, const floating *read2, Py_ssize_t n2,
                const floating *read3, Py_ssize_t n3, floating *written, Py_ssize_t n_written) noexcept nogil:
    """Debug builds: register (on) or retire the buffers one kernel's micro-kernels may read and the
    one they write, sizes in elements (see _bounds.h). Release builds: nothing."""
    watch_one(on, read1, n1 * sizeof(floating), False)
    watch_one(on, read2, n2 * sizeof(floating), False)
    watch_one(on, read3, n3 * sizeof(floating), False)
    watch_one(on, written, n_written * sizeof(floating), True)


cdef gather_input_grad(const floating[::1] dy, const floating[::1] w, floating[::1] dx, g, int n_threads):
    """dx from dy, the taps inside the image (the padding's share is added by input_grad)."""
    cdef Dims d = dims_of(g)
    cdef Axis rows, cols
    cdef const floating *dy_data = &dy[0] if dy.shape[0] else NULL
    cdef Py_ssize_t *pieces = NULL
    cdef Py_ssize_t n_pieces
    cdef bint packed = not d.nhwc and d.OW <= PACKED_WIDTH
    cdef Packing pack
    rows.tap0 = cols.tap0 = NULL
    pack.scratch = NULL
    pack.w_mc = NULL
    try:
        pieces = <Py_ssize_t *> malloc(2 * d.H * sizeof(Py_ssize_t))
        if not (pieces != NULL and axis_alloc(&rows, d.H) and axis_alloc(&cols, d.W)):
            raise MemoryError()
        n_threads = threads_for(&d, n_threads)
        with nogil:
            watch(True, dy_data, dy.shape[0], &w[0], w.shape[0], NULL, 0, &dx[0], dx.shape[0])
            axis_input_grad(&rows, d.OH, d.H, d.kh, d.sh, d.dil_h, d.pt)
            axis_input_grad(&cols, d.OW, d.W, d.kw, d.sw, d.dil_w, d.pl)
            if packed:
                if not packing_init(&pack, &w[0], &rows, &d, True, n_threads):
                    with gil:
                        raise MemoryError()
                packing_watch(True, &pack, &d, &w[0], sizeof(floating), n_threads)
            if d.nhwc:
                gather_nhwc(dy_data, &w[0], &dx[0], &rows, &cols, &d,
                            d.M == 1 and d.C * sizeof(floating) % RING_ALIGN == 0
                            and dx.shape[0] * sizeof(floating) > STREAMING_BYTES and tiles_streamed(), n_threads)
            elif packed:
                gather_nchw_packed(dy_data, &w[0], &dx[0], &rows, &cols, &pack, &d, n_threads)
            else:
                n_pieces = cut_runs(&rows, pieces)
                gather_nchw(dy_data, &w[0], &dx[0], &rows, &cols, pieces, n_pieces, &d, n_threads)
            watch(False, dy_data, dy.shape[0], &w[0], w.shape[0], NULL, 0, &dx[0], dx.shape[0])
            if packed:
                packing_watch(False, &pack, &d, &w[0], sizeof(floating), n_threads)
    finally:
        free(pieces)
        packing_free(&pack, &w[0])
        axis_free(&rows)
        axis_free(&cols)


cdef class Borders:
    """The Border plan of a geometry whose padding mode is not zeros (`plan` NULL for zeros)."""
    cdef Border border
    cdef const Border *plan

    def __cinit__(self, g):
        cdef Dims d = dims_of(g)
        self.plan = NULL
        if d.mode != ZEROS:
            if not border_init(&self.border, &d):
                raise MemoryError()
            self.plan = &self.border

    def __dealloc__(self):
        if self.plan != NULL:
            border_free(&self.border)


def input_grad(const floating[::1] dy, const floating[::1] w, floating[::1] dx, g, int n_threads):
    """dx, the gradient of the forward pass with respect to x, from dy (dx non-empty). In padding
    modes other than zeros, the gradient reaching the padding then flows to the pixels it copies."""
    cdef Dims d = dims_of(g)
    cdef Borders borders = Borders(g)
    cdef Py_ssize_t item, n_blocks = (d.C + CHANNEL_BLOCK - 1) // CHANNEL_BLOCK
    # The paths below sum the taps inside the image, as with zeros padding; the padding's share
    # follows (2 vCPUs of an AVX-512 AMD EPYC, 3x3 to 7x7 kernels in reflect, replicate and circular
    # modes at stride 1: the forward pass over dy 1.4-1.9x faster than the gather it replaced there).
    d.mode = ZEROS
    if not (forward_input_grad(dy, w, dx, &d, n_threads) or strided_input_grad(dy, w, dx, &d, n_threads)
            or phase_input_grad(dy, w, dx, &d, n_threads)):
        gather_input_grad(dy, w, dx, g, n_threads)
    if borders.plan == NULL:
        return
    with nogil:
        for item in prange(d.N * n_blocks, schedule="static", num_threads=threads_for(&d, n_threads)):
            border_rows(ADD_TO_SOURCE, &dx[0], <floating *> &w[0], <floating *> &dy[0], borders.plan, &d,
                        item // n_blocks, 0, d.OH, item % n_blocks * CHANNEL_BLOCK,
                        min(<Py_ssize_t> CHANNEL_BLOCK, d.C - item % n_blocks * CHANNEL_BLOCK))


cdef void column_ranges(Py_ssize_t *lo, Py_ssize_t *hi, const Dims *d) noexcept nogil:
    """For each tap column j, the output columns [lo[j], hi[j]) whose source column is inside x."""
    cdef Py_ssize_t j
    for j in range(d.kw):
        lo[j] = min(d.OW, max(0, -floordiv(j * d.dil_w - d.pl, d.sw)))
        hi[j] = max(lo[j], min(d.OW, floordiv(d.W - 1 + d.pl - j * d.dil_w, d.sw) + 1))


cdef void add_partials(floating *partials, Py_ssize_t partial_size, Py_ssize_t n_chunks, int n_threads) noexcept nogil:
    """The other chunks' partial sums (partial_size elements each) added to the first chunk's, in an
    order fixed by their number, a piece of the elements per item."""
    cdef Py_ssize_t item, e
    for item in prange(ceil_div(partial_size, SUM_PIECE), schedule="static", num_threads=n_threads):
        e = item * SUM_PIECE
        dot(<const floating *> NULL, 0, 0, partials + partial_size + e, partial_size, 1, partials + e, 1,
            n_chunks - 1, min(<Py_ssize_t> SUM_PIECE, partial_size - e))


cdef inline void zero_partial(floating *partial, Py_ssize_t partial_tap, Py_ssize_t n_taps, Py_ssize_t c0,
                              Py_ssize_t n) noexcept nogil:
    """Zero elements [c0, c0 + n) of every tap's partial sums and of the bias's after them."""
    cdef Py_ssize_t tap
    for tap in range(n_taps + 1):
        memset(partial + tap * partial_tap + c0, 0, n * sizeof(floating))


cdef inline void reduce_columns(const floating *x_row, const floating *dy_row, floating *acc, Py_ssize_t j,
                                Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t nc, const Dims *d) noexcept nogil:
    """acc += the products of tap column j over output columns [lo, hi) of one row (one channel
    block and multiplier in NHWC, one channel in NCHW; pointers already offset to them)."""
    cdef Py_ssize_t CM = d.C * d.M
    if hi <= lo:
        return
    if d.nhwc:
        dot(x_row + (lo * d.sw - d.pl + j * d.dil_w) * d.C, d.sw * d.C, 1, dy_row + lo * CM, CM, d.M, acc, d.M,
            hi - lo, nc)
    else:
        dot(x_row + lo * d.sw - d.pl + j * d.dil_w, d.sw, 0, dy_row + lo, 1, 0, acc, 0, hi - lo, 1)


cdef void reduce_rows(const floating *x, const floating *dy, floating *partial, Py_ssize_t partial_tap,
                      const Axis *rows, const Py_ssize_t *col_lo, const Py_ssize_t *col_hi, Py_ssize_t row0,
                      Py_ssize_t row1, Py_ssize_t c0, Py_ssize_t nc, const Dims *d) noexcept nogil:
    """partial[tap*partial_tap + c*M+m] += sum of x * dy over output rows [row0, row1) of all
    images, for input channels [c0, c0+nc); partial[kh*kw*partial_tap + c*M+m] += the sum of dy
    (the bias gradient)."""
    cdef Py_ssize_t C = d.C, M = d.M, CM = d.C * d.M, kw = d.kw, W = d.W, OW = d.OW
    cdef Py_ssize_t row, n, oh, u, i, ih, j, m, co
    cdef Py_ssize_t all_lo = 0, all_hi = OW  # the output columns where every tap column is inside x
    cdef floating *bias_partial = partial + d.kh * kw * partial_tap
    for j in range(kw):
        all_lo = max(all_lo, col_lo[j])
        all_hi = min(all_hi, col_hi[j])
    cdef const floating *x_row
    cdef const floating *dy_row
    for row in range(row0, row1):
        n = row // d.OH
        oh = row % d.OH
        for m in range(M):
            if d.nhwc:
                dy_row = dy + row * OW * CM + c0 * M + m
                dot(<const floating *> NULL, 0, 0, dy_row, CM, M, bias_partial + c0 * M + m, M, OW, nc)
            else:
                co = c0 * M + m
                dy_row = dy + ((n * CM + co) * d.OH + oh) * OW
                dot(<const floating *> NULL, 0, 0, dy_row, 1, 0, bias_partial + co, 0, OW, 1)
            for u in range(rows.ntaps[oh]):
                i = rows.tap0[oh] + u
                ih = rows.src0[oh] + u * rows.src_tap_step
                x_row = x + ((n * d.H + ih) * W * C + c0) if d.nhwc else x + ((n * C + c0) * d.H + ih) * W
                if d.nhwc and M == 1 and all_lo < all_hi:
                    # the columns every tap of the row reads: its taps DW_DOT_MAX_TAPS at once (their
                    # sums in registers), then each tap's edges
                    j = 0
                    while j < kw:
                        dot_taps(x_row + (all_lo * d.sw - d.pl + j * d.dil_w) * C, d.sw * C, d.dil_w * C,
                                 dy_row + all_lo * CM, CM, partial + (i * kw + j) * partial_tap + c0, partial_tap,
                                 min(<Py_ssize_t> DW_DOT_MAX_TAPS, kw - j), all_hi - all_lo, nc)
                        j += DW_DOT_MAX_TAPS
                    for j in range(kw):
                        reduce_columns(x_row, dy_row, partial + (i * kw + j) * partial_tap + c0 * M + m, j,
                                       col_lo[j], all_lo, nc, d)
                        reduce_columns(x_row, dy_row, partial + (i * kw + j) * partial_tap + c0 * M + m, j,
                                       all_hi, col_hi[j], nc, d)
                else:
                    for j in range(kw):
                        reduce_columns(x_row, dy_row, partial + (i * kw + j) * partial_tap + c0 * M + m, j,
                                       col_lo[j], col_hi[j], nc, d)


cdef Py_ssize_t reduction_chunks(const Dims *d, Py_ssize_t n_units, Py_ssize_t n_blocks) noexcept nogil:
    """The chunks of the filter gradient's n_units units, fixed by the geometry alone (so is the
    summation order): enough for REDUCTION_ITEMS items of n_blocks blocks of channels each, fewer
    where a chunk would do less than PARTIAL_WORK multiply-adds per partial sum; from CHUNK_MULTIPLE
    on, a multiple of it, so that the threads of a static schedule get as many chunks each."""
    cdef Py_ssize_t partial_size = (d.kh * d.kw + 1) * d.C * d.M
    cdef Py_ssize_t multiply_adds = d.N * d.OH * d.OW * d.C * d.M * d.kh * d.kw
    cdef Py_ssize_t n_chunks = max(1, min(n_units, ceil_div(REDUCTION_ITEMS, n_blocks),
                                          multiply_adds // (partial_size * PARTIAL_WORK)))
    return n_chunks if n_chunks < CHUNK_MULTIPLE else n_chunks // CHUNK_MULTIPLE * CHUNK_MULTIPLE


cdef inline Py_ssize_t chunk_start(Py_ssize_t chunk, Py_ssize_t n_chunks, Py_ssize_t n_units) noexcept nogil:
    """The first of chunk's units: n_units split into n_chunks runs one unit apart in length at most."""
    return chunk * n_units // n_chunks


cdef Py_ssize_t ring_reduction_block(const Dims *d, Py_ssize_t n_chunks, int n_threads) noexcept nogil:
    """The channels of reduce_ring's items: all of them where n_chunks chunks give every thread
    ITEMS_PER_THREAD items, else blocks of 2 vectors or more, as few as do. (Each chunk copies kh - 1
    source rows more into its ring; each block reads a slice of every pixel, a stream the
    prefetchers follow less well. Measured against blocks of 64 channels, batch 16: mnv2-112x96-s2
    1.5x, 56x144 1.3x, the other 3x3 rows 1.07-1.19x faster, batch 1 1.03-1.2x; with their rows'
    window sliding (dot_taps_sliding), effnet-28x240 5x5 1.25x on one thread, convnext-56x96 7x7
    1.17x on two, batch 1 the same. Blocks for the threads rather than for REDUCTION_ITEMS items,
    with PARTIAL_WORK, against both for REDUCTION_ITEMS, 2 vCPUs of an AVX-512 AMD EPYC: batch 1
    14x14x576 3x3 1.5x faster, 28x28x240 5x5 1.3x, 7x7x960 3x3 1.2x, 56x56x144 3x3 1.0-1.2x; batch
    16 within the machine's noise.) The blocks do not change any channel's summation order."""
    cdef Py_ssize_t n_blocks = max(1, min(ceil_div(ITEMS_PER_THREAD * n_threads, n_chunks),
                                          d.C // (2 * LANE_BLOCK)))
    return round_up(ceil_div(d.C, n_blocks), LANE_BLOCK)


cdef inline Py_ssize_t right_padding(const Dims *d) noexcept nogil:
    """The padding columns the last output pixel's window reaches past the image."""
    return (d.OW - 1) * d.sw + (d.kw - 1) * d.dil_w + 1 - d.pl - d.W


cdef inline bint window_in_place(const Dims *d) noexcept nogil:
    """Whether reduce_ring may read x's rows in place, with no ring: 3x3 windows at dilation 1 along
    the rows, with at most one padding column on either side, which dot_window leaves out of the
    first and the last pixel. It does where its items hold every channel, or blocks of IN_PLACE_BLOCK
    or more: the ring's copy took a quarter of the time (2 vCPUs of an AVX-512 AMD EPYC, one
    thread, batch 16, in place against the ring: mnv2-56x144 1.4x faster, -28x192 1.25x, -112x32
    1.2x, -112x96-s2 1.08x, -14x576 and -7x960 (2 blocks of 480) 1.1-1.3x); a block of a few
    vectors reads a slice of each pixel, which its compact ring rows keep in L1 (batch 1,
    mnv2-56x144 in 3 blocks of 48: 0.83x)."""
    return d.kh == 3 and d.kw == 3 and d.dil_w == 1 and d.pl <= 1 and right_padding(d) <= 1


cdef void reduce_ring(const floating *x, const floating *dy, floating *partial, Py_ssize_t partial_tap, Ring *ring,
                      Py_ssize_t row0, Py_ssize_t row1, Py_ssize_t c0, Py_ssize_t nc, const Dims *d, int tid,
                      bint in_place) noexcept nogil:
    """reduce_rows for NHWC with one filter per channel and zeros padding: from the forward's rings
    (thread tid's ring), each output row's source rows padded so that every tap runs over the whole
    row, with no edge columns apart; or, `in_place` (window_in_place), from x's rows themselves, the
    taps in the padding left out by dot_window. The window's rows in the image sum all their taps
    at once (dot_window, for 3x3 kernels); rows in the padding are skipped."""
    cdef Py_ssize_t unit, n, q, r, a, a0, a1, j, prev_n = -1, n_batched = 0
    cdef Py_ssize_t ring_pix = ring_pixel(nc, sizeof(floating))  # (a pixel's elements in the rings)
    cdef Py_ssize_t off = 0, src_pix = d.sw * ring_pix, src_tap = d.dil_w * ring_pix
    cdef int edges = 0
    cdef bint whole
    cdef Py_ssize_t batch = max(1, min(<Py_ssize_t> WINDOW_BATCH, WINDOW_PIXELS // ((d.sh + 1) * d.W)))
    cdef const floating *image_rows[3]
    cdef const floating **src = image_rows
    cdef const floating *dy_row
    # (in place, rows of whole windows wait here to run `batch` at a time: their rows are x's)
    cdef const floating *batch_rows[3 * WINDOW_BATCH]
    cdef const floating *batch_dy[WINDOW_BATCH]
    cdef floating *bias_partial = partial + d.kh * d.kw * partial_tap + c0
    if in_place:
        off, src_pix, src_tap = c0 - d.pl * d.C, d.sw * d.C, d.C
        edges = (DW_WINDOW_STRIDED | (DW_WINDOW_LEFT if d.pl == 1 else 0)
                 | (DW_WINDOW_RIGHT if right_padding(d) == 1 else 0)
                 | (DW_WINDOW_CACHED if d.OW >= WINDOW_CACHED_WIDTH
                    and d.N * (d.H * d.W + d.OH * d.OW) * d.C * sizeof(floating) <= PREFETCH_BYTES else 0))
    for unit in range(row0, row1):
        n, q = unit // d.OH, unit % d.OH
        if n != prev_n and not in_place:
            ring_reset(ring, tid)
        prev_n = n
        dy_row = dy + unit * d.OW * d.C + c0
        # the window's rows in the image, a0 to a1 (those in the padding lie above and below them)
        a0, a1 = d.kh, 0
        if in_place:
            for a in range(d.kh):
                r = q * d.sh + a * d.dil_h - d.pt
                if 0 <= r < d.H:
                    image_rows[a] = x + (n * d.H + r) * d.W * d.C
                    a0, a1 = min(a0, a), a + 1
        else:
            src = ring_rows(ring, tid, x, d, n, q, 1, c0, nc)
            for a in range(d.kh):
                if src[a] != <const floating *> ring.zeros:
                    a0, a1 = min(a0, a), a + 1
        whole = in_place and a0 == 0 and a1 == d.kh  # (in place: 3x3 windows, whose rows fit batch_rows)
        if whole:
            for a in range(d.kh):
                batch_rows[d.kh * n_batched + a] = src[a]
            batch_dy[n_batched] = dy_row
            n_batched += 1
        # (a row whose window lies partly in the padding runs after those batched before it: the rows' order)
        if n_batched and (not whole or n_batched == batch or unit == row1 - 1):
            dot_window(batch_rows, batch_dy, n_batched, off, src_pix, src_tap, d.C, partial + c0, partial_tap,
                       bias_partial, d.kh, d.kw, d.OW, nc, edges)
            n_batched = 0
        if whole:
            continue
        if a0 < a1 and dot_window(src + a0, &dy_row, 1, off, src_pix, src_tap, d.C,
                                  partial + a0 * d.kw * partial_tap + c0, partial_tap, bias_partial, a1 - a0, d.kw,
                                  d.OW, nc, edges):
            continue
        dot(<const floating *> NULL, 0, 0, dy_row, d.C, 1, bias_partial, 1, d.OW, nc)
        for a in range(a0, a1):
            j = 0
            while j < d.kw:
                dot_taps(src[a] + j * src_tap, src_pix, src_tap, dy_row, d.C,
                         partial + (a * d.kw + j) * partial_tap + c0, partial_tap,
                         min(d.kw - j, <Py_ssize_t> DW_DOT_MAX_TAPS), d.OW, nc)
                j += DW_DOT_MAX_TAPS


cdef Dims packed_band(const Dims *d, Py_ssize_t nc) noexcept nogil:
    """The geometry of reduce_packed's bands: an NHWC image of nc channels. For kernel rows of
    PADDED_BAND_TAPS taps or more, its rows hold their padding columns, zeros, so that every tap
    of a kernel row runs over the whole row at once (dot_taps); the taps that fall in the padding
    add zeros (and in other padding modes, the border plan adds what they read). Left to each
    tap's own columns, the first and last pixels of 56-pixel rows took a fifth of a 7x7 filter
    gradient's time; for shorter kernel rows the row-by-row transposes the padding takes cost as
    much as it saves or more (2 threads, batch 16, best of 4: 7x7 on 56-pixel planes 1.11x faster
    padded; 5x5 on 56-pixel planes 1.0x, on 28-pixel ones 0.95x; 3x3, mnv2-112x96-s2, 0.9x). At
    AVX2, where each edge tap's sums of 1-2 pixels (`dot`) took a quarter of 16x28x28x240 5x5, 5x5
    gains: on 2 vCPUs of an AMD EPYC, padded, batch 1 1.2-1.4x faster (14x14x240 1.35x), batch 4 on
    one thread 1.2x, batch 16 1.0-1.05x, 16x56x56x144 1.05-1.15x; so from 5 taps on."""
    cdef Dims band = d[0]
    band.nhwc, band.N, band.C = True, 1, nc
    if d.kw >= PADDED_BAND_TAPS:
        band.W, band.pl = d.pl + d.W + max(0, right_padding(d)), 0
    return band


cdef void reduce_packed(const floating *x, const floating *dy, floating *partial, const Axis *rows,
                        const Py_ssize_t *col_lo, const Py_ssize_t *col_hi, const Packing *pack, Py_ssize_t unit0,
                        Py_ssize_t unit1, Py_ssize_t c0, Py_ssize_t nc, const Dims *d) noexcept nogil:
    """reduce_rows for narrow NCHW planes (M = 1), whose rows are too short for vectors along them:
    for each unit (image, band of output rows) in [unit0, unit1), the source rows the band reads
    and its output-gradient rows are transposed, for channels [c0, c0+nc), into the thread's scratch
    in channel-interleaved order, and reduced there as NHWC rows are."""
    cdef Py_ssize_t unit, n, q0, q1, r
    cdef Span span
    cdef Dims band = packed_band(d, nc)
    cdef Py_ssize_t lead = d.pl - band.pl  # the padding columns a row holds before its pixels
    cdef floating *packed_x = <floating *> pack.scratch + threadid() * (pack.src_size + pack.dst_size)
    cdef floating *packed_dy = packed_x + pack.src_size
    for r in range(pack.src_rows):  # (the padding columns, which the transposes leave alone)
        memset(packed_x + r * band.W * nc, 0, lead * nc * sizeof(floating))
        memset(packed_x + (r * band.W + lead + d.W) * nc, 0, (band.W - lead - d.W) * nc * sizeof(floating))
    for unit in range(unit0, unit1):
        n = unit // pack.n_bands
        q0 = unit % pack.n_bands * pack.band_rows
        q1 = min(d.OH, q0 + pack.band_rows)
        span = band_sources(rows, q0, q1)
        if band.W == d.W:  # (rows back to back: one call for all of them)
            transpose(x + ((n * d.C + c0) * d.H + span.lo) * d.W, d.H * d.W, packed_x, nc, (span.hi - span.lo) * d.W,
                      nc)
        else:
            for r in range(span.lo, span.hi):
                transpose(x + ((n * d.C + c0) * d.H + r) * d.W, d.H * d.W,
                          packed_x + ((r - span.lo) * band.W + lead) * nc, nc, d.W, nc)
        transpose(dy + ((n * d.C + c0) * d.OH + q0) * d.OW, d.OH * d.OW, packed_dy, nc, (q1 - q0) * d.OW, nc)
        # the scratch holds rows span.lo.. and q0.. of the image: shift the bases to its row 0
        reduce_rows(packed_x - span.lo * band.W * nc, packed_dy - q0 * d.OW * nc, partial + c0, d.C * d.M, rows,
                    col_lo, col_hi, q0, q1, 0, nc, &band)


def filter_grad(const floating[::1] x, const floating[::1] dy, floating[::1] dfilters, floating[::1] dbias,
                g, int n_threads):
    """dfilters (kh*kw*C*M, the filter gradient) and dbias (C*M, the bias gradient, or None) from x
    and dy.

    The reduction over images and rows is cut into chunks fixed by the geometry alone; each chunk
    sums into its own partial buffer, and the partials are added in chunk order: the result is
    bitwise the same for any number of threads. Narrow NCHW planes are reduced in units of
    (image, band of rows) packed as NHWC (reduce_packed), other geometries in units of rows."""
    cdef Dims d = dims_of(g)
    cdef Borders borders = Borders(g)
    cdef Py_ssize_t item, n
    if spectral_filter_grad(x, dy, dfilters, dbias, &d, n_threads):  # (its rings hold every mode's padding)
        return
    d.mode = ZEROS  # (the paths below sum the taps inside the image; the padding's share follows)
    if not flat_filter_grad(x, dy, dfilters, dbias, &d, n_threads):
        reduce_filter_grad(x, dy, dfilters, dbias, &d, n_threads)
    if borders.plan == NULL:
        return
    with nogil:
        # each item owns a block of channels and visits images and pixels in a fixed order
        for item in prange((d.C + CHANNEL_BLOCK - 1) // CHANNEL_BLOCK, schedule="static",
                           num_threads=threads_for(&d, n_threads)):
            for n in range(d.N):
                border_rows(ADD_TO_FILTER, <floating *> &x[0], &dfilters[0], <floating *> &dy[0], borders.plan, &d, n,
                            0, d.OH, item * CHANNEL_BLOCK, min(<Py_ssize_t> CHANNEL_BLOCK, d.C - item * CHANNEL_BLOCK))


cdef int reduce_filter_grad(const floating[::1] x, const floating[::1] dy, floating[::1] dfilters,
                            floating[::1] dbias, const Dims *d, int n_threads) except -1:
    """filter_grad's reduction where neither spectral_filter_grad nor flat_filter_grad fits."""
    cdef Py_ssize_t CM = d.C * d.M, n_taps = d.kh * d.kw
    cdef bint packed = not d.nhwc and d.OW <= PACKED_WIDTH and d.M == 1
    cdef bint ringed = d.nhwc and d.M == 1
    cdef Py_ssize_t n_units = d.N * d.OH
    n_threads = threads_for(d, n_threads)
    cdef Py_ssize_t n_chunks = reduction_chunks(d, n_units // CHUNK_ROWS, 1)  # (reduce_ring's)
    cdef Py_ssize_t block_size = (PACKED_CHANNELS if packed else ring_reduction_block(d, n_chunks, n_threads)
                                  if ringed else CHANNEL_BLOCK if d.nhwc else 1)
    cdef Py_ssize_t n_blocks = max(1, d.C // block_size) if packed else (d.C + block_size - 1) // block_size
    # (in place unless x's pixels are a multiple of 2 KB, which the ring pads: ring_pixel)
    cdef bint in_place = (ringed and (n_blocks == 1 or block_size >= IN_PLACE_BLOCK) and window_in_place(d)
                          and ring_pixel(d.C, sizeof(floating)) == d.C)
    cdef bint x_ring = ringed and not in_place  # x's rows through a ring
    cdef Packing pack
    cdef Dims band
    cdef Py_ssize_t partial_size = (n_taps + 1) * CM
    cdef Py_ssize_t item, chunk, c0, e, unit0, unit1
    cdef floating *partials = NULL
    cdef floating *dbias_data = NULL if dbias is None else &dbias[0]
    cdef Py_ssize_t *col_lo = NULL
    cdef Axis rows
    cdef Ring ring
    rows.tap0 = NULL
    pack.scratch = NULL
    pack.w_mc = NULL
    ring.memory = ring.zeros = ring.book_memory = NULL
    try:
        col_lo = <Py_ssize_t *> malloc(2 * d.kw * sizeof(Py_ssize_t))
        if col_lo == NULL or not axis_alloc(&rows, d.OH):
            raise MemoryError()
        axis_forward(&rows, d.H, d.OH, d.kh, d.sh, d.dil_h, d.pt)
        band = packed_band(d, 1) if packed else d[0]  # (the rows reduce_rows reads: packed bands, or x's)
        column_ranges(col_lo, col_lo + d.kw, &band)
        if packed:
            # (M = 1: no filter to rearrange; packing_init is handed dfilters only as the filter it keeps)
            if not packing_init(&pack, &dfilters[0], &rows, d, False, n_threads):
                raise MemoryError()
            n_units = d.N * pack.n_bands
        if x_ring and not ring_init(&ring, RING_PIXELS, min(block_size, d.C), 1, False, d, sizeof(floating),
                                    n_threads):
            raise MemoryError()
        # chunks of units, fixed by the geometry alone; each item is (chunk, block of channels)
        if not ringed:  # (whose blocks are fixed by the geometry too)
            n_chunks = reduction_chunks(d, n_units, n_blocks)
        # (each item zeroes its own partial sums, in parallel and into its cache: calloc zeroing them all
        # on one thread took a tenth of mnv2-7x960's NHWC filter gradient at batch 16, 32 chunks of 38 KB)
        partials = <floating *> malloc(n_chunks * partial_size * sizeof(floating))
        if partials == NULL:
            raise MemoryError()
        with nogil:
            watch(True, &x[0], x.shape[0], &dy[0], dy.shape[0], NULL, 0, partials, n_chunks * partial_size)
            if packed:
                packing_watch(True, &pack, d, &dfilters[0], sizeof(floating), n_threads)
            if x_ring:
                ring_watch(True, &ring, d, n_threads)
            for item in prange(n_chunks * n_blocks, schedule="static", num_threads=n_threads):
                chunk = item // n_blocks
                c0 = (item % n_blocks) * block_size
                unit0, unit1 = chunk_start(chunk, n_chunks, n_units), chunk_start(chunk + 1, n_chunks, n_units)
                zero_partial(partials + chunk * partial_size, CM, n_taps, c0 * d.M,
                             (d.C - c0 if item % n_blocks == n_blocks - 1 else min(block_size, d.C - c0)) * d.M)
                if packed:
                    reduce_packed(&x[0], &dy[0], partials + chunk * partial_size, &rows, col_lo, col_lo + d.kw,
                                  &pack, unit0, unit1, c0, d.C - c0 if item % n_blocks == n_blocks - 1 else block_size,
                                  d)
                elif ringed:
                    reduce_ring(&x[0], &dy[0], partials + chunk * partial_size, CM, &ring, unit0, unit1, c0,
                                min(block_size, d.C - c0), d, threadid(), in_place)
                else:
                    reduce_rows(&x[0], &dy[0], partials + chunk * partial_size, CM, &rows, col_lo, col_lo + d.kw,
                                unit0, unit1, c0, min(block_size, d.C - c0), d)
            if x_ring:
                ring_watch(False, &ring, d, n_threads)
            if packed:
                packing_watch(False, &pack, d, &dfilters[0], sizeof(floating), n_threads)
            add_partials(partials, partial_size, n_chunks, n_threads)
            watch(False, &x[0], x.shape[0], &dy[0], dy.shape[0], NULL, 0, partials, n_chunks * partial_size)
            memcpy(&dfilters[0], partials, n_taps * CM * sizeof(floating))
            if dbias_data != NULL:
                memcpy(dbias_data, partials + n_taps * CM, CM * sizeof(floating))
    finally:
        free(partials)
        free(col_lo)
        packing_free(&pack, &dfilters[0])
        axis_free(&rows)
        ring_free(&ring)
    return 0


include "_rings.pxi"
include "_spectral.pxi"
include "_forward.pxi"
include "_machine.pxi"
include "_separable.pxi"
include "_results.pxi"
