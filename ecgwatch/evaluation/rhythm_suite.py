"""``ecgwatch eval --rhythms``: every rhythm figure of docs/evaluation.md from one command.

Three parts, each also runnable alone:

1. the AF detector on RR intervals: MIT-BIH AFDB episodes (tuning and held-out
   halves) and NSRDB false AF (:mod:`ecgwatch.evaluation.af`);
2. rhythm alarms end to end on the signal: AF, VT and VF alarms of the
   streaming path on all MIT-BIH records and the Noise Stress Test
   (:mod:`ecgwatch.evaluation.rhythm_alarms`);
3. CinC 2017 wearable strips, Normal / AF / Other / Noisy, through the
   streaming path (:mod:`ecgwatch.evaluation.cinc2017`).

Writes ``rhythms.md`` and ``rhythms.json`` plus each part's own report
under ``out``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .progress import Progress


def run(data: Path, out: Path, jobs: int = 2) -> list[Path]:
    from . import af, af_report, rhythm_alarms
    from .cinc2017 import StripRules, features_of_all, read_reference
    from .cinc2017_report import write_report
    from .records import list_records

    out.mkdir(parents=True, exist_ok=True)
    sections, doc = ["# Rhythm evaluation", ""], {}

    print("AF detector on AFDB / NSRDB beat times ...", file=sys.stderr)
    res = af.evaluate(data)
    sections.append(af_report.render_markdown(res))
    doc["af_rr"] = af_report.json_safe(res.to_dict())

    names = list_records(data / "mitdb")
    progress = Progress(len(names) + 12, sys.stderr)
    summary = rhythm_alarms.evaluate(data, jobs, progress=progress)
    progress.finish()
    sections.append(rhythm_alarms.render_markdown(summary))
    doc["alarms_end_to_end"] = summary

    folder = data / "cinc2017"
    if (folder / "REFERENCE.csv").exists():
        print("CinC 2017 strips ...", file=sys.stderr)
        reference = read_reference(folder)
        features = features_of_all(folder, sorted(reference), jobs)
        (out / "cinc2017").mkdir(exist_ok=True)
        sections.append(write_report(out / "cinc2017", features, reference, StripRules(), None))
        doc["cinc2017"] = json.loads((out / "cinc2017" / "report.json").read_text())
    else:
        sections.append(f"CinC 2017: not found at {folder}; skipped.\n")

    md, js = out / "rhythms.md", out / "rhythms.json"
    md.write_text("\n".join(sections))
    js.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    return [md, js]
