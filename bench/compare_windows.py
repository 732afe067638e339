"""Windowed features of this checkout against those of another commit, bit for bit.

    python bench/compare_windows.py --base d3415fc [--records 100 207 ...] [--minutes 30]

Extracts the base commit's ``detect/`` package with ``git archive`` into a
temporary folder (as ``detect_base``), cleans each MIT-BIH and Noise Stress
Test record as the pipeline does (resampled to 250 Hz, cleaning filter), and
computes every VF window's features (4 s, hop 1 s) and every quality
window's assessment (2 s, with its predecessor for the spectrum) with both
packages: one window at a time at the base, and in this checkout both one at
a time and batched (``vf_features_many``, ``assess_many``) over windows of
many records mixed together, as the batched service step computes them (also
in passes of ``detect.batch.ROWS`` windows with reused working arrays).
Prints how many differ: 0 for a change meant to leave them alone. VF features
must agree in every bit; quality assessments too, except the kurtosis and the
unrounded score, which may differ in their last bits from commits before the
fourth powers became squares of squares (detect/quality_stats.py, instead of
pow()): the quality, the reason and the published score (4 decimals) must
still be the same. This checkout's batched and one-at-a-time results must
agree in every bit.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from detect import quality, vf  # noqa: E402
from detect.batch import ROWS  # noqa: E402
from detect.buffers import Scratch  # noqa: E402
from detect.filters import CleaningFilter  # noqa: E402
from detect.resample import Resampler  # noqa: E402
from ecgwatch.evaluation.records import data_dir, list_records, read_signal  # noqa: E402

from base_detect import base_package  # noqa: E402

FS = 250.0
NSTDB = ["118e24", "118e12", "118e06", "118e00", "118e_6", "119e24", "119e12", "119e06",
         "119e00", "119e_6"]


def signals(records: list[tuple[str, str]], minutes: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(resampled raw, cleaned) at 250 Hz per record, as the pipeline computes them."""
    out = []
    for folder, rec in records:
        x, fs = read_signal(data_dir() / folder / rec)
        x = x[:int(minutes * 60 * fs)]
        y = Resampler(fs, FS).push(x)
        out.append((y, CleaningFilter(FS, (0.5, 40.0), (50.0, 60.0), 30.0).push(y)))
    return out


def synthetic(seconds: int = 120) -> list[tuple[np.ndarray, np.ndarray]]:
    """Signals that reach the judges' rarer branches: flat lines, a line at the rail,
    clipped and plateaued sines, noise, a quiet wave, a wave too large to be an ECG,
    a VF-like sine."""
    rng = np.random.default_rng(1)
    n = int(seconds * FS)
    t = np.arange(n) / FS
    sine = np.sin(2 * np.pi * 1.2 * t)
    raws = [np.zeros(n), np.full(n, 0.7), np.full(n, 31.0), np.clip(2 * sine, -1.5, 1.5),
            np.clip(40 * sine, -35.0, 35.0), rng.standard_normal(n),
            1e-3 * rng.standard_normal(n), 0.1 * sine + 0.005 * rng.standard_normal(n),
            12 * np.sin(2 * np.pi * 5 * t), np.sin(2 * np.pi * 5 * t),
            np.where(t % 7 < 3, sine, 0.0)]
    return [(y, CleaningFilter(FS, (0.5, 40.0), (50.0, 60.0), 30.0).push(y)) for y in raws]


def same(a: object, b: object) -> bool:
    """Equal in every bit (repr of a float round-trips and tells -0.0 from 0.0)."""
    return repr(a) == repr(b)


