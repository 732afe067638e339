"""Ventricular runs, couplets and patterns from classified beats."""

from detect.ectopy import EctopyTracker
from detect.types import Beat, Condition

FS = 250.0


def beats(labels, rr=0.8, fast_rr=None):
    out, t = [], 1.0
    for lab in labels:
        t += fast_rr if (lab == "V" and fast_rr) else rr
        out.append(Beat("d", int(round(t * FS)), t, None, lab))
    return out


def run(labels, **kw):
    tr = EctopyTracker(FS, lambda i: i / FS)
    obs = tr.push(beats(labels, **kw))
    return [(o.condition, o.active) for o in obs], tr


def test_three_fast_v_beats_are_vt_raised_once_and_ended_by_a_normal_beat():
    seq, _ = run("NNNNVVVVVNNN", fast_rr=0.45)
    vt = [a for c, a in seq if c is Condition.VENTRICULAR_TACHYCARDIA]
    assert vt[0] is True and vt[-1] is False
    assert Condition.VENTRICULAR_COUPLET not in {c for c, _ in seq}


def test_a_slow_ventricular_run_is_not_vt():
    seq, _ = run("NNNVVVVNN", fast_rr=0.9)          # 67 bpm: idioventricular, not VT
    assert Condition.VENTRICULAR_TACHYCARDIA not in {c for c, _ in seq}


def test_a_couplet_is_one_event():
    seq, _ = run("NNNVVNNN")
    assert seq == [(Condition.VENTRICULAR_COUPLET, True), (Condition.VENTRICULAR_COUPLET, False)]


def test_bigeminy_is_raised_once_while_the_pattern_lasts():
    seq, _ = run("NN" + "NV" * 12 + "NNNN")
    big = [a for c, a in seq if c is Condition.BIGEMINY]
    assert big == [True, False]
    assert Condition.TRIGEMINY not in {c for c, _ in seq}


def test_trigeminy_needs_four_cycles():
    assert Condition.TRIGEMINY not in {c for c, _ in run("NNV" * 3 + "NNNN")[0]}
    seq, _ = run("NNV" * 6 + "NNNNN")
    assert [a for c, a in seq if c is Condition.TRIGEMINY] == [True, False]


def test_q_beats_break_patterns_and_counts_cover_the_last_hour():
    seq, tr = run("NV" * 3 + "Q" + "NV" * 3)
    assert Condition.BIGEMINY not in {c for c, _ in seq}
    assert tr.per_hour(100.0) == {"sveb_per_hour": 0, "veb_per_hour": 6}
    assert tr.per_hour(100.0 + 3600.0) == {"sveb_per_hour": 0, "veb_per_hour": 0}


def test_a_gap_ends_what_is_active():
    tr = EctopyTracker(FS, lambda i: i / FS)
    tr.push(beats("NNNNVVVV", fast_rr=0.4))
    ends = tr.gap(10_000)
    assert [(o.condition, o.active) for o in ends] == [(Condition.VENTRICULAR_TACHYCARDIA, False)]
