"""Which raised alarms another open alarm already explains (docs/alarms.md).

A monitor that raises three alarms for one event trains its staff to ignore
alarms (alarm fatigue; IEC 60601-1-8 asks for alarms that say what needs a
response). One device's pipeline runs several trackers, each with its own
alarm manager, and some of their conditions are views of one event:

* **VF stands alone.** Flutter waves counted as beats raise rate and pattern
  alarms (extreme tachycardia, couplets, bigeminy, trigeminy, AF,
  wide-complex tachycardia); while VF is on, they are not raised. Labelled VT
  is not held back: it has the same priority and the same response.
* **One VT alarm.** VT from beat labels and wide-complex tachycardia from QRS
  width are two views of one run: whichever is raised first stands.
* While either VT alarm is open, extreme tachycardia is not raised.

A held-back alarm's whole episode is held back: its later updates and its
clearing are dropped too, so a consumer never sees half an episode.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from .types import Action, AlarmTransition, Condition

if TYPE_CHECKING:
    from .alarms import AlarmManager
    from .types import ActiveAlarm

_VT = frozenset({Condition.VENTRICULAR_TACHYCARDIA, Condition.SUSTAINED_VT,
                 Condition.WIDE_COMPLEX_TACHYCARDIA})
# Alarms that flutter waves counted as beats would raise during VF.
_VF_EXPLAINS = frozenset({Condition.EXTREME_TACHYCARDIA, Condition.VENTRICULAR_COUPLET,
                          Condition.BIGEMINY, Condition.TRIGEMINY,
                          Condition.ATRIAL_FIBRILLATION, Condition.WIDE_COMPLEX_TACHYCARDIA})
_RAISED = Action.RAISED
_EXTREME_TACHY = Condition.EXTREME_TACHYCARDIA
_LABELLED_VT = Condition.VENTRICULAR_TACHYCARDIA
_WIDE_VT = Condition.WIDE_COMPLEX_TACHYCARDIA


class AlarmSuppression:
    """The episodes held back for one device, and the rules that hold them.

    ``ectopy`` and ``wct`` are the device's alarm managers for label-based
    rhythms and for wide-complex tachycardia: the open VT alarms are read
    from them when a new alarm is raised.
    """

    def __init__(self, ectopy: AlarmManager, wct: AlarmManager) -> None:
        self._ectopy = ectopy
        self._wct = wct
        self.held: set[str] = set()           # episode ids never shown

    def filter(self, transitions: Sequence[AlarmTransition],
               vf_active: bool) -> tuple[AlarmTransition, ...]:
        """``transitions`` without those of held-back episodes (``vf_active``:
        a VF alarm is open now)."""
        if not transitions:                   # most calls
            return ()
        held = self.held
        out = []
        for t in transitions:
            if t.episode_id in held:
                continue
            if t.action is _RAISED and (
                    (vf_active and t.condition in _VF_EXPLAINS)
                    or self._other_vt_is_on(t.condition)
                    or (t.condition is _EXTREME_TACHY and self._vt_on())):
                held.add(t.episode_id)
                continue
            out.append(t)
        return tuple(out)

    def shown(self, alarms: Iterable[ActiveAlarm]) -> list[ActiveAlarm]:
        """Those of ``alarms`` (open ones, from the managers) a consumer was shown."""
        held = self.held
        return [a for a in alarms if a.episode_id not in held]

    def _vt_on(self) -> bool:
        """A ventricular tachycardia alarm (from labels or width) is open and shown."""
        held = self.held
        return any(a.episode_id not in held and a.condition in _VT
                   for a in self._ectopy.active() + self._wct.active())

    def _other_vt_is_on(self, cond: Condition) -> bool:
        """VT from labels and wide-complex tachycardia are two views of one run:
        whichever is raised first stands alone."""
        held = self.held
        if cond is _WIDE_VT:
            return any(a.condition is _LABELLED_VT and a.episode_id not in held
                       for a in self._ectopy.active())
        if cond is _LABELLED_VT:
            return any(a.episode_id not in held for a in self._wct.active())
        return False


__all__ = ["AlarmSuppression"]
