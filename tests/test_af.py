"""AF detector on RR intervals: synthetic rhythms, chunk invariance, config, AFDB regression."""

from __future__ import annotations

import numpy as np
import pytest
from ecg_fixtures import data_dir
from hypothesis import given, settings
from hypothesis import strategies as st

from detect.af import AfConfig, AfDetector, AfEvent
from detect.errors import ConfigError

FS = 250.0


def beats_from_rr(rr: np.ndarray, start: float = 0.5) -> list[int]:
    return [int(round(t * FS)) for t in start + np.concatenate([[0.0], np.cumsum(rr)])]


def sinus(seconds: float, rr: float = 0.8, jitter: float = 0.01, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds / rr)
    return rr + jitter * rng.standard_normal(n)


def af_rr(seconds: float, mean: float = 0.65, cv: float = 0.2, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds / mean)
    return np.clip(mean * (1 + cv * rng.standard_normal(n)), 0.3, 1.6)


def run(beats: list[int], config: AfConfig | None = None) -> tuple[list[AfEvent], AfDetector]:
    det = AfDetector(FS, config or AfConfig())
    return det.push(beats) + det.flush(), det


def test_regular_rhythm_is_not_af():
    events, det = run(beats_from_rr(sinus(600)))
    assert events == []
    assert det.af_burden == 0.0


def test_af_episode_onset_and_offset_near_the_truth():
    pre, af, post = sinus(300), af_rr(300), sinus(300, seed=2)
    rr = np.concatenate([pre, af, post])
    beats = beats_from_rr(rr)
    t_on = beats[len(pre)] / FS
    t_off = beats[len(pre) + len(af)] / FS
    events, det = run(beats)
    assert [e.kind for e in events] == ["onset", "offset"]
    on, off = events
    assert abs(on.index / FS - t_on) < 15, (on.index / FS, t_on)
    assert abs(off.index / FS - t_off) < 15, (off.index / FS, t_off)
    # The onset is decided after it is placed, within about a window of beats.
    assert on.index < on.decision_index < on.index + 90 * FS
    assert on.irregularity > det.config.onset_threshold
    assert 70 < on.heart_rate < 120
    assert det.af_burden == pytest.approx((t_off - t_on) / (beats[-1] / FS - beats[0] / FS),
                                          abs=0.04)


@pytest.mark.parametrize("pre_s", [8.0, 120.0])
def test_af_onset_is_placed_at_the_first_irregular_interval(pre_s):
    # 8 s: AF begins while the running medians are still filling (the detector's
    # start, or its restart after a gap or bad signal); 120 s: in steady state.
    # Before the onsets were placed on the intervals themselves they lay 6.5-8 s
    # late in the first case and 1-4 s late in the second.
    errors = []
    for seed in range(1, 6):
        pre, af = sinus(pre_s, seed=seed), af_rr(200, seed=seed + 10)
        beats = beats_from_rr(np.concatenate([pre, af]))
        events, _ = run(beats)
        assert events[0].kind == "onset"
        errors.append(events[0].index / FS - beats[len(pre)] / FS)
    assert all(-1.0 <= e <= 3.0 for e in errors), errors
    assert sorted(errors)[2] <= 0.5, errors                      # the median: on the beat


def test_af_to_the_end_of_the_stream_is_closed_by_flush():
    beats = beats_from_rr(np.concatenate([sinus(120), af_rr(200)]))
    det = AfDetector(FS, AfConfig())
    events = det.push(beats)
    assert [e.kind for e in events] == ["onset"] and det.in_af
    tail = det.flush()
    assert [e.kind for e in tail] == ["offset"] and tail[0].index == beats[-1]


def test_bigeminy_is_not_af():
    rr = np.tile([0.55, 0.95], 300) + 0.005 * np.random.default_rng(3).standard_normal(600)
    events, _ = run(beats_from_rr(rr))
    assert events == []


def test_sinus_arrhythmia_is_not_af():
    # Respiratory sinus arrhythmia (0.25 Hz, +-80 ms) on a slow drift (+-100 ms over 60 s).
    t, rr = 0.0, []
    while t < 900:
        r = 0.9 + 0.08 * np.sin(2 * np.pi * 0.25 * t) + 0.1 * np.sin(2 * np.pi * t / 60)
        rr.append(r)
        t += r
    events, _ = run(beats_from_rr(np.asarray(rr)))
    assert events == []


def test_short_af_burst_below_minimum_duration_is_not_reported():
    rr = np.concatenate([sinus(200), af_rr(12), sinus(200, seed=4)])
    events, _ = run(beats_from_rr(rr))
    assert events == []


def test_ventricular_beats_are_left_out_with_labels():
    # Sinus with a V beat every third beat (premature, then a compensatory pause).
    rr = np.tile([0.8, 0.5, 1.1], 250)
    beats = beats_from_rr(rr)
    labels = ["N" if k % 3 != 2 else "V" for k in range(len(beats))]
    det = AfDetector(FS, AfConfig())
    assert det.push(beats, labels) + det.flush() == []


