"""Threshold search on the tuning half and the report of :mod:`ecgwatch.evaluation.cinc2017`.

The search is a coordinate ascent over :data:`GRID` (one threshold at a time,
the others held, until a full pass changes nothing), maximising the challenge
score mean(F1_N, F1_A, F1_O) on the tuning half (even strip numbers) only.
The held-out half never enters it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .cinc2017 import (CHALLENGE_BEST_F1, CLASSES, Scores, StripFeatures, StripRules, decide,
                       is_tuning, score)

# Values tried per threshold; 1.0 for a share switches its rule off.
GRID: dict[str, tuple[float, ...]] = {
    "max_unusable": (0.3, 0.4, 0.5, 0.6, 0.8, 1.01),
    "min_good": (0.0, 0.1, 0.2, 0.3, 0.4),
    "min_beats": (5, 8, 12, 16),
    "af_irregularity": (0.06, 0.07, 0.08, 0.09, 0.1, 0.11, 0.12),
    "other_irregularity": (0.03, 0.04, 0.05, 0.06, 1.0),
    "min_rate": (40.0, 45.0, 50.0, 55.0),
    "max_rate": (95.0, 100.0, 105.0, 110.0),
    "max_premature": (0.03, 0.05, 0.08, 0.12, 1.0),
    "max_deviant": (0.15, 0.2, 0.3, 0.4, 1.0),
}


# Where the search starts: the first guess, written down before the search ran.
SEARCH_START = StripRules(max_unusable=0.5, min_good=0.2, min_beats=8, af_irregularity=0.08,
                          other_irregularity=1.0, min_rate=50.0, max_rate=100.0,
                          max_premature=0.05, max_deviant=1.0)


@dataclass(frozen=True, slots=True)
class Search:
    """Result of :func:`tune`: the best rules and their tuning-half challenge score."""

    rules: StripRules
    challenge_f1: float
    passes: int


def scores_of(features: dict[str, StripFeatures], reference: dict[str, str],
              rules: StripRules, tuning: bool) -> Scores:
    """Scores of one half (tuning or held out) under ``rules``."""
    names = [r for r in sorted(features) if is_tuning(r) == tuning]
    return score([reference[r] for r in names], [decide(features[r], rules) for r in names])


def tune(features: dict[str, StripFeatures], reference: dict[str, str],
         start: StripRules = SEARCH_START, max_passes: int = 6) -> Search:
    """Coordinate ascent of the challenge F1 over GRID, on the tuning half only."""
    tuning = {r: f for r, f in features.items() if is_tuning(r)}
    best = start
    best_f1 = scores_of(tuning, reference, best, True).challenge_f1
    for n in range(1, max_passes + 1):
        changed = False
        for name, values in GRID.items():
            for v in values:
                trial = replace(best, **{name: type(getattr(best, name))(v)})
                f1 = scores_of(tuning, reference, trial, True).challenge_f1
                # Strictly better only: ties keep the current (earlier) setting.
                if f1 > best_f1 + 1e-12:
                    best, best_f1, changed = trial, f1, True
        if not changed:
            return Search(best, best_f1, n)
    return Search(best, best_f1, max_passes)


def _table(s: Scores) -> list[str]:
    lines = ["| reference \\ decision | " + " | ".join(CLASSES) + " | total |",
             "|---|" + "---:|" * (len(CLASSES) + 1)]
    for c, row in zip(CLASSES, s.confusion):
        lines.append(f"| {c} | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
    return lines


def _f1_line(half: str, s: Scores) -> str:
    per = " | ".join(f"{s.f1[c]:.3f}" for c in CLASSES)
    return f"| {half} | {s.strips} | {per} | **{s.challenge_f1:.3f}** | {s.f1_with_noise:.3f} |"


def write_report(out: Path, features: dict[str, StripFeatures], reference: dict[str, str],
                 rules: StripRules, search: Search | None = None) -> str:
    """report.md, report.json and features.json in ``out``; returns the markdown."""
    halves = {"tuning (even)": scores_of(features, reference, rules, True),
              "held-out (odd)": scores_of(features, reference, rules, False)}
    md = ["# CinC 2017 strips: Normal / AF / Other / Noisy through the streaming path", "",
          "Data: PhysioNet/Computing in Cardiology Challenge 2017 training set, strips "
          f"{min(features)}..{max(features)} ({len(features)} strips; Clifford GD et al., "
          "Computing in Cardiology 44, 2017; PhysioNet: Goldberger AL et al., Circulation "
          "101(23):e215-e220, 2000). Each strip went through DeviceMonitor -> DevicePipeline "
          "in 1 s chunks; rules in `ecgwatch/evaluation/cinc2017.py`.", "",
          "Split fixed before any result: even strip numbers tune the thresholds, odd "
          "numbers are held out and were used for no choice.", "",
          "| half | strips | F1 N | F1 A | F1 O | F1 ~ | challenge F1 (N, A, O) | "
          "mean F1 with ~ |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    md += [_f1_line(h, s) for h, s in halves.items()]
    md += [f"| challenge best (Clifford et al. 2017, hidden test set) | | | | | | "
           f"{CHALLENGE_BEST_F1:.2f} | |", ""]
    for h, s in halves.items():
        md += [f"Confusion, {h} half (rows: reference label, columns: decision):", ""]
        md += _table(s) + [""]
    md += ["Thresholds (`StripRules`):", "", "| threshold | value |", "|---|---:|"]
    md += [f"| {k} | {v:g} |" for k, v in asdict(rules).items()]
    if search is not None:
        md += ["", f"Rerun of the threshold search on the tuning half ({search.passes} passes): "
               f"challenge F1 {search.challenge_f1:.3f} with "
               + ", ".join(f"{k}={v:g}" for k, v in asdict(search.rules).items())
               # By value: run as __main__, cinc2017's classes are a second copy.
               + (" (the committed thresholds)." if asdict(search.rules) == asdict(rules)
                  else " (differs from the committed thresholds).")]
    text = "\n".join(md) + "\n"
    (out / "report.md").write_text(text)
    doc = {"rules": asdict(rules), "challenge_best_f1": CHALLENGE_BEST_F1,
           "split": "even strip number = tuning, odd = held out",
           "halves": {h: {"strips": s.strips, "classes": list(CLASSES),
                          "confusion": [list(r) for r in s.confusion], "f1": s.f1,
                          "challenge_f1": s.challenge_f1, "f1_with_noise": s.f1_with_noise}
                      for h, s in halves.items()}}
    if search is not None:
        doc["search"] = {"rules": asdict(search.rules), "challenge_f1": search.challenge_f1,
                         "passes": search.passes}
    (out / "report.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out / "features.json").write_text(json.dumps(
        {r: {"label": reference[r], "decision": decide(f, rules), **asdict(f)}
         for r, f in sorted(features.items())}, indent=1) + "\n")
    return text
