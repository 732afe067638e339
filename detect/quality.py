"""Streaming signal-quality stage: one :class:`QualityWindow` per fixed window.

Windows are ``QualityLimits.window_s`` long (2 s) and aligned to stream sample
0, so the verdicts do not depend on how the stream was chunked. Each window is
judged by :mod:`detect.quality_judge` (the rules, their sources and their
calibration are there); this stage cuts the stream into windows, keeps the
previous band-passed window for the spectral span and the running rms
reference of recent GOOD windows, and carries a short tail's verdict on.
"""

from __future__ import annotations

from collections.abc import Reversible, Sequence

import numpy as np

from .buffers import F64, History
from .config import DetectorConfig
from .quality_judge import DEFAULT_LIMITS, Job, QualityLimits, assess_many, judge, small_median
# The judge's other public names, still importable from here.
from .quality_judge import Assessment as Assessment
from .quality_judge import assess_window as assess_window
from .quality_judge import verdict as verdict
from .quality_stats import WindowStats
from .types import FloatArray, Quality, QualityWindow

# Looked up once: an enum member costs a class attribute lookup each time.
_GOOD = Quality.GOOD


class SignalQuality:
    """``push(raw, clean) -> [QualityWindow]`` over fixed windows at the internal rate.

    ``raw`` is the resampled signal in mV before the band-pass and ``clean`` the
    band-passed signal, aligned sample for sample and contiguous since
    ``start`` (the stream index of the first sample pushed). A window is
    emitted as soon as its last sample arrives.
    """

    def __init__(self, config: DetectorConfig, limits: QualityLimits | None = None,
                 *, start: int = 0, history: History | None = None) -> None:
        self.config = config
        self.limits = limits or DEFAULT_LIMITS
        self.fs = float(config.fs)
        self.window = config.samples(self.limits.window_s)
        self._min_tail = config.samples(self.limits.min_window_s)
        self._previous: int | None = None   # stream index of the last full window judged
        self._fill = 0
        self._start = int(start)          # stream index of the window being filled
        # The raw samples of the window being filled (a view of it is what the
        # judge reads: no concatenate per window).
        self._raws = History(self._start, self.window)
        self._raws.join(self._start)
        # The band-passed previous window and the one being filled, back to back in
        # ``history`` (the spectral span is a view, not a copy per window); given
        # when another stage reads the same signal (a pipeline segment's VF
        # detector), which then holds it once for both.
        self._own_history = history is None
        if history is None:
            history = History(self._start, 2 * self.window)
        self._hist = history
        self._reader = history.join(self._start)
        # The last reference_windows GOOD rms values; a list, as a deque costs 760 bytes.
        self._reference: list[float] = []
        self.last: QualityWindow | None = None

    @property
    def position(self) -> int:
        """Stream index of the next sample to be pushed."""
        return self._start + self._fill

    def windows_ending(self, m: int) -> int:
        """How many windows pushing ``m`` more samples completes and judges."""
        return (self._fill + m) // self.window if self.window >= 2 else 0

    def pending(self, raw: FloatArray, clean: FloatArray) -> list[Job]:
        """The windows pushing ``raw`` and ``clean`` completes, as :func:`assess_many`
        jobs: the batched pass (detect/batch.py) computes their statistics for many
        devices at once before the push. Judges nothing; puts the block into the
        raw and band-passed histories, as :meth:`push` does first (its own puts are
        then free), so that every job is views of them, valid until the push."""
        window, fill = self.window, self._fill
        if window < 2 or raw.size < window - fill:
            return []                   # every other chunk: no window to judge
        s, hist = self._start, self._hist
        self._raws.put(s + fill, raw)
        if s + fill + len(clean) > hist.start + hist.n:     # (else the put is free)
            hist.put(s + fill, clean)
        out: list[Job] = []
        p = self._previous                         # (self._before(), inline)
        prev = None if p is None else hist.view(p, p + window)
        for _ in range((fill + raw.size) // window):       # windows_ending(), window >= 2
            c = self._hist.view(s, s + window)
            out.append((self._raws.view(s, s + window), c, prev))
            prev, s = c, s + window
        return out

    def push(self, raw: FloatArray, clean: FloatArray,
             stats: Sequence[WindowStats] | None = None) -> list[QualityWindow]:
        """Windows judged with this block known. ``stats`` are those of the windows
        it completes (:meth:`pending`), computed beforehand with other devices';
        else they are computed here."""
        if type(raw) is not np.ndarray or raw.dtype is not F64:   # (else asarray returns it)
            raw = np.asarray(raw, np.float64)
        if type(clean) is not np.ndarray or clean.dtype is not F64:   # (else asarray returns it)
            clean = np.asarray(clean, np.float64)
        if raw.ndim != 1 or clean.ndim != 1 or raw.size != clean.size:   # (shapes differ)
            raise ValueError(f"Raw and clean blocks must be aligned 1-D arrays, got shapes "
                             f"{raw.shape} and {clean.shape}.")
        m, window = raw.size, self.window
        if stats is None:
            jobs = self.pending(raw, clean)
            stats = assess_many(jobs, self.fs, self.limits) if jobs else ()
        elif len(stats) != ((self._fill + m) // window if window >= 2 else 0):
            raise ValueError(f"Quality block of {m} samples completes "
                             f"{self.windows_ending(m)} windows; {len(stats)} "
                             "statistics were given.")
        position = self._start + self._fill
        # Free when pending() put them already (and, in a pipeline, VF the clean block).
        raws, hist = self._raws, self._hist
        if position + m > raws.start + raws.n:
            raws.put(position, raw)
        if position + m > hist.start + hist.n:
            hist.put(position, clean)
        out: list[QualityWindow] = []
        i = 0
        while i < m:
            take = window - self._fill
            if take > m - i:
                take = m - i
            self._fill += take
            i += take
            if self._fill == window:
                out.append(self._emit(stats[len(out)] if window >= 2 else None))
        if out:
            # What the histories must keep moves only when a window is judged (they
            # dropped all they could when it last moved).
            self._release()
        return out

    def _release(self) -> None:
        """Tell the histories what is still needed: the band-passed previous window and
        the one being filled, the raw one being filled."""
        self._hist.need(self._reader, self._start if self._previous is None else self._previous)
        self._raws.need(0, self._start)

    def _before(self) -> FloatArray | None:
        """The band-passed last full window, which widens the spectral span of the next."""
        p = self._previous
        return None if p is None else self._hist.view(p, p + self.window)

    def flush(self) -> list[QualityWindow]:
        """Judge the partial window at the end of a record (nothing if empty)."""
        out = [self._emit()] if self._fill else []
        self._release()
        return out

    def reset(self, index: int | None = None) -> list[QualityWindow]:
        """Start afresh after a signal gap; returns the flushed tail window.

        The next sample pushed has stream index ``index`` (default: it follows
        on); the amplitude reference is forgotten, since electrodes may have
        been re-applied during the gap.
        """
        tail = self.flush()
        if index is not None:
            if index < self._start:
                raise ValueError(f"Quality reset to index {index} runs back before "
                                 f"{self._start}.")
            if index != self._start and not self._own_history:
                raise ValueError("A quality judge that shares its history cannot skip "
                                 "samples; start a new one.")
            self._start = int(index)
            self._raws = History(self._start, self.window)
            self._raws.join(self._start)
        if self._own_history:
            self._hist = History(self._start, 2 * self.window)
            self._reader = self._hist.join(self._start)
        self._reference.clear()
        self._previous = None
        self.last = None
        self._release()
        return tail

    def _emit(self, stats: WindowStats | None = None) -> QualityWindow:
        n = self._fill
        if n < self._min_tail or n < 2:
            # Too short to judge alone: assume the previous window's verdict carries on.
            prev = self.last
            if prev is not None:
                quality, score = prev.quality, prev.score
            else:
                quality, score = Quality.GOOD, 1.0
        else:
            ref = (small_median(self._reference)
                   if len(self._reference) >= self.limits.reference_min else None)
            if stats is None:
                raw = self._raws.view(self._start, self._start + n)
                clean = self._hist.view(self._start, self._start + n)
                before = self._before()
                stats, = assess_many([(raw, clean, before)], self.fs, self.limits)
            quality, score, reason, _, _, _, _, _, rms = judge(stats, self.fs, self.limits, ref)
            if quality is _GOOD and reason == "sqi" and n == self.window:
                self._reference.append(rms)         # type: ignore[arg-type]
                del self._reference[:-self.limits.reference_windows]
            self._previous = self._start if n == self.window else None
        w = QualityWindow(self._start, self._start + n, quality, round(score, 4))
        self._start += n
        self._fill = 0
        self.last = w
        return w


def usable_at(windows: Reversible[QualityWindow], index: int) -> bool:
    """Whether the window holding sample ``index`` was judged usable, searching
    the most recent first; True when none holds it (not judged: not refused)."""
    for w in reversed(windows):
        if w.start <= index < w.end:
            return w.quality.usable
    return True
