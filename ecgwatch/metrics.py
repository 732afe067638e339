"""Service counters, published retained on ``ecgwatch/v1/metrics``.

Plain integers behind one lock: the service thread increments them and any
thread (the demo summary, tests) may take a consistent snapshot.
"""

from __future__ import annotations

import json
import threading
from collections import Counter, deque
from typing import Any

import numpy as np

from detect.types import Action, AlarmTransition


LATENCY_WINDOW = 10_000


def _percentiles(seconds: deque[float]) -> dict[str, float | int | None]:
    """p50 / p99 / max in milliseconds of a latency window (None when empty)."""
    if not seconds:
        return {"p50": None, "p99": None, "max": None, "n": 0}
    ms = 1000.0 * np.asarray(seconds)
    p50, p99 = np.percentile(ms, (50, 99))
    return {"p50": round(float(p50), 2), "p99": round(float(p99), 2),
            "max": round(float(ms.max()), 2), "n": int(ms.size)}


class Counters:
    """What went in, what was processed, what was rejected and what went out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.chunks_in = 0            # messages taken from the inbox
        self.chunks_processed = 0     # chunks handed on to a detection pipeline
        self.rejects: Counter[str] = Counter()          # by reason code
        self.duplicates = 0           # QoS 1 redeliveries and device resends, dropped
        self.gaps: Counter[str] = Counter()             # stream gaps by reason
        self.alerts: Counter[str] = Counter()           # by action (raised/updated/cleared)
        self.alerts_by_condition: Counter[str] = Counter()  # raised episodes per condition
        self.inbox_overflow = 0       # copied from the MQTT edge, which owns the count
        self.configs_applied = 0      # per-device config documents accepted
        self.overload_episodes = 0    # times the inbox ran full or dropped messages
        # Arrival -> processed, seconds, for the most recent samples messages
        # (a bounded window, so the percentiles describe now, not the whole run).
        self.latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)

    def count_in(self) -> None:
        with self._lock:
            self.chunks_in += 1

    def count_processed(self, chunks: int = 1) -> None:
        with self._lock:
            self.chunks_processed += chunks

    def count_reject(self, reason: str) -> None:
        with self._lock:
            self.rejects[reason] += 1

    def count_duplicate(self) -> None:
        with self._lock:
            self.duplicates += 1

    def count_gap(self, reason: str) -> None:
        with self._lock:
            self.gaps[reason] += 1

    def count_alert(self, transition: AlarmTransition) -> None:
        with self._lock:
            self.alerts[transition.action.value] += 1
            if transition.action is Action.RAISED:
                self.alerts_by_condition[transition.condition.value] += 1

    def record_latency(self, seconds: float) -> None:
        with self._lock:
            self.latencies.append(seconds)

    def count_overload(self) -> None:
        with self._lock:
            self.overload_episodes += 1

    def count_config(self) -> None:
        with self._lock:
            self.configs_applied += 1

    def set_overflow(self, value: int) -> None:
        with self._lock:
            self.inbox_overflow = value

    def snapshot(self, **extra: Any) -> dict[str, Any]:
        """A JSON-ready copy; ``extra`` adds context such as the device count."""
        with self._lock:
            snap: dict[str, Any] = {
                "v": 1,
                "chunks_in": self.chunks_in,
                "chunks_processed": self.chunks_processed,
                "rejects": dict(sorted(self.rejects.items())),
                "rejects_total": sum(self.rejects.values()),
                "duplicates": self.duplicates,
                "gaps": dict(sorted(self.gaps.items())),
                "gaps_total": sum(self.gaps.values()),
                "alerts": dict(sorted(self.alerts.items())),
                "alerts_raised_by_condition": dict(sorted(self.alerts_by_condition.items())),
                "inbox_overflow": self.inbox_overflow,
                "configs_applied": self.configs_applied,
                "overload_episodes": self.overload_episodes,
                "processing_latency_ms": _percentiles(self.latencies),
            }
        snap.update(extra)
        return snap

    def to_json(self, **extra: Any) -> bytes:
        return json.dumps(self.snapshot(**extra), separators=(",", ":")).encode()
