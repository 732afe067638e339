"""``ecgwatch analyze RECORD``: the live streaming path, offline, over a file.

The recording is cut into chunks as a device would send them and replayed
through the same per-device monitor the service runs, so what it prints is
what the service would have raised. Reads WFDB records (``path/100`` or
``path/100.hea``) and CSV files (one column of millivolts with ``--fs``, or
two columns ``time_s,mV`` from which the rate is inferred).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from detect.errors import EcgwatchError
from detect.types import Action, AlarmTransition, MAX_FS, MIN_FS

from .evaluation.replay import replay


class RecordError(EcgwatchError):
    """The file to analyse cannot be read as an ECG."""


@dataclass(frozen=True, slots=True)
class Episode:
    """One alarm episode: from its raise to its clear (or the end of the record)."""

    condition: str
    priority: str
    kind: str
    onset: float
    end: float | None
    detail: str

    def to_dict(self) -> dict:
        return {"condition": self.condition, "priority": self.priority, "kind": self.kind,
                "onset": round(self.onset, 2),
                "end": None if self.end is None else round(self.end, 2), "detail": self.detail}


def read_record(path: str, channel: int = 0, fs: float | None = None
                ) -> tuple[npt.NDArray[np.float64], float]:
    """Samples in mV and their rate, from a WFDB record or a CSV file."""
    p = Path(path)
    if p.suffix.lower() == ".csv":
        return _read_csv(p, fs)
    base = p.with_suffix("") if p.suffix in (".hea", ".dat", ".atr") else p
    if not base.with_suffix(".hea").exists():
        raise RecordError(f"No WFDB header {base.with_suffix('.hea')} and not a .csv file.")
    from .evaluation.records import read_signal
    try:
        return read_signal(base, channel)
    except Exception as e:           # wfdb raises many kinds for bad files
        raise RecordError(f"Cannot read WFDB record {base} channel {channel}: {e}") from e


def _read_csv(p: Path, fs: float | None) -> tuple[npt.NDArray[np.float64], float]:
    rows = []
    with p.open(newline="") as f:
        for k, row in enumerate(csv.reader(f)):
            if not row:
                continue
            try:
                rows.append([float(v) for v in row])
            except ValueError:
                if k == 0:
                    continue            # a header line
                raise RecordError(f"{p}: line {k + 1} is not numbers: {row!r}.") from None
    if not rows:
        raise RecordError(f"{p} holds no samples.")
    a = np.asarray(rows, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] not in (1, 2):
        raise RecordError(f"{p} must have one column (mV) or two (time_s, mV).")
    if a.shape[1] == 2:
        dt = np.diff(a[:, 0])
        if dt.size == 0 or not (dt > 0).all():
            raise RecordError(f"{p}: the time column must increase.")
        # The mean over the whole file: per-line stamps are rounded.
        fs = fs or float((a.shape[0] - 1) / (a[-1, 0] - a[0, 0]))
        x = a[:, 1]
    else:
        if fs is None:
            raise RecordError(f"{p} has one column: give its sampling rate with --fs.")
        x = a[:, 0]
    if not np.isfinite(x).all():
        raise RecordError(f"{p} contains samples that are not finite numbers.")
    return x, fs


def episodes(transitions: tuple[AlarmTransition, ...]) -> list[Episode]:
    open_: dict[str, Episode] = {}
    out: list[Episode] = []
    for t in transitions:
        if t.action is Action.RAISED:
            open_[t.episode_id] = Episode(t.condition.value, t.priority.value, t.kind.value,
                                          t.onset, None, t.evidence.detail)
        elif t.action is Action.CLEARED and t.episode_id in open_:
            e = open_.pop(t.episode_id)
            out.append(Episode(e.condition, e.priority, e.kind, e.onset, t.at, e.detail))
    out += open_.values()
    return sorted(out, key=lambda e: e.onset)


def _clock(t: float) -> str:
    m, s = divmod(max(t, 0.0), 60)
    h, m = divmod(int(m), 60)
    return f"{h:d}:{m:02d}:{s:06.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ecgwatch analyze", description=__doc__.splitlines()[0])
    ap.add_argument("record", help="WFDB record path (without extension) or a .csv file")
    ap.add_argument("--channel", type=int, default=0, help="WFDB signal channel (default 0)")
    ap.add_argument("--fs", type=float, help="sampling rate of a one-column CSV (Hz)")
    ap.add_argument("--chunk", type=float, default=1.0,
                    help="chunk length in seconds, as a device would send (0.1..10)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = ap.parse_args(argv)
    try:
        x, fs = read_record(args.record, args.channel, args.fs)
        if not MIN_FS <= fs <= MAX_FS:
            raise RecordError(f"{args.record} is sampled at {fs:g} Hz; ecgwatch accepts "
                              f"{MIN_FS:g} to {MAX_FS:g} Hz.")
        if not 0.1 <= args.chunk <= 10:
            raise RecordError(f"--chunk {args.chunk} s is outside 0.1..10 s.")
        result = replay(x, fs, chunk_s=args.chunk, device_id="analyze")
    except EcgwatchError as e:
        print(f"ecgwatch analyze: error: {e}", file=sys.stderr)
        return 1
    eps = episodes(result.transitions)
    rr = np.diff([b.time for b in result.beats])
    hr = 60.0 / float(np.median(rr)) if rr.size else None
    if args.json:
        print(json.dumps({"record": args.record, "fs": fs, "duration_s": x.size / fs,
                          "beats": len(result.beats),
                          "median_heart_rate": None if hr is None else round(hr, 1),
                          "episodes": [e.to_dict() for e in eps],
                          "alerts": [t.to_dict() for t in result.transitions]}, indent=1))
        return 0
    print(f"{args.record}: {x.size / fs:.1f} s at {fs:g} Hz, {len(result.beats)} beats"
          + (f", median heart rate {hr:.0f} bpm" if hr else ""))
    if not eps:
        print("no alarm episodes")
    else:
        print(f"{'onset':>12} {'end':>12}  {'priority':<8} {'condition':<22} detail")
        for e in eps:
            end = _clock(e.end) if e.end is not None else "(open)"
            print(f"{_clock(e.onset):>12} {end:>12}  {e.priority:<8} {e.condition:<22} {e.detail}")
    print(f"{len(result.transitions)} alert messages "
          f"({sum(t.action is Action.RAISED for t in result.transitions)} raised)")
    return 0
