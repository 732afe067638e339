"""Samples payload codecs (v1): bytes from ``ecg/v1/{device_id}/samples`` <-> Chunk.

Two encodings share one topic; the first bytes tell them apart:

* **JSON** - the first byte after optional ASCII whitespace is ``{``.
* **Binary** - the payload starts with the magic ``b"EW"``.

Anything else is rejected with reason ``unknown_format``. The decoder is the
service's first line of defence: for *any* bytes it either returns a valid
:class:`~detect.types.Chunk` or raises :class:`~detect.errors.PayloadError` /
:class:`~detect.errors.ChunkError` with a stable ``reason`` code and a sentence
naming the device and the bad value. Nothing else escapes (JSON errors, bad
UTF-8, struct errors, overflowing numbers, deep nesting are all caught).

JSON object (UTF-8, RFC 8259; NaN/Infinity literals and duplicate keys are
rejected; unknown fields are ignored so later v1 revisions can add optional
fields without breaking older services)::

    {"v": 1, "seq": 17, "t0": 1700000000.25, "fs": 250, "lead": "II",
     "gain": 200, "baseline": 0, "samples": [12, 15, ...]}     # counts
    {"v": 1, "seq": 17, "t0": 1700000000.25, "fs": 250,
     "unit": "mV", "samples": [0.06, 0.075, ...]}               # millivolts

Counts become millivolts as ``(count - baseline) / gain``. ``device_id`` is
optional; when present it must equal the id in the topic. The JSON Schema is
``ingest/schema/samples-v1.json``.

Binary v1 layout (little-endian, no padding, 29-byte header)::

    offset  size  type     field     meaning
    0       2     bytes    magic     b"EW"
    2       1     u8       version   1
    3       1     u8       flags     reserved, must be 0
    4       4     u32      seq       device chunk counter
    8       8     f64      t0        device time of the first sample, seconds
    16      4     f32      fs        sampling rate, Hz
    20      4     f32      gain      counts per mV, > 0
    24      2     i16      baseline  counts at 0 mV
    26      1     u8       lead      lead code, see LEAD_CODES
    27      2     u16      n         number of samples
    29      2n    i16[n]   samples   raw counts

The payload length must be exactly ``29 + 2n``. Lead codes: 0 ECG
(unspecified), 1 I, 2 II, 3 III, 4-9 V1-V6, 10 aVR, 11 aVL, 12 aVF, 13 MLII.
"""

from __future__ import annotations

import json
import math
import re
import struct
from typing import Any, NoReturn

import numpy as np

from detect.errors import ChunkError, InputError, PayloadError
from detect.types import DEVICE_ID_RE, Chunk

MAX_PAYLOAD_BYTES = 256 * 1024
MAX_SAMPLES = 10_000              # 10 s at 1000 Hz, the longest legal chunk
MAX_SEQ = 2**32 - 1               # binary seq is u32; JSON uses the same range
# No ECG front end produces 10 V; larger values are scaling mistakes, and letting
# them through would only overflow filter state downstream.
MAX_ABS_MV = 10_000.0
MAX_LEAD_LEN = 32

BINARY_MAGIC = b"EW"
BINARY_VERSION = 1
_HEADER = struct.Struct("<2sBBIdffhBH")
BINARY_HEADER_SIZE = _HEADER.size      # 29

LEAD_CODES: dict[int, str] = {
    0: "ECG", 1: "I", 2: "II", 3: "III",
    4: "V1", 5: "V2", 6: "V3", 7: "V4", 8: "V5", 9: "V6",
    10: "aVR", 11: "aVL", 12: "aVF", 13: "MLII",
}
_LEAD_TO_CODE = {name: code for code, name in LEAD_CODES.items()}
_LEAD_RE = re.compile(r"[ -~]{1,%d}" % MAX_LEAD_LEN)     # printable ASCII
_JSON_WS = b" \t\r\n"
_COUNTS = np.dtype("<i2")                # binary samples
_I16_MIN, _I16_MAX = -32768, 32767      # the range of binary counts


# ---------------------------------------------------------------- decoding

