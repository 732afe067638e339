"""R-peaks of this checkout against those of another commit, on MIT-BIH records.

    python bench/compare_rpeaks.py --base d3415fc [--records 100 105 108 ...]

Extracts the base commit's ``detect/`` package with ``git archive`` into a
temporary folder, streams each record (resampled to 250 Hz, 1 s chunks)
through both ``RPeakDetector``s and prints how many beat indices differ: 0
for a change meant to leave the detector's output alone.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from detect.resample import Resampler  # noqa: E402
from detect.rpeaks import RPeakDetector  # noqa: E402
from ecgwatch.evaluation.records import data_dir, read_signal  # noqa: E402

from base_detect import base_package  # noqa: E402

HARD = ["100", "105", "108", "119", "201", "203", "207", "208", "222", "232"]


def base_detector(rev: str, into: Path) -> type:
    """``RPeakDetector`` as it was at ``rev``."""
    return importlib.import_module(base_package(rev, into) + ".rpeaks").RPeakDetector


def beats(detector: type, y) -> list[int]:
    d, out = detector(250.0), []
    for k in range(0, y.size, 250):
        out += d.push(y[k:k + 250])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="commit to compare with")
    ap.add_argument("--records", nargs="+", default=HARD)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        old = base_detector(a.base, Path(tmp))
        total = differ = 0
        for rec in a.records:
            x, fs = read_signal(data_dir() / "mitdb" / rec)
            y = Resampler(fs, 250.0).push(x)
            b_old, b_new = beats(old, y), beats(RPeakDetector, y)
            n = len(set(b_old) ^ set(b_new))
            total, differ = total + len(b_old), differ + n
            print(f"{rec}: {len(b_old)} beats at {a.base}, {len(b_new)} now, {n} differ")
    print(f"total: {total} beats, {differ} differ")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
