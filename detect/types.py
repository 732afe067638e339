"""Frozen, self-checking records that cross module boundaries.

Arrays at boundaries are float64 numpy arrays in millivolts; times are device
time in seconds (the clock of the device back end, as sent in ``t0``).
"""

from __future__ import annotations

import enum
import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import ChunkError
from .records import quick_init

FloatArray = npt.NDArray[np.float64]

DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MIN_FS, MAX_FS = 100.0, 1000.0
MAX_ABS_T0_S = 1e10          # device times beyond +-317 years are no clock's
MIN_CHUNK_S, MAX_CHUNK_S = 0.1, 10.0
_FLOAT64 = np.dtype(np.float64)


def check_device_id(device_id: object) -> str:
    """Return ``device_id`` if it is an opaque v1 id, else raise ChunkError."""
    if not isinstance(device_id, str) or not DEVICE_ID_RE.fullmatch(device_id):
        raise ChunkError(
            f"Device id {device_id!r} is not 1 to 64 characters of "
            "A-Z, a-z, 0-9, '_' or '-'.", reason="bad_device_id")
    return device_id


@quick_init
@dataclass(frozen=True, slots=True)
class Chunk:
    """A run of consecutive samples from one device and one lead.

    ``samples`` are in millivolts; ``seq`` is the device's own chunk counter;
    ``t0`` is the device time of the first sample.
    """

    device_id: str
    seq: int
    t0: float
    fs: float
    samples: FloatArray
    lead: str = "ECG"

    def __post_init__(self) -> None:
        dev = check_device_id(self.device_id)
        # Each type test tries the exact type the decoders give first: a failed
        # isinstance against a tuple of types costs several times as much.
        seq, t0, fs = self.seq, self.t0, self.fs
        if not (type(seq) is int or isinstance(seq, int) and not isinstance(seq, bool)) \
                or seq < 0:
            raise ChunkError(f"{self._where()} has seq {seq!r}; it must be a non-negative "
                             "integer.", device_id=dev, reason="bad_seq")
        if (not (type(t0) is float or isinstance(t0, (int, float))) or not math.isfinite(t0)
                or abs(t0) > MAX_ABS_T0_S):
            raise ChunkError(f"{self._where()} has start time t0={t0!r}; it must be a finite "
                             f"number of seconds within +-{MAX_ABS_T0_S:.0e} (device clock, e.g. "
                             "Unix time).", device_id=dev, seq=seq, reason="bad_time")
        if (not (type(fs) is float or isinstance(fs, (int, float))) or not math.isfinite(fs)
                or not MIN_FS <= fs <= MAX_FS):
            raise ChunkError(f"{self._where()} has sampling rate fs={fs!r} Hz; ecgwatch "
                             f"accepts {MIN_FS:g} to {MAX_FS:g} Hz.", device_id=dev, seq=seq,
                             reason="bad_rate")
        s = self.samples
        if not isinstance(s, np.ndarray) or s.ndim != 1 or (
                s.dtype is not _FLOAT64 and s.dtype != np.float64):
            raise ChunkError(f"{self._where()} must carry a 1-D float64 sample array.",
                             device_id=dev, seq=seq, reason="bad_samples")
        dur = s.size / fs
        # A little slack so that e.g. 25 samples at 250 Hz (0.1 s) always pass.
        if not MIN_CHUNK_S - 1e-9 <= dur <= MAX_CHUNK_S + 1e-9:
            raise ChunkError(f"{self._where()} holds {s.size} samples at {fs:g} Hz "
                             f"({dur:.3g} s); chunks must last {MIN_CHUNK_S:g} to "
                             f"{MAX_CHUNK_S:g} s.", device_id=dev, seq=seq, reason="bad_length")
        # One cheap call for the common case: the sum of squares is finite only if
        # every sample is (a NaN or an infinity makes it NaN or infinite). Only a
        # non-finite sum, which samples beyond 1e154 also give by overflowing (with
        # numpy's overflow warning), needs the sample-by-sample test.
        if not math.isfinite(s.dot(s)) and not np.isfinite(s).all():
            bad = int(np.flatnonzero(~np.isfinite(s))[0])
            raise ChunkError(f"{self._where()} has a non-finite sample ({s[bad]!r}) at index "
                             f"{bad}.", device_id=dev, seq=seq, reason="non_finite")
        s.setflags(write=False)

    def _where(self) -> str:
        """How messages name this chunk (built only for a message: most chunks pass)."""
        return f"Chunk seq {self.seq!r} from device {self.device_id!r}"

    @property
    def duration(self) -> float:
        return self.samples.size / self.fs

    @property
    def t_end(self) -> float:
        """Device time just after the last sample (where the next chunk should start)."""
        return self.t0 + self.duration


