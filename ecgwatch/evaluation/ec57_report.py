"""``ecgwatch eval`` output: report.md, report.json and confusion.png.

The Markdown follows the layout of EC57's reporting tables: gross and
record-averaged VEB/SVEB Se, +P, FPR, the pooled confusion matrix, then one
row per record; the Noise Stress Test table gives QRS Se/+P per SNR and the
share of detected beats the classifier called Q (unclassifiable), which is
what it should do with beats buried in noise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .ec57 import PRED_COLS, REF_ROWS, ClassScore, Confusion, Ec57Summary, RecordScore

if TYPE_CHECKING:
    from ecgwatch.eval_cmd import RecordResult


def summaries(results: Sequence["RecordResult"], modes: Sequence[str]) -> dict[str, Ec57Summary]:
    """One EC57 summary per mode over the MIT-BIH records (NST kept apart)."""
    return {m: Ec57Summary(tuple(RecordScore(r.job.record, r.scores[m]) for r in results
                                 if r.job.db == "mitdb" and m in r.scores))
            for m in modes}


def nst_rows(results: Sequence["RecordResult"]) -> list[dict]:
    """Noise Stress Test, records 118 and 119 pooled per SNR."""
    by: dict[str, dict] = {}
    for r in results:
        if r.job.db != "nstdb" or "end-to-end" not in r.scores:
            continue
        snr = r.job.record[4:]
        row = by.setdefault(snr, {"confusion": Confusion.empty(), "detected": 0, "q": 0,
                                  "records": []})
        row["confusion"] = row["confusion"] + r.scores["end-to-end"]
        row["detected"] += r.detected
        row["q"] += r.labelled_q
        row["records"].append(r.job.record)
    out = []
    for snr, row in sorted(by.items(), key=lambda kv: -_snr_db(kv[0])):
        c: Confusion = row["confusion"]
        out.append({"snr_db": _snr_db(snr), "records": row["records"],
                    "qrs": c.qrs.to_dict(), "veb": c.veb.to_dict(), "sveb": c.sveb.to_dict(),
                    "detected": row["detected"],
                    "q_share": row["q"] / row["detected"] if row["detected"] else None})
    return out


def write_report(results: Sequence["RecordResult"], out: Path, *, modes: Sequence[str],
                 start_s: float) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    sums = summaries(results, modes)
    nst = nst_rows(results)
    doc = {"standard": "ANSI/AAMI EC57:2012, bxb class sums", "match_window_s": 0.150,
           "start_s": start_s, "modes": {m: s.to_dict() for m, s in sums.items()},
           "nst": nst,
           "seconds": {r.job.record: round(r.seconds, 2) for r in results}}
    paths = [out / "report.json", out / "report.md", out / "confusion.png"]
    paths[0].write_text(json.dumps(doc, indent=1) + "\n")
    paths[1].write_text(markdown(sums, nst, start_s))
    confusion_png(sums, paths[2])
    return paths


# ------------------------------------------------------------------ Markdown
def _pct(x: float | None, digits: int = 2) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f}"


def _class_cells(s: ClassScore, fpr: bool = True) -> list[str]:
    cells = [_pct(s.se), _pct(s.ppv)]
    return cells + [_pct(s.fpr, 3)] if fpr else cells


def markdown(sums: dict[str, Ec57Summary], nst: list[dict], start_s: float) -> str:
    lines = ["# EC57 beat classification", "",
             "ANSI/AAMI EC57:2012 beat-by-beat comparison, 150 ms match window, beats from "
             f"{start_s:g} s on, reference ventricular flutter excluded. Statistics in %; "
             "formulas in `ecgwatch/evaluation/ec57.py`.", ""]
    for mode, s in sums.items():
        g, va, sa = s.gross, s.veb_average, s.sveb_average
        lines += [f"## {mode} ({len(s.records)} records)", "",
                  "| | VEB Se | VEB +P | VEB FPR | SVEB Se | SVEB +P | SVEB FPR "
                  "| QRS Se | QRS +P | accuracy |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
                  "| gross | " + " | ".join(_class_cells(g.veb) + _class_cells(g.sveb)
                                           + _class_cells(g.qrs, fpr=False)
                                           + [_pct(g.accuracy)]) + " |",
                  "| record average | " + " | ".join(
                      [_pct(va.se), _pct(va.ppv), _pct(va.fpr, 3),
                       _pct(sa.se), _pct(sa.ppv), _pct(sa.fpr, 3), "", "", ""]) + " |", "",
                  "Confusion matrix (rows: reference, columns: predicted):", "",
                  "| ref \\ pred | " + " | ".join(PRED_COLS) + " |",
                  "|---|" + "---:|" * len(PRED_COLS)]
        for i, row in enumerate(REF_ROWS):
            cells = [str(v) for v in g.counts[i]]
            if row == "extra":
                cells[-1] = ""
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        lines += ["", "| record | beats | VEB Se | VEB +P | SVEB Se | SVEB +P | accuracy |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for r in s.records:
            c = r.confusion
            beats = int(c.counts[:-1].sum())
            lines.append(f"| {r.record} | {beats} | " + " | ".join(
                _class_cells(c.veb, False) + _class_cells(c.sveb, False)
                + [_pct(c.accuracy)]) + " |")
        lines.append("")
    if nst:
        lines += ["## Noise Stress Test (end-to-end, 118 and 119 pooled)", "",
                  "| SNR dB | QRS Se | QRS +P | VEB Se | VEB +P | beats labelled Q |",
                  "|---:|---:|---:|---:|---:|---:|"]
        for row in nst:
            q, v = row["qrs"], row["veb"]
            lines.append(f"| {row['snr_db']} | {_pct(q['se'])} | {_pct(q['ppv'])} | "
                         f"{_pct(v['se'])} | {_pct(v['ppv'])} | {_pct(row['q_share'], 1)} |")
        lines.append("")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------- figure
def confusion_png(sums: dict[str, Ec57Summary], path: Path) -> None:
    """Gross confusion per mode; colour is the share of each reference row."""
    import matplotlib
    matplotlib.use("Agg")                 # no display on servers and in workers
    import matplotlib.pyplot as plt
    import numpy as np

    modes = list(sums) or ["(none)"]
    fig, axes = plt.subplots(1, len(modes), figsize=(5.2 * len(modes), 4.6), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        counts = sums[mode].gross.counts if mode in sums else np.zeros((6, 6), int)
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(counts.shape[0]):
            for j in range(counts.shape[1]):
                if REF_ROWS[i] == "extra" and PRED_COLS[j] == "missed":
                    continue
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if share[i, j] > 0.6 else "black")
        ax.set_xticks(range(len(PRED_COLS)), PRED_COLS)
        ax.set_yticks(range(len(REF_ROWS)), REF_ROWS)
        ax.set_xlabel("predicted")
        ax.set_ylabel("reference")
        ax.set_title(f"{mode}, {len(sums[mode].records) if mode in sums else 0} records")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _snr_db(suffix: str) -> int:
    return -int(suffix[1:]) if suffix.startswith("_") else int(suffix)
