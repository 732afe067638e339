"""``ecgwatch bench``: how many wearables one core keeps up with, and how much memory each takes.

Part 1 (throughput): a synthetic fleet mix (normal, AF, ectopy, noise,
pauses, ...) at 250 Hz in 1 s binary payloads, fed tick by tick through the
service's own per-tick path (``ecgwatch.bench_fleet``) with the shipped beat
model, for each ``--devices`` size; device-seconds of ECG per CPU-second.
Beside it, neurokit2's ``ecg_process`` and ``ecg_clean`` + ``ecg_peaks``
on the same signals, and the ratios. Part 3 (memory): resident memory per
device for each size, and RSS sampled every simulated minute over a long run
to show whether it stays flat. A cProfile run says where the time goes.
Writes ``report.json``, ``report.md`` and ``profile.txt`` to ``--out``.

Each fleet size and the long run execute in a fresh process, one after the
other (never two at once), so memory starts from the same baseline and CPU
time is that process's alone. Parts 2 and 4 (end to end through
mosquitto, ``serve --workers`` scaling) are ``--e2e``: ``ecgwatch.bench_e2e``.

    ecgwatch bench                                # 100, 1000, 5000 devices x 30 s + long run
    ecgwatch bench --devices 200 --seconds 20 --long-seconds 0
    ecgwatch bench --quick --out out/bench-quick  # a few seconds, for the smoke test
    ecgwatch bench --e2e                          # 250, 1000, 2000 devices x workers 1, 2
    ecgwatch bench --e2e --devices 1500 --workers 1 2 --seconds 60
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from . import bench_e2e
from .bench_parts import run_long, run_neurokit, run_paired, run_throughput
from .bench_profile import run_profile
from .bench_report import BenchResults, write_reports

T = TypeVar("T")

# Full run and --quick; a flag given explicitly wins over either.
DEFAULTS: dict[str, Any] = {"devices": [100, 1000, 5000], "seconds": 30, "neurokit_devices": 20,
                            "paired_devices": [1000, 5000], "long_devices": 1000,
                            "long_seconds": 600, "sample_every": 60, "profile_devices": 100}
QUICK: dict[str, Any] = {"devices": [3], "seconds": 4, "neurokit_devices": 2,
                         "paired_devices": [3], "long_devices": 2, "long_seconds": 6,
                         "sample_every": 2, "profile_devices": 2}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ecgwatch bench", description=__doc__.split("\n")[0],
                                allow_abbrev=False)
    p.add_argument("--devices", type=int, nargs="+", metavar="N",
                   help="fleet sizes, one run each (default 100 1000 5000; --e2e: 250 1000 2000)")
    p.add_argument("--seconds", type=int, metavar="S",
                   help="simulated seconds per device in each throughput run (default 30); "
                        "--e2e: measured real-time seconds per run (default 60)")
    p.add_argument("--neurokit-devices", type=int, metavar="N",
                   help="devices of the fleet neurokit2 processes (default 20; 0: skip)")
    p.add_argument("--paired-devices", type=int, nargs="+", metavar="N",
                   help="fleet sizes ecgwatch runs while ecg_process runs in turns on the "
                        "neurokit signals, for a ratio the machine's drift does not move "
                        "(default 1000 5000; 0: skip)")
    p.add_argument("--long-devices", type=int, metavar="N",
                   help="devices in the memory-flatness run (default 1000)")
    p.add_argument("--long-seconds", type=int, metavar="S",
                   help="simulated seconds of the memory-flatness run (default 600; 0: skip)")
    p.add_argument("--sample-every", type=int, metavar="S",
                   help="simulated seconds between RSS samples in that run (default 60)")
    p.add_argument("--profile-devices", type=int, metavar="N",
                   help="devices in the cProfile run, --seconds long (default 100; 0: skip)")
    p.add_argument("--seed", type=int, default=0, help="fleet seed (default 0)")
    p.add_argument("--quick", action="store_true",
                   help="a few seconds in all (3 devices x 4 s, tiny long and profile runs)")
    p.add_argument("--out", help="report folder (default out/bench, with --e2e out/bench-e2e)")
    bench_e2e.add_arguments(p)
    return p


def resolve(args: argparse.Namespace) -> dict[str, Any]:
    """Options after --quick and the defaults; raises SystemExit on impossible values."""
    base = QUICK if args.quick else DEFAULTS
    opts = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in base.items()}
    opts["seed"] = args.seed
    problems = []
    if any(n < 1 for n in opts["devices"]):
        problems.append("--devices must all be at least 1")
    for name in ("seconds", "sample_every", "long_devices"):
        if opts[name] < 1:
            problems.append(f"--{name.replace('_', '-')} must be at least 1")
    if any(n < 0 for n in opts["paired_devices"]):
        problems.append("--paired-devices must not be negative")
    for name in ("neurokit_devices", "long_seconds", "profile_devices"):
        if opts[name] < 0:
            problems.append(f"--{name.replace('_', '-')} must not be negative")
    if 0 < opts["long_seconds"] < opts["sample_every"]:
        problems.append("--long-seconds must be at least --sample-every")
    if problems:
        build_parser().error("; ".join(problems))
    opts["devices"] = sorted(set(opts["devices"]))
    return opts


def in_fresh_process(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` in a new spawned process and return its result."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(fn, *args).result()


def say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def run(opts: dict[str, Any], out: Path) -> BenchResults:
    """Every part, one after the other, in the order the report lists them."""
    started = time.perf_counter()
    seconds, seed = opts["seconds"], opts["seed"]
    results = []
    for n in opts["devices"]:
        say(f"throughput: {n} devices x {seconds} s ...")
        t = in_fresh_process(run_throughput, n, seconds, seed)
        say(f"  {t.rate:.0f} device-s per CPU-s ({t.cpu_s:.1f} CPU s), "
            f"{t.kb_per_device:.1f} KB per device")
        results.append(t)
    nk = None
    if opts["neurokit_devices"]:
        say(f"neurokit2 on {opts['neurokit_devices']} devices x {seconds} s ...")
        nk = run_neurokit(opts["neurokit_devices"], seconds, seed)
        say("  " + ", ".join(f"{m.name} {m.rate:.0f} device-s per CPU-s" for m in nk.methods))
    paired = []
    for n in opts["paired_devices"] if opts["neurokit_devices"] else []:
        if not n:
            continue
        say(f"in turns: {n} devices and ecg_process on {opts['neurokit_devices']} signals, "
            f"{seconds} s ...")
        p = in_fresh_process(run_paired, n, seconds, opts["neurokit_devices"], seed)
        say(f"  ecgwatch {p.ecgwatch_rate:.0f}, ecg_process {p.nk_rate:.1f} device-s per "
            f"CPU-s: {p.ratio:.1f}x")
        paired.append(p)
    long_run = None
    if opts["long_seconds"]:
        say(f"long run: {opts['long_devices']} devices x {opts['long_seconds']} s ...")
        long_run = in_fresh_process(run_long, opts["long_devices"], opts["long_seconds"],
                                    opts["sample_every"], seed)
        say(f"  RSS growth {long_run.growth_mb:.2f} MB after the first sample")
    profile = None
    if opts["profile_devices"]:
        say(f"profile: {opts['profile_devices']} devices x {seconds} s ...")
        profile = in_fresh_process(run_profile, opts["profile_devices"], seconds, str(out), seed)
    return BenchResults(opts, tuple(results), nk, long_run, profile,
                        time.perf_counter() - started, tuple(paired))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.e2e:
        return bench_e2e.main(args, parser.error)
    opts = resolve(args)
    out = Path(args.out or "out/bench")
    out.mkdir(parents=True, exist_ok=True)
    doc = write_reports(run(opts, out), out)
    for r in doc["throughput"]:
        say(f"{r['devices']} devices: {r['device_s_per_cpu_s']:.0f} device-s per CPU-s, "
            f"{r['memory']['kb_per_device']} KB per device")
    say(f"report: {out / 'report.md'} and {out / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
