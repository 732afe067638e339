"""RRContext: the RR features of each beat, from the intervals noted before it."""

import numpy as np
import pytest

from detect.rr_context import (LOCAL_BEATS, LONG_BEATS, RR_FEATURES, SHARE_BEATS, SHARE_LAGS,
                               SHARE_STEP, TEMPLATE_ADMIT, UPPER_BEATS, UPPER_RANK,
                               RRContext)

_COL = {name: k for k, name in enumerate(RR_FEATURES)}


def _feed(intervals, post=0.8):
    """Each interval's features (read before it is noted) and admission, in order."""
    context = RRContext()
    out = []
    for pre in intervals:
        out.append(context.features(pre, post))
        context.note(pre)
    return out


def _last(intervals, name, post=0.8):
    """A feature of a beat whose preceding intervals are ``intervals`` (it has pre-RR 0.8)."""
    context = RRContext()
    for pre in intervals:
        context.note(float(pre))
    rr, _ = context.features(0.8, post)
    return rr[_COL[name]]


def _reference(history, pre, post, long):
    """The features of the module docstring, from their definitions on the whole
    list of previous intervals ``history`` (``long``: the long-term mean, run alongside)."""
    last = np.array(history[-LOCAL_BEATS:])
    local = float(np.mean(last))
    if len(last) >= 3:
        irregularity = max(float(np.median(np.abs(np.diff(last)))) / local, 0.01)
    else:
        irregularity = 0.05
    upper = float(np.sort(history[-UPPER_BEATS:])[-UPPER_RANK]) if len(history) >= UPPER_RANK \
        else local
    shares = []
    for lag in SHARE_LAGS:
        pairs = [(history[i], history[i - lag])
                 for i in range(max(lag, len(history) - SHARE_BEATS), len(history))]
        differ = sum(abs(a - b) > SHARE_STEP * (a + b) / 2 for a, b in pairs)
        shares.append((differ + 0.5) / (len(pairs) + 1))
    return (pre, post, local, long, pre / local, post / local, pre / long, local / long,
            irregularity, upper, pre / upper, min(shares))


@pytest.mark.parametrize("seed", range(4))
def test_features_one_interval_at_a_time_match_the_definitions(seed):
    rng = np.random.default_rng(seed)
    intervals = [float(v) for v in np.r_[rng.uniform(0.4, 1.4, 60), np.tile([0.55, 1.05], 20),
                                         rng.uniform(0.7, 0.9, 50)]]
    assert len(intervals) <= LONG_BEATS   # so the long-term mean is the running mean
    for k, (rr, _) in enumerate(_feed(intervals)):
        if k == 0:
            continue                   # no interval before: the defaults (own test)
        history, pre = intervals[:k], intervals[k]
        want = _reference(history, pre, 0.8, float(np.mean(history)))
        assert len(rr) == len(RR_FEATURES)
        assert rr == pytest.approx(want, rel=1e-12, abs=0), k
        # The local mean is np.mean's own value, bit for bit.
        assert rr[_COL["local_rr"]] == float(np.mean(history[-LOCAL_BEATS:]))


def test_the_first_beat_has_the_default_context_and_joins_the_template():
    rr, admit = RRContext().features(None, 0.9)
    assert rr[_COL["pre_rr"]] == rr[_COL["local_rr"]] == rr[_COL["long_rr"]] == 0.8
    assert rr[_COL["post_rr"]] == 0.9
    assert rr[_COL["irregularity"]] == 0.05
    assert rr[_COL["irregular_share"]] == 0.5      # (0 + 1/2) / (0 + 1): nothing seen
    assert admit
    # A known pre-RR with no history: it is its own local and upper RR.
    rr, admit = RRContext().features(0.6, 0.9)
    assert rr[_COL["local_rr"]] == rr[_COL["upper_rr"]] == 0.6 and admit


