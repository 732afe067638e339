"""Beat-by-beat matching of detections to reference annotations (ANSI/AAMI EC57).

A detection matches a reference beat when it lies within the match window
(150 ms in EC57) and each beat is matched at most once, nearest first.
Unmatched references are false negatives, unmatched detections false
positives; Se = TP / (TP + FN) and +P = TP / (TP + FP).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]

#: Annotation symbols that mark a QRS complex (PhysioNet's beat codes, EC57).
#: '!' (ventricular flutter wave) is not a beat: EC57 scores QRS detection
#: outside ventricular flutter/fibrillation, see :func:`excluded_spans`.
BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")


@dataclass(frozen=True, slots=True)
class Match:
    """Indices of matched pairs and of the unmatched on both sides."""

    ref: IntArray          # matched reference indices (into the reference array)
    det: IntArray          # matched detection indices, same order as ``ref``
    missed: IntArray       # reference beats with no detection (FN)
    extra: IntArray        # detections with no reference beat (FP)

    @property
    def tp(self) -> int:
        return int(self.ref.size)

    @property
    def fn(self) -> int:
        return int(self.missed.size)

    @property
    def fp(self) -> int:
        return int(self.extra.size)


def match_beats(ref: npt.ArrayLike, det: npt.ArrayLike, window: int) -> Match:
    """Match sorted sample positions one to one within ``window`` samples.

    Candidate pairs are taken in order of increasing distance (ties by
    position), so the nearest detection claims a reference beat first, as
    EC57's ``bxb`` does.
    """
    r = np.asarray(ref, dtype=np.int64)
    d = np.asarray(det, dtype=np.int64)
    if r.size == 0 or d.size == 0:
        return Match(np.zeros(0, np.int64), np.zeros(0, np.int64),
                     np.arange(r.size, dtype=np.int64), np.arange(d.size, dtype=np.int64))
    # Every detection sits in a window that can touch only nearby references:
    # gather candidate pairs from both neighbours of each insertion point.
    pairs_r, pairs_d = [], []
    lo = np.searchsorted(r, d - window, side="left")
    hi = np.searchsorted(r, d + window, side="right")
    span = int((hi - lo).max())
    if span == 0:                       # no detection near any reference beat
        return Match(np.zeros(0, np.int64), np.zeros(0, np.int64),
                     np.arange(r.size, dtype=np.int64), np.arange(d.size, dtype=np.int64))
    for k in range(span):
        ri = lo + k
        ok = ri < hi
        pairs_r.append(ri[ok])
        pairs_d.append(np.flatnonzero(ok))
    pr = np.concatenate(pairs_r)
    pd = np.concatenate(pairs_d)
    dist = np.abs(r[pr] - d[pd])
    order = np.lexsort((pd, pr, dist))
    used_r = np.zeros(r.size, bool)
    used_d = np.zeros(d.size, bool)
    mr, md = [], []
    for i in order:   # pairs, not samples: a few per beat
        a, b = pr[i], pd[i]
        if not used_r[a] and not used_d[b]:
            used_r[a] = used_d[b] = True
            mr.append(a)
            md.append(b)
    mr_a = np.asarray(mr, dtype=np.int64)
    md_a = np.asarray(md, dtype=np.int64)
    o = np.argsort(mr_a)
    return Match(mr_a[o], md_a[o], np.flatnonzero(~used_r), np.flatnonzero(~used_d))


def excluded_spans(symbols: list[str], samples: npt.ArrayLike) -> list[tuple[int, int]]:
    """Ventricular flutter/fibrillation spans (``[`` ... ``]``) that EC57 leaves unscored."""
    s = np.asarray(samples, dtype=np.int64)
    spans, start = [], None
    for sym, pos in zip(symbols, s):
        if sym == "[":
            start = int(pos)
        elif sym == "]" and start is not None:
            spans.append((start, int(pos)))
            start = None
    if start is not None:
        spans.append((start, int(s[-1]) + 1 if s.size else start + 1))
    return spans


def outside(positions: npt.ArrayLike, spans: list[tuple[int, int]]) -> npt.NDArray[np.bool_]:
    """Mask of positions that fall outside every span."""
    p = np.asarray(positions, dtype=np.int64)
    keep = np.ones(p.size, bool)
    for a, b in spans:
        keep &= ~((p >= a) & (p <= b))
    return keep


@dataclass(frozen=True, slots=True)
class DetectionScore:
    tp: int
    fn: int
    fp: int

    @property
    def se(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def ppv(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def f1(self) -> float:
        return 2 * self.tp / (2 * self.tp + self.fn + self.fp) if self.tp else 0.0

    def __add__(self, other: "DetectionScore") -> "DetectionScore":
        return DetectionScore(self.tp + other.tp, self.fn + other.fn, self.fp + other.fp)


def score_detections(ref: npt.ArrayLike, det: npt.ArrayLike, window: int) -> DetectionScore:
    m = match_beats(ref, det, window)
    return DetectionScore(m.tp, m.fn, m.fp)
