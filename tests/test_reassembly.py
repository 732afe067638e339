"""Stream reassembly with a fake wall clock: order, duplicates, late chunks and gaps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from detect.config import DetectorConfig
from detect.errors import StreamError
from detect.types import Chunk
from ingest.reassembly import Duplicate, Gap, GapReason, Late, Ready, StreamReassembler

DEV = "patch-07"
CFG = DetectorConfig()          # window 8, reorder timeout 2 s, no data 10 s, max gap 0.05 s
CHUNK_S = 0.5


def chunk(seq: int, *, t0: float | None = None, fs: float = 250.0, dev: str = DEV) -> Chunk:
    """Chunk ``seq`` of a contiguous 0.5 s-per-chunk stream (or at an explicit ``t0``)."""
    n = int(round(CHUNK_S * fs))
    return Chunk(dev, seq, seq * CHUNK_S if t0 is None else t0, fs, np.zeros(n))


def shape(events) -> list:
    """Events with each Ready reduced to its seq (chunks hold arrays: no ``==``)."""
    return [("ready", e.chunk.seq) if isinstance(e, Ready) else e for e in events]


def ready_seqs(events) -> list[int]:
    return [e.chunk.seq for e in events if isinstance(e, Ready)]


def gaps(events) -> list[Gap]:
    return [e for e in events if isinstance(e, Gap)]


def feed(r: StreamReassembler, seqs, now: float = 0.0) -> list:
    out = []
    for s in seqs:
        out += r.push(chunk(s), now)
    return out


def test_in_order_stream_passes_straight_through():
    r = StreamReassembler(DEV, CFG)
    pushed = [chunk(s) for s in range(5)]
    events = [e for c in pushed for e in r.push(c, 0.0)]
    assert shape(events) == [("ready", s) for s in range(5)]
    assert [e.chunk for e in events] == pushed        # the very objects, not copies
    assert r.next_seq == 5 and r.held == 0 and r.last_t_end == pytest.approx(2.5)


def test_a_stream_joined_midway_starts_at_the_lowest_seq_seen_in_time():
    r = StreamReassembler(DEV, CFG)
    assert feed(r, [41, 40], now=0.0) == []          # is 39 on its way? wait and see
    assert feed(r, [39], now=1.0) == []
    events = r.tick(2.0)                             # 41 has waited the reorder timeout
    assert shape(events) == [("ready", 39), ("ready", 40), ("ready", 41)]   # no Gap
    assert r.push(chunk(38), 2.0) == [Late(DEV, 38, 41)]
    assert r.push(chunk(40), 2.0) == [Duplicate(DEV, 40)]


def test_a_stream_joined_midway_starts_when_the_window_fills():
    r = StreamReassembler(DEV, CFG)
    assert feed(r, range(10, 10 + CFG.reorder_window)) == []
    events = feed(r, [10 + CFG.reorder_window])
    assert ready_seqs(events) == list(range(10, 11 + CFG.reorder_window)) and not gaps(events)


def test_out_of_order_chunks_within_the_window_are_reordered():
    r = StreamReassembler(DEV, CFG)
    assert ready_seqs(feed(r, [0])) == [0]
    assert feed(r, [3, 2]) == []
    assert r.held == 2
    events = feed(r, [1])
    assert ready_seqs(events) == [1, 2, 3] and not gaps(events)
    assert r.held == 0


def test_duplicates_are_reported_and_dropped_whether_released_or_held():
    r = StreamReassembler(DEV, CFG)
    feed(r, [0, 1, 3])
    assert feed(r, [1]) == [Duplicate(DEV, 1)]
    assert feed(r, [3]) == [Duplicate(DEV, 3)]
    assert ready_seqs(feed(r, [2])) == [2, 3]
    assert feed(r, [3, 0]) == [Duplicate(DEV, 3), Duplicate(DEV, 0)]


def test_missing_seq_is_given_up_after_the_reorder_timeout_of_wall_time():
    r = StreamReassembler(DEV, CFG)
    r.push(chunk(0), now=100.0)
    assert r.push(chunk(2), now=100.5) == []
    assert r.tick(102.4) == []                      # 1.9 s waited: still hoping for seq 1
    events = r.tick(102.5)                          # 2.0 s: give up
    assert shape(events) == [Gap(DEV, 0, 2, 0.5, 1.0, GapReason.MISSING_SEQ), ("ready", 2)]
    assert "seq 1 of device 'patch-07' never arrived" in events[0].detail
    # The missing chunk turning up now is late, not a duplicate, and is dropped.
    assert r.push(chunk(1), now=103.0) == [Late(DEV, 1, 2)]
    assert ready_seqs(r.push(chunk(3), now=103.0)) == [3]


def test_expiry_also_happens_on_push_so_tick_rate_does_not_matter():
    r = StreamReassembler(DEV, CFG)
    r.push(chunk(0), now=0.0)
    r.push(chunk(2), now=0.0)
    events = r.push(chunk(1), now=5.0)              # no tick in between
    assert [type(e) for e in events] == [Gap, Ready, Late]


def test_no_chunk_waits_longer_than_the_timeout_even_behind_two_holes():
    r = StreamReassembler(DEV, CFG)
    r.push(chunk(0), now=0.0)
    r.push(chunk(2), now=0.0)
    r.push(chunk(5), now=1.0)
    events = r.tick(2.0)
    assert ready_seqs(events) == [2] and r.held == 1      # seq 5 has waited 1 s only
    events = r.tick(3.0)
    assert [(g.after_seq, g.next_seq) for g in gaps(events)] == [(2, 5)]
    assert ready_seqs(events) == [5]


def test_window_overflow_forces_the_skip_and_bounds_memory():
    r = StreamReassembler(DEV, CFG)
    feed(r, [0])
    events = feed(r, range(2, 2 + CFG.reorder_window))    # seq 1 lost: 8 held
    assert events == [] and r.held == CFG.reorder_window
    events = feed(r, [2 + CFG.reorder_window])            # a 9th would exceed the window
    assert gaps(events) == [Gap(DEV, 0, 2, 0.5, 1.0, GapReason.MISSING_SEQ)]
    assert ready_seqs(events) == list(range(2, 3 + CFG.reorder_window))
    assert r.held == 0


def test_window_bound_holds_with_many_holes():
    r = StreamReassembler(DEV, CFG)
    feed(r, [0])
    for s in range(2, 200, 2):                            # every odd seq lost
        feed(r, [s])
        assert r.held <= CFG.reorder_window


def test_time_jump_between_consecutive_seqs_forward_and_backward():
    r = StreamReassembler(DEV, CFG)
    r.push(chunk(0), 0.0)
    assert shape(r.push(chunk(1, t0=0.54), 0.0)) == [("ready", 1)]      # within 50 ms
    events = r.push(chunk(2, t0=5.0), 0.0)
    assert gaps(events) == [Gap(DEV, 1, 2, 1.04, 5.0, GapReason.TIME_JUMP)]
    events = r.push(chunk(3, t0=2.0), 0.0)                # clock stepped back
    (gap,) = gaps(events)
    assert gap.reason is GapReason.TIME_JUMP and gap.end < gap.start
    assert ready_seqs(events) == [3]


def test_rate_change_is_a_discontinuity():
    r = StreamReassembler(DEV, CFG)
    r.push(chunk(0), 0.0)
    events = r.push(chunk(1, fs=500.0), 0.0)              # same timing, new rate
    assert gaps(events) == [Gap(DEV, 0, 1, 0.5, 0.5, GapReason.RATE_CHANGE)]
    assert ready_seqs(events) == [1]
    assert "sampling rate" in events[0].detail


def test_no_data_is_reported_once_until_data_resumes():
    r = StreamReassembler(DEV, CFG)
    assert r.tick(1000.0) == []                           # no stream yet: nothing to miss
    r.push(chunk(0), now=0.0)
    r.push(chunk(1), now=0.5)
    assert r.tick(10.4) == []
    events = r.tick(10.5)
    assert events == [Gap(DEV, 1, None, 1.0, 11.0, GapReason.NO_DATA)]
    assert "nothing for 10.0 s" in events[0].detail
    assert r.tick(30.0) == []                             # not repeated
    assert ready_seqs(r.push(chunk(2), now=31.0)) == [2]  # device-time contiguous: no gap
    assert r.tick(40.0) == []
    assert gaps(r.tick(41.0))[0].reason is GapReason.NO_DATA


def test_duplicates_and_late_chunks_do_not_count_as_data_resuming():
    r = StreamReassembler(DEV, CFG)
    r.push(chunk(0), now=0.0)
    r.push(chunk(1), now=0.0)
    r.push(chunk(1), now=9.0)                             # a broker redelivery
    assert gaps(r.tick(10.0))[0].reason is GapReason.NO_DATA


def test_seq_restart_starts_a_new_stream_instead_of_endless_late():
    r = StreamReassembler(DEV, CFG)
    feed(r, range(100))                                   # device time 0..50 s
    events = r.push(chunk(0, t0=60.0), 1.0)               # rebooted, counter back to 0
    assert gaps(events) == [Gap(DEV, 99, 0, 50.0, 60.0, GapReason.SEQ_RESTART)]
    assert ready_seqs(events) == [0]
    assert ready_seqs(r.push(chunk(1, t0=60.5), 1.0)) == [1]
    assert "restarts its seq counter" in events[0].detail


def test_seq_restart_flushes_the_old_streams_held_chunks_first():
    r = StreamReassembler(DEV, CFG)
    feed(r, list(range(98)) + [99])                       # 98 missing, 99 held
    events = r.push(chunk(0, t0=60.0), 1.0)
    assert [(g.reason, g.after_seq, g.next_seq) for g in gaps(events)] == [
        (GapReason.MISSING_SEQ, 97, 99), (GapReason.SEQ_RESTART, 99, 0)]
    assert ready_seqs(events) == [99, 0]


def test_an_old_chunk_with_old_time_is_late_not_a_restart():
    r = StreamReassembler(DEV, CFG)
    feed(r, range(100))
    # seq 3 far below 99 but its device time is in the past: a very late chunk.
    assert r.push(chunk(3), 1.0) == [Late(DEV, 3, 99)]
    # Close below (within 4 windows) is never a restart, whatever its time says.
    assert r.push(chunk(70, t0=80.0), 1.0) == [Duplicate(DEV, 70)]


def test_flush_releases_held_chunks_across_holes():
    r = StreamReassembler(DEV, CFG)
    feed(r, [0, 2, 3, 5])
    events = r.flush()
    assert ready_seqs(events) == [2, 3, 5]
    assert [(g.after_seq, g.next_seq) for g in gaps(events)] == [(0, 2), (3, 5)]


def test_chunks_of_another_device_are_refused():
    r = StreamReassembler(DEV, CFG)
    with pytest.raises(StreamError) as e:
        r.push(chunk(0, dev="other"), 0.0)
    assert e.value.reason == "wrong_stream"


def test_events_name_their_kind_and_reason_for_counting():
    assert (Duplicate.kind, Duplicate.reason, Late.kind, Late.reason) == \
        ("duplicate", "duplicate", "late", "late")
    assert Gap.kind == "gap" and Ready.kind == "ready"
    assert "already received" in Duplicate(DEV, 4).message
    assert "moved on to seq 9" in Late(DEV, 4, 9).message


@st.composite
def windowed_permutations(draw, n_max: int = 40):
    """Arrival orders of seqs 0..n-1 in which no chunk is overtaken by more than
    ``reorder_window`` others: blocks of up to window+1 chunks, each shuffled."""
    n = draw(st.integers(1, n_max))
    order: list[int] = []
    while len(order) < n:
        size = min(draw(st.integers(1, CFG.reorder_window + 1)), n - len(order))
        block = list(range(len(order), len(order) + size))
        order += draw(st.permutations(block))
    return order


@settings(max_examples=150, deadline=None)
@given(windowed_permutations(), st.sampled_from([0, 1, 1000]),
       st.lists(st.floats(0.0, 0.2), min_size=40, max_size=40))
# Found by hypothesis: a wait of exactly the timeout after an arrival at 0.07 s.
@example(order=[0], first=1, waits=[0.07] + [0.0] * 39)
def test_any_permutation_within_the_window_releases_all_once_in_order(order, first, waits):
    """Whether the stream starts at seq 0 or is joined mid-way at ``first``."""
    r = StreamReassembler(DEV, CFG)
    now, events = 0.0, []
    for s, wait in zip(order, waits):
        now += wait               # a block of window+1 chunks spans < the 2 s timeout
        events += r.push(chunk(first + s), now)
        assert r.held <= CFG.reorder_window
    events += r.tick(now + CFG.reorder_timeout_s)      # a joined stream may still wait
    assert r.held == 0
    assert ready_seqs(events) == [first + s for s in range(len(order))]
    assert [e for e in events if not isinstance(e, Ready)] == []
