"""v1 topic names: building, parsing, and refusing anything else."""

from __future__ import annotations

import pytest

from detect.errors import InputError, TopicError
from ingest.topics import (METRICS_TOPIC, REJECTS_TOPIC, SAMPLES_SUBSCRIPTION, STATUS_TOPIC,
                           alerts_topic, parse_samples_topic, samples_topic, state_topic)


def test_builders_follow_the_v1_layout():
    assert samples_topic("patch-07") == "ecg/v1/patch-07/samples"
    assert alerts_topic("patch-07") == "ecg/v1/patch-07/alerts"
    assert state_topic("patch-07") == "ecg/v1/patch-07/state"


def test_service_topics_are_fixed():
    assert SAMPLES_SUBSCRIPTION == "ecg/v1/+/samples"
    assert STATUS_TOPIC == "ecgwatch/v1/status"
    assert REJECTS_TOPIC == "ecgwatch/v1/rejects"
    assert METRICS_TOPIC == "ecgwatch/v1/metrics"


@pytest.mark.parametrize("device_id", ["a", "A_b-9", "x" * 64])
def test_parse_inverts_build(device_id):
    assert parse_samples_topic(samples_topic(device_id)) == device_id


@pytest.mark.parametrize("device_id", ["", "x" * 65, "a/b", "a+", "#", "a b", "a\n", "\x00",
                                       "dév", "a.b"])
def test_builders_refuse_ids_that_would_change_the_topic(device_id):
    with pytest.raises(TopicError) as e:
        alerts_topic(device_id)
    assert e.value.reason == "bad_device_id"


@pytest.mark.parametrize("topic,reason", [
    ("ecg/v1/+/samples", "bad_device_id"),
    ("ecg/v1/#/samples", "bad_device_id"),
    ("ecg/v1//samples", "bad_device_id"),
    ("ecg/v1/dev\n/samples", "bad_device_id"),
    ("ecg/v1/dev\x07/samples", "bad_device_id"),
    ("ecg/v1/" + "x" * 65 + "/samples", "bad_topic"),   # over the length cap
    ("ecg/v1/" + "x" * 64 + "/samples", None),          # exactly at the cap: fine
    ("ecg/v1/a/b/samples", "bad_topic"),
    ("ecg/v2/dev/samples", "bad_topic"),
    ("ecg/v1/dev/alerts", "bad_topic"),
    ("ecg/v1/dev/samples/", "bad_topic"),
    ("/ecg/v1/dev/samples", "bad_topic"),
    ("", "bad_topic"),
    ("x" * 10_000, "bad_topic"),
])
def test_parse_rejects_with_a_sentence_naming_the_topic(topic, reason):
    if reason is None:
        assert parse_samples_topic(topic) == topic.split("/")[2]
        return
    with pytest.raises(TopicError) as e:
        parse_samples_topic(topic)
    assert isinstance(e.value, InputError)
    assert e.value.reason == reason
    message = str(e.value)
    assert message.startswith("Topic ") and message.endswith(".")
    assert repr(topic[:20])[:-1] in message      # names (the start of) the topic
    assert len(message) < 300                    # never echoes a huge topic back


def test_parse_rejects_non_strings():
    with pytest.raises(TopicError):
        parse_samples_topic(b"ecg/v1/dev/samples")  # type: ignore[arg-type]
