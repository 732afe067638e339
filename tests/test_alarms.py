"""AlarmManager: one RAISED and one CLEARED per episode, hysteresis, updates, gaps, ids."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detect.alarms import UPDATE_BPM, AlarmManager
from detect.conditions import ConditionTracker, Observation
from detect.config import DetectorConfig
from detect.types import Action, Beat, Condition, Evidence, Quality, QualityWindow
from ecg_fixtures import draw_beat_indices

CFG = DetectorConfig()
FS = CFG.fs
CLEAR = round(CFG.alarms.clear_after_s * FS)
DEV = "bed-12"
VERSION = "test-detector/1"
C = Condition


def manager(t_origin: float = 1000.0) -> AlarmManager:
    return AlarmManager(DEV, CFG, VERSION, FS, t_origin)


def obs(cond: Condition, active: bool, index: int, at: int | None = None,
        rate: float | None = None) -> Observation:
    at = index if at is None else at
    ev = Evidence(start=index / FS, end=at / FS, sample_start=index, sample_end=at,
                  heart_rate=rate)
    return Observation(cond, active, index, ev, at)


def actions(transitions) -> list[tuple[str, str]]:
    return [(t.condition.value, t.action.value) for t in transitions]


# ----------------------------------------------------------- one episode

def test_one_raised_and_one_cleared_per_episode():
    m = manager()
    raised = m.push([obs(C.ASYSTOLE, True, 2500, 3500)], 3500)
    assert actions(raised) == [("asystole", "raised")]
    r = raised[0]
    assert (r.onset, r.at, r.onset_index) == (1010.0, 1014.0, 2500)
    assert [a.condition for a in m.active()] == [C.ASYSTOLE]
    assert m.push([obs(C.ASYSTOLE, False, 4000)], 4000) == []
    assert m.push([], 4000 + CLEAR - 1) == []                  # absent 4.996 s: still on
    cleared = m.push([], 4000 + CLEAR)
    assert actions(cleared) == [("asystole", "cleared")]
    c = cleared[0]
    assert c.at == pytest.approx(1016.0 + CFG.alarms.clear_after_s)
    assert c.episode_id == r.episode_id and c.id != r.id
    assert (c.onset, c.onset_index) == (r.onset, r.onset_index)
    assert m.active() == ()
    assert m.push([], 100_000) == []


def test_same_stream_gives_same_ids_and_times():
    stream = [obs(C.PAUSE, True, 1000, 1700), obs(C.PAUSE, False, 1700)]
    a, b = manager(), manager()
    out_a = a.push(stream, 1700) + a.push([], 5000)
    out_b = b.push(stream[:1], 1700) + b.push(stream[1:], 2000) + b.push([], 5000)
    assert [t.to_dict() for t in out_a] == [t.to_dict() for t in out_b]
    assert len({t.id for t in out_a}) == 2


def test_flicker_within_the_clearing_time_is_the_same_episode():
    m = manager()
    out = m.push([obs(C.EXTREME_TACHYCARDIA, True, 1000, 2000, rate=150)], 2000)
    out += m.push([obs(C.EXTREME_TACHYCARDIA, False, 3000)], 3000)
    out += m.push([obs(C.EXTREME_TACHYCARDIA, True, 3000 + CLEAR - 1, rate=150)], 4500)
    out += m.push([obs(C.EXTREME_TACHYCARDIA, False, 5000)], 5000)
    out += m.push([], 5000 + CLEAR)
    assert actions(out) == [("extreme_tachycardia", "raised"), ("extreme_tachycardia", "cleared")]
    assert out[1].at == pytest.approx(1000.0 + (5000 + CLEAR) / FS)
    assert out[0].episode_id == out[1].episode_id


def test_re_raise_after_a_full_clear_is_a_new_episode_with_a_new_id():
    m = manager()
    out = m.push([obs(C.PAUSE, True, 1000, 1700), obs(C.PAUSE, False, 1700),
                  obs(C.PAUSE, True, 1700 + CLEAR, 1700 + CLEAR + 700),
                  obs(C.PAUSE, False, 1700 + CLEAR + 700)], 10_000)
    assert actions(out) == [("pause", "raised"), ("pause", "cleared"),
                            ("pause", "raised"), ("pause", "cleared")]
    assert out[0].episode_id == out[1].episode_id != out[2].episode_id == out[3].episode_id
    assert out[1].at <= out[2].at                                # cleared before re-raised


def test_inactive_without_an_episode_is_ignored():
    assert manager().push([obs(C.LEADS_OFF, False, 500)], 10_000) == []


# --------------------------------------------------------------- updates

def test_updated_when_the_rate_moves_materially_at_most_every_ten_seconds():
    m = manager()
    ten_s = 10 * FS
    out = m.push([obs(C.EXTREME_TACHYCARDIA, True, 0, 1000, rate=150)], 1000)
    out += m.push([obs(C.EXTREME_TACHYCARDIA, True, 0, 1500, rate=175)], 1500)   # too soon
    out += m.push([obs(C.EXTREME_TACHYCARDIA, True, 0, 1000 + ten_s, rate=150 + UPDATE_BPM)],
                  1000 + ten_s)                                                 # not > 10 bpm
    out += m.push([obs(C.EXTREME_TACHYCARDIA, True, 0, 1000 + ten_s + 1, rate=175)],
                  1000 + ten_s + 1)
    out += m.push([obs(C.EXTREME_TACHYCARDIA, True, 0, 1000 + ten_s + 2, rate=195)],
                  1000 + ten_s + 2)                                             # too soon again
    assert actions(out) == [("extreme_tachycardia", "raised"), ("extreme_tachycardia", "updated")]
    up = out[1]
    assert up.id == f"{out[0].episode_id}-updated-1" and up.evidence.heart_rate == 175


# ------------------------------------------------------------ signal gap

def test_signal_gap_raises_once_and_clears_after_data_flows_again():
    m = manager(t_origin=50.0)
    raised = m.gap(60.0, 75.0, 2500)
    assert actions(raised) == [("signal_gap", "raised")]
    g = raised[0]
    assert (g.onset, g.at, g.onset_index) == (60.0, 75.0, 2500)
    assert g.kind.value == "technical" and g.priority.value == "medium"
    assert m.push([], 2500 + CLEAR - 1) == []
    cleared = m.push([], 2500 + CLEAR)
    assert actions(cleared) == [("signal_gap", "cleared")]
    assert cleared[0].at == pytest.approx(75.0 + CFG.alarms.clear_after_s)   # re-anchored


def test_second_gap_before_clearing_is_the_same_episode():
    m = manager()
    out = m.gap(10.0, 12.0, 2500)
    out += m.push([], 3000)
    out += m.gap(14.0, 20.0, 3000)                           # data flowed only 2 s
    out += m.push([], 3000 + CLEAR)
    assert actions(out) == [("signal_gap", "raised"), ("signal_gap", "cleared")]
    with pytest.raises(ValueError):
        m.gap(30.0, 29.0, 9000)


def test_active_alarms_are_listed_most_urgent_first_until_cleared():
    m = manager()
    m.push([obs(C.NOISE, True, 100, 1000), obs(C.ASYSTOLE, True, 500, 1500),
            obs(C.NOISE, False, 1600)], 1600)
    assert [a.condition for a in m.active()] == [C.ASYSTOLE, C.NOISE]   # noise still clearing
    assert m.active()[0].to_dict()["priority"] == "high"
    m.push([], 1600 + CLEAR)
    assert [a.condition for a in m.active()] == [C.ASYSTOLE]


# ---------------------------------------- tracker + manager, random streams

@st.composite
def streams(draw):
    times = draw_beat_indices(draw, 90, FS, max_run=25)
    good = [Quality.GOOD] * 8
    quality = draw(st.lists(st.sampled_from(good + [Quality.NOISY, Quality.UNUSABLE,
                                                    Quality.LEADS_OFF, Quality.SATURATED]),
                            min_size=45, max_size=45))
    gaps = draw(st.lists(st.integers(1, 44), max_size=2, unique=True))
    return times, quality, sorted(gaps)


def run(stream, steps: list[int]) -> list:
    """Feed a stream through tracker and manager, releasing it ``steps`` samples at a time."""
    times, quality, gaps = stream
    beats = [Beat(DEV, i, i / FS) for i in times]
    wins = [QualityWindow(k * 2 * FS, (k + 1) * 2 * FS, q) for k, q in enumerate(quality)]
    gap_at = {k * 2 * FS for k in gaps}
    timeline_manager = AlarmManager(DEV, CFG, VERSION, FS, 0.0)
    tracker = ConditionTracker(DEV, CFG, index_to_time=timeline_manager.timeline)
    out, pos, k, end = [], 0, 0, wins[-1].end
    while pos < end:
        nxt = min(end, pos + steps[k % len(steps)])
        k += 1
        cut = min([g for g in gap_at if pos < g <= nxt], default=nxt)
        obs = tracker.push([b for b in beats if b.index < cut],
                           [w for w in wins if w.end <= cut], cut)
        out += timeline_manager.push(obs, tracker.frontier)
        if cut in gap_at:
            gap_at.discard(cut)
            out += timeline_manager.push(tracker.gap(cut), cut)
            t = timeline_manager.timeline(cut)
            out += timeline_manager.gap(t, t + 30.0, cut)
        pos = cut
    return out


@settings(max_examples=40, deadline=None)
@given(streams(), st.lists(st.integers(1, 4 * FS), min_size=1, max_size=12))
def test_random_streams_alternate_raised_and_cleared_and_never_raise_twice(stream, steps):
    out = run(stream, steps)
    assert [t.to_dict() for t in out] == [t.to_dict() for t in run(stream, [10**9])]
    raised_ids: set[str] = set()
    open_episode: dict[Condition, str] = {}
    for t in out:
        if t.action is Action.RAISED:
            assert t.condition not in open_episode
            assert t.episode_id not in raised_ids
            raised_ids.add(t.episode_id)
            open_episode[t.condition] = t.episode_id
        else:
            assert open_episode.get(t.condition) == t.episode_id
            if t.action is Action.CLEARED:
                del open_episode[t.condition]
        assert t.at >= t.onset
    assert len({t.id for t in out}) == len(out)
