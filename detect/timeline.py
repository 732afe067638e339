"""Map internal-rate sample indices to device time, across signal gaps.

Within a contiguous segment, device time is ``t_anchor + (index - i_anchor) / fs``.
A gap re-anchors the mapping at the index where samples resume, so evidence and
alarm times stay in device time even though the index does not count the
missing samples (or counts them approximately).
"""

from __future__ import annotations

import bisect
import math


class Timeline:
    """``timeline(index) -> device time``; ``anchor(index, time)`` after a gap."""

    def __init__(self, fs: float, t_origin: float = 0.0) -> None:
        if not fs > 0 or not math.isfinite(fs):
            raise ValueError(f"Timeline rate {fs!r} Hz must be a positive number.")
        if not math.isfinite(t_origin):
            raise ValueError(f"Timeline origin {t_origin!r} s must be finite.")
        self.fs = float(fs)
        self._indices: list[int] = [0]
        self._times: list[float] = [float(t_origin)]

    def anchor(self, index: int, time: float) -> None:
        """From ``index`` on, sample ``index`` is at device time ``time``."""
        if index < self._indices[-1]:
            raise ValueError(f"Timeline anchor at index {index} precedes the last anchor "
                             f"at {self._indices[-1]}.")
        if not math.isfinite(time):
            raise ValueError(f"Timeline anchor time {time!r} s must be finite.")
        if index == self._indices[-1]:
            self._times[-1] = float(time)
        else:
            self._indices.append(int(index))
            self._times.append(float(time))

    def __call__(self, index: int) -> float:
        k = bisect.bisect_right(self._indices, index) - 1
        k = max(k, 0)
        return self._times[k] + (index - self._indices[k]) / self.fs
