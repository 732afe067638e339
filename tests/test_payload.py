"""Samples payload codecs: exact decoding, every reject reason, fuzzing, round trips."""

from __future__ import annotations

import json
import math
import pathlib
import re
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detect.errors import ChunkError, InputError, PayloadError
from detect.types import Chunk
from ecg_fixtures import DELETE, samples_doc
from ingest.payload import (BINARY_HEADER_SIZE, LEAD_CODES, MAX_PAYLOAD_BYTES, MAX_SAMPLES,
                            decode_samples, encode_binary, encode_json)

DEV = "patch-07"
_DELETE = DELETE


def js(**changes) -> bytes:
    """A valid counts-mode JSON payload (25 samples at 250 Hz = 0.1 s) with changes."""
    return json.dumps(samples_doc(**changes)).encode()


def binary(*, magic=b"EW", version=1, flags=0, seq=5, t0=100.0, fs=250.0, gain=200.0,
           baseline=0, lead=2, n=25, samples=None, extra=b"") -> bytes:
    counts = [200] * n if samples is None else samples
    head = struct.pack("<2sBBIdffhBH", magic, version, flags, seq, t0, fs, gain, baseline,
                       lead, n)
    return head + struct.pack(f"<{len(counts)}h", *counts) + extra


# ------------------------------------------------------------ happy paths

def test_json_counts_are_scaled_by_gain_and_baseline():
    c = decode_samples(DEV, js(samples=[1000, 1200, 800] + [1000] * 22, baseline=1000,
                               gain=400))
    assert (c.device_id, c.seq, c.t0, c.fs, c.lead) == (DEV, 5, 100.0, 250.0, "II")
    assert c.samples.dtype == np.float64
    assert c.samples[:3].tolist() == [0.0, 0.5, -0.5]


def test_json_millivolts_are_taken_as_is_and_lead_defaults_to_ecg():
    c = decode_samples(DEV, js(gain=_DELETE, lead=_DELETE, unit="mV",
                               samples=[0.25, -1.5] + [0.0] * 23))
    assert c.lead == "ECG"
    assert c.samples[:2].tolist() == [0.25, -1.5]


def test_json_ignores_unknown_fields_and_accepts_matching_device_id():
    c = decode_samples(DEV, js(device_id=DEV, battery=0.8, future={"x": [1, 2]}))
    assert c.seq == 5


def test_json_integral_floats_count_as_integers_like_json_schema():
    assert decode_samples(DEV, js(v=1.0, seq=7.0)).seq == 7


def test_json_may_start_with_whitespace():
    assert decode_samples(DEV, b" \r\n\t" + js()).seq == 5


def test_binary_header_is_29_bytes_and_decodes():
    assert BINARY_HEADER_SIZE == 29
    c = decode_samples(DEV, binary(baseline=-100, gain=100.0, lead=13,
                                   samples=[-100, 0, -200] + [0] * 22))
    assert (c.seq, c.t0, c.fs, c.lead) == (5, 100.0, 250.0, "MLII")
    assert c.samples[:3].tolist() == [0.0, 1.0, -1.0]


def test_binary_golden_bytes():
    # The worked example of docs/protocol.md: seq 42, t0 1700000000.5, 250 Hz,
    # gain 200, baseline 0, lead II, samples 0, 100, 200, -100, then 21 zeros.
    chunk = Chunk(DEV, 42, 1700000000.5, 250.0,
                  np.array([0.0, 0.5, 1.0, -0.5] + [0.0] * 21), "II")
    data = encode_binary(chunk)
    assert data[:BINARY_HEADER_SIZE].hex(" ") == (
        "45 57 01 00 2a 00 00 00 00 00 20 40 fc 54 d9 41 00 00 7a 43 00 00 48 43 "
        "00 00 02 19 00")
    assert data[BINARY_HEADER_SIZE:BINARY_HEADER_SIZE + 8].hex(" ") == "00 00 64 00 c8 00 9c ff"
    assert len(data) == 29 + 2 * 25
    assert decode_samples(DEV, data).samples.tolist() == chunk.samples.tolist()


def test_binary_lead_codes_round_trip_by_name():
    for code, name in LEAD_CODES.items():
        assert decode_samples(DEV, binary(lead=code)).lead == name


def test_bytearray_and_memoryview_are_accepted():
    assert decode_samples(DEV, bytearray(js())).seq == 5
    assert decode_samples(DEV, memoryview(binary())).seq == 5


# ------------------------------------------------------------ rejects

