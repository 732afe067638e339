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
    for heading in ("Part 1: in-process throughput", "neurokit2", "Part 3: memory",
                    "Where the time goes"):
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
    assert set(doc["meets"]) == {"device_s_per_cpu_s", "ratio_vs_ecg_process", "kb_per_device"}


def test_impossible_options_are_refused_with_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        bench.main(["--devices", "0", "--out", "unused"])
    assert e.value.code == 2
    assert "--devices must all be at least 1" in capsys.readouterr().err
