"""The quality judge: the verdict on one fixed window of signal.

:class:`detect.quality.SignalQuality` cuts the stream into windows and keeps
the amplitude reference; this module judges each window. The order
(first match wins):

1. **LEADS_OFF** - the raw (resampled, unfiltered) signal is flat: its robust
   peak-to-peak (0.5th to 99.5th percentile) is below ``flat_mv`` (20 uV), or
   one run of samples that repeat their predecessor within the plateau
   tolerance covers at least half the window (an amplifier pinned at any
   level, or the window in which the line went flat). A flat line beyond
   ``rail_mv`` is SATURATED instead.

   *Leads-off versus asystole.* A connected electrode never gives a flat line,
   even on a heart in standstill: the electrode-skin interface and muscle add
   noise of the order of 10 uV rms (about 60 uV peak-to-peak over 2 s), and
   respiration and motion move the baseline by tenths of a millivolt; in
   ventricular standstill P waves (0.1 to 0.3 mV) may also remain. A detached
   electrode, or an amplifier that stops sampling, gives a constant or a
   quantisation-level line. *Limits:* a very low-noise amplifier on a
   perfectly still, apnoeic patient in asystole could fall under 20 uV and be
   called LEADS_OFF (it still raises a technical alarm, so the patient is not
   left unwatched); a floating lead that picks up mains hum or cable motion is
   not flat, and is caught as UNUSABLE rather than LEADS_OFF.
2. **SATURATED** - any sample beyond ``rail_mv``, or a run of near-identical
   samples of at least ``plateau_s`` (50 ms) lying within ``plateau_band``
   (1 %) of the window's range from its max or min: the amplifier or ADC is
   clipping. Runs are found on sample-to-sample differences (tolerance 1 uV
   plus 0.2 % of the level, because the polyphase resampler leaves a ripple
   of up to 0.1 % of the level on a constant input); the level may sit a
   little inside the extreme because resampling rounds the clipped corners
   (measured: under 0.3 % of the range at 100 to 1000 Hz input). A flat
   baseline segment of a real ECG lies 5 % or more inside the range, and
   its noise breaks the run. *Limit:* a noise-free synthetic signal whose
   smooth extremum is flat to 1 uV for 50 ms would be called clipped.
3. **Quiet** - the band-passed signal spans less than ``quiet_mv``: nothing
   in it is large enough to hide or imitate a QRS complex, so the absence of
   beats there is real (asystole) and the window is GOOD.
4. **UNUSABLE / NOISY / GOOD** from signal-quality indices (SQIs) of the
   band-passed window, after Zhao & Zhang (2018), "SQI quality evaluation
   mechanism of single-lead ECG signal based on simple heuristic fusion and
   fuzzy comprehensive evaluation", Front. Physiol. 9:727, as implemented in
   neurokit2's ``ecg_quality(method="zhao2018")``:

   - kSQI, kurtosis: QRS complexes make ECG heavy-tailed (Zhao: > 5 optimal);
     Gaussian-like noise has kurtosis 3 (Li, Clifford & Mark 2008 use the
     same index).
   - basSQI, 1 - P(0-1 Hz) / P(0-40 Hz): baseline and motion energy.
   - pSQI, P(5-15 Hz) / P(5-40 Hz): the QRS band share; muscle noise pushes
     it down (only the lower bound is used: fast and wide QRS legitimately
     raise it above Zhao's 0.8).
   - Relative amplitude: rms of the window over the median rms of recent
     GOOD windows of the same stream. Motion artefact at 0 dB SNR or worse
     multiplies the rms several times; no rhythm change does that to a lead.

   The two spectral indices are computed over the window and its predecessor
   (4 s, 0.25 Hz resolution): a 2 s window holding a single slow beat gives
   an unstable spectrum. Each index maps to a membership in 0..1 by a linear
   ramp; an index below
   0.5 is *unqualified*. Zhao's simple fusion rule is kept: two or more
   unqualified indices make the window UNUSABLE, one makes it NOISY, none
   GOOD. Independently, a band-passed peak-to-peak above ``max_physio_mv``
   (8 mV: beyond any surface QRS; 99.9 % of MIT-BIH windows stay under 5.3 mV)
   is UNUSABLE. The score is the mean membership (0 for flat, clipped or
   non-physiological windows, 1 for quiet ones).

Calibration (2 s windows at 250 Hz, MLII lead, the project's resampler and
cleaning filter; reproduce with ``python bench/quality_calibration.py``):
over all 48 MIT-BIH records 92 % of windows are GOOD, 7 % NOISY and 0.6 %
UNUSABLE (mostly the known noisy records 105, 108, 114 and 228). In the
noisy blocks of the Noise Stress Test records 118 and 119 (electrode motion)
98 % of windows are UNUSABLE at -6 dB SNR, 68 % at 0 dB and 7 % at 6 dB (the
rest GOOD or NOISY), as a detector still finds most beats there.

Known limit: ventricular flutter and some VT look like motion noise to these
indices (low kurtosis, energy spread over the cycle): a few of MIT-BIH's
VT/VFL windows are judged UNUSABLE and most of the rest NOISY, so a VT run
can lose a window of rate analysis.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

import numpy as np

from .buffers import Scratch, fresh
from .errors import ConfigError
from .quality_stats import WindowStats, steady_run_bounds, window_stats_many
from .quality_stats import median as _median
from .records import quick_init
from .types import FloatArray, Quality


@dataclass(frozen=True, slots=True)
class QualityLimits:
    """Thresholds of :class:`detect.quality.SignalQuality` (millivolts and seconds)."""

    window_s: float = 2.0          # fixed analysis window, aligned to stream sample 0
    min_window_s: float = 0.5      # shorter tails (flush/reset) inherit the previous verdict
    flat_mv: float = 0.02          # robust raw peak-to-peak below this: leads off
    rail_mv: float = 30.0          # |raw| beyond this: clipped (6x the IEC 60601-2-27 +-5 mV range)
    plateau_s: float = 0.05        # clipped run at least this long
    plateau_tol_mv: float = 0.001  # plateau step tolerance: absolute part ...
    plateau_tol_rel: float = 0.002  # ... plus this fraction of |level| (resampler ripple ~0.1 %)
    plateau_band: float = 0.01     # clipped runs lie this fraction of the range from an extreme
    quiet_mv: float = 0.3          # band-passed peak-to-peak below this cannot mask a QRS
    max_physio_mv: float = 8.0     # band-passed peak-to-peak beyond any QRS
    # Membership ramps (bad end, good end); the midpoint is the "unqualified" cut.
    kurtosis_ramp: tuple[float, float] = (3.0, 5.0)
    bas_ramp: tuple[float, float] = (0.7, 0.9)
    psqi_ramp: tuple[float, float] = (0.15, 0.35)
    rms_ratio_ramp: tuple[float, float] = (5.0, 1.0)
    reference_windows: int = 15    # GOOD windows in the running rms reference (30 s)
    reference_min: int = 3         # before this many, relative amplitude is not judged

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple):
                if len(v) != 2 or v[0] == v[1]:
                    raise ConfigError(f"Quality ramp {f.name}={v!r} needs two different ends.")
            elif not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"Quality limit {f.name}={v!r} must be a positive number.")
        if self.min_window_s > self.window_s:
            raise ConfigError(f"min_window_s={self.min_window_s} exceeds window_s={self.window_s}.")
        if self.reference_min > self.reference_windows:
            raise ConfigError(f"reference_min={self.reference_min} exceeds "
                              f"reference_windows={self.reference_windows}.")


# One instance for every judge built without limits, so that the batched pass
# (detect/batch.py) can tell by identity which windows share their limits.
DEFAULT_LIMITS = QualityLimits()


@quick_init
@dataclass(frozen=True, slots=True)
class Assessment:
    """The verdict on one window and the numbers it was drawn from."""

    quality: Quality
    score: float
    reason: str                       # short code: flat, rail, plateau, quiet, amplitude, sqi
    kurtosis: float | None = None
    bas_sqi: float | None = None
    p_sqi: float | None = None
    rms_ratio: float | None = None
    clean_ptp: float | None = None
    clean_rms: float | None = None


def small_median(values: Iterable[float]) -> float:
    """np.median of a few floats (same value: the mean of the two middle ones); the
    streaming stage's amplitude reference is the median of recent GOOD rms values."""
    s = sorted(values)
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