@quick_init
@dataclass(frozen=True, slots=True)
class Beat:
    """One detected heartbeat.

    ``index`` counts samples at the detector's internal rate from the start of
    the device's stream; ``rr`` is the interval to the previous beat of the same
    contiguous segment (None for the first beat after start or a gap).
    """

    device_id: str
    index: int
    time: float
    rr: float | None = None
    label: str = "N"

    def __post_init__(self) -> None:
        if self.index < 0:
            raise ValueError(f"Beat index {self.index} of device {self.device_id!r} is negative.")
        if self.rr is not None and not self.rr > 0:
            raise ValueError(f"Beat RR {self.rr!r} of device {self.device_id!r} is not positive.")


class Kind(str, enum.Enum):
    PHYSIOLOGICAL = "physiological"
    TECHNICAL = "technical"


class Priority(str, enum.Enum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Condition(str, enum.Enum):
    """Alarm conditions; value is the wire name, priority and kind are fixed."""

    ASYSTOLE = "asystole"
    EXTREME_BRADYCARDIA = "extreme_bradycardia"
    EXTREME_TACHYCARDIA = "extreme_tachycardia"
    PAUSE = "pause"
    SIGNAL_GAP = "signal_gap"
    LEADS_OFF = "leads_off"
    SATURATION = "saturation"
    NOISE = "unusable_signal"
    VENTRICULAR_TACHYCARDIA = "ventricular_tachycardia"
    SUSTAINED_VT = "sustained_ventricular_tachycardia"
    VENTRICULAR_COUPLET = "ventricular_couplet"
    BIGEMINY = "ventricular_bigeminy"
    TRIGEMINY = "ventricular_trigeminy"
    ATRIAL_FIBRILLATION = "atrial_fibrillation"
    VENTRICULAR_FIBRILLATION = "ventricular_fibrillation"
    WIDE_COMPLEX_TACHYCARDIA = "wide_complex_tachycardia"

    @property
    def kind(self) -> Kind:
        return _KIND[self]

    @property
    def priority(self) -> Priority:
        return _PRIORITY[self]


_PHYS = {Condition.ASYSTOLE, Condition.EXTREME_BRADYCARDIA,
         Condition.EXTREME_TACHYCARDIA, Condition.PAUSE, Condition.VENTRICULAR_TACHYCARDIA,
         Condition.SUSTAINED_VT, Condition.VENTRICULAR_COUPLET, Condition.BIGEMINY,
         Condition.TRIGEMINY, Condition.ATRIAL_FIBRILLATION, Condition.VENTRICULAR_FIBRILLATION,
         Condition.WIDE_COMPLEX_TACHYCARDIA}
_KIND = {c: (Kind.PHYSIOLOGICAL if c in _PHYS else Kind.TECHNICAL) for c in Condition}
_PRIORITY = {
    Condition.ASYSTOLE: Priority.HIGH,
    Condition.EXTREME_BRADYCARDIA: Priority.HIGH,
    Condition.EXTREME_TACHYCARDIA: Priority.HIGH,
    Condition.PAUSE: Priority.MEDIUM,
    Condition.SIGNAL_GAP: Priority.MEDIUM,
    Condition.LEADS_OFF: Priority.MEDIUM,
    Condition.SATURATION: Priority.LOW,
    Condition.NOISE: Priority.LOW,
    Condition.VENTRICULAR_TACHYCARDIA: Priority.HIGH,
    Condition.SUSTAINED_VT: Priority.HIGH,
    Condition.VENTRICULAR_COUPLET: Priority.LOW,
    Condition.BIGEMINY: Priority.LOW,
    Condition.TRIGEMINY: Priority.LOW,
    Condition.ATRIAL_FIBRILLATION: Priority.MEDIUM,
    Condition.VENTRICULAR_FIBRILLATION: Priority.HIGH,
    Condition.WIDE_COMPLEX_TACHYCARDIA: Priority.HIGH,
}


class Action(str, enum.Enum):
    RAISED = "raised"
    UPDATED = "updated"
    CLEARED = "cleared"


@quick_init
@dataclass(frozen=True, slots=True)
class Evidence:
    """What an alarm was decided on: rates, intervals and the signal window."""

    start: float                      # device time of the evidence window start
    end: float                        # device time of the evidence window end
    sample_start: int                 # same window, internal-rate sample indices
    sample_end: int
    heart_rate: float | None = None   # bpm over the evidence beats
    rr_last: float | None = None      # seconds
    rr_mean: float | None = None      # seconds
    beats: int | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        if self.end < self.start or self.sample_end < self.sample_start:
            raise ValueError(f"Evidence window {self.start}..{self.end} runs backwards.")

    def to_dict(self) -> dict[str, Any]:
        d = {"start": round(self.start, 3), "end": round(self.end, 3),
             "sample_range": [self.sample_start, self.sample_end]}
        for k in ("heart_rate", "rr_last", "rr_mean"):
            v = getattr(self, k)
            if v is not None:
                d[k] = round(float(v), 3)
        if self.beats is not None:
            d["beats"] = self.beats
        if self.detail:
            d["detail"] = self.detail
        return d


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    """One alarm transition (raised, updated or cleared) for one episode.

    ``episode_id`` is the same for every transition of one episode and ``id``
    is unique per transition; both are derived from the device, the condition
    and the onset sample, so replaying the same stream yields the same ids and
    consumers can drop duplicates.
    """

    device_id: str
    condition: Condition
    action: Action
    onset: float          # device time the condition began
    at: float             # device time of this transition
    onset_index: int      # internal-rate sample index of the onset
    evidence: Evidence
    detector_version: str
    update: int = 0       # counts updates within the episode
    episode_id: str = field(init=False)
    id: str = field(init=False)

    def __post_init__(self) -> None:
        check_device_id(self.device_id)
        if self.at < self.onset - 1e-6:
            raise ValueError(f"Alarm {self.condition.value} for device {self.device_id!r} "
                             f"transitions at {self.at} before its onset {self.onset}.")
        ep = _digest(f"{self.device_id}|{self.condition.value}|{self.onset_index}")
        suffix = (self.action.value if self.action is not Action.UPDATED
                  else f"updated-{self.update}")
        object.__setattr__(self, "episode_id", ep)
        object.__setattr__(self, "id", f"{ep}-{suffix}")

    @property
    def kind(self) -> Kind:
        return self.condition.kind

    @property
    def priority(self) -> Priority:
        return self.condition.priority

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": 1,
            "id": self.id,
            "episode_id": self.episode_id,
            "device_id": self.device_id,
            "condition": self.condition.value,
            "action": self.action.value,
            "kind": self.kind.value,
            "priority": self.priority.value,
            "onset": round(self.onset, 3),
            "at": round(self.at, 3),
            "evidence": self.evidence.to_dict(),
            "detector_version": self.detector_version,
        }


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class Quality(str, enum.Enum):
    """Signal quality of one analysis window, best first."""

    GOOD = "good"
    NOISY = "noisy"            # beats still found, morphology unreliable
    UNUSABLE = "unusable"      # no physiological decision may be taken
    LEADS_OFF = "leads_off"    # flat line: electrode off or amplifier idle
    SATURATED = "saturated"    # clipped at the amplifier rails

    # Whether decisions may be taken on the window: GOOD and NOISY. A plain attribute
    # of each member (set below), not a property: it is read several times per beat.
    usable: bool


