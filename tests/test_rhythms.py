"""Atrial fibrillation through the full streaming path: DevicePipeline, quality gate, alarms.

Synthetic rhythms (tests/ecg_fixtures.beat_train) at 250 Hz in chunks: the AF
alarm comes once, near the true onset, and clears after the rhythm turns
regular; regular rhythm and bigeminy raise nothing; irregular beats in signal
judged unusable raise nothing; the device state carries the AF burden.
"""

from __future__ import annotations

import numpy as np
import pytest

from detect.config import DetectorConfig
from detect.errors import ConfigError
from detect.pipeline import DevicePipeline
from detect.types import Action, Condition
from ecg_fixtures import beat_train, regular_r_times
from ecgwatch.evaluation.replay import chunks_of

FS = 250.0
AF = Condition.ATRIAL_FIBRILLATION


def af_times(start: float, end: float, seed: int = 0) -> np.ndarray:
    """Irregularly irregular RR: independent draws, 0.4-1.0 s (about 86 bpm)."""
    rng = np.random.default_rng(seed)
    rr = rng.uniform(0.4, 1.0, int((end - start) / 0.4) + 2)
    t = start + np.cumsum(rr)
    return t[t < end]


def run(x: np.ndarray, chunk_s: float = 1.0):
    p = DevicePipeline("dev-af", DetectorConfig())
    out = [p.push(c) for c in chunks_of(x, FS, chunk_s, "dev-af")] + [p.flush()]
    transitions = [t for r in out for t in r.transitions if t.condition is AF]
    return p, transitions


def episode(regular_s: float = 60.0, af_s: float = 120.0, after_s: float = 60.0):
    r = np.concatenate([regular_r_times(70, regular_s),
                        af_times(regular_s, regular_s + af_s),
                        regular_s + af_s + regular_r_times(70, after_s, start=0.6)])
    duration = regular_s + af_s + after_s
    return beat_train(r, FS, duration, noise=0.01), regular_s, regular_s + af_s


def test_af_is_raised_once_near_its_onset_and_clears_after_it_ends():
    x, onset, offset = episode()
    p, tr = run(x)
    raised = [t for t in tr if t.action is Action.RAISED]
    cleared = [t for t in tr if t.action is Action.CLEARED]
    assert len(raised) == 1 and len(cleared) == 1
    assert raised[0].condition.priority.value == "medium"
    assert abs(raised[0].onset - onset) < 15.0
    # Decided after the 30 s minimum episode, well before the episode ends.
    assert onset + 30.0 <= raised[0].at < offset
    # The offset needs the hold time (30 s) of regular rhythm to be sure.
    assert offset < cleared[0].at < offset + 60.0
    state = p.state()
    assert state.af_burden is not None and 0.2 < state.af_burden < 0.6


def test_state_says_atrial_fibrillation_while_it_lasts():
    x, onset, _ = episode(60.0, 150.0, 0.0)
    p = DevicePipeline("dev-af", DetectorConfig())
    rhythms = []
    for c in chunks_of(x, FS, 1.0, "dev-af"):
        p.push(c)
        rhythms.append((c.t_end, p.state().rhythm))
    assert all(r != "atrial_fibrillation" for t, r in rhythms if t < onset)
    assert rhythms[-1][1] == "atrial_fibrillation"
    assert p.state().to_dict()["af_burden_pct"] > 0


@pytest.mark.parametrize("kind", ["regular", "bigeminy"])
def test_regular_rhythm_and_bigeminy_raise_no_af(kind):
    if kind == "regular":
        r = regular_r_times(75, 240.0)
    else:  # short-long coupling, as in ventricular or atrial bigeminy
        r = 0.5 + np.cumsum(np.tile([0.55, 1.05], 160))
        r = r[r < 239.0]
    p, tr = run(beat_train(r, FS, 240.0))
    assert tr == []
    assert p.state().af_burden == 0.0