def decode_samples(topic_device_id: str, payload: bytes) -> Chunk:
    """Decode one samples payload published on ``ecg/v1/{topic_device_id}/samples``.

    Raises PayloadError (cannot be read as a v1 payload) or ChunkError (read,
    but a value breaks the contract); never any other exception.
    """
    if not isinstance(topic_device_id, str) or not DEVICE_ID_RE.fullmatch(topic_device_id):
        raise ChunkError(f"Device id {_show(topic_device_id)} is not 1 to 64 characters of "
                         "A-Z, a-z, 0-9, '_' or '-'.", reason="bad_device_id")
    dev = topic_device_id
    if isinstance(payload, (bytearray, memoryview)):
        payload = bytes(payload)
    if not isinstance(payload, bytes):
        raise PayloadError(f"Samples payload from device {dev!r} is a "
                           f"{type(payload).__name__}, not bytes.", device_id=dev)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"Samples payload from device {dev!r} is {len(payload)} bytes; the "
                           f"limit is {MAX_PAYLOAD_BYTES}.", device_id=dev, reason="too_large")
    if not payload:
        raise PayloadError(f"Samples payload from device {dev!r} is empty.",
                           device_id=dev, reason="empty")
    if payload.startswith(BINARY_MAGIC):
        return _decode_binary(dev, payload)
    if payload.lstrip(_JSON_WS)[:1] == b"{":
        return _decode_json(dev, payload)
    raise PayloadError(f"Samples payload from device {dev!r} starts with "
                       f"{payload[:8]!r}, which is neither a JSON object nor binary "
                       f"magic {BINARY_MAGIC!r}.", device_id=dev, reason="unknown_format")


def _decode_binary(dev: str, payload: bytes) -> Chunk:
    if len(payload) >= 3 and payload[2] != BINARY_VERSION:
        raise PayloadError(f"Binary samples payload from device {dev!r} has version "
                           f"{payload[2]}; this service reads version {BINARY_VERSION}.",
                           device_id=dev, reason="unsupported_version")
    if len(payload) < BINARY_HEADER_SIZE:
        raise PayloadError(f"Binary samples payload from device {dev!r} is {len(payload)} "
                           f"bytes, shorter than the {BINARY_HEADER_SIZE}-byte header.",
                           device_id=dev, reason="truncated")
    _, _, flags, seq, t0, fs, gain, baseline, lead_code, n = _HEADER.unpack_from(payload)
    lead = LEAD_CODES.get(lead_code)
    if (flags != 0 or n > MAX_SAMPLES or len(payload) != BINARY_HEADER_SIZE + 2 * n
            or not math.isfinite(t0) or not (math.isfinite(gain) and gain > 0) or lead is None):
        _check_binary_header(dev, payload, flags, seq, t0, gain, lead_code, n)
    # (Positional arguments and a dtype object: keywords and a dtype string cost
    # the call as much again.)
    counts = np.frombuffer(payload, _COUNTS, n, BINARY_HEADER_SIZE)
    # mV = (counts - baseline) / gain in float64, in place after the conversion;
    # no subtraction at baseline 0 (x - 0.0 is x).
    mv = counts.astype(np.float64)
    if baseline:
        mv -= float(baseline)
    gain = float(gain)
    mv /= gain
    # No int16 count lies further from the baseline than this many mV (the
    # difference is exact, and rounding the quotient is monotonic), so at the
    # usual gains no sample needs looking at to know it is within the limit.
    bound = max(_I16_MAX - baseline, baseline - _I16_MIN) / gain
    return _make_chunk(dev, seq, t0, float(fs), mv, lead, bound)


def _check_binary_header(dev: str, payload: bytes, flags: int, seq: int, t0: float,
                         gain: float, lead_code: int, n: int) -> NoReturn:
    """Raise the first of the header's faults, as a message (only called when it has one)."""
    where = f"Binary samples payload seq {seq} from device {dev!r}"
    if flags != 0:
        _reject(PayloadError, dev, seq, "unsupported_flags",
                f"{where} sets reserved flags 0x{flags:02x}; v1 requires 0.")
    if n > MAX_SAMPLES:
        _reject(ChunkError, dev, seq, "too_many_samples",
                f"{where} declares {n} samples; the limit is {MAX_SAMPLES}.")
    expected = BINARY_HEADER_SIZE + 2 * n
    if len(payload) != expected:
        reason = "truncated" if len(payload) < expected else "trailing_bytes"
        _reject(PayloadError, dev, seq, reason,
                f"{where} is {len(payload)} bytes but a header declaring {n} samples "
                f"needs exactly {expected}.")
    if not math.isfinite(t0):
        _reject(ChunkError, dev, seq, "bad_time",
                f"{where} has start time t0={t0!r}; it must be a finite number of seconds.")
    if not (math.isfinite(gain) and gain > 0):
        _reject(ChunkError, dev, seq, "bad_gain",
                f"{where} has gain {gain!r} counts/mV; it must be a positive number.")
    _reject(ChunkError, dev, seq, "bad_lead",
            f"{where} has lead code {lead_code}; v1 defines codes 0 to {max(LEAD_CODES)}.")


