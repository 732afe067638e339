"""CinC 2017 wearable strips classified Normal / AF / Other / Noisy through the streaming path.

    python -m ecgwatch.evaluation.cinc2017 --data ../shared/data --out out/cinc2017 [--limit N]

**Data.** The PhysioNet/Computing in Cardiology Challenge 2017 training set
(Clifford GD et al., "AF classification from a short single lead ECG
recording: the PhysioNet/Computing in Cardiology Challenge 2017", Computing
in Cardiology 44, 2017): 8528 AliveCor single-lead strips, 300 Hz, 9 to 61 s,
labelled N (normal), A (AF), O (other rhythm), ~ (too noisy); here A00001 to
A04299 and their labels in ``REFERENCE.csv``.

**Signal path.** Each strip is streamed in 1 s chunks through the service's own
per-device path (:func:`ecgwatch.evaluation.replay.replay`: DeviceMonitor ->
DevicePipeline: resampling to 250 Hz, band-pass, 2 s signal-quality windows,
R-peaks). Only what that path reports is used: beat indices and quality windows.

**Strip features** (:func:`strip_features`):

* ``unusable_share``: the share of the strip in windows judged not usable
  (UNUSABLE, LEADS_OFF, SATURATED); ``good_share`` the share judged GOOD.
* *Analysed beats*: beats inside GOOD windows (NOISY windows hold most of the
  false beats that turn a sinus strip irregular), after :func:`drop_extra_beats`
  removes a beat that splits one median RR into two short intervals (a noise
  spike or a T wave taken for a QRS).
* ``irregularity``: the median over the strip of the smoothed irregularity
  I(n) of the service's AF detector (:class:`detect.af.AfDetector`, its default
  settings) fed the analysed beats. A strip is shorter than the detector's 30 s
  minimum episode, so its irregularity measure is used directly, not its
  episodes. None when the strip has fewer intervals than the detector needs
  (lags + median window, 20).
* ``heart_rate``: 60 / median RR of the analysed beats.
* ``premature_share``: intervals shorter than 80 % of the median RR followed by
  one longer than 110 % of it (a premature beat and its compensatory pause).
* ``deviant_share``: intervals more than 20 % away from the median RR.

**Rules** (:func:`decide`, first match wins; thresholds in :class:`StripRules`):

1. ~ if ``unusable_share`` >= ``max_unusable`` (0.6), or ``good_share`` <
   ``min_good`` (0: off), or fewer than ``min_beats`` (5) analysed beats;
2. A if ``irregularity`` >= ``af_irregularity`` (0.08; the detector's own
   onset threshold for episodes is 0.09);
3. O if the heart rate lies outside ``min_rate``..``max_rate`` (50..100 bpm),
   or ``premature_share`` >= ``max_premature`` (0.03: frequent ectopy), or
   ``deviant_share`` >= ``max_deviant`` (0.3: irregular but not AF-like), or
   ``irregularity`` >= ``other_irregularity`` (1.0: off, the search found no
   gain in it);
4. N otherwise.

**Split**, fixed before any result was seen: strips with an even number are
the tuning half, odd numbers are held out (:func:`is_tuning`). The
thresholds were chosen by :mod:`ecgwatch.evaluation.cinc2017_report`'s grid
search (``--tune``) on the tuning half only; the held-out half was scored
once, with the chosen thresholds.

**Scores** as the challenge defines them (Clifford et al. 2017): per class
F1 = 2 * correct / (reference count + predicted count), and the challenge
score F1 = mean(F1_N, F1_A, F1_O); here also the mean with F1_~.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from detect.af import AfConfig, AfDetector
from detect.config import DetectorConfig
from detect.types import Quality

from .records import data_dir, read_signal
from .replay import replay

CLASSES = ("N", "A", "O", "~")
CHALLENGE_BEST_F1 = 0.83      # best challenge score, Clifford et al. 2017 (mean F1 of N, A, O)
PREMATURE_RATIO = 0.8         # a premature interval: shorter than this times the median RR
PAUSE_RATIO = 1.1             # ... followed by one longer than this times the median RR
DEVIANT_RATIO = 0.2           # an interval this far from the median RR deviates
SPLIT_TOLERANCE = 0.15        # two short intervals summing to the median RR within this


def is_tuning(record: str) -> bool:
    """Tuning half: even strip numbers (A00002, A00004, ...); the odd half is held out."""
    return int(record.lstrip("A")) % 2 == 0


def read_reference(folder: Path) -> dict[str, str]:
    """Record name -> label from the challenge's ``REFERENCE.csv``."""
    out = {}
    for line in (Path(folder) / "REFERENCE.csv").read_text().split():
        name, label = line.strip().split(",")
        if label not in CLASSES:
            raise ValueError(f"Label {label!r} of {name} is not one of {CLASSES}.")
        out[name] = label
    return out


