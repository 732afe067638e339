"""``ecgwatch bench`` reports: the machine it ran on, ``report.json`` and ``report.md``.

The JSON holds every measured number plus the derived figures (rates,
ratios, KB per device) so that docs and tests read one file; the Markdown
is the same figures as tables for people.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bench_parts import MB, LongRun, Neurokit, Paired, Throughput
from .bench_profile import Profile

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATE = 5000.0            # device-s per CPU-s (issue 5)
TARGET_NK_RATIO = 30.0          # x neurokit2 ecg_process
TARGET_KB_PER_DEVICE = 100.0


@dataclass(frozen=True, slots=True)
class BenchResults:
    options: dict[str, Any]
    throughput: tuple[Throughput, ...]
    neurokit: Neurokit | None
    long_run: LongRun | None
    profile: Profile | None
    seconds: float              # wall time of the whole benchmark
    paired: tuple[Paired, ...] = ()


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, versions and the commit: what makes figures comparable."""
    import numpy
    import onnxruntime
    import scipy
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "cpu_model": _cpu_model(), "platform": platform.platform(),
        "python": sys.version.split()[0], "numpy": numpy.__version__,
        "scipy": scipy.__version__, "onnxruntime": onnxruntime.__version__,
    }
    info.update(_git())
    return info


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _git() -> dict[str, Any]:
    """The commit, and whether the tree had uncommitted changes (they may be measured too)."""
    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                               timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout.strip() if r.returncode == 0 else None
    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def throughput_dict(t: Throughput) -> dict[str, Any]:
    return {
        "devices": t.devices, "seconds": t.seconds, "device_seconds": t.device_seconds,
        "mix": t.mix, "chunks": t.chunks, "beats": t.beats, "labelled": t.labelled,
        "transitions": t.transitions, "model_calls": t.model_calls, "late": t.late,
        "cpu_s": round(t.cpu_s, 4), "wall_s": round(t.wall_s, 4),
        "device_s_per_cpu_s": round(t.rate, 1),
        "device_s_per_cpu_s_with_service_extras": round(t.rate_with_extras, 1),
        "device_s_per_wall_s": round(t.device_seconds / t.wall_s, 1),
        "us_per_chunk": round(t.cpu_s / max(t.chunks, 1) * 1e6, 1),
        "us_per_beat": round(t.cpu_s / max(t.beats, 1) * 1e6, 1),
        "stage_cpu_s": {k: round(v, 4) for k, v in t.stage_cpu_s.items()},
        "stage_wall_s": {k: round(v, 4) for k, v in t.stage_wall_s.items()},
        "memory": {"rss_baseline_mb": round(t.rss_baseline / MB, 1),
                   "rss_monitors_mb": round(t.rss_monitors / MB, 1),
                   "rss_end_mb": round(t.rss_end / MB, 1),
                   "kb_per_device_idle": round(t.kb_per_device_idle, 1),
                   "kb_per_device": round(t.kb_per_device, 1)},
    }


def to_json(r: BenchResults) -> dict[str, Any]:
    nk = r.neurokit
    process = next((m for m in nk.methods if m.name == "ecg_process"), None) if nk else None
    doc: dict[str, Any] = {
        "machine": machine_info(), "options": r.options, "seconds": round(r.seconds, 1),
        "targets": {"device_s_per_cpu_s": TARGET_RATE, "ratio_vs_ecg_process": TARGET_NK_RATIO,
                    "kb_per_device": TARGET_KB_PER_DEVICE},
        "throughput": [throughput_dict(t) for t in r.throughput],
        "neurokit": None, "ratios": [], "long_run": None, "profile": None,
    }
    if nk is not None:
        doc["neurokit"] = {"devices": nk.devices, "seconds": nk.seconds, "version": nk.version,
                           "methods": [{"name": m.name, "device_seconds": m.device_seconds,
                                        "cpu_s": round(m.cpu_s, 4), "wall_s": round(m.wall_s, 4),
                                        "failures": m.failures,
                                        "device_s_per_cpu_s": round(m.rate, 1)}
                                       for m in nk.methods]}
        doc["ratios"] = [{"devices": t.devices, **{
            f"vs_{m.name}": round(t.rate / m.rate, 2) if m.rate else None for m in nk.methods}}
            for t in r.throughput]
    doc["paired"] = [{"devices": p.devices, "seconds": p.seconds, "nk_devices": p.nk_devices,
                      "ecgwatch_cpu_s": round(p.ecgwatch_cpu_s, 4),
                      "nk_cpu_s": round(p.nk_cpu_s, 4), "nk_failures": p.nk_failures,
                      "ecgwatch_device_s_per_cpu_s": round(p.ecgwatch_rate, 1),
                      "ecg_process_device_s_per_cpu_s": round(p.nk_rate, 1),
                      "ratio_vs_ecg_process": round(p.ratio, 2)} for p in r.paired]
    if r.long_run is not None:
        doc["long_run"] = long_run_dict(r.long_run)
    if r.profile is not None:
        doc["profile"] = profile_dict(r.profile)
    doc["meets"] = {
        "device_s_per_cpu_s": all(t.rate >= TARGET_RATE for t in r.throughput),
        "ratio_vs_ecg_process": (all(t.rate / process.rate >= TARGET_NK_RATIO
                                     for t in r.throughput) if process and process.rate
                                 else None),
        "kb_per_device": all(t.kb_per_device <= TARGET_KB_PER_DEVICE for t in r.throughput),
        "paired_ratio_vs_ecg_process": (all(p.ratio >= TARGET_NK_RATIO for p in r.paired)
                                        if r.paired and all(p.nk_rate for p in r.paired)
                                        else None),
    }
    return doc


