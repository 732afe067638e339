import numpy as np
from hypothesis import given, settings, strategies as st

from detect.filters import CleaningFilter

FS = 250


def _tone(f, seconds=20, amp=1.0):
    t = np.arange(seconds * FS) / FS
    return amp * np.sin(2 * np.pi * f * t)


def _rms(x):
    return float(np.sqrt(np.mean(x * x)))


def test_cleaning_removes_drift_and_mains_and_keeps_qrs_band():
    f = lambda: CleaningFilter(FS, (0.5, 40.0), (50.0, 60.0))   # noqa: E731
    tail = slice(10 * FS, None)      # after the transients
    assert _rms(f().push(_tone(0.05))[tail]) < 0.05 * _rms(_tone(0.05))
    assert _rms(f().push(_tone(50.0))[tail]) < 0.05 * _rms(_tone(50.0))
    assert _rms(f().push(_tone(60.0))[tail]) < 0.05 * _rms(_tone(60.0))
    assert _rms(f().push(_tone(10.0))[tail]) > 0.9 * _rms(_tone(10.0))


def test_a_dc_offset_at_start_does_not_ring():
    y = CleaningFilter(FS, (0.5, 40.0), (50.0,)).push(np.full(5 * FS, 3.0))
    assert np.abs(y).max() < 1e-6


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(1, 700), min_size=1, max_size=6))
def test_carried_state_makes_chunking_invisible(sizes):
    x = np.random.default_rng(0).standard_normal(4000) + 2.0
    whole = CleaningFilter(FS, (0.5, 40.0), (50.0, 60.0)).push(x)
    f = CleaningFilter(FS, (0.5, 40.0), (50.0, 60.0))
    out, i, k = [], 0, 0
    while i < x.size:
        n = sizes[k % len(sizes)]
        out.append(f.push(x[i:i + n]))
        i, k = i + n, k + 1
    assert np.array_equal(np.concatenate(out), whole)
