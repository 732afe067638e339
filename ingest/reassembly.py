"""Per-device stream reassembly: seq order, duplicates, late chunks and gaps.

MQTT QoS 1 delivers every chunk *at least once* and, across reconnects and
back-end retries, not necessarily in order. The detector needs the opposite:
each chunk exactly once, in order, with every discontinuity announced. This
stage sits between the two, one instance per device, and works like a TCP
receive window (RFC 9293 section 3.10.7.4) measured in chunks instead of
bytes, with a wall-clock give-up instead of retransmission.

Rules (``now`` is the service's wall clock in seconds, injected by the
caller; device time is the chunks' ``t0``):

* Start: seq 0 starts the stream at once. A stream joined mid-way (the
  service restarted, or the device's counter is not at 0) starts at the
  lowest seq received before the first give-up below, so chunks reordered
  at the very start are not mistaken for late ones. Nothing precedes it: no
  Gap is reported for the start.
* A chunk whose seq is the next expected one is released, followed by any
  held chunks that are now contiguous. A chunk further ahead is held.
* A missing seq is given up on - the stream skips to the lowest held seq
  with a ``missing_seq`` Gap - when the oldest held chunk has waited
  ``reorder_timeout_s`` of wall time, or at once when more than
  ``reorder_window`` chunks would be held. So no chunk waits longer than the
  timeout and at most ``reorder_window`` chunks are ever held.
* A seq already released (or already held) is a Duplicate and dropped. A
  seq below the next expected one that was never released (skipped by a
  gap, or from before the stream started) is Late and dropped.
* Seq restart: a seq more than ``4 * reorder_window`` below the last
  released one whose ``t0`` is not earlier than the newest device time seen
  (minus ``max_gap_s``) is a device reboot or counter wrap, not a very late
  chunk: held chunks are flushed and a new stream starts with a
  ``seq_restart`` Gap. This relies on device time staying monotonic across
  reboots, which holds for the epoch-based clocks v1 asks for.
* Between two consecutive released chunks, a change of ``fs`` is a
  ``rate_change`` Gap and a ``t0`` more than ``max_gap_s`` away from the
  previous chunk's end (either direction) is a ``time_jump`` Gap. One Gap
  per boundary; priority seq_restart > rate_change > missing_seq > time_jump.
* ``tick(now)``: after ``no_data_timeout_s`` of wall time without an
  accepted chunk, one ``no_data`` Gap (from the last released chunk's end,
  lasting the elapsed wall time); it is not repeated until data resumes.
  When data resumes, a device-time discontinuity, if any, is reported as
  usual by the next released chunk.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Union

from detect.config import DetectorConfig
from detect.errors import StreamError
from detect.records import quick_init
from detect.types import Chunk, check_device_id


class GapReason(str, enum.Enum):
    """Why the stream is discontinuous; the value is the stable wire/metrics name."""

    MISSING_SEQ = "missing_seq"
    TIME_JUMP = "time_jump"
    RATE_CHANGE = "rate_change"
    SEQ_RESTART = "seq_restart"
    NO_DATA = "no_data"


@quick_init
@dataclass(frozen=True, slots=True)
class Ready:
    """The next chunk of the stream, in seq order; feed it to the pipeline."""

    chunk: Chunk
    kind: ClassVar[str] = "ready"


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A seq that was already received; dropped."""

    device_id: str
    seq: int
    kind: ClassVar[str] = "duplicate"
    reason: ClassVar[str] = "duplicate"

    @property
    def message(self) -> str:
        return f"Chunk seq {self.seq} from device {self.device_id!r} was already received; " \
               "the copy was dropped."


@dataclass(frozen=True, slots=True)
class Late:
    """A seq older than what was already released, never seen before; dropped."""

    device_id: str
    seq: int
    released_up_to: int | None = None
    kind: ClassVar[str] = "late"
    reason: ClassVar[str] = "late"

    @property
    def message(self) -> str:
        upto = "" if self.released_up_to is None else \
            f" after the stream had moved on to seq {self.released_up_to}"
        return f"Chunk seq {self.seq} from device {self.device_id!r} arrived{upto}; " \
               "it was dropped as too late."