def long_run_dict(lr: LongRun) -> dict[str, Any]:
    return {"devices": lr.devices, "seconds": lr.seconds, "sample_every_s": lr.every,
            "rss_baseline_mb": round(lr.rss_baseline / MB, 1),
            "samples": [{"at_s": a, "rss_mb": round(m / MB, 2), "kb_per_device": round(k, 1),
                         "device_s_per_cpu_s": round(lr.devices * lr.every / c, 1) if c else None}
                        for a, m, k, c in zip(lr.at_s, lr.rss, lr.kb_per_device,
                                              lr.interval_cpu_s)],
            "growth_mb": round(lr.growth_mb, 2),
            "growth_kb_per_device": round(lr.growth_kb_per_device, 2),
            "slope_mb_per_min": round(lr.slope_mb_per_min, 3),
            "beats": lr.beats, "transitions": lr.transitions}


def profile_dict(p: Profile) -> dict[str, Any]:
    return {"devices": p.devices, "seconds": p.seconds, "chunks": p.chunks, "beats": p.beats,
            "plain_cpu_s": round(p.plain_cpu_s, 3), "profiled_cpu_s": round(p.profiled_cpu_s, 3),
            "overhead": round(p.overhead, 2),
            "stages": [{"stage": s.label, "depth": s.depth, "calls": s.calls,
                        "share": round(s.share, 4), "us_per_chunk": round(s.us_per_chunk, 1),
                        "us_per_beat": round(s.us_per_beat, 1)} for s in p.stages],
            "modules": [{"module": m, "share_own_time": round(f, 4)} for m, f in p.modules]}


