"""Fork safety: a process forked after dwconv ran multithreaded still runs dwconv, and does not hang.

GNU libgomp is not fork-safe. Its thread pool belongs to the thread that started it, and a child
forked from that thread inherits the pool's bookkeeping but not its threads: the child's next
parallel region waits for them forever (PyTorch's DataLoader workers, ``multiprocessing`` with the
fork start method). So, just before every ``os.fork``, the forking thread shuts its pool down
(OpenMP 5.0's ``omp_pause_resource_all``); parent and child each start a fresh pool at their next
parallel call, which costs the parent a few thread starts per fork. Where the OpenMP runtime cannot
shut its pool down, the child runs dwconv on one thread instead: a one-thread parallel region never
waits for the pool. LLVM's libomp resets itself in a forked child and needs neither; both are
harmless there, and nothing happens in a build without OpenMP.
"""
import os

from dwconv import _kernels

# Whether the last pool shutdown before a fork succeeded (set in the parent, read in the child).
_released = True

# True in a process forked while a thread pool could not be shut down: every call runs on one thread.
serial_only = False


def _before_fork():
    global _released
    _released = _kernels.release_threads() == 0


def _after_fork_in_child():
    global serial_only
    serial_only = serial_only or not _released


if hasattr(os, "register_at_fork"):  # POSIX; elsewhere there is no fork
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