BIG = MAX_SAMPLES + 1
REJECTS = [
    # (payload, exception class, reason)
    (b"", PayloadError, "empty"),
    (b"x" * (MAX_PAYLOAD_BYTES + 1), PayloadError, "too_large"),
    (b"[1, 2]", PayloadError, "unknown_format"),
    (b"hello", PayloadError, "unknown_format"),
    (b"\xef\xbb\xbf{}", PayloadError, "unknown_format"),          # BOM
    (b'{"v": 1, "seq": 1,', PayloadError, "bad_json"),
    (b'{"v": 1} trailing', PayloadError, "bad_json"),
    (b'{"v": "\xff"}', PayloadError, "bad_json"),                  # not UTF-8
    (b'{"v": 1, "t0": NaN}', PayloadError, "bad_json"),
    (b'{"v": 1, "t0": -Infinity}', PayloadError, "bad_json"),
    (b'{"v": 1, "t0": 1e999}', PayloadError, "bad_json"),
    (b'{"v": 1, "v": 1}', PayloadError, "bad_json"),               # duplicate key
    (b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", PayloadError, "bad_json"),
    (b'{"seq": ' + b"9" * 5000 + b"}", PayloadError, "bad_json"),  # past int digit limit
    (js(v=_DELETE), PayloadError, "missing_field"),
    (js(v=2), PayloadError, "unsupported_version"),
    (js(v=True), PayloadError, "unsupported_version"),
    (js(v="1"), PayloadError, "unsupported_version"),
    (js(device_id="other"), PayloadError, "device_mismatch"),
    (js(device_id=None), PayloadError, "device_mismatch"),
    (js(seq=_DELETE), PayloadError, "missing_field"),
    (js(t0=_DELETE), PayloadError, "missing_field"),
    (js(fs=_DELETE), PayloadError, "missing_field"),
    (js(samples=_DELETE), PayloadError, "missing_field"),
    (js(seq=-1), ChunkError, "bad_seq"),
    (js(seq=True), ChunkError, "bad_seq"),
    (js(seq=1.5), ChunkError, "bad_seq"),
    (js(seq="5"), ChunkError, "bad_seq"),
    (js(seq=2**32), ChunkError, "bad_seq"),
    (js(seq=10**300), ChunkError, "bad_seq"),
    (js(t0="now"), ChunkError, "bad_time"),
    (js(t0=None), ChunkError, "bad_time"),
    (js(t0=False), ChunkError, "bad_time"),
    (js(t0=10**400), ChunkError, "bad_time"),
    (js(fs="250"), ChunkError, "bad_rate"),
    (js(fs=True), ChunkError, "bad_rate"),
    (js(fs=99.9), ChunkError, "bad_rate"),
    (js(fs=1001), ChunkError, "bad_rate"),
    (js(lead=2), ChunkError, "bad_lead"),
    (js(lead=""), ChunkError, "bad_lead"),
    (js(lead="II\n"), ChunkError, "bad_lead"),
    (js(lead="x" * 33), ChunkError, "bad_lead"),
    (js(unit="mV"), ChunkError, "ambiguous_scale"),
    (js(gain=_DELETE, unit="mV", baseline=3), ChunkError, "ambiguous_scale"),
    (js(gain=_DELETE, unit="uV"), ChunkError, "bad_unit"),
    (js(gain=_DELETE), ChunkError, "missing_scale"),
    (js(gain=0), ChunkError, "bad_gain"),
    (js(gain=-200), ChunkError, "bad_gain"),
    (js(gain=True), ChunkError, "bad_gain"),
    (js(gain="200"), ChunkError, "bad_gain"),
    (js(baseline="0"), ChunkError, "bad_baseline"),
    (js(baseline=None), ChunkError, "bad_baseline"),
    (js(samples="1,2,3"), ChunkError, "bad_samples"),
    (js(samples={"0": 1}), ChunkError, "bad_samples"),
    (js(samples=[1] * 24 + ["1"]), ChunkError, "bad_samples"),
    (js(samples=[1] * 24 + [True]), ChunkError, "bad_samples"),
    (js(samples=[1] * 24 + [None]), ChunkError, "bad_samples"),
    (js(samples=[1] * 24 + [[1]]), ChunkError, "bad_samples"),
    (js(samples=[1] * BIG, fs=1000), ChunkError, "too_many_samples"),
    (js(samples=[1] * 24 + [10**400]), ChunkError, "out_of_range"),
    (js(samples=[1] * 24 + [2_000_001]), ChunkError, "out_of_range"),   # 10000.005 mV
    (js(gain=1e-300, samples=[1e300] * 25), ChunkError, "out_of_range"),  # overflows
    (js(samples=[1] * 24), ChunkError, "bad_length"),                   # 0.096 s
    (js(samples=[1] * 2501), ChunkError, "bad_length"),                 # 10.004 s
    (js(samples=[]), ChunkError, "bad_length"),
    (b"EW", PayloadError, "truncated"),
    (binary()[:28], PayloadError, "truncated"),
    (binary()[:-1], PayloadError, "truncated"),
    (binary(extra=b"\x00"), PayloadError, "trailing_bytes"),
    (binary(version=2), PayloadError, "unsupported_version"),
    (b"EW\x02", PayloadError, "unsupported_version"),
    (binary(flags=1), PayloadError, "unsupported_flags"),
    (binary(n=BIG, samples=[0] * BIG), ChunkError, "too_many_samples"),
    (binary(n=0xFFFF, samples=[]), ChunkError, "too_many_samples"),
    (binary(t0=math.nan), ChunkError, "bad_time"),
    (binary(t0=math.inf), ChunkError, "bad_time"),
    (binary(fs=math.nan), ChunkError, "bad_rate"),
    (binary(fs=50.0), ChunkError, "bad_rate"),
    (binary(gain=0.0), ChunkError, "bad_gain"),
    (binary(gain=-1.0), ChunkError, "bad_gain"),
    (binary(gain=math.nan), ChunkError, "bad_gain"),
    (binary(gain=math.inf), ChunkError, "bad_gain"),
    (binary(gain=1e-3), ChunkError, "out_of_range"),      # 200 counts = 200 V
    (binary(lead=200), ChunkError, "bad_lead"),
    (binary(n=24), ChunkError, "bad_length"),
]


@pytest.mark.parametrize("payload,cls,reason", REJECTS,
                         ids=[f"{i}-{r[2]}" for i, r in enumerate(REJECTS)])
def test_reject_reason_and_sentence(payload, cls, reason):
    with pytest.raises(cls) as e:
        decode_samples(DEV, payload)
    err = e.value
    assert err.reason == reason
    assert err.device_id == DEV
    message = str(err)
    assert repr(DEV) in message and message.rstrip().endswith(".")
    assert len(message) < 400          # bad values are shown cut short


def test_rejects_after_the_seq_is_known_carry_it():
    with pytest.raises(ChunkError) as e:
        decode_samples(DEV, js(seq=9, fs=5000))
    assert e.value.seq == 9 and "5000" in str(e.value)
    with pytest.raises(ChunkError) as e:
        decode_samples(DEV, binary(seq=11, lead=99))
    assert e.value.seq == 11 and "99" in str(e.value)


@pytest.mark.parametrize("device_id", ["", "a/b", "dev\n", "+", None])
def test_bad_topic_device_id_is_rejected_before_the_payload(device_id):
    with pytest.raises(ChunkError) as e:
        decode_samples(device_id, js())  # type: ignore[arg-type]
    assert e.value.reason == "bad_device_id"


def test_non_bytes_payload_is_a_payload_error():
    with pytest.raises(PayloadError):
        decode_samples(DEV, "{}")  # type: ignore[arg-type]


# ------------------------------------------------------------ fuzzing

def _decodes_or_rejects(payload: bytes) -> None:
    try:
        chunk = decode_samples(DEV, payload)
    except InputError as e:
        assert isinstance(e, (PayloadError, ChunkError)) and e.reason
        return
    assert isinstance(chunk, Chunk) and chunk.device_id == DEV


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_else(data):
    _decodes_or_rejects(data)
    _decodes_or_rejects(b"EW" + data)
    _decodes_or_rejects(b"EW\x01\x00" + data)
    _decodes_or_rejects(b"{" + data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                   max_size=4),
    max_leaves=12)
