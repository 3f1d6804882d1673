"""glibc's policy for freed memory: keep it in the process for reuse (grad V on the CPU then
runs 1.0 to 3.5x faster, by machine and image size), or hand it back to the system now.

glibc hands every block above its mmap threshold (at most 32 MiB) to the kernel when it is
freed, and takes fresh, zero-filled pages for the next one. grad V of a large image, of a
colour image (three opponent channels in one batch), of a batch of chains or of a symmetry
orbit allocates activations of tens to hundreds of MiB on every call, so on the CPU much of its
time went to page faults. ``keep_freed_memory()`` serves every block from the heap and keeps
freed ones there for the next call, as PyTorch's own caching allocator does on a GPU
(``python benchmarks/cpu_memory_check.py`` measures it; benchmarks/experiments.md, "Keeping
freed memory on the CPU").

The price: the process's resident memory stays near its peak after a large call, until the
process ends. The command line always pays it (one solve or training run per process); a
Python caller opts in with ``em_inverse.keep_freed_memory()``. ``return_freed_memory()`` hands
the heap's free pages back at once (``bench.measure.PeakMemory`` does, before its baseline).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools

#: glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

#: Free memory at the top of the heap that glibc keeps rather than returning it (bytes).
KEPT_FREE_BYTES = 2**30


_kept = False


def keep_freed_memory() -> bool:
    """Make glibc serve large blocks from the heap and keep freed memory for reuse (at most
    ``KEPT_FREE_BYTES`` at the heap's top). Process-wide and for the rest of the process;
    calling it again does nothing. Returns whether it applied: False where the C library is
    not glibc (macOS, Windows, musl), which keep their own policies."""
    global _kept
    libc = _glibc()
    _kept = _kept or (libc is not None and bool(libc.mallopt(_M_MMAP_MAX, 0))
                      and bool(libc.mallopt(_M_TRIM_THRESHOLD, KEPT_FREE_BYTES)))
    return _kept


def freed_memory_kept() -> bool:
    """Whether ``keep_freed_memory`` has applied in this process (for report headers)."""
    return _kept


def return_freed_memory() -> None:
    """Hand the heap's free pages back to the system now (glibc's ``malloc_trim``), so that
    they leave the resident size; nothing where the C library is not glibc."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.cache
def _glibc():
    """The C library if it is glibc (it has ``mallopt`` and ``malloc_trim``), else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if libc is None or not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None
    return libc
