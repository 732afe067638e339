import neurokit2 as nk
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from detect.rpeaks import RPeakDetector
from ecgwatch.evaluation.matching import match_beats
from ecg_fixtures import beat_train, regular_r_times

FS = 250
WIN = int(0.15 * FS)          # EC57 match window


def detect(x, chunk=FS):
    det = RPeakDetector(FS)
    out = []
    for i in range(0, x.size, chunk):
        out += det.push(x[i:i + chunk])
    return np.array(out, dtype=int), det


def assert_finds(r_times, peaks, tol=WIN):
    m = match_beats(np.round(r_times * FS).astype(int), peaks, tol)
    assert m.fn == 0, f"missed beats at {r_times[m.missed]} s"
    assert m.fp == 0, f"extra beats at {peaks[m.extra] / FS} s"


def test_finds_every_beat_of_a_regular_rhythm_within_a_few_ms():
    r = regular_r_times(72, 60)
    peaks, _ = detect(beat_train(r, FS, 60))
    assert_finds(r, peaks, tol=3)


def test_negative_qrs_is_found_at_its_trough():
    r = regular_r_times(80, 60)
    peaks, _ = detect(-beat_train(r, FS, 60))
    assert_finds(r, peaks, tol=3)


@pytest.mark.parametrize("bpm", [30, 45, 180, 240, 290])
def test_no_rate_cap_below_300_bpm(bpm):
    r = regular_r_times(bpm, 60)
    x = beat_train(r, FS, 60, width=0.012)
    peaks, _ = detect(x)
    assert_finds(r, peaks)


def test_sudden_rate_change_and_a_long_pause():
    r = np.concatenate([regular_r_times(60, 20), 20 + regular_r_times(150, 20, start=1.0),
                        43.0 + regular_r_times(70, 17)])
    peaks, _ = detect(beat_train(r, FS, 60))
    assert_finds(r, peaks)


def test_asystole_yields_no_beats_and_the_horizon_moves_on():
    r = np.concatenate([regular_r_times(70, 20), 30 + regular_r_times(70, 30)])
    x = beat_train(r, FS, 60, noise=0.02)
    peaks, det = detect(x)
    assert_finds(r, peaks)
    assert not ((peaks > 20 * FS) & (peaks < 30 * FS)).any()
    assert det.horizon > 57 * FS


def test_horizon_is_a_promise_later_pushes_never_break():
    r = np.concatenate([regular_r_times(70, 15), 18 + regular_r_times(50, 20)])
    x = beat_train(r, FS, 40, noise=0.03, seed=3)
    det, seen, horizons = RPeakDetector(FS), [], []
    for i in range(0, x.size, 25):
        before = det.horizon
        new = det.push(x[i:i + 25])
        assert all(p >= before for p in new), f"beat {new} before the promised horizon {before}"
        horizons.append(det.horizon)
        seen += new
    assert seen == sorted(seen)
    assert horizons == sorted(horizons) and horizons[-1] > 35 * FS


def test_horizon_holds_across_relearning():
    """Relearning re-reads candidates already scanned: the horizon must wait for them."""
    r = regular_r_times(75, 60)
    x = beat_train(r, FS, 60, noise=0.05, seed=5)
    x[int(20 * FS):int(24 * FS)] += np.random.default_rng(5).normal(0, 1.0, int(4 * FS))
    det, horizons = RPeakDetector(FS), [0]
    for k, i in enumerate(range(0, x.size, int(FS))):
        if k % 3 == 1:                       # as the pipeline does after noise ends
            det.relearn(i)
        new = det.push(x[i:i + int(FS)])
        assert all(p >= max(horizons) for p in new), (
            f"beat {new} before the promised horizon {max(horizons)}")
        horizons.append(det.horizon)
    assert max(horizons) > 55 * FS


def test_amplitude_drop_after_big_beats_is_followed():
    r = regular_r_times(70, 80)
    x = beat_train(r, FS, 80)
    x[int(40 * FS):] *= 0.3           # electrode moved: QRS a third as tall
    peaks, _ = detect(x)
    assert_finds(r, peaks)


def test_a_sevenfold_amplitude_drop_is_recovered_within_ten_seconds():
    r = regular_r_times(70, 80)
    x = beat_train(r, FS, 80)
    x[int(40 * FS):] *= 0.15
    peaks, _ = detect(x)
    late = r[r > 50]
    assert_finds(late, peaks[peaks > 50 * FS - WIN])


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.sampled_from([1, 7, 25, 100, 250, 313, 2500]), min_size=1, max_size=5),
       seed=st.integers(0, 3))
def test_any_chunking_gives_the_same_beats(sizes, seed):
    rng = np.random.default_rng(seed)
    rr = rng.uniform(0.3, 1.3, 60)
    r = 0.5 + np.cumsum(rr)
    r = r[r < 39]
    x = beat_train(r, FS, 40, noise=0.05, seed=seed)
    whole, _ = detect(x, chunk=x.size)
    det, out, i, k = RPeakDetector(FS), [], 0, 0
    while i < x.size:
        n = sizes[k % len(sizes)]
        out += det.push(x[i:i + n])
        i, k = i + n, k + 1
    assert out == whole.tolist()


def test_agrees_with_neurokit2_on_its_own_simulator():
    x = nk.ecg_simulate(duration=120, sampling_rate=FS, heart_rate=75, noise=0.05,
                        method="ecgsyn", random_state=4)
    ref = nk.ecg_peaks(nk.ecg_clean(x, sampling_rate=FS), sampling_rate=FS)[1]["ECG_R_Peaks"]
    peaks, _ = detect(np.asarray(x, dtype=float))
    m = match_beats(ref[ref > 2 * FS], peaks[peaks > 2 * FS], WIN)
    assert m.fn == 0 and m.fp == 0
