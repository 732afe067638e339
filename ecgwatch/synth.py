"""Scripted synthetic single-lead ECG with ground truth, whole or streamed.

A ``Scenario`` is a base heart rate, a seed and a list of ``Event`` s (pause,
asystole, bradycardia, tachycardia, af, ectopic, noise, lead_off,
saturation). The synthesiser first walks beat by beat to build the RR series
the events dictate (that series *is* the ground truth), then renders each beat
with the ECGSYN-style Gaussian morphology of ``synth_waves`` (McSharry et al.
2003) at its R time, and adds respiration, baseline wander, broadband noise
and the scripted artefacts.

Heart-rate variability follows the bimodal RR spectrum of ECGSYN: a Mayer-wave
component at 0.1 Hz and respiratory sinus arrhythmia at the breathing rate
(0.2-0.33 Hz), plus a small AR(1) jitter; it shrinks at fast rates. Breathing
also modulates the beat amplitude (electrical axis) and the baseline.

Output is generated in blocks (60 s by default) in order; block ``k`` depends
only on the seed and on the beats generated before it, so ``SyntheticSource``
read in any block sizes returns exactly the samples of ``synthesize``, and a
fleet can run for days without holding more than a block per device.

Pure: no I/O, no clocks; deterministic given the scenario (including its seed).
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detect.errors import ConfigError

from . import synth_waves as waves
from .synth_waves import FloatArray

# Parameters of each event kind and their defaults.
EVENT_PARAMS: dict[str, dict[str, Any]] = {
    "pause": {},                                  # duration_s is the one long RR
    "asystole": {"p_waves": False},               # P waves continue (ventricular standstill)
    "bradycardia": {"bpm": 35.0},
    "tachycardia": {"bpm": 160.0},
    "af": {"rate": 110.0, "irregularity": 0.2, "f_amplitude": 0.05, "f_hz": 6.0},
    "ectopic": {"fraction": 0.15, "pattern": None, "coupling": 0.6},
    "noise": {"snr_db": 6.0, "noise": "mixed"},   # "muscle", "motion" or "mixed"
    "lead_off": {"value": 0.0},
    "saturation": {"rail": 5.0, "overdrive": 1.6},
}
_RHYTHM_RATE = ("bradycardia", "tachycardia")
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# Independent random streams, so that e.g. adding a noise event does not move
# a single beat: every stream is seeded by (scenario seed, stream, index).
_STATIC, _RR, _NOISE, _EVENT = 1, 2, 3, 4
_BROADBAND_MV = 0.01       # amplifier + tissue noise, standard deviation
_MIN_RR_S = 0.2


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(list(key))


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


@dataclass(frozen=True, slots=True, init=False)
class Event:
    """One scripted event: ``Event("tachycardia", 15.0, 25.0, bpm=160)``.

    ``start_s`` and ``duration_s`` are seconds from the start of the signal;
    for a ``pause`` the first beat at or after ``start_s`` is followed by one
    RR interval of ``duration_s``. Parameters not given take the defaults of
    ``EVENT_PARAMS``.
    """

    kind: str
    start_s: float
    duration_s: float
    params: tuple[tuple[str, Any], ...]

    def __init__(self, kind: str, start_s: float, duration_s: float, **params: Any) -> None:
        _check(kind in EVENT_PARAMS, f"Event kind {kind!r} is not one of "
                                     f"{', '.join(sorted(EVENT_PARAMS))}.")
        _check(isinstance(start_s, (int, float)) and math.isfinite(start_s) and start_s >= 0,
               f"Event {kind} start_s={start_s!r} must be a non-negative number of seconds.")
        _check(isinstance(duration_s, (int, float)) and math.isfinite(duration_s)
               and duration_s > 0,
               f"Event {kind} duration_s={duration_s!r} must be a positive number of seconds.")
        unknown = set(params) - set(EVENT_PARAMS[kind])
        _check(not unknown, f"Event {kind} does not take parameter(s) {sorted(unknown)}; "
                            f"it takes {sorted(EVENT_PARAMS[kind]) or 'none'}.")
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "start_s", float(start_s))
        object.__setattr__(self, "duration_s", float(duration_s))
        object.__setattr__(self, "params", tuple(sorted(params.items())))
        self._validate()

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def get(self, name: str) -> Any:
        """Parameter ``name``, or its default."""
        return dict(self.params).get(name, EVENT_PARAMS[self.kind][name])

    def _validate(self) -> None:
        k, g = self.kind, self.get

        def number(name: str, lo: float, hi: float) -> None:
            v = g(name)
            _check(isinstance(v, (int, float)) and not isinstance(v, bool)
                   and lo <= v <= hi, f"Event {k} {name}={v!r} must lie in {lo:g}..{hi:g}.")
        if k == "bradycardia":
            number("bpm", 10, 60)
        elif k == "tachycardia":
            number("bpm", 100, 300)
        elif k == "af":
            number("rate", 40, 220)
            number("irregularity", 0, 0.5)
            number("f_amplitude", 0, 0.5)
            number("f_hz", 4, 9)
        elif k == "ectopic":
            number("fraction", 0, 1)
            number("coupling", 0.3, 0.9)
            _check(g("pattern") in (None, "bigeminy", "trigeminy"),
                   f"Event ectopic pattern={g('pattern')!r} must be None, 'bigeminy' or "
                   "'trigeminy'.")
        elif k == "noise":
            number("snr_db", -30, 60)
            _check(g("noise") in ("muscle", "motion", "mixed"),
                   f"Event noise noise={g('noise')!r} must be 'muscle', 'motion' or 'mixed'.")
        elif k == "lead_off":
            number("value", -1000, 1000)
        elif k == "saturation":
            number("rail", 0.5, 1000)
            number("overdrive", 1.05, 10)
        elif k == "asystole":
            _check(isinstance(g("p_waves"), bool), "Event asystole p_waves must be a bool.")
        elif k == "pause":
            _check(self.duration_s >= 1.0, f"Event pause duration_s={self.duration_s!r} "
                                           "is one RR interval and must be at least 1 s.")


@dataclass(frozen=True, slots=True)
class Scenario:
    """A simulated patient: name (also the device id), base rate, events, seed."""

    name: str
    base_hr: float = 70.0
    events: tuple[Event, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        _check(isinstance(self.name, str) and bool(_NAME_RE.match(self.name)),
               f"Scenario name {self.name!r} must be 1 to 64 characters of A-Z, a-z, 0-9, "
               "'_' or '-' (it doubles as the device id).")
        _check(isinstance(self.base_hr, (int, float)) and 30 <= self.base_hr <= 200,
               f"Scenario {self.name} base_hr={self.base_hr!r} must lie in 30..200 bpm.")
        _check(isinstance(self.seed, int) and self.seed >= 0,
               f"Scenario {self.name} seed={self.seed!r} must be a non-negative integer.")
        events = tuple(self.events)
        _check(all(isinstance(e, Event) for e in events),
               f"Scenario {self.name} events must be Event instances.")
        object.__setattr__(self, "events", events)


@dataclass(frozen=True, slots=True)
class TruthEvent:
    """Where an event really happened, in seconds from the start of the signal.

    Rhythm windows are as scripted; a ``pause`` runs from the R peak before the
    long interval to the R peak after it.
    """

    kind: str
    onset: float
    offset: float
    params: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not self.offset >= self.onset:
            raise ValueError(f"Truth event {self.kind} ends ({self.offset}) before it starts "
                             f"({self.onset}).")

    def get(self, name: str) -> Any:
        return dict(self.params).get(name, EVENT_PARAMS[self.kind].get(name))


@dataclass(frozen=True, slots=True)
class Synthetic:
    """A synthesised record with its ground truth.

    ``signal`` is what the electrode delivers (mV); ``clean`` is the cardiac
    signal alone (beats and f-waves, no wander, noise or artefact).
    ``r_times`` are the R times (s) of every true beat, including beats hidden
    under lead-off or saturation; ``beat_kinds`` their AAMI symbols ("N", "V").
    """

    scenario: Scenario
    fs: float
    signal: FloatArray
    clean: FloatArray
    r_times: FloatArray
    beat_kinds: np.ndarray
    events: tuple[TruthEvent, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in ("signal", "clean", "r_times"):
            a = getattr(self, name)
            if not (isinstance(a, np.ndarray) and a.ndim == 1 and a.dtype == np.float64):
                raise ValueError(f"Synthetic.{name} must be a 1-D float64 array.")
            a.setflags(write=False)
        if self.clean.size != self.signal.size or self.beat_kinds.shape != self.r_times.shape:
            raise ValueError("Synthetic arrays disagree in length.")
        self.beat_kinds.setflags(write=False)

    @property
    def duration(self) -> float:
        return self.signal.size / self.fs


def _sample_range(start_s: float, end_s: float, fs: float) -> tuple[int, int]:
    """Samples n with start_s <= n / fs < end_s."""
    return math.ceil(start_s * fs - 1e-9), math.ceil(end_s * fs - 1e-9)


class _Engine:
    """Generates one scenario block after block; holds only what is still needed."""

    def __init__(self, scenario: Scenario, fs: float, block_s: float) -> None:
        _check(isinstance(fs, (int, float)) and 100 <= fs <= 1000,
               f"Scenario {scenario.name}: sampling rate fs={fs!r} Hz must lie in 100..1000.")
        _check(block_s >= 1.0, f"Block length {block_s!r} s must be at least 1 s.")
        self.sc, self.fs = scenario, float(fs)
        self.block = int(round(block_s * self.fs))
        self.k = 0
        seed = scenario.seed
        rng = _rng(seed, _STATIC)
        self.resp_hz = rng.uniform(0.2, 0.33)
        self.resp_phase, self.lf_phase, self.hf_phase = rng.uniform(0, 2 * np.pi, 3)
        # Baseline wander (mV, Hz, rad): breathing, slow drift, very slow drift.
        self.wander = np.array([[rng.uniform(0.03, 0.07), self.resp_hz, rng.uniform(0, 6.3)],
                                [rng.uniform(0.04, 0.10), rng.uniform(0.03, 0.07),
                                 rng.uniform(0, 6.3)],
                                [rng.uniform(0.02, 0.06), rng.uniform(0.005, 0.02),
                                 rng.uniform(0, 6.3)]])
        self.events = tuple(sorted(scenario.events, key=lambda e: e.start_s))
        self._event_rng = [_rng(seed, _EVENT, i) for i in range(len(self.events))]
        self._fw_phase = {i: r.uniform(0, 2 * np.pi, 4) for i, r in enumerate(self._event_rng)}
        self._noise_cache: dict[int, FloatArray] = {}
        self.truth = [TruthEvent(e.kind, e.start_s, e.end_s, e.params)
                      for e in self.events if e.kind != "pause"]
        self._pauses = [e for e in self.events if e.kind == "pause"]
        # Beat schedule: parallel lists, oldest first (pruned as blocks pass).
        self._rr_rng = _rng(seed, _RR)
        rr0 = 60.0 / scenario.base_hr
        self._r, self._kind = [-rr0 * self._rr_rng.uniform(0.05, 1.0)], [waves.NORMAL]
        self._amp, self._rr = [1.0], [rr0]
        self._ar = 0.0
        self._normal_run = 0               # conducted beats since the last PVC
        self._anchor = (self._r[0], rr0)   # sinus beat before a PVC, and its RR

    # ---- rhythm: one beat at a time -------------------------------------------------
    def _active(self, kind: str, t: float) -> Event | None:
        found = None
        for e in self.events:
            if e.kind == kind and e.start_s <= t < e.end_s:
                found = e
        return found

    def _extend(self, until: float) -> None:
        while self._r[-1] < until:
            self._step()

    def _step(self) -> None:
        t, last_kind, g = self._r[-1], self._kind[-1], self._rr_rng
        # Always draw the same numbers per beat so that streams stay aligned.
        jitter, u_af, u_ect, u_amp = g.standard_normal(), g.standard_normal(), g.random(), \
            g.standard_normal()
        rate = next((e for e in reversed(self.events) if e.kind in _RHYTHM_RATE
                     and e.start_s <= t < e.end_s), None)
        hr = rate.get("bpm") if rate else self.sc.base_hr
        vary = min(1.0, 60.0 / hr) ** 1.5          # HRV shrinks at fast rates
        self._ar = 0.5 * self._ar + 0.008 * vary * jitter
        hrv = vary * (0.03 * math.sin(2 * math.pi * 0.1 * t + self.lf_phase)
                      + 0.035 * math.sin(2 * math.pi * self.resp_hz * t + self.hf_phase))
        rr_sinus = 60.0 / hr * (1.0 + hrv + self._ar)
        af = self._active("af", t)
        if af:     # irregularly irregular: independent draws, no P waves
            rr = 60.0 / af.get("rate") * min(max(1.0 + af.get("irregularity") * u_af, 0.55), 2.0)
            kind = waves.NORMAL_NO_P
        else:
            rr, kind = rr_sinus, waves.NORMAL
        ect = self._active("ectopic", t)
        pause = self._pauses[0] if self._pauses and self._pauses[0].start_s <= t else None
        if pause:
            self._pauses.pop(0)
            nxt = t + pause.duration_s
            self.truth.append(TruthEvent("pause", t, nxt, pause.params))
        elif last_kind == waves.PVC:
            # Full compensatory pause in sinus rhythm: the sinus node was not reset,
            # so the next conducted beat comes two sinus cycles after the last one.
            a_t, a_rr = self._anchor
            nxt = t + rr if af else max(a_t + 2 * a_rr, t + _MIN_RR_S)
        elif ect and self._pvc_due(ect, u_ect):
            self._anchor = (t, rr)
            nxt, kind = t + ect.get("coupling") * rr, waves.PVC
        else:
            nxt = t + rr
        self._normal_run = 0 if kind == waves.PVC else self._normal_run + 1
        nxt = max(nxt, t + _MIN_RR_S)
        escape = self._skip_asystole(t, nxt, rr_sinus)
        if escape != nxt:          # the beat that ends an asystole is a conducted one
            nxt, kind = escape, (waves.NORMAL_NO_P if af else waves.NORMAL)
        amp = 1.0 + 0.08 * math.sin(2 * math.pi * self.resp_hz * nxt + self.resp_phase) \
            + 0.02 * u_amp
        self._append(nxt, kind, amp, nxt - t)

    def _pvc_due(self, ect: Event, u: float) -> bool:
        pattern = ect.get("pattern")
        if pattern == "bigeminy":
            return self._normal_run >= 1
        if pattern == "trigeminy":
            return self._normal_run >= 2
        return u < ect.get("fraction")

    def _skip_asystole(self, t: float, nxt: float, rr_atrial: float) -> float:
        """Move a beat that would fall inside an asystole window to its end."""
        for e in self.events:
            if e.kind == "asystole" and t < e.end_s and nxt >= e.start_s:
                if e.get("p_waves"):       # atria go on; nothing is conducted
                    p = t + rr_atrial
                    while p < e.end_s - 0.1:
                        self._append(p, waves.P_ONLY, 1.0, rr_atrial)
                        p += rr_atrial
                nxt = max(nxt, e.end_s)
        return nxt

    def _append(self, r: float, kind: int, amp: float, rr: float) -> None:
        self._r.append(r)
        self._kind.append(kind)
        self._amp.append(amp)
        self._rr.append(rr)

    # ---- rendering --------------------------------------------------------------------
    def _clean(self, n0: int, n1: int) -> FloatArray:
        """Cardiac signal (beats + f-waves) over absolute samples n0..n1."""
        fs = self.fs
        self._extend(n1 / fs + waves.PRE_S)
        lo = bisect.bisect_left(self._r, n0 / fs - waves.POST_S)
        hi = bisect.bisect_right(self._r, n1 / fs + waves.PRE_S)
        x = waves.render_beats(n0, n1, fs, np.array(self._r[lo:hi]),
                               np.array(self._kind[lo:hi], dtype=np.int64),
                               np.array(self._amp[lo:hi]), np.array(self._rr[lo:hi]))
        for i, e in enumerate(self.events):
            if e.kind == "af":
                a, b = self._overlap(e, n0, n1)
                if a < b:
                    t = np.arange(a, b) / fs
                    x[a - n0:b - n0] += waves.f_waves(t, e.get("f_amplitude"), e.get("f_hz"),
                                                      self._fw_phase[i])
        return x

    def _overlap(self, e: Event, n0: int, n1: int) -> tuple[int, int]:
        a, b = _sample_range(e.start_s, e.end_s, self.fs)
        return max(a, n0), min(b, n1)

    def _event_noise(self, i: int) -> FloatArray:
        """The whole noise burst of event i, scaled to its SNR over the event window.

        SNR = 10 log10(P_ecg / P_noise), both mean squares over the window, with
        P_ecg from the clean cardiac signal (or an ideal sinus rhythm at the
        base rate if the window holds no beats, e.g. during asystole).
        """
        if i not in self._noise_cache:
            e = self.events[i]
            a, b = _sample_range(e.start_s, e.end_s, self.fs)
            clean = self._clean(a, b)
            p_ecg = float(np.mean(clean * clean)) if b > a else 0.0
            if p_ecg < 1e-4:
                p_ecg = waves.beat_power(self.fs, self.sc.base_hr)
            unit = waves.artefact_noise(self._event_rng[i], b - a, self.fs, e.get("noise"))
            self._noise_cache[i] = unit * math.sqrt(p_ecg / 10 ** (e.get("snr_db") / 10))
        return self._noise_cache[i]

    def next_block(self) -> tuple[FloatArray, FloatArray, FloatArray, np.ndarray]:
        """Samples, clean samples, and R times/kinds of beats whose R falls in it."""
        fs, n0 = self.fs, self.k * self.block
        n1 = n0 + self.block
        clean = self._clean(n0, n1)
        t = np.arange(n0, n1) / fs
        x = (clean + waves.sinusoids(t, self.wander)
             + _BROADBAND_MV * _rng(self.sc.seed, _NOISE, self.k).standard_normal(self.block))
        for i, e in enumerate(self.events):     # artefacts: noise, then clipping, then flat
            a, b = self._overlap(e, n0, n1)
            if a < b and e.kind == "noise":
                start = _sample_range(e.start_s, e.end_s, fs)[0]
                x[a - n0:b - n0] += self._event_noise(i)[a - start:b - start]
                if b >= _sample_range(e.start_s, e.end_s, fs)[1]:
                    self._noise_cache.pop(i, None)
        for e in self.events:
            a, b = self._overlap(e, n0, n1)
            if a < b and e.kind == "saturation":
                # A large, slow swing (e.g. electrode rubbing) drives the amplifier
                # into both rails; the ECG is visible only between the clipped runs.
                rail, tt = e.get("rail"), t[a - n0:b - n0]
                swing = e.get("overdrive") * rail * np.sin(2 * np.pi * 0.7 * (tt - e.start_s))
                x[a - n0:b - n0] = np.clip(x[a - n0:b - n0] + swing, -rail, rail)
        for e in self.events:
            a, b = self._overlap(e, n0, n1)
            if a < b and e.kind == "lead_off":
                x[a - n0:b - n0] = e.get("value")
        lo = bisect.bisect_left(self._r, n0 / fs)
        hi = bisect.bisect_left(self._r, n1 / fs)
        r = np.array(self._r[lo:hi])
        kinds = np.array(self._kind[lo:hi], dtype=np.int64)
        real = kinds != waves.P_ONLY
        labels = np.array([waves.KIND_LABEL[k] for k in kinds[real]], dtype="<U1")
        self._prune(n1 / fs - waves.POST_S - 1.0)
        self.k += 1
        return x, clean, r[real], labels

    def _prune(self, before: float) -> None:
        cut = max(0, bisect.bisect_left(self._r, before) - 1)   # keep the last beat
        if cut:
            for seq in (self._r, self._kind, self._amp, self._rr):
                del seq[:cut]


def synthesize(scenario: Scenario, fs: float, duration_s: float, *,
               block_s: float = 60.0) -> Synthetic:
    """Synthesise ``duration_s`` seconds of ``scenario`` at ``fs`` Hz with ground truth."""
    _check(isinstance(duration_s, (int, float)) and duration_s > 0,
           f"Duration {duration_s!r} s must be positive.")
    engine = _Engine(scenario, fs, block_s)
    n = int(round(duration_s * engine.fs))
    xs, cs, rs, ks = [], [], [], []
    while sum(len(x) for x in xs) < n:
        x, c, r, k = engine.next_block()
        xs.append(x)
        cs.append(c)
        rs.append(r)
        ks.append(k)
    end = n / engine.fs
    r_all, k_all = np.concatenate(rs), np.concatenate(ks)
    keep = (r_all >= 0) & (r_all < end)
    truth = tuple(sorted((TruthEvent(e.kind, e.onset, min(e.offset, end), e.params)
                          for e in engine.truth if e.onset < end), key=lambda e: e.onset))
    return Synthetic(scenario, engine.fs, np.concatenate(xs)[:n], np.concatenate(cs)[:n],
                     r_all[keep], k_all[keep], truth)


class SyntheticSource:
    """Streams a scenario: ``read(n)`` returns the next ``n`` samples (mV).

    Returns fewer samples (finally none) once ``duration_s`` is reached; with
    ``duration_s=None`` it never ends. Reading in any block sizes yields exactly
    the samples of ``synthesize`` for the same scenario, rate and block length.
    """

    def __init__(self, scenario: Scenario, fs: float, duration_s: float | None = None, *,
                 block_s: float = 60.0) -> None:
        _check(duration_s is None or duration_s > 0, f"Duration {duration_s!r} s must be "
                                                     "positive or None.")
        self.scenario = scenario
        self._engine = _Engine(scenario, fs, block_s)
        self.fs = self._engine.fs
        self.name = scenario.name
        self._limit = None if duration_s is None else int(round(duration_s * self.fs))
        self._buf = np.zeros(0)
        self.position = 0          # samples returned so far

    @property
    def truth(self) -> tuple[TruthEvent, ...]:
        """Scripted events, plus pauses as soon as their beats are generated."""
        return tuple(sorted(self._engine.truth, key=lambda e: e.onset))

    def read(self, n_samples: int) -> FloatArray:
        if n_samples < 0:
            raise ValueError(f"Cannot read {n_samples} samples.")
        if self._limit is not None:
            n_samples = min(n_samples, self._limit - self.position)
        parts, have = [], 0
        while have < n_samples:
            if self._buf.size == 0:
                self._buf = self._engine.next_block()[0]
            take = self._buf[:n_samples - have]
            self._buf = self._buf[take.size:]
            parts.append(take)
            have += take.size
        self.position += have
        return np.concatenate(parts) if parts else np.zeros(0)