@dataclass(frozen=True, slots=True)
class StripStream:
    """What the streaming path reported for one strip, at the internal rate ``fs``."""

    samples: int
    fs: float
    beats: tuple[int, ...]
    windows: tuple[tuple[int, int, Quality], ...]    # start, end, verdict


def stream_strip(x: np.ndarray, fs: float) -> StripStream:
    """Replay one strip through DeviceMonitor -> DevicePipeline in 1 s chunks."""
    config = DetectorConfig()
    r = replay(x, fs, config=config)
    return StripStream(int(round(x.size / fs * config.fs)), float(config.fs),
                       tuple(b.index for b in r.beats),
                       tuple((w.start, w.end, w.quality) for w in r.quality))


@dataclass(frozen=True, slots=True)
class StripFeatures:
    """The strip-level measures the rules read (see the module docstring)."""

    duration_s: float
    beats: int                       # all detected beats
    analysed_beats: int              # in GOOD windows, extra beats dropped
    unusable_share: float
    good_share: float
    heart_rate: float | None         # bpm
    irregularity: float | None       # median I(n) of the AF detector
    premature_share: float
    deviant_share: float


def drop_extra_beats(beats: Sequence[int], tolerance: float = SPLIT_TOLERANCE) -> list[int]:
    """Beats without those that split one median RR into two short intervals.

    A false beat between two true ones (noise, a tall T wave) leaves two intervals
    that are both short and add up to the usual RR; real premature beats are
    followed by a compensatory pause, and AF intervals rarely add up this way.
    """
    if len(beats) < 5:
        return list(beats)
    med = float(np.median(np.diff(beats)))
    out = [int(beats[0])]
    for k in range(1, len(beats)):
        if k + 1 < len(beats):
            before, after = beats[k] - out[-1], beats[k + 1] - beats[k]
            if (before < 0.75 * med and after < 0.75 * med
                    and abs(before + after - med) < tolerance * med):
                continue
        out.append(int(beats[k]))
    return out


def strip_features(s: StripStream, af_config: AfConfig | None = None) -> StripFeatures:
    """Strip measures from the beats and quality windows of the streaming path."""
    n = max(s.samples, 1)
    unusable = sum(e - a for a, e, q in s.windows if not q.usable) / n
    good = sum(e - a for a, e, q in s.windows if q is Quality.GOOD) / n
    good_windows = [(a, e) for a, e, q in s.windows if q is Quality.GOOD]
    in_good = [b for b in s.beats if any(a <= b < e for a, e in good_windows)]
    beats = drop_extra_beats(in_good)
    det = AfDetector(s.fs, af_config or AfConfig())
    irregularity = []
    for b in beats:
        det.push([b])
        if det.irregularity > 0:          # 0 until the detector has its first value
            irregularity.append(det.irregularity)
    cfg = det.config
    rr = np.diff(beats) / s.fs
    rr = rr[(rr >= cfg.min_rr_s) & (rr <= cfg.max_rr_s)]
    med = float(np.median(rr)) if rr.size else math.nan
    premature = int(np.sum((rr[:-1] < PREMATURE_RATIO * med) & (rr[1:] > PAUSE_RATIO * med)))
    return StripFeatures(
        duration_s=s.samples / s.fs, beats=len(s.beats), analysed_beats=len(beats),
        unusable_share=unusable, good_share=good,
        heart_rate=60.0 / med if rr.size else None,
        irregularity=float(np.median(irregularity)) if irregularity else None,
        premature_share=premature / rr.size if rr.size else 0.0,
        deviant_share=float(np.mean(np.abs(rr - med) > DEVIANT_RATIO * med)) if rr.size else 0.0)


