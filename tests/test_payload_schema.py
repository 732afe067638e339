"""The published JSON Schema and the decoder must tell the same story."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from detect.errors import InputError
from detect.types import Chunk
from ecg_fixtures import DELETE, samples_doc
from ingest.payload import decode_samples, encode_json

DEV = "patch-07"
_DELETE = DELETE


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    text = resources.files("ingest").joinpath("schema/samples-v1.json").read_text("utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


doc = samples_doc


MV = {"gain": _DELETE, "unit": "mV"}

# Payloads both the schema and the decoder accept.
VALID = [
    doc(),
    doc(baseline=-512.5),
    doc(**MV, samples=[0.1] * 25),
    doc(**MV, samples=[-10000, 10000] + [0] * 23),
    doc(lead=_DELETE),
    doc(device_id=DEV),
    doc(battery=0.93, fw="2.1.0", extra={"nested": [1, 2]}),   # unknown fields ignored
    doc(v=1.0, seq=7.0),                                        # integral floats are integers
    doc(seq=0), doc(seq=2**32 - 1),
    doc(fs=100, samples=[0] * 10),                               # 0.1 s, the shortest chunk
    doc(fs=1000, samples=[0] * 10_000),                          # 10 s, the longest
    doc(lead="Lead II (modified)"),
]

# Payloads both reject.
INVALID = [
    *(doc(**{f: _DELETE}) for f in ("v", "seq", "t0", "fs", "samples")),
    doc(v=2), doc(v=True), doc(v="1"),
    doc(seq=-1), doc(seq=1.5), doc(seq="5"), doc(seq=True), doc(seq=2**32),
    doc(t0="now"), doc(t0=None), doc(t0=True),
    doc(fs=99.5), doc(fs=1000.5), doc(fs="250"),
    doc(lead=""), doc(lead=2), doc(lead="II\n"), doc(lead="x" * 33), doc(lead="é"),
    doc(gain=0), doc(gain=-1), doc(gain="200"), doc(gain=True),
    doc(unit="mV"), doc(gain=_DELETE), doc(**MV, baseline=0), doc(gain=_DELETE, unit="uV"),
    doc(baseline="0"),
    doc(samples="1,2"), doc(samples=[1] * 24 + ["1"]), doc(samples=[1] * 24 + [True]),
    doc(samples=[1] * 24 + [None]), doc(samples=[1] * 24 + [[1]]),
    doc(samples=[0] * 9, fs=100), doc(samples=[0] * 10_001, fs=1000),
    doc(**MV, samples=[10000.5] + [0] * 24),
    doc(device_id="a/b"), doc(device_id=""), doc(device_id="dev\n"), doc(device_id=7),
]

# Schema-valid, decoder-rejected: the rules no JSON Schema can state, all
# named in the schema's description.
SEMANTIC = [
    (doc(device_id="someone-else"), "device_mismatch"),
    (doc(fs=1000, samples=[0] * 50), "bad_length"),          # 0.05 s
    (doc(fs=100, samples=[0] * 1001), "bad_length"),         # 10.01 s
    (doc(gain=1, samples=[20_000] * 25), "out_of_range"),    # 20 V once scaled
]


def _decoder_accepts(d: dict) -> bool:
    try:
        decode_samples(DEV, json.dumps(d).encode())
    except InputError:
        return False
    return True


@pytest.mark.parametrize("d", VALID)
def test_valid_examples_pass_both(validator, d):
    assert validator.is_valid(d), list(validator.iter_errors(d))
    assert _decoder_accepts(d)


@pytest.mark.parametrize("d", INVALID)
def test_invalid_examples_fail_both(validator, d):
    assert not validator.is_valid(d)
    assert not _decoder_accepts(d)


@pytest.mark.parametrize("d,reason", SEMANTIC)
def test_rules_beyond_the_schema_are_the_documented_ones(validator, d, reason):
    assert validator.is_valid(d)
    with pytest.raises(InputError) as e:
        decode_samples(DEV, json.dumps(d).encode())
    assert e.value.reason == reason


def test_encoder_output_validates(validator):
    chunk = Chunk(DEV, 3, 12.5, 360.0, np.sin(np.arange(720) / 20.0), "MLII")
    assert validator.is_valid(json.loads(encode_json(chunk)))
    assert validator.is_valid(json.loads(encode_json(chunk, gain=200.0)))


junk = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 2**33)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3), max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["v", "seq", "t0", "fs", "lead", "gain", "baseline",
                                        "unit", "device_id", "samples"]), junk, max_size=4),
       st.sampled_from([doc(), doc(**MV, samples=[0.5] * 25)]))
def test_decoder_never_accepts_what_the_schema_rejects(validator, changes, base):
    d = {**base, **changes}
    if _decoder_accepts(d):
        assert validator.is_valid(d), list(validator.iter_errors(d))
