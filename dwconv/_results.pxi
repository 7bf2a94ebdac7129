# Large results' memory, kept for the next call when their arrays are gone.
#
# A result of tens of MB lies beyond the C library's own reuse (glibc hands blocks over 32 MiB back
# to the system on free), so each call's result arrives as fresh pages, which the kernel zeroes on
# first touch: 44% of an input gradient's time at stride 2 (mnv2-112x96-s2 at batch 16, 77 MB, 2
# vCPUs of an AVX-512 AMD EPYC), where the convolution itself writes each element once. Results
# from POOL_FROM_BYTES up therefore come from blocks that a freed result leaves here, as
# TensorFlow's allocator keeps its memory: at most POOL_BLOCKS blocks and POOL_KEPT_BYTES wait,
# the oldest given back first, and release_memory() gives them all back. Blocks are handed out and
# returned with the GIL held.
#
# New blocks from HUGE_PAGES_FROM_BYTES up ask for huge pages (Linux's transparent ones, as NumPy
# asks for its arrays' memory): 512 times fewer faults, each zeroing 2 MiB. A fresh 768 MB result
# (an 8000x8000x3 float32 image, 2 threads) faulted in 4 KiB pages took 0.26-0.35 s a call, in huge
# pages 0.13-0.14. Smaller blocks do not ask: dwconv.dask's 48 MB chunk results of that image, 768
# MB of new memory in 0.2 s, met the system compacting memory for their huge pages, and the chunked
# image's medians of 3 calls went from 0.52-0.53 s to 0.40, 1.70 and 1.77 s.
from cpython.buffer cimport PyBuffer_FillInfo

cdef extern from *:
    """
    #if defined(__linux__)
    #include <sys/mman.h>
    #endif
    /* Ask for the whole 2 MiB pages in [p, p + n) to be huge ones, where the system has them. */
    static void dw_advise_huge_pages(void *p, size_t n)
    {
    #if defined(__linux__) && defined(MADV_HUGEPAGE)
        const uintptr_t huge = (uintptr_t)2 << 20;
        const uintptr_t begin = ((uintptr_t)p + huge - 1) & ~(huge - 1), end = ((uintptr_t)p + n) & ~(huge - 1);
        if (end > begin) madvise((void *)begin, end - begin, MADV_HUGEPAGE);
    #else
        (void)p;
        (void)n;
    #endif
    }
    """
    void dw_advise_huge_pages(void *p, size_t n)

cdef enum:
    POOL_FROM_BYTES = 32 << 20
    HUGE_PAGES_FROM_BYTES = 256 << 20
    POOL_BLOCKS = 4
    POOL_ALIGN = 64  # (blocks hold this many bytes more: their data starts at the first multiple)

cdef Py_ssize_t POOL_KEPT_BYTES = 1 << 30
cdef void *pool_data[POOL_BLOCKS]  # as malloc returned them
cdef Py_ssize_t pool_bytes[POOL_BLOCKS]
cdef int pool_count = 0  # blocks waiting: pool_data[:pool_count], oldest first


cdef void *pool_take(int k) noexcept:
    """Waiting block k, out of the pool."""
    global pool_count
    cdef void *data = pool_data[k]
    cdef int j
    pool_count -= 1
    for j in range(k, pool_count):
        pool_data[j], pool_bytes[j] = pool_data[j + 1], pool_bytes[j + 1]
    return data


cdef class PooledBlock:
    """nbytes bytes of writable memory, 64-byte aligned, a buffer that NumPy arrays view; back to
    the pool when the last of them is gone."""
    cdef void *data  # as malloc returned it
    cdef Py_ssize_t nbytes

    def __getbuffer__(self, Py_buffer *view, int flags):
        cdef char *aligned = <char *> round_up(<Py_ssize_t> self.data, POOL_ALIGN)
        PyBuffer_FillInfo(view, self, aligned, self.nbytes, 0, flags)

    def __releasebuffer__(self, Py_buffer *view):
        pass

    def __dealloc__(self):
        global pool_count
        if self.data == NULL:
            return
        if self.nbytes > POOL_KEPT_BYTES:
            free(self.data)
            return
        cdef Py_ssize_t kept = self.nbytes
        cdef int k
        for k in range(pool_count):
            kept += pool_bytes[k]
        while pool_count and (pool_count == POOL_BLOCKS or kept > POOL_KEPT_BYTES):
            kept -= pool_bytes[0]
            free(pool_take(0))
        pool_data[pool_count], pool_bytes[pool_count] = self.data, self.nbytes
        pool_count += 1


# (for dwconv._args, which asks the pool for results this large)
POOLED_FROM_BYTES = POOL_FROM_BYTES


def pooled_block(Py_ssize_t nbytes):
    """A PooledBlock of nbytes (POOL_FROM_BYTES or more), a waiting block of that size when there
    is one."""
    cdef PooledBlock block = PooledBlock()
    cdef int k
    for k in range(pool_count - 1, -1, -1):  # (the newest first: its pages are likelier in cache)
        if pool_bytes[k] == nbytes:
            block.data, block.nbytes = pool_take(k), nbytes
            break
    else:
        block.data = malloc(nbytes + POOL_ALIGN)
        if block.data == NULL:
            raise MemoryError(f"no memory for a result of {nbytes} bytes")
        block.nbytes = nbytes
        if nbytes >= HUGE_PAGES_FROM_BYTES:
            dw_advise_huge_pages(block.data, nbytes + POOL_ALIGN)
    return block


def release_memory():
    """Give every waiting block back to the system; returns how many bytes they held."""
    cdef Py_ssize_t released = 0
    while pool_count:
        released += pool_bytes[0]
        free(pool_take(0))
    return released


def kept_bytes():
    """The bytes of the blocks waiting for results."""
    return sum(pool_bytes[k] for k in range(pool_count))
