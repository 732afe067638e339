"""Smoke run of ``ecgwatch bench --quick``: the reports are written and hold positive counts.

No assertion on timings: the machine is shared and the figures vary; what
must not rot is that every part still runs and reports what it measured.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecgwatch import bench, cli


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("bench")
    # Through the real command line, as a user would run it.
    assert cli.main(["bench", "--quick", "--devices", "2", "3", "--out", str(out)]) == 0
    return out, json.loads((out / "report.json").read_text())


def test_quick_run_writes_both_reports_and_the_profile_listing(report) -> None:
    out, _ = report
    for name in ("report.json", "report.md", "profile.txt"):
        assert (out / name).stat().st_size > 0, name
    md = (out / "report.md").read_text()
    for heading in ("Part 1: in-process throughput", "neurokit2", "ecg_process in turns",
                    "Part 3: memory", "Where the time goes"):
        assert heading in md


def test_report_names_the_machine_and_the_commit(report) -> None:
    _, doc = report
    m = doc["machine"]
    assert m["cores"] >= 1
    for key in ("cpu_model", "python", "numpy", "scipy", "onnxruntime", "commit", "dirty"):
        assert key in m
    assert m["python"] and m["numpy"] and m["onnxruntime"]


def test_every_fleet_size_ran_the_whole_path_with_positive_counts(report) -> None:
    _, doc = report
    runs = doc["throughput"]
    assert [r["devices"] for r in runs] == [2, 3]
    for r in runs:
        assert r["seconds"] == bench.QUICK["seconds"]
        assert r["chunks"] == r["devices"] * r["seconds"]
        assert r["beats"] > 0 and r["model_calls"] > 0 and r["labelled"] > 0
        assert r["late"] == 0
        assert r["cpu_s"] > 0 and r["device_s_per_cpu_s"] > 0
        assert set(r["stage_cpu_s"]) == {"decode", "monitor", "label", "service_extras"}
        assert r["memory"]["rss_end_mb"] > 0 and "kb_per_device" in r["memory"]
        assert sum(r["mix"].values()) == r["devices"]


def test_neurokit_ratios_long_run_and_profile_are_reported(report) -> None:
    _, doc = report
    nk = doc["neurokit"]
    assert {m["name"] for m in nk["methods"]} == {"ecg_process", "ecg_clean+ecg_peaks"}
    assert all(m["device_s_per_cpu_s"] > 0 for m in nk["methods"])
    assert [r["devices"] for r in doc["ratios"]] == [2, 3]
    assert all(r["vs_ecg_process"] > 0 for r in doc["ratios"])
    lr = doc["long_run"]
    assert len(lr["samples"]) == bench.QUICK["long_seconds"] // bench.QUICK["sample_every"]
    assert all(s["rss_mb"] > 0 for s in lr["samples"]) and lr["beats"] > 0
    p = doc["profile"]
    assert p["chunks"] > 0 and p["beats"] > 0 and p["overhead"] > 0
    stages = {s["stage"]: s for s in p["stages"]}
    assert stages["DeviceMonitor.push"]["calls"] == p["chunks"]
    assert set(doc["meets"]) == {"device_s_per_cpu_s", "ratio_vs_ecg_process", "kb_per_device",
                                 "paired_ratio_vs_ecg_process"}


def test_ecg_process_in_turns_times_both_sides_over_the_same_ticks(report) -> None:
    _, doc = report
    [p] = doc["paired"]
    q = bench.QUICK
    assert ([p["devices"]], p["seconds"], p["nk_devices"]) == (
        q["paired_devices"], q["seconds"], q["neurokit_devices"])
    assert p["ecgwatch_cpu_s"] > 0 and p["nk_cpu_s"] > 0 and p["nk_failures"] == 0
    assert p["ratio_vs_ecg_process"] == pytest.approx(
        p["ecgwatch_device_s_per_cpu_s"] / p["ecg_process_device_s_per_cpu_s"], rel=1e-2)
    assert doc["meets"]["paired_ratio_vs_ecg_process"] == (p["ratio_vs_ecg_process"] >= 30)


def test_ecg_process_in_turns_gives_the_fleet_its_collector_back() -> None:
    import gc

    from ecgwatch.bench_parts import run_neurokit, run_paired
    before = gc.get_threshold()
    p = run_paired(devices=2, seconds=4, nk_devices=3)
    # FleetRunner tunes the collector for the fleet; the calls in between get the
    # interpreter's thresholds and give the fleet's back.
    from ecgwatch.service import GC_THRESHOLDS
    assert gc.get_threshold() == tuple(GC_THRESHOLDS)
    assert gc.get_freeze_count() == 0
    assert p.nk_devices == 3 and p.nk_cpu_s > 0
    # The same signals as the neurokit part (a fleet's lead-off device fails both).
    alone = run_neurokit(3, 4)
    assert p.nk_failures == next(m.failures for m in alone.methods if m.name == "ecg_process")
    gc.set_threshold(*before)


def test_impossible_options_are_refused_with_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        bench.main(["--devices", "0", "--out", "unused"])
    assert e.value.code == 2
    assert "--devices must all be at least 1" in capsys.readouterr().err


# -- ecgwatch bench --e2e: through mosquitto, the service as a subprocess ------

@pytest.fixture(scope="module")
def e2e_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    from ecgwatch.broker import find_mosquitto
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    out = tmp_path_factory.mktemp("bench-e2e")
    # 20 devices x (2 s warm-up + 5 s) in real time: a few seconds plus start-up.
    assert cli.main(["bench", "--e2e", "--quick", "--out", str(out)]) == 0
    return out, json.loads((out / "report.json").read_text())


def test_e2e_quick_run_loses_no_chunk_and_reports_every_figure(e2e_report) -> None:
    out, doc = e2e_report
    from ecgwatch import bench_e2e
    q = bench_e2e.QUICK
    assert doc["machine"]["cores"] >= 1 and "commit" in doc["machine"]
    [run] = doc["runs"]
    assert (run["devices"], run["workers"]) == (q["devices"][0], q["workers"][0])
    c = run["chunks"]
    assert c["published"] == q["devices"][0] * (q["warmup"] + q["seconds"])
    assert c["unconfirmed_by_broker"] == 0
    assert c["processed"] == c["published"] and c["lost"] == 0, (c, run["service_log_tail"])
    assert c["rejected"] == 0 and c["inbox_dropped"] == 0 and c["duplicates"] == 0
    assert c["workers_reporting"] == 1 and run["drained"] and run["service_exit"] == 0
    assert not c["counts_stale"]                # the final metrics came at the stop
    # The broker's notices are kept: who connected, and any disconnect or drop.
    broker_log = (out / f"broker-{run['devices']}x{run['workers']}.log").read_text()
    assert "New client connected" in broker_log
    # Figures are present (values are timings: not asserted).
    assert run["processing_latency_ms"]["snapshots"] >= 1
    assert run["cpu_s"]["service"] > 0 and run["throughput"]["device_s_per_wall_s"] > 0
    assert run["publisher"]["lag_ms"]["n"] == q["slots"] * (q["warmup"] + q["seconds"])
    assert isinstance(run["valid"], bool) and len(run["loadavg_1min"]) == 2
    md = (out / "report.md").read_text()
    for heading in ("Part 2: end to end through mosquitto", "Workers: device-seconds kept up",
                    "Alarm latency by condition"):
        assert heading in md


def test_alarm_latency_is_arrival_minus_publication_of_the_onset_chunk() -> None:
    """The definition, on a hand-made run: onset at 20.4 s is in chunk 20, published
    at wall 1000 + 20 + 1 = 1021; the alert arrives at 1025.2 and says onset 19.9,
    at 23.9 (evidence 4 s): latency 4.2 s, 0.2 s over the evidence, within target.
    An alert of another condition is reported as not scripted."""
    from ecgwatch.bench_e2e import RawRun
    from ecgwatch.bench_e2e_pub import DEVICE_T0, Onset, PubResult
    from ecgwatch.bench_e2e_report import alarms

    ticks, slots = 30, 1
    pub = PubResult(("d1",), {"asystole": 1}, (Onset("d1", 0, "asystole", "asystole",
                                                     20.4, 26.4),),
                    ticks, 0, tuple((1000.0 + k + 1,) for k in range(ticks)),
                    tuple((0.0,) for _ in range(ticks)), 0.1, 0.1)

    def alert(cond: str, onset: float, at: float) -> bytes:
        return json.dumps({"id": f"{cond}-raised", "device_id": "d1", "condition": cond,
                            "action": "raised", "onset": DEVICE_T0 + onset,
                            "at": DEVICE_T0 + at}).encode()

    msgs = [("ecg/v1/d1/alerts", alert("asystole", 19.9, 23.9), 1025.2),
            ("ecg/v1/d1/alerts", alert("asystole", 19.9, 23.9), 1025.3),   # QoS 1 repeat
            ("ecg/v1/d1/alerts", alert("leads_off", 5.0, 9.0), 1010.5)]
    raw = RawRun(1, 1, 0, ticks, slots, 1000.0, (1000.0, 1030.0), pub, msgs,
                 {"service": 1.0, "publisher": 0.1, "broker": 0.1}, (0.0, 0.0), 0.0, True,
                 1031.0, 0, "")
    a = alarms(raw)
    [ev] = a["events"]
    assert ev["raised"] and ev["latency_s"] == pytest.approx(4.2)
    assert ev["evidence_s"] == pytest.approx(4.0) and ev["excess_s"] == pytest.approx(0.2)
    assert ev["delivery_s"] == pytest.approx(1025.2 - 1024.0) and ev["meets"]
    assert (a["scripted"], a["matched"], a["meets"]) == (1, 1, 1)
    assert a["unscripted_raised"] == {"leads_off": 1}


def test_counts_from_metrics_long_before_the_stop_are_marked_stale() -> None:
    """The collapse of 2,000 devices on one worker was first read as "10,409 chunks
    processed": the last metrics the consumer got, 60 s before the stop, after
    which the service published nothing. Such counts are now flagged."""
    from ecgwatch.bench_e2e import RawRun
    from ecgwatch.bench_e2e_pub import PubResult
    from ecgwatch.bench_e2e_report import chunk_figures, render, to_json

    from ecgwatch.metrics import Counters

    def metrics(processed: int, uptime: float) -> bytes:
        c = Counters()                          # the service's own format
        for _ in range(processed):
            c.count_in()
            c.count_processed()
            c.record_latency(0.5)
        return c.to_json(uptime_s=uptime)

    ticks = 75
    pub = PubResult(("d1",), {"normal": 1}, (), ticks, 0,
                    tuple((1000.0 + k + 1,) for k in range(ticks)),
                    tuple((0.0,) for _ in range(ticks)), 0.1, 0.1)

    def run(last_metrics_at: float) -> RawRun:
        msgs = [("ecgwatch/v1/metrics", metrics(5, 10.0), 1010.0),
                ("ecgwatch/v1/metrics", metrics(9, last_metrics_at - 1000.0), last_metrics_at)]
        return RawRun(1, 1, 15, 60, 1, 1000.0, (1015.0, 1075.0), pub, msgs,
                      {"service": 1.0, "publisher": 0.1, "broker": 0.1}, (0.0, 0.0), 30.0,
                      False, 1106.0, None, "")

    stale = chunk_figures(run(1020.0))
    assert (stale["processed"], stale["counts_age_s"], stale["counts_stale"]) == (9, 86.0, True)
    fresh = chunk_figures(run(1106.3))          # the final metrics, just after SIGTERM
    assert (fresh["counts_age_s"], fresh["counts_stale"]) == (0.0, False)
    doc = to_json([run(1020.0)], {"warmup": 15, "seconds": 60, "slots": 1}, 1.0)
    assert "| 9 **(counts from 86 s before the stop)** |" in render(doc)
    doc = to_json([run(1106.3)], {"warmup": 15, "seconds": 60, "slots": 1}, 1.0)
    assert "| 9 |" in render(doc) and "before the stop" not in render(doc)


def test_alarm_onset_placement_script_matches_scripted_events(capsys) -> None:
    # bench/alarm_onsets.py: the e2e bench's alarm matching without a broker.
    import importlib.util
    path = Path(__file__).resolve().parents[1] / "bench" / "alarm_onsets.py"
    spec = importlib.util.spec_from_file_location("alarm_onsets", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--devices", "24", "--seconds", "40"]) == 0
    rows = [line.split("|") for line in capsys.readouterr().out.splitlines()
            if line.startswith("| ") and not line.startswith("| condition")]
    table = {r[1].strip(): [int(x) for x in r[2:5]] for r in rows}
    scripted, raised, on_time = table.pop("all")
    assert scripted > 0 and 0 < raised <= scripted and on_time <= raised
    assert sum(v[0] for v in table.values()) == scripted


@pytest.mark.realdata
def test_reference_gap_names_a_cause_for_every_changed_label() -> None:
    # bench/reference_gap.py on DS1's 208, whose ventricular beats the detector places
    # tens of ms from the annotation: V hits lost end to end because the model's own
    # inputs differ there, and beats the detector did not find counted as missed.
    import importlib.util

    from ecgwatch.evaluation.records import data_dir
    mitdb = data_dir() / "mitdb"
    if not (mitdb / "208.hea").exists():
        pytest.skip(f"MIT-BIH record 208 not found under {mitdb}")
    path = Path(__file__).resolve().parents[1] / "bench" / "reference_gap.py"
    spec = importlib.util.spec_from_file_location("reference_gap", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    name, counts, offsets = module.record_gap((str(mitdb / "208"), None, 300.0))
    assert name == "208"
    assert {k for k, _, _ in counts} <= {"S", "V"}
    assert {c for _, _, c in counts} <= set(module.CAUSES)
    assert counts[("V", "lost", "inputs")] > 0 and counts[("V", "lost", "missed")] > 0
    # Every 'inputs' change has its offset, and 208's are mostly far from the annotation.
    assert len(offsets) >= counts[("V", "lost", "inputs")]
    assert sum(abs(o) > 30 for o in offsets) > len(offsets) / 2
