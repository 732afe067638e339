"""Instructions per device-second of the in-process pipeline, counted by callgrind.

    python bench/instructions.py [--devices 500] [--seconds 10] [--warm 2] [--out FILE]
                                 [--neurokit N] [--neurokit-seconds 30]

Wall-clock and CPU-time A/B runs on this shared 2-core machine differ by
20-40 % between identical runs, more than most single optimisations gain.
Instruction counts do not: ``valgrind --tool=callgrind`` gives the same total
for the same code and inputs whatever else the machine is doing. This script
renders the bench fleet once (``ecgwatch.bench_fleet.make_fleet``, outside
valgrind), then replays it through ``FleetRunner`` (decode, the batched
filters, every device's chain, one beat-model call per tick, labels) under
callgrind twice: ``--seconds`` ticks and ``--warm`` ticks. The difference,
over ``devices * (seconds - warm)``, is the steady-state cost of one device-second
without start-up (imports, model load, the first second's learning).
Compare two commits by running it in a checkout of each; about 4 minutes at
the defaults. The replays run with a fixed hash seed and one BLAS thread:
without them, two runs of the same code on a 100-device, 5 s replay differed
by 3 %. Needs valgrind (Debian's package).

``--neurokit N`` also counts neurokit2's ``ecg_process`` on the first ``N``
signals of the fleet as ``ecgwatch bench`` renders them for neurokit2
(``--neurokit-seconds`` long, whole signals at once, one uncounted warm-up
call), the same way: a replay with ``N`` calls minus one with none. The
ratio of the two counts is issue 5's "x ecg_process" in instructions, which
this machine's clock speed does not move (instructions are not seconds:
numpy's compiled loops retire more instructions per cycle than the
interpreter, so it is a companion to the timed ratio, not a substitute).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Without these the same code's count moved by 3 % between runs: BLAS
# thread pools spin a varying number of instructions, and the string hash seed
# changes set and dict orders (and so when the collector runs).
_REPEATABLE = {**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _replay(fleet_file: Path, ticks: int) -> None:
    """The measured process: load the fleet and the model, run ``ticks`` ticks."""
    from ecgwatch.bench_fleet import FleetRunner, load_classifier

    fleet = pickle.loads(fleet_file.read_bytes())
    runner = FleetRunner(fleet.ids, load_classifier())
    runner.run(fleet, range(ticks))


def _replay_neurokit(fleet_file: Path, calls: int) -> None:
    """The measured process for neurokit2: a warm-up call, then ``calls`` signals."""
    import warnings

    import neurokit2 as nk

    from ecgwatch.bench_fleet import FS, decoded_signal

    fleet = pickle.loads(fleet_file.read_bytes())
    signals = [decoded_signal(fleet, i) for i in range(len(fleet.ids))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # as the bench: flat signals make it warn
        for x in [signals[0]] + signals[:calls]:
            try:
                nk.ecg_process(x, sampling_rate=int(FS))
            except Exception:                 # noqa: BLE001 - the bench counts these
                pass


def _count(fleet_file: Path, ticks: int, work: Path, mode: str = "--replay") -> int:
    """Instructions callgrind counts for one replay of ``ticks`` ticks (or calls)."""
    out = work / f"callgrind{mode}.{ticks}"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
           sys.executable, "-B", __file__, mode, str(fleet_file), "--ticks", str(ticks)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_REPEATABLE)
    if done.returncode != 0:
        raise SystemExit(f"valgrind failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    m = re.search(r"^totals:\s*(\d+)", out.read_text(), re.MULTILINE)
    if m is None:
        raise SystemExit(f"No totals line in {out}.")
    return int(m.group(1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=500)
    p.add_argument("--seconds", type=int, default=10, help="ticks of the long replay")
    p.add_argument("--warm", type=int, default=2, help="ticks of the short replay")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="also write the result as JSON")
    p.add_argument("--neurokit", type=int, default=0, metavar="N",
                   help="also count ecg_process on N signals (0: skip; the bench uses 20)")
    p.add_argument("--neurokit-seconds", type=int, default=30, metavar="S",
                   help="length of those signals (default 30, as the bench)")
    p.add_argument("--replay", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--replay-neurokit", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--ticks", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.replay is not None:
        _replay(args.replay, args.ticks)
        return 0
    if args.replay_neurokit is not None:
        _replay_neurokit(args.replay_neurokit, args.ticks)
        return 0
    if not 0 < args.warm < args.seconds:
        p.error(f"--warm must lie between 0 and --seconds ({args.seconds}), not {args.warm}.")
    if shutil.which("valgrind") is None:
        p.error("valgrind is not installed (Debian: apt install valgrind).")
    from ecgwatch.bench_fleet import make_fleet

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip() or "unknown"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fleet_file = work / "fleet.pickle"
        fleet_file.write_bytes(pickle.dumps(make_fleet(args.devices, args.seconds, args.seed)))
        long, short = (_count(fleet_file, t, work) for t in (args.seconds, args.warm))
        nk_counts = None
        if args.neurokit:
            nk_file = work / "neurokit.pickle"
            nk_file.write_bytes(pickle.dumps(
                make_fleet(args.neurokit, args.neurokit_seconds, args.seed)))
            nk_counts = [_count(nk_file, n, work, "--replay-neurokit")
                         for n in (args.neurokit, 0)]
    per = (long - short) / (args.devices * (args.seconds - args.warm))
    result = {"commit": commit, "devices": args.devices, "seconds": args.seconds,
              "warm": args.warm, "seed": args.seed, "instructions_long": long,
              "instructions_short": short, "instructions_per_device_second": per}
    print(f"{commit}: {long - short:,} instructions over {args.devices} devices x "
          f"{args.seconds - args.warm} s: {per / 1e6:.4f} M per device-second")
    if nk_counts is not None:
        nk_per = (nk_counts[0] - nk_counts[1]) / (args.neurokit * args.neurokit_seconds)
        result.update(neurokit_devices=args.neurokit, neurokit_seconds=args.neurokit_seconds,
                      ecg_process_instructions_per_device_second=nk_per,
                      ratio_vs_ecg_process=nk_per / per)
        print(f"ecg_process: {nk_per / 1e6:.2f} M per device-second over {args.neurokit} "
              f"signals x {args.neurokit_seconds} s: ecgwatch needs {nk_per / per:.1f}x "
              "fewer instructions")
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
