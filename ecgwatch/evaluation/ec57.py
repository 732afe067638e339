"""Beat-classification scoring per ANSI/AAMI EC57:2012 and PhysioNet's ``bxb``.

Reference beats (MIT-BIH symbols, mapped onto the AAMI classes N S V F Q by
:mod:`models.aami`) are matched one to one with detected beats within 150 ms
(:func:`ecgwatch.evaluation.matching.match_beats`). Every reference beat and
every detection lands in exactly one cell of a 6x6 matrix ``C[ref, pred]``:

* rows: reference class N S V F Q, then ``extra`` (a detection with no
  reference beat: bxb's ``O`` row);
* columns: predicted class N S V F Q, then ``missed`` (a reference beat with
  no detection: bxb's ``o`` column). ``C[extra, missed]`` is always 0.

So a missed beat is a false negative of its reference class and an extra
detection a false positive of its predicted class. Writing ``Xy`` for
``C[X, y]`` and ``Oy``/``Xo`` for the extra row/missed column, the statistics
are those of EC57:2012 section 4.5 (Se = TP/(TP+FN), +P = TP/(TP+FP),
FPR = FP/(TN+FP)) with the class sums of ``bxb.c`` (G. Moody, WFDB,
``print_results``), which implements the standard:

    QRS  TP = sum of the 5x5 block      FN = sum of the missed column
         FP = sum of the extra row
    VEB  TP = Vv
         FN = Vn + Vs + Vf + Vq + Vo
         FP = Nv + Sv + Ov              (Fv and Qv are *not* false positives:
                                         EC57 does not penalise calling a
                                         fusion or an unclassifiable beat V)
         TN = sum over rows N S F Q O and columns n s f q
    SVEB TP = Ss
         FN = Sn + Sv + Sf + Sq + So
         FP = Ns + Vs + Fs + Os         (Qs is not a false positive)
         TN = sum over rows N V F Q O and columns n v f q   (bxb prints no
                                         SVEB FPR; this is its VEB rule
                                         applied to S)

Gross statistics pool the matrices of all records; averaged statistics are
the mean of the per-record values over the records where each is defined
(a record without V beats has no VEB Se), as EC57 section 4.5 asks for
both. Overall accuracy counts the diagonal over every cell (misses and
extras are errors); ``matched_accuracy`` only over matched scored beats.

Scoring rules beyond the matrix, as in bxb: beats inside reference
ventricular flutter/fibrillation (``[`` ... ``]``) are not scored, nor those
before ``start`` (bxb skips a 5-minute learning period by default). Reference
beats whose symbol AAMI does not score (``B r n ?``) still take part in the
matching, so a detection on them is not an extra, but the pair is not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from models.aami import AAMI_SYMBOLS, CLASSES, class_indices

from .matching import excluded_spans, match_beats, outside

REF_ROWS: tuple[str, ...] = CLASSES + ("extra",)
PRED_COLS: tuple[str, ...] = CLASSES + ("missed",)
EXTRA = MISSED = len(CLASSES)           # index of the extra row / missed column
MATCH_WINDOW_S = 0.150

_I = {c: k for k, c in enumerate(CLASSES)}
N, S, V, F, Q = (_I[c] for c in CLASSES)


@dataclass(frozen=True, slots=True)
class ClassScore:
    """TP/FN/FP/TN of one ectopic class; Se, +P and FPR are NaN where undefined."""

    tp: int
    fn: int
    fp: int
    tn: int

    def __post_init__(self) -> None:
        if min(self.tp, self.fn, self.fp, self.tn) < 0:
            raise ValueError(f"Negative count in {self!r}.")

    @property
    def se(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def ppv(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def fpr(self) -> float:
        return _ratio(self.fp, self.tn + self.fp)

    def to_dict(self) -> dict:
        return {"tp": self.tp, "fn": self.fn, "fp": self.fp, "tn": self.tn,
                "se": _num(self.se), "ppv": _num(self.ppv), "fpr": _num(self.fpr)}


@dataclass(frozen=True, slots=True)
class AveragedScore:
    """Record-averaged Se, +P, FPR and how many records each mean is over."""

    se: float
    ppv: float
    fpr: float
    n_se: int
    n_ppv: int
    n_fpr: int

    @staticmethod
    def of(scores: list[ClassScore]) -> "AveragedScore":
        def mean(vals: list[float]) -> tuple[float, int]:
            ok = [v for v in vals if not math.isnan(v)]
            return (float(np.mean(ok)) if ok else float("nan")), len(ok)
        se, n_se = mean([s.se for s in scores])
        ppv, n_ppv = mean([s.ppv for s in scores])
        fpr, n_fpr = mean([s.fpr for s in scores])
        return AveragedScore(se, ppv, fpr, n_se, n_ppv, n_fpr)

    def to_dict(self) -> dict:
        return {"se": _num(self.se), "ppv": _num(self.ppv), "fpr": _num(self.fpr),
                "records_se": self.n_se, "records_ppv": self.n_ppv, "records_fpr": self.n_fpr}


@dataclass(frozen=True, slots=True)
class Confusion:
    """``counts[ref, pred]`` over :data:`REF_ROWS` x :data:`PRED_COLS` (see module doc)."""

    counts: npt.NDArray[np.int64]

    def __post_init__(self) -> None:
        c = np.array(self.counts, dtype=np.int64)      # own copy, then frozen
        shape = (len(REF_ROWS), len(PRED_COLS))
        if c.shape != shape:
            raise ValueError(f"A confusion matrix is {shape}, not {c.shape}.")
        if (c < 0).any():
            raise ValueError("A confusion matrix cannot hold negative counts.")
        if c[EXTRA, MISSED]:
            raise ValueError("An extra detection cannot also be a missed beat "
                             f"(cell extra/missed holds {c[EXTRA, MISSED]}).")
        c.setflags(write=False)
        object.__setattr__(self, "counts", c)

    @staticmethod
    def empty() -> "Confusion":
        return Confusion(np.zeros((len(REF_ROWS), len(PRED_COLS)), np.int64))

    def __add__(self, other: "Confusion") -> "Confusion":
        return Confusion(self.counts + other.counts)

    def cell(self, ref: str, pred: str) -> int:
        return int(self.counts[REF_ROWS.index(ref), PRED_COLS.index(pred)])

    # ------------------------------------------------------------ detection
    @property
    def qrs(self) -> ClassScore:
        c = self.counts
        return ClassScore(int(c[:EXTRA, :MISSED].sum()), int(c[:EXTRA, MISSED].sum()),
                          int(c[EXTRA, :MISSED].sum()), 0)

    # ---------------------------------------------------------- ectopic beats
    @property
    def veb(self) -> ClassScore:
        c = self.counts
        tp = c[V, V]
        fn = c[V, :].sum() - tp                          # Vn Vs Vf Vq Vo
        fp = c[N, V] + c[S, V] + c[EXTRA, V]             # Fv, Qv excused
        rows, cols = [N, S, F, Q, EXTRA], [N, S, F, Q]
        tn = c[np.ix_(rows, cols)].sum()
        return ClassScore(int(tp), int(fn), int(fp), int(tn))

    @property
    def sveb(self) -> ClassScore:
        c = self.counts
        tp = c[S, S]
        fn = c[S, :].sum() - tp                          # Sn Sv Sf Sq So
        fp = c[N, S] + c[V, S] + c[F, S] + c[EXTRA, S]   # Qs excused
        rows, cols = [N, V, F, Q, EXTRA], [N, V, F, Q]
        tn = c[np.ix_(rows, cols)].sum()
        return ClassScore(int(tp), int(fn), int(fp), int(tn))

    @property
    def accuracy(self) -> float:
        """Correctly labelled matched beats over every reference beat and extra detection."""
        c = self.counts
        return _ratio(int(np.trace(c[:EXTRA, :MISSED])), int(c.sum()))

    @property
    def matched_accuracy(self) -> float:
        """Correctly labelled beats among matched scored beats (detection errors left out)."""
        block = self.counts[:EXTRA, :MISSED]
        return _ratio(int(np.trace(block)), int(block.sum()))

    def to_dict(self) -> dict:
        return {"rows": list(REF_ROWS), "cols": list(PRED_COLS),
                "counts": self.counts.tolist(), "qrs": self.qrs.to_dict(),
                "veb": self.veb.to_dict(), "sveb": self.sveb.to_dict(),
                "accuracy": _num(self.accuracy), "matched_accuracy": _num(self.matched_accuracy)}


@dataclass(frozen=True, slots=True)
class RecordScore:
    record: str
    confusion: Confusion


@dataclass(frozen=True, slots=True)
class Ec57Summary:
    """Per-record matrices with their gross (pooled) and record-averaged statistics."""

    records: tuple[RecordScore, ...]
    gross: Confusion = field(init=False)

    def __post_init__(self) -> None:
        total = Confusion.empty()
        for r in self.records:
            total = total + r.confusion
        object.__setattr__(self, "gross", total)

    @property
    def veb_average(self) -> AveragedScore:
        return AveragedScore.of([r.confusion.veb for r in self.records])

    @property
    def sveb_average(self) -> AveragedScore:
        return AveragedScore.of([r.confusion.sveb for r in self.records])

    def to_dict(self) -> dict:
        return {"gross": self.gross.to_dict(),
                "average": {"veb": self.veb_average.to_dict(),
                            "sveb": self.sveb_average.to_dict()},
                "records": {r.record: r.confusion.to_dict() for r in self.records}}


def reference_classes(symbols: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """AAMI class index per MIT-BIH symbol, -1 where EC57 does not score it."""
    return class_indices(symbols)


def predicted_classes(labels: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Class index per predicted label; a label outside N S V F Q is an error."""
    out = np.empty(len(labels), dtype=np.int64)
    for k, lab in enumerate(labels):
        try:
            out[k] = _I[str(lab)]
        except KeyError:
            raise ValueError(f"Predicted beat label {lab!r} at position {k} is not one of "
                             f"the AAMI classes {', '.join(CLASSES)}.") from None
    return out


