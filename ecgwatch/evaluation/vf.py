"""Ventricular flutter/fibrillation detection of :class:`detect.vf.VfDetector` on MIT-BIH.

    python -m ecgwatch.evaluation.vf --data ../shared/data --out out/vf

Every record (channel 0) goes through the pipeline's signal chain, a
:class:`detect.resample.Resampler` to 250 Hz then the
:class:`detect.filters.CleaningFilter` (0.5-40 Hz, 50/60 Hz notches), in 1 s
chunks, then the detector; :class:`detect.quality.SignalQuality` runs beside
it so the report can say which decisions fell in windows judged unusable.
Record time is ``index / 250 - resampler delay``.

* **Ventricular flutter** (the rhythm annotations ``(VFL`` of MIT-BIH 207,
  six episodes; MIT-BIH has no ``(VF``): an episode is detected when a VF
  episode of the detector overlaps it. Time to alarm is the decision
  (``at``) minus the reference onset, or 0 when an earlier VF episode was
  still open at the onset.
* **False VF alarms per hour**: every raised VF episode that does not
  overlap a ``(VFL`` span, over all 48 records (every sample of 207 outside
  its flutter spans counts as analysed time, its flutter time does not).
  Episodes that overlap a ``(VT`` span are counted apart: calling a fast
  monomorphic VT ventricular flutter is not a false *lethal* alarm.
* **VT** (``(VT`` spans of 200, 203, 205, 207, 210, 213, 214, 215, 223, 233):
  whether the detector was active at any time during each episode
  (informative: the VT alarm comes from the beat labels).
* **Noise Stress Test** (118e24 ... 119e_6, electrode-motion noise at the
  stated SNR in 2-minute blocks alternating with clean ones from minute 5
  on; Moody, Muldrow & Mark 1984): false VF alarms per hour per SNR, and how
  many were decided in a window :class:`SignalQuality` judged unusable (the
  pipeline suppresses physiological alarms there).

**Tuning.** The detector's limits (:class:`detect.vf.VfConfig`) start from
the literature and were set on DS1 records only (de Chazal 2004, list in
:mod:`models.aami`; 207 is in DS1); DS2 records, the paced records and the
Noise Stress Test are reported separately and were not used for any choice.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from detect.config import DetectorConfig
from detect.filters import CleaningFilter
from detect.quality import SignalQuality
from detect.resample import Resampler
from detect.vf import VfConfig, VfDetector, VfEvent
from models.aami import DS1, DS2, PACED

from .records import data_dir, read_signal

FS = 250
VT_RECORDS = ("200", "203", "205", "207", "210", "213", "214", "215", "223", "233")
NST_SNRS = ("24", "18", "12", "06", "00", "_6")
NOISE_RECORDS = ("bw", "em", "ma")   # baseline wander, electrode motion, muscle
NST_NOISY = tuple((60.0 * m, 60.0 * (m + 2)) for m in range(5, 30, 4))   # seconds
Span = tuple[float, float]


@dataclass
class RecordRun:
    """One record through the chain: VF episodes and rhythm spans in seconds of record time."""

    record: str
    duration_s: float
    # onset, decision, end, decided in a window the quality judge calls unusable
    episodes: list[tuple[float, float, float, bool]]
    rhythms: dict[str, list[Span]] = field(default_factory=dict)


def rhythm_spans(path: Path, fs: float, duration_s: float) -> dict[str, list[Span]]:
    """Reference rhythm spans by label, e.g. ``{"(VFL": [(40.8, 51.1), ...]}``."""
    import wfdb
    out: dict[str, list[Span]] = {}
    if not path.with_suffix(".atr").exists():      # the NSTDB noise records have none
        return out
    ann = wfdb.rdann(str(path), "atr")
    cur, t0 = None, 0.0
    for s, note in zip(ann.sample, ann.aux_note):
        note = note.strip("\x00").strip()
        if note.startswith("("):
            if cur is not None:
                out.setdefault(cur, []).append((t0, s / fs))
            cur, t0 = note, s / fs
    if cur is not None:
        out.setdefault(cur, []).append((t0, duration_s))
    return out


def run_record(path: Path, config: VfConfig | None = None, chunk_s: float = 1.0) -> RecordRun:
    """Stream one record through resampler, cleaning filter, quality and VF detector."""
    x, fs = read_signal(path)
    dc = DetectorConfig()
    res = Resampler(fs, FS)
    cleaner = CleaningFilter(FS, dc.bandpass_hz, dc.mains_hz, dc.notch_q)
    quality = SignalQuality(dc)
    vf = VfDetector(FS, config)
    events: list[VfEvent] = []
    bad: list[tuple[int, int]] = []
    step = max(1, int(round(chunk_s * fs)))
    for i in range(0, x.size, step):
        y = res.push(x[i:i + step])
        clean = cleaner.push(y)
        bad += [(w.start, w.end) for w in quality.push(y, clean) if not w.quality.usable]
        events += vf.push(clean)
    bad += [(w.start, w.end) for w in quality.flush() if not w.quality.usable]
    events += vf.flush()
    delay = res.delay_s
    duration = x.size / fs

    def t(index: int) -> float:
        return min(max(index / FS - delay, 0.0), duration)

    episodes = []
    for ev in events:
        if ev.active:
            unusable = any(a <= ev.at - 1 < b for a, b in bad)
            episodes.append([t(ev.index), t(ev.at), duration, unusable])
        elif episodes:
            episodes[-1][2] = t(ev.index)
    return RecordRun(path.name, duration, [tuple(e) for e in episodes],
                     rhythm_spans(path, fs, duration))


def _overlaps(a: Span, spans: list[Span]) -> bool:
    return any(a[0] < s1 and s0 < a[1] for s0, s1 in spans)


def score_flutter(run: RecordRun) -> list[dict]:
    """Per reference (VFL episode: detected, time to alarm (s), onset error (s))."""
    out = []
    for s0, s1 in run.rhythms.get("(VFL", []):
        hits = [e for e in run.episodes if e[0] < s1 and s0 < e[2]]
        row: dict = {"onset_s": round(s0, 1), "duration_s": round(s1 - s0, 1),
                     "detected": bool(hits), "time_to_alarm_s": None, "onset_error_s": None,
                     "decided_unusable": None}
        if hits:
            e = hits[0]
            row["time_to_alarm_s"] = round(max(0.0, e[1] - s0), 1)
            row["onset_error_s"] = round(e[0] - s0, 1)
            row["decided_unusable"] = e[3]
        out.append(row)
    return out


def false_alarms(run: RecordRun) -> dict:
    """Raised VF episodes outside flutter, split by whether they overlap VT."""
    vfl, vt = run.rhythms.get("(VFL", []), run.rhythms.get("(VT", [])
    hours = (run.duration_s - sum(b - a for a, b in vfl)) / 3600.0
    false = [e for e in run.episodes if not _overlaps((e[0], e[2]), vfl)]
    in_vt = [e for e in false if _overlaps((e[0], e[2]), vt)]
    return {"record": run.record, "hours": hours, "false": len(false) - len(in_vt),
            "during_vt": len(in_vt), "false_unusable": sum(1 for e in false if e[3]
                                                           and e not in in_vt),
            "false_at_s": [round(e[1], 1) for e in false if e not in in_vt]}


def vt_rows(run: RecordRun) -> list[dict]:
    return [{"record": run.record, "onset_s": round(a, 1), "duration_s": round(b - a, 1),
             "vf_active": _overlaps((a, b), [(e[0], e[2]) for e in run.episodes])}
            for a, b in run.rhythms.get("(VT", [])]


def _rate(rows: list[dict], key: str = "false") -> dict:
    hours = sum(r["hours"] for r in rows)
    n = sum(r[key] for r in rows)
    return {"records": len(rows), "hours": round(hours, 2), key: n,
            "per_hour": round(n / hours, 3) if hours else None}


def evaluate(data: Path, config: VfConfig | None = None, log=print) -> dict:
    mit = data / "mitdb"
    runs: dict[str, RecordRun] = {}
    for r in sorted(DS1 + DS2 + PACED):
        runs[r] = run_record(mit / r, config)
        log(f"mitdb {r}: {len(runs[r].episodes)} VF episode(s)")
    flutter = score_flutter(runs["207"])
    fa = {r: false_alarms(run) for r, run in runs.items()}
    groups = {"DS1": DS1, "DS2": DS2, "paced": PACED, "all": tuple(sorted(runs))}
    mitdb = {g: {**_rate([fa[r] for r in recs]),
                 "during_vt": sum(fa[r]["during_vt"] for r in recs),
                 "false_unusable": sum(fa[r]["false_unusable"] for r in recs)}
             for g, recs in groups.items()}
    vt = [row for r in VT_RECORDS for row in vt_rows(runs[r])]
    nst: dict[str, dict] = {}
    for snr in NST_SNRS:
        rows = []
        for base in ("118", "119"):
            run = run_record(data / "nstdb" / f"{base}e{snr}", config)
            noisy = [e for e in run.episodes if _overlaps((e[0], e[2]), list(NST_NOISY))]
            rows.append({"hours": run.duration_s / 3600.0, "false": len(run.episodes),
                         "in_noise": len(noisy), "unusable": sum(1 for e in run.episodes
                                                                 if e[3])})
        label = f"{int(snr.replace('_', '-'))} dB"
        nst[label] = {**_rate(rows), "in_noise": sum(r["in_noise"] for r in rows),
                      "unusable": sum(r["unusable"] for r in rows)}
        log(f"nstdb {label}: {nst[label]['false']} VF episode(s)")
    # The raw noise records (no ECG at all): informative stress.
    noise = {}
    for name in NOISE_RECORDS:
        if (data / "nstdb" / f"{name}.hea").exists():
            run = run_record(data / "nstdb" / name, config)
            noise[name] = {"hours": round(run.duration_s / 3600.0, 2),
                           "false": len(run.episodes),
                           "unusable": sum(1 for e in run.episodes if e[3])}
    detected = [f for f in flutter if f["detected"]]
    lat = [f["time_to_alarm_s"] for f in detected]
    return {
        "config": asdict(config or VfConfig()),
        "flutter_207": {"episodes": len(flutter), "detected": len(detected),
                        "se": round(len(detected) / len(flutter), 3) if flutter else None,
                        "within_5s": sum(1 for x in lat if x <= 5.0),
                        "median_time_to_alarm_s": float(np.median(lat)) if lat else None,
                        "max_time_to_alarm_s": max(lat) if lat else None,
                        "rows": flutter},
        "false_alarms_mitdb": mitdb,
        "false_alarm_records": {r: v for r, v in fa.items() if v["false"] or v["during_vt"]},
        "vt": {"episodes": len(vt), "vf_active": sum(1 for v in vt if v["vf_active"]),
               "rows": vt},
        "nst": nst,
        "noise_only": noise,
    }


def to_markdown(res: dict) -> str:
    f = res["flutter_207"]
    lines = ["# VF / ventricular flutter detector (detect/vf.py)", "",
             "Signal chain as the pipeline: resample to 250 Hz, clean 0.5-40 Hz + notches, "
             "1 s chunks, channel 0.", "",
             "## Ventricular flutter, MIT-BIH 207 (DS1)", "",
             f"Episode Se {f['detected']}/{f['episodes']}; alarm within 5 s of onset: "
             f"{f['within_5s']}/{f['episodes']}; time to alarm median "
             f"{f['median_time_to_alarm_s']} s, max {f['max_time_to_alarm_s']} s.", "",
             "| onset (s) | duration (s) | detected | time to alarm (s) | onset error (s) "
             "| decided in unusable window |", "|---:|---:|---|---:|---:|---|"]
    lines += [f"| {r['onset_s']} | {r['duration_s']} | {'yes' if r['detected'] else 'no'} | "
              f"{r['time_to_alarm_s']} | {r['onset_error_s']} | {r['decided_unusable']} |"
              for r in f["rows"]]
    lines += ["", "## False VF alarms on MIT-BIH (outside ventricular flutter)", "",
              "Raised episodes not overlapping a (VFL span; those overlapping a (VT span are "
              "counted apart. `unusable`: decided in a window the quality judge calls "
              "unusable.", "",
              "| records | n | hours | false | per hour | during VT | false & unusable |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for g, v in res["false_alarms_mitdb"].items():
        lines.append(f"| {g} | {v['records']} | {v['hours']} | {v['false']} | "
                     f"{v['per_hour']} | {v['during_vt']} | {v['false_unusable']} |")
    lines += ["", "Records with VF episodes outside flutter:", ""]
    lines += [f"- {r}: {v['false']} false at {v['false_at_s']} s, {v['during_vt']} during VT"
              for r, v in res["false_alarm_records"].items()]
    vt = res["vt"]
    lines += ["", "## VT episodes (informative)", "",
              f"VF detector active during {vt['vf_active']} of {vt['episodes']} (VT episodes "
              "in 200, 203, 205, 207, 210, 213, 214, 215, 223, 233): "
              + ", ".join(f"{v['record']} at {v['onset_s']} s ({v['duration_s']} s)"
                          for v in vt["rows"] if v["vf_active"]) + ".", "",
              "## Noise Stress Test (118, 119 + electrode motion)", "",
              "| SNR | hours | VF episodes | per hour | in noisy blocks | decided in unusable "
              "window |", "|---|---:|---:|---:|---:|---:|"]
    for snr, v in res["nst"].items():
        lines.append(f"| {snr} | {v['hours']} | {v['false']} | {v['per_hour']} | "
                     f"{v['in_noise']} | {v['unusable']} |")
    lines += ["", "Noise-only records of NSTDB (no ECG; informative):", ""]
    lines += [f"- {k}: {v['false']} VF episode(s) in {v['hours']} h, {v['unusable']} decided "
              "in an unusable window" for k, v in res["noise_only"].items()]
    c = res["config"]
    lines += ["", "## Settings", "", ", ".join(f"{k}={v}" for k, v in c.items()), "",
              "Limits set on DS1 only (see detect/vf.py VfConfig); DS2, paced records and "
              "the Noise Stress Test were not used for any choice.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ecgwatch.evaluation.vf",
                                 description="Score the VF/VFL detector on MIT-BIH and NSTDB.")
    ap.add_argument("--data", type=Path, default=None,
                    help="PhysioNet data folder (default $ECGWATCH_DATA or ../shared/data)")
    ap.add_argument("--out", type=Path, default=Path("out/vf"), help="report folder")
    args = ap.parse_args(argv)
    data = args.data or data_dir()
    if not (data / "mitdb").is_dir():
        print(f"No MIT-BIH records in {data}/mitdb.", file=sys.stderr)
        return 2
    res = evaluate(data, log=lambda m: print(m, file=sys.stderr))
    args.out.mkdir(parents=True, exist_ok=True)
    md = to_markdown(res)
    (args.out / "report.md").write_text(md)
    (args.out / "report.json").write_text(json.dumps(res, indent=2) + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
