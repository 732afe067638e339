import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from detect.beat_features import (CHANNELS, RR_FEATURES, TEMPLATE_ADMIT, TEMPLATE_BEATS,
                                  UPPER_BEATS, UPPER_RANK, WINDOW, WINDOW_AFTER, WINDOW_BEFORE,
                                  BeatFeaturizer, stack_inputs)
from ecg_fixtures import beat_train

FS = 250


def _record(seed=0):
    rng = np.random.default_rng(seed)
    r = 0.6 + np.cumsum(rng.uniform(0.5, 1.1, 40))
    r = r[r < 38]
    return beat_train(r, FS, 40, noise=0.02, seed=seed), np.round(r * FS).astype(int)


def _whole(x, beats):
    f = BeatFeaturizer()
    return f.push(x, list(beats)) + f.flush()


def test_every_beat_once_with_the_documented_shapes_and_rr():
    x, beats = _record()
    out = _whole(x, beats)
    assert [b.index for b in out] == [b for b in beats if b + WINDOW_AFTER <= x.size]
    assert all(b.window.shape == (WINDOW,) and b.template.shape == (WINDOW,)
               and b.rr.shape == (len(RR_FEATURES),) for b in out)
    windows, rr = stack_inputs(out)
    assert windows.shape == (len(out), CHANNELS, WINDOW)
    assert rr.shape == (len(out), len(RR_FEATURES))
    assert windows.dtype == np.float32 and rr.dtype == np.float32
    k = 5
    assert out[k].rr[0] == np.float32((beats[k] - beats[k - 1]) / FS)         # pre-RR
    assert out[k].rr[1] == np.float32((beats[k + 1] - beats[k]) / FS)         # post-RR
    # The R peak sits at WINDOW_BEFORE and is about one running amplitude tall.
    assert abs(int(np.argmax(out[k].window)) - WINDOW_BEFORE) <= 1
    assert 0.7 < out[k].window.max() < 1.3


def test_a_premature_tall_beat_keeps_its_relative_size():
    x, beats = _record(1)
    k = 20
    a, b = beats[k] - 10, beats[k] + 10
    x = x.copy()
    x[a:b] *= 3.0
    out = {f.index: f for f in _whole(x, beats)}
    assert out[beats[k]].window.max() > 2.5 * out[beats[k - 1]].window.max()


def _admitted(out):
    """Which beats joined the template: the first UPPER_RANK + 1 (too little history to
    judge), then those whose pre-RR is at least TEMPLATE_ADMIT of the upper RR."""
    pre_upper = RR_FEATURES.index("pre_upper")
    return [i <= UPPER_RANK or float(o.rr[pre_upper]) >= TEMPLATE_ADMIT
            for i, o in enumerate(out)]


def test_template_is_the_median_of_the_previous_sinus_beats():
    x, beats = _record(3)
    out = _whole(x, beats)
    admitted = _admitted(out)
    assert not all(admitted), "the record should hold premature beats for this test to bite"
    # The first beat has no history: it is its own template.
    assert np.array_equal(out[0].template, out[0].window)
    k = len(out) - 1
    previous = np.stack([o.window for o, a in zip(out[:k], admitted[:k]) if a][-TEMPLATE_BEATS:])
    assert len(previous) == TEMPLATE_BEATS
    np.testing.assert_allclose(out[k].template, np.median(previous, axis=0), atol=1e-6)


def test_premature_beats_in_the_majority_do_not_become_the_template():
    # Two short-coupled, inverted beats after every sinus beat (as atrial or
    # ventricular ectopy outnumbering sinus beats): a plain running median
    # would turn into the ectopic beat; the sinus template must not.
    r, t = [], 0.6
    while t < 60:
        r += [t, t + 0.45, t + 0.9]
        t += 2.0
    r = np.asarray(r)
    x = beat_train(r, FS, 62, noise=0.01, seed=5)
    beats = np.round(r * FS).astype(int)
    for b in beats[1::3].tolist() + beats[2::3].tolist():
        x[b - 8: b + 9] *= -1.0
    out = {f.index: f for f in _whole(x, beats)}
    late_ectopic = out[beats[-5]]
    assert late_ectopic.rr[RR_FEATURES.index("pre_upper")] < TEMPLATE_ADMIT
    peak = WINDOW_BEFORE
    assert late_ectopic.window[peak] < 0 < late_ectopic.template[peak]
    # ... and the upper RR is the sinus cycle's, not the ectopic beats'.
    assert late_ectopic.rr[RR_FEATURES.index("upper_rr")] > 1.0
    assert UPPER_BEATS >= 3 * UPPER_RANK


