"""A beat's RR context, kept causally in the stream: the ``rr`` model input.

The beat classifier (``models/``) sees, next to each beat's waveform window
and template (:mod:`detect.beat_features`), these ``RR_FEATURES``:

* **rr**: RR context in the spirit of de Chazal et al. (IEEE TBME 51(7),
  2004): pre-RR, post-RR (which costs one beat of delay), the local mean RR
  of the last ``LOCAL_BEATS`` intervals and a long-term mean RR (exponential,
  about ``LONG_BEATS`` beats), in seconds, plus their ratios, which make the
  features comparable across patients whose normal rates differ; and the
  irregularity of the preceding rhythm (median absolute successive difference
  of the last ``LOCAL_BEATS`` intervals over their mean): a short RR is
  telling in a regular rhythm and means little in atrial fibrillation, whose
  beats are normal (N) although their RR intervals are all over the place.
* **upper RR**: the ``UPPER_RANK``-th longest of the last ``UPPER_BEATS``
  intervals (about their 90th percentile), an estimate of the underlying
  (sinus) cycle that ectopic beats do not pull down, and the beat's pre-RR as
  a fraction of it. Means are pulled towards the ectopic rhythm when ectopic
  beats are frequent or come in runs (supraventricular runs, or atrial
  ectopy outnumbering sinus beats in sinus bradycardia): every interval is
  then short, pre-RR over the local mean is near 1 and the beat no longer
  looks premature. The longer intervals still mark the sinus cycle. A beat
  whose pre-RR is at least ``TEMPLATE_ADMIT`` of it was not premature: it
  may join the patient's template (:mod:`detect.beat_features`).
* **irregular share**: of the last ``SHARE_BEATS`` intervals, the share
  that differs by more than ``SHARE_STEP`` of their mean from the interval 1,
  2 and 3 beats before, the smallest of the three. Atrial fibrillation is
  *irregularly* irregular: its intervals differ at every lag, so its early
  beats are normal beats, not premature ones. Bigeminy and trigeminy are
  *regularly* irregular: the share is small at lag 2 or 3, and an isolated
  ectopic beat leaves it small at every lag. (The ten-interval
  ``irregularity`` above cannot tell these apart.) Lag comparisons of this
  kind are the basis of RR-only AF detectors such as Tateno & Glass (Med.
  Biol. Eng. Comput. 39, 2001) and Sarkar, Ritscher & Mehra (IEEE TBME
  55(3), 2008). It is kept as one bit per interval and lag in an integer,
  so it costs a few operations per beat and no array.

Each beat's features are read from the intervals before it
(:meth:`RRContext.features`), then its pre-RR joins them (:meth:`RRContext.note`).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Sequence

import numpy as np

LOCAL_BEATS = 10
LONG_BEATS = 300
UPPER_BEATS = 32
UPPER_RANK = 4               # the 4th longest of 32: the 90th percentile
SHARE_BEATS = 32             # intervals the irregular share looks back over
SHARE_STEP = 0.1             # an interval "differs" by more than 10 % of the pair's mean
SHARE_LAGS = (1, 2, 3)
TEMPLATE_ADMIT = 0.8         # pre-RR / upper RR from which a beat joins the template
RR_FEATURES = ("pre_rr", "post_rr", "local_rr", "long_rr",
               "pre_local", "post_local", "pre_long", "local_long", "irregularity",
               "upper_rr", "pre_upper", "irregular_share")
_DEFAULT_RR = 0.8            # s, until the stream has told us better
_DEFAULT_IRREGULARITY = 0.05  # until there are three intervals to compare
_MIN_IRREGULARITY = 0.01     # the model takes logarithms: keep away from 0
_HALF_STEP = SHARE_STEP * 0.5   # of the pair's sum: SHARE_STEP of their mean
_SHARE_MASK = (1 << SHARE_BEATS) - 1
assert SHARE_LAGS == (1, 2, 3)   # written out in RRContext.features and RRContext.note


def _np_sum(values: Sequence[float]) -> float:
    """np.sum of a short sequence of floats, in numpy's own order of additions
    (pairwise with eight accumulators; exact up to 128 values), without building an
    array: for the ten recent RR intervals numpy's call overhead is most of the cost."""
    n = len(values)
    if n > 128:
        return float(np.sum(np.asarray(values, dtype=np.float64)))
    if n < 8:
        s = 0.0
        for v in values:
            s += v
        return s
    r0, r1, r2, r3, r4, r5, r6, r7 = values[:8]
    i = 8
    while i + 8 <= n:
        r0 += values[i]
        r1 += values[i + 1]
        r2 += values[i + 2]
        r3 += values[i + 3]
        r4 += values[i + 4]
        r5 += values[i + 5]
        r6 += values[i + 6]
        r7 += values[i + 7]
        i += 8
    s = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        s += values[i]
        i += 1
    return s