@dataclass(frozen=True, slots=True)
class Gap:
    """A discontinuity in device time before the next Ready chunk.

    ``start`` is the end of the last released chunk, ``end`` the start of the
    next one (for ``no_data``: ``start`` plus the silent wall time). ``end``
    is below ``start`` when device time stepped backwards.
    """

    device_id: str
    after_seq: int | None
    next_seq: int | None
    start: float
    end: float
    reason: GapReason
    kind: ClassVar[str] = "gap"

    def __post_init__(self) -> None:
        if not isinstance(self.reason, GapReason):
            raise ValueError(f"Gap reason {self.reason!r} for device {self.device_id!r} is not "
                             "a GapReason.")
        if not (math.isfinite(self.start) and math.isfinite(self.end)):
            raise ValueError(f"Gap {self.start!r}..{self.end!r} for device {self.device_id!r} "
                             "is not finite.")
        if self.reason is GapReason.MISSING_SEQ and not (
                self.after_seq is not None and self.next_seq is not None
                and self.next_seq > self.after_seq + 1):
            raise ValueError(f"Gap for device {self.device_id!r} claims missing seqs between "
                             f"{self.after_seq} and {self.next_seq}.")

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def detail(self) -> str:
        """One sentence for logs and for ``DevicePipeline.gap(..., detail)``."""
        span = f"device time {self.start:.3f} s to {self.end:.3f} s"
        r = self.reason
        if r is GapReason.MISSING_SEQ:
            n = self.next_seq - self.after_seq - 1        # type: ignore[operator]
            lost = f"seq {self.after_seq + 1}" if n == 1 else \
                f"seq {self.after_seq + 1} to {self.next_seq - 1}"  # type: ignore[operator]
            return f"{lost} of device {self.device_id!r} never arrived ({span})."
        if r is GapReason.TIME_JUMP:
            return f"Device {self.device_id!r} jumps in time between seq {self.after_seq} and " \
                   f"{self.next_seq} ({span})."
        if r is GapReason.RATE_CHANGE:
            return f"Device {self.device_id!r} changes its sampling rate between seq " \
                   f"{self.after_seq} and {self.next_seq} ({span})."
        if r is GapReason.SEQ_RESTART:
            return f"Device {self.device_id!r} restarts its seq counter from " \
                   f"{self.after_seq} to {self.next_seq} ({span})."
        return f"Device {self.device_id!r} sent nothing for {self.duration:.1f} s of wall " \
               f"time after seq {self.after_seq} ({span})."


class _Released(NamedTuple):
    """What the reassembler remembers of the last chunk it released."""

    seq: int
    fs: float
    t_end: float


StreamEvent = Union[Ready, Duplicate, Late, Gap]


