"""Per-beat model inputs, computed causally in the stream: a waveform window and RR context.

The beat classifier (``models/``) sees exactly what this module produces, in
training and in the service, so there is one definition of its input:

* **window**: ``WINDOW_BEFORE`` + ``WINDOW_AFTER`` samples of the cleaned
  (0.5-40 Hz) signal at the internal rate around the R peak, minus the
  window's median (baseline) and divided by the running median R amplitude of
  the previous ``AMP_BEATS`` beats (causal amplitude normalisation: a
  premature beat's own size is preserved relative to its neighbours).
* **template**: the element-wise median of the previous ``TEMPLATE_BEATS``
  beats' windows, i.e. this patient's usual beat right now. Inter-patient
  beat classification fails mostly because morphology differs between
  patients; comparing a beat with the same patient's recent beats is what
  generalises (a supraventricular beat looks like the template but comes
  early, a ventricular one does not look like it). Only beats whose pre-RR
  is at least ``TEMPLATE_ADMIT`` of the upper RR (:mod:`detect.rr_context`)
  join it, and the median keeps it on the dominant morphology of those: it
  stays the sinus beat even where premature beats outnumber sinus beats
  (frequent atrial ectopy, bigeminy), which is where a plain running median
  turns into the ectopic beat and hides it.
  Adaptive templates of this kind go back to the patient-adaptive
  classifiers of Hu, Palreddy & Tompkins (IEEE TBME 44(9), 1997) and
  Llamedo & Martinez (IEEE TBME 59(8), 2012).
* **rr**: the beat's RR context (``RR_FEATURES``: pre-, post-, local, long
  and upper RR, their ratios, the irregularity and irregular share of the
  preceding rhythm), defined with their sources in :mod:`detect.rr_context`.

A beat is emitted once its window is complete and the next beat is known
(or ``MAX_POST_S`` passed without one: post-RR then counts as that long).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Sequence
from itertools import chain
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from . import buffers, template_medians
from .buffers import F64
from .rr_context import RR_FEATURES, RRContext
# Importable from here too (the model's export and tests read them with the window's).
from .rr_context import SHARE_BEATS as SHARE_BEATS, TEMPLATE_ADMIT as TEMPLATE_ADMIT
from .rr_context import UPPER_BEATS as UPPER_BEATS, UPPER_RANK as UPPER_RANK
from .template_medians import _NETWORK_FROM, _PASS, _filling_medians, _full_medians, _ring_medians
from .types import FloatArray

FS = 250                     # internal rate the model is trained at
WINDOW_BEFORE = 64           # 0.256 s before R
WINDOW_AFTER = 96            # 0.384 s after R
WINDOW = WINDOW_BEFORE + WINDOW_AFTER
CHANNELS = 2                 # model input channels: the beat and its template
TEMPLATE_BEATS = 16
assert TEMPLATE_BEATS == template_medians.TEMPLATE_BEATS     # the medians' networks' size
AMP_BEATS = 16
MAX_POST_S = 2.0
HISTORY = 5 * FS             # samples kept for beats the detector reports late
CAPACITY = 3 * FS            # signal array allocated: more than the horizon usually needs


@dataclass(frozen=True, slots=True)
class BeatInput:
    """One beat's model input. ``index`` is the R peak on the stream's index grid."""

    index: int
    window: npt.NDArray[np.float32]      # (WINDOW,)
    template: npt.NDArray[np.float32]    # (WINDOW,)
    rr: npt.NDArray[np.float32]          # (len(RR_FEATURES),)

    def __post_init__(self) -> None:
        if (self.window.shape != (WINDOW,) or self.template.shape != (WINDOW,)
                or self.rr.shape != (len(RR_FEATURES),)):
            raise ValueError(f"Beat input at {self.index} has shapes {self.window.shape}, "
                             f"{self.template.shape}, {self.rr.shape}; expected ({WINDOW},), "
                             f"({WINDOW},), ({len(RR_FEATURES)},).")


def stack_inputs(inputs: list[BeatInput] | tuple[BeatInput, ...]
                 ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The model's two inputs for a batch: ``window`` (n, CHANNELS, WINDOW), ``rr`` (n, 11)."""
    if not inputs:
        return (np.zeros((0, CHANNELS, WINDOW), np.float32),
                np.zeros((0, len(RR_FEATURES)), np.float32))
    windows = np.stack([np.stack([i.window, i.template]) for i in inputs])
    return windows, np.stack([i.rr for i in inputs])