def test_a_wide_beat_stands_out_from_its_template_and_a_normal_one_does_not():
    x, beats = _record(4)
    k = 25
    x = x.copy()
    # Replace beat k's QRS with a wide, inverted deflection (ventricular-like).
    t = np.arange(-30, 31)
    x[beats[k] - 30: beats[k] + 31] = -1.2 * np.exp(-0.5 * (t / 12.0) ** 2)
    out = {f.index: f for f in _whole(x, beats)}
    qrs = slice(WINDOW_BEFORE - 25, WINDOW_BEFORE + 40)

    def distance(b):
        return float(np.sqrt(np.mean((b.window[qrs] - b.template[qrs]) ** 2)))

    assert distance(out[beats[k]]) > 5 * distance(out[beats[k - 1]])


@settings(max_examples=20, deadline=None)
@given(size=st.integers(1, 3000))
def test_any_chunking_gives_the_same_inputs(size):
    x, beats = _record(2)
    whole = _whole(x, beats)
    f, out = BeatFeaturizer(), []
    for i in range(0, x.size, size):
        out += f.push(x[i:i + size], [b for b in beats if i <= b < i + size])
    out += f.flush()
    assert [o.index for o in out] == [w.index for w in whole]
    for o, w in zip(out, whole):
        assert np.array_equal(o.window, w.window) and np.array_equal(o.rr, w.rr)
        assert np.array_equal(o.template, w.template)


def test_template_is_numpys_median_of_the_previous_windows_to_the_last_bit():
    # The featurizer sorts rows instead of calling np.median (speed); the model's
    # input must not move by a bit.
    x, beats = _record(3)
    out = _whole(x, beats)
    assert len(out) > TEMPLATE_BEATS + 5
    admitted = _admitted(out)
    for k, b in enumerate(out):
        if k == 0:
            assert np.array_equal(b.template, b.window)
            continue
        prev = np.stack([o.window for o, a in zip(out[:k], admitted[:k]) if a][-TEMPLATE_BEATS:])
        expected = np.median(prev, axis=0).astype(np.float32)
        assert b.template.dtype == np.float32
        assert b.template.tobytes() == expected.tobytes(), k


def test_short_sums_add_in_numpys_order():
    from detect.rr_context import _np_sum
    rng = np.random.default_rng(4)
    for n in (1, 2, 7, 8, 9, 10, 16, 17, 100, 128, 130):
        for _ in range(50):
            v = [float(x) for x in rng.uniform(0.2, 2.0, n) * 10.0 ** rng.integers(-3, 3)]
            assert _np_sum(v).hex() == float(np.sum(np.array(v))).hex(), n