class StreamReassembler:
    """Turns one device's at-least-once, possibly reordered chunks into an ordered stream."""

    def __init__(self, device_id: str, config: DetectorConfig | None = None) -> None:
        self.device_id = check_device_id(device_id)
        self.config = config or DetectorConfig()
        self._window = max(0, int(self.config.reorder_window))
        self._held: dict[int, tuple[Chunk, float]] = {}   # seq -> (chunk, arrival wall time)
        self._last: _Released | None = None                # last released chunk
        self._next_seq: int | None = None
        # Seqs released recently, to tell a Duplicate from a Late chunk. A copy of
        # something older than this is reported as Late: either way it is dropped.
        # A list trimmed by hand: a deque costs 760 bytes however short.
        self._recent: list[int] = []
        self._recent_keep = max(16, 4 * self._window)
        self._last_arrival: float | None = None
        self._silence_reported = False

    # -- inspection ---------------------------------------------------------

    @property
    def held(self) -> int:
        """Chunks waiting for a missing seq (never more than ``reorder_window``)."""
        return len(self._held)

    def holds(self, seq: int) -> bool:
        """Whether chunk ``seq`` is held back, waiting for a missing one before it."""
        return seq in self._held

    @property
    def next_seq(self) -> int | None:
        return self._next_seq

    @property
    def last_t_end(self) -> float | None:
        """Device time just after the last released chunk."""
        return None if self._last is None else self._last.t_end

    # -- input --------------------------------------------------------------

    def push(self, chunk: Chunk, now: float) -> list[StreamEvent]:
        """Accept one decoded chunk that arrived at wall time ``now``."""
        if chunk.device_id != self.device_id:
            raise StreamError(f"Chunk seq {chunk.seq} of device {chunk.device_id!r} was routed "
                              f"to the stream of device {self.device_id!r}.",
                              device_id=chunk.device_id, seq=chunk.seq, reason="wrong_stream")
        seq = chunk.seq
        if seq == self._next_seq and not self._held:
            # Most chunks: the next one, nothing held (so nothing to expire either).
            # What holding then draining it does.
            self._arrived(now)
            return self._release(chunk, None)
        # Expire first, as if tick(now) had just run: results then do not depend
        # on how often the caller ticks.
        events = self._expire(now)
        if self._next_seq is not None and seq < self._next_seq:
            if self._is_restart(chunk):
                self._arrived(now)
                events += self._restart(chunk)
            elif seq in self._recent:
                events.append(Duplicate(self.device_id, seq))
            else:
                events.append(Late(self.device_id, seq, self._next_seq - 1))
        elif seq in self._held:
            events.append(Duplicate(self.device_id, seq))
        else:
            self._arrived(now)
            self._held[seq] = (chunk, now)
            events += self._drain()
            while len(self._held) > self._window:
                events += self._skip()
        return events

    def tick(self, now: float) -> list[StreamEvent]:
        """Let wall time pass without data: give up on missing seqs, report silence."""
        events = self._expire(now) if self._held else []     # (most calls: nothing held)
        if (self._last is not None and self._last_arrival is not None
                and not self._silence_reported
                and self._last_arrival + self.config.no_data_timeout_s <= now):
            self._silence_reported = True
            start = self._last.t_end
            events.append(Gap(self.device_id, self._last.seq, None, start,
                              start + (now - self._last_arrival), GapReason.NO_DATA))
        return events

    def flush(self) -> list[StreamEvent]:
        """End of a finite stream: release everything held, skipping the holes."""
        events: list[StreamEvent] = []
        while self._held:
            events += self._skip()
        return events

    # -- internals ----------------------------------------------------------

    def _arrived(self, now: float) -> None:
        self._last_arrival = now
        self._silence_reported = False

    def _expire(self, now: float) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        timeout = self.config.reorder_timeout_s
        # Deadline form (arrival + timeout <= now): the same float sum as a
        # caller that waits exactly the timeout after an arrival.
        while self._held and min(t for _, t in self._held.values()) + timeout <= now:
            events += self._skip()
        return events

    def _skip(self) -> list[StreamEvent]:
        """Stop waiting for the missing seq: release the lowest held chunk and what follows."""
        chunk, _ = self._held.pop(min(self._held))
        return self._release(chunk, GapReason.MISSING_SEQ) + self._drain()

    def _drain(self) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        # Before the stream starts only seq 0 is known to have no predecessor.
        expected = 0 if self._next_seq is None else self._next_seq
        while expected in self._held:
            chunk, _ = self._held.pop(expected)
            events += self._release(chunk, None)
            expected = chunk.seq + 1
        return events

    def _is_restart(self, chunk: Chunk) -> bool:
        assert self._last is not None and self._next_seq is not None
        if chunk.seq >= self._next_seq - 1 - 4 * max(1, self._window):
            return False
        newest = max([self._last.t_end] + [c.t_end for c, _ in self._held.values()])
        return chunk.t0 >= newest - self.config.max_gap_s

    def _restart(self, chunk: Chunk) -> list[StreamEvent]:
        events = self.flush()               # the old stream's held chunks come first
        self._recent.clear()
        return events + self._release(chunk, GapReason.SEQ_RESTART)

    def _release(self, chunk: Chunk, cause: GapReason | None) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        prev = self._last
        if prev is not None:
            reason = cause if cause is GapReason.SEQ_RESTART else None
            if reason is None and chunk.fs != prev.fs:
                reason = GapReason.RATE_CHANGE
            if reason is None:
                reason = cause
            if reason is None and abs(chunk.t0 - prev.t_end) > self.config.max_gap_s:
                reason = GapReason.TIME_JUMP
            if reason is not None:
                events.append(Gap(self.device_id, prev.seq, chunk.seq, prev.t_end, chunk.t0,
                                  reason))
        events.append(Ready(chunk))
        # Its samples are the pipeline's now; keeping them here would double them.
        self._last = _Released(chunk.seq, chunk.fs, chunk.t_end)
        self._next_seq = chunk.seq + 1
        self._recent.append(chunk.seq)
        if len(self._recent) > self._recent_keep:
            del self._recent[0]
        return events