class PendingBeat:
    """A beat whose RR context is known and whose waveform inputs are not computed yet.

    The pipeline hands these to the beat model's batcher, which computes the
    window, template and amplitude normalisation of every pending beat of
    every device in one :func:`featurize` (numpy calls on stacked arrays
    instead of a dozen calls on 160 samples per beat). ``seg`` is the raw
    cleaned signal around the R peak; ``rr`` the RR features; ``admit``
    whether the beat joins its featurizer's template.
    """

    __slots__ = ("index", "owner", "seg", "rr", "admit")

    def __init__(self, index: int, owner: "BeatFeaturizer", seg: FloatArray,
                 rr: tuple[float, ...], admit: bool) -> None:
        self.index = index
        self.owner = owner
        self.seg = seg
        self.rr = rr
        self.admit = admit


_MID = (WINDOW // 2 - 1, WINDOW // 2)    # the two middle order statistics of a window
_CORE = slice(WINDOW_BEFORE - 5, WINDOW_BEFORE + 6)
# Beats whose windows one pass of featurize normalises: (256, 160) float64 per
# working array, bounded however many beats a tick brings.
_ROWS = 256


def featurize(beats: Sequence[PendingBeat], scratch: buffers.Scratch | None = None,
              ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The model's inputs for ``beats``: ``window`` (n, CHANNELS, WINDOW), ``rr`` (n, 11).

    ``beats`` may come from many featurizers; each featurizer's beats must be
    in the order it emitted them, and every beat is featurized exactly once
    (it advances its featurizer's amplitude history and template). Each row
    has the bits that featurizing its beat alone gives: the same operations
    per element, on rows of stacked arrays, in passes of :data:`_ROWS` beats
    (in ``scratch``'s working arrays when given: the beat model's batcher's,
    reused every tick, so the passes fault no fresh pages in).
    """
    n = len(beats)
    windows = np.empty((n, CHANNELS, WINDOW), np.float32)
    if n == 0:
        return windows, np.zeros((0, len(RR_FEATURES)), np.float32)
    take = buffers.fresh if scratch is None else scratch.take
    for start in range(0, n, _ROWS):
        _normalise(beats[start:start + _ROWS], windows[start:start + _ROWS, 0], take)
    _templates(beats, windows, scratch)
    # (fromiter: the float32 casts np.array makes, without its nested-sequence discovery)
    rr = np.fromiter(chain.from_iterable([b.rr for b in beats]), np.float32, n * len(RR_FEATURES))
    return windows, rr.reshape(n, len(RR_FEATURES))


def _normalise(beats: Sequence[PendingBeat], out: npt.NDArray[np.float32],
               take: Callable[..., np.ndarray]) -> None:
    """Each beat's window less its median, over its featurizer's running amplitude, into
    the rows of ``out`` (float32); advances the featurizers' amplitude histories."""
    n = len(beats)
    x = take("beat.x", (n, WINDOW))
    np.concatenate([b.seg for b in beats], out=x.reshape(-1))     # (x is C-contiguous)
    # Baseline: the window's median (np.median's value: the mean of the two middle
    # order statistics), subtracted per row. One partition point, the upper middle;
    # the lower one is the largest value before it (numpy's partition at both points
    # took three times as long).
    part = take("beat.part", (n, WINDOW))
    part[...] = x                                      # np.partition's copy
    upper = _MID[1]                                    # (_MID[0] is upper - 1)
    part.partition(upper, axis=1)
    x -= (0.5 * (part[:, :upper].max(axis=1) + part[:, upper]))[:, None]
    core = x[:, _CORE]
    hi, lo = core.max(axis=1), -core.min(axis=1)
    amps = np.where(lo > hi, lo, hi).tolist()        # max(hi, lo), Python's tie rule
    # Amplitude normalisation: each featurizer's running median of its previous
    # beats' amplitudes, beat by beat in emission order (plain Python: 16 floats,
    # kept sorted as they come and go).
    div = [0.0] * n
    for k, b in enumerate(beats):
        f = b.owner
        ordered = f._amps_sorted
        amp = amps[k]
        if ordered:
            m = len(ordered) // 2
            scale = ordered[m] if len(ordered) % 2 else (ordered[m - 1] + ordered[m]) / 2
        else:
            scale = max(amp, 1e-3)
        history = f._amps
        history.append(amp)
        insort(ordered, amp)
        if len(history) > AMP_BEATS:
            # The oldest of equal values (zeros of both signs) sorts first among
            # them, as in sorted(history): the list stays sorted(history) exactly.
            del ordered[bisect_left(ordered, history.pop(0))]
        div[k] = max(scale, 1e-3)
    x /= np.array(div)[:, None]
    out[...] = x                                       # the float32 cast of astype


def _templates(beats: Sequence[PendingBeat], windows: npt.NDArray[np.float32],
               scratch: buffers.Scratch | None = None) -> None:
    """Each beat's template (``windows[:, 1]``) from its featurizer's previous windows,
    then admit the beat's window. In rounds: the j-th beat of every featurizer in a
    round, so that a featurizer's later beat sees the windows its earlier ones
    admitted; the full rings of a round go through :func:`_full_medians` (passes
    of :data:`_PASS` rings, in ``scratch``'s working arrays when given)."""
    take = buffers.fresh if scratch is None else scratch.take
    rounds: list[list[int]] = []
    seen: dict[BeatFeaturizer, int] = {}
    for k, b in enumerate(beats):
        j = seen[b.owner] = seen.get(b.owner, -1) + 1
        if j == len(rounds):
            rounds.append([])
        rounds[j].append(k)
    # The beats' windows as row views, made in one call (indexing windows[k, 0] per beat
    # took twice as long as the copy into the ring it serves).
    rows = list(windows[:, 0])
    for ks in rounds:
        # The rings by how many windows they hold (full ones: TEMPLATE_BEATS).
        full: list[int] = []
        filling: dict[int, list[int]] = {}
        for k in ks:
            n = beats[k].owner._n_recent
            if n >= TEMPLATE_BEATS:
                full.append(k)
            else:
                filling.setdefault(n, []).append(k)
        # A few rings (one featurizer's long push, as training's dataset builder
        # makes: one beat per round) sort faster alone than through the network.
        if len(full) < _NETWORK_FROM:
            if full:
                filling[TEMPLATE_BEATS] = full
            full = []
        for start in range(0, len(full), _PASS):
            group = full[start:start + _PASS]
            windows[group, 1] = _full_medians([beats[k].owner._recent for k in group], take)
        # The other rings (filling, or too few full ones for the network), sorted
        # together by how many windows they hold.
        for n, same in filling.items():
            if n == 0 or len(same) == 1:
                for k in same:
                    windows[k, 1] = beats[k].owner._template(rows[k])
                continue
            # Enough rings of one fill: the full rings' network, padded (as fast for
            # two windows as for sixteen, twice as fast as the sort from two on).
            network = n >= 2 and len(same) >= _NETWORK_FROM
            medians = _filling_medians if network else _ring_medians
            for start in range(0, len(same), _PASS):
                group = same[start:start + _PASS]
                windows[group, 1] = medians([beats[k].owner._recent[:n] for k in group], take)
        for k in ks:
            b = beats[k]
            if b.admit:
                f = b.owner
                f._recent[f._n_recent % TEMPLATE_BEATS] = rows[k]
                f._n_recent += 1


def model_inputs(items: Sequence[PendingBeat | BeatInput],
                 scratch: buffers.Scratch | None = None,
                 ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The model's two inputs for pending beats (featurized now, in ``scratch``'s working
    arrays when given) and finished ones, in order."""
    pending = [k for k, i in enumerate(items) if isinstance(i, PendingBeat)]
    if len(pending) == len(items):
        return featurize(items, scratch)              # type: ignore[arg-type]
    windows, rr = stack_inputs([i for i in items if isinstance(i, BeatInput)])
    if not pending:
        return windows, rr
    done = [k for k, i in enumerate(items) if not isinstance(i, PendingBeat)]
    w_new, rr_new = featurize([items[k] for k in pending], scratch)   # type: ignore[misc]
    w_all = np.empty((len(items), CHANNELS, WINDOW), np.float32)
    rr_all = np.empty((len(items), len(RR_FEATURES)), np.float32)
    w_all[pending], rr_all[pending] = w_new, rr_new
    w_all[done], rr_all[done] = windows, rr
    return w_all, rr_all


def finished(beats: Sequence[PendingBeat]) -> list[BeatInput]:
    """``beats`` featurized now, as :class:`BeatInput` (one featurizer's output to read)."""
    windows, rr = featurize(beats)
    return [BeatInput(b.index, windows[k, 0], windows[k, 1], rr[k]) for k, b in enumerate(beats)]


class BeatFeaturizer:
    """``push(clean, beats) -> [BeatInput]`` for one contiguous segment at ``FS``.

    ``clean`` continues the segment's cleaned signal (index ``start`` for its
    first sample on the first push); ``beats`` are new R indices on the same
    grid, ascending. Output comes in beat order, each beat once. ``horizon``
    (the R-peak detector's promise: no later beat before it) lets it keep only
    the signal that pending and future beats' windows can need.
    """

    def __init__(self, start: int = 0, fs: int = FS,
                 history: buffers.History | None = None) -> None:
        if fs != FS:
            raise ValueError(f"The beat features are defined at {FS} Hz, not {fs} Hz.")
        # Cleaned signal from stream index _buf_start to _end, read from a history
        # (a preallocated array moved in place, no concatenate per chunk). With
        # the horizon it needs about a second; more while there is none
        # (learning, search-back). ``history``, when given, holds the same signal
        # from ``start`` for other readers too (a pipeline segment's VF, quality
        # and wide-complex tracker), so the featurizer keeps no copy of its own.
        if history is None:
            history = buffers.History(start, CAPACITY)
        self._hist, self._reader = history, history.join(start)
        self._buf_start = start
        self._end = start
        # Short queues as lists trimmed by hand: a deque costs 760 bytes however short.
        self._beats: list[int] = []              # R indices waiting for their inputs
        self._prev: int | None = None        # R index before the oldest pending beat
        self._rr_context = RRContext()           # the intervals up to the oldest pending beat
        self._amps: list[float] = []             # the last AMP_BEATS amplitudes
        self._amps_sorted: list[float] = []      # the same, in ascending order
        # Ring buffer of the last TEMPLATE_BEATS windows admitted, one row per beat.
        self._recent = np.zeros((TEMPLATE_BEATS, WINDOW), np.float32)
        self._n_recent = 0
        self._max_post = int(MAX_POST_S * FS)

    @property
    def _n(self) -> int:
        """Samples of look-back this featurizer holds on to."""
        return self._end - self._buf_start

    def push(self, clean: FloatArray, beats: list[int] | tuple[int, ...] = (),
             horizon: int | None = None) -> list[BeatInput]:
        """The beats whose inputs are complete, featurized now."""
        return finished(self.push_pending(clean, beats, horizon))

    def flush(self) -> list[BeatInput]:
        """End of segment: emit what has a complete window, with post-RR as far as known."""
        return finished(self.flush_pending())

    def push_pending(self, clean: FloatArray, beats: list[int] | tuple[int, ...] = (),
                     horizon: int | None = None) -> list[PendingBeat]:
        """As :meth:`push`, with the waveform work left to :func:`featurize` (the
        service's path: the beat model's batcher featurizes every device's beats at once).
        Every beat must be featurized, in order, before this featurizer's later ones."""
        if type(clean) is not np.ndarray or clean.dtype is not F64:   # (else asarray returns it)
            clean = np.asarray(clean, np.float64)
        hist, start = self._hist, self._end
        end = start + len(clean)
        if end > hist.start + hist.n:           # (a pipeline segment's VF put it already)
            hist.put(start, clean)
        self._end = end
        queue = self._beats
        if beats:
            queue.extend(map(int, beats))
        out: list[PendingBeat] = []
        while queue:
            r = queue[0]
            nxt = queue[1] if len(queue) > 1 else None
            window_done = r + WINDOW_AFTER <= end
            post_known = nxt is not None or end - r >= self._max_post
            if not (window_done and post_known):
                break
            del queue[0]
            out.append(self._emit(r, nxt))
        # Keep what the oldest pending beat may still need, and what beats the
        # detector reports later may: from its horizon on, and never more than
        # HISTORY back (such a beat's window is padded), so the windows are the
        # same with or without the horizon.
        late = end - HISTORY
        if horizon is not None and horizon > late:
            late = horizon
        oldest = queue[0] if queue else end
        keep_from = (oldest if oldest < late else late) - WINDOW_BEFORE
        if keep_from > self._buf_start:
            self._buf_start = keep_from
            hist.need(self._reader, keep_from)
        return out

    def flush_pending(self) -> list[PendingBeat]:
        """As :meth:`flush`, featurized later (see :meth:`push_pending`)."""
        out = []
        while self._beats and self._beats[0] + WINDOW_AFTER <= self._end:
            r = self._beats.pop(0)
            out.append(self._emit(r, self._beats[0] if self._beats else None))
        self._beats.clear()
        return out

    def _emit(self, r: int, nxt: int | None) -> PendingBeat:
        """The beat's raw window and RR context; :func:`featurize` does the rest."""
        lo, start, hist = r - WINDOW_BEFORE, self._buf_start, self._hist
        if lo >= start:
            # The history moves on before featurize reads it: a copy. (hist.view's
            # slice inline: its check holds, the history starts no later than _buf_start
            # and the beat's window is done.)
            held = hist.start
            if lo + WINDOW > held + hist.n:
                hist.view(lo, lo + WINDOW)          # raises
            seg = hist.data[lo - held:lo - held + WINDOW].copy()
        else:
            # Only at a segment start (or a beat reported later than HISTORY):
            # pad with the nearest sample rather than fail.
            held = self._hist.view(start, max(lo + WINDOW, start))
            fill = held[0] if held.size else (
                self._hist.view(start, start + 1)[0] if self._end > start else 0.0)
            seg = np.concatenate([np.full(WINDOW - held.size, fill), held])

        prev, max_post = self._prev, self._max_post
        pre = (r - prev) / FS if prev is not None else None
        after = (nxt if nxt is not None else self._end) - r
        post = (after if after < max_post else max_post) / FS
        context = self._rr_context
        rr, admit = context.features(pre, post)
        if pre is not None:
            context.note(pre)
        self._prev = r
        return PendingBeat(r, self, seg, rr, admit)

    def _template(self, window: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Element-wise median of the previous beats' windows (the beat itself at
        first); many full rings at once go through :func:`_full_medians` instead.

        The middle order statistics from sorting each sample's values, averaged
        in float32 as np.median does: the same values at a fraction of the cost."""
        n = min(self._n_recent, TEMPLATE_BEATS)
        if n == 0:
            return window
        ordered = np.sort(self._recent[:n], axis=0)
        mid = n // 2
        if n % 2:
            return ordered[mid].copy()
        return (ordered[mid - 1] + ordered[mid]) / np.float32(2)