def compare_vf(base, sigs, rng) -> tuple[int, int]:
    window, hop = int(4 * FS), int(FS)
    wins = [clean[e - window:e] for _, clean in sigs
            for e in range(window, clean.size + 1, hop)]
    old = [base.vf_features(w, FS) for w in wins]
    alone = [vf.vf_features(w, FS) for w in wins]
    order = rng.permutation(len(wins))              # batches mix records and times
    batched: list[object] = [None] * len(wins)
    for part in np.array_split(order, max(1, len(wins) // 700)):
        for i, f in zip(part, vf.vf_features_many(np.stack([wins[i] for i in part]), FS)):
            batched[i] = f
    # As the service's batched pass: passes of detect.batch.ROWS windows, working
    # arrays reused from pass to pass.
    scratch, reused = Scratch(), [None] * len(wins)
    for lo in range(0, len(wins), ROWS):
        part = order[lo:lo + ROWS]
        windows = scratch.take("vf.windows", (len(part), window))
        for r, i in enumerate(part):
            windows[r] = wins[i]
        for i, f in zip(part, vf.vf_features_many(windows, FS, scratch, overwrite=True)):
            reused[i] = f
    differ = sum(not (same(o, a) and same(o, b) and same(o, c))
                 for o, a, b, c in zip(old, alone, batched, reused))
    return len(wins), differ


def compare_quality(base, sigs, rng) -> tuple[int, int]:
    window = int(2 * FS)
    limits = quality.QualityLimits()
    base_limits = base.QualityLimits()
    jobs = []       # (raw, clean, previous clean or None, reference rms or None)
    for raw, clean in sigs:
        for k, e in enumerate(range(window, clean.size + 1, window)):
            prev = clean[e - 2 * window:e - window] if k % 5 and e >= 2 * window else None
            ref = None if k % 3 == 0 else 0.05 + 0.01 * (k % 40)
            jobs.append((raw[e - window:e], clean[e - window:e], prev, ref))
    old = [base.assess_window(r, c, FS, base_limits, ref, p) for r, c, p, ref in jobs]
    alone = [quality.assess_window(r, c, FS, limits, ref, p) for r, c, p, ref in jobs]
    order = rng.permutation(len(jobs))
    batched: list[object] = [None] * len(jobs)
    for part in np.array_split(order, max(1, len(jobs) // 700)):
        stats = quality.assess_many([(jobs[i][0], jobs[i][1], jobs[i][2]) for i in part],
                                    FS, limits)
        for i, s in zip(part, stats):
            batched[i] = quality.verdict(s, FS, limits, jobs[i][3])
    scratch, reused = Scratch(), [None] * len(jobs)      # as the service's passes
    for lo in range(0, len(jobs), ROWS):
        part = order[lo:lo + ROWS]
        stats = quality.assess_many([(jobs[i][0], jobs[i][1], jobs[i][2]) for i in part],
                                    FS, limits, scratch)
        for i, s in zip(part, stats):
            reused[i] = quality.verdict(s, FS, limits, jobs[i][3])
    differ = sum(not (same_verdict(o, a) and same_verdict(o, b) and same(a, c))
                 for o, a, b, c in zip(old, alone, batched, reused))
    reasons: dict[str, int] = {}
    for o in old:
        reasons[o.reason] = reasons.get(o.reason, 0) + 1
    print("quality verdicts by reason:", dict(sorted(reasons.items())))
    ulps = [ulp_distance(o, a) for o, a in zip(old, alone)]
    if not all(same(a, b) for a, b in zip(alone, batched)):
        differ += 1_000_000_000                     # batched must equal alone, bit for bit
    print(f"quality kurtosis and score: {sum(u > 0 for u in ulps)} windows differ from the "
          f"base in their last bits, by at most {max(ulps, default=0)} ulp")
    return len(jobs), differ


def same_verdict(a, b) -> bool:
    """The same verdict: quality, reason and score as published (4 decimals), every
    other figure in every bit, and the kurtosis and the unrounded score within a few
    ulp (the fourth powers are squares of squares since batching, not pow())."""
    return (a.quality == b.quality and a.reason == b.reason
            and round(a.score, 4) == round(b.score, 4)
            and all(same(getattr(a, f), getattr(b, f)) for f in EXACT)
            and ulp_distance(a, b) <= 16)


EXACT = ("bas_sqi", "p_sqi", "rms_ratio", "clean_ptp", "clean_rms")


def ulp_distance(a, b) -> int:
    """Largest distance in ulp between the two assessments' kurtosis and score."""
    worst = 0
    for f in ("kurtosis", "score"):
        x, y = getattr(a, f), getattr(b, f)
        if x is None or y is None or x == y:
            if (x is None) != (y is None):
                return 1 << 60
            continue
        worst = max(worst, int(round(abs(x - y) / math.ulp(max(abs(x), abs(y))))))
    return worst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="commit to compare with")
    ap.add_argument("--records", nargs="+", help="MIT-BIH records (default: all 48, and "
                    "the Noise Stress Test's 118e* and 119e*)")
    ap.add_argument("--minutes", type=float, default=30.0, help="per record (default 30)")
    a = ap.parse_args(argv)
    records = ([("mitdb", r) for r in a.records] if a.records else
               [("mitdb", r) for r in list_records(data_dir() / "mitdb")]
               + [("nstdb", r) for r in NSTDB])
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        name = base_package(a.base, Path(tmp))
        base_vf = importlib.import_module(f"{name}.vf")
        base_quality = importlib.import_module(f"{name}.quality")
        sigs = signals(records, a.minutes) + synthetic()
        n, d = compare_vf(base_vf, sigs, rng)
        print(f"VF windows: {n} from {len(records)} records and 11 synthetic signals, "
              f"{d} differ")
        n, d = compare_quality(base_quality, sigs, rng)
        print(f"quality windows: {n}, {d} differ")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