def score_beats(ref_samples: npt.ArrayLike, ref_symbols: npt.ArrayLike,
                det_samples: npt.ArrayLike, det_labels: npt.ArrayLike, fs: float, *,
                start: int = 0, excluded: list[tuple[int, int]] | None = None,
                window_s: float = MATCH_WINDOW_S) -> Confusion:
    """Confusion matrix of one record.

    ``ref_samples``/``ref_symbols``: every reference *beat* annotation (sample,
    MIT-BIH symbol), ascending; ``det_samples``/``det_labels``: detections on
    the same sample grid with their predicted AAMI letter, ascending.
    ``excluded``: unscored spans (reference VF, see
    :func:`matching.excluded_spans`); ``start``: first scored sample.
    """
    r = np.asarray(ref_samples, dtype=np.int64)
    d = np.asarray(det_samples, dtype=np.int64)
    ref_cls = reference_classes(ref_symbols)
    det_cls = predicted_classes(det_labels)
    if r.size != ref_cls.size or d.size != det_cls.size:
        raise ValueError(f"{r.size} reference samples but {ref_cls.size} symbols, or "
                         f"{d.size} detections but {det_cls.size} labels.")
    if (np.diff(r) < 0).any() or (np.diff(d) < 0).any():
        raise ValueError("Reference and detected beats must be in ascending sample order.")
    m = match_beats(r, d, int(round(window_s * fs)))
    spans = excluded or []

    def scored(pos: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        return (pos >= start) & outside(pos, spans)

    c = np.zeros((len(REF_ROWS), len(PRED_COLS)), np.int64)
    # A pair is placed by its reference beat; unscored AAMI symbols drop out.
    rc, dc = ref_cls[m.ref], det_cls[m.det]
    keep = scored(r[m.ref]) & (rc >= 0)
    np.add.at(c, (rc[keep], dc[keep]), 1)
    mc = ref_cls[m.missed]
    keep = scored(r[m.missed]) & (mc >= 0)
    np.add.at(c, (mc[keep], MISSED), 1)
    keep = scored(d[m.extra])
    np.add.at(c, (EXTRA, det_cls[m.extra][keep]), 1)
    return Confusion(c)


def score_annotated(ann_samples: npt.ArrayLike, ann_symbols: npt.ArrayLike,
                    det_samples: npt.ArrayLike, det_labels: npt.ArrayLike, fs: float, *,
                    start_s: float = 0.0, window_s: float = MATCH_WINDOW_S) -> Confusion:
    """:func:`score_beats` from a record's full annotation list (beats and non-beats).

    Non-beat annotations are dropped after their VF spans are taken.
    """
    from .matching import BEAT_SYMBOLS
    samples = np.asarray(ann_samples, dtype=np.int64)
    symbols = np.asarray(ann_symbols).astype(str)
    spans = excluded_spans(symbols.tolist(), samples)
    beat = np.isin(symbols, sorted(BEAT_SYMBOLS))
    return score_beats(samples[beat], symbols[beat], det_samples, det_labels, fs,
                       start=int(round(start_s * fs)), excluded=spans, window_s=window_s)


def _ratio(a: int, b: int) -> float:
    return a / b if b else float("nan")


def _num(x: float) -> float | None:
    """JSON has no NaN: undefined statistics become null."""
    return None if math.isnan(x) else round(x, 6)


__all__ = ["AAMI_SYMBOLS", "CLASSES", "REF_ROWS", "PRED_COLS", "MATCH_WINDOW_S",
           "ClassScore", "AveragedScore", "Confusion", "RecordScore", "Ec57Summary",
           "reference_classes", "predicted_classes", "score_beats", "score_annotated"]
