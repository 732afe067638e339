"""Hostile input through the service's whole per-message path survives (tests/fuzzing.py).

A few hundred generated messages per run in the suite; ``python tests/fuzz_run.py
--examples 100000`` is the long run (docs/reliability.md).
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings

from ecgwatch.service import Service, ServiceConfig
from fuzzing import Harness, clean_control_beats, messages
from ingest.mqtt import BrokerURL

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def harness(request):
    broker = request.getfixturevalue("broker")
    service = Service(ServiceConfig(BrokerURL.parse(broker.url),
                                    client_id=f"fuzz-{uuid.uuid4().hex[:6]}",
                                    protocol="3.1.1" if broker.kind == "amqtt" else "auto"))
    service.start()                  # connected; the test drives handle() itself
    yield Harness(service)
    service.stop()


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(msg=messages())
def test_no_message_crashes_the_service_or_leaks_into_another_device(harness, msg):
    harness.feed(msg)


def test_the_control_device_saw_exactly_a_clean_run(harness):
    # Runs after the fuzz test (file order): the interleaved well-behaved
    # device has the beats a clean run of the same chunks finds.
    assert harness.sent >= 300
    assert harness.control_beats() == [clean_control_beats(harness.sent)]
    counts = harness.service.counters.snapshot()
    assert counts["rejects_total"] > 0 and counts["rejects"].get("internal", 0) == 0
