"""Figures of ``ecgwatch bench --e2e`` from what one run recorded, and its reports.

Definitions (also in docs/performance.md):

* **Lost chunks**: published (and acknowledged by the broker) minus
  ``chunks_processed`` in the service's final metrics (summed over workers);
  split into rejected (``rejects_total``), dropped by the full inbox
  (``inbox_overflow``) and the rest (never taken from the broker before the
  drain limit). These counts are the *last* metrics the consumer received:
  ``counts_age_s`` says how long before the service's stop they came; more
  than ``STALE_COUNTS_S`` means its publications stalled (the metrics
  interval is 10 s) and the counts are from then, not from the end.
* **Processing latency**: the service's own ``processing_latency_ms``
  (inbox arrival -> alerts and state handed to the MQTT client), whose
  percentiles cover its last 10,000 samples messages. Over the metrics
  snapshots received in the measured window: the median of their p50s, the
  worst p99 and the worst max.
* **Throughput**: ``chunks_processed`` between the first and the last metrics
  snapshot of each worker inside the measured window, over the service's own
  ``uptime_s`` between them (summed over workers); runs too short for two
  snapshots use the whole run. Per service CPU-s: that rate times the window
  over the service's CPU seconds in the window.
* **Alarm latency** of a scripted event: consumer arrival wall time of the
  RAISED alert minus the publication wall time of the chunk holding the
  event's scripted onset sample. The alarm's **evidence window** is what it
  reports itself, ``at - onset`` (device seconds from the onset it assigns to
  the moment it could decide); target: latency <= evidence + 1.5 s.
  **Delivery** is arrival minus the publication of the chunk holding ``at``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ingest.topics import METRICS_TOPIC, REJECTS_TOPIC

from .bench_e2e import RawRun
from .bench_e2e_pub import CHUNK_S, DEVICE_T0
from .bench_report import machine_info

TARGET_P99_MS = 250.0           # processing latency at 1,000 devices (issue 5)
ALARM_SLACK_S = 1.5             # alarm latency target: evidence window + this
MAX_PUB_LAG_S = 0.5             # a publisher later than this was not real time
STALE_COUNTS_S = 15.0           # last metrics older than this at the stop: counts are stale
ONSET_TOLERANCE_S = 10.0        # an alert's onset may precede the scripted one (asystole:
#                                 the last beat) by this much and still be that event's


def pct(values: list[float], scale: float = 1.0) -> dict[str, Any]:
    """p50 / p99 / max (times ``scale``, rounded) and the count; None when empty."""
    if not values:
        return {"p50": None, "p99": None, "max": None, "n": 0}
    a = np.asarray(values) * scale
    p50, p99 = np.percentile(a, (50, 99))
    return {"p50": round(float(p50), 3), "p99": round(float(p99), 3),
            "max": round(float(a.max()), 3), "n": int(a.size)}


def _by_topic(raw: RawRun, prefix: str) -> dict[str, list[tuple[float, dict]]]:
    out: dict[str, list[tuple[float, dict]]] = {}
    for topic, payload, at in raw.messages:
        if topic == prefix or topic.startswith(prefix + "/"):
            out.setdefault(topic, []).append((at, json.loads(payload)))
    return out


def chunk_figures(raw: RawRun) -> dict[str, Any]:
    metrics = _by_topic(raw, METRICS_TOPIC)
    final = [s[-1][1] for s in metrics.values()]
    # The oldest worker's last word; the final metrics come just after the stop.
    last = min((s[-1][0] for s in metrics.values()), default=None)
    age = None if last is None else round(max(0.0, raw.stopped_at - last), 1)
    total = {k: sum(d[k] for d in final) for k in
             ("chunks_in", "chunks_processed", "rejects_total", "inbox_overflow",
              "duplicates", "gaps_total", "overload_episodes")}
    rejects: Counter[str] = Counter()
    gaps: Counter[str] = Counter()
    for d in final:
        rejects.update(d["rejects"])
        gaps.update(d["gaps"])
    published = raw.pub.published
    lost = published - total["chunks_processed"]
    return {"published": published, "unconfirmed_by_broker": raw.pub.unconfirmed,
            "processed": total["chunks_processed"], "lost": lost,
            "rejected": total["rejects_total"], "rejects": dict(sorted(rejects.items())),
            "inbox_dropped": total["inbox_overflow"],
            "not_taken": lost - total["rejects_total"] - total["inbox_overflow"],
            "duplicates": total["duplicates"], "gaps": total["gaps_total"],
            "gaps_by_reason": dict(sorted(gaps.items())),
            "overload_episodes": total["overload_episodes"],
            "reject_messages_seen": sum(t == REJECTS_TOPIC for t, _, _ in raw.messages),
            "workers_reporting": len(final), "counts_age_s": age,
            "counts_stale": age is None or age > STALE_COUNTS_S}


def processing_latency(raw: RawRun) -> dict[str, Any]:
    t_a, t_b = raw.window
    series = _by_topic(raw, METRICS_TOPIC).values()
    source = "window"
    snaps = [d["processing_latency_ms"] for s in series
             for at, d in s if t_a <= at <= t_b + 1.0 and d["processing_latency_ms"]["n"]]
    if not snaps:
        # A run shorter than the metrics interval: the final metrics, which
        # cover the whole run including the warm-up.
        source = "final"
        snaps = [s[-1][1]["processing_latency_ms"] for s in series
                 if s[-1][1]["processing_latency_ms"]["n"]]
    if not snaps:
        return {"p50": None, "p99": None, "max": None, "snapshots": 0, "from": None}
    return {"p50": float(np.median([s["p50"] for s in snaps])),
            "p99": max(s["p99"] for s in snaps), "max": max(s["max"] for s in snaps),
            "snapshots": len(snaps), "from": source}


def throughput(raw: RawRun) -> dict[str, Any]:
    """Device-s processed per wall-s and per service CPU-s within the window."""
    t_a, t_b = raw.window
    wall = t_b - t_a
    rate, source = 0.0, "window"
    for series in _by_topic(raw, METRICS_TOPIC).values():
        inside = [d for at, d in series if t_a <= at <= t_b + 1.0]
        if len(inside) < 2 or inside[-1]["uptime_s"] <= inside[0]["uptime_s"]:
            source = "whole run"
            break
        rate += ((inside[-1]["chunks_processed"] - inside[0]["chunks_processed"]) * CHUNK_S
                 / (inside[-1]["uptime_s"] - inside[0]["uptime_s"]))
    if source != "window":
        # Too short for two snapshots: everything processed over the publishing time.
        rate = chunk_figures(raw)["processed"] * CHUNK_S / (raw.warmup + raw.seconds)
    cpu = raw.cpu["service"]
    return {"offered_device_s_per_wall_s": raw.devices / CHUNK_S,
            "device_s_per_wall_s": round(rate, 1), "kept_up": round(rate * CHUNK_S /
                                                                    raw.devices, 3),
            "device_s_per_cpu_s": round(rate * wall / cpu, 1) if cpu > 0 else None,
            "from": source, "window_s": round(wall, 2)}


def publisher(raw: RawRun) -> dict[str, Any]:
    lags = [x for tick in raw.pub.lag_s for x in tick]
    lag = pct(lags, 1000.0)
    kept_up = bool(lags) and max(lags) <= MAX_PUB_LAG_S and raw.pub.unconfirmed == 0
    return {"lag_ms": lag, "kept_up": kept_up, "render_s": round(raw.pub.render_s, 1),
            "cpu_s": round(raw.pub.cpu_s, 2), "mix": raw.pub.mix}


def alarms(raw: RawRun) -> dict[str, Any]:
    """Match each scripted onset to the first RAISED alert of its condition on its device."""
    index = {d: i for i, d in enumerate(raw.pub.ids)}
    ticks = len(raw.pub.slot_wall)
    raised: dict[str, tuple[float, dict]] = {}
    for topic, payload, at in raw.messages:
        if topic.endswith("/alerts"):
            doc = json.loads(payload)
            if doc["action"] == "raised" and doc["id"] not in raised:   # QoS 1 may repeat
                raised[doc["id"]] = (at, doc)
    pool = sorted(raised.values(), key=lambda x: x[0])
    used: set[str] = set()
    rows = []
    for ev in raw.pub.truth:
        match = next(((at, d) for at, d in pool if d["id"] not in used
                      and d["device_id"] == ev.device and d["condition"] == ev.condition
                      and ev.onset_s - ONSET_TOLERANCE_S <= d["onset"] - DEVICE_T0
                      <= ev.offset_s + CHUNK_S), None)
        row: dict[str, Any] = {"device": ev.device, "condition": ev.condition,
                               "scripted_onset_s": round(ev.onset_s, 3), "raised": False}
        if match is not None:
            at, d = match
            used.add(d["id"])
            k_on = min(int(ev.onset_s // CHUNK_S), ticks - 1)
            k_at = min(max(int((d["at"] - DEVICE_T0) // CHUNK_S), k_on), ticks - 1)
            latency = at - raw.pub.publish_wall(index[ev.device], k_on, raw.slots)
            evidence = d["at"] - d["onset"]
            row.update(raised=True, latency_s=round(latency, 3), evidence_s=round(evidence, 3),
                       excess_s=round(latency - evidence, 3),
                       delivery_s=round(at - raw.pub.publish_wall(index[ev.device], k_at,
                                                                  raw.slots), 3),
                       meets=latency <= evidence + ALARM_SLACK_S)
        rows.append(row)
    unscripted = Counter(d["condition"] for _, d in pool if d["id"] not in used)
    per: dict[str, Any] = {}
    for cond in sorted({r["condition"] for r in rows}):
        rs = [r for r in rows if r["condition"] == cond]
        hit = [r for r in rs if r["raised"]]
        per[cond] = {"scripted": len(rs), "raised": len(hit),
                     "meets": sum(r["meets"] for r in hit),
                     "latency_s": pct([r["latency_s"] for r in hit]),
                     "evidence_s": pct([r["evidence_s"] for r in hit]),
                     "excess_s": pct([r["excess_s"] for r in hit]),
                     "delivery_s": pct([r["delivery_s"] for r in hit])}
    hit = [r for r in rows if r["raised"]]
    return {"scripted": len(rows), "matched": len(hit), "meets": sum(r["meets"] for r in hit),
            "excess_s": pct([r["excess_s"] for r in hit]),
            "delivery_s": pct([r["delivery_s"] for r in hit]),
            "by_condition": per, "unscripted_raised": dict(sorted(unscripted.items())),
            "events": rows}


def analyse(raw: RawRun) -> dict[str, Any]:
    wall = raw.window[1] - raw.window[0]
    pub = publisher(raw)
    return {"devices": raw.devices, "workers": raw.workers, "warmup_s": raw.warmup,
            "seconds": raw.seconds, "slots": raw.slots, "valid": pub["kept_up"],
            "chunks": chunk_figures(raw), "processing_latency_ms": processing_latency(raw),
            "throughput": throughput(raw),
            "cpu_s": {k: round(v, 2) for k, v in raw.cpu.items()},
            "cpu_pct_of_core": {k: round(100 * v / wall, 1) for k, v in raw.cpu.items()},
            "loadavg_1min": [round(x, 2) for x in raw.loadavg], "publisher": pub,
            "alarms": alarms(raw), "drained": raw.drained,
            "drain_s": round(raw.drained_s, 1), "service_exit": raw.service_exit,
            "service_log_tail": raw.service_log}


def to_json(runs: list[RawRun], opts: dict[str, Any], seconds: float) -> dict[str, Any]:
    return {"machine": machine_info(), "options": opts, "seconds": round(seconds, 1),
            "targets": {"processing_p99_ms_at_1000": TARGET_P99_MS,
                        "alarm_latency": f"evidence window + {ALARM_SLACK_S} s",
                        "publisher_max_lag_s": MAX_PUB_LAG_S},
            "runs": [analyse(r) for r in runs]}


def write_reports(runs: list[RawRun], opts: dict[str, Any], seconds: float,
                  out: Path) -> dict[str, Any]:
    """Write ``report.json`` and ``report.md`` under ``out``; return the JSON document."""
    doc = to_json(runs, opts, seconds)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out / "report.md").write_text(render(doc))
    return doc


def _f(v: Any, fmt: str = "{:.0f}") -> str:
    return "-" if v is None else fmt.format(v)


def render(doc: dict[str, Any]) -> str:
    """``report.md``: the JSON document as tables."""
    m, o = doc["machine"], doc["options"]
    lines = ["# ecgwatch bench --e2e", "",
             f"Commit `{m['commit']}`{' (uncommitted changes in the tree)' if m['dirty'] else ''}"
             f"; {m['cores']} cores ({m['cores_usable']} usable), {m['cpu_model']}; Python "
             f"{m['python']}. mosquitto, `ecgwatch serve` and the publisher all on this machine. "
             f"{o['warmup']} s warm-up + {o['seconds']} s measured per run, 1 s binary chunks "
             f"at 250 Hz in {o['slots']} publication groups per second; whole benchmark "
             f"{doc['seconds']} s wall.", "",
             "## Part 2: end to end through mosquitto", "",
             "| devices | workers | valid | published | processed | lost (rejected / inbox "
             "dropped / not taken) | service CPU % of a core | processing ms p50 / p99 / max "
             "| alarms raised / scripted | alarm latency - evidence"
             " s p50 / max | meets alarm target | load avg |",
             "|---:|---:|---|---:|---:|---|---:|---|---:|---|---:|---|"]
    for r in doc["runs"]:
        c, pl, a = r["chunks"], r["processing_latency_ms"], r["alarms"]
        valid = "yes" if r["valid"] else "**no: publisher lagged**"
        processed = str(c["processed"]) if not c["counts_stale"] else \
            f"{c['processed']} **(counts from {_f(c['counts_age_s'])} s before the stop)**"
        lines.append(
            f"| {r['devices']} | {r['workers']} | {valid} | {c['published']} | {processed} "
            f"| {c['lost']} ({c['rejected']} / {c['inbox_dropped']} / {c['not_taken']}) | "
            f"{r['cpu_pct_of_core']['service']:.0f} | {_f(pl['p50'], '{:.1f}')} / "
            f"{_f(pl['p99'], '{:.1f}')} / {_f(pl['max'], '{:.1f}')} | "
            f"{a['matched']} / {a['scripted']} | "
            f"{_f(a['excess_s']['p50'], '{:.2f}')} / {_f(a['excess_s']['max'], '{:.2f}')} | "
            f"{a['meets']} / {a['matched']} | {r['loadavg_1min'][0]:.2f} -> "
            f"{r['loadavg_1min'][1]:.2f} |")
    lines += ["", f"Targets: processing p99 <= {doc['targets']['processing_p99_ms_at_1000']:g} ms "
              f"at 1,000 devices; alarm latency <= {doc['targets']['alarm_latency']}. A run is "
              f"valid when every publication group started within "
              f"{doc['targets']['publisher_max_lag_s']:g} s of its due time and the broker "
              "acknowledged every chunk.", "",
              "## Workers: device-seconds kept up with", "",
              "| devices | workers | offered device-s per wall-s | processed device-s per wall-s "
              "| kept up | device-s per service CPU-s | service CPU % | publisher CPU % | "
              "mosquitto CPU % | publisher lag ms p99 / max |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in doc["runs"]:
        t, cp, lag = r["throughput"], r["cpu_pct_of_core"], r["publisher"]["lag_ms"]
        lines.append(f"| {r['devices']} | {r['workers']} | {t['offered_device_s_per_wall_s']:.0f}"
                     f" | {t['device_s_per_wall_s']:.0f} | {100 * t['kept_up']:.1f} % | "
                     f"{_f(t['device_s_per_cpu_s'])} | {cp['service']:.0f} | "
                     f"{cp['publisher']:.0f} | {cp['broker']:.0f} | {_f(lag['p99'])} / "
                     f"{_f(lag['max'])} |")
    lines += ["", "## Alarm latency by condition", "",
              "Seconds. Latency: consumer arrival minus publication of the chunk holding the "
              "scripted onset; evidence: the alert's own `at - onset`; delivery: arrival minus "
              "publication of the chunk holding `at`.", "",
              "| devices | workers | condition | raised / scripted | latency p50 / max | "
              "evidence p50 | latency - evidence p50 / max | delivery p50 / max | meets |",
              "|---:|---:|---|---:|---|---:|---|---|---:|"]
    for r in doc["runs"]:
        for cond, a in r["alarms"]["by_condition"].items():
            lines.append(
                f"| {r['devices']} | {r['workers']} | {cond} | {a['raised']} / {a['scripted']} | "
                f"{_f(a['latency_s']['p50'], '{:.2f}')} / {_f(a['latency_s']['max'], '{:.2f}')}"
                f" | {_f(a['evidence_s']['p50'], '{:.2f}')} | "
                f"{_f(a['excess_s']['p50'], '{:.2f}')} / {_f(a['excess_s']['max'], '{:.2f}')} | "
                f"{_f(a['delivery_s']['p50'], '{:.2f}')} / {_f(a['delivery_s']['max'], '{:.2f}')}"
                f" | {a['meets']} |")
        if r["alarms"]["unscripted_raised"]:
            extra = ", ".join(f"{k} {v}" for k, v in r["alarms"]["unscripted_raised"].items())
            lines.append(f"| {r['devices']} | {r['workers']} | (not scripted: {extra}) "
                         "| | | | | | |")
    return "\n".join(lines) + "\n"
