"""``ecgwatch eval``: EC57 beat-classification scores of the streaming path on MIT-BIH.

Two ways to produce the labelled beats that are scored
(:mod:`ecgwatch.evaluation.ec57`):

* ``end-to-end``: the record is replayed through the service's own
  per-device path (:func:`ecgwatch.evaluation.replay.replay`); the beats it
  detects carry the classifier's label. Detection errors and labelling
  errors both count, as a wearer would see them.
* ``reference``: the classifier applied at the *reference* R positions,
  fed the signal exactly as ``detect/pipeline.py`` prepares it (resampled to
  250 Hz, cleaned) through :class:`detect.beat_features.BeatFeaturizer`.
  This isolates the classifier from the R-peak detector.

Records: the de Chazal (2004) inter-patient split DS1/DS2 or all 44
non-paced records (EC57 leaves the four paced ones out); ``--nst`` adds the
Noise Stress Test records 118/119 at 24..-6 dB (end-to-end). Writes
``report.md``, ``report.json`` and ``confusion.png`` to ``--out``.

    ecgwatch eval --records DS2 --mode both
    ecgwatch eval --records 100 203 --mode end-to-end --out out/eval-quick
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detect.errors import EcgwatchError
from models.aami import DS1, DS2, PACED

from .evaluation.ec57 import Confusion, score_annotated
from .evaluation.progress import Progress
from .evaluation.records import data_dir, read_signal

MODES = ("end-to-end", "reference")
NST_SNRS = ("24", "18", "12", "06", "00", "_6")     # record suffixes, 24 .. -6 dB
NST_RECORDS = tuple(f"{r}e{s}" for s in NST_SNRS for r in ("118", "119"))
EC57_START_S = 300.0        # bxb's default: the first 5 minutes are a learning period


class EvalError(EcgwatchError):
    """The evaluation cannot run as asked (records, data or model)."""


@dataclass(frozen=True, slots=True)
class RecordJob:
    db: str                    # "mitdb" or "nstdb"
    record: str
    path: str                  # WFDB record path without extension
    modes: tuple[str, ...]
    start_s: float
    model: str | None = None   # classifier file for reference mode (None: shipped model)


@dataclass(frozen=True, slots=True)
class RecordResult:
    job: RecordJob
    scores: dict[str, Confusion]          # mode -> confusion matrix
    detected: int = 0                     # scored end-to-end detections ...
    labelled_q: int = 0                   # ... and how many of them were labelled Q
    seconds: float = 0.0                  # wall time spent on this record


def select_records(tokens: list[str], available: list[str]) -> list[str]:
    """``DS1``, ``DS2``, ``all`` or record names (also comma-separated), in order, once each."""
    out: list[str] = []
    for tok in (t for arg in tokens for t in arg.split(",") if t):
        if tok.upper() in ("DS1", "DS2"):
            names = list(DS1 if tok.upper() == "DS1" else DS2)
        elif tok.lower() == "all":
            names = [r for r in available if r.isdigit() and r not in PACED]
        elif tok in PACED:
            raise EvalError(f"Record {tok} is paced; EC57 excludes paced records from "
                            "beat-classification scoring.")
        elif tok not in available:
            raise EvalError(f"Record {tok!r} is not in the MIT-BIH folder (known: "
                            f"{', '.join(available[:6])}, ...).")
        else:
            names = [tok]
        out += [n for n in names if n not in out]
    if not out:
        raise EvalError("No records selected.")
    return out


def read_annotations(path: str) -> tuple[np.ndarray, np.ndarray]:
    """All reference annotations (sample, symbol) of a record's ``.atr``."""
    import wfdb
    ann = wfdb.rdann(path, "atr")
    return np.asarray(ann.sample, dtype=np.int64), np.asarray(ann.symbol).astype(str)


