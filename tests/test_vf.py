"""VF/VFL detector on the cleaned 250 Hz signal: synthetic rhythms, chunks, config, MIT-BIH 207."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detect.errors import ConfigError
from detect.filters import CleaningFilter
from detect.vf import VfConfig, VfDetector, VfEvent, vf_features
from tests.ecg_fixtures import beat_train, data_dir, regular_r_times

FS = 250


def clean(x: np.ndarray) -> np.ndarray:
    """The pipeline's cleaning filter, in one pass (it is chunk invariant)."""
    return CleaningFilter(FS, (0.5, 40.0), (50.0, 60.0), 30.0).push(x)


def vf_wave(seconds: float, seed: int = 1) -> np.ndarray:
    """Quasi-sinusoid of 4-6 Hz with drifting frequency and amplitude (0.4-1.2 mV)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    t = np.arange(n) / FS
    freq = 5.0 + 0.8 * np.sin(2 * np.pi * 0.13 * t) + 0.2 * np.sin(2 * np.pi * 0.7 * t)
    amp = 0.8 + 0.4 * np.sin(2 * np.pi * 0.21 * t + 1.0)
    phase = 2 * np.pi * np.cumsum(freq) / FS
    return amp * np.sin(phase) + 0.02 * rng.standard_normal(n)


def sinus_then_vf(sinus_s: float = 20.0, vf_s: float = 20.0) -> tuple[np.ndarray, int]:
    normal = beat_train(regular_r_times(72, sinus_s), FS, sinus_s, seed=3)
    return clean(np.concatenate([normal, vf_wave(vf_s)])), int(sinus_s * FS)


def run(x: np.ndarray, sizes: list[int] | None = None, **kw) -> list[VfEvent]:
    det = VfDetector(FS, VfConfig(**kw))
    out: list[VfEvent] = []
    i, k = 0, 0
    while i < x.size:
        n = sizes[k % len(sizes)] if sizes else x.size
        out += det.push(x[i:i + n])
        i, k = i + n, k + 1
    return out + det.flush()


def test_vf_after_sinus_raises_once_within_5_s():
    x, onset = sinus_then_vf()
    events = run(x)
    raised = [e for e in events if e.active]
    assert len(raised) == 1
    ev = raised[0]
    assert 0 < ev.at - onset <= 5 * FS, (ev.at - onset) / FS
    assert abs(ev.index - onset) <= 3 * FS
    assert 4.0 <= ev.features.dominant_hz <= 6.0
    # The open episode ends where the data ends.
    assert [e.active for e in events] == [True, False] and events[-1].index == x.size


def test_active_property_follows_the_episode():
    x, onset = sinus_then_vf(vf_s=10.0)
    det = VfDetector(FS)
    det.push(x[:onset])
    assert not det.active
    det.push(x[onset:])
    assert det.active
    det.flush()
    assert not det.active


def test_vf_that_stops_is_cleared():
    x, onset = sinus_then_vf(vf_s=12.0)
    tail = clean(np.concatenate([np.zeros(1), beat_train(regular_r_times(72, 15), FS, 15)]))[1:]
    events = run(np.concatenate([x, tail]))
    assert [e.active for e in events] == [True, False]
    end = onset + 12 * FS
    assert abs(events[1].index - end) <= 3 * FS
    assert events[1].at - end <= 6 * FS


@pytest.mark.parametrize("bpm", [45, 72, 120, 180])
def test_regular_narrow_complexes_are_not_vf(bpm):
    # 180 bpm narrow complexes: an SVT, fast but with QRS complexes and a baseline.
    x = clean(beat_train(regular_r_times(bpm, 60), FS, 60, seed=bpm))
    assert run(x) == []


def test_noise_bursts_are_not_vf():
    rng = np.random.default_rng(7)
    x = beat_train(regular_r_times(80, 60), FS, 60, seed=2)
    for start in (5, 20, 40):                      # 8 s bursts of broadband noise, 1 mV rms
        sl = slice(start * FS, (start + 8) * FS)
        x[sl] += rng.standard_normal(sl.stop - sl.start)
    t = np.arange(x.size) / FS                     # and slow motion-like wander, 1-2 Hz
    x += 0.8 * np.sin(2 * np.pi * 1.3 * t) * (t > 50)
    assert run(clean(x)) == []


def test_small_waves_are_not_vf():
    x, _ = sinus_then_vf()
    # 0.02-0.06 mV peaks (under 0.15 mV across): fine VF is left to the asystole alarm.
    assert [e for e in run(x * 0.05) if e.active] == []


def test_features_of_ideal_waves():
    t = np.arange(4 * FS) / FS
    f = vf_features(np.sin(2 * np.pi * 5 * t), FS)
    assert f.leakage < 0.05 and f.tcsc > 75 and f.moment < 1.2 and f.a2 > 0.8
    assert f.dominant_hz == pytest.approx(5.0, abs=0.15)
    g = vf_features(clean(beat_train(regular_r_times(72, 4.5), FS, 4.5))[125:], FS)
    # A QRS train fails three limits at once (its M may pass: 1.8 at 72 bpm).
    assert g.leakage > 0.6 and g.tcsc < 40 and g.a2 < 0.35


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 900), min_size=1, max_size=6))
def test_any_chunking_gives_the_same_events(sizes):
    x, _ = sinus_then_vf(sinus_s=12.0, vf_s=12.0)
    x = np.concatenate([x, clean(beat_train(regular_r_times(90, 12), FS, 12))])
    assert run(x, sizes) == run(x)


def test_start_offsets_indices():
    x, _ = sinus_then_vf()
    base = VfDetector(FS).push(x)
    shifted = VfDetector(FS, start=1000).push(x)
    assert [(e.index + 1000, e.at + 1000) for e in base] == [(e.index, e.at) for e in shifted]


@pytest.mark.parametrize("kw, word", [
    ({"window_s": 0.5}, "window_s"), ({"hop_s": 5.0}, "hop_s"),
    ({"confirm_windows": 0}, "confirm_windows"), ({"clear_windows": 1.5}, "clear_windows"),
    ({"band_hz": (8.0, 3.0)}, "band_hz"), ({"max_leakage": 0.0}, "max_leakage"),
    ({"min_tcsc": 120.0}, "min_tcsc"), ({"max_moment": 0.5}, "max_moment"),
    ({"min_a2": 1.5}, "min_a2"), ({"min_amplitude_mv": -1.0}, "min_amplitude_mv"),
    ({"max_leakage": float("nan")}, "max_leakage"), ({"min_tcsc": True}, "min_tcsc"),
])
def test_config_errors_name_the_setting(kw, word):
    with pytest.raises(ConfigError, match=word):
        VfConfig(**kw)


def test_event_before_its_decision_is_refused():
    with pytest.raises(ValueError, match="before it happened"):
        VfEvent(True, 100, 50, None)


MITDB = data_dir() / "mitdb"


@pytest.mark.skipif(not (MITDB / "207.hea").exists(),
                    reason=f"MIT-BIH record 207 not found at {MITDB} (set ECGWATCH_DATA)")
def test_mitdb_207_ventricular_flutter_is_detected():
    from ecgwatch.evaluation.vf import run_record, score_flutter
    rows = score_flutter(run_record(MITDB / "207"))
    assert len(rows) == 6
    assert all(r["detected"] for r in rows), rows
    assert sorted(r["time_to_alarm_s"] for r in rows)[-2] <= 5.0, rows
