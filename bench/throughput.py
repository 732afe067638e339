"""Throughput and memory of the streaming pipeline: the script form of ``ecgwatch bench``.

    python bench/throughput.py                         # 100, 1000, 5000 devices (about 15 min)
    python bench/throughput.py --quick --out out/bench-quick

Everything (options, fleet, timing, reports) lives in :mod:`ecgwatch.bench`;
this script only makes it runnable from a checkout without the console
script. Figures and method: docs/performance.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ecgwatch.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