def test_irregular_beats_in_unusable_signal_raise_no_af():
    x, onset, offset = episode(30.0, 150.0, 30.0)
    rng = np.random.default_rng(5)
    i0, i1 = int(onset * FS), int(offset * FS)
    # Large broadband noise over the whole AF stretch: the quality gate must
    # call it unusable and keep the AF detector away from it.
    x[i0:i1] += 3.0 * rng.standard_normal(i1 - i0)
    _, tr = run(x)
    assert not [t for t in tr if t.action is Action.RAISED]


@pytest.mark.parametrize("chunk_s", [0.25, 3.0])
def test_any_chunking_gives_the_same_af_alarms(chunk_s):
    x, _, _ = episode(40.0, 100.0, 50.0)
    _, whole = run(x, 1.0)
    _, other = run(x, chunk_s)
    assert [(t.action, t.episode_id, t.onset) for t in whole] == \
        [(t.action, t.episode_id, t.onset) for t in other]
    assert whole


def test_af_settings_come_from_the_detector_config():
    cfg = DetectorConfig.from_dict({"af": {"min_duration_s": 60}})
    assert cfg.af.min_duration_s == 60
    with pytest.raises(ConfigError, match="Unknown AF setting"):
        DetectorConfig.from_dict({"af": {"min_duration": 60}})
    with pytest.raises(ConfigError, match="min_duration_s"):
        DetectorConfig.from_dict({"af": {"min_duration_s": -1}})


def test_a_device_can_lower_its_tachycardia_limit_while_it_streams():
    # 125 bpm: below the default extreme-tachycardia limit (140), above 120.
    x = beat_train(regular_r_times(125, 120.0), FS, 120.0)
    chunks = chunks_of(x, FS, 1.0, "dev-af")
    base = DetectorConfig()
    p = DevicePipeline("dev-af", base)
    early = [t for c in chunks[:60] for t in p.push(c).transitions]
    assert not early
    p.reconfigure(base.with_device_overrides({"v": 1, "alarms": {"tachy_bpm": 120,
                                                                  "tachy_clear_bpm": 115}}))
    late = [t for c in chunks[60:] for t in p.push(c).transitions]
    raised = [t for t in late if t.action is Action.RAISED]
    assert [t.condition for t in raised] == [Condition.EXTREME_TACHYCARDIA]
    assert raised[0].at < 70.0           # decided within seconds of the change


@pytest.mark.parametrize("doc, match", [
    ({"alarms": {"tachy_bpm": 120}}, "version"),
    ({"v": 1, "alarms": {"tachy": 120}}, "Unknown alarm limit"),
    ({"v": 1, "alarms": {"tachy_bpm": -5}}, "tachy_bpm"),
    ({"v": 1, "fs": 500}, "Unknown device setting"),
    ({"v": 1, "af": {"onset_threshold": 0.01}}, "offset_threshold"),
    ([1, 2], "mapping"),
])
def test_bad_device_configs_are_refused_with_a_sentence(doc, match):
    with pytest.raises(ConfigError, match=match):
        DetectorConfig().with_device_overrides(doc)


def test_only_alarm_settings_can_change_mid_stream():
    p = DevicePipeline("dev-af", DetectorConfig())
    with pytest.raises(ValueError, match="signal chain"):
        p.reconfigure(DetectorConfig(bandpass_hz=(1.0, 30.0)))


# ------------------------------------------------------------------ VF in the stream
VF = Condition.VENTRICULAR_FIBRILLATION


