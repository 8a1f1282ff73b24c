"""Process-wide settings for processes that run analyses (the CLI, the service's job workers)."""

from __future__ import annotations

import os

# glibc mallopt(3) parameters.
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def prepare_for_analyses() -> None:
    """The process settings of an analysis process: :func:`keep_freed_memory` and
    :func:`avoid_huge_page_stalls`. Called once at start by the CLI and the service's job workers."""
    keep_freed_memory()
    avoid_huge_page_stalls()


def avoid_huge_page_stalls() -> bool:
    """Stop numpy from asking for transparent huge pages for its arrays.

    numpy marks every array of 4 MB or more ``madvise(MADV_HUGEPAGE)``. Where the kernel's THP
    ``defrag`` setting is ``madvise`` (a common default), each first touch of such memory may
    compact memory synchronously to find a 2 MB page: on this project's 2-core virtual machine
    touching 1 GB took 2.2-7.2 s that way and 0.5 s with ordinary pages, and a 150-slice
    ``analyze`` spent 4.2-4.8 s of system time against 1.7-1.8 s (docs/performance.md). An
    explicit ``NUMPY_MADVISE_HUGEPAGE`` in the environment is the user's choice and is kept.
    Returns whether the setting was changed.
    """
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return False
    try:  # documented since numpy 1.20 as the switch for this behaviour, private by name
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:
        try:
            from numpy.core.multiarray import _set_madvise_hugepage  # numpy < 2
        except ImportError:
            return False
    _set_madvise_hugepage(False)
    return True


def keep_freed_memory() -> bool:
    """Let this process reuse the memory of freed arrays instead of returning it to the system.

    An analysis allocates and frees many volume-sized arrays (150x512x512 float32 is 157 MB).
    glibc serves each from a fresh ``mmap`` and unmaps it when freed, so every new array is
    paged in and zeroed again by the kernel; on a 2-core virtual machine that was 8 of the 21
    CPU seconds of a 150-slice ``analyze`` (system time, 282,000 page faults). Taking large
    blocks from the heap and never trimming it (``M_MMAP_MAX`` 0, ``M_TRIM_THRESHOLD`` maximal)
    halves the page faults; the process keeps its peak memory until it exits (a command soon; a
    service worker reuses it for the next study). Returns whether the C library took the
    settings (glibc only; elsewhere nothing changes).
    """
    import ctypes

    try:  # the C library already loaded in this process (no library search at start-up)
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # not glibc, or no process handle (Windows)
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
