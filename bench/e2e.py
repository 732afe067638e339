"""End to end through mosquitto, and ``serve --workers`` scaling: the script form of
``ecgwatch bench --e2e`` (issue 5, parts 2 and 4).

    python bench/e2e.py                                   # 250, 1000, 2000 devices x workers 1, 2
    python bench/e2e.py --devices 1500 --workers 1 2 --seconds 60
    python bench/e2e.py --quick --out out/bench-e2e-quick # 20 devices x 7 s: the smoke test

Starts its own mosquitto (needs the binary), runs ``ecgwatch serve`` as a
subprocess, publishes the fleet from another process in real time and times
the alerts. Everything lives in :mod:`ecgwatch.bench_e2e`; this script only
makes it runnable from a checkout without the console script. Figures and
method: docs/performance.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ecgwatch.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["--e2e", *sys.argv[1:]]))