def _decode_json(dev: str, payload: bytes) -> Chunk:
    doc = _parse_json_object(dev, payload)
    where = f"JSON samples payload from device {dev!r}"

    if "v" not in doc:
        _reject(PayloadError, dev, None, "missing_field", f"{where} has no version field 'v'.")
    if _as_int(doc["v"]) != 1:
        _reject(PayloadError, dev, None, "unsupported_version",
                f"{where} has version v={_show(doc['v'])}; this service reads v=1.")
    if "device_id" in doc and doc["device_id"] != dev:
        _reject(PayloadError, dev, None, "device_mismatch",
                f"{where} names device_id {_show(doc['device_id'])}, which differs from the "
                f"topic's device {dev!r}.")
    for name in ("seq", "t0", "fs", "samples"):
        if name not in doc:
            _reject(PayloadError, dev, None, "missing_field",
                    f"{where} has no required field {name!r}.")

    seq = _as_int(doc["seq"])
    if seq is None or not 0 <= seq <= MAX_SEQ:
        _reject(ChunkError, dev, None, "bad_seq",
                f"{where} has seq {_show(doc['seq'])}; it must be an integer from 0 to {MAX_SEQ}.")
    where = f"JSON samples payload seq {seq} from device {dev!r}"
    t0 = _as_float(doc["t0"])
    if t0 is None:
        _reject(ChunkError, dev, seq, "bad_time",
                f"{where} has start time t0={_show(doc['t0'])}; it must be a finite number "
                "of seconds.")
    fs = _as_float(doc["fs"])
    if fs is None:
        _reject(ChunkError, dev, seq, "bad_rate",
                f"{where} has sampling rate fs={_show(doc['fs'])}; it must be a number of Hz.")
    lead = doc.get("lead", "ECG")
    if not isinstance(lead, str) or not _LEAD_RE.fullmatch(lead):
        _reject(ChunkError, dev, seq, "bad_lead",
                f"{where} has lead {_show(lead)}; it must be 1 to {MAX_LEAD_LEN} printable "
                "ASCII characters.")
    gain, baseline = _json_scale(doc, where, dev, seq)

    raw = doc["samples"]
    if not isinstance(raw, list):
        _reject(ChunkError, dev, seq, "bad_samples",
                f"{where} has samples {_show(raw)}; it must be an array of numbers.")
    if len(raw) > MAX_SAMPLES:
        _reject(ChunkError, dev, seq, "too_many_samples",
                f"{where} holds {len(raw)} samples; the limit is {MAX_SAMPLES}.")
    for i, x in enumerate(raw):
        # Exact type check: json yields only int/float for numbers, and this
        # keeps out bool (an int subclass) and numeric-looking strings.
        if type(x) is not int and type(x) is not float:
            _reject(ChunkError, dev, seq, "bad_samples",
                    f"{where} has sample {_show(x)} at index {i}; samples must be numbers.")
    try:
        values = np.array(raw, dtype=np.float64)
    except OverflowError:
        bad = next(i for i, x in enumerate(raw) if _as_float(x) is None)
        _reject(ChunkError, dev, seq, "out_of_range",
                f"{where} has sample {_show(raw[bad])} at index {bad}, too large for a float.")
    with np.errstate(over="ignore", invalid="ignore"):
        mv = (values - baseline) / gain
    return _make_chunk(dev, seq, t0, fs, mv, lead)


