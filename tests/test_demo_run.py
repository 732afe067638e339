"""The one-command demo, run for real: embedded broker, service, scripted fleet."""

from __future__ import annotations

import io

import pytest

from ecgwatch.demo import run_demo

pytestmark = pytest.mark.broker


def test_the_demo_shows_each_scripted_alarm_raised_and_cleared():
    out = io.StringIO()
    # 60 s of scripted ECG in 12 s of wall time.
    summary = run_demo(duration=12.0, devices=7, speed=5.0, out=out)
    text = out.getvalue()
    assert "mosquitto_sub -h 127.0.0.1 -p" in text
    raised = summary["alerts_raised_by_condition"]
    for cond in ("asystole", "extreme_bradycardia", "extreme_tachycardia", "pause",
                 "leads_off", "unusable_signal", "atrial_fibrillation"):
        assert raised.get(cond, 0) >= 1, f"{cond} was not raised: {raised}\n{text}"
    assert raised["asystole"] == 1 and raised["extreme_bradycardia"] == 1
    assert summary["rejects_total"] == 0
    assert summary["chunks_processed"] == 7 * 60
    assert "bed-1-normal" not in text                     # the normal patient stays quiet
    lines = [ln for ln in text.splitlines() if "bed-2-asystole" in ln]
    assert [ln.split()[2] for ln in lines] == ["RAISED", "CLEARED"]
    af = [ln for ln in text.splitlines() if ln.split()[4:5] == ["atrial_fibrillation"]]
    assert af and all("bed-7-af" in ln for ln in af)      # only the AF patient
