import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import signal

from detect.resample import Resampler


def _chunked(r: Resampler, x: np.ndarray, sizes: list[int]) -> np.ndarray:
    out, i, k = [], 0, 0
    while i < x.size:
        n = sizes[k % len(sizes)]
        out.append(r.push(x[i:i + n]))
        i, k = i + n, k + 1
    return np.concatenate(out)


@settings(max_examples=40, deadline=None)
@given(fs_in=st.sampled_from([100, 128, 200, 250, 257, 300, 360, 500, 512, 1000]),
       sizes=st.lists(st.integers(1, 900), min_size=1, max_size=8))
def test_any_chunking_gives_the_whole_pass_bit_for_bit(fs_in, sizes):
    x = np.random.default_rng(1).standard_normal(3000)
    whole = Resampler(fs_in, 250).push(x)
    assert np.array_equal(_chunked(Resampler(fs_in, 250), x, sizes), whole)


@pytest.mark.parametrize("fs_in", [360, 500, 1000, 100])
def test_matches_scipy_resample_poly_after_the_reported_delay(fs_in):
    x = np.random.default_rng(2).standard_normal(20 * fs_in)
    r = Resampler(fs_in, 250)
    y = r.push(x)
    ref = signal.resample_poly(x, r.up, r.down)
    d = r.delay_s * 250
    assert d == int(d)
    d = int(d)
    n = ref.size - d - 200          # scipy pads the tail; compare the body
    np.testing.assert_allclose(y[d:d + n], ref[:n], atol=1e-9)


@pytest.mark.parametrize("fs_in", [100, 128, 360, 500, 1000])
def test_a_5_hz_tone_keeps_its_amplitude_and_timing(fs_in):
    t = np.arange(10 * fs_in) / fs_in
    r = Resampler(fs_in, 250)
    y = r.push(np.sin(2 * np.pi * 5 * t))
    m = np.arange(y.size)
    expected = np.sin(2 * np.pi * 5 * (m / 250 - r.delay_s))
    body = slice(250, y.size - 250)
    np.testing.assert_allclose(y[body], expected[body], atol=2e-3)


def test_output_length_tracks_input_time():
    r = Resampler(360, 250)
    n_out = sum(r.push(np.zeros(360)).size for _ in range(10))
    assert abs(n_out - 2500) <= 1


def test_same_rate_is_a_copy():
    x = np.arange(10.0)
    r = Resampler(250, 250)
    assert r.identity and r.delay_s == 0
    y = r.push(x)
    assert np.array_equal(y, x) and y is not x


@pytest.mark.parametrize("fs_in", [100, 128, 250, 257, 360, 500, 1000])
def test_the_delay_is_known_without_building_the_filter(fs_in):
    assert Resampler.delay_for(fs_in, 250) == Resampler(fs_in, 250).delay_s
