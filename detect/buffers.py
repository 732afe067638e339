"""Look-back buffers that stages append each chunk to and trim from the front,
and the working arrays a batched pass reuses from tick to tick.

Recent cleaned signal is kept in preallocated arrays (filled to ``n``)
instead of concatenating per chunk, which cost a copy of the whole look-back
every time: the beat featurizer's own (:func:`append`), and one
:class:`History` per pipeline segment that VF, quality and the wide-complex
tracker all read. :class:`Scratch` holds the batched pass's temporaries.
"""

from __future__ import annotations

import math
import mmap

import numpy as np

from .types import FloatArray

# The dtype of float64 arrays: ``type(x) is np.ndarray and x.dtype is F64`` tells a
# block that np.asarray(x, np.float64) would return as it is, at a third of the call's
# cost (the stages check every block they are pushed).
F64 = np.dtype(np.float64)


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


class History:
    """Recent samples of one contiguous signal, read by one or more stages.

    A pipeline segment's VF detector and quality judge both look back over the
    cleaned signal (VF up to a 4 s window, quality the previous 2 s window and
    the one being filled); one history holds it once for both. Each reader
    puts every block it is given (a block already held is not written again:
    the second reader's put is free) and says from which stream index it still
    needs samples; everything before the earliest need is dropped. The samples
    live in one preallocated array: a drop only moves where they begin
    (``data`` is a view from there), and a put that finds no room after them
    moves them to the front first, so with a block's worth of spare room they
    move every other block instead of every time (the array is grown by
    :func:`append` if a long block does not fit, and shrunk back to
    ``capacity`` once half of that holds it all).
    """

    __slots__ = ("data", "start", "n", "_buf", "_need", "_capacity")

    def __init__(self, start: int, capacity: int) -> None:
        self._capacity = capacity
        self._buf = self.data = np.empty(capacity)   # data: from the first sample held
        self.start = int(start)          # stream index of data[0]
        self.n = 0                       # samples held
        self._need: list[int] = []       # per reader: nothing before this is needed

    def join(self, start: int) -> int:
        """A new reader, whose signal begins at stream index ``start`` (where the
        history ends: it has read nothing yet); returns its number for :meth:`need`."""
        if start != self.end:
            raise ValueError(f"A reader starting at stream index {start} cannot join a "
                             f"history that ends at {self.end}.")
        self._need.append(start)
        return len(self._need) - 1

    @property
    def end(self) -> int:
        """Stream index just after the last sample held."""
        return self.start + self.n

    def put(self, index: int, block: FloatArray) -> None:
        """``block`` continues the signal at stream index ``index``; the part already held is
        skipped (it is the same signal, put by another reader)."""
        n = self.n
        skip = self.start + n - index               # (self.end, without the property call)
        m = len(block) - skip
        if m <= 0 and skip >= 0:
            return                                  # all held: the usual second reader's put
        if skip < 0:
            raise ValueError(f"A block at stream index {index} leaves a hole after "
                             f"{self.end} in the history.")
        data = self.data
        if n + m <= data.size:                      # it fits: append()'s path, without the call
            data[n:n + m] = block[skip:] if skip else block
        else:
            buf = self._buf
            if data is not buf:
                buf[:n] = data[:n]                  # to the front (numpy copies overlaps safely)
            self._buf = self.data = append(buf, n, block[skip:])
        self.n = n + m

    def view(self, lo: int, hi: int) -> np.ndarray:
        """Samples ``lo`` to ``hi`` (stream indices), a view valid until the next put or need."""
        start = self.start
        if lo < start or hi > start + self.n or lo > hi:
            raise ValueError(f"Samples {lo}..{hi} are not all held (history holds "
                             f"{start}..{self.end}).")
        return self.data[lo - start:hi - start]

    def need(self, reader: int, index: int) -> None:
        """Reader ``reader`` needs nothing before stream index ``index`` any more."""
        needs = self._need
        needs[reader] = index
        low = index                    # min(needs), without the builtin's argument parsing
        for v in needs:
            if v < low:
                low = v
        cut = low - self.start
        if cut > 0:
            held = self.n
            if cut > held:
                cut = held
            n = held - cut
            self.n = n
            self.start += cut
            # The samples stay where they are (a put moves them when it needs the
            # room); with none left the next put writes from the front again.
            self.data = self.data[cut:] if n else self._buf
            # Shrink back once half the capacity holds it all. Only a cut can make that
            # true (a put only adds samples), so it is checked only here.
            if self._buf.size > self._capacity and 2 * n <= self._capacity:
                buf = np.empty(self._capacity)
                buf[:n] = self.data[:n]
                self._buf = self.data = buf


class Scratch:
    """Working arrays that a batched pass (detect/batch.py) takes afresh every tick, kept.

    The service fixes glibc's mmap threshold at 128 KiB (ecgwatch/allocator.py),
    so every temporary of a batched pass over 64 devices' windows (512 KB for
    64 VF windows of 1,000 samples) was a new mapping: its pages faulted in on
    first write and went back to the OS when it was freed, about five page
    faults per chunk for the VF features alone, each costing microseconds of
    kernel time in a virtual machine. A pass that takes its arrays from here
    writes into the same pages every tick instead. Their size is bounded by
    the pass (``detect.batch.ROWS`` rows), not by the fleet.

    :meth:`take` returns a C-contiguous array of the shape and dtype asked for, with
    whatever the last user left in it (as ``np.empty``); an array stays valid
    until the next :meth:`take` of the same name. A name holds bytes, so one
    name can serve arrays of different dtypes whose lives do not overlap. Not
    thread-safe: one per batched pass, like the :class:`detect.batch.SignalBatcher`
    that owns it.
    """

    __slots__ = ("_arrays",)

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def take(self, name: str, shape: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
        """A working array ``name`` of ``shape`` (its memory grown, never shrunk, as needed)."""
        buf = self._arrays.get(name)
        if buf is not None:
            try:
                return np.ndarray(shape, dtype, buf)        # a view of its first bytes
            except TypeError:                               # too small: grow it below
                pass
        # A mapping of its own, page-aligned, outside the heap: the heap's free
        # chunks stay for the small objects that come and go.
        size = math.prod(shape) * np.dtype(dtype).itemsize
        buf = np.frombuffer(mmap.mmap(-1, max(size, 1)), np.uint8)
        self._arrays[name] = buf
        return np.ndarray(shape, dtype, buf)

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return sum(a.nbytes for a in self._arrays.values())


def fresh(name: str, shape: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
    """:meth:`Scratch.take` without a scratch: a new array (``np.empty``)."""
    return np.empty(shape, dtype)
