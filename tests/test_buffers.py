"""The shared look-back history (detect/buffers.py): one copy of a signal for several readers."""

import numpy as np
import pytest

from detect.buffers import History, Scratch


def test_two_readers_share_one_copy_and_keep_what_either_needs():
    x = np.arange(100.0)
    h = History(10, 8)
    assert (h.join(10), h.join(10)) == (0, 1)
    h.put(10, x[:30])                     # reader 0 puts first (grows past the capacity)
    h.put(10, x[:30])                     # reader 1: already held, not written again
    h.put(20, x[10:40])                   # overlaps: only the new tail is appended
    assert (h.start, h.end) == (10, 50)
    h.need(0, 45)
    assert h.start == 10                  # reader 1 still needs everything
    h.need(1, 30)
    assert (h.start, h.end) == (30, 50)
    np.testing.assert_array_equal(h.view(30, 50), x[20:40])
    with pytest.raises(ValueError):
        h.view(29, 40)                    # dropped
    with pytest.raises(ValueError):
        h.put(51, x[:3])                  # would leave a hole
    with pytest.raises(ValueError):
        h.join(40)                        # a new reader starts where the history ends


def test_a_segment_holds_its_cleaned_signal_once_for_vf_and_quality():
    from detect.config import DetectorConfig
    from detect.segment import SignalSegment
    seg = SignalSegment(250.0, 500, DetectorConfig())
    assert seg.vf._hist is seg.quality._hist is seg.history
    rng = np.random.default_rng(0)
    for _ in range(7):
        seg.push(rng.normal(0, 0.1, 250))
    h = seg.vf._hist
    assert h.end == 500 + 7 * 250 and h.n < seg.vf.window + seg.vf.hop


def test_scratch_reuses_one_array_per_name_and_grows_it_only_when_asked_for_more():
    s = Scratch()
    a = s.take("x", (4, 10))
    assert a.shape == (4, 10) and a.flags.c_contiguous and a.dtype == np.float64
    a[...] = 1.0
    b = s.take("x", (3, 9))                   # smaller: the same memory, C-ordered again
    assert b.flags.c_contiguous and np.shares_memory(a, b)
    assert not np.shares_memory(s.take("y", (4, 10)), a)      # another name, another array
    c = s.take("x", (8, 10))                  # larger: a new array, kept from now on
    assert not np.shares_memory(a, c) and np.shares_memory(c, s.take("x", (2, 5)))
    flags = s.take("x", (8, 10), np.bool_)    # another dtype that fits: the same memory
    assert flags.dtype == np.bool_ and flags.shape == (8, 10) and np.shares_memory(flags, c)
    z = s.take("x", (3, 5), np.complex128)
    assert z.flags.aligned and z.flags.c_contiguous and np.shares_memory(z, c)
    assert s.nbytes == 80 * 8 + 40 * 8
