"""Reports of the AF evaluation (:mod:`ecgwatch.evaluation.af`): Markdown, strict JSON, CLI.

    python -m ecgwatch.evaluation.af --data ../shared/data --out out/af
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .af import CHUNK_S, HELD_OUT, TUNING, AfResult, evaluate


def _p(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:.1f}"


def _s(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.0f}"


def render_markdown(result: AfResult) -> str:
    d = result.to_dict()
    c = result.config
    lines = [
        "# AF detection on RR intervals (AFDB, NSRDB)", "",
        "Detector `detect.af.AfDetector`, settings: "
        + ", ".join(f"{k} {v:g}" for k, v in asdict(c).items())
        + f"; beats fed in {CHUNK_S:g} s chunks. Reference AF: "
        "`(AFIB`; statistics as EC57 / epicmp (gross = pooled, avg = mean over records).", "",
        f"Tuning records: {', '.join(TUNING)}. Held out: {', '.join(HELD_OUT)}.", "",
        "| set | reference | episode Se % (all) | episode Se % (>= "
        f"{c.min_duration_s:g} s) | episode +P % | duration Se % | duration +P % |",
        "|---|---|---:|---:|---:|---:|---:|"]
    for ref_name, key in (("AFIB", "afdb"), ("AFIB+AFL", "afdb_afl_as_af")):
        for part in ("tuning", "held_out", "all") if key == "afdb" else ("tuning", "held_out"):
            sm = d[key][part]
            for kind in ("gross", "averaged") if key == "afdb" else ("gross",):
                g = sm[kind]
                lines.append(f"| {part} ({kind}) | {ref_name} | {_p(g['episode_se'])} | "
                             f"{_p(g['episode_se_long'])} | {_p(g['episode_ppv'])} | "
                             f"{_p(g['duration_se'])} | {_p(g['duration_ppv'])} |")
    lines += ["", "RR-interval (beat) level, gross, reference AFIB: each interval is AF or not by "
              "the reference rhythm at its closing beat and by the detector, with its episodes as "
              "placed (onset and offset estimates) or as known live (from each onset decision to "
              "its offset decision). Petrenas et al. 2015 report Se 97.1 / Sp 98.3 on AFDB at "
              "this level, with no minimum episode duration.", "",
              "| set | Se % | Sp % | +P % | live Se % | live Sp % | live +P % |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for part in ("tuning", "held_out", "all"):
        g = d["afdb"][part]["gross"]
        lines.append(f"| {part} | " + " | ".join(_p(g[k]) for k in (
            "beat_se", "beat_sp", "beat_ppv", "live_se", "live_sp", "live_ppv")) + " |")
    lines += ["", "Latency in seconds (reference AFIB, first / last detected episode "
              "overlapping each reference episode):", "",
              "| set | onset decision median / p90 | onset estimate error median / p90 | "
              "offset decision median / p90 | offset estimate error median / p90 |",
              "|---|---:|---:|---:|---:|"]
    for part in ("tuning", "held_out", "all"):
        lat = d["afdb"][part]["latency"]
        cells = [f"{_s(lat[k]['median'])} / {_s(lat[k]['p90'])}" for k in
                 ("onset_delay_s", "onset_error_s", "offset_delay_s", "offset_error_s")]
        lines.append(f"| {part} | " + " | ".join(cells) + " |")
    ns = d["nsrdb"]
    lines += ["", f"NSRDB ({len(ns['records'])} records, {ns['hours']:.0f} h, never tuned on): "
              f"{ns['false_episodes_per_hour']:.3f} false AF episodes per hour, "
              f"{100 * ns['false_af_fraction']:.2f} % of the time in false AF.", "",
              "Per AFDB record (AFIB reference):", "",
              "| record | set | ref episodes (>= min) | detected | det episodes | true | "
              "ref AF min | det AF min | dur Se % | dur +P % | burden % |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in d["afdb"]["records"]:
        lines.append(f"| {r['record']} | {r['set']} | {r['ref_episodes']} ({r['ref_long']}) | "
                     f"{r['ref_detected']} ({r['ref_long_detected']}) | {r['det_episodes']} | "
                     f"{r['det_true']} | {r['ref_s'] / 60:.0f} | {r['det_s'] / 60:.0f} | "
                     f"{_p(r['duration_se'])} | {_p(r['duration_ppv'])} | "
                     f"{_p(r['burden'])} |")
    lines += ["", "Per NSRDB record:", "", "| record | hours | false episodes | false AF s |",
              "|---|---:|---:|---:|"]
    for r in ns["records"]:
        lines.append(f"| {r['record']} | {r['hours']:.1f} | {r['false_episodes']} | "
                     f"{r['false_af_s']:.0f} |")
    lines += ["", "Data: PhysioNet (Goldberger et al., Circulation 101(23):e215-e220, 2000); "
              "AFDB (Moody & Mark, Computers in Cardiology 10:227-230, 1983); NSRDB.", ""]
    return "\n".join(lines)


def json_safe(x):
    """NaN (a statistic with nothing to count) becomes null: strict JSON."""
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if math.isnan(x) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ecgwatch.evaluation.af",
                                 description="Score the RR-interval AF detector on AFDB and NSRDB.")
    ap.add_argument("--data", type=Path, default=None,
                    help="PhysioNet data folder (default $ECGWATCH_DATA or ../shared/data)")
    ap.add_argument("--out", type=Path, default=Path("out/af"), help="report folder")
    args = ap.parse_args(argv)
    try:
        result = evaluate(args.data)
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 2
    md = render_markdown(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.md").write_text(md)
    (args.out / "report.json").write_text(json.dumps(json_safe(result.to_dict()), indent=2,
                                                     allow_nan=False) + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
