"""Look-back buffers that stages append each chunk to and trim from the front.

VF, the beat featurizer and the wide-complex tracker each keep recent cleaned
signal in one preallocated array (filled to ``n``) instead of concatenating
per chunk, which cost a copy of the whole look-back every time.
"""

from __future__ import annotations

import numpy as np

from .types import FloatArray


def append(buf: np.ndarray, n: int, block: FloatArray) -> np.ndarray:
    """Write ``block`` after the first ``n`` samples of ``buf``; returns ``buf``,
    or a copy twice as large (or just large enough) if the block did not fit,
    so that appends stay amortised O(len(block))."""
    m = len(block)
    if n + m > buf.size:
        grown = np.empty(max(n + m, 2 * buf.size), dtype=buf.dtype)
        grown[:n] = buf[:n]
        buf = grown
    buf[n:n + m] = block
    return buf
