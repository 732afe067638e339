"""Why end-to-end beat labels differ from the classifier's at reference R peaks.

    python bench/reference_gap.py [RECORD ... | DS1 | DS2] [--data ../shared/data] [--jobs 2]

``ecgwatch eval --mode both`` scores the same model twice: end to end (the
streaming detector's beats, labelled in the service's pipeline) and at the
annotated R peaks. This script explains the difference beat by beat. For
every scored reference beat (AAMI class, from minute 5 on, as EC57 scores)
whose end-to-end label differs from its reference-mode label, it names one
cause, in this order:

* ``missed``: the detector found no beat within 150 ms;
* ``quality`` and ``pipeline``: the model gives the reference-mode label at
  the detector's beat too (the pipeline's inputs, built offline), so the
  pipeline changed it after the model: to Q, because the beat's
  signal-quality window was judged unusable (``quality``), or otherwise
  (``pipeline``: the AF veto, S in decided AF becomes N);
* ``inputs``: the model's own label differs at the detector's beat: its R
  position, or the RR context and template built from the detected beats.

For each of S and V it counts reference-mode hits lost end to end and false
labels gained, by cause and by record, and for ``inputs`` the distance of the
detector's R from the annotation. Run it on DS1 to study the gap without
looking at test data (the shipped model was trained on DS1, so DS1 figures
are in sample: read the causes, not the rates).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecgwatch.eval_cmd import (EC57_START_S, end_to_end_beats, labels_at,  # noqa: E402
                               read_annotations, reference_beats)
from ecgwatch.evaluation.ec57 import MATCH_WINDOW_S  # noqa: E402
from ecgwatch.evaluation.matching import BEAT_SYMBOLS, match_beats  # noqa: E402
from ecgwatch.evaluation.records import read_signal  # noqa: E402
from models.aami import CLASSES, DS1, DS2, class_indices  # noqa: E402

CAUSES = ("missed", "quality", "pipeline", "inputs")


def record_gap(job: tuple[str, str | None, float]) -> tuple[str, Counter, list[float]]:
    """Counter of (class, 'lost' | 'false', cause) and the R offsets (ms) of ``inputs``."""
    path, model, start_s = job
    x, fs = read_signal(path, channel=0)
    ann_s, ann_sym = read_annotations(path)
    det, e2e = end_to_end_beats(x, fs, model)
    e2e = np.asarray(e2e)
    ref_pos, ref_lab = reference_beats(x, fs, ann_s, ann_sym, model)
    at_ref = dict(zip(ref_pos.tolist(), ref_lab))
    # The model's label at each detected beat from the pipeline's inputs, offline.
    pos, labels = labels_at(x, fs, det, model)
    at_det = dict(zip(pos.tolist(), labels))
    offline = [at_det.get(int(d), "?") for d in det]
    beat = np.isin(ann_sym, sorted(BEAT_SYMBOLS))
    samples, classes = ann_s[beat], class_indices(ann_sym[beat])
    m = match_beats(samples, det, int(round(MATCH_WINDOW_S * fs)))
    matched = dict(zip(m.ref.tolist(), m.det.tolist()))
    counts: Counter = Counter()
    offsets: list[float] = []
    for i, (s, c) in enumerate(zip(samples.tolist(), classes.tolist())):
        if c < 0 or s < start_s * fs or int(s) not in at_ref:
            continue
        ref_label, truth = at_ref[int(s)], CLASSES[c]
        j = matched.get(i)
        got = e2e[j] if j is not None else None
        if got == ref_label:
            continue
        if j is None:
            cause = "missed"
        elif offline[j] == ref_label:        # the model agreed; the pipeline changed it
            cause = "quality" if got == "Q" else "pipeline"
        else:
            cause = "inputs"
            offsets.append(1000.0 * (det[j] - s) / fs)
        for k in "SV":
            if truth == k and ref_label == k:
                counts[(k, "lost", cause)] += 1
            if truth != k and got == k:
                counts[(k, "false", cause)] += 1
    return Path(path).name, counts, offsets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("records", nargs="*", default=["DS1"])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--model", default=None, help="ONNX beat model (default: shipped)")
    ap.add_argument("--start-s", type=float, default=EC57_START_S)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    names: list[str] = []
    for r in a.records:
        names += list({"DS1": DS1, "DS2": DS2}.get(r, (r,)))
    jobs = [(str(Path(a.data) / "mitdb" / n), a.model, a.start_s) for n in names]
    with Pool(a.jobs) as pool:
        results = pool.map(record_gap, jobs)
    total: Counter = Counter()
    where: dict[tuple, Counter] = defaultdict(Counter)
    offsets: list[float] = []
    far: Counter = Counter()
    for name, counts, offs in results:
        total += counts
        offsets += offs
        far[name] = sum(1 for o in offs if abs(o) > 30)
        for key, n in counts.items():
            where[key][name] += n
    print(f"{len(names)} records; end-to-end label differs from the reference-mode label:")
    print("| class | change | " + " | ".join(CAUSES) + " | records (most first) |")
    print("|---|---|" + "---:|" * len(CAUSES) + "---|")
    for k in "SV":
        for change, text in (("lost", f"{k} hits lost"), ("false", f"false {k} gained")):
            cells = [str(total[(k, change, c)]) for c in CAUSES]
            top = Counter()
            for c in CAUSES:
                top += where[(k, change, c)]
            recs = ", ".join(f"{r} {n}" for r, n in top.most_common(4))
            print(f"| {k} | {text} | " + " | ".join(cells) + f" | {recs} |")
    if offsets:
        o = np.abs(np.asarray(offsets))
        print(f"'inputs' beats: detector R minus annotation |offset| median {np.median(o):.0f} ms, "
              f"p90 {np.percentile(o, 90):.0f} ms, over 30 ms: {int((o > 30).sum())} "
              f"of {o.size} (" + ", ".join(f"{r} {n}" for r, n in far.most_common(4) if n)
              + ")")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
