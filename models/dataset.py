"""Beat-level training data: MIT-BIH records through the service's own signal chain.

Each record goes through exactly what :mod:`detect.pipeline` does to a live
stream (``Resampler(fs, 250)`` then ``CleaningFilter(250, (0.5, 40), (50, 60))``)
and one :class:`detect.beat_features.BeatFeaturizer` fed with every beat of
one of two sources, so that the RR context matches the stream's:

* ``reference``: the annotated beats. Their positions are moved onto the
  250 Hz grid with the resampler's group delay: output sample ``m`` is input
  time ``m / 250 - delay``, hence ``m = round((sample / fs + delay) * 250)``.
* ``detected``: the beats the service's streaming R-peak detector finds (the
  record replayed in 1 s chunks through :class:`ingest.device.DeviceMonitor`,
  as ``ecgwatch eval`` does end to end), each labelled with the class of the
  reference beat it matches within 150 ms (EC57's rule). This is what the
  model sees in service: the detector's R position, which on wide or
  notched complexes can lie 30-100 ms from the annotation (DS1 records 208
  and 114, ``bench/reference_gap.py``), and the RR context and template of
  the beats it found, extra detections included. Extra detections shape the
  context but are not scored; reference beats the detector missed are
  absent, as in service.

Only beats that AAMI EC57 scores (:mod:`models.aami`) are kept.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import numpy.typing as npt

from detect.beat_features import CHANNELS, FS, RR_FEATURES, WINDOW, BeatFeaturizer, stack_inputs
from detect.config import DetectorConfig
from detect.filters import CleaningFilter
from detect.resample import Resampler
from ecgwatch.evaluation.matching import BEAT_SYMBOLS
from ecgwatch.evaluation.records import read_signal

from .aami import DS1, DS2, class_indices

CACHE_VERSION = 7
SOURCES = ("reference", "detected")


@dataclass(frozen=True, slots=True)
class BeatSet:
    """Model inputs and AAMI labels for a set of beats (row-aligned arrays)."""

    windows: npt.NDArray[np.float32]     # (n, CHANNELS, WINDOW): beat, template
    rr: npt.NDArray[np.float32]          # (n, len(RR_FEATURES))
    labels: npt.NDArray[np.int64]        # (n,) index into aami.CLASSES
    records: npt.NDArray[np.str_]        # (n,) record name per beat
    times: npt.NDArray[np.float64]       # (n,) R position, seconds from the record's start

    def __post_init__(self) -> None:
        n = self.labels.shape[0]
        if (self.windows.shape != (n, CHANNELS, WINDOW) or self.rr.shape != (n, len(RR_FEATURES))
                or self.records.shape != (n,) or self.times.shape != (n,)):
            raise ValueError(f"Beat set arrays disagree: windows {self.windows.shape}, "
                             f"rr {self.rr.shape}, labels {self.labels.shape}, "
                             f"records {self.records.shape}, times {self.times.shape}.")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, mask: npt.NDArray[np.bool_]) -> BeatSet:
        return BeatSet(self.windows[mask], self.rr[mask], self.labels[mask], self.records[mask],
                       self.times[mask])

    @staticmethod
    def concat(parts: list[BeatSet]) -> BeatSet:
        return BeatSet(np.concatenate([p.windows for p in parts]),
                       np.concatenate([p.rr for p in parts]),
                       np.concatenate([p.labels for p in parts]),
                       np.concatenate([p.records for p in parts]),
                       np.concatenate([p.times for p in parts]))


def record_beats(path: Path | str, source: str = "reference") -> BeatSet:
    """All AAMI-scored beats of one record (channel 0), as the service would see them."""
    import wfdb
    path = Path(path)
    if source not in SOURCES:
        raise ValueError(f"Beat source {source!r} is not one of {SOURCES}.")
    x, fs = read_signal(path, channel=0)
    config = DetectorConfig()
    resampler = Resampler(fs, FS)
    cleaner = CleaningFilter(FS, config.bandpass_hz, config.mains_hz, config.notch_q)
    clean = cleaner.push(resampler.push(x))

    ann = wfdb.rdann(str(path), "atr")
    sym = np.asarray(ann.symbol)
    is_beat = np.isin(sym, sorted(BEAT_SYMBOLS))
    samples = np.asarray(ann.sample, dtype=np.int64)[is_beat]
    sym = sym[is_beat]
    if source == "detected":
        samples, sym, index = _detected(x, fs, samples, sym, resampler.delay_s, path.name)
    else:
        index = np.rint((samples / fs + resampler.delay_s) * FS).astype(np.int64)
    # Keep the grid strictly ascending (two beats cannot share a sample).
    keep = np.concatenate([[True], np.diff(index) > 0])
    index, sym, samples = index[keep], sym[keep], samples[keep]

    feat = BeatFeaturizer()
    inputs = feat.push(clean, index.tolist()) + feat.flush()
    # The featurizer emits beats in order and drops only trailing ones whose
    # window runs past the end, so its output is a prefix of ``index``.
    n = len(inputs)
    if [b.index for b in inputs] != index[:n].tolist():
        raise RuntimeError(f"Record {path.name}: featurizer output does not follow the beats.")
    labels = class_indices(sym[:n])
    scored = labels >= 0
    windows, rr = stack_inputs(inputs)
    windows, rr = windows[scored], rr[scored]
    return BeatSet(windows.astype(np.float32), rr.astype(np.float32), labels[scored],
                   np.full(int(scored.sum()), path.name), samples[:n][scored] / fs)


def _detected(x: npt.NDArray[np.float64], fs: float, ref: npt.NDArray[np.int64],
              sym: npt.NDArray[np.str_], delay_s: float, name: str
              ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.str_], npt.NDArray[np.int64]]:
    """The streaming detector's beats: record samples, the matched reference symbol
    (``"~"``, not a beat class, for an extra detection) and 250 Hz grid positions."""
    from ecgwatch.evaluation.ec57 import MATCH_WINDOW_S
    from ecgwatch.evaluation.matching import match_beats
    from ecgwatch.evaluation.replay import replay

    beats = sorted(replay(x, fs).beats, key=lambda b: b.index)
    index = np.array([b.index for b in beats], dtype=np.int64)
    samples = np.array([round(b.time * fs) for b in beats], dtype=np.int64)
    # The pipeline's grid is the offline chain's (one segment from sample 0):
    # its beat times and indices must agree through the resampler's delay.
    drift = np.abs(np.rint((samples / fs + delay_s) * FS) - index)
    if drift.size and drift.max() > 1:
        raise RuntimeError(f"Record {name}: detected beat times and grid positions disagree "
                           f"by up to {int(drift.max())} samples.")
    m = match_beats(ref, samples, int(round(MATCH_WINDOW_S * fs)))
    matched = np.full(samples.size, "~", dtype="<U1")
    matched[m.det] = sym[m.ref]
    return samples, matched, index


def load_beats(data: Path | str, records: tuple[str, ...], cache: Path | str = "out",
               processes: int = 2, source: str = "reference") -> BeatSet:
    """Beats of ``records`` from ``data/mitdb`` (``source``: reference or detected
    positions), cached per record as ``.npz`` under ``cache``."""
    folder = Path(data) / "mitdb"
    cache = Path(cache) / "beats"
    cache.mkdir(parents=True, exist_ok=True)

    def file(r: str) -> Path:
        return cache / f"{r}.{source}.v{CACHE_VERSION}.npz"

    missing = [r for r in records if not file(r).exists()]
    if missing:
        with Pool(processes) as pool:
            jobs = [(folder / r, source) for r in missing]
            for rec, beats in zip(missing, pool.starmap(record_beats, jobs)):
                np.savez_compressed(file(rec), windows=beats.windows, rr=beats.rr,
                                    labels=beats.labels, records=beats.records, times=beats.times)
    parts = []
    for r in records:
        z = np.load(file(r))
        parts.append(BeatSet(z["windows"], z["rr"], z["labels"], z["records"], z["times"]))
    return BeatSet.concat(parts)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Build the cached beat dataset (DS1 and DS2).")
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", default="out")
    args = ap.parse_args(argv)
    from .aami import CLASSES
    for source in SOURCES:
        for name, recs in (("DS1", DS1), ("DS2", DS2)):
            b = load_beats(args.data, recs, args.out, source=source)
            counts = np.bincount(b.labels, minlength=len(CLASSES))
            print(name, source, len(b), dict(zip(CLASSES, counts.tolist())))


if __name__ == "__main__":
    main()
