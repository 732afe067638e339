"""The AF detector's look-back: where the rhythm's irregularity changed.

:class:`~detect.af.AfDetector` decides from a running median of RR
differences; these two ring buffers remember enough of the recent past to
place the change it decides on (docs in :mod:`detect.af`, steps 5 and 6):

* :class:`RecentIrregularity`: the last values of the median m(n) with their
  beats, RR intervals and turning points (Dash et al., Ann Biomed Eng
  37:1701-1709, 2009), for offsets and for the median's change point, the
  clock of the episode rules;
* :class:`IrregularIntervals`: whether each recent interval differs from most
  of its predecessors, for the onset placed on the intervals themselves.

Both locate a change by a CUSUM (E. S. Page, "Continuous inspection
schemes", Biometrika 41:100-115, 1954). Typed ring buffers, not deques of
tuples: they are per device, and memory per device is a target.
"""

from __future__ import annotations

from array import array

# Page's reference value for the onset CUSUM: a Bernoulli change from p0 to p1
# weighs an interval ln(p1/p0) if irregular and ln((1-p1)/(1-p0)) if not, which is
# sum(x - q) scaled, with q = ln((1-p0)/(1-p1)) / ln(p1(1-p0) / (p0(1-p1))). Irregular
# shares measured on the AFDB tuning records: p0 = 0.118 outside AF, p1 = 0.774 in it.
ONSET_REFERENCE = 0.42


class RecentIrregularity:
    """The last ``size`` values of m(n) with their beats, RR and turning-point flags.

    Running sums give the mean rate and the turning-point share in O(1). Kept
    in typed ring buffers, oldest at ``_head``: a deque of tuples cost about
    9 KB per device in boxed floats and ints, these 1.6 KB (values unchanged:
    floats stay float64, beats fit int64).
    """

    __slots__ = ("size", "_m", "_beat", "_rr", "_turn", "_head", "_len", "rr_sum", "turns")

    def __init__(self, size: int) -> None:
        self.size = size
        self._m = array("d", bytes(8 * size))
        self._beat = array("q", bytes(8 * size))
        self._rr = array("d", bytes(8 * size))
        self._turn = bytearray(size)
        self._head = 0
        self._len = 0
        self.rr_sum = 0.0
        self.turns = 0

    def push(self, value: float, index: int, rr: float, turning: bool) -> None:
        size, head, n = self.size, self._head, self._len
        full = n == size
        at = head if full else (head + n) % size
        rrs, turns = self._rr, self._turn
        old_rr, old_turn = rrs[at], turns[at]
        self._m[at], self._beat[at], rrs[at], turns[at] = value, index, rr, turning
        if full:
            # Added, then the oldest taken away: the float sums' order of operations.
            self.rr_sum = self.rr_sum + rr - old_rr
            self.turns = self.turns + turning - old_turn
            self._head = (head + 1) % size
        else:
            self.rr_sum += rr
            self.turns += turning
            self._len = n + 1

    def turning_ratio(self) -> float:
        return self.turns / self._len if self._len else 0.0

    def change_back(self, level: float, rising: bool) -> int:
        """Where m(n) changed from regular to irregular (or back), in values before the last.

        CUSUM (Page 1954) over ``high = m > level``: the change is where
        sum(high - 1/2) over the part after it is largest (rising) or
        smallest (falling).
        """
        head, size, values = self._head, self.size, self._m
        best, best_k, acc = 0.0, self._len - 1, 0.0
        for k in range(self._len - 1, -1, -1):
            high = values[(head + k) % size] > level
            acc += (high - 0.5) if rising else (0.5 - high)
            if acc > best:
                best, best_k = acc, k
        return self._len - 1 - best_k

    def change_point(self, back: int, lag: int) -> int:
        """Beat of the change ``back`` values before the last (:meth:`change_back`).

        m(n) is a running median, so it changes about ``lag`` (half its window)
        intervals after the rhythm: the beat returned is that many earlier (or
        the oldest held).
        """
        return self._beat[(self._head + max(0, self._len - 1 - back - lag)) % self.size]

    def heart_rate(self, fs: float) -> float:
        return 60.0 * fs * self._len / self.rr_sum if self.rr_sum > 0 else 0.0


class IrregularIntervals:
    """The last ``size`` intervals' first beats and irregular flags, for onset placement.

    Kept apart from :class:`RecentIrregularity`: it also holds the intervals before m(n)
    exists (the running medians filling up), so an onset is placed there too.
    """

    __slots__ = ("size", "_start", "_high", "_head", "_len")

    def __init__(self, size: int) -> None:
        self.size = size
        self._start = array("q", bytes(8 * size))
        self._high = bytearray(size)
        self._head = 0
        self._len = 0

    def push(self, start: int, irregular: bool) -> None:
        if self._len == self.size:
            at = self._head
            self._head = (self._head + 1) % self.size
        else:
            at = (self._head + self._len) % self.size
            self._len += 1
        self._start[at], self._high[at] = start, irregular

    def onset(self, after: int, reach: int) -> int:
        """First beat of the irregular run that ends the buffer (CUSUM, Page 1954).

        The change is where sum(irregular - q) over the part after it is
        largest, q = ``ONSET_REFERENCE``, searched over the last ``reach + 1``
        intervals and not among those that began before ``after``.
        """
        head, size, starts, high = self._head, self.size, self._start, self._high
        best, best_k, acc = 0.0, self._len - 1, 0.0
        for k in range(self._len - 1, max(-1, self._len - 2 - reach), -1):
            i = (head + k) % size
            if starts[i] < after:
                break
            acc += high[i] - ONSET_REFERENCE
            if acc > best:
                best, best_k = acc, k
        return max(starts[(head + max(best_k, 0)) % size], after)
