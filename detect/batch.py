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
(:func:`detect.rpeaks.qrs_energy`, FIR filters along the same axis). Each
:class:`Filtered` block is then handed back to its pipeline
(``DevicePipeline.resume``), which runs the rest of the chain (quality,
R-peaks, VF, beat features, rhythms, alarms) exactly as an unbatched push
would.

Results are identical to unbatched pushes, sample for sample: a pipeline
settles its own pending block (filtering it alone) before anything else
touches its signal chain (another chunk, a gap, the end of the record, a new
configuration), so every device's operations happen in the same order, and
each row of a batched ``sosfilt`` is computed as its own call would be.
``tests/test_batch.py`` checks both against a fleet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .filters import SosFilter, push_many
from .rpeaks import qrs_energy
from .types import FloatArray

_EMPTY = np.zeros(0)

if TYPE_CHECKING:                       # the pipeline imports this module
    from .pipeline import DevicePipeline, PipelineResult, _Segment


@dataclass(frozen=True, slots=True)
class Filtered:
    """One device's block after the batched filters: what its pipeline resumes from."""

    pipeline: "DevicePipeline"
    segment: "_Segment"
    samples: FloatArray          # resampled to the internal rate, before filtering
    clean: FloatArray            # through the cleaning filter
    band: FloatArray             # through the R-peak detector's QRS band-pass
    slope: FloatArray            # |5-point slope| of ``band`` (detect.rpeaks.qrs_energy)
    energy: FloatArray           # its moving-window integral

    def resume(self) -> "PipelineResult":
        """Finish this block's analysis (``DevicePipeline.resume``)."""
        return self.pipeline.resume(self)


@dataclass(frozen=True, slots=True)
class _Block:
    pipeline: "DevicePipeline"
    segment: "_Segment"
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

    @property
    def pending(self) -> int:
        """Blocks waiting for the next :meth:`run`."""
        return len(self._blocks)

    def submit(self, pipeline: "DevicePipeline", segment: "_Segment",
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
        for rows in groups.values():
            x = np.stack([blocks[i].samples for i in rows])
            cleaners: list[SosFilter] = [blocks[i].segment.cleaner for i in rows]
            detectors = [blocks[i].segment.detector for i in rows]
            bands: list[SosFilter] = [d.band_filter for d in detectors]
            y_clean, y_band = push_many(cleaners, x), push_many(bands, x)
            y_slope, y_energy = qrs_energy(detectors, y_band)
            self.calls += 4
            for k, i in enumerate(rows):
                clean[i], band[i] = y_clean[k], y_band[k]
                slope[i], energy[i] = y_slope[k], y_energy[k]
        self.blocks += n
        return [Filtered(b.pipeline, b.segment, b.samples, clean[i], band[i], slope[i], energy[i])
                for i, b in enumerate(blocks)]


__all__ = ["Filtered", "SignalBatcher"]