FIELDS = ["v", "seq", "t0", "fs", "lead", "gain", "baseline", "unit", "samples", "device_id"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=4), json_values, max_size=10))
def test_arbitrary_json_objects_never_raise_anything_else(doc):
    _decodes_or_rejects(json.dumps(doc).encode())


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FIELDS), json_values)
def test_one_field_replaced_by_junk_never_raises_anything_else(field, value):
    _decodes_or_rejects(js(**{field: value}))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 2**32 - 1),
       st.floats(width=64), st.floats(width=32), st.floats(width=32),
       st.integers(-32768, 32767), st.integers(0, 255), st.integers(0, 0xFFFF),
       st.binary(max_size=120))
def test_arbitrary_binary_headers_never_raise_anything_else(version, flags, seq, t0, fs, gain,
                                                            baseline, lead, n, body):
    head = struct.pack("<2sBBIdffhBH", b"EW", version, flags, seq, t0, fs, gain, baseline,
                       lead, n)
    _decodes_or_rejects(head + body)


# ------------------------------------------------------------ round trips

@st.composite
def chunks(draw):
    fs = draw(st.integers(400, 4000)) / 4          # 100..1000 Hz, exact in float32
    n = draw(st.integers(math.ceil(0.1 * fs), math.floor(10 * fs)))
    seed = draw(st.integers(0, 2**32 - 1))
    amplitude = draw(st.sampled_from([0.05, 1.0, 5.0, 150.0]))
    samples = np.random.default_rng(seed).normal(0.0, amplitude, n)
    return Chunk(DEV, draw(st.integers(0, 2**32 - 1)),
                 draw(st.floats(-1e9, 1e10, allow_nan=False)), fs, samples,
                 draw(st.sampled_from(sorted(LEAD_CODES.values()))))


