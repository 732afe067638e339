"""The AF detector's look-back buffers: change points, rates and ring wrap-around."""

from __future__ import annotations

import pytest

from detect.af_history import IrregularIntervals, RecentIrregularity


def _intervals(flags, size=40, first=1000, rr=200):
    iv = IrregularIntervals(size)
    for k, high in enumerate(flags):
        iv.push(first + k * rr, bool(high))
    return iv


def test_the_onset_is_the_first_interval_of_the_irregular_run_that_ends_the_buffer():
    flags = [0] * 12 + [1] * 10
    iv = _intervals(flags)
    assert iv.onset(after=0, reach=30) == 1000 + 12 * 200


def test_one_regular_looking_interval_inside_af_does_not_move_the_onset():
    # About a quarter of AF intervals look like their predecessors: the CUSUM
    # runs over them rather than restarting after each.
    flags = [0] * 12 + [1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1]
    assert _intervals(flags).onset(after=0, reach=30) == 1000 + 12 * 200


def test_the_onset_never_lies_before_the_previous_boundary_nor_beyond_the_reach():
    flags = [1] * 20
    iv = _intervals(flags)
    assert iv.onset(after=1000 + 5 * 200, reach=30) == 1000 + 5 * 200
    # Searched over the last reach + 1 intervals only.
    assert iv.onset(after=0, reach=4) == 1000 + 15 * 200


def test_intervals_wrap_around_their_ring_and_keep_the_newest():
    flags = [1] * 10 + [0] * 30 + [1] * 8          # 48 pushes into a ring of 40
    assert _intervals(flags).onset(after=0, reach=39) == 1000 + 40 * 200


def test_recent_irregularity_locates_a_rise_and_keeps_running_sums():
    rec = RecentIrregularity(16)
    values = [0.02] * 10 + [0.3] * 6
    for k, m in enumerate(values):
        rec.push(m, 100 * k, 200.0, turning=k % 2 == 0)
    back = rec.change_back(level=0.1, rising=True)
    assert back == 5                                   # the first high value, 5 before the last
    assert rec.change_point(back, lag=0) == 100 * 10
    assert rec.change_point(back, lag=3) == 100 * 7    # the median's delay taken off
    assert rec.turning_ratio() == pytest.approx(0.5)
    assert rec.heart_rate(250.0) == pytest.approx(75.0)   # 200 samples at 250 Hz


def test_recent_irregularity_forgets_what_leaves_the_ring():
    rec = RecentIrregularity(4)
    for k, rr in enumerate([100.0, 100.0, 400.0, 400.0, 400.0, 400.0]):
        rec.push(0.5, k, rr, turning=k < 2)
    assert rec.rr_sum == pytest.approx(1600.0)
    assert rec.turns == 0 and rec.turning_ratio() == 0.0
    assert rec.change_back(level=0.1, rising=False) == 0   # never fell: no change before the last
    assert rec.change_point(0, lag=10) == 2                # clamped to the oldest beat held