def score_record(job: RecordJob) -> RecordResult:
    """Score one record in every requested mode (runs in a worker process)."""
    t = time.monotonic()
    x, fs = read_signal(job.path, channel=0)
    ann_s, ann_sym = read_annotations(job.path)
    scores: dict[str, Confusion] = {}
    detected = labelled_q = 0
    if "end-to-end" in job.modes:
        pos, labels = end_to_end_beats(x, fs, job.model)
        scores["end-to-end"] = score_annotated(ann_s, ann_sym, pos, labels, fs,
                                               start_s=job.start_s)
        after = pos >= int(round(job.start_s * fs))
        detected = int(after.sum())
        labelled_q = int((np.asarray(labels)[after] == "Q").sum()) if labels else 0
    if "reference" in job.modes:
        pos, labels = reference_beats(x, fs, ann_s, ann_sym, job.model)
        scores["reference"] = score_annotated(ann_s, ann_sym, pos, labels, fs,
                                              start_s=job.start_s)
    return RecordResult(job, scores, detected, labelled_q, time.monotonic() - t)


def end_to_end_beats(x: np.ndarray, fs: float, model: str | None = None
                     ) -> tuple[np.ndarray, list[str]]:
    """Beats of the streaming path as record sample positions, with their labels."""
    from .evaluation.replay import replay
    beats = sorted(replay(x, fs, classifier=load_classifier(model)).beats,
                   key=lambda b: b.index)
    # Beat.time is device time; the record's sample 0 is device time 0.
    pos = np.array([round(b.time * fs) for b in beats], dtype=np.int64)
    return pos, [b.label for b in beats]


def reference_beats(x: np.ndarray, fs: float, ann_samples: np.ndarray, ann_symbols: np.ndarray,
                    model: str | None) -> tuple[np.ndarray, list[str]]:
    """The classifier's label for every reference beat, from the pipeline's own signal."""
    from .evaluation.matching import BEAT_SYMBOLS

    beat = np.isin(ann_symbols, sorted(BEAT_SYMBOLS))
    return labels_at(x, fs, np.asarray(ann_samples)[beat], model)


def labels_at(x: np.ndarray, fs: float, samples: np.ndarray, model: str | None
              ) -> tuple[np.ndarray, list[str]]:
    """The classifier's label at R peaks ``samples`` (record positions, ascending), with
    the pipeline's signal chain and featurizer run offline: no quality gate, no veto.

    As the pipeline does at the end of a segment, the last beats' windows
    are completed with silence, so every beat gets a label. Returns the
    positions labelled (two that fall on one 250 Hz sample keep the first)
    and their labels.
    """
    from detect.beat_features import FS, WINDOW_AFTER, BeatFeaturizer, stack_inputs
    from detect.config import DetectorConfig
    from detect.filters import CleaningFilter
    from detect.resample import Resampler

    classifier = load_classifier(model)
    config = DetectorConfig()
    resampler = Resampler(fs, FS)
    cleaner = CleaningFilter(FS, config.bandpass_hz, config.mains_hz, config.notch_q)
    clean = cleaner.push(resampler.push(np.asarray(x, dtype=np.float64)))
    samples = np.asarray(samples, dtype=np.int64)
    # Resampled sample m is input time m / FS - delay (detect.resample).
    grid = np.rint((samples / fs + resampler.delay_s) * FS).astype(np.int64)
    keep = np.concatenate([[True], np.diff(grid) > 0]) if grid.size else np.zeros(0, bool)
    samples, grid = samples[keep], grid[keep]
    feat = BeatFeaturizer()
    # The resampler holds back its group delay, so a beat in the record's last
    # ~10 ms lies past the cleaned signal's end: the silence covers that too.
    tail = WINDOW_AFTER + int(np.ceil(resampler.delay_s * FS)) + 1
    inputs = feat.push(clean, grid.tolist()) + feat.push(np.zeros(tail)) + feat.flush()
    if not inputs:
        return np.zeros(0, np.int64), []
    pred = classifier.predict(*stack_inputs(inputs))
    at = {int(g): int(s) for g, s in zip(grid, samples)}
    pos = np.array([at[b.index] for b in inputs], dtype=np.int64)
    return pos, list(pred.labels)


_CLASSIFIERS: dict[str | None, object] = {}


