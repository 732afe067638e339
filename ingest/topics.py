"""The v1 MQTT topic names, built and parsed in one place.

Device ids are opaque: 1 to 64 characters of ``A-Z a-z 0-9 _ -``. That set
excludes the MQTT wildcards ``+`` and ``#``, the level separator ``/``, and
control characters, so an id can never widen a subscription or smuggle a
second topic level; the full table lives in docs/protocol.md.

Ids are checked with ``fullmatch``: the shared ``DEVICE_ID_RE`` ends in
``$``, which ``re.match`` lets match before a trailing newline.
"""

from __future__ import annotations

from detect.errors import TopicError
from detect.types import DEVICE_ID_RE

SAMPLES_SUBSCRIPTION = "ecg/v1/+/samples"
CONFIG_SUBSCRIPTION = "ecg/v1/+/config"
STATUS_TOPIC = "ecgwatch/v1/status"
REJECTS_TOPIC = "ecgwatch/v1/rejects"
METRICS_TOPIC = "ecgwatch/v1/metrics"

_PREFIX = "ecg/v1/"
# Longest topic worth looking at: prefix + 64-character id + "/samples".
# Anything longer is rejected before splitting so a hostile multi-kilobyte
# topic costs nothing and is never echoed back whole.
_MAX_TOPIC_LEN = len(_PREFIX) + 64 + len("/samples")


def _shown(text: str, limit: int = 80) -> str:
    """``repr`` of ``text`` cut to ``limit`` characters for messages."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def _device_topic(device_id: str, leaf: str) -> str:
    if not isinstance(device_id, str) or not DEVICE_ID_RE.fullmatch(device_id):
        raise TopicError(f"Device id {device_id!r} cannot be used in a topic: it must be 1 to "
                         "64 characters of A-Z, a-z, 0-9, '_' or '-'.", reason="bad_device_id")
    return f"{_PREFIX}{device_id}/{leaf}"


def samples_topic(device_id: str) -> str:
    """``ecg/v1/{device_id}/samples``: ECG chunks, device back end -> service."""
    return _device_topic(device_id, "samples")


def alerts_topic(device_id: str) -> str:
    """``ecg/v1/{device_id}/alerts``: one AlarmTransition per message, service -> consumers."""
    return _device_topic(device_id, "alerts")


def state_topic(device_id: str) -> str:
    """``ecg/v1/{device_id}/state``: retained DeviceState summary."""
    return _device_topic(device_id, "state")


def config_topic(device_id: str) -> str:
    """``ecg/v1/{device_id}/config``: retained per-device alarm settings, operator -> service."""
    return _device_topic(device_id, "config")


def parse_device_topic(topic: str) -> tuple[str, str]:
    """``(device_id, leaf)`` of a samples or config topic the service subscribes to."""
    if isinstance(topic, str) and topic.endswith("/config") and len(topic) <= _MAX_TOPIC_LEN:
        parts = topic.split("/")
        if len(parts) == 4 and parts[:2] == ["ecg", "v1"]:
            if not DEVICE_ID_RE.fullmatch(parts[2]):
                raise TopicError(f"Topic {_shown(topic)} carries device id {_shown(parts[2])}, "
                                 "which is not 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'.",
                                 reason="bad_device_id")
            return parts[2], "config"
    return parse_samples_topic(topic), "samples"


def parse_samples_topic(topic: str) -> str:
    """Return the device id of a v1 samples topic, or raise TopicError.

    Only the exact shape ``ecg/v1/{device_id}/samples`` is accepted; the
    broker already filtered by the subscription, so anything else here means
    a misbehaving broker, a shared subscription gone wrong, or a device
    publishing to a wildcard-looking topic.
    """
    if not isinstance(topic, str):
        raise TopicError(f"Topic {topic!r} is not a string.")
    if len(topic) > _MAX_TOPIC_LEN:
        raise TopicError(f"Topic {_shown(topic)} is {len(topic)} characters long; a v1 samples "
                         f"topic has at most {_MAX_TOPIC_LEN}.")
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != "ecg" or parts[1] != "v1" or parts[3] != "samples":
        raise TopicError(f"Topic {_shown(topic)} is not of the form "
                         "'ecg/v1/{device_id}/samples'.")
    device_id = parts[2]
    if not DEVICE_ID_RE.fullmatch(device_id):
        raise TopicError(f"Topic {_shown(topic)} carries device id {_shown(device_id)}, which is "
                         "not 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'.",
                         reason="bad_device_id")
    return device_id