def write_reports(r: BenchResults, out: Path) -> dict[str, Any]:
    """Write ``report.json`` and ``report.md`` under ``out``; return the JSON document."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    doc = to_json(r)
    (out / "report.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out / "report.md").write_text(render(doc))
    return doc


def render(doc: dict[str, Any]) -> str:
    """``report.md``: the JSON document as tables."""
    m = doc["machine"]
    lines = ["# ecgwatch bench", "",
             f"Commit `{m['commit']}`{' (uncommitted changes in the tree)' if m['dirty'] else ''}"
             f"; {m['cores']} cores ({m['cores_usable']} usable), {m['cpu_model']}; Python "
             f"{m['python']}, numpy {m['numpy']}, scipy {m['scipy']}, onnxruntime "
             f"{m['onnxruntime']}. One process; whole benchmark {doc['seconds']} s wall.", ""]
    lines += (_throughput_md(doc) + _neurokit_md(doc) + _paired_md(doc) + _memory_md(doc)
              + _profile_md(doc))
    return "\n".join(lines) + "\n"


def _throughput_md(doc: dict[str, Any]) -> list[str]:
    t = doc["targets"]
    out = ["## Part 1: in-process throughput", "",
           "decode_samples -> DeviceMonitor.push (every device) -> one BeatBatcher.run() per "
           "1 s tick with the shipped model -> apply_labels. CPU time by time.process_time.",
           f"Target: >= {t['device_s_per_cpu_s']:g} device-s per CPU-s.", "",
           "| devices | simulated s | device-s per CPU-s | with state()+tick() | per wall-s "
           "| us per chunk | us per beat | beats | model calls | alarm transitions |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in doc["throughput"]:
        out.append(f"| {r['devices']} | {r['seconds']} | {r['device_s_per_cpu_s']:.0f} | "
                   f"{r['device_s_per_cpu_s_with_service_extras']:.0f} | "
                   f"{r['device_s_per_wall_s']:.0f} | {r['us_per_chunk']:.0f} | "
                   f"{r['us_per_beat']:.0f} | {r['beats']} | {r['model_calls']} | "
                   f"{r['transitions']} |")
    out += ["", "CPU seconds per stage:", "",
            "| devices | decode | monitor push | beat model + labels | state()+tick() |",
            "|---:|---:|---:|---:|---:|"]
    for r in doc["throughput"]:
        s = r["stage_cpu_s"]
        out.append(f"| {r['devices']} | {s['decode']:.2f} | {s['monitor']:.2f} | "
                   f"{s['label']:.2f} | {s['service_extras']:.2f} |")
    if doc["throughput"]:
        mix = ", ".join(f"{k} {v}" for k, v in doc["throughput"][-1]["mix"].items())
        out += ["", f"Fleet mix at {doc['throughput'][-1]['devices']} devices: {mix}."]
    return out + [""]


def _neurokit_md(doc: dict[str, Any]) -> list[str]:
    nk = doc["neurokit"]
    if nk is None:
        return []
    out = [f"## neurokit2 {nk['version']} on the same signals", "",
           f"{nk['devices']} devices of the same fleet, {nk['seconds']} s each, whole signals "
           "(the decoded payloads), one process.", "",
           "| method | device-s per CPU-s | CPU s | failures |", "|---|---:|---:|---:|"]
    out += [f"| {m['name']} | {m['device_s_per_cpu_s']:.0f} | {m['cpu_s']:.2f} | "
            f"{m['failures']} |" for m in nk["methods"]]
    names = [m["name"] for m in nk["methods"]]
    out += ["", f"Ratio ecgwatch / neurokit2 (target >= {doc['targets']['ratio_vs_ecg_process']:g}"
            "x ecg_process):", "",
            "| devices | " + " | ".join(f"vs {n}" for n in names) + " |",
            "|---:|" + "---:|" * len(names)]
    out += [f"| {r['devices']} | " + " | ".join(f"{r['vs_' + n]:.2f}x" for n in names) + " |"
            for r in doc["ratios"]]
    return out + [""]


def _paired_md(doc: dict[str, Any]) -> list[str]:
    runs = doc.get("paired") or []
    if not runs:
        return []
    out = ["## ecgwatch and ecg_process in turns", "",
           "Each fleet through ecgwatch tick by tick, with `ecg_process` on the neurokit "
           "signals between the ticks, in one process: both sides timed in the same minutes, "
           "so the machine's drift cancels in the ratio (each `ecg_process` call with the "
           "default collector and ecgwatch's objects out of its reach). Target >= "
           f"{doc['targets']['ratio_vs_ecg_process']:g}x.", "",
           "| devices | simulated s | ecgwatch device-s per CPU-s | ecg_process signals | "
           "ecg_process device-s per CPU-s | ratio | ecg_process failures |",
           "|---:|---:|---:|---:|---:|---:|---:|"]
    out += [f"| {p['devices']} | {p['seconds']} | {p['ecgwatch_device_s_per_cpu_s']:.0f} | "
            f"{p['nk_devices']} | {p['ecg_process_device_s_per_cpu_s']:.1f} | "
            f"{p['ratio_vs_ecg_process']:.1f}x | {p['nk_failures']} |" for p in runs]
    return out + [""]


def _memory_md(doc: dict[str, Any]) -> list[str]:
    out = ["## Part 3: memory", "",
           f"RSS minus the baseline (fleet payloads and model loaded), per device; target <= "
           f"{doc['targets']['kb_per_device']:g} KB. The heap grows in steps, so only large "
           "fleets give a meaningful per-device figure.", "",
           "| devices | baseline MB | KB per device, monitors created | KB per device, after "
           "streaming |", "|---:|---:|---:|---:|"]
    out += [f"| {r['devices']} | {r['memory']['rss_baseline_mb']} | "
            f"{r['memory']['kb_per_device_idle']} | {r['memory']['kb_per_device']} |"
            for r in doc["throughput"]]
    lr = doc["long_run"]
    if lr is not None:
        out += ["", f"Long run: {lr['devices']} devices for {lr['seconds']} simulated s, RSS "
                f"every {lr['sample_every_s']} s. Growth from the first sample to the last: "
                f"{lr['growth_mb']} MB ({lr['growth_kb_per_device']} KB per device); trend "
                f"after the first sample {lr['slope_mb_per_min']} MB per simulated minute.", "",
                "| simulated s | RSS MB | KB per device | device-s per CPU-s |",
                "|---:|---:|---:|---:|"]
        out += [f"| {s['at_s']} | {s['rss_mb']} | {s['kb_per_device']} | "
                f"{s['device_s_per_cpu_s']} |" for s in lr["samples"]]
    return out + [""]


def _profile_md(doc: dict[str, Any]) -> list[str]:
    p = doc["profile"]
    if p is None:
        return []
    out = ["## Where the time goes (cProfile)", "",
           f"{p['devices']} devices x {p['seconds']} s: {p['chunks']} chunks, {p['beats']} "
           f"beats. Profiler overhead x{p['overhead']}; the us figures are scaled back by it "
           "(estimates). Indented stages are part of the one above. Listing: profile.txt.", "",
           "| stage | calls | share | us per chunk | us per beat |", "|---|---:|---:|---:|---:|"]
    out += [f"| {'&nbsp;&nbsp;' * s['depth']}{s['stage']} | {s['calls']} | "
            f"{s['share'] * 100:.1f} % | {s['us_per_chunk']:.1f} | {s['us_per_beat']:.1f} |"
            for s in p["stages"]]
    out += ["", "Own time by module:", "", "| module | share |", "|---|---:|"]
    out += [f"| {m['module']} | {m['share_own_time'] * 100:.1f} % |" for m in p["modules"]]
    return out + [""]


__all__ = ["BenchResults", "machine_info", "render", "to_json", "write_reports"]
