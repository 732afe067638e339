"""The demo's alert line and summary (the end-to-end demo run is at the bottom)."""

from __future__ import annotations

import io
import time

import pytest

from detect.types import Action, AlarmTransition, Condition, Evidence
from ecgwatch.demo import _summary_text, format_alert, run_demo


def _alert(action: Action, hr: float | None = 38.2, onset: float = 125.0) -> dict:
    return AlarmTransition("bed-7", Condition.EXTREME_BRADYCARDIA, action, onset=onset,
                           at=onset + 6.0, onset_index=31250,
                           evidence=Evidence(onset, onset + 6.0, 31250, 32750, heart_rate=hr),
                           detector_version="test").to_dict()


def test_alert_line_names_time_device_action_priority_condition_onset_and_rate() -> None:
    received = time.mktime((2024, 5, 1, 14, 3, 9, 0, 0, -1))
    line = format_alert(_alert(Action.RAISED), received)
    assert line.split() == ["14:03:09", "bed-7", "RAISED", "HIGH", "extreme_bradycardia",
                            "onset", "125.0", "s", "HR", "38"]


def test_alert_line_copes_with_no_rate_and_unix_time_onsets() -> None:
    onset = time.mktime((2024, 5, 1, 9, 0, 0, 0, 0, -1)) + 0.25
    line = format_alert(_alert(Action.CLEARED, hr=None, onset=onset), onset + 10)
    assert "CLEARED" in line and "onset 09:00:00.2" in line and line.endswith("HR --")
    assert format_alert({}, 0.0).split()[1:] == ["?", "?", "?", "?", "onset", "?", "HR", "--"]


def test_summary_lists_devices_chunks_rejects_and_alarms_by_condition() -> None:
    text = _summary_text({"devices": 6, "chunks_processed": 360, "rejects_total": 2,
                          "rejects": {"bad_payload": 2}, "alerts": {"raised": 3, "cleared": 2},
                          "alerts_raised_by_condition": {"asystole": 1, "pause": 2}})
    assert "6 devices, 360 chunks processed, 2 rejects (bad_payload 2)" in text
    assert "asystole 1, pause 2; cleared: 2" in text


@pytest.mark.broker
def test_demo_tops_up_the_scripted_fleet_to_the_requested_size() -> None:
    out = io.StringIO()
    summary = run_demo(duration=1.0, devices=10, speed=4.0, out=out)
    assert "10 simulated devices" in out.getvalue()
    assert summary["devices"] == 10
    assert summary["chunks_processed"] == 10 * 4 and summary["rejects_total"] == 0
