"""A fixed glibc mmap threshold for the service process: per-tick temporaries go back to the OS.

A service tick allocates a few large arrays for all devices at once (the
batched filters and windows, detect/batch.py; the beat model's activations)
and frees them at the end of the tick. glibc raises its mmap threshold to the
size of each large block freed, so from the second tick on these blocks come
from the heap instead, and once small long-lived objects sit between them the
heap cannot shrink: after 30 s at 1,000 devices about 20 KB per device of RSS
was such free heap (docs/performance.md, Part 3). Fixing the threshold at
glibc's own default (128 KiB) keeps large blocks in their own mappings,
returned when freed. It changes where memory comes from, never a value.
Same as ``MALLOC_MMAP_THRESHOLD_=131072`` in the environment.
"""

from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3        # glibc <malloc.h>
THRESHOLD = 128 * 1024       # glibc's default before its dynamic adjustment


def fix_mmap_threshold(threshold: int = THRESHOLD) -> bool:
    """Set glibc's mmap threshold for this process; False where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))


__all__ = ["fix_mmap_threshold"]
