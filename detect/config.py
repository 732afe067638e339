"""One configuration object for the detector; seconds become samples here, once."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from .af import AfConfig
from .errors import ConfigError


@dataclass(frozen=True, slots=True)
class AlarmLimits:
    """Alarm thresholds with the defaults of bedside monitors (IEC 60601-2-27 style)."""

    asystole_s: float = 4.0            # no QRS for this long -> asystole (high)
    brady_bpm: float = 40.0            # extreme bradycardia below this rate ...
    brady_beats: int = 5               # ... over this many beats (high)
    tachy_bpm: float = 140.0           # extreme tachycardia above this rate ...
    tachy_beats: int = 17              # ... over this many beats (high)
    pause_s: float = 2.5               # one RR at least this long -> pause (medium)
    clear_after_s: float = 5.0         # condition absent this long before an alarm clears
    brady_clear_bpm: float = 45.0      # hysteresis: rate must recover past these to clear
    tachy_clear_bpm: float = 130.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"Alarm limit {f.name}={v!r} must be a positive number.")
        if self.brady_clear_bpm < self.brady_bpm:
            raise ConfigError(f"brady_clear_bpm={self.brady_clear_bpm} must be at least "
                              f"brady_bpm={self.brady_bpm}.")
        if self.tachy_clear_bpm > self.tachy_bpm:
            raise ConfigError(f"tachy_clear_bpm={self.tachy_clear_bpm} must be at most "
                              f"tachy_bpm={self.tachy_bpm}.")
        if self.pause_s >= self.asystole_s:
            raise ConfigError(f"pause_s={self.pause_s} must be shorter than "
                              f"asystole_s={self.asystole_s}.")


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Everything the per-device pipeline needs; immutable and validated."""

    fs: int = 250                          # internal rate every input is resampled to
    bandpass_hz: tuple[float, float] = (0.5, 40.0)
    mains_hz: tuple[float, ...] = (50.0, 60.0)
    notch_q: float = 30.0
    max_gap_s: float = 0.05                # time jump between chunks that counts as a gap
    reorder_window: int = 8                # chunks held back waiting for a missing seq
    reorder_timeout_s: float = 2.0         # wall time to wait for a missing seq
    no_data_timeout_s: float = 10.0        # wall time without chunks -> signal gap alarm
    alarms: AlarmLimits = field(default_factory=AlarmLimits)
    af: AfConfig = field(default_factory=AfConfig)   # AF detector, incl. min_duration_s

    def __post_init__(self) -> None:
        if not 100 <= self.fs <= 1000:
            raise ConfigError(f"Internal rate fs={self.fs!r} must lie in 100..1000 Hz.")
        lo, hi = self.bandpass_hz
        if not 0 < lo < hi < self.fs / 2:
            raise ConfigError(f"Band-pass {self.bandpass_hz!r} Hz must satisfy "
                              f"0 < low < high < {self.fs / 2:g}.")
        for f0 in self.mains_hz:
            if not 0 < f0 < self.fs / 2:
                raise ConfigError(f"Mains frequency {f0!r} Hz is outside 0..{self.fs / 2:g}.")

    def samples(self, seconds: float) -> int:
        """Seconds at the internal rate, rounded to whole samples."""
        return int(round(seconds * self.fs))

    def with_alarms(self, **changes: Any) -> "DetectorConfig":
        return replace(self, alarms=replace(self.alarms, **changes))

    def with_device_overrides(self, data: Any) -> DetectorConfig:
        """This configuration with one device's alarm limits and AF settings changed.

        ``data`` is a parsed per-device config document: ``{"v": 1, "alarms":
        {...}, "af": {...}}``, every key optional except ``v``. Only limits
        that decide alarms can differ per device; the signal chain is the
        service's. Raises ConfigError naming the bad key or value.
        """
        doc = _table(data, "A device configuration", "device setting", _DeviceDoc)
        if doc.get("v") != 1:
            raise ConfigError(f"Device configuration version {doc.get('v')!r} is not 1.")
        alarms = _table(doc.get("alarms", {}), "Device setting 'alarms'", "alarm limit",
                        AlarmLimits)
        af = _table(doc.get("af", {}), "Device setting 'af'", "AF setting", AfConfig)
        try:
            return replace(self, alarms=replace(self.alarms, **alarms), af=replace(self.af, **af))
        except TypeError as e:
            raise ConfigError(f"Device configuration is not valid: {e}.") from None

    def same_signal_chain(self, other: DetectorConfig) -> bool:
        """True when only alarm limits or AF settings differ (a live device can switch)."""
        return replace(other, alarms=self.alarms, af=self.af) == self

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DetectorConfig":
        """Build from a parsed config file: top-level detector fields plus an
        ``alarms`` table of AlarmLimits fields. Unknown keys are errors, so a
        typo never silently leaves a default in force."""
        kw = dict(_table(data, "Detector configuration", "detector setting", cls))
        af = _table(kw.pop("af", {}), "Detector setting 'af'", "AF setting", AfConfig)
        alarms = _table(kw.pop("alarms", {}), "Detector setting 'alarms'", "alarm limit",
                        AlarmLimits)
        for key in ("bandpass_hz", "mains_hz"):
            if key in kw:
                if not isinstance(kw[key], list):
                    raise ConfigError(f"Detector setting {key}={kw[key]!r} must be a list "
                                      "of numbers.")
                kw[key] = tuple(kw[key])
        try:
            return cls(alarms=AlarmLimits(**alarms), af=AfConfig(**af), **kw)
        except TypeError as e:
            raise ConfigError(f"Detector configuration is not valid: {e}.") from None


@dataclass(frozen=True, slots=True)
class _DeviceDoc:
    """The keys a per-device config document may have (for _table's check)."""

    v: int
    alarms: dict
    af: dict


def _table(data: Any, what: str, item: str, cls: type) -> dict[str, Any]:
    """A mapping whose keys are fields of ``cls``. Unknown keys are errors, so a
    typo never silently leaves a default in force."""
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must be a mapping, not {type(data).__name__}.")
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"Unknown {item}(s) {sorted(unknown)}; known: {sorted(known)}.")
    return data