def _json_scale(doc: dict[str, Any], where: str, dev: str, seq: int) -> tuple[float, float]:
    """Return (gain, baseline) so that mV = (value - baseline) / gain."""
    has_gain, has_unit = "gain" in doc, "unit" in doc
    if has_gain and has_unit:
        _reject(ChunkError, dev, seq, "ambiguous_scale",
                f"{where} has both 'gain' and 'unit'; send counts with 'gain' or millivolts "
                "with \"unit\": \"mV\", not both.")
    if has_unit:
        if doc["unit"] != "mV":
            _reject(ChunkError, dev, seq, "bad_unit",
                    f"{where} has unit {_show(doc['unit'])}; the only v1 unit is 'mV'.")
        if "baseline" in doc:
            _reject(ChunkError, dev, seq, "ambiguous_scale",
                    f"{where} has a 'baseline' with samples in mV; baseline applies to counts "
                    "with 'gain' only.")
        return 1.0, 0.0
    if not has_gain:
        _reject(ChunkError, dev, seq, "missing_scale",
                f"{where} has neither 'gain' (counts per mV) nor \"unit\": \"mV\".")
    gain = _as_float(doc["gain"])
    if gain is None or not gain > 0:
        _reject(ChunkError, dev, seq, "bad_gain",
                f"{where} has gain {_show(doc['gain'])} counts/mV; it must be a positive number.")
    baseline = _as_float(doc.get("baseline", 0))
    if baseline is None:
        _reject(ChunkError, dev, seq, "bad_baseline",
                f"{where} has baseline {_show(doc['baseline'])}; it must be a number of counts.")
    return gain, baseline


class _JsonRejected(Exception):
    """Raised from json hooks; turned into a PayloadError by the caller."""


