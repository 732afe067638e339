"""One exception hierarchy for ecgwatch.

Messages are whole sentences that name the device and the bad value, because
they travel to operators in logs and to device back ends in reject messages.
"""

from __future__ import annotations


class EcgwatchError(Exception):
    """Base class of every error ecgwatch raises on purpose."""


class ConfigError(EcgwatchError):
    """A configuration value is out of range or inconsistent."""


class InputError(EcgwatchError):
    """Input from a device cannot be used; the service rejects it and goes on.

    ``reason`` is a short, stable machine code (counted in metrics and sent in
    reject messages); the exception text is the human sentence.
    """

    reason = "invalid"

    def __init__(self, message: str, *, device_id: str | None = None,
                 seq: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.device_id = device_id
        self.seq = seq
        if reason is not None:
            self.reason = reason


class TopicError(InputError):
    """The MQTT topic is not one of the documented v1 topics."""

    reason = "bad_topic"


class PayloadError(InputError):
    """The payload cannot be decoded into a chunk of samples."""

    reason = "bad_payload"


class ChunkError(InputError):
    """A decoded chunk breaks the contract (rate, length, values)."""

    reason = "bad_chunk"


class StreamError(InputError):
    """A chunk does not fit the device's stream (duplicate, too late, rate change)."""

    reason = "stream"


class ModelError(EcgwatchError):
    """A model file is missing, corrupt or has the wrong shapes."""


class BrokerError(EcgwatchError):
    """The MQTT broker cannot be reached or refused the connection."""