def vf_wave(seconds: float, seed: int = 1) -> np.ndarray:
    """Quasi-sinusoid of 4-6 Hz with drifting frequency and amplitude (0.4-1.2 mV)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    freq = 5.0 + 0.8 * np.sin(2 * np.pi * 0.13 * t) + 0.2 * np.sin(2 * np.pi * 0.7 * t)
    amp = 0.8 + 0.4 * np.sin(2 * np.pi * 0.21 * t + 1.0)
    return amp * np.sin(2 * np.pi * np.cumsum(freq) / FS) + 0.02 * rng.standard_normal(t.size)


def sinus_vf_sinus(before: float = 30.0, vf: float = 30.0, after: float = 30.0) -> np.ndarray:
    return np.concatenate([beat_train(regular_r_times(72, before), FS, before, seed=3),
                           vf_wave(vf),
                           beat_train(regular_r_times(72, after), FS, after, seed=4)])


def test_vf_is_raised_within_5_s_of_onset_alone_and_clears_after_it():
    x = sinus_vf_sinus()
    p = DevicePipeline("dev-vf", DetectorConfig())
    out = [p.push(c) for c in chunks_of(x, FS, 1.0, "dev-vf")]
    mid = p.state()
    out.append(p.flush())
    tr = [t for r in out for t in r.transitions]
    vf = [t for t in tr if t.condition is VF]
    assert [t.action for t in vf] == [Action.RAISED, Action.CLEARED]
    assert vf[0].condition.priority.value == "high"
    assert 30.0 <= vf[0].at <= 35.0 and abs(vf[0].onset - 30.0) < 4.0
    assert 60.0 < vf[1].at < 75.0
    # Flutter waves counted as beats would look like tachycardia: VF stands alone.
    raised = {t.condition for t in tr if t.action is Action.RAISED}
    assert Condition.EXTREME_TACHYCARDIA not in raised and AF not in raised
    assert mid.rhythm != "ventricular_fibrillation"     # sinus again by the end


def test_state_says_ventricular_fibrillation_while_it_lasts():
    x = sinus_vf_sinus(30.0, 20.0, 0.0)
    p = DevicePipeline("dev-vf", DetectorConfig())
    for c in chunks_of(x, FS, 1.0, "dev-vf"):
        p.push(c)
    state = p.state()
    assert state.rhythm == "ventricular_fibrillation"
    assert state.active_alarms[0].condition is VF


@pytest.mark.parametrize("chunk_s", [0.3, 2.5])
def test_vf_alarms_do_not_depend_on_chunking(chunk_s):
    x = sinus_vf_sinus(20.0, 25.0, 20.0)

    def alarms(size):
        p = DevicePipeline("dev-vf", DetectorConfig())
        out = [p.push(c) for c in chunks_of(x, FS, size, "dev-vf")] + [p.flush()]
        return [(t.condition, t.action, t.episode_id, t.at) for r in out for t in r.transitions]

    whole = alarms(1.0)
    assert any(c is VF for c, *_ in whole)
    assert alarms(chunk_s) == whole


# ------------------------------------------------------- wide-complex tachycardia
WCT = Condition.WIDE_COMPLEX_TACHYCARDIA


def with_wide_run(bpm: float = 140.0, start: float = 30.0, run_s: float = 15.0,
                  total: float = 75.0, base_width: float = 0.02) -> np.ndarray:
    """Narrow beats at 75 bpm, a run of wide beats at ``bpm``, narrow beats again."""
    before = regular_r_times(75, start)
    run = start + 0.4 + np.arange(0, run_s, 60.0 / bpm)
    after = run[-1] + 0.8 + np.arange(0, total - run[-1] - 1.5, 0.8)
    narrow = beat_train(np.concatenate([before, after]), FS, total, width=base_width)
    return narrow + beat_train(run, FS, total, width=0.05, amp=1.2, noise=0.0)


def wct_alarms(x, chunk_s=1.0):
    p = DevicePipeline("dev-wct", DetectorConfig())
    out = [p.push(c) for c in chunks_of(x, FS, chunk_s, "dev-wct")] + [p.flush()]
    return [t for r in out for t in r.transitions if t.condition is WCT]


def test_a_fast_run_of_wide_beats_raises_wide_complex_tachycardia_without_labels():
    tr = wct_alarms(with_wide_run())
    assert [t.action for t in tr] == [Action.RAISED, Action.CLEARED]
    assert tr[0].condition.priority.value == "high"
    assert abs(tr[0].onset - 30.4) < 1.0 and tr[0].at < 30.4 + 4.0
    assert 45.0 < tr[1].at < 55.0


@pytest.mark.parametrize("case", ["narrow sinus tachycardia", "slow wide rhythm",
                                  "bundle branch block in sinus tachycardia"])
def test_narrow_fast_or_wide_slow_or_usually_wide_beats_raise_nothing(case):
    if case == "narrow sinus tachycardia":
        x = beat_train(regular_r_times(150, 60.0), FS, 60.0)
    elif case == "slow wide rhythm":
        x = beat_train(regular_r_times(90, 60.0), FS, 60.0, width=0.05)
    else:   # wide at 80 bpm for a minute, then as wide at 140 bpm: no wider than usual
        r = np.concatenate([regular_r_times(80, 60.0), 60.0 + regular_r_times(140, 30.0)])
        x = beat_train(r, FS, 90.0, width=0.04)
    assert wct_alarms(x) == []


@pytest.mark.parametrize("chunk_s", [0.4, 2.5])
def test_wide_complex_alarms_do_not_depend_on_chunking(chunk_s):
    x = with_wide_run()
    whole = [(t.action, t.episode_id, t.at) for t in wct_alarms(x)]
    assert whole and [(t.action, t.episode_id, t.at) for t in wct_alarms(x, chunk_s)] == whole


def test_wide_complex_look_back_follows_the_horizon_with_the_same_observations():
    """Given the R-peak horizon the tracker keeps about a second of signal, not
    KEEP_S, and decides exactly as a tracker that keeps KEEP_S (no horizon)."""
    from detect.wide_complex import KEEP_S, WideComplexTracker
    x = with_wide_run()
    x[int(50 * FS):int(53 * FS)] += np.random.default_rng(3).normal(0, 1.0, int(3 * FS))
    p = DevicePipeline("dev-wct", DetectorConfig())
    wct, shadow = p._wct, WideComplexTracker(FS, p._time)
    held, pairs = [], []
    push = wct.push

    def both(clean, beats, windows, final=False, horizon=None, widths=None):
        assert horizon is not None
        out = push(clean, beats, windows, final, horizon, widths)
        pairs.append((out, shadow.push(clean, beats, windows, final)))
        held.append(wct._n)
        return out

    wct.push = both
    for c in chunks_of(x, FS, 1.0, "dev-wct"):
        p.push(c)
    p.flush()
    assert any(a for a, _ in pairs) and all(a == b for a, b in pairs)
    assert max(held[5:]) < 0.4 * KEEP_S * FS


def test_a_sinusoidal_wide_run_is_ventricular_fibrillation_alone():
    # At 170 bpm the wide complexes merge into a sine-like wave: the VF
    # detector calls it, and the wide-complex alarm is held back behind it.
    x = with_wide_run(bpm=170.0)
    p = DevicePipeline("dev-wct", DetectorConfig())
    out = [p.push(c) for c in chunks_of(x, FS, 1.0, "dev-wct")] + [p.flush()]
    raised = [t.condition for r in out for t in r.transitions if t.action is Action.RAISED]
    assert raised == [VF]


# ------------------------------------------- labelled rhythms through the whole path
class WidthLabels:
    """A stand-in beat model: V for a wide beat window, N otherwise. It lets the
    ventricular rhythm rules be tested through the real featurizer, pipeline and
    alarm managers without depending on what the trained model makes of
    synthetic beats."""

    def submit(self, owner, inputs, *, now=False):
        from detect.beat_features import WINDOW_BEFORE, finished
        from detect.wide_complex import qrs_width_ms
        # The pipeline submits pending beats; a model featurizes them (as BeatClassifier).
        return [(i.index, "V" if qrs_width_ms(i.window[WINDOW_BEFORE - 37:WINDOW_BEFORE + 38],
                                              37, FS) >= 80 else "N") for i in finished(inputs)]


def labelled_alarms(x):
    p = DevicePipeline("dev-lab", DetectorConfig(), WidthLabels())
    out = [p.push(c) for c in chunks_of(x, FS, 1.0, "dev-lab")] + [p.flush()]
    return [t for r in out for t in r.transitions]


def test_bigeminy_raises_ventricular_bigeminy_once():
    beats, wide, t = [], [], 0.5
    for k in range(80):                       # N (long) - V (short) coupling
        beats.append(t)
        wide.append(k >= 20 and k % 2 == 1)
        t += 0.55 if (k + 1) % 2 == 1 and k >= 19 else 0.9
    beats, wide = np.array(beats), np.array(wide)
    dur = beats[-1] + 1.0
    x = (beat_train(beats[~wide], FS, dur) +
         beat_train(beats[wide], FS, dur, width=0.05, amp=1.2, noise=0.0))
    tr = labelled_alarms(x)
    raised = [t for t in tr if t.action is Action.RAISED]
    assert [t.condition for t in raised] == [Condition.BIGEMINY]
    assert abs(raised[0].onset - beats[20]) < 1.0


def test_a_labelled_vt_run_is_one_high_alarm_near_its_onset():
    x = with_wide_run(bpm=140.0)
    tr = labelled_alarms(x)
    raised = [t for t in tr if t.action is Action.RAISED]
    # Beat labels and QRS width see the same run: one alarm, whichever came first.
    assert len(raised) == 1
    assert raised[0].condition in (Condition.VENTRICULAR_TACHYCARDIA, WCT)
    assert raised[0].condition.priority.value == "high"
    assert abs(raised[0].onset - 30.4) < 1.0
    assert [t.action for t in tr if t.episode_id == raised[0].episode_id][-1] is Action.CLEARED


def test_qrs_width_is_the_array_definitions_to_the_sample():
    # qrs_width_ms walks the stretch in plain Python for speed; it must give the
    # width the numpy definition gives, in float64 (the pipeline) and float32.
    from detect.wide_complex import LEVEL, qrs_width_ms

    def reference(segment, centre, fs):
        e = np.abs(segment - np.median(segment))
        lo, hi = max(centre - 5, 0), min(centre + 6, e.size)
        c = lo + int(np.argmax(e[lo:hi]))
        above = e > LEVEL * e[c]
        left, right = np.flatnonzero(~above[:c]), np.flatnonzero(~above[c:])
        a = left[-1] + 1 if left.size else 0
        b = c + right[0] if right.size else e.size
        return 1000.0 * (b - a) / fs

    rng = np.random.default_rng(8)
    for k in range(600):
        n = int(rng.choice([75, 76, 77]))
        t = np.arange(n)
        x = (rng.uniform(0.1, 3) * np.exp(-0.5 * ((t - n // 2) / rng.uniform(1, 15)) ** 2)
             + rng.normal(0, rng.uniform(0, 0.3), n))
        x = x.astype(np.float32) if k % 2 else x
        assert qrs_width_ms(x, n // 2, FS) == reference(x, n // 2, FS), k
    assert qrs_width_ms(np.zeros(77), 38, FS) == reference(np.zeros(77), 38, FS)


def test_qrs_widths_of_many_segments_at_once_are_each_segments_own():
    # The batched signal pass measures every R-peak candidate this way
    # (detect/batch.py); the tracker uses those widths as its own.
    from detect.wide_complex import qrs_width_ms, qrs_widths_many

    rng = np.random.default_rng(9)
    for n in (76, 77):
        t = np.arange(n)
        wide = rng.uniform(1, 15, (300, 1))
        x = (rng.uniform(0.1, 3, (300, 1)) * np.exp(-0.5 * ((t - n // 2) / wide) ** 2)
             + rng.normal(0, 0.1, (300, n)) * rng.uniform(0, 3, (300, 1)))
        x[:5] = 0.0                                  # flat: width 0
        x[5, n // 2] = np.nan
        x[6] = np.round(x[6], 1)                      # ties
        for centre in (n // 2, 2, n - 2):
            assert qrs_widths_many(x, centre, FS) == [qrs_width_ms(r, centre, FS) for r in x]
    assert qrs_widths_many(np.zeros((0, 77)), 38, FS) == []


class AllS:
    """Labels every beat S, so what the pipeline does to S labels shows."""

    def submit(self, owner, inputs, *, now=False):
        from detect.beat_features import finished
        return [(i.index, "S") for i in finished(inputs)]


def s_labels_through_af(chunk_s: float):
    x, onset, offset = episode()
    p = DevicePipeline("dev-s", DetectorConfig(), AllS())
    out = [p.push(c) for c in chunks_of(x, FS, chunk_s, "dev-s")] + [p.flush()]
    beats = [b for r in out for b in r.classified]
    raised = [t.at for r in out for t in r.transitions
              if t.condition is AF and t.action is Action.RAISED]
    cleared = [t.at for r in out for t in r.transitions
               if t.condition is AF and t.action is Action.CLEARED]
    return beats, raised, cleared


def test_s_labels_become_n_once_af_is_decided_and_not_outside_it():
    beats, raised, cleared = s_labels_through_af(1.0)
    assert len(raised) == 1 and len(cleared) == 1
    on, off = raised[0], cleared[0]
    before = [b.label for b in beats if b.time < on - 0.01]
    during = [b.label for b in beats if on + 0.01 < b.time < off - 0.01]
    after = [b.label for b in beats if b.time > off + 0.01]
    assert before and set(before) == {"S"}      # not yet known to be AF: left alone
    assert during and set(during) == {"N"}
    assert after and set(after) == {"S"}


@pytest.mark.parametrize("chunk_s", [0.37, 2.5])
def test_the_af_veto_does_not_depend_on_chunking(chunk_s):
    ref, _, _ = s_labels_through_af(1.0)
    got, _, _ = s_labels_through_af(chunk_s)
    assert [(b.index, b.label) for b in got] == [(b.index, b.label) for b in ref]


class VAt:
    """Labels V the beats within 50 ms of ``times`` (s), N the rest: a model that knows."""

    def __init__(self, times: np.ndarray) -> None:
        self.times = np.asarray(times)

    def submit(self, owner, inputs, *, now=False):
        from detect.beat_features import finished
        return [(i.index, "V" if np.abs(self.times - i.index / FS).min() < 0.05 else "N")
                for i in finished(inputs)]


def late_pvcs(seconds: float, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Sinus at 0.8 s with a V beat every 2-4 beats, coupled at 0.62-0.70 s: too late for
    the label-free ectopic filter (25 % premature), random enough to look irregular."""
    rng = np.random.default_rng(seed)
    rr: list[float] = []
    v: list[int] = []
    while sum(rr) < seconds:
        rr += list(0.8 + 0.01 * rng.standard_normal(int(rng.integers(1, 4))))
        coupling = rng.uniform(0.62, 0.70)
        rr += [coupling, 1.6 - coupling + rng.uniform(-0.1, 0.1)]
        v.append(len(rr) - 2)
    t = 0.5 + np.cumsum(rr)
    return t, t[v]


def test_labelled_ventricular_ectopy_is_left_out_of_af_and_unlabelled_is_not():
    t, v = late_pvcs(400)
    x = beat_train(t[t < 399], FS, 400, noise=0.01)
    raised = {}
    for name, model in (("unlabelled", VAt(np.array([-1.0]))), ("labelled", VAt(v))):
        p = DevicePipeline("dev-v", DetectorConfig(), model)
        out = [p.push(c) for c in chunks_of(x, FS, 1.0, "dev-v")] + [p.flush()]
        raised[name] = [tr for r in out for tr in r.transitions
                        if tr.condition is AF and tr.action is Action.RAISED]
        if name == "labelled":
            labels = [b.label for r in out for b in r.classified]
            assert labels.count("V") >= 0.9 * len(v)
    assert raised["unlabelled"], "late PVCs should look like AF to RR timing alone"
    assert raised["labelled"] == []
