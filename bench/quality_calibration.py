"""Signal-quality calibration: how the quality judge rates real recordings.

Replays records through ``detect.pipeline.DevicePipeline`` (the service's
chain) and counts the 2 s quality windows per verdict: all 48 MIT-BIH
records (clean ambulatory ECG: should be usable) and the Noise Stress Test
records, whose electrode-motion noise is added in 2-minute blocks from
minute 5 on, alternating with clean blocks (Moody, Muldrow & Mark 1984).

    python bench/quality_calibration.py            # writes out/quality_calibration.md
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detect.pipeline import DevicePipeline  # noqa: E402
from detect.types import Quality  # noqa: E402
from ecgwatch.evaluation.records import data_dir, list_records, read_signal  # noqa: E402
from ecgwatch.evaluation.replay import chunks_of  # noqa: E402

NST = ["118e24", "118e12", "118e06", "118e00", "118e_6",
       "119e24", "119e12", "119e06", "119e00", "119e_6"]


def windows(path: Path) -> list[tuple[float, Quality]]:
    x, fs = read_signal(path)
    p = DevicePipeline("calibration")
    out = []
    for c in chunks_of(x, fs, 1.0, "calibration"):
        out += [(w.start / p.fs, w.quality) for w in p.push(c).quality]
    return out


def in_noise_block(t: float) -> bool:
    return t >= 300 and int((t - 300) // 120) % 2 == 0


def tally(job: tuple[str, str]) -> tuple[str, str, Counter, Counter]:
    db, rec = job
    ws = windows(data_dir() / db / rec)
    noisy = Counter(q for t, q in ws if in_noise_block(t))
    return db, rec, Counter(q for _, q in ws), noisy


def pct(c: Counter) -> str:
    n = sum(c.values()) or 1
    return " | ".join(f"{100 * c[q] / n:.1f}" for q in Quality)


def main() -> int:
    if not data_dir().is_dir():
        print(f"PhysioNet data not found at {data_dir()}", file=sys.stderr)
        return 2
    jobs = [("mitdb", r) for r in list_records(data_dir() / "mitdb")] + [("nstdb", r) for r in NST]
    with ProcessPoolExecutor(os.cpu_count() or 1) as ex:
        res = list(ex.map(tally, jobs))
    head = "| windows | " + " | ".join(f"{q.value} %" for q in Quality) + " |"
    lines = [head, "|---|" + "---:|" * len(Quality)]
    lines.append(f"| MIT-BIH, all 48 records | {pct(sum((r[2] for r in res if r[0] == 'mitdb'), Counter()))} |")
    for snr in ("24", "12", "06", "00", "_6"):
        c = sum((r[3] for r in res if r[0] == "nstdb" and r[1].endswith(snr)), Counter())
        lines.append(f"| NST noisy blocks, {snr.replace('_', '-')} dB (118, 119) | {pct(c)} |")
    table = "\n".join(lines)
    out = ROOT / "out"
    out.mkdir(exist_ok=True)
    (out / "quality_calibration.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