def _no_nan_literals(name: str) -> NoReturn:
    raise _JsonRejected(f"the literal {name}, which JSON does not allow")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _JsonRejected(f"the number {text[:40]}, which does not fit a double")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A repeated key means two readers (this decoder, a schema validator, a
    # device-side log) may each see a different value; refuse to guess.
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise _JsonRejected(f"the key {key[:40]!r} twice")
        doc[key] = value
    return doc


def _parse_json_object(dev: str, payload: bytes) -> dict[str, Any]:
    where = f"JSON samples payload from device {dev!r}"
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PayloadError(f"{where} is not valid UTF-8 (bad byte at offset {e.start}).",
                           device_id=dev, reason="bad_json") from None
    try:
        doc = json.loads(text, parse_constant=_no_nan_literals, parse_float=_finite_float,
                         object_pairs_hook=_unique_keys)
    except _JsonRejected as e:
        raise PayloadError(f"{where} contains {e}.", device_id=dev, reason="bad_json") from None
    except json.JSONDecodeError as e:
        raise PayloadError(f"{where} is not valid JSON: {e.msg} at character {e.pos}.",
                           device_id=dev, reason="bad_json") from None
    except RecursionError:
        raise PayloadError(f"{where} nests arrays or objects too deeply to read.",
                           device_id=dev, reason="bad_json") from None
    except ValueError:
        # Integers longer than Python's int/str digit limit (4300 digits).
        raise PayloadError(f"{where} contains an integer too long to read.",
                           device_id=dev, reason="bad_json") from None
    if not isinstance(doc, dict):     # unreachable after the '{' sniff; kept as a guard
        raise PayloadError(f"{where} is not a JSON object.", device_id=dev, reason="bad_json")
    return doc


def _make_chunk(dev: str, seq: int, t0: float, fs: float, mv: np.ndarray, lead: str,
                bound: float = math.inf) -> Chunk:
    """The chunk of samples ``mv`` (mV), whose magnitudes the caller knows to be at most
    ``bound`` (a number or inf), checked against :data:`MAX_ABS_MV`."""
    # The common case in one reduction (or none, when ``bound`` already settles it):
    # the largest |sample| within the limit means every sample is finite and small
    # enough (NaN fails the comparison, as inf does the limit), so the two checks
    # below, with their messages, run only otherwise.
    # (Both decoders build ``mv`` afresh in float64, so it is Chunk's own contiguous array.)
    if mv.size and (bound <= MAX_ABS_MV or np.abs(mv).max() <= MAX_ABS_MV):
        return Chunk(dev, seq, t0, fs, mv, lead)
    finite = np.isfinite(mv)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        _reject(ChunkError, dev, seq, "out_of_range",
                f"Samples payload seq {seq} from device {dev!r} has a sample at index {bad} "
                "that does not fit a double once scaled to mV.")
    big = np.abs(mv) > MAX_ABS_MV
    if big.any():
        bad = int(np.flatnonzero(big)[0])
        _reject(ChunkError, dev, seq, "out_of_range",
                f"Samples payload seq {seq} from device {dev!r} has {mv[bad]:.6g} mV at index "
                f"{bad}; ecgwatch accepts at most {MAX_ABS_MV:g} mV in magnitude.")
    # Chunk checks rate range, duration and finiteness and raises ChunkError.
    return Chunk(dev, seq, t0, fs, mv, lead)


def _as_int(value: object) -> int | None:
    """An integer per JSON Schema (3 and 3.0 alike), else None; bool is not a number."""
    if type(value) is int:
        return value
    if type(value) is float and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def _as_float(value: object) -> float | None:
    """A finite float from a JSON number, else None (bool, str, overflowing int)."""
    if type(value) is not int and type(value) is not float:
        return None
    try:
        f = float(value)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def _show(value: object, limit: int = 60) -> str:
    """``repr`` cut short: messages travel in reject payloads and logs."""
    try:
        text = repr(value)
    except ValueError:      # int repr beyond Python's digit limit
        text = f"<{type(value).__name__} too long to show>"
    return text if len(text) <= limit else text[:limit] + "..."


def _reject(cls: type[InputError], dev: str, seq: int | None, reason: str,
            message: str) -> NoReturn:
    raise cls(message, device_id=dev, seq=seq, reason=reason)


# ---------------------------------------------------------------- encoding

def encode_json(chunk: Chunk, *, gain: float | None = None) -> bytes:
    """JSON v1 payload for ``chunk``.

    ``gain=None`` sends millivolts rounded to 4 decimals (0.1 uV, far below
    any ECG front end's noise); a ``gain`` sends integer counts
    ``round(mV * gain)`` with baseline 0.
    """
    seq = _encodable_seq(chunk)
    _encodable_lead(chunk.lead)
    doc: dict[str, Any] = {"v": 1, "device_id": chunk.device_id, "seq": seq,
                           "t0": chunk.t0, "fs": chunk.fs, "lead": chunk.lead}
    if gain is None:
        doc["unit"] = "mV"
        doc["samples"] = np.round(chunk.samples, 4).tolist()
    else:
        _check_gain(gain)
        counts = np.rint(chunk.samples * gain)
        if not np.all(np.abs(counts) < 2.0**53):
            raise ValueError(f"Gain {gain!r} makes chunk seq {seq} of device "
                             f"{chunk.device_id!r} overflow integer counts.")
        doc["gain"] = float(gain)
        doc["samples"] = counts.astype(np.int64).tolist()
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")


def encode_binary(chunk: Chunk, *, gain: float = 200.0) -> bytes:
    """Binary v1 payload for ``chunk``: counts ``round(mV * gain)`` clipped to int16.

    ``gain`` is stored as f32 and the counts are computed with that stored
    value, so decoding reproduces the samples to within half a count.
    """
    seq = _encodable_seq(chunk)
    code = _LEAD_TO_CODE.get(_encodable_lead(chunk.lead))
    if code is None:
        raise ValueError(f"Lead {chunk.lead!r} of device {chunk.device_id!r} has no binary "
                         f"v1 code; known leads: {', '.join(_LEAD_TO_CODE)}.")
    _check_gain(gain)
    gain32 = float(np.float32(gain))
    if not gain32 > 0 or not math.isfinite(gain32):
        raise ValueError(f"Gain {gain!r} is not representable as a positive float32.")
    counts = np.clip(np.rint(chunk.samples * gain32), -32768, 32767).astype("<i2")
    header = _HEADER.pack(BINARY_MAGIC, BINARY_VERSION, 0, seq, float(chunk.t0),
                          float(chunk.fs), gain32, 0, code, counts.size)
    return header + counts.tobytes()


def _encodable_seq(chunk: Chunk) -> int:
    if chunk.seq > MAX_SEQ:
        raise ValueError(f"Chunk seq {chunk.seq} of device {chunk.device_id!r} exceeds the v1 "
                         f"limit {MAX_SEQ}.")
    return chunk.seq


def _encodable_lead(lead: str) -> str:
    if not _LEAD_RE.fullmatch(lead):
        raise ValueError(f"Lead {lead!r} is not 1 to {MAX_LEAD_LEN} printable ASCII characters.")
    return lead


def _check_gain(gain: float) -> None:
    if isinstance(gain, bool) or not isinstance(gain, (int, float)) \
            or not math.isfinite(gain) or gain <= 0:
        raise ValueError(f"Gain {gain!r} counts/mV must be a positive finite number.")
