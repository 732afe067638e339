"""Out-of-fold check, on DS1 alone, of the AF veto (S labels in decided AF become N).

    python -m models.train --data ../shared/data --out out    # writes out/oof_logits.npy
    python bench/af_veto_oof.py --out out [RECORD ...]        # default: every DS1 record

The shipped model was trained on all of DS1, so its own labels there are
in-sample. This takes the chosen configuration's out-of-fold labels (each
record labelled by networks that never saw it, with the tuned decision
biases) and asks what the veto would change: every record is replayed through
the streaming path with a stand-in model that labels every beat S, so the
beats that come out N are exactly those in AF the tracker had decided; each
reference beat within 150 ms of one counts as vetoed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecgwatch.evaluation.matching import BEAT_SYMBOLS  # noqa: E402
from ecgwatch.evaluation.records import read_signal  # noqa: E402
from ecgwatch.evaluation.replay import replay  # noqa: E402
from models.aami import CLASSES, DS1, class_indices  # noqa: E402
from models.dataset import load_beats  # noqa: E402

S = CLASSES.index("S")


class AllS:
    """Stand-in beat model: every beat S, so the pipeline's vetoed beats show as N."""

    def submit(self, owner, inputs, *, now=False):
        from detect.beat_features import finished     # pending beats, featurized in order
        return [(i.index, "S") for i in finished(inputs)]


def vetoed(path: Path, n: int) -> np.ndarray:
    """Per scored reference beat (the first ``n``, as in the beat cache): in decided AF."""
    import wfdb
    x, fs = read_signal(path, channel=0)
    times = np.array([b.time for b in replay(x, fs, classifier=AllS()).beats if b.label == "N"])
    ann = wfdb.rdann(str(path), "atr")
    sym = np.asarray(ann.symbol)
    beat = np.isin(sym, sorted(BEAT_SYMBOLS))
    t = np.asarray(ann.sample)[beat] / fs
    t = t[class_indices(sym[beat]) >= 0][:n]
    if times.size == 0:
        return np.zeros(t.size, bool)
    j = np.clip(np.searchsorted(times, t), 1, max(times.size - 1, 1))
    near = np.minimum(np.abs(times[j] - t), np.abs(times[j - 1] - t))
    return near < 0.15


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("records", nargs="*", default=list(DS1))
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", default="out", help="models.train's --out (cache, logits, report)")
    args = ap.parse_args()
    out = Path(args.out)
    ds1 = load_beats(args.data, DS1, out)
    bias = np.asarray(json.loads((out / "train_report.json").read_text())["decision_bias"])
    pred = (np.load(out / "oof_logits.npy") + bias).argmax(1)
    lost = removed = 0
    for rec in args.records:
        m = ds1.records == rec
        lab, p = ds1.labels[m], pred[m]
        af = vetoed(Path(args.data) / "mitdb" / rec, int(m.sum()))
        tp, fp = int(((lab == S) & (p == S) & af).sum()), int(((lab != S) & (p == S) & af).sum())
        lost, removed = lost + tp, removed + fp
        if af.any():
            print(f"{rec}: {int(af.sum())} beats in decided AF; true S lost {tp}, "
                  f"false S removed {fp}", flush=True)
    print(f"all: true S lost {lost}, false S removed {removed} "
          f"(out of fold: {int(((ds1.labels == S) & (pred == S)).sum())} true S, "
          f"{int(((ds1.labels != S) & (pred == S)).sum())} false S before the veto)")


if __name__ == "__main__":
    main()
