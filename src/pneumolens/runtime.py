"""Process-wide settings for processes that run analyses (the CLI, the service's job workers)."""

from __future__ import annotations

# glibc mallopt(3) parameters.
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


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
