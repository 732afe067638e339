"""The signal chain's filters for every device of a processing tick, in one pass.

A service receives about one chunk per device per second. Filtering each
chunk alone costs mostly per-call overhead (scipy checks its arguments and
moves axes before a 250-sample recurrence that takes a few microseconds), so
pipelines built with a :class:`SignalBatcher` do not filter at once: they
resample the chunk and hand it over (:meth:`SignalBatcher.submit`). Once per
tick the owner calls :meth:`SignalBatcher.run`: blocks that share a filter
design and a length are stacked into one array and filtered along its batch
axis, each row with its own device's state (:func:`detect.filters.push_many`),
for the cleaning filter and the R-peak detector's QRS band at once, then
the detector's slope and integration window over the band
(:func:`detect.rpeaks.qrs_energy`, FIR filters along the same axis) and its
candidate scan (:func:`detect.rpeaks.scan_many`: moving maximum and peak
tests over every device's look-back and block side by side). The
windows that the blocks complete are then analysed together too: the VF
windows' features (:func:`detect.vf.vf_features_many`, one ``rfft`` over all
of them) and the quality windows' statistics
(:func:`detect.quality_judge.assess_many`), read from each device's own buffers
without changing them. Each :class:`Filtered` block is then handed back to
its pipeline (``DevicePipeline.resume``), which runs the rest of the chain
(quality verdicts, R-peaks, VF decisions, beat features, rhythms, alarms)
exactly as an unbatched push would.

Results are identical to unbatched pushes, sample for sample: a pipeline
settles its own pending block (filtering it alone) before anything else
touches its signal chain (another chunk, a gap, the end of the record, a new
configuration), so every device's operations happen in the same order, and
each row of a batched ``sosfilt`` is computed as its own call would be, as is
each window's features and statistics, to the last bit.
``tests/test_batch.py`` checks both against a fleet, and
``bench/compare_windows.py`` the window features against an earlier commit.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .buffers import Scratch
from .filters import SosFilter, push_many
from .quality_judge import assess_many
from .quality_stats import WindowStats
from .rpeaks import Scanned, qrs_energy, scan_many
from .types import FloatArray
from .vf import Screened, VfDetector, VfFeatures, vf_features_many, vf_tcsc_many
from .wide_complex import half_window, qrs_widths_many

_EMPTY = np.zeros(0)
_NO_WIDTHS: Mapping[int, float] = MappingProxyType({})
# Blocks analysed together at most: enough to spread numpy's per-call cost
# thin, few enough that one pass's temporary arrays stay in the caches and in
# memory malloc reuses. In one pass over 1,000 devices the temporaries took 6
# fresh pages per device and tick; at 5,000 devices a chunk cost 15-20 % more
# CPU than with passes of 64 (measured with 32 to 256 and in one pass).
ROWS = 64

if TYPE_CHECKING:                       # the pipeline imports this module
    from .pipeline import DevicePipeline, PipelineResult
    from .segment import SignalSegment
    from .quality_judge import QualityLimits


class Filtered(NamedTuple):
    """One device's block after the batched filters: what its pipeline resumes from.

    (Named tuples, not frozen dataclasses: one of each is made per device and tick,
    and a frozen dataclass of eleven fields costs four times as much to build.)"""

    pipeline: "DevicePipeline"
    segment: "SignalSegment"
    samples: FloatArray          # resampled to the internal rate, before filtering
    clean: FloatArray            # through the cleaning filter
    band: FloatArray             # through the R-peak detector's QRS band-pass
    slope: FloatArray            # |5-point slope| of ``band`` (detect.rpeaks.qrs_energy)
    energy: FloatArray           # its moving-window integral
    vf: tuple[VfFeatures | Screened, ...]   # features of the VF windows the block completes
    quality: tuple[WindowStats, ...]   # statistics of the quality windows it completes
    scanned: Scanned | None      # the R-peak candidate scan (None: the detector scans)
    widths: Mapping[int, float]  # QRS widths of the scan's candidates (stream index -> ms)

    def resume(self) -> "PipelineResult":
        """Finish this block's analysis (``DevicePipeline.resume``)."""
        return self.pipeline.resume(self)


# Built per device and tick: ``tuple.__new__`` with the fields in order makes the
# same named tuple as its constructor, without the constructor's Python frame
# (about half the cost, counted by callgrind).
_new_filtered = functools.partial(tuple.__new__, Filtered)
_new_screened = functools.partial(tuple.__new__, Screened)


class _Block(NamedTuple):
    pipeline: "DevicePipeline"
    segment: "SignalSegment"
    samples: FloatArray