@dataclass(frozen=True, slots=True)
class StripRules:
    """Thresholds of :func:`decide`, chosen on the tuning half (even strips) only."""

    max_unusable: float = 0.6        # ~ : share of the strip judged not usable
    min_good: float = 0.0            # ~ : share judged GOOD below this (0.0: rule off)
    min_beats: int = 5               # ~ : fewer analysed beats
    af_irregularity: float = 0.08    # A : median AF-detector irregularity at or above
    other_irregularity: float = 1.0  # O : irregular but not AF (1.0: rule off)
    min_rate: float = 50.0           # O : bradycardia below, bpm
    max_rate: float = 100.0          # O : tachycardia above, bpm
    max_premature: float = 0.03      # O : premature-beat share at or above
    max_deviant: float = 0.3         # O : deviating-interval share at or above


def decide(f: StripFeatures, rules: StripRules = StripRules()) -> str:
    """N, A, O or ~ for one strip (rules in the module docstring, first match wins)."""
    if (f.unusable_share >= rules.max_unusable or f.good_share < rules.min_good
            or f.analysed_beats < rules.min_beats):
        return "~"
    irr = f.irregularity
    if irr is not None and irr >= rules.af_irregularity:
        return "A"
    if (f.heart_rate is None or not rules.min_rate <= f.heart_rate <= rules.max_rate
            or f.premature_share >= rules.max_premature
            or (irr is not None and irr >= rules.other_irregularity)
            or f.deviant_share >= rules.max_deviant):
        return "O"
    return "N"


# ------------------------------------------------------------------------ scoring
@dataclass(frozen=True, slots=True)
class Scores:
    """Confusion matrix (rows: reference, columns: decision, in CLASSES order) and F1."""

    confusion: tuple[tuple[int, ...], ...]
    f1: dict[str, float] = field(default_factory=dict)     # per class
    challenge_f1: float = 0.0                              # mean of N, A, O
    f1_with_noise: float = 0.0                             # mean of N, A, O, ~

    @property
    def strips(self) -> int:
        return sum(map(sum, self.confusion))


def score(truth: Iterable[str], decided: Iterable[str]) -> Scores:
    """Per-class F1 = 2 * correct / (reference + decided), as Clifford et al. 2017 score it."""
    index = {c: i for i, c in enumerate(CLASSES)}
    m = [[0] * len(CLASSES) for _ in CLASSES]
    for t, d in zip(truth, decided, strict=True):
        m[index[t]][index[d]] += 1
    f1 = {}
    for i, c in enumerate(CLASSES):
        total = sum(m[i]) + sum(row[i] for row in m)
        f1[c] = 2 * m[i][i] / total if total else 0.0
    return Scores(tuple(map(tuple, m)), f1, float(np.mean([f1[c] for c in "NAO"])),
                  float(np.mean([f1[c] for c in CLASSES])))


# ---------------------------------------------------------------------------- run
def _features_of(path: Path) -> tuple[str, StripFeatures]:
    x, fs = read_signal(path)
    return path.name, strip_features(stream_strip(x, fs))


def features_of_all(folder: Path, records: Sequence[str], workers: int = 2
                    ) -> dict[str, StripFeatures]:
    """Features of every strip; the strips are independent, so ``workers`` processes share them."""
    paths = [Path(folder) / r for r in records]
    if workers <= 1:
        return dict(map(_features_of, paths))
    with Pool(workers) as pool:
        return dict(pool.imap(_features_of, paths, chunksize=16))


def main(argv: Sequence[str] | None = None) -> int:
    from .cinc2017_report import tune, write_report

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None,
                    help="folder holding cinc2017/ (default: $ECGWATCH_DATA or ../shared/data)")
    ap.add_argument("--out", type=Path, default=Path("out/cinc2017"))
    ap.add_argument("--limit", type=int, default=None, help="first N strips only (a quick look)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tune", action="store_true",
                    help="also rerun the threshold search on the tuning half and report it")
    a = ap.parse_args(argv)
    folder = (a.data or data_dir()) / "cinc2017"
    if not (folder / "REFERENCE.csv").exists():
        ap.error(f"CinC 2017 data not found: {folder}/REFERENCE.csv is missing.")
    reference = read_reference(folder)
    records = sorted(reference)[:a.limit]
    features = features_of_all(folder, records, a.workers)
    search = tune(features, reference) if a.tune else None
    a.out.mkdir(parents=True, exist_ok=True)
    text = write_report(a.out, features, reference, StripRules(), search)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
