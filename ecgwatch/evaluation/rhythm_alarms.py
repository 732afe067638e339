"""Rhythm alarms end to end: AF, VT and VF alarms of the streaming path against MIT-BIH.

Each record is replayed through the service's own per-device path (1 s
chunks, :func:`ecgwatch.evaluation.replay.replay`, with the shipped beat
model so that ventricular runs can be called) and its alarm transitions are
compared with the reference rhythm annotations:

* an **alarm episode** runs from its onset to its CLEARED transition (or the
  record's end); it was *decided* at its RAISED transition;
* a reference episode (``(AFIB``, ``(VT``, ``(VFL`` spans of the ``.atr``
  aux notes) is **detected** when an alarm episode of its condition overlaps
  it; the **time to alarm** is RAISED time minus the reference onset (an
  alarm already active at the onset counts 0);
* an alarm episode that overlaps no reference episode of its condition is a
  **false alarm**; VT and VF alarms during the other lethal rhythm are
  counted apart ("lethal cross"), since both demand the same response;
* a false alarm whose onset lies in a quality window judged unusable would
  break the rule that no physiological alarm comes from inadequate signal:
  those are counted separately and must be 0.

Minimum durations follow the detectors: AF alarms need 30 s of AF, so
reference AF episodes shorter than that are reported but not required; VT
needs 3 beats, as EC57's VT runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from detect.types import Action, AlarmTransition, Condition, QualityWindow

from .af import rhythm_episodes
from .records import read_signal
from .replay import replay

FS_INTERNAL = 250.0
VT_ALARMS = frozenset({Condition.VENTRICULAR_TACHYCARDIA, Condition.WIDE_COMPLEX_TACHYCARDIA})
CONDITIONS = {
    "AF": (frozenset({Condition.ATRIAL_FIBRILLATION}), frozenset({"(AFIB"}), 30.0),
    # VT is alarmed from beat labels (ventricular_tachycardia) or from QRS width
    # (wide_complex_tachycardia): scored together, and each alone.
    "VT": (VT_ALARMS, frozenset({"(VT"}), 0.0),
    "VT (labels)": (frozenset({Condition.VENTRICULAR_TACHYCARDIA}), frozenset({"(VT"}), 0.0),
    "VT (width)": (frozenset({Condition.WIDE_COMPLEX_TACHYCARDIA}), frozenset({"(VT"}), 0.0),
    "VF": (frozenset({Condition.VENTRICULAR_FIBRILLATION}), frozenset({"(VFL", "(VF"}), 0.0),
}
LETHAL = ("VT", "VT (labels)", "VT (width)", "VF")
Span = tuple[float, float]          # seconds of record time


@dataclass(frozen=True, slots=True)
class AlarmEpisode:
    onset: float
    raised: float
    end: float


@dataclass
class ConditionScore:
    """One condition on one record (or pooled)."""

    hours: float = 0.0
    ref: int = 0                    # reference episodes
    ref_required: int = 0           # ... at least as long as the detector's minimum
    detected: int = 0
    detected_required: int = 0
    alarms: int = 0
    false: int = 0
    false_lethal_cross: int = 0     # VT alarm in reference VF, or VF alarm in reference VT
    false_in_unusable: int = 0
    delays: list[float] = field(default_factory=list)

    def add(self, other: ConditionScore) -> None:
        for k in ("hours", "ref", "ref_required", "detected", "detected_required", "alarms",
                  "false", "false_lethal_cross", "false_in_unusable"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.delays += other.delays

    def to_dict(self) -> dict:
        d = np.asarray(self.delays)
        return {
            "hours": round(self.hours, 3), "reference_episodes": self.ref,
            "required_episodes": self.ref_required, "detected": self.detected,
            "detected_required": self.detected_required,
            "sensitivity_required": _ratio(self.detected_required, self.ref_required),
            "alarms": self.alarms, "false_alarms": self.false,
            "false_alarms_per_hour": _ratio(self.false, self.hours),
            "false_lethal_cross": self.false_lethal_cross,
            "false_in_unusable_signal": self.false_in_unusable,
            "time_to_alarm_s": {"median": _q(d, 50), "p90": _q(d, 90), "max": _q(d, 100),
                                "n": int(d.size)},
        }


def alarm_episodes(transitions: tuple[AlarmTransition, ...] | list[AlarmTransition],
                   conditions: Condition | frozenset[Condition], end: float
                   ) -> list[AlarmEpisode]:
    """RAISED ... CLEARED pairs of one condition (or any of a set), by episode id."""
    wanted = conditions if isinstance(conditions, frozenset) else frozenset({conditions})
    open_: dict[str, AlarmTransition] = {}
    out = []
    for t in transitions:
        if t.condition not in wanted:
            continue
        if t.action is Action.RAISED:
            open_[t.episode_id] = t
        elif t.action is Action.CLEARED and t.episode_id in open_:
            r = open_.pop(t.episode_id)
            out.append(AlarmEpisode(r.onset, r.at, max(t.at, r.onset)))
    out += [AlarmEpisode(r.onset, r.at, max(end, r.onset)) for r in open_.values()]
    return sorted(out, key=lambda e: e.onset)


def _overlaps(a: Span, b: Span) -> bool:
    return min(a[1], b[1]) > max(a[0], b[0])


def score_condition(ref: list[Span], alarms: list[AlarmEpisode], hours: float,
                    min_s: float, other_ref: list[Span] = (),
                    unusable: list[Span] = ()) -> ConditionScore:
    s = ConditionScore(hours=hours, ref=len(ref), alarms=len(alarms))
    for r in ref:
        required = r[1] - r[0] >= min_s
        s.ref_required += required
        hits = [a for a in alarms if _overlaps(r, (a.onset, a.end))]
        if hits:
            s.detected += 1
            s.detected_required += required
            s.delays.append(max(0.0, hits[0].raised - r[0]))
    for a in alarms:
        span = (a.onset, max(a.end, a.onset + 1e-3))
        if any(_overlaps(span, r) for r in ref):
            continue
        if any(_overlaps(span, r) for r in other_ref):
            s.false_lethal_cross += 1
            continue
        s.false += 1
        s.false_in_unusable += any(u[0] <= a.onset < u[1] for u in unusable)
    return s


def unusable_spans(windows: tuple[QualityWindow, ...], fs: float = FS_INTERNAL) -> list[Span]:
    """Quality windows judged unusable, in seconds (the replay starts at device time 0)."""
    return [(w.start / fs, w.end / fs) for w in windows if not w.quality.usable]


def score_record(path: Path, classifier=None) -> dict[str, ConditionScore]:
    """Replay one WFDB record (channel 0) and score every condition."""
    x, fs = read_signal(path, channel=0)
    rep = replay(x, fs, classifier=classifier)
    end = x.size / fs
    hours = end / 3600
    refs = {name: [(a / fs, b / fs) for a, b in rhythm_episodes(path, rhythms, x.size)]
            for name, (_, rhythms, _) in CONDITIONS.items()}
    unusable = unusable_spans(rep.quality)
    out = {}
    for name, (cond, _, min_s) in CONDITIONS.items():
        other = refs["VT" if name == "VF" else "VF"] if name in LETHAL else []
        out[name] = score_condition(refs[name], alarm_episodes(rep.transitions, cond, end),
                                    hours, min_s, other, unusable)
    return out


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


def _q(d: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(d, q)), 1) if d.size else None


# ------------------------------------------------------------------ the run
NST_SNRS = ("24", "18", "12", "06", "00", "_6")
AF_RECORDS = ("201", "202", "203", "210", "219", "221", "222")
LETHAL_RECORDS = ("200", "203", "205", "207", "210", "213", "214", "215", "223", "233")


def _job(args: tuple[str, str]) -> tuple[str, str, dict[str, ConditionScore]]:
    from ..eval_cmd import load_classifier      # one model session per worker process
    db, path = args
    return db, Path(path).name, score_record(Path(path), load_classifier(None))


def evaluate(data: Path, jobs: int = 2, records: list[str] | None = None,
             progress=None) -> dict:
    """All MIT-BIH records (or ``records``) and the Noise Stress Test, pooled per group."""
    from concurrent.futures import ProcessPoolExecutor

    from .records import list_records
    mitdb, nstdb = data / "mitdb", data / "nstdb"
    names = records or list_records(mitdb)
    todo = [("mitdb", str(mitdb / r)) for r in names]
    if nstdb.is_dir() and records is None:
        todo += [("nstdb", str(nstdb / f"{r}e{s}")) for s in NST_SNRS for r in ("118", "119")]
    results = []
    with ProcessPoolExecutor(max(1, min(jobs, len(todo)))) as pool:
        for res in pool.map(_job, todo, chunksize=1):
            results.append(res)
            if progress is not None:
                progress.step(res[1])
    return summarise(results)


def summarise(results: list[tuple[str, str, dict[str, ConditionScore]]]) -> dict:
    groups: dict[str, dict[str, ConditionScore]] = {}
    per_record: dict[str, dict] = {}
    for db, rec, scores in results:
        keys = ["MIT-BIH, all records"] if db == "mitdb" else [f"NST {_snr(rec)} dB"]
        if db == "mitdb" and rec in AF_RECORDS:
            keys.append("MIT-BIH, records with AF")
        if db == "mitdb" and not any(s.ref for s in scores.values()):
            keys.append("MIT-BIH, records without AF, VT or VF")
        for key in keys:
            g = groups.setdefault(key, {n: ConditionScore() for n in CONDITIONS})
            for n, s in scores.items():
                g[n].add(s)
        if db == "mitdb" and (rec in AF_RECORDS or rec in LETHAL_RECORDS
                              or any(s.false for s in scores.values())):
            per_record[rec] = {n: s.to_dict() for n, s in scores.items()}
    order = sorted(groups, key=lambda k: (not k.startswith("MIT"), k))
    return {"groups": {k: {n: s.to_dict() for n, s in groups[k].items()} for k in order},
            "records": dict(sorted(per_record.items()))}


def _snr(record: str) -> str:
    s = record.split("e", 1)[1]
    return str(-int(s[1:])) if s.startswith("_") else str(int(s))


def render_markdown(summary: dict) -> str:
    lines = ["## Rhythm alarms end to end (MIT-BIH, Noise Stress Test)", "",
             "Alarm episodes of the streaming path (1 s chunks, shipped beat model) against "
             "the reference rhythm annotations; `ecgwatch/evaluation/rhythm_alarms.py` says "
             "how episodes are matched. Se counts reference episodes at least as long as the "
             "detector's minimum (AF 30 s).", "",
             "| records | condition | hours | reference episodes | detected | Se % | "
             "time to alarm median / p90 s | false alarms | per hour | "
             "false in unusable signal |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for group, conds in summary["groups"].items():
        for name, d in conds.items():
            se = d["sensitivity_required"]
            lat = d["time_to_alarm_s"]
            fph = d["false_alarms_per_hour"]
            lines.append(
                f"| {group} | {name} | {d['hours']:.1f} | {d['required_episodes']} | "
                f"{d['detected_required']} | {'-' if se is None else f'{100 * se:.1f}'} | "
                f"{_num(lat['median'])} / {_num(lat['p90'])} | {d['false_alarms']} | "
                f"{'-' if fph is None else f'{fph:.3f}'} | {d['false_in_unusable_signal']} |")
    lines += ["", "Per record (records with AF or ventricular runs, or with a false alarm):", "",
              "| record | " + " | ".join(f"{n} ref / det / false" for n in CONDITIONS) + " |",
              "|---" * (len(CONDITIONS) + 1) + "|"]
    for rec, conds in summary["records"].items():
        cells = [f"{d['reference_episodes']} / {d['detected']} / {d['false_alarms']}"
                 for d in conds.values()]
        lines.append(f"| {rec} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"