def test_with_the_horizon_the_look_back_is_short_and_the_inputs_the_same():
    """Beats reported as a detector would (some of them seconds late, the horizon
    held back for them): a featurizer told the horizon keeps about a second of
    signal, not HISTORY, and produces exactly the inputs of one that is not."""
    x, beats = _record(5)
    late = set(beats[[12, 13]].tolist())          # found by a search-back 3 s later
    short, full = BeatFeaturizer(), BeatFeaturizer()
    a, b, held = [], [], []
    reported: set[int] = set()
    for end in range(FS, x.size + 1, FS):
        due = [int(r) for r in beats if r < end - 30 and r not in reported
               and (r not in late or end - r > 3 * FS)]
        reported.update(due)
        waiting = [int(r) for r in beats if r not in reported and r < end]
        horizon = min([end - 30] + waiting)
        a += short.push(x[end - FS:end], due, horizon)
        b += full.push(x[end - FS:end], due)
        held.append(short._n)
    a += short.flush()
    b += full.flush()
    assert len(a) > 30 and [i.index for i in a] == [i.index for i in b]
    assert all(np.array_equal(getattr(u, k), getattr(v, k)) for u, v in zip(a, b)
               for k in ("window", "template", "rr"))
    # The late pair holds about three seconds while it waits; otherwise about one.
    assert sorted(held)[len(held) * 9 // 10] < 2 * FS and max(held) < 4 * FS
    assert full._n > 5 * FS


def test_the_median_network_sorts_every_zero_one_input_into_its_middle_pair():
    # 0-1 principle: a comparator network that puts every 0-1 input's middle pair
    # in place does so for every input.
    from detect.template_medians import _MIDDLE, _NETWORK, _NETWORK_LOW
    bits = ((np.arange(1 << TEMPLATE_BEATS)[:, None] >> np.arange(TEMPLATE_BEATS)) & 1)
    ordered = np.sort(bits, axis=1)
    for network, outputs in ((_NETWORK, _MIDDLE), (_NETWORK_LOW, _MIDDLE[:1])):
        s = list(bits.T.astype(np.int8))
        for i, j in network:
            s[i], s[j] = np.minimum(s[i], s[j]), np.maximum(s[i], s[j])
        for k in outputs:
            assert np.array_equal(s[k], ordered[:, k])


def test_full_ring_medians_are_numpys_to_the_last_bit_with_ties():
    from detect.template_medians import _full_medians
    rng = np.random.default_rng(7)
    rings = [rng.standard_normal((TEMPLATE_BEATS, WINDOW)).astype(np.float32)
             for _ in range(150)]
    for r in rings[::3]:                       # ties: repeated and constant values
        r[rng.integers(0, TEMPLATE_BEATS, 6)] = r[0]
        r[:, :10] = 0.25
    got = _full_medians(rings)
    for k, r in enumerate(rings):
        assert got[k].tobytes() == np.median(r, axis=0).astype(np.float32).tobytes(), k


@pytest.mark.parametrize("how", ["sorted", "network"])
def test_filling_ring_medians_sorted_together_are_each_rings_own_to_the_last_bit(how):
    # The network pads the rings with infinities; a pass with a -0.0 is sorted instead.
    from detect.template_medians import _PASS, _filling_medians, _ring_medians
    medians = _ring_medians if how == "sorted" else _filling_medians
    rng = np.random.default_rng(8)
    for n in range(1, TEMPLATE_BEATS + (how == "sorted")):
        rings = [rng.standard_normal((n, WINDOW)).astype(np.float32)
                 for _ in range(_PASS + 5)]             # more than one pass
        for r in rings[::3]:                   # ties, and (the second pass) zeros of both signs
            r[rng.integers(0, n, 3)] = r[0]
            r[:, :10] = 0.25
        for r in rings[_PASS + 2::3]:          # (rings[::3])
            r[:, 10:14] = -0.0
            r[:n // 2, 12:14] = 0.0
        got = medians(rings)
        for k, r in enumerate(rings):
            f = BeatFeaturizer()
            f._recent[:n], f._n_recent = r, n
            assert got[k].tobytes() == f._template(r[0]).tobytes(), (n, k)
            if k % 3:                          # (np.median may place a signed zero otherwise)
                assert got[k].tobytes() == np.median(r, axis=0).astype(np.float32).tobytes()


@pytest.mark.parametrize("rows", [256, 7])
def test_featurizing_many_featurizers_at_once_gives_each_beat_its_own_bits(rows, monkeypatch):
    """The service's path: every device's pending beats of a tick in one featurize
    (several beats of one featurizer in one call, rings full and filling; in passes
    of ``rows`` beats, working arrays reused from call to call) against each
    featurizer alone with push."""
    from detect import beat_features
    from detect.beat_features import featurize
    from detect.buffers import Scratch
    monkeypatch.setattr(beat_features, "_ROWS", rows)
    scratch = Scratch()
    records = [_record(seed) for seed in range(10)]      # >= _NETWORK_FROM: the network runs
    alone = [_whole(x, beats) for x, beats in records]
    many = [BeatFeaturizer() for _ in records]
    got: list[list] = [[] for _ in records]
    step = 3 * FS                              # several beats per featurizer per call
    for end in range(step, 40 * FS + step, step):
        pending = []
        for k, (x, beats) in enumerate(records):
            if end - step < x.size:
                new = [int(b) for b in beats if end - step <= b < end]
                pending += many[k].push_pending(x[end - step:end], new)
        if end >= 40 * FS:
            pending += [p for f in many for p in f.flush_pending()]
        windows, rr = featurize(pending, scratch)
        for p, w, r in zip(pending, windows, rr):
            got[many.index(p.owner)].append((p.index, w, r))
    for k, ref in enumerate(alone):
        assert [i for i, _, _ in got[k]] == [b.index for b in ref]
        for (_, w, r), b in zip(got[k], ref):
            assert w[0].tobytes() == b.window.tobytes()
            assert w[1].tobytes() == b.template.tobytes()
            assert r.tobytes() == b.rr.tobytes()


def _share_after(rrs, seed=0):
    """The irregular share of the last beat after a train of the given intervals."""
    r = 0.6 + np.cumsum(rrs)
    x = beat_train(r, FS, float(r[-1]) + 1.5, noise=0.01, seed=seed)
    out = _whole(x, np.round(r * FS).astype(int))
    return float(out[-1].rr[RR_FEATURES.index("irregular_share")])


def test_irregular_share_is_high_in_fibrillation_and_low_in_regular_patterns():
    rng = np.random.default_rng(3)
    af = _share_after(rng.uniform(0.45, 1.15, 60))
    sinus = _share_after(np.full(60, 0.8))
    bigeminy = _share_after(np.tile([0.55, 1.05], 30))
    trigeminy = _share_after(np.tile([0.8, 0.55, 1.05], 20))
    isolated = _share_after(np.tile([0.8] * 9 + [0.55, 1.05], 6))
    assert af > 0.6
    # Regularly irregular rhythms repeat at lag 2 or 3, so their share stays small.
    assert max(sinus, bigeminy, trigeminy) < 0.05
    assert isolated < 0.35 < af


def test_irregular_share_counts_only_the_last_intervals():
    rng = np.random.default_rng(4)
    # Fibrillation that has ended: after SHARE_BEATS regular intervals it is forgotten.
    from detect.beat_features import SHARE_BEATS
    after = _share_after(np.r_[rng.uniform(0.45, 1.15, 40), np.full(SHARE_BEATS + 4, 0.8)])
    assert after < 0.05
