"""EC57 beat-classification scoring: the matrix, bxb's class sums, matching, ``ecgwatch eval``.

Hand-built examples fix the rules (misses, extras, fusion/unclassifiable
beats called V, excluded spans); the matching is cross-checked against
``wfdb.processing.compare_annotations``; one real record goes through the
command. Real-data checks read ../shared/data (or $ECGWATCH_DATA) and skip
with a message when it is absent.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest

from ecgwatch.evaluation.ec57 import (PRED_COLS, REF_ROWS, Confusion, Ec57Summary, RecordScore,
                                      score_annotated, score_beats)
from ecgwatch.evaluation.matching import match_beats
from ecgwatch.evaluation.progress import Progress
from ecgwatch.evaluation.records import data_dir

FS = 360.0
W = int(round(0.150 * FS))            # 54 samples
MITDB = data_dir() / "mitdb"
needs_data = pytest.mark.skipif(
    not MITDB.is_dir(), reason=f"MIT-BIH data not found at {MITDB} "
    "(set ECGWATCH_DATA to the folder holding mitdb/)")


def matrix(cells: dict[tuple[str, str], int]) -> Confusion:
    c = np.zeros((6, 6), np.int64)
    for (r, p), n in cells.items():
        c[REF_ROWS.index(r), PRED_COLS.index(p)] = n
    return Confusion(c)


# ------------------------------------------------------------ the matrix
def test_perfect_labels_fill_the_diagonal():
    ref = [1000, 2000, 3000, 4000, 5000]
    c = score_beats(ref, list("NVAFQ"), [1003, 1998, 3010, 4000, 4990], list("NVSFQ"), FS)
    assert np.array_equal(c.counts[:5, :5], np.eye(5, dtype=int))
    assert c.counts[:, 5].sum() == 0 and c.counts[5].sum() == 0
    assert (c.veb.se, c.veb.ppv, c.sveb.se, c.sveb.ppv, c.accuracy) == (1, 1, 1, 1, 1)
    assert c.veb.fpr == 0 and c.sveb.fpr == 0


def test_misses_are_false_negatives_and_extras_false_positives_of_their_class():
    # V at 2000 has no detection; the V detection at 6000 has no reference beat.
    c = score_beats([1000, 2000, 3000], list("NVN"), [1000, 3000, 6000], list("NNV"), FS)
    assert c.cell("V", "missed") == 1 and c.cell("extra", "V") == 1
    assert c.cell("N", "N") == 2
    assert (c.veb.tp, c.veb.fn, c.veb.fp) == (0, 1, 1)
    assert (c.qrs.tp, c.qrs.fn, c.qrs.fp) == (2, 1, 1)
    assert c.accuracy == pytest.approx(2 / 4)      # 3 reference beats + 1 extra
    assert c.matched_accuracy == 1.0


def test_match_window_is_150_ms():
    c = score_beats([1000], ["V"], [1000 + W], ["V"], FS)
    assert c.cell("V", "V") == 1
    c = score_beats([1000], ["V"], [1000 + W + 1], ["V"], FS)
    assert c.cell("V", "missed") == 1 and c.cell("extra", "V") == 1


def test_fusion_and_unclassifiable_called_v_are_not_veb_false_positives():
    c = score_beats([1000, 2000, 3000, 4000], list("FQNV"), [1000, 2000, 3000, 4000],
                    list("VVVV"), FS)
    assert c.cell("F", "V") == 1 and c.cell("Q", "V") == 1
    # Only the N beat called V is a false positive (bxb: VFP = Nv + Sv + Ov).
    assert (c.veb.tp, c.veb.fp, c.veb.fn) == (1, 1, 0)
    assert c.veb.ppv == 0.5


def test_unclassifiable_called_s_is_not_an_sveb_false_positive():
    c = score_beats([1000, 2000, 3000], list("QFA"), [1000, 2000, 3000], list("SSS"), FS)
    assert (c.sveb.tp, c.sveb.fp) == (1, 1)        # Fs counts, Qs does not


def test_class_sums_follow_bxb_on_a_full_matrix():
    rng = np.random.default_rng(7)
    counts = rng.integers(1, 50, size=(6, 6))
    counts[5, 5] = 0
    c = Confusion(counts)
    k = {(r, p): int(counts[i, j]) for i, r in enumerate("NSVFQO") for j, p in enumerate("nsvfqo")}
    g = lambda *names: sum(k[(n[0], n[1])] for n in names)   # noqa: E731
    assert c.veb.tp == g("Vv")
    assert c.veb.fn == g("Vn", "Vs", "Vf", "Vq", "Vo")
    assert c.veb.fp == g("Nv", "Sv", "Ov")
    assert c.veb.tn == sum(k[(r, p)] for r in "NSFQO" for p in "nsfq")
    assert c.sveb.tp == g("Ss")
    assert c.sveb.fn == g("Sn", "Sv", "Sf", "Sq", "So")
    assert c.sveb.fp == g("Ns", "Vs", "Fs", "Os")
    assert c.sveb.tn == sum(k[(r, p)] for r in "NVFQO" for p in "nvfq")
    assert c.veb.fpr == pytest.approx(c.veb.fp / (c.veb.fp + c.veb.tn))
    assert c.qrs.tp == counts[:5, :5].sum() and c.qrs.fn == counts[:5, 5].sum()
    assert c.qrs.fp == counts[5, :5].sum()


def test_vf_spans_and_learning_period_are_not_scored_and_unscored_symbols_do_not_count():
    samples = [100, 1000, 2000, 2100, 2500, 3000, 4000]
    symbols = ["N", "N", "[", "V", "]", "?", "V"]
    det = [100, 1000, 2100, 2300, 3000, 4000]
    labels = list("NNVVNN")
    c = score_annotated(samples, symbols, det, labels, FS, start_s=500 / FS)
    # 100 is before the start; 2100/2300 fall in the flutter span; the '?' beat at
    # 3000 takes its detection out of the extras but is not scored itself.
    assert c.counts.sum() == 2
    assert c.cell("N", "N") == 1 and c.cell("V", "N") == 1


def test_bad_input_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="'X'"):
        score_beats([1000], ["N"], [1000], ["X"], FS)
    with pytest.raises(ValueError, match="ascending"):
        score_beats([2000, 1000], ["N", "N"], [], [], FS)
    with pytest.raises(ValueError, match="extra"):
        matrix({("extra", "missed"): 1})
    with pytest.raises(ValueError, match="negative"):
        matrix({("N", "N"): -1})
    c = matrix({("N", "N"): 3})
    with pytest.raises(ValueError):
        c.counts[0, 0] = 4                       # frozen, numbers included


def test_gross_pools_and_average_skips_records_where_undefined():
    a = matrix({("N", "N"): 100, ("V", "V"): 9, ("V", "N"): 1})        # VEB Se 0.9
    b = matrix({("N", "N"): 50, ("N", "V"): 5})                         # no V beats
    s = Ec57Summary((RecordScore("a", a), RecordScore("b", b)))
    assert s.gross.cell("N", "N") == 150 and s.gross.veb.se == pytest.approx(0.9)
    assert s.gross.veb.ppv == pytest.approx(9 / 14)
    avg = s.veb_average
    assert avg.se == pytest.approx(0.9) and avg.n_se == 1               # b has no VEB Se
    assert avg.ppv == pytest.approx((1.0 + 0.0) / 2) and avg.n_ppv == 2
    assert math.isnan(s.sveb_average.se) and s.sveb_average.n_se == 0
    d = s.to_dict()
    assert d["average"]["sveb"]["se"] is None                           # JSON has no NaN
    json.dumps(d)


# -------------------------------------------------------------- matching
def _wfdb_counts(ref: np.ndarray, det: np.ndarray, window: int) -> tuple[int, int, int]:
    from wfdb.processing import compare_annotations
    # wfdb pairs beats strictly closer than its window; EC57 (and match_beats)
    # include the window's edge, hence + 1 sample.
    cmp = compare_annotations(ref, det, window + 1)
    return cmp.tp, cmp.fn, cmp.fp


def test_matching_agrees_with_wfdb_on_synthetic_beats():
    rng = np.random.default_rng(3)
    ref = np.cumsum(rng.integers(200, 500, size=400))
    det = ref + rng.integers(-W - 20, W + 20, size=ref.size)           # some out of window
    det = np.sort(np.concatenate([det[rng.random(ref.size) > 0.05],     # drop 5 %
                                  rng.integers(0, ref[-1], size=15)]))  # 15 extras
    det = np.unique(det)
    m = match_beats(ref, det, W)
    assert m.fn > 10 and m.fp > 10                  # the example exercises both sides
    assert (m.tp, m.fn, m.fp) == _wfdb_counts(ref, det, W)


@needs_data
def test_matching_agrees_with_wfdb_on_a_real_record():
    from ecgwatch.evaluation.records import beat_reference, read_signal
    from ecgwatch.evaluation.replay import replay_beats
    x, fs = read_signal(MITDB / "105")              # noisy: misses and extras both occur
    ref = beat_reference(MITDB / "105")
    det = np.unique(replay_beats(x, fs))
    w = int(round(0.150 * fs))
    m = match_beats(ref, det, w)
    assert m.fp > 0 and m.fn > 0
    assert (m.tp, m.fn, m.fp) == _wfdb_counts(ref, det, w)


# -------------------------------------------------------------- progress
class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_progress_is_silent_off_a_terminal_except_its_last_line():
    out, clock = io.StringIO(), _Clock()
    p = Progress(3, out, clock=clock)
    for r in ("100", "101", "103"):
        clock.t += 2.0
        p.step(r)
    assert out.getvalue() == ""
    p.finish()
    assert out.getvalue() == "3/3 records scored in 6.0 s\n"


def test_progress_draws_a_bar_on_a_terminal():
    out, clock = io.StringIO(), _Clock()
    p = Progress(4, out, clock=clock, tty=True)
    clock.t = 3.0
    p.step("100")
    assert out.getvalue().startswith("\r[######------------------] 1/4 100")
    assert "eta    9 s" in out.getvalue()


# ------------------------------------------------------------- the command
def test_record_selection():
    from ecgwatch.eval_cmd import EvalError, select_records
    avail = sorted([str(r) for r in range(100, 125)] + [str(r) for r in range(200, 235)])
    assert len(select_records(["DS1"], avail)) == 22
    assert select_records(["100,103", "100"], avail) == ["100", "103"]
    assert not {"102", "104", "107", "217"} & set(select_records(["all"], avail))
    with pytest.raises(EvalError, match="paced"):
        select_records(["102"], avail)
    with pytest.raises(EvalError, match="'999'"):
        select_records(["999"], avail)


def test_eval_without_data_says_where_it_looked(tmp_path, capsys):
    from ecgwatch.cli import main
    assert main(["eval", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "MIT-BIH records not found" in capsys.readouterr().err


@needs_data
def test_eval_end_to_end_on_one_record_writes_the_three_files(tmp_path, capsys):
    from ecgwatch.cli import main
    out = tmp_path / "eval"
    assert main(["eval", "--records", "100", "--mode", "end-to-end", "--out", str(out)]) == 0
    assert "1/1 records scored" in capsys.readouterr().err
    doc = json.loads((out / "report.json").read_text())
    gross = doc["modes"]["end-to-end"]["gross"]
    counts = np.array(gross["counts"])
    # Record 100 from minute 5: 1902 AAMI-scored beats (1872 N, 29 S, 1 V).
    assert counts[:5].sum() == 1902 and counts[:5].sum(axis=1)[:3].tolist() == [1872, 29, 1]
    assert gross["qrs"]["se"] > 0.995 and gross["qrs"]["ppv"] > 0.995
    assert "| 100 |" in (out / "report.md").read_text()
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _rule_model(path) -> None:
    """A stand-in ONNX beat model: S when the beat comes early (pre-RR / local RR < 0.8), else N.

    Built with the real model's inputs, output and metadata, so that the
    reference mode runs through detect.classify exactly as with a trained model.
    """
    import onnx
    from onnx import TensorProto, helper
    from detect.beat_features import RR_FEATURES
    w = np.zeros((len(RR_FEATURES), 5), np.float32)
    w[4, 0] = 10.0                                   # N: 10 x pre/local
    b = np.array([0, 8, -100, -100, -100], np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["rr", "W"], ["z"]), helper.make_node("Add", ["z", "b"], ["logits"])],
        "rule", [helper.make_tensor_value_info("window", TensorProto.FLOAT, ["batch", 2, 160]),
                 helper.make_tensor_value_info("rr", TensorProto.FLOAT,
                                                               ["batch", len(RR_FEATURES)])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 5])],
        [onnx.numpy_helper.from_array(w, "W"), onnx.numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"model_version": "rule-test", "classes": "N,S,V,F,Q",
                                   "input_rate_hz": "250"})
    onnx.save(model, str(path))


@needs_data
def test_eval_reference_mode_labels_every_reference_beat(tmp_path):
    from ecgwatch.cli import main
    model, out = tmp_path / "rule.onnx", tmp_path / "eval"
    _rule_model(model)
    assert main(["eval", "--records", "100", "--mode", "reference", "--model", str(model),
                 "--out", str(out)]) == 0
    gross = json.loads((out / "report.json").read_text())["modes"]["reference"]["gross"]
    counts = np.array(gross["counts"])
    # At the reference R peaks nothing is missed or extra.
    assert counts[:5, 5].sum() == 0 and counts[5].sum() == 0
    assert counts[:5, :5].sum() == 1902
    # The prematurity rule finds most of record 100's atrial premature beats.
    assert gross["sveb"]["se"] > 0.5


def test_reference_mode_without_a_model_fails_with_a_sentence(tmp_path, capsys):
    from ecgwatch.cli import main
    missing = tmp_path / "none.onnx"
    rc = main(["eval", "--data", str(tmp_path), "--mode", "reference", "--model", str(missing)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "MIT-BIH records not found" in err or f"{missing}" in err
