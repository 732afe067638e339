"""Streaming R-peak detection on all 48 MIT-BIH records, through the service's path.

Scoring as docs/evaluation.md: channel 0, every beat annotation, 150 ms,
nothing excluded. Reads ../shared/data (or $ECGWATCH_DATA); skips when absent.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from ecgwatch.evaluation.matching import DetectionScore, score_detections
from ecgwatch.evaluation.records import beat_reference, data_dir, list_records, read_signal
from ecgwatch.evaluation.replay import replay_beats

MITDB = data_dir() / "mitdb"

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not MITDB.is_dir(), reason=f"MIT-BIH data not found at {MITDB} "
                       "(set ECGWATCH_DATA to the folder holding mitdb/)"),
]


def _score(record: str) -> tuple[str, int, int, int]:
    x, fs = read_signal(MITDB / record)
    s = score_detections(beat_reference(MITDB / record), replay_beats(x, fs),
                         int(round(0.150 * fs)))
    return record, s.tp, s.fn, s.fp


@pytest.fixture(scope="module")
def mitdb_scores() -> dict[str, DetectionScore]:
    records = list_records(MITDB)
    with ProcessPoolExecutor(min(2, os.cpu_count() or 1)) as ex:
        return {r: DetectionScore(tp, fn, fp) for r, tp, fn, fp in ex.map(_score, records)}


def test_all_48_records_are_scored(mitdb_scores):
    assert len(mitdb_scores) == 48


def test_streaming_detection_beats_the_issue_floor_on_all_records(mitdb_scores):
    total = sum(mitdb_scores.values(), DetectionScore(0, 0, 0))
    worst = sorted(mitdb_scores.items(), key=lambda kv: -(kv[1].fn + kv[1].fp))[:5]
    detail = ", ".join(f"{r}: FN {s.fn} FP {s.fp}" for r, s in worst)
    assert total.se >= 0.995, f"Se {100 * total.se:.2f} % < 99.5 % (worst {detail})"
    assert total.ppv >= 0.993, f"+P {100 * total.ppv:.2f} % < 99.3 % (worst {detail})"


def test_no_record_collapses(mitdb_scores):
    # A detector that is good on average can still fail one patient badly.
    for record, s in mitdb_scores.items():
        assert s.se >= 0.97, f"record {record}: Se {100 * s.se:.1f} %"


def test_chunk_size_does_not_change_the_beats_on_a_hard_record():
    # 203: multiform PVCs, AF/flutter, noise. 0.1 s, 1 s and 10 s chunks.
    x, fs = read_signal(MITDB / "203")
    x = x[: int(300 * fs)]
    runs = [replay_beats(x, fs, chunk_s=c) for c in (0.1, 1.0, 10.0)]
    for other in runs[1:]:
        assert other.size == runs[0].size
        assert np.abs(other - runs[0]).max() <= 1
