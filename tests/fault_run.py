"""Run the fault scenarios of tests/faults.py and print the table docs/reliability.md quotes.

    python tests/fault_run.py [--only broker_restart,service_sigkill,stall,flood]
                              [--devices 3] [--seconds 40] [--pause 3]

Each scenario starts and stops its own mosquitto; ``ecgwatch serve`` runs as a
subprocess in the SIGKILL scenario. Needs /usr/sbin/mosquitto.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))        # tests/ helpers
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))    # the repository

import faults  # noqa: E402
from ecgwatch.broker import find_mosquitto  # noqa: E402

HEADER = ("| scenario | chunks sent | processed | duplicates dropped | lost | alerts expected "
          "| alerts delivered | notes |\n|---|---:|---:|---:|---:|---:|---:|---|")
ALL = ("broker_restart", "service_sigkill", "stall", "flood")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(ALL))
    ap.add_argument("--devices", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=40, help="ECG seconds per device")
    ap.add_argument("--pause", type=float, default=3.0, help="broker SIGSTOP length, s")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if find_mosquitto() is None:
        print("fault_run: mosquitto is not installed; nothing to run", file=sys.stderr)
        return 1
    rows = []
    for name in args.only.split(","):
        if name not in ALL:
            ap.error(f"unknown scenario {name!r}; choose from {', '.join(ALL)}")
        with tempfile.TemporaryDirectory(prefix=f"ecgwatch-fault-{name}-") as tmp:
            t = time.monotonic()
            work = Path(tmp)
            if name == "broker_restart":
                got = [faults.broker_restart(work, args.devices, args.seconds)]
            elif name == "service_sigkill":
                got = [faults.service_sigkill(work, args.devices, args.seconds)]
            elif name == "stall":
                got = [faults.stall(work, args.devices, args.seconds, args.pause)]
            else:
                got = faults.flood(work, args.devices, args.seconds, wait_recovery=True)
            print(f"{name}: done in {time.monotonic() - t:.1f} s", file=sys.stderr)
            rows += [f.row() for f in got]
    print(HEADER)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