def _same_header(a: Chunk, b: Chunk) -> None:
    assert (a.device_id, a.seq, a.t0, a.fs, a.lead) == (b.device_id, b.seq, b.t0, b.fs, b.lead)


@settings(max_examples=60, deadline=None)
@given(chunks())
def test_json_millivolt_round_trip(chunk):
    back = decode_samples(DEV, encode_json(chunk))
    _same_header(back, chunk)
    assert np.max(np.abs(back.samples - chunk.samples)) <= 0.5e-4 + 1e-12


@settings(max_examples=60, deadline=None)
@given(chunks(), st.sampled_from([100.0, 200.0, 409.6, 1000.0]))
def test_json_counts_round_trip(chunk, gain):
    back = decode_samples(DEV, encode_json(chunk, gain=gain))
    _same_header(back, chunk)
    assert np.max(np.abs(back.samples - chunk.samples)) <= 0.5 / gain + 1e-9


@settings(max_examples=60, deadline=None)
@given(chunks(), st.sampled_from([100.0, 200.0, 409.6]))
def test_binary_round_trip_within_half_a_count_unless_clipped(chunk, gain):
    back = decode_samples(DEV, encode_binary(chunk, gain=gain))
    _same_header(back, chunk)            # these rates are exact in float32
    gain32 = float(np.float32(gain))
    rail = 32767 / gain32
    inside = np.abs(chunk.samples) < rail - 1.0 / gain32
    err = np.abs(back.samples - chunk.samples)
    assert np.all(err[inside] <= 0.5 / gain32 + 1e-9)
    # Clipped samples land on the rails, never wrap around.
    assert np.all(np.abs(back.samples[~inside]) >= rail - 1.0 / gain32)
    assert np.all(np.sign(back.samples[~inside]) == np.sign(chunk.samples[~inside]))


def test_encoded_payloads_stay_under_the_size_limit():
    worst = Chunk(DEV, 2**32 - 1, -1234567890.123, 1000.0, np.full(10_000, -163.8349), "aVR")
    assert len(encode_json(worst)) < MAX_PAYLOAD_BYTES
    assert len(encode_json(worst, gain=1000.0)) < MAX_PAYLOAD_BYTES
    assert len(encode_binary(worst)) == 29 + 20_000


def test_encoders_refuse_what_v1_cannot_carry():
    chunk = Chunk(DEV, 1, 0.0, 250.0, np.zeros(25), "CM5")
    with pytest.raises(ValueError, match="CM5"):
        encode_binary(chunk)
    assert decode_samples(DEV, encode_json(chunk)).lead == "CM5"   # JSON carries any name
    with pytest.raises(ValueError):
        encode_json(Chunk(DEV, 2**32, 0.0, 250.0, np.zeros(25)))
    with pytest.raises(ValueError):
        encode_binary(Chunk(DEV, 1, 0.0, 250.0, np.zeros(25)), gain=0.0)
    with pytest.raises(ValueError):
        encode_json(Chunk(DEV, 1, 0.0, 250.0, np.zeros(25)), gain=-1.0)


def test_the_worked_examples_in_the_protocol_doc_are_true():
    doc = (pathlib.Path(__file__).parents[1] / "docs" / "protocol.md").read_text("utf-8")
    expected = [0.0, 0.5, 1.0, -0.5] + [0.0] * 21
    examples = [b for b in re.findall(r"```json\n(.*?)```", doc, re.S) if '"samples"' in b]
    assert len(examples) == 2
    for text in examples:
        c = decode_samples(DEV, text.encode())
        assert (c.seq, c.t0, c.fs, c.lead) == (42, 1700000000.5, 250.0, "II")
        assert c.samples.tolist() == expected
    (dump,) = re.findall(r"```\n(0000 .*?)```", doc, re.S)
    data = bytes.fromhex("".join(line[6:] for line in dump.splitlines()))
    assert data == encode_binary(Chunk(DEV, 42, 1700000000.5, 250.0, np.array(expected), "II"))


@pytest.mark.parametrize("t0", [1.7e308, -1e11, 1e10 + 1.0])
def test_a_start_time_no_clock_can_have_is_rejected(t0):
    # Found by the fuzzer: t0 = 1.7e308 passed decoding and overflowed the
    # pipeline's sample index (a crash, counted as an internal error).
    doc = samples_doc(t0=t0)
    with pytest.raises(InputError) as err:
        decode_samples("dev-1", json.dumps(doc).encode())
    assert err.value.reason == "bad_time" and "dev-1" in str(err.value)
