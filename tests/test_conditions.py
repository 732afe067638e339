"""ConditionTracker: thresholds at their boundaries, quality gating, gaps, chunk invariance."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detect.conditions import ConditionTracker, Observation
from detect.config import DetectorConfig
from detect.types import Beat, Condition, Quality, QualityWindow
from ecg_fixtures import draw_beat_indices

CFG = DetectorConfig()
FS = CFG.fs
WIN = 2 * FS
DEV = "patient-7"
C = Condition


def beats_at(seconds: list[float]) -> list[Beat]:
    return [Beat(DEV, round(t * FS), t) for t in seconds]


def regular(start: float, rr: float, n: int) -> list[float]:
    """``n`` beat times from ``start`` every ``rr`` seconds."""
    return [start + k * rr for k in range(n)]


def windows(end_s: float, bad: dict[int, Quality] | None = None) -> list[QualityWindow]:
    """GOOD 2 s windows up to ``end_s``, except window k -> bad[k]."""
    bad = bad or {}
    n = int(round(end_s * FS)) // WIN
    return [QualityWindow(k * WIN, (k + 1) * WIN, bad.get(k, Quality.GOOD)) for k in range(n)]


def observe(times: list[float], end_s: float, bad: dict[int, Quality] | None = None,
            config: DetectorConfig = CFG) -> list[Observation]:
    tracker = ConditionTracker(DEV, config)
    return tracker.push(beats_at(times), windows(end_s, bad), round(end_s * FS))


def of(obs: list[Observation], cond: Condition) -> list[tuple[bool, int, int]]:
    return [(o.active, o.index, o.at) for o in obs if o.condition is cond]


def idx(seconds: float) -> int:
    return round(seconds * FS)


# -------------------------------------------------------------- asystole

def test_six_second_asystole_is_one_active_then_one_inactive_observation():
    times = regular(0.5, 1.0, 10) + regular(15.5, 1.0, 10)      # last beat 9.5 s, next 15.5 s
    obs = observe(times, 26.0)
    assert of(obs, C.ASYSTOLE) == [(True, idx(9.5), idx(13.5)), (False, idx(15.5), idx(15.5))]
    active = next(o for o in obs if o.condition is C.ASYSTOLE and o.active)
    assert active.evidence.start == pytest.approx(9.5)
    assert active.evidence.end == pytest.approx(13.5)
    assert active.evidence.heart_rate == 0.0
    # The asystolic RR is neither a pause nor averaged into a bradycardia.
    assert of(obs, C.PAUSE) == [] and of(obs, C.EXTREME_BRADYCARDIA) == []


def test_asystole_boundary_at_four_seconds():
    just_short = observe(regular(0.5, 1.0, 5) + regular(4.5 + 3.996, 1.0, 12), 20.0)
    assert of(just_short, C.ASYSTOLE) == []
    assert [a for a, _, _ in of(just_short, C.PAUSE)] == [True, False]
    exact = observe(regular(0.5, 1.0, 5) + regular(8.5, 1.0, 12), 20.0)
    assert of(exact, C.ASYSTOLE) == [(True, idx(4.5), idx(8.5)), (False, idx(8.5), idx(8.5))]


def test_asystole_is_judged_at_the_horizon_without_a_closing_beat():
    tracker = ConditionTracker(DEV, CFG)
    beats, wins = beats_at(regular(0.5, 1.0, 6)), windows(20.0)
    assert of(tracker.push(beats, wins, idx(9.4)), C.ASYSTOLE) == []
    assert of(tracker.push([], [], idx(9.5)), C.ASYSTOLE) == [(True, idx(5.5), idx(9.5))]
    assert tracker.rhythm() == "asystole" and tracker.heart_rate() is None
    assert tracker.push([], [], idx(20.0)) == []                 # reported once


def test_no_beats_at_all_from_the_start_is_asystole_from_the_start():
    assert of(observe([], 10.0), C.ASYSTOLE) == [(True, 0, idx(4.0))]


# ------------------------------------------------------------ bradycardia

def test_bradycardia_needs_five_slow_beats():
    normal = regular(0.5, 1.0, 10)                              # last normal beat 9.5 s
    four = observe(normal + regular(11.1, 1.6, 4), 30.0)       # 4 RRs of 1.6 s (37.5 bpm)
    assert of(four, C.EXTREME_BRADYCARDIA) == []
    five = observe(normal + regular(11.1, 1.6, 5), 30.0)
    first = of(five, C.EXTREME_BRADYCARDIA)[0]
    assert first == (True, idx(9.5), idx(9.5 + 5 * 1.6))     # onset: where the slow run began
    ev = next(o.evidence for o in five if o.condition is C.EXTREME_BRADYCARDIA)
    assert ev.heart_rate == pytest.approx(37.5) and ev.beats == 5


def test_bradycardia_limit_is_strictly_below_forty():
    at_limit = observe(regular(0.5, 1.5, 15), 30.0)             # exactly 40.0 bpm
    assert of(at_limit, C.EXTREME_BRADYCARDIA) == []
    below = observe([k * 376 / FS + 0.5 for k in range(15)], 30.0)   # 39.9 bpm
    assert of(below, C.EXTREME_BRADYCARDIA)[0][0] is True


def test_bradycardia_clears_only_past_the_hysteresis_rate():
    slow = regular(0.5, 1.6, 8)                                  # 37.5 bpm, active
    hover = regular(slow[-1] + 60 / 42, 60 / 42, 10)            # 42 bpm: still active
    recover = regular(hover[-1] + 60 / 50, 60 / 50, 10)         # 50 bpm: clears
    obs = observe(slow + hover + recover, 60.0)
    states = [a for a, _, _ in of(obs, C.EXTREME_BRADYCARDIA)]
    assert states.count(False) == 1 and states[-1] is False
    cleared = [o for o in obs if o.condition is C.EXTREME_BRADYCARDIA and not o.active][0]
    assert cleared.index > idx(hover[-1])                       # not while hovering at 42
    assert cleared.evidence.heart_rate >= 45.0


# ------------------------------------------------------------ tachycardia

def test_tachycardia_needs_seventeen_fast_beats():
    normal = regular(0.5, 1.0, 10)
    sixteen = observe(normal + regular(9.9, 0.4, 16), 30.0)    # 150 bpm
    assert of(sixteen, C.EXTREME_TACHYCARDIA) == []
    seventeen = observe(normal + regular(9.9, 0.4, 17), 30.0)
    assert of(seventeen, C.EXTREME_TACHYCARDIA)[0] == (True, idx(9.5), idx(9.5 + 17 * 0.4))


def test_tachycardia_hysteresis_and_fresh_evidence_while_active():
    fast = regular(0.5, 0.4, 30)                                 # 150 bpm
    mid = regular(fast[-1] + 60 / 135, 60 / 135, 30)            # 135: between clear and limit
    slow = regular(mid[-1] + 0.75, 0.75, 30)                     # 80 bpm
    obs = [o for o in observe(fast + mid + slow, 70.0) if o.condition is C.EXTREME_TACHYCARDIA]
    assert [o.active for o in obs].count(False) == 1 and not obs[-1].active
    assert obs[-1].index > idx(mid[-1])
    onsets = {o.index for o in obs if o.active}
    assert len(onsets) == 1                                      # updates keep the onset
    assert len(obs) > 20                                         # one per beat while active


# ------------------------------------------------------------------ pause

def test_pause_boundary_at_two_and_a_half_seconds():
    base = regular(0.5, 1.0, 6)                                  # last beat 5.5 s
    for rr in (2.4, 2.496):
        assert of(observe(base + regular(5.5 + rr, 1.0, 6), 20.0), C.PAUSE) == [], rr
    long = observe(base + regular(8.0, 1.0, 6), 20.0)
    assert of(long, C.PAUSE) == [(True, idx(5.5), idx(8.0)), (False, idx(8.0), idx(8.0))]
    pause = next(o for o in long if o.condition is C.PAUSE)
    assert pause.evidence.rr_last == pytest.approx(2.5)


# ------------------------------------------------------- quality gating

def test_silence_across_unusable_signal_is_not_asystole():
    times = regular(0.5, 1.0, 4) + regular(9.5, 1.0, 10)       # 6 s without beats ...
    obs = observe(times, 20.0, bad={2: Quality.UNUSABLE})       # ... 4-6 s unusable
    assert of(obs, C.ASYSTOLE) == []


def test_asystole_during_leads_off_is_leads_off_not_asystole():
    times = regular(0.5, 1.0, 6)                                 # then nothing
    bad = {k: Quality.LEADS_OFF for k in range(3, 10)}          # leads off from 6 s
    obs = observe(times, 20.0, bad)
    assert of(obs, C.ASYSTOLE) == []
    assert of(obs, C.LEADS_OFF) == [(True, idx(6.0), idx(10.0))]


def test_long_rr_across_an_unusable_window_is_not_a_pause():
    times = regular(0.5, 1.0, 4) + regular(6.5, 1.0, 10)       # RR 3 s over 3.5-6.5 s
    assert of(observe(times, 20.0, bad={2: Quality.UNUSABLE}), C.PAUSE) == []
    assert len(of(observe(times, 20.0), C.PAUSE)) == 2         # the same RR, all usable


def test_beats_in_unusable_windows_do_not_make_a_tachycardia():
    fast = regular(0.5, 0.35, 60)                                # 171 bpm for 21 s
    bad = {k: Quality.UNUSABLE for k in range(1, 11, 2)}        # every other window bad
    assert of(observe(fast, 22.0, bad), C.EXTREME_TACHYCARDIA) == []
    tracker = ConditionTracker(DEV, CFG)
    tracker.push(beats_at(fast), windows(22.0, bad), idx(22.0))
    assert tracker.beats_dropped > 0


def test_unusable_signal_ends_active_physiological_conditions_at_its_start():
    fast = regular(0.5, 0.4, 40)                                 # tachycardia from ~7 s
    obs = observe(fast, 20.0, bad={6: Quality.UNUSABLE})         # 12-14 s unusable
    assert of(obs, C.EXTREME_TACHYCARDIA)[0][0] is True
    ended = [o for o in obs if o.condition is C.EXTREME_TACHYCARDIA and not o.active]
    assert [(o.index, o.at) for o in ended] == [(idx(12.0), idx(12.0))]
    again = [o for o in obs if o.condition is C.EXTREME_TACHYCARDIA and o.index > idx(12.0)]
    assert again == []              # 14-16 s: only 4 s of beats again, fewer than 17


# -------------------------------------------------------------- technical

def test_technical_conditions_need_two_consecutive_bad_windows():
    beats = regular(0.5, 1.0, 30)
    one = observe(beats, 30.0, bad={3: Quality.SATURATED})
    assert of(one, C.SATURATION) == [] and of(one, C.NOISE) == []
    two = observe(beats, 30.0, bad={3: Quality.SATURATED, 4: Quality.SATURATED})
    assert of(two, C.SATURATION) == [(True, idx(6.0), idx(10.0)), (False, idx(10.0), idx(12.0))]
    assert of(two, C.NOISE) == []                                # the cause is named once


def test_mixed_bad_windows_raise_unusable_signal():
    bad = {3: Quality.UNUSABLE, 4: Quality.LEADS_OFF, 5: Quality.UNUSABLE}
    obs = observe(regular(0.5, 1.0, 30), 30.0, bad)
    assert of(obs, C.NOISE) == [(True, idx(6.0), idx(10.0)), (False, idx(12.0), idx(14.0))]
    assert of(obs, C.LEADS_OFF) == []


def test_one_bad_window_after_a_saturated_stretch_raises_nothing_more():
    bad = {3: Quality.SATURATED, 4: Quality.SATURATED, 5: Quality.SATURATED,
           6: Quality.UNUSABLE}
    obs = observe(regular(0.5, 1.0, 30), 30.0, bad)
    assert of(obs, C.SATURATION) == [(True, idx(6.0), idx(10.0)), (False, idx(12.0), idx(14.0))]
    assert of(obs, C.NOISE) == []
    bad[7] = Quality.UNUSABLE                                    # two: a problem of its own
    assert of(observe(regular(0.5, 1.0, 30), 30.0, bad), C.NOISE) == [
        (True, idx(12.0), idx(16.0)), (False, idx(16.0), idx(18.0))]


def test_one_noisy_window_between_two_unusable_ones_does_not_restart_the_run():
    U, N = Quality.UNUSABLE, Quality.NOISY
    beats = regular(0.5, 1.0, 30)
    # U N U: raised at the second unusable window, onset at the first.
    assert of(observe(beats, 30.0, {3: U, 4: N, 5: U}), C.NOISE) == [
        (True, idx(6.0), idx(12.0)), (False, idx(12.0), idx(14.0))]
    # U N N U: two usable windows between them are two problems, neither raised.
    assert of(observe(beats, 30.0, {3: U, 4: N, 5: N, 6: U}), C.NOISE) == []
    # U U N U: the noisy window is usable, so it ends the open episode; the single
    # unusable window after it does not start another.
    assert of(observe(beats, 30.0, {3: U, 4: U, 5: N, 6: U}), C.NOISE) == [
        (True, idx(6.0), idx(10.0)), (False, idx(10.0), idx(12.0))]


def test_noisy_windows_are_usable():
    obs = observe(regular(0.5, 0.4, 60), 24.0, bad={k: Quality.NOISY for k in range(12)})
    assert of(obs, C.EXTREME_TACHYCARDIA)[0][0] is True
    assert of(obs, C.NOISE) == []


# ------------------------------------------------------------------- gaps

def test_gap_ends_active_conditions_and_resets_the_beat_history():
    tracker = ConditionTracker(DEV, CFG)
    obs = tracker.push(beats_at(regular(0.5, 1.0, 3)), windows(10.0), idx(10.0))
    assert of(obs, C.ASYSTOLE) == [(True, idx(2.5), idx(6.5))]
    ended = tracker.gap(idx(10.0))
    assert of(ended, C.ASYSTOLE) == [(False, idx(10.0), idx(10.0))]
    assert tracker.active == frozenset()
    # After the gap: first beat 3 s in (no asystole, and no RR across the gap), then 1 Hz.
    after = [Beat(DEV, idx(10.0 + t), 100.0 + t) for t in regular(3.0, 1.0, 8)]
    wins = [QualityWindow(idx(10.0) + k * WIN, idx(10.0) + (k + 1) * WIN, Quality.GOOD)
            for k in range(6)]
    obs = tracker.push(after, wins, idx(22.0))
    assert obs == []


def test_windows_must_be_contiguous():
    tracker = ConditionTracker(DEV, CFG)
    tracker.push([], windows(4.0), 0)
    with pytest.raises(ValueError):
        tracker.push([], [QualityWindow(3 * WIN, 4 * WIN, Quality.GOOD)], 0)


def test_repeats_are_ignored():
    tracker = ConditionTracker(DEV, CFG)
    beats, wins = beats_at(regular(0.5, 0.4, 40)), windows(16.0)
    first = tracker.push(beats, wins, idx(16.0))
    assert tracker.push(beats, wins, idx(16.0)) == []
    assert of(first, C.EXTREME_TACHYCARDIA)[0][0] is True


# ------------------------------------------------------- chunk invariance

quality_choice = st.sampled_from([Quality.GOOD] * 6 + [Quality.NOISY, Quality.UNUSABLE,
                                                       Quality.LEADS_OFF, Quality.SATURATED])


@st.composite
def streams(draw):
    """Random RR series (30-200 bpm, pauses, asystoles) and window qualities."""
    times = draw_beat_indices(draw, 80, FS, max_run=20)
    quality = draw(st.lists(quality_choice, min_size=40, max_size=40))
    return times, quality


def _inputs(times, quality):
    beats = [Beat(DEV, i, i / FS) for i in times]
    wins = [QualityWindow(k * WIN, (k + 1) * WIN, q) for k, q in enumerate(quality)]
    return beats, wins


@settings(max_examples=40, deadline=None)
@given(streams(), st.lists(st.integers(1, 3 * WIN), min_size=1, max_size=20),
       st.integers(0, 3 * WIN))
def test_observations_do_not_depend_on_chunking(stream, steps, lag):
    beats, wins = _inputs(*stream)
    end = wins[-1].end
    whole = ConditionTracker(DEV, CFG).push(beats, wins, end)

    tracker, got, pos, k = ConditionTracker(DEV, CFG), [], 0, 0
    while pos < end:
        pos = min(end, pos + steps[k % len(steps)])
        k += 1
        horizon = max(0, pos - lag)             # the beat detector lags the samples
        got += tracker.push([b for b in beats if b.index < horizon],
                            [w for w in wins if w.end <= pos], horizon)
    got += tracker.push(beats, wins, end)
    assert got == whole
    assert [o.at for o in got] == sorted(o.at for o in got)
    assert tracker.frontier == end
