"""One segment's signal chain: resample -> filter -> VF, quality, R-peaks, beat inputs.

A *segment* is a contiguous run of samples at one input rate (see
:mod:`detect.pipeline`). Its stages share one history of the cleaned signal
(:class:`detect.buffers.History`) and restart with the segment, because
filters and the R-peak detector cannot bridge missing samples. The
pipeline pushes chunks through :meth:`SignalSegment.push`, or, with batched
filters (:mod:`detect.batch`), hands the filtered block to
:meth:`SignalSegment.finish`; what comes out (peaks, quality windows, beat
inputs) is the same either way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .beat_features import WINDOW_AFTER, BeatFeaturizer, PendingBeat
from .buffers import History
from .config import DetectorConfig
from .filters import CleaningFilter
from .quality import SignalQuality
from .quality_stats import WindowStats
from .resample import Resampler
from .rpeaks import RPeakDetector, Scanned
from .types import QualityWindow
from .vf import Screened, VfDetector, VfEvent, VfFeatures


class SignalSegment:
    """The signal chain for one contiguous run of samples at one input rate."""

    def __init__(self, fs_in: float, offset: int, config: DetectorConfig,
                 features: bool = False) -> None:
        fs = config.fs
        self.fs_in = fs_in
        self.offset = offset                  # stream index of this segment's sample 0
        self.resampler = Resampler(fs_in, fs)
        self.cleaner = CleaningFilter(fs, config.bandpass_hz, config.mains_hz, config.notch_q)
        self.detector = RPeakDetector(fs)
        # VF and quality look back over the same cleaned signal (VF a 4 s window,
        # quality the last 2 s window and the one being filled), and so does the
        # beat featurizer: one history holds it for all, sized for VF's need (a
        # window and a hop), as VF alone did.
        vf_window, hop = VfDetector.window_and_hop(fs)
        # The pipeline's wide-complex tracker reads it too (restarted on it as the
        # segment opens).
        self.history = clean = History(offset, vf_window + hop)
        self.quality = SignalQuality(config, start=offset, history=clean)
        # Model inputs only when there is a model to feed (from the same history).
        self.features = BeatFeaturizer(start=offset, history=clean) if features else None
        # VF is read from the waveform itself: QRS detection fails there.
        self.vf = VfDetector(fs, start=offset, history=clean)
        self.vf_events: list[VfEvent] = []
        self.clean = np.zeros(0)              # the cleaned signal of the last push
        self.usable = True                    # quality of the last window
        self._horizon = self._detector_horizon()      # as of the detector's last push

    @property
    def end(self) -> int:
        """Stream index just after the last sample produced."""
        return self.offset + self.resampler.produced

    def hold(self, clean: np.ndarray) -> None:
        """Put the cleaned block that ends the segment so far into the history ahead of
        the stages (the batched pass reads their windows out of it; their own puts of
        it are then free)."""
        self.history.put(self.offset + self.resampler.produced - clean.size, clean)  # self.end

    def push(self, samples: np.ndarray) -> tuple[list[int], list[QualityWindow], list[PendingBeat]]:
        y = self.resampler.push(samples)
        return self.finish(y, self.cleaner.push(y))

    def finish(self, y: np.ndarray, clean: np.ndarray, band: np.ndarray | None = None,
               energy: tuple[np.ndarray, np.ndarray] | None = None,
               vf: Sequence[VfFeatures | Screened] | None = None,
               stats: Sequence[WindowStats] | None = None,
               scanned: Scanned | None = None,
               ) -> tuple[list[int], list[QualityWindow], list[PendingBeat]]:
        """The chain after the filters: ``y`` resampled, ``clean`` through the
        cleaning filter, ``band`` through the detector's QRS band-pass and
        ``energy`` its slope and integral, ``vf`` the features of the VF windows
        and ``stats`` the statistics of the quality windows this block completes,
        ``scanned`` the detector's candidate scan (None: the stages compute them;
        detect/batch.py computes them for many devices at once)."""
        self.clean = clean
        events = self.vf.push(clean, vf)
        if events:                            # a few chunks a minute at most
            self.vf_events += events
        windows = self.quality.push(y, clean, stats)
        for w in windows:
            # Signal usable again after noise: the detector's levels are stale
            # (noise peaks inflated them), so it learns afresh from here.
            if w.quality.usable and not self.usable:
                self.detector.relearn(w.end - self.offset)
            self.usable = w.quality.usable
        offset = self.offset
        found = self.detector.push(y, band, energy, scanned)
        # (A new list each push: the first segment, at offset 0, hands it on as it is.)
        peaks = [p + offset for p in found] if offset else found
        self._horizon = horizon = offset + self.detector.horizon    # _detector_horizon()
        features = (self.features.push_pending(clean, peaks, horizon)
                    if self.features else [])
        return peaks, windows, features

    def close(self) -> tuple[list[int], list[QualityWindow], list[PendingBeat]]:
        """Decide what is pending at the end of the segment."""
        end = self.end
        # Silence through the detector completes its look-ahead and search-back;
        # only beats before the real end count.
        tail = self.detector.push(np.zeros(int(round(2.0 * self.detector.fs))))
        self._horizon = self._detector_horizon()
        peaks = [p + self.offset for p in tail if p + self.offset < end]
        # The last beats' windows run past the end: complete them with silence.
        inputs = (self.features.push_pending(np.zeros(WINDOW_AFTER), peaks)
                  + self.features.flush_pending() if self.features else [])
        self.vf_events += self.vf.flush()
        self.clean = np.zeros(0)
        return peaks, self.quality.flush(), inputs

    def horizon(self) -> int:
        """Stream index before which every beat has been reported. Only a push moves
        the detector's horizon, so it is taken once per push (the pipeline asks again
        after the chain)."""
        return self._horizon

    def _detector_horizon(self) -> int:
        return self.offset + self.detector.horizon


__all__ = ["SignalSegment"]
