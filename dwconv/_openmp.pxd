# OpenMP behind one guard, so the same Cython source builds with and without an OpenMP compiler
# (the serial build gets single-threaded stand-ins; prange then runs as a plain loop).
#
# dw_release_threads() shuts down the calling thread's thread pool (OpenMP 5.0's
# omp_pause_resource_all: GNU libgomp since GCC 9, LLVM libomp since 8): 0 on success (and in
# the serial build, which has none), nonzero where the runtime cannot.
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define DW_OPENMP 1
    #if _OPENMP >= 201811 || defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 9)
    static int dw_release_threads(void) { return omp_pause_resource_all(omp_pause_hard); }
    #else
    static int dw_release_threads(void) { return -1; }
    #endif
    #else
    #define DW_OPENMP 0
    static int omp_get_max_threads(void) { return 1; }
    static int dw_release_threads(void) { return 0; }
    #endif
    """
    const bint DW_OPENMP
    int omp_get_max_threads() noexcept nogil
    int dw_release_threads() noexcept nogil
