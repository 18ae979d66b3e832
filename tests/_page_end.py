"""Arrays that end where readable memory ends: the page after them is PROT_NONE, so a
kernel that reads one byte past the array's last value (an unmasked vector load of a
short row's tail) is stopped by SIGSEGV instead of reading whatever follows."""
import ctypes
import mmap
import sys

import numpy as np
import pytest

PROT_NONE = 0


def array_at_page_end(values):
    """A C-contiguous copy of ``values`` whose last byte is the last readable byte before
    a PROT_NONE page (Linux and other POSIX systems with mprotect; skips elsewhere). The
    array holds the mapping alive; the guard page goes with it."""
    if not sys.platform.startswith("linux"):
        pytest.skip("mprotect guard pages: Linux only")
    values = np.ascontiguousarray(values)
    page = mmap.PAGESIZE
    size = -(-max(values.nbytes, 1) // page) * page
    buf = mmap.mmap(-1, size + page)
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    if libc.mprotect(base + size, page, PROT_NONE) != 0:
        pytest.skip(f"mprotect failed (errno {ctypes.get_errno()})")
    raw = np.frombuffer(buf, np.uint8, count=size)
    out = raw[size - values.nbytes:].view(values.dtype).reshape(values.shape)
    out[...] = values
    return out
