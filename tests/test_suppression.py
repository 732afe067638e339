"""One alarm per event: the rules of detect/suppression.py, with real alarm records."""

from __future__ import annotations

from detect.suppression import AlarmSuppression
from detect.types import Action, ActiveAlarm, AlarmTransition, Condition, Evidence

DEV = "bed-7"


class _Open:
    """The open alarms of one alarm manager (what AlarmSuppression reads of it)."""

    def __init__(self) -> None:
        self.alarms: list[ActiveAlarm] = []

    def active(self) -> tuple[ActiveAlarm, ...]:
        return tuple(self.alarms)


def _t(cond: Condition, action: Action = Action.RAISED, onset: float = 10.0,
       at: float = 12.0) -> AlarmTransition:
    ev = Evidence(onset, at, int(onset * 250), int(at * 250))
    return AlarmTransition(DEV, cond, action, onset, at, int(onset * 250), ev, "test")


def _open(t: AlarmTransition) -> ActiveAlarm:
    return ActiveAlarm(t.condition, t.episode_id, t.onset)


def _rules() -> tuple[AlarmSuppression, _Open, _Open]:
    ectopy, wct = _Open(), _Open()
    return AlarmSuppression(ectopy, wct), ectopy, wct  # type: ignore[arg-type]


def test_during_vf_the_alarms_its_waves_cause_are_held_back_for_their_whole_episode():
    rules, _, _ = _rules()
    tachy = _t(Condition.EXTREME_TACHYCARDIA)
    assert rules.filter([tachy], vf_active=True) == ()
    # Its later transitions stay hidden after VF ends: no half episode is shown.
    cleared = _t(Condition.EXTREME_TACHYCARDIA, Action.CLEARED, at=30.0)
    assert cleared.episode_id == tachy.episode_id
    assert rules.filter([cleared], vf_active=False) == ()
    # Labelled VT is not explained by VF: same priority, same response.
    vt = _t(Condition.VENTRICULAR_TACHYCARDIA)
    assert rules.filter([vt], vf_active=True) == (vt,)


def test_without_vf_the_same_alarms_are_shown():
    rules, _, _ = _rules()
    ts = [_t(Condition.EXTREME_TACHYCARDIA), _t(Condition.ATRIAL_FIBRILLATION)]
    assert rules.filter(ts, vf_active=False) == tuple(ts)


def test_vt_from_labels_and_from_width_is_one_alarm_whichever_came_first():
    rules, ectopy, wct = _rules()
    wide = _t(Condition.WIDE_COMPLEX_TACHYCARDIA, onset=5.0)
    assert rules.filter([wide], vf_active=False) == (wide,)
    wct.alarms.append(_open(wide))
    labelled = _t(Condition.VENTRICULAR_TACHYCARDIA)
    assert rules.filter([labelled], vf_active=False) == ()
    # And the other way round, on a second device's rules.
    rules, ectopy, wct = _rules()
    assert rules.filter([labelled], vf_active=False) == (labelled,)
    ectopy.alarms.append(_open(labelled))
    assert rules.filter([wide], vf_active=False) == ()


def test_extreme_tachycardia_is_not_raised_while_a_shown_vt_alarm_is_open():
    rules, ectopy, _ = _rules()
    vt = _t(Condition.VENTRICULAR_TACHYCARDIA)
    ectopy.alarms.append(_open(vt))
    assert rules.filter([_t(Condition.EXTREME_TACHYCARDIA)], vf_active=False) == ()
    # A VT episode that was itself held back does not count as shown.
    rules, ectopy, _ = _rules()
    rules.held.add(vt.episode_id)
    ectopy.alarms.append(_open(vt))
    tachy = _t(Condition.EXTREME_TACHYCARDIA)
    assert rules.filter([tachy], vf_active=False) == (tachy,)
    assert rules.shown(ectopy.active()) == []
