"""Out-of-fold check, on DS1 alone, of the AF veto (S labels in decided AF become N).

    python -m models.train --data ../shared/data --out out --cv-only   # out/oof_logits.npy
    python bench/af_veto_oof.py --out out [RECORD ...]        # default: every DS1 record

The shipped model was trained on all of DS1, so its own labels there are
in-sample. This takes the chosen configuration's out-of-fold labels (each
record labelled by networks that never saw it, with the tuned decision
biases) and asks what the veto would change: every record is replayed through
the streaming path with a stand-in model that labels each beat V or F where
the out-of-fold label of the training beat within 150 ms says so (the AF
detector leaves out the intervals around them) and S otherwise, so the beats
that come out N are exactly those in AF the tracker had decided; each
training beat within 150 ms of one counts as vetoed (the training beats are
the streaming detector's, matched to the reference). It also counts the AF
episodes the tracker raised outside reference AF, with and without those V/F
labels (``--no-ectopic-labels``: every beat S, the detector's label-free
filter alone).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecgwatch.evaluation.records import read_signal  # noqa: E402
from ecgwatch.evaluation.replay import replay  # noqa: E402
from models.aami import CLASSES, DS1  # noqa: E402
from models.dataset import load_beats  # noqa: E402

S = CLASSES.index("S")
VF = (CLASSES.index("V"), CLASSES.index("F"))


class OofLabels:
    """Stand-in beat model: the out-of-fold V or F of the nearest reference beat, else S,
    so the pipeline's vetoed beats show as N."""

    def __init__(self, times: np.ndarray, labels: np.ndarray, fs: float) -> None:
        self.times, self.labels, self.fs = times, labels, fs

    def submit(self, owner, inputs, *, now=False):
        from detect.beat_features import finished     # pending beats, featurized in order
        out = []
        for i in finished(inputs):
            t = owner._time(i.index)
            j = int(np.clip(np.searchsorted(self.times, t), 1, max(self.times.size - 1, 1)))
            k = j if abs(self.times[j] - t) < abs(self.times[j - 1] - t) else j - 1
            near = self.times.size and abs(self.times[k] - t) < 0.15
            out.append((i.index, CLASSES[self.labels[k]] if near and self.labels[k] in VF
                        else "S"))
        return out


def reference_af(ann) -> list[tuple[float, float]]:
    """(start, end) seconds of the record's (AFIB episodes."""
    spans, start = [], None
    for at, aux in zip(ann.sample, ann.aux_note):
        if aux.startswith("("):
            if start is not None:
                spans.append((start, at / ann.fs))
                start = None
            if aux.rstrip("\x00").startswith("(AFIB"):
                start = at / ann.fs
    if start is not None:
        spans.append((start, ann.sample[-1] / ann.fs))
    return spans


def vetoed(path: Path, t: np.ndarray, pred: np.ndarray, ectopic: bool
           ) -> tuple[np.ndarray, int]:
    """Per training beat (R at ``t`` seconds, as in the beat cache): in decided AF; and
    the AF alarms raised outside reference AF."""
    import wfdb
    x, fs = read_signal(path, channel=0)
    ann = wfdb.rdann(str(path), "atr")
    ann.fs = fs
    labels = pred if ectopic else np.full(pred.size, S)
    r = replay(x, fs, classifier=OofLabels(t, labels, fs))
    spans = reference_af(ann)
    false_af = sum(1 for a in r.transitions if a.condition.value == "atrial_fibrillation"
                   and a.action.value == "raised"
                   and not any(s0 <= a.at and a.onset <= s1 for s0, s1 in spans))
    times = np.array([b.time for b in r.beats if b.label == "N"])
    if times.size == 0:
        return np.zeros(t.size, bool), false_af
    j = np.clip(np.searchsorted(times, t), 1, max(times.size - 1, 1))
    near = np.minimum(np.abs(times[j] - t), np.abs(times[j - 1] - t))
    return near < 0.15, false_af


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("records", nargs="*", default=list(DS1))
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", default="out", help="models.train's --out (cache, logits, report)")
    ap.add_argument("--no-ectopic-labels", action="store_true",
                    help="label every beat S: the AF detector sees no V or F")
    args = ap.parse_args()
    out = Path(args.out)
    ds1 = load_beats(args.data, DS1, out, source="detected")   # the OOF logits' order
    report = out / "train_report.json"
    if not report.exists():                      # models.train --cv-only
        report = out / "cv_report.json"
    bias = np.asarray(json.loads(report.read_text())["decision_bias"])
    pred = (np.load(out / "oof_logits.npy") + bias).argmax(1)
    lost = removed = false_af = 0
    for rec in args.records:
        m = ds1.records == rec
        lab, p = ds1.labels[m], pred[m]
        af, fa = vetoed(Path(args.data) / "mitdb" / rec, ds1.times[m], p,
                        not args.no_ectopic_labels)
        false_af += fa
        tp, fp = int(((lab == S) & (p == S) & af).sum()), int(((lab != S) & (p == S) & af).sum())
        lost, removed = lost + tp, removed + fp
        if af.any() or fa:
            print(f"{rec}: {int(af.sum())} beats in decided AF; true S lost {tp}, "
                  f"false S removed {fp}; AF alarms outside reference AF {fa}", flush=True)
    print(f"all: true S lost {lost}, false S removed {removed} "
          f"(out of fold: {int(((ds1.labels == S) & (pred == S)).sum())} true S, "
          f"{int(((ds1.labels != S) & (pred == S)).sum())} false S before the veto); "
          f"AF alarms outside reference AF {false_af}")


if __name__ == "__main__":
    main()
