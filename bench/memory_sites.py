"""Where the per-device memory lives: tracemalloc over a streamed fleet, by file and by line.

    python bench/memory_sites.py [--devices 1000] [--seconds 30] [--top 40]

Streams ``make_fleet(devices, seconds)`` through ``FleetRunner`` (the
service's per-tick path, shipped beat model) with tracemalloc on from the
creation of the monitors (the fleet's payloads are not counted), then prints
the live bytes per device in total, per source file and per allocation line.
"""

from __future__ import annotations

import argparse
import collections
import gc
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecgwatch.bench_fleet import FleetRunner, load_classifier, make_fleet  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--top", type=int, default=40)
    a = ap.parse_args(argv)
    n = a.devices
    fleet = make_fleet(n, a.seconds, 0)
    classifier = load_classifier()
    gc.collect()
    tracemalloc.start(1)
    runner = FleetRunner(fleet.ids, classifier)
    runner.run(fleet)
    gc.collect()
    stats = tracemalloc.take_snapshot().statistics("lineno")
    tracemalloc.stop()
    total = sum(s.size for s in stats)
    print(f"live {total / 1e6:.1f} MB traced = {total / n / 1024:.1f} KB per device")
    by_file: collections.Counter[str] = collections.Counter()
    for s in stats:
        by_file["/".join(s.traceback[0].filename.split("/")[-2:])] += s.size
    for name, size in by_file.most_common(20):
        print(f"  {size / n / 1024:7.2f} KB per device  {name}")
    print("allocation lines:")
    for s in stats[:a.top]:
        fr = s.traceback[0]
        print(f"  {s.size / n / 1024:7.2f} KB per device  {s.count / n:6.1f} blocks  "
              f"{'/'.join(fr.filename.split('/')[-2:])}:{fr.lineno}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
