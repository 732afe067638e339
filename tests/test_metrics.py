"""Service counters: the processing-latency window and its percentiles."""

from __future__ import annotations

from ecgwatch.metrics import LATENCY_WINDOW, Counters


def test_latency_percentiles_in_milliseconds_over_a_bounded_window():
    c = Counters()
    assert c.snapshot()["processing_latency_ms"] == {"p50": None, "p99": None, "max": None,
                                                     "n": 0}
    for ms in range(1, 101):
        c.record_latency(ms / 1000.0)
    lat = c.snapshot()["processing_latency_ms"]
    assert lat == {"p50": 50.5, "p99": 99.01, "max": 100.0, "n": 100}
    # The window keeps the most recent values only: old slow ones age out.
    for _ in range(LATENCY_WINDOW):
        c.record_latency(0.002)
    assert c.snapshot()["processing_latency_ms"] == {"p50": 2.0, "p99": 2.0, "max": 2.0,
                                                     "n": LATENCY_WINDOW}
