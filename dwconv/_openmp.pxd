# OpenMP behind one guard, so the same Cython source builds with and without an OpenMP compiler
# (the serial build gets single-threaded stand-ins; prange then runs as a plain loop).
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define DW_OPENMP 1
    #else
    #define DW_OPENMP 0
    static int omp_get_max_threads(void) { return 1; }
    #endif
    """
    const bint DW_OPENMP
    int omp_get_max_threads() noexcept nogil
