"""The synthetic ECG generator: determinism, scripted truth, streaming, realism."""

from __future__ import annotations

import neurokit2 as nk
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecgwatch.evaluation.matching import match_beats
from ecgwatch.synth import Event, Scenario, SyntheticSource, synthesize


def _rr(syn, a, b):
    r = syn.r_times[(syn.r_times >= a) & (syn.r_times < b)]
    return np.diff(r)


def test_the_same_scenario_gives_the_same_signal_and_another_seed_does_not():
    sc = Scenario("d", 70.0, (Event("af", 5, 10),), seed=3)
    a, b = synthesize(sc, 250, 30), synthesize(sc, 250, 30)
    assert np.array_equal(a.signal, b.signal) and np.array_equal(a.r_times, b.r_times)
    other = synthesize(Scenario("d", 70.0, (Event("af", 5, 10),), seed=4), 250, 30)
    assert not np.array_equal(a.signal, other.signal)


def test_asystole_has_no_beats_and_the_lead_stays_attached():
    syn = synthesize(Scenario("d", 70.0, (Event("asystole", 20, 6),), seed=1), 250, 40)
    r = syn.r_times
    assert not ((r > 20.0) & (r < 26.0)).any()
    seg = syn.signal[int(21 * 250):int(25 * 250)]
    assert np.ptp(seg) > 0.02            # noise and wander, not a flat line


@pytest.mark.parametrize("kind, bpm", [("tachycardia", 160), ("bradycardia", 35)])
def test_rate_events_run_at_the_scripted_rate(kind, bpm):
    syn = synthesize(Scenario("d", 75.0, (Event(kind, 10, 30, bpm=bpm),), seed=2), 250, 50)
    rate = 60.0 / np.mean(_rr(syn, 15, 38))
    assert rate == pytest.approx(bpm, rel=0.05)


def test_a_pause_is_one_long_rr_of_the_scripted_length():
    syn = synthesize(Scenario("d", 70.0, (Event("pause", 20, 3.0),), seed=5), 250, 40)
    rr = np.diff(syn.r_times)
    assert np.sum(rr > 2.0) == 1 and rr.max() == pytest.approx(3.0, abs=0.05)
    assert [e.kind for e in syn.events].count("pause") == 1


def test_lead_off_is_exactly_flat_and_saturation_is_clipped():
    syn = synthesize(Scenario("d", 70.0, (Event("lead_off", 10, 5, value=0.0),
                                          Event("saturation", 20, 5, rail=5.0)), seed=6),
                     250, 30)
    flat = syn.signal[int(10.1 * 250):int(14.9 * 250)]
    assert np.all(flat == 0.0)
    clip = syn.signal[int(20 * 250):int(25 * 250)]
    assert np.abs(clip).max() == pytest.approx(5.0) and np.sum(np.abs(clip) == 5.0) > 25


@pytest.mark.parametrize("snr", [6.0, 0.0, -6.0])
def test_noise_is_added_at_the_requested_snr(snr):
    sc = Scenario("d", 70.0, (Event("noise", 5, 20, snr_db=snr),), seed=7)
    syn = synthesize(sc, 250, 30)
    seg = slice(int(6 * 250), int(24 * 250))
    clean = synthesize(Scenario("d", 70.0, (), seed=7), 250, 30).signal
    noise = syn.signal[seg] - clean[seg]
    ref = syn.clean[seg]
    measured = 10 * np.log10(np.mean(ref ** 2) / np.mean(noise ** 2))
    assert measured == pytest.approx(snr, abs=1.0)


@settings(max_examples=20, deadline=None)
@given(blocks=st.lists(st.integers(1, 20_000), min_size=1, max_size=6))
def test_streaming_in_any_block_sizes_equals_one_synthesis(blocks):
    sc = Scenario("d", 80.0, (Event("ectopic", 0, 100, fraction=0.2),), seed=9)
    whole = synthesize(sc, 360, 130).signal
    src = SyntheticSource(sc, 360, 130)
    parts, k = [], 0
    while (x := src.read(blocks[k % len(blocks)])).size:
        parts.append(x)
        k += 1
    assert np.array_equal(np.concatenate(parts), whole)


@pytest.mark.parametrize("fs", [100, 128, 250, 360, 500, 1000])
def test_every_rate_from_100_to_1000_hz(fs):
    syn = synthesize(Scenario("d", 70.0, (), seed=1), fs, 10)
    assert syn.signal.size == 10 * fs and np.isfinite(syn.signal).all()


def test_neurokit2_finds_the_true_beats_in_a_normal_signal():
    syn = synthesize(Scenario("d", 72.0, (), seed=11), 250, 60)
    peaks = nk.ecg_peaks(nk.ecg_clean(syn.signal, sampling_rate=250), sampling_rate=250)[1]
    m = match_beats(np.round(syn.r_times * 250).astype(int), peaks["ECG_R_Peaks"], 37)
    assert m.tp / len(syn.r_times) >= 0.98 and m.fp <= 1