def _clipped(raw: FloatArray, runs: Iterable[tuple[int, int]], min_len: int, band: float,
             lo: float | None = None, hi: float | None = None) -> bool:
    """True if a steady run of ``min_len`` samples sits at the window's max or min."""
    if lo is None or hi is None:
        lo, hi = float(raw.min()), float(raw.max())
    edge = band * (hi - lo)
    for start, stop in runs:
        if stop - start >= min_len:
            level = _median(raw[start:stop])
            if level >= hi - edge or level <= lo + edge:
                return True
    return False


def assess_window(raw: FloatArray, clean: FloatArray, fs: float,
                  limits: QualityLimits = DEFAULT_LIMITS,
                  reference_rms: float | None = None,
                  previous_clean: FloatArray | None = None) -> Assessment:
    """Judge one window (see the module docstring for the rules and their sources).

    ``previous_clean``, the band-passed window before this one, widens the
    span the spectral indices are computed over.
    """
    raw = np.asarray(raw, dtype=np.float64)
    clean = np.asarray(clean, dtype=np.float64)
    if raw.size < 2 or raw.size != clean.size:
        raise ValueError(f"A quality window needs two or more aligned samples, got "
                         f"{raw.size} raw and {clean.size} clean.")
    prev = None if previous_clean is None else np.asarray(previous_clean, dtype=np.float64)
    stats, = assess_many([(raw, clean, prev)], float(fs), limits)
    return verdict(stats, float(fs), limits, reference_rms)


