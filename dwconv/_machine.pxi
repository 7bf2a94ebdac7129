# The machine's limits, measured: what the benchmark (dwconv.bench) reads kernel efficiency against.
# Included at the end of _kernels.pyx, so prange, malloc, free and active_isa come from there.
from libc.stdint cimport int64_t
from libc.string cimport memset

from time import perf_counter

cdef extern from "_peak.h" nogil:
    int64_t dw_peak_flops_per_iteration(int level)
    float dw_peak_fma(int level, int64_t iterations, float seed)
    void dw_peak_copy(int level, char *dst, const char *src, size_t n)

# _peak.h has a loop for each level of the micro-kernels.
PEAK_ISAS = ISA_NAMES


cdef int peak_level(isa) except -1:
    """The index in PEAK_ISAS of level `isa` (None: the level the kernels use now, active_isa()),
    which this CPU must run."""
    isa = active_isa() if isa is None else isa
    if isa not in PEAK_ISAS:
        raise ValueError(f"no FMA peak or copy loop for the level {isa!r}; there are {PEAK_ISAS}")
    if not dw_isa_supported(PEAK_ISAS.index(isa)):
        raise ValueError(f"this CPU does not run {isa}")
    return PEAK_ISAS.index(isa)


cdef double fma_seconds(int level, int64_t iterations, int n_threads) except -1:
    """Wall seconds for n_threads threads each running the peak loop `iterations` times."""
    cdef int t
    cdef float total = 0
    start = perf_counter()
    for t in prange(n_threads, nogil=True, schedule="static", num_threads=n_threads):
        total += dw_peak_fma(level, iterations, 1e-3 * (t + 1))
    seconds = perf_counter() - start
    # Every chain stays near 1000 (see _peak.h): a sum that is not proves the loop misbehaved, and
    # using the sum keeps the compiler from dropping the loops that make it.
    if not 0 < total < 1e9:
        raise RuntimeError(f"the FMA peak loop summed to {total}")
    return seconds


def fma_peak_gflops(int n_threads, double seconds=0.1, isa=None):
    """Multiply-add peak of n_threads threads in GFLOP/s (2 flops per multiply-add and lane).

    Runs the peak loop of _peak.h at the instruction-set level `isa` (default: the level the kernels
    use now, active_isa()) on every thread: the best of three runs of about seconds / 3 each."""
    cdef int level = peak_level(isa)
    # Iterations for runs of about seconds / 3, from the fastest of three runs of one thread lasting at
    # least 1 ms: no thread wakes up in those, and a wake-up delayed by a busy machine once made a
    # first short run 100x too slow, and so the timed runs all too short to time.  They also wake the
    # vector units up (AVX-512 units start slowly on some CPUs).
    cdef int64_t iterations = 1 << 10
    while fma_seconds(level, iterations, 1) < 1e-3:
        # 2^30 iterations take a second or more: a loop still this fast runs outside the timed region
        if iterations > 1 << 30:
            raise RuntimeError("the FMA peak loop takes no time: the compiler moved it out of the timing")
        iterations *= 2
    per_iteration = min([fma_seconds(level, iterations, 1) for _ in range(3)]) / iterations
    iterations = max(1, <int64_t> (seconds / 3 / per_iteration))
    best = min([fma_seconds(level, iterations, n_threads) for _ in range(3)])
    return n_threads * iterations * dw_peak_flops_per_iteration(level) / best / 1e9


cdef void fill_part(char *buf, Py_ssize_t nbytes, Py_ssize_t part, int t) noexcept nogil:
    """Thread t's part of buf[:nbytes] (parts of `part` bytes), set to ones."""
    cdef Py_ssize_t lo = min(nbytes, t * part)
    memset(buf + lo, 1, min(nbytes, lo + part) - lo)


cdef void copy_part(int level, char *dst, const char *src, Py_ssize_t nbytes, Py_ssize_t part,
                    int t) noexcept nogil:
    """Thread t's part of the copy of src[:nbytes] to dst (parts of `part` bytes)."""
    cdef Py_ssize_t lo = min(nbytes, t * part)
    dw_peak_copy(level, dst + lo, src + lo, min(nbytes, lo + part) - lo)


def copy_bandwidth(Py_ssize_t nbytes, int n_threads, int tries=3, isa=None):
    """GB/s of a copy of nbytes split into n_threads contiguous parts copied in parallel, counting
    the bytes read and the bytes written (2 * nbytes a copy): the best of `tries` copies.

    The copy is _peak.h's loop of vectors of the level `isa` (default: the kernels' active_isa()),
    with ordinary stores as the kernels make; np.copyto's memcpy would measure other things."""
    if nbytes < 1 or n_threads < 1 or tries < 1:
        raise ValueError("nbytes, n_threads and tries must be positive")
    cdef int level = peak_level(isa)
    # Parts of whole steps of the widest copy loop (4 vectors of 64 bytes): only the last part has a
    # tail to copy byte by byte.
    cdef Py_ssize_t part = ((nbytes + n_threads - 1) // n_threads + 255) // 256 * 256
    cdef char *src = <char *> malloc(nbytes)
    cdef char *dst = <char *> malloc(nbytes)
    cdef int t
    try:
        if src == NULL or dst == NULL:
            raise MemoryError()
        # Each thread first writes the pages it later copies: the OS maps a page at its first write
        # (untimed here), on the memory node of the CPU that writes it.
        for t in prange(n_threads, nogil=True, schedule="static", num_threads=n_threads):
            fill_part(src, nbytes, part, t)
            fill_part(dst, nbytes, part, t)
        best = float("inf")
        for _ in range(tries):
            start = perf_counter()
            for t in prange(n_threads, nogil=True, schedule="static", num_threads=n_threads):
                copy_part(level, dst, src, nbytes, part, t)
            best = min(best, perf_counter() - start)
    finally:
        free(src)
        free(dst)
    return 2 * nbytes / best / 1e9
