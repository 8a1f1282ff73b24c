"""Process settings: freed arrays stay in the process (glibc); numpy asks for no huge pages."""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
import sys

import pytest

_CHILD = """
import ctypes, ctypes.util, sys
import numpy as np
from pneumolens.runtime import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = MallInfo2
took = keep_freed_memory() if sys.argv[1] == "keep" else False
a = np.ones(100 * 2**20, dtype=np.uint8)  # 100 MiB
del a
print(int(took), libc.mallinfo2().fordblks // 2**20)
"""


def _child(mode: str) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True).stdout
    took, free_mib = out.split()
    return int(took), int(free_mib)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_a_freed_volume_stays_in_the_heap_for_the_next_array():
    name = ctypes.util.find_library("c")
    if name is None or not hasattr(ctypes.CDLL(name), "mallinfo2"):
        pytest.skip("not glibc >= 2.33")
    took, kept = _child("keep")
    assert took == 1
    assert kept >= 100  # the 100 MiB are free heap now, ready for the next array
    _, default = _child("default")
    assert default < 100  # glibc's default unmaps a block that large


_HUGEPAGE_CHILD = """
from pneumolens.runtime import avoid_huge_page_stalls
try:
    from numpy._core.multiarray import _set_madvise_hugepage
except ImportError:
    from numpy.core.multiarray import _set_madvise_hugepage
changed = avoid_huge_page_stalls()
print(int(changed), int(_set_madvise_hugepage(True)))  # the second: the setting it had
"""


@pytest.mark.parametrize(("env", "expected"), [(None, "1 0"), ("1", "0 1"), ("0", "0 0")])
def test_numpy_huge_pages_are_off_unless_the_user_chose(env, expected):
    import os

    environ = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if env is not None:
        environ["NUMPY_MADVISE_HUGEPAGE"] = env
    out = subprocess.run([sys.executable, "-c", _HUGEPAGE_CHILD], capture_output=True, text=True, check=True, env=environ)
    assert out.stdout.split() == expected.split()