Job = tuple[FloatArray, FloatArray, "FloatArray | None"]


def assess_many(jobs: Sequence[Job], fs: float, limits: QualityLimits,
                scratch: Scratch | None = None) -> list[WindowStats]:
    """The statistics of many windows, each ``(raw, clean, previous clean or None)``
    (aligned float64 windows, two or more samples), computed together: one numpy
    call per quantity for all windows of one length and span
    (:func:`detect.quality_stats.window_stats_many`, in ``scratch``'s working arrays
    when given); judge each with :func:`verdict`."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (raw, _, prev) in enumerate(jobs):
        groups.setdefault((raw.size, 0 if prev is None else prev.size), []).append(i)
    out: list[WindowStats | None] = [None] * len(jobs)
    take = fresh if scratch is None else scratch.take
    for (n, m), rows in groups.items():
        raws, spans = take("q.raws", (len(rows), n)), take("q.spans", (len(rows), m + n))
        # Row after row, laid in by one concatenate each (not a copy call per piece):
        # a span row is the previous window's clean samples, then the window's.
        np.concatenate([jobs[i][0] for i in rows], out=raws.reshape(-1))
        pieces: list[FloatArray] = []
        for i in rows:
            _, clean, prev = jobs[i]
            if m:
                pieces.append(prev)          # type: ignore[arg-type]
            pieces.append(clean)
        np.concatenate(pieces, out=spans.reshape(-1))
        stats = window_stats_many(raws, spans[:, m:], spans, fs, limits.plateau_tol_mv,
                                  limits.plateau_tol_rel, limits.flat_mv, _min_run(limits, fs),
                                  scratch)
        for i, st in zip(rows, stats):
            out[i] = st
    return out  # type: ignore[return-value]


def _min_run(limits: QualityLimits, fs: float) -> int:
    """Samples in the shortest clipped plateau."""
    return max(2, int(round(limits.plateau_s * fs)))


def verdict(s: WindowStats, fs: float, limits: QualityLimits,
            reference_rms: float | None) -> Assessment:
    """Judge one window from its statistics (see the module docstring).

    Every value is computed as numpy's wrappers (percentile, median, mean,
    ptp) compute it, on the same elements in the same order, so the verdicts
    and scores are the same to the last bit; only the per-call overhead is gone.
    """
    return Assessment(*judge(s, fs, limits, reference_rms))


# Looked up once: an enum member costs a class attribute lookup each time.
_GOOD, _NOISY, _UNUSABLE = Quality.GOOD, Quality.NOISY, Quality.UNUSABLE
_SATURATED, _LEADS_OFF = Quality.SATURATED, Quality.LEADS_OFF
Judgement = tuple[Quality, float, str, "float | None", "float | None", "float | None",
                  "float | None", "float | None", "float | None"]


def _ramp(x: float, bad: float, good: float) -> float:
    """Membership from 0 at ``bad`` to 1 at ``good``, clipped (plain floats: np.clip on
    a scalar costs more than the whole comparison)."""
    v = (x - bad) / (good - bad)
    return 0.0 if v < 0.0 else 1.0 if v > 1.0 else v


def judge(s: WindowStats, fs: float, limits: QualityLimits,
          reference_rms: float | None) -> Judgement:
    """:func:`verdict`'s fields, in order, as a plain tuple: the streaming stage
    (:class:`detect.quality.SignalQuality`) reads four of them per window, and
    building the frozen record took a third of the time."""
    raw, n = s.raw, s.n
    if s.p_hi - s.p_lo < limits.flat_mv or s.longest * 2 >= n:
        assert raw is not None                 # kept by window_stats_many for this
        if abs(_median(raw)) >= limits.rail_mv:
            return _SATURATED, 0.0, "rail", None, None, None, None, None, None
        return _LEADS_OFF, 0.0, "flat", None, None, None, None, None, None
    lo, hi = s.lo, s.hi
    if max(hi, -lo) >= limits.rail_mv:
        return _SATURATED, 0.0, "rail", None, None, None, None, None, None
    # window_stats_many keeps the raw samples of every window with a run this long
    # (and drops the others'), so most windows skip the plateau check here.
    if raw is not None and s.longest >= (min_len := _min_run(limits, fs)):
        starts, stops = steady_run_bounds(raw, limits.plateau_tol_mv, limits.plateau_tol_rel)
        long_runs = np.flatnonzero(stops - starts >= min_len)
        if _clipped(raw, ((int(starts[i]), int(stops[i])) for i in long_runs),
                    min_len, limits.plateau_band, lo, hi):
            return _SATURATED, 0.0, "plateau", None, None, None, None, None, None

    ptp, rms = s.ptp, s.rms
    if ptp < limits.quiet_mv:
        return _GOOD, 1.0, "quiet", None, None, None, None, ptp, rms
    if ptp > limits.max_physio_mv:
        return _UNUSABLE, 0.0, "amplitude", None, None, None, None, ptp, rms

    kurt = s.m4 / n / rms ** 4                                 # Pearson kurtosis (kSQI)
    power = s.power
    total = max(power[0], 1e-300)
    bas = 1.0 - power[1] / total                               # basSQI
    psqi = power[2] / max(power[3], 1e-300)                    # pSQI
    m1 = _ramp(kurt, *limits.kurtosis_ramp)
    m2 = _ramp(bas, *limits.bas_ramp)
    m3 = _ramp(psqi, *limits.psqi_ramp)
    # np.mean of fewer than eight numbers adds them in order.
    unqualified = (m1 < 0.5) + (m2 < 0.5) + (m3 < 0.5)
    total_m = 0.0 + m1 + m2 + m3
    count = 3
    ratio = None
    if reference_rms is not None and reference_rms > 0:
        ratio = rms / reference_rms
        m4 = _ramp(ratio, *limits.rms_ratio_ramp)
        unqualified += m4 < 0.5
        total_m += m4
        count = 4
    quality = _UNUSABLE if unqualified >= 2 else _NOISY if unqualified == 1 else _GOOD
    return quality, total_m / count, "sqi", kurt, bas, psqi, ratio, ptp, rms