class RRContext:
    """One stream's recent RR intervals (seconds) and the ``RR_FEATURES`` they give.

    Per beat: ``features(pre, post)`` for the beat from the intervals before it,
    then ``note(pre)`` once its pre-RR is known. Both run once per beat in plain
    Python, so the definitions of the module docstring are written out in them
    (locals, the upper intervals kept sorted, the lag comparisons as bits): the
    same values at a few hundred operations per beat.
    """

    __slots__ = ("_rrs", "_steps", "_upper_rrs", "_upper_sorted", "_long", "_n_rr",
                 "_lag_rrs", "_differs")

    def __init__(self) -> None:
        # Short queues as lists trimmed by hand: a deque costs 760 bytes however short.
        self._rrs: list[float] = []              # the last LOCAL_BEATS intervals
        # |successive differences| of _rrs, oldest first, kept along with it
        # (the irregularity's median reads them every beat).
        self._steps: list[float] = []
        self._upper_rrs: list[float] = []        # the last UPPER_BEATS intervals
        self._upper_sorted: list[float] = []     # the same, in ascending order
        self._long: float | None = None
        self._n_rr = 0                           # intervals noted so far
        # Per lag, one bit per recent interval: did it differ from the one `lag` before?
        self._lag_rrs: list[float] = []          # the last max(SHARE_LAGS) intervals
        self._differs = [0] * len(SHARE_LAGS)

    def features(self, pre: float | None, post: float
                 ) -> tuple[tuple[float, ...], bool]:
        """The ``RR_FEATURES`` of a beat with these pre- and post-RR (seconds; ``pre``
        None for a segment's first beat) from the intervals noted before it, and
        whether the beat may join the template (it was not premature)."""
        rrs, upper_sorted = self._rrs, self._upper_sorted
        n_rrs = len(rrs)
        if n_rrs == LOCAL_BEATS == 10:
            # _np_sum(rrs) of the usual ten, inline: its eight accumulators, then the rest.
            r0, r1, r2, r3, r4, r5, r6, r7, r8, r9 = rrs
            local = ((((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))) + r8 + r9) / 10
        else:
            local = _np_sum(rrs) / n_rrs if n_rrs else (pre or _DEFAULT_RR)
        long = self._long if self._long is not None else local
        pre_v = pre if pre is not None else local
        # Irregularity: median absolute successive difference over the mean.
        if n_rrs < 3:
            irregularity = _DEFAULT_IRREGULARITY
        else:
            ordered = sorted(self._steps)
            m = len(ordered) // 2
            med = ordered[m] if len(ordered) % 2 else 0.5 * (ordered[m - 1] + ordered[m])
            irregularity = med / local
            if irregularity < _MIN_IRREGULARITY:
                irregularity = _MIN_IRREGULARITY
        # Upper RR: the UPPER_RANK-th longest recent interval (kept sorted).
        upper = upper_sorted[-UPPER_RANK] if len(upper_sorted) >= UPPER_RANK else local
        # Irregular share: the smallest over lags of the share of recent intervals
        # that differ, smoothed towards 1/2 while there are few ((k + 1/2) / (n + 1)).
        seen = self._n_rr
        d1, d2, d3 = self._differs
        if seen >= SHARE_BEATS + SHARE_LAGS[-1]:
            # Every lag has seen SHARE_BEATS intervals: one denominator, and the
            # smallest count gives the smallest share (division is monotonic).
            k, k2, k3 = d1.bit_count(), d2.bit_count(), d3.bit_count()
            if k2 < k:                                  # (min() of the three, inline)
                k = k2
            if k3 < k:
                k = k3
            share = (k + 0.5) / (SHARE_BEATS + 1)
        else:
            share = 1.0
            for differs, lag in ((d1, 1), (d2, 2), (d3, 3)):
                n = seen - lag
                n = 0 if n < 0 else SHARE_BEATS if n > SHARE_BEATS else n
                lag_share = (differs.bit_count() + 0.5) / (n + 1)
                if lag_share < share:
                    share = lag_share
        # Only beats that were not premature join the template, so it stays
        # the patient's sinus beat even where ectopic beats are the majority.
        admit = (pre is None or len(upper_sorted) < UPPER_RANK
                 or pre >= TEMPLATE_ADMIT * upper)
        return (pre_v, post, local, long, pre_v / local, post / local,
                pre_v / long, local / long, irregularity, upper, pre_v / upper, share), admit

    def note(self, pre: float) -> None:
        """Add a beat's pre-RR (seconds) to the intervals later beats' features read."""
        # Per lag, whether pre differs from the interval `lag` before it;
        # recent holds the last max(SHARE_LAGS) intervals: newest first, lag j + 1.
        recent, differs = self._lag_rrs, self._differs
        if len(recent) == 3:                 # (all but a segment's first beats: unrolled)
            p3, p2, p1 = recent
            d1, d2, d3 = differs
            differs[0] = ((d1 << 1) | (abs(pre - p1) > _HALF_STEP * (pre + p1))) & _SHARE_MASK
            differs[1] = ((d2 << 1) | (abs(pre - p2) > _HALF_STEP * (pre + p2))) & _SHARE_MASK
            differs[2] = ((d3 << 1) | (abs(pre - p3) > _HALF_STEP * (pre + p3))) & _SHARE_MASK
            del recent[0]
            recent.append(pre)
        else:
            for j, prev in enumerate(reversed(recent)):
                differs[j] = ((differs[j] << 1) | (abs(pre - prev) > _HALF_STEP * (pre + prev))
                              ) & _SHARE_MASK
            recent.append(pre)
        rrs, steps = self._rrs, self._steps
        n_rrs = len(rrs)
        if n_rrs:
            if n_rrs == LOCAL_BEATS:
                del steps[0]               # its older interval leaves with rrs' oldest
            steps.append(abs(pre - rrs[-1]))
        rrs.append(pre)
        if n_rrs == LOCAL_BEATS:
            del rrs[0]
        upper_rrs, upper_sorted = self._upper_rrs, self._upper_sorted
        upper_rrs.append(pre)
        insort(upper_sorted, pre)
        if len(upper_rrs) > UPPER_BEATS:
            del upper_sorted[bisect_left(upper_sorted, upper_rrs.pop(0))]
        # Running mean over the first LONG_BEATS intervals, then exponential.
        self._n_rr = n_rr = self._n_rr + 1
        gain = 1.0 / (n_rr if n_rr < LONG_BEATS else LONG_BEATS)
        long = self._long
        self._long = pre if long is None else long + (pre - long) * gain
