"""What Python's cyclic garbage collector costs the in-process fleet, per generation.

    python bench/gc_cost.py [--devices 5000] [--seconds 12] [--thresholds default|service|N,N,N]

Runs ``ecgwatch.bench_fleet.FleetRunner`` (the service's per-tick path, the
shipped beat model) over ``make_fleet(devices, seconds)`` with the
collector's default thresholds (700, 10, 10) or the service's
(``ecgwatch.service.GC_THRESHOLDS``) or three given ones, timing every collection through
``gc.callbacks``; prints the pipeline's CPU seconds per stage and, per
generation, the collections and their CPU seconds.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecgwatch.bench_fleet import FleetRunner, load_classifier, make_fleet  # noqa: E402
from ecgwatch.service import GC_THRESHOLDS  # noqa: E402


def _thresholds(text: str) -> tuple[int, int, int]:
    if text in ("default", "service"):
        return (700, 10, 10) if text == "default" else tuple(GC_THRESHOLDS)
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(
            f"--thresholds takes default, service or three positive integers, not {text!r}.")
    return int(parts[0]), int(parts[1]), int(parts[2])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=5000)
    ap.add_argument("--seconds", type=int, default=12)
    ap.add_argument("--thresholds", type=_thresholds, default="service",
                    help="default (700,10,10), service (GC_THRESHOLDS) or three integers N,N,N")
    a = ap.parse_args(argv)
    fleet = make_fleet(a.devices, a.seconds, 0)
    runner = FleetRunner(fleet.ids, load_classifier())
    # FleetRunner sets the service's thresholds, as Service.run does.
    gc.set_threshold(*a.thresholds)
    started: dict[int, float] = {}
    spent: dict[int, list[float]] = {}

    def clock(phase: str, info: dict) -> None:
        g = info["generation"]
        if phase == "start":
            started[g] = time.process_time()
        else:
            spent.setdefault(g, []).append(time.process_time() - started[g])

    gc.callbacks.append(clock)
    runner.run(fleet)
    gc.callbacks.remove(clock)
    cpu = runner.clock.cpu
    total = sum(cpu.values())
    print(f"{a.devices} devices x {a.seconds} s, thresholds {gc.get_threshold()}: "
          f"{total:.2f} CPU s (" + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()) + ")")
    for g in sorted(spent):
        print(f"  generation {g}: {len(spent[g])} collections, {sum(spent[g]):.2f} CPU s")
    print(f"  all collections: {sum(sum(v) for v in spent.values()):.2f} CPU s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