class SignalBatcher:
    """Collects one resampled block per pipeline; filters them all in ``run``.

    Not thread-safe: one per processing loop, like ``BeatBatcher``.
    """

    def __init__(self) -> None:
        self._blocks: dict[int, _Block] = {}     # id(pipeline) -> its pending block
        self.runs = 0                            # batched passes made
        self.calls = 0                           # filter calls made (4 per group)
        self.blocks = 0                          # blocks filtered, batched or alone
        # The passes' working arrays, reused every tick (no page faults per pass).
        self.scratch = Scratch()

    @property
    def pending(self) -> int:
        """Blocks waiting for the next :meth:`run`."""
        return len(self._blocks)

    def submit(self, pipeline: "DevicePipeline", segment: "SignalSegment",
               samples: FloatArray) -> None:
        """Queue ``samples`` (the segment's next resampled block) for filtering."""
        key = id(pipeline)
        if key in self._blocks:
            raise RuntimeError(f"Device {pipeline.device_id!r} submitted a second block before "
                               "its first was filtered; the pipeline must settle first.")
        self._blocks[key] = _Block(pipeline, segment, samples)

    def take(self, pipeline: "DevicePipeline") -> Filtered | None:
        """The pipeline's pending block filtered alone now, or None if it has none."""
        block = self._blocks.pop(id(pipeline), None)
        return None if block is None else self._filter([block])[0]

    def run(self) -> list[Filtered]:
        """Filter every pending block, batched by design and length, in submission order.

        The caller resumes each (``Filtered.resume()``), device by device, so
        that one device's failure does not touch the others.
        """
        blocks = list(self._blocks.values())
        self._blocks = {}
        if not blocks:
            return []
        self.runs += 1
        return self._filter(blocks)

    def _filter(self, blocks: list[_Block]) -> list[Filtered]:
        """Filter and scan ``blocks`` in passes of at most :data:`ROWS` (blocks are
        independent, so how they are split changes nothing)."""
        out: list[Filtered] = []
        for lo in range(0, len(blocks), ROWS):
            out += self._filter_part(blocks[lo:lo + ROWS])
        return out

    def _filter_part(self, blocks: list[_Block]) -> list[Filtered]:
        groups: dict[tuple[int, int, int], list[int]] = {}
        for i, b in enumerate(blocks):
            key = (id(b.segment.cleaner.sos), id(b.segment.detector.band_filter.sos),
                   b.samples.size)
            groups.setdefault(key, []).append(i)
        n = len(blocks)
        clean: list[FloatArray] = [_EMPTY] * n
        band: list[FloatArray] = [_EMPTY] * n
        slope: list[FloatArray] = [_EMPTY] * n
        energy: list[FloatArray] = [_EMPTY] * n
        scanned: list[Scanned | None] = [None] * n
        for rows in groups.values():
            # (np.stack, but without its Python loop over the blocks)
            x = np.concatenate([blocks[i].samples for i in rows]).reshape(len(rows), -1)
            cleaners: list[SosFilter] = [blocks[i].segment.cleaner for i in rows]
            detectors = [blocks[i].segment.detector for i in rows]
            bands: list[SosFilter] = [d.band_filter for d in detectors]
            y_clean, y_band = push_many(cleaners, x), push_many(bands, x)
            y_slope, y_energy = qrs_energy(detectors, y_band, self.scratch)
            scans = scan_many(detectors, y_band, y_slope, y_energy, self.scratch)
            self.calls += 4
            for i, cl, bd, sl, en, sc in zip(rows, y_clean, y_band, y_slope, y_energy, scans):
                clean[i], band[i], slope[i], energy[i], scanned[i] = cl, bd, sl, en, sc
        self.blocks += n
        # Every block into its segment's cleaned history now, as the stages' first put
        # would (theirs are then free): the windows below are read out of it in one piece.
        for b, cl in zip(blocks, clean):
            b.segment.hold(cl)
        vf = _vf_windows(blocks, clean, self.scratch)
        quality = _quality_windows(blocks, clean, self.scratch)
        widths = _candidate_widths(blocks, clean, scanned, self.scratch)
        return [_new_filtered((b.pipeline, b.segment, b.samples, clean[i], band[i], slope[i],
                               energy[i], vf[i], quality[i], scanned[i], widths[i]))
                for i, b in enumerate(blocks)]


