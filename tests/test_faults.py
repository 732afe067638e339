"""Fault tests over a real mosquitto: broker restart, SIGKILL and restart, stalls, floods.

Each scenario lives in tests/faults.py and also runs from ``python
tests/fault_run.py``, which prints the table of docs/reliability.md. Every
figure asserted here is a count (chunks, alerts), never a duration.
"""

from __future__ import annotations

import numpy as np
import pytest

import faults
from ecgwatch.broker import find_mosquitto
from ingest.device import DeviceMonitor

pytestmark = [pytest.mark.broker, pytest.mark.skipif(
    find_mosquitto() is None, reason="the fault tests start and stop their own mosquitto, "
                                     "which is not installed (no /usr/sbin/mosquitto)")]


def _no_loss(f: faults.Figures) -> None:
    assert f.chunks_processed == f.chunks_sent and f.lost == 0, f
    assert f.alerts_delivered == f.alerts_expected > 0, f


def test_broker_restart_mid_stream_loses_no_chunk_and_no_alert(tmp_path):
    f = faults.broker_restart(tmp_path)
    _no_loss(f)
    assert f.notes["reconnects"] >= 1 and f.notes["gaps"] == 0, f


def test_sigkilled_service_gets_its_unacked_chunks_again_and_replays_its_outbox(tmp_path):
    f = faults.service_sigkill(tmp_path)
    # Nothing the first process did reached the broker: the restarted one got
    # every chunk again and published the alerts it found in the outbox.
    _no_loss(f)
    assert f.notes["alerts_in_outbox_at_kill"] == f.alerts_expected
    assert f.notes["replayed"] == f.alerts_expected and f.notes["outbox_left"] == 0, f


def test_paused_consumer_and_stopped_broker_lose_nothing_and_stay_bounded(tmp_path):
    f = faults.stall(tmp_path, pause_s=2.0)
    _no_loss(f)
    assert f.notes["inbox_overflow"] == 0
    assert int(f.notes["inbox_peak"].split("/")[0]) <= 20


def test_a_flood_is_reported_bounded_and_other_devices_keep_being_served(tmp_path):
    one, fleet = faults.flood(tmp_path, normal=3, seconds=30)
    for f in (one, fleet):
        _no_loss(f)
        assert f.notes["inbox_overflow"] == 0 and int(f.notes["inbox_peak"].split("/")[0]) <= 50
    assert one.notes["calm_alerts"].split("/")[0] == one.notes["calm_alerts"].split("/")[1]
    assert fleet.notes["overloaded_status"], fleet


def test_after_a_restart_no_alarm_rests_on_data_the_new_process_did_not_see():
    """Warm-up: a process that joins a tachycardia mid-way decides only from what it saw.

    The first process sees 0-60 s and raises extreme tachycardia; the second
    starts at 45 s (a restart), mid-episode. Its alarm must come from its own
    data: evidence windows and onsets at or after its first chunk.
    """
    from ecg_fixtures import beat_train, regular_r_times

    r = np.concatenate([regular_r_times(70, 20), 20.0 + regular_r_times(160, 70)])
    chunks = faults.chunks_of(beat_train(r, faults.FS, 90, noise=0.02), faults.FS, 1.0,
                              "warm", t0=faults.T0)
    before = DeviceMonitor("warm")
    first = [t for c in chunks[:60] for t in before.push(c, c.t_end - faults.T0).transitions]
    assert any(t.condition.value == "extreme_tachycardia" for t in first)
    after, joined_at = DeviceMonitor("warm"), chunks[45].t0
    second = [t for c in chunks[45:] for t in after.push(c, c.t_end - faults.T0).transitions]
    tachy = [t for t in second if t.condition.value == "extreme_tachycardia"]
    assert tachy, "the restarted process finds the tachycardia again"
    for t in second:
        d = t.to_dict()
        assert d["onset"] >= joined_at and d["evidence"]["start"] >= joined_at, d
    # Its decision needed its own 17 RR intervals first (no history carried over).
    assert tachy[0].to_dict()["at"] >= joined_at + 17 * 60 / 160