def load_classifier(model: str | None):
    """The beat classifier (once per process), or an EvalError that says what is missing."""
    if model not in _CLASSIFIERS:
        try:
            from detect.classify import BeatClassifier
        except ImportError as e:
            raise EvalError("Reference mode needs the beat classifier runtime "
                            f"detect.classify, which cannot be imported ({e}).") from None
        _CLASSIFIERS[model] = BeatClassifier(model)   # ModelError names a bad file
    return _CLASSIFIERS[model]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ecgwatch eval", allow_abbrev=False,
        description="EC57 beat-classification scores (VEB/SVEB Se, +P, FPR) of the "
                    "streaming path on MIT-BIH.")
    p.add_argument("--data", type=Path, default=None,
                   help="PhysioNet data folder holding mitdb/ and nstdb/ "
                        "(default: $ECGWATCH_DATA or ../shared/data)")
    p.add_argument("--records", nargs="+", default=["DS2"], metavar="SEL",
                   help="DS1, DS2, all (44 non-paced records) or record names (default: DS2)")
    p.add_argument("--mode", choices=MODES + ("both",), default="end-to-end",
                   help="end-to-end: detected beats with their labels; reference: the "
                        "classifier at the reference R peaks; both")
    p.add_argument("--nst", action="store_true",
                   help="also score the Noise Stress Test records 118/119 at 24..-6 dB")
    p.add_argument("--start-s", type=float, default=EC57_START_S, metavar="S",
                   help="score beats from this time on (EC57/bxb learning period: 300)")
    p.add_argument("--model", help="ONNX beat model for reference mode (default: shipped)")
    p.add_argument("--rhythms", action="store_true",
                   help="also run the rhythm evaluation: AF on AFDB/NSRDB beat times, AF/VT/VF "
                        "alarms end to end on MIT-BIH and the Noise Stress Test, CinC 2017 "
                        "strips (writes rhythms.md)")
    p.add_argument("--no-beats", action="store_true",
                   help="skip the EC57 beat scoring (with --rhythms)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--out", type=Path, default=Path("out/eval"))
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except EcgwatchError as e:
        print(f"ecgwatch eval: error: {e}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    from .evaluation.ec57_report import write_report

    data = args.data if args.data is not None else data_dir()
    mitdb = data / "mitdb"
    if not mitdb.is_dir():
        raise EvalError(f"MIT-BIH records not found in {mitdb}; pass --data or set "
                        "ECGWATCH_DATA (see the data README for where to get them).")
    if args.start_s < 0:
        raise EvalError(f"--start-s {args.start_s:g} is negative.")
    if args.no_beats:
        if not args.rhythms:
            raise EvalError("--no-beats leaves nothing to do without --rhythms.")
        return _rhythms(data, args)
    modes = MODES if args.mode == "both" else (args.mode,)
    if "reference" in modes:
        load_classifier(args.model)           # fail now, not in every worker
    from .evaluation.records import list_records
    records = select_records(args.records, list_records(mitdb))
    jobs = [RecordJob("mitdb", r, str(mitdb / r), modes, args.start_s, args.model)
            for r in records]
    if args.nst:
        nstdb = data / "nstdb"
        if not nstdb.is_dir():
            raise EvalError(f"--nst: Noise Stress Test records not found in {nstdb}.")
        jobs += [RecordJob("nstdb", r, str(nstdb / r), ("end-to-end",), args.start_s)
                 for r in NST_RECORDS]

    progress = Progress(len(jobs), sys.stderr)
    results = []
    if args.jobs > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(args.jobs, len(jobs))) as pool:
            for res in pool.map(score_record, jobs, chunksize=1):
                results.append(res)
                progress.step(res.job.record)
    else:
        for job in jobs:
            results.append(score_record(job))
            progress.step(job.record)
    progress.finish()
    paths = write_report(results, args.out, modes=modes, start_s=args.start_s)
    for path in paths:
        print(path)
    return _rhythms(data, args) if args.rhythms else 0


def _rhythms(data: Path, args: argparse.Namespace) -> int:
    from .evaluation.rhythm_suite import run as run_rhythms
    for folder in ("afdb", "nsrdb", "nstdb"):
        if not (data / folder).is_dir():
            raise EvalError(f"--rhythms: {data / folder} is missing (see the data README).")
    for path in run_rhythms(data, args.out, args.jobs):
        print(path)
    return 0


__all__ = ["EvalError", "RecordJob", "RecordResult", "select_records", "score_record",
           "end_to_end_beats", "reference_beats", "labels_at", "main"]


if __name__ == "__main__":
    sys.exit(main())