def test_upper_rr_is_the_4th_longest_of_the_last_32():
    rng = np.random.default_rng(7)
    intervals = rng.uniform(0.3, 2.0, 100)
    for n in (UPPER_RANK, 20, UPPER_BEATS, UPPER_BEATS + 1, 100):
        history = intervals[:n]
        want = np.sort(history[-UPPER_BEATS:])[::-1][UPPER_RANK - 1]
        assert _last(history, "upper_rr") == want, n
        assert _last(history, "pre_upper") == 0.8 / want, n
    # Fewer intervals than the rank: the local mean stands in.
    assert _last([0.6, 0.7, 0.8], "upper_rr") == _last([0.6, 0.7, 0.8], "local_rr")
    # Frequent ectopy does not pull it down: 3 long intervals in 32 do not
    # make the 4th longest, 4 do.
    assert _last([0.5] * 29 + [1.0] * 3, "upper_rr") == 0.5
    assert _last([0.5] * 28 + [1.0] * 4, "upper_rr") == 1.0


def test_a_beat_premature_to_the_upper_rr_does_not_join_the_template():
    context = RRContext()
    for pre in [1.0] * 10:
        context.note(pre)
    _, admit = context.features(TEMPLATE_ADMIT * 1.0 - 0.01, 0.8)
    assert not admit
    _, admit = context.features(TEMPLATE_ADMIT * 1.0, 0.8)
    assert admit
    # Too little history to judge: every beat joins.
    few = RRContext()
    for pre in [1.0] * (UPPER_RANK - 1):
        few.note(pre)
    assert few.features(0.3, 0.8)[1]


def test_irregularity_of_a_constant_rhythm_is_the_floor():
    assert _last([0.8] * 20, "irregularity") == 0.01
    # Two intervals cannot say: the default.
    assert _last([0.8, 0.5], "irregularity") == 0.05
    # The median of |successive differences| over the mean: steps 0.2, 0.2, 0.4 of mean 0.9.
    assert _last([0.8, 1.0, 0.8, 1.2], "irregularity") == pytest.approx(0.2 / 0.95)


def test_irregular_share_of_a_strict_bigeminy_is_small_at_lag_2():
    bigeminy = np.tile([0.55, 1.05], 30)
    # Every interval differs from its neighbour, none from the one two before:
    # no count at lag 2, the smallest share there is.
    assert _last(bigeminy, "irregular_share") == 0.5 / (SHARE_BEATS + 1)
    trigeminy = np.tile([0.8, 0.55, 1.05], 20)
    assert _last(trigeminy, "irregular_share") == 0.5 / (SHARE_BEATS + 1)
    rng = np.random.default_rng(3)
    assert _last(rng.uniform(0.45, 1.15, 60), "irregular_share") > 0.6


def test_irregular_share_forgets_intervals_older_than_share_beats():
    rng = np.random.default_rng(4)
    # Fibrillation ending on intervals that all differ from the 0.8 s that follow.
    fibrillation = list(rng.uniform(0.45, 1.15, 40)) + [0.5, 1.2, 0.5]
    # SHARE_BEATS regular intervals later, the newest interval's lag-1 pair still
    # reaches back into the fibrillation (1 of 32 differs); one more and it does not.
    assert _last(fibrillation + [0.8] * SHARE_BEATS, "irregular_share") \
        == 1.5 / (SHARE_BEATS + 1)
    assert _last(fibrillation + [0.8] * (SHARE_BEATS + 1), "irregular_share") \
        == 0.5 / (SHARE_BEATS + 1)


def test_features_do_not_change_the_context():
    context = RRContext()
    for pre in (0.8, 0.6, 1.1, 0.9):
        context.note(pre)
    first = context.features(0.7, 0.8)
    assert context.features(0.7, 0.8) == first
    assert context.features(0.5, 1.2) != first


def test_the_featurizer_emits_the_contexts_features():
    from detect.beat_features import FS, BeatFeaturizer, finished
    rng = np.random.default_rng(5)
    r = np.round((1.0 + np.cumsum(rng.uniform(0.5, 1.1, 30))) * FS).astype(int)
    f = BeatFeaturizer()
    pending = f.push_pending(np.zeros(r[-1] + FS), list(r)) + f.flush_pending()
    out = finished(pending)
    context, prev = RRContext(), None
    for b, p in zip(out, pending):
        pre = (b.index - prev) / FS if prev is not None else None
        nxt = r[r > b.index]
        post = min(int(nxt[0]) - b.index, int(2.0 * FS)) / FS if nxt.size else \
            min(r[-1] + FS - b.index, int(2.0 * FS)) / FS
        rr, admit = context.features(pre, post)
        if pre is not None:
            context.note(pre)
        prev = b.index
        assert b.rr.tobytes() == np.array(rr, np.float32).tobytes()
        assert p.admit == admit