def frequent_pacs(seconds: float, seed: int = 5) -> np.ndarray:
    """Sinus at 0.8 s with a premature beat (0.6 x, pause 1.2 x) every 2-5 beats at random."""
    rng = np.random.default_rng(seed)
    rr: list[float] = []
    while sum(rr) < seconds:
        rr += list(0.8 + 0.01 * rng.standard_normal(int(rng.integers(2, 6))))
        rr += [0.48, 0.96]
    return np.asarray(rr)


def test_frequent_unlabelled_pacs_are_left_out_by_the_ectopic_filter():
    beats = beats_from_rr(frequent_pacs(900))
    without, _ = run(beats, AfConfig(ectopic_ratio=0.0))
    assert without, "the random PAC pattern should look irregular with the filter off"
    events, _ = run(beats, AfConfig(ectopic_ratio=0.2))
    assert events == []


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 400), min_size=1, max_size=30), st.integers(0, 10))
def test_any_chunking_gives_the_same_events(cuts, seed):
    rr = np.concatenate([sinus(60, seed=seed), af_rr(120, seed=seed), sinus(60, seed=seed + 1),
                         af_rr(80, seed=seed + 2)])
    beats = beats_from_rr(rr)
    cfg = AfConfig(min_duration_s=20, merge_gap_s=5)
    whole, det1 = run(beats, cfg)
    det = AfDetector(FS, cfg)
    events, pos = [], 0
    for c in cuts:
        events += det.push(beats[pos:pos + c])
        pos += c
    events += det.push(beats[pos:]) + det.flush()
    assert events == whole
    assert det.af_burden == det1.af_burden


@pytest.mark.parametrize("changes, words", [
    ({"median_beats": 2}, "median_beats=2"),
    ({"smoothing_beats": 0.5}, "smoothing_beats=0.5"),
    ({"rate_exponent": 9.0}, "rate_exponent=9.0"),
    ({"hold_s": -2.0}, "hold_s=-2.0"),
    ({"ectopic_ratio": 1.0}, "ectopic_ratio=1.0"),
    ({"onset_threshold": 0.05, "offset_threshold": 0.08}, "offset_threshold=0.08"),
    ({"min_duration_s": -1.0}, "min_duration_s=-1.0"),
    ({"min_rr_s": 2.0, "max_rr_s": 1.0}, "min_rr_s=2.0"),
    ({"lags": 0}, "lags=0"),
    ({"median_beats": "16"}, "median_beats='16'"),
])
def test_bad_config_is_refused_with_a_sentence(changes, words):
    with pytest.raises(ConfigError) as err:
        AfConfig(**changes)
    msg = str(err.value)
    assert words in msg and msg.endswith(".") and msg[0].isupper()


def test_bad_input_is_refused():
    det = AfDetector(FS)
    det.push([100, 300])
    with pytest.raises(ValueError, match="ascending"):
        det.push([300])
    with pytest.raises(ValueError, match="one label per beat"):
        det.push([400, 500], ["N"])
    with pytest.raises(ConfigError, match="fs=0"):
        AfDetector(0)


# ------------------------------------------------------------------ real data
AFDB = data_dir() / "afdb"
#: Held-out records (never used for tuning; see ecgwatch.evaluation.af).
REGRESSION_RECORDS = ("04126", "05091", "08434")


@pytest.mark.realdata
@pytest.mark.skipif(not AFDB.is_dir(), reason=f"MIT-BIH AFDB not found at {AFDB} "
                    "(set ECGWATCH_DATA to the PhysioNet data folder)")
def test_afdb_held_out_episode_sensitivity():
    from ecgwatch.evaluation.af import HELD_OUT, afdb_scores, summarise
    assert set(REGRESSION_RECORDS) <= set(HELD_OUT)
    scores = afdb_scores(AFDB, REGRESSION_RECORDS, AfConfig())
    gross = summarise(scores)["gross"]
    assert gross["episode_se_long"] >= 0.90, gross
    assert gross["duration_ppv"] >= 0.80, gross


def test_labels_are_not_read_once_the_rhythm_is_irregular():
    # V labels guard sinus rhythm; inside AF they would only slow the detector.
    rr = np.concatenate([sinus(120), af_rr(600), sinus(120, seed=3)])
    beats = beats_from_rr(rr)
    plain, _ = run(beats)
    assert [e.kind for e in plain] == ["onset", "offset"]
    rng = np.random.default_rng(2)
    # V labels on 40 % of the beats from the onset's decision to the end of the AF.
    labels = ["V" if plain[0].decision_index < b < plain[1].index and rng.random() < 0.4
              else "N" for b in beats]
    det = AfDetector(FS, AfConfig())
    assert det.push(beats, labels) + det.flush() == plain
