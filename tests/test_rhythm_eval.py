"""The end-to-end rhythm-alarm scoring (ecgwatch.evaluation.rhythm_alarms) and its command."""

from __future__ import annotations

import pytest

from detect.types import Action, AlarmTransition, Condition, Evidence
from ecgwatch.evaluation.records import data_dir
from ecgwatch.evaluation.rhythm_alarms import (AlarmEpisode, alarm_episodes, score_condition,
                                               score_record)

AF = Condition.ATRIAL_FIBRILLATION
MITDB = data_dir() / "mitdb"


def _t(action: Action, onset: float, at: float, cond: Condition = AF) -> AlarmTransition:
    i = int(onset * 250)
    ev = Evidence(onset, at, i, int(at * 250))
    return AlarmTransition("d", cond, action, onset, at, i, ev, "test")


def test_alarm_episodes_pair_raised_with_cleared_and_close_open_ones_at_the_end():
    tr = [_t(Action.RAISED, 10, 40), _t(Action.CLEARED, 10, 95),
          _t(Action.RAISED, 5, 6, Condition.PAUSE), _t(Action.RAISED, 200, 230)]
    assert alarm_episodes(tr, AF, 600.0) == [AlarmEpisode(10, 40, 95), AlarmEpisode(200, 230, 600)]


def test_scoring_counts_detections_delays_false_alarms_and_unusable_onsets():
    ref = [(0.0, 100.0), (300.0, 320.0), (500.0, 700.0)]
    alarms = [AlarmEpisode(20, 45, 110),          # detects the first, 45 s after its onset
              AlarmEpisode(520, 560, 690),        # detects the third, 60 s late
              AlarmEpisode(800, 830, 900),        # false
              AlarmEpisode(1000, 1030, 1100)]     # false, onset in unusable signal
    s = score_condition(ref, alarms, hours=1.0, min_s=30.0, unusable=[(990.0, 1010.0)])
    assert (s.ref, s.ref_required, s.detected, s.detected_required) == (3, 2, 2, 2)
    assert s.delays == [45.0, 60.0]
    assert (s.false, s.false_in_unusable) == (2, 1)
    d = s.to_dict()
    assert d["sensitivity_required"] == 1.0 and d["false_alarms_per_hour"] == 2.0


def test_vt_alarm_during_reference_flutter_is_a_lethal_cross_not_a_false_alarm():
    s = score_condition([], [AlarmEpisode(10, 12, 30)], 1.0, 0.0, other_ref=[(5.0, 40.0)])
    assert (s.false, s.false_lethal_cross) == (0, 1)


@pytest.mark.skipif(not (MITDB / "201.hea").exists(),
                    reason=f"MIT-BIH data not found at {MITDB} (set ECGWATCH_DATA)")
def test_record_201_af_episodes_are_found_end_to_end():
    scores = score_record(MITDB / "201")
    af = scores["AF"]
    assert af.ref_required >= 2 and af.detected_required == af.ref_required
    assert af.false_in_unusable == 0


def test_no_beats_needs_rhythms():
    from ecgwatch.eval_cmd import main
    assert main(["eval", "--no-beats"][1:]) == 2
