"""QRS detection benchmark: ecgwatch's streaming path beside neurokit2 and wfdb.

Scores every detector on the same records with the same rules: channel 0,
every beat annotation (PhysioNet beat codes) as reference, 150 ms match
window, nothing excluded. Reports Se, +P and F1 per database and CPU seconds
per signal hour, writes ``out/qrs_benchmark.json`` and a Markdown table, and
with ``--update-docs`` replaces the table in docs/evaluation.md.

    python bench/qrs_benchmark.py                  # everything (about 10 min on 2 cores)
    python bench/qrs_benchmark.py --methods ecgwatch --databases mitdb
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ecgwatch.evaluation.matching import DetectionScore, score_detections  # noqa: E402
from ecgwatch.evaluation.records import beat_reference, data_dir, list_records, read_signal  # noqa: E402
from ecgwatch.evaluation.replay import replay_beats  # noqa: E402

NEUROKIT = ["neurokit", "pantompkins1985", "hamilton2002", "elgendi2010",
            "engzeemod2012", "kalidas2017", "rodrigues2021"]
WFDB = ["gqrs", "xqrs"]
DATABASES = {
    "mitdb": None,                                   # all 48 records
    "nstdb": ["118e24", "119e24", "118e12", "119e12", "118e06", "119e06",
              "118e00", "119e00", "118e_6", "119e_6"],
}


def detect(method: str, x: np.ndarray, fs: float) -> np.ndarray:
    if method == "ecgwatch":
        return replay_beats(x, fs)
    if method in WFDB:
        from wfdb import processing
        if method == "gqrs":
            return np.asarray(processing.gqrs_detect(sig=x, fs=fs))
        xq = processing.XQRS(sig=x, fs=fs)
        xq.detect(verbose=False)
        return np.asarray(xq.qrs_inds)
    import neurokit2 as nk
    clean = nk.ecg_clean(x, sampling_rate=fs, method=method if method in (
        "neurokit", "pantompkins1985", "hamilton2002", "elgendi2010", "engzeemod2012")
        else "neurokit")
    _, info = nk.ecg_peaks(clean, sampling_rate=fs, method=method)
    return np.asarray(info["ECG_R_Peaks"])


def run_one(job: tuple[str, str, str]) -> dict:
    db, record, method = job
    path = data_dir() / db / record
    x, fs = read_signal(path)
    ref = beat_reference(path)
    t = time.process_time()
    try:
        det = detect(method, x, fs)
        error = ""
    except Exception as exc:            # a baseline that crashes scores as nothing found
        det, error = np.zeros(0, dtype=int), f"{type(exc).__name__}: {exc}"
    cpu = time.process_time() - t
    s = score_detections(ref, np.sort(det.astype(np.int64)), int(round(0.150 * fs)))
    return {"db": db, "record": record, "method": method, "tp": s.tp, "fn": s.fn,
            "fp": s.fp, "cpu_s": cpu, "signal_s": x.size / fs, "error": error}


def summarise(rows: list[dict]) -> dict:
    out: dict = {}
    for r in rows:
        key = (r["db"], r["method"])
        agg = out.setdefault(key, {"score": DetectionScore(0, 0, 0), "cpu": 0.0, "sig": 0.0})
        agg["score"] = agg["score"] + DetectionScore(r["tp"], r["fn"], r["fp"])
        agg["cpu"] += r["cpu_s"]
        agg["sig"] += r["signal_s"]
    return out


def _name(m: str) -> str:
    if m == "ecgwatch":
        return "**ecgwatch** (streaming, 1 s chunks)"
    return f"neurokit2 `{m}`" if m in NEUROKIT else f"wfdb `{m}`"


def markdown(summary: dict, methods: list[str], dbs: list[str]) -> str:
    lines = ["| database | detector | Se % | +P % | F1 % | FN | FP | CPU s per signal hour |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for db in dbs:
        for m in methods:
            a = summary.get((db, m))
            if not a:
                continue
            s = a["score"]
            lines.append(f"| {db} | {_name(m)} | {100 * s.se:.2f} | {100 * s.ppv:.2f} | "
                         f"{100 * s.f1:.2f} | {s.fn} | {s.fp} | {3600 * a['cpu'] / a['sig']:.1f} |")
    return "\n".join(lines)


def snr_table(rows: list[dict], methods: list[str]) -> str:
    """Noise Stress Test: Se / +P per SNR (records 118 and 119 pooled)."""
    snrs = ["24", "12", "06", "00", "_6"]
    by = {}
    for r in rows:
        if r["db"] == "nstdb":
            key = (r["method"], r["record"][4:])
            by[key] = by.get(key, DetectionScore(0, 0, 0)) + DetectionScore(r["tp"], r["fn"], r["fp"])
    head = "| detector | " + " | ".join(f"{s.replace('_', '-')} dB Se / +P %" for s in snrs) + " |"
    lines = [head, "|---|" + "---:|" * len(snrs)]
    for m in methods:
        cells = [f"{100 * by[(m, s)].se:.1f} / {100 * by[(m, s)].ppv:.1f}" if (m, s) in by
                 else "" for s in snrs]
        if any(cells):
            lines.append(f"| {_name(m)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=["ecgwatch"] + NEUROKIT + WFDB)
    ap.add_argument("--databases", nargs="+", default=list(DATABASES))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", type=Path, default=ROOT / "out")
    ap.add_argument("--update-docs", action="store_true")
    ap.add_argument("--render", type=Path, metavar="JSON",
                    help="only re-render the tables from an earlier run's JSON")
    args = ap.parse_args(argv)
    if args.render:
        rows = json.loads(args.render.read_text())
        return _report(rows, args)
    if not data_dir().is_dir():
        print(f"PhysioNet data not found at {data_dir()}; set ECGWATCH_DATA.", file=sys.stderr)
        return 2
    jobs = [(db, rec, m) for db in args.databases
            for rec in (DATABASES[db] or list_records(data_dir() / db))
            for m in args.methods]
    rows = []
    with ProcessPoolExecutor(args.jobs) as ex:
        for i, row in enumerate(ex.map(run_one, jobs, chunksize=1), 1):
            rows.append(row)
            if row["error"]:
                print(f"  {row['method']} failed on {row['record']}: {row['error']}",
                      file=sys.stderr)
            print(f"\r{i}/{len(jobs)} {row['db']}/{row['record']} {row['method']:<16}",
                  end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "qrs_benchmark.json").write_text(json.dumps(rows, indent=1))
    return _report(rows, args)


def _report(rows: list[dict], args: argparse.Namespace) -> int:
    methods = [m for m in args.methods if any(r["method"] == m for r in rows)]
    dbs = [d for d in args.databases if any(r["db"] == d for r in rows)]
    table = markdown(summarise(rows), methods, dbs)
    if "nstdb" in dbs:
        table += "\n\nNoise Stress Test by signal-to-noise ratio:\n\n" + snr_table(rows, methods)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "qrs_benchmark.md").write_text(table + "\n")
    print(table)
    if args.update_docs:
        doc = ROOT / "docs" / "evaluation.md"
        text = doc.read_text()
        new = re.sub(r"(<!-- qrs-table:start -->\n).*?(\n<!-- qrs-table:end -->)",
                     lambda m: m.group(1) + table + m.group(2), text, flags=re.S)
        doc.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