for _q in Quality:
    _q.usable = _q in (Quality.GOOD, Quality.NOISY)
del _q


@quick_init
@dataclass(frozen=True, slots=True)
class QualityWindow:
    """Quality of internal-rate samples ``start`` (inclusive) to ``end`` (exclusive)."""

    start: int
    end: int
    quality: Quality
    score: float = 1.0        # 0 (worst) .. 1 (best)

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(f"Quality window {self.start}..{self.end} is empty or negative.")


@dataclass(frozen=True, slots=True)
class ActiveAlarm:
    condition: Condition
    episode_id: str
    onset: float

    def to_dict(self) -> dict[str, Any]:
        return {"condition": self.condition.value, "episode_id": self.episode_id,
                "priority": self.condition.priority.value, "kind": self.condition.kind.value,
                "onset": round(self.onset, 3)}


@quick_init
@dataclass(frozen=True, slots=True)
class DeviceState:
    """Live summary of one device, published retained on ``ecg/v1/{id}/state``."""

    device_id: str
    time: float | None                 # device time analysed up to
    heart_rate: float | None           # bpm, median of recent beats
    rhythm: str                        # sinus, bradycardia, tachycardia, asystole,
    #                                    atrial_fibrillation, ventricular_fibrillation, unknown
    quality: Quality
    active_alarms: tuple[ActiveAlarm, ...] = ()
    beats: int = 0                     # beats detected since the stream started
    detector_version: str = ""
    sveb_per_hour: int | None = None   # supraventricular ectopic beats, last hour
    veb_per_hour: int | None = None    # ventricular ectopic beats, last hour
    af_burden: float | None = None     # share of analysed time in AF episodes, 0..1

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": 1,
            "device_id": self.device_id,
            "time": None if self.time is None else round(self.time, 3),
            "heart_rate": None if self.heart_rate is None else round(self.heart_rate, 1),
            "rhythm": self.rhythm,
            "signal_quality": self.quality.value,
            "active_alarms": [a.to_dict() for a in self.active_alarms],
            "beats": self.beats,
            "sveb_per_hour": self.sveb_per_hour,
            "veb_per_hour": self.veb_per_hour,
            "af_burden_pct": None if self.af_burden is None else round(100 * self.af_burden, 1),
            "detector_version": self.detector_version,
        }