def _vf_windows(blocks: list[_Block], clean: list[FloatArray],
                scratch: Scratch) -> list[tuple[VfFeatures | Screened, ...]]:
    """Features of the VF windows each block completes, all windows of one length
    and rate in one :func:`detect.vf.vf_features_many` call (with 1 s chunks every
    device in steady state completes one window per tick).

    Screened first: most windows (any ECG with narrow QRS complexes) have a TCSC
    that rules VF out, and while no episode is open such a window decides
    nothing but that it is not VF-like (:meth:`detect.vf.VfDetector.screens_out`),
    so only the others (about 3 % in the bench fleet) get the leakage, amplitude
    and spectrum; a screened window gets :class:`detect.vf.Screened`. The
    decisions, events and alarms are those the full features give."""
    out: list[tuple[VfFeatures | Screened, ...]] = [()] * len(blocks)
    groups: dict[tuple[int, float], list[tuple[int, int, VfDetector]]] = {}
    for i, b in enumerate(blocks):
        vf = b.segment.vf
        count = vf.windows_ending(clean[i].size)
        if count:
            groups.setdefault((vf.window, vf.fs), []).append((i, count, vf))
    for (window, fs), items in groups.items():
        x = scratch.take("vf.windows", (sum(c for _, c, _ in items), window))
        r = 0
        for i, c, vf in items:
            vf.fill_windows(clean[i], x[r:r + c])
            r += c
        tcsc = vf_tcsc_many(x, fs, scratch)
        features: list[VfFeatures | Screened] = [_new_screened((t,)) for t in tcsc]
        full: list[int] = []                        # rows that need every feature
        r = 0
        for i, c, vf in items:
            for j in range(r, r + c):
                # Once a window of the block is not screened out, its decision may
                # open an episode: the block's later windows get every feature too.
                if (full and full[-1] >= r) or not vf.screens_out(tcsc[j]):
                    full.append(j)
            r += c
        if len(full) == len(features):
            features = list(vf_features_many(x, fs, scratch, overwrite=True))
        elif full:
            rows = np.take(x, full, axis=0, out=scratch.take("vf.rows", (len(full), window)))
            for j, f in zip(full, vf_features_many(rows, fs, scratch, overwrite=True)):
                features[j] = f
        r = 0
        for i, c, _ in items:
            out[i] = tuple(features[r:r + c])
            r += c
    return out


def _candidate_widths(blocks: list[_Block], clean: list[FloatArray],
                      scanned: list[Scanned | None], scratch: Scratch) -> list[Mapping[int, float]]:
    """QRS widths (:func:`detect.wide_complex.qrs_widths_many`) of the R-peak candidates
    each block's scan found, all of one rate in one call; the wide-complex tracker
    takes a beat's width from here instead of measuring it alone (every beat is a
    candidate's fiducial). A candidate whose +-``half`` samples lie neither in the
    block nor in the last ``4 * half`` samples of its segment's history (a
    segment's first moments) is left to the tracker, as are unscanned blocks."""
    out: list[Mapping[int, float]] = [_NO_WIDTHS] * len(blocks)
    groups: dict[tuple[float, int], list[int]] = {}
    for i, b in enumerate(blocks):
        found = scanned[i]
        if found is not None and found.candidates:
            groups.setdefault((b.segment.detector.fs, clean[i].size), []).append(i)
    for (fs, m), items in groups.items():
        half = half_window(fs)
        tail = 4 * half
        span = 2 * half + 1
        width = tail + m
        # Each block's row of ext: its history's last ``tail`` samples before the block,
        # then the block (the history holds it: SignalBatcher._filter_part put it); the
        # rows are laid end to end by one concatenate.
        pieces: list[FloatArray] = []
        starts: list[int] = []                      # of each candidate's samples in ext
        owners: list[tuple[int, int]] = []          # (block, stream index) per candidate
        for i in items:
            seg = blocks[i].segment
            hist = seg.history
            held = hist.n - m                           # samples before the block
            if held < tail:
                continue
            r = len(pieces)
            pieces.append(hist.data[held - tail:held + m])
            first = hist.start + held - tail - r * width     # stream index of ext[r * width]
            for c in scanned[i].candidates:             # type: ignore[union-attr]
                index = seg.offset + c.r
                lo = index - half - first
                if lo >= r * width and lo + span <= (r + 1) * width:
                    starts.append(lo)
                    owners.append((i, index))
        if not starts:
            continue
        ext = np.concatenate(pieces, out=scratch.take("qrs.ext", (len(pieces) * width,)))
        windows = ext[np.array(starts)[:, None] + np.arange(span)]
        for (i, index), width in zip(owners, qrs_widths_many(windows, half, fs)):
            if out[i] is _NO_WIDTHS:
                out[i] = {}
            out[i][index] = width                       # type: ignore[index]
    return out


def _quality_windows(blocks: list[_Block], clean: list[FloatArray],
                     scratch: Scratch) -> list[tuple[WindowStats, ...]]:
    """Statistics of the quality windows each block completes, all windows judged
    under the same limits at the same rate in one :func:`detect.quality_judge.assess_many`."""
    out: list[tuple[WindowStats, ...]] = [()] * len(blocks)
    groups: dict[tuple[int, float], tuple[QualityLimits, list]] = {}
    for i, b in enumerate(blocks):
        q = b.segment.quality
        jobs = q.pending(b.samples, clean[i])
        if jobs:
            groups.setdefault((id(q.limits), q.fs), (q.limits, []))[1].append((i, jobs))
    for (_, fs), (limits, items) in groups.items():
        stats = assess_many([job for _, jobs in items for job in jobs], fs, limits, scratch)
        r = 0
        for i, jobs in items:
            out[i] = tuple(stats[r:r + len(jobs)])
            r += len(jobs)
    return out


__all__ = ["Filtered", "SignalBatcher"]
