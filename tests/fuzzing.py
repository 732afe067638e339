"""Hostile and broken input for the whole per-message path of the service.

``messages()`` generates MQTT messages as a hostile or broken device back end
would send them: valid chunks with regressed, repeated or jumping seq, clock
jumps and rate changes mid-stream; JSON with wrong types, NaN and infinities,
absurd rates, empty and oversized arrays, unknown or missing fields; binary
payloads truncated, extended or bit-flipped; random bytes; config documents;
and topics with wildcards, control characters and overlong ids.

``Harness`` feeds each through ``Service.handle`` (the real per-message code:
topic parsing, decoding, reassembly, the detector pipeline, rejects) of a
service connected to a real broker, interleaved with a well-behaved control
device. Invariants: nothing escapes ``handle``, no message ends as an
``internal`` reject (a bug), every message is counted in, and the control
device's beats are exactly those of a clean run (no device's input touches
another's state).

Used by ``tests/test_fuzz.py`` (a few hundred examples in the suite) and
``tests/fuzz_run.py`` (the 100 000-example run, docs/reliability.md).
"""

from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import strategies as st

from detect.types import Chunk
from ecg_fixtures import beat_train, regular_r_times
from ecgwatch.evaluation.replay import chunks_of
from ingest.mqtt import Received
from ingest.payload import encode_binary, encode_json
from ingest.topics import config_topic, samples_topic

FS = 250.0
DEVICES = ("fz-a", "fz-b", "fz-c")
CONTROL = "fz-control"
BAD_IDS = ("+", "#", "a/b", "dev\x00", "dev\n", "dé", "x" * 65, "", " ", "$SYS")

_floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0.0, -1.0, 1e9, 1e-9, 99.9, 1000.1, 250.0, 360.0]))
_json_junk = st.recursive(
    st.none() | st.booleans() | st.integers() | _floats.filter(math.isfinite) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=12)


@st.composite
def _chunk(draw, device: str) -> Chunk:
    seq = draw(st.one_of(st.integers(0, 40), st.sampled_from([2**32 - 1, 10**6])))
    fs = draw(st.sampled_from([100.0, 250.0, 360.0, 500.0, 1000.0]))
    n = draw(st.sampled_from([int(fs * 0.1), int(fs), int(fs * 2)]))
    t0 = draw(st.one_of(st.just(100.0 + seq), st.floats(-1e6, 1e10)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return Chunk(device, seq, t0, fs, 0.5 * rng.standard_normal(n))


@st.composite
def _json_payload(draw, device: str) -> bytes:
    doc = json.loads(encode_json(draw(_chunk(device))))
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(sorted(doc) + ["extra", "v", "fs", "samples", "seq"]))
        change = draw(st.sampled_from(["drop", "junk", "float", "nan", "empty", "huge"]))
        if change == "drop":
            doc.pop(key, None)
        elif change == "junk":
            doc[key] = draw(_json_junk)
        elif change == "float":
            doc[key] = draw(_floats.filter(math.isfinite))
        elif change == "empty":
            doc[key] = []
        elif change == "huge":
            doc[key] = [0.1] * draw(st.sampled_from([10_001, 40_000]))
        else:
            text = json.dumps(doc)
            return text.replace(f'"{key}": ', f'"{key}": NaN, "_{key}": ', 1).encode()
    return json.dumps(doc).encode()


@st.composite
def _binary_payload(draw, device: str) -> bytes:
    raw = bytearray(encode_binary(draw(_chunk(device))))
    how = draw(st.sampled_from(["as is", "truncate", "extend", "flip", "header"]))
    if how == "truncate":
        del raw[draw(st.integers(0, len(raw) - 1)):]
    elif how == "extend":
        raw += draw(st.binary(min_size=1, max_size=64))
    elif how == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(raw) - 1))
            raw[i] ^= 1 << draw(st.integers(0, 7))
    elif how == "header":
        i = draw(st.integers(0, 28))
        raw[i] = draw(st.integers(0, 255))
    return bytes(raw)


@st.composite
def messages(draw) -> Received:
    device = draw(st.sampled_from(DEVICES))
    kind = draw(st.sampled_from(["json", "json", "binary", "binary", "random", "config",
                                 "bad topic"]))
    topic = samples_topic(device)
    if kind == "json":
        payload = draw(_json_payload(device))
    elif kind == "binary":
        payload = draw(_binary_payload(device))
    elif kind == "random":
        payload = draw(st.binary(max_size=300))
    elif kind == "config":
        topic = config_topic(device)
        payload = json.dumps(draw(_json_junk | st.fixed_dictionaries(
            {"v": st.sampled_from([1, 2, "1"]),
             "alarms": st.dictionaries(st.sampled_from(["tachy_bpm", "asystole_s", "x"]),
                                       _json_junk, max_size=2)}))).encode()
        if draw(st.booleans()):           # leave the device with the service's limits
            payload = b""
    else:
        bad = draw(st.sampled_from(BAD_IDS) | st.text(max_size=70))
        topic = draw(st.sampled_from([f"ecg/v1/{bad}/samples", f"ecg/v1/{bad}/config",
                                      f"ecg/v2/{device}/samples", "ecg/v1/samples", bad]))
        payload = encode_json(draw(_chunk(device)))
    return Received(topic, payload, 0.0)


def control_stream(seconds: int = 600) -> list[bytes]:
    """A well-behaved device: regular rhythm, 1 s binary chunks, in order."""
    x = beat_train(regular_r_times(72, seconds), FS, seconds, noise=0.02)
    return [encode_binary(c) for c in chunks_of(x, FS, 1.0, CONTROL, t0=1_000.0)]


class Harness:
    """One service, fed fuzz messages interleaved with the control device's chunks."""

    def __init__(self, service, control_every: int = 1, control_seconds: int = 600) -> None:
        self.service = service
        self.control = control_stream(control_seconds)
        self.every = control_every
        self.sent = 0                 # control chunks sent so far
        self.messages = 0
        self.now = 1_000.0

    def feed(self, msg: Received) -> None:
        before = self.service.counters.snapshot()["chunks_in"]
        self.service.handle(msg, self.now)          # must not raise
        self.messages += 1
        counts = self.service.counters.snapshot()
        assert counts["rejects"].get("internal", 0) == 0, (msg.topic, msg.payload[:80])
        assert counts["chunks_in"] <= before + 1
        if self.messages % self.every == 0 and self.sent < len(self.control):
            self.service.handle(Received(samples_topic(CONTROL), self.control[self.sent],
                                         self.now), self.now)
            self.sent += 1
        self.now += 1.0 / self.every

    def control_beats(self) -> list[int]:
        """The control device's beat count as the service has it."""
        monitor = self.service.monitors.get(CONTROL)
        return [] if monitor is None else [monitor.state().beats]


def clean_control_beats(chunks: int, control_seconds: int = 600) -> int:
    """Beats a clean run of the control device finds in its first ``chunks`` chunks."""
    from detect.config import DetectorConfig
    from ingest.device import DeviceMonitor
    from ingest.payload import decode_samples
    mon = DeviceMonitor(CONTROL, DetectorConfig())
    now = 1_000.0
    for raw in control_stream(control_seconds)[:chunks]:
        mon.push(decode_samples(CONTROL, raw), now)
        now += 1.0
    return mon.state().beats
