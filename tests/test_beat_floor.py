"""Regression floor for the shipped beat model on held-out patients (issue 3).

End to end, through the same streaming path as the service (``ecgwatch eval``'s
``score_record``): the four DS2 records with the most ectopic beats (232: 1382
S; 200: 826 V; 233: 831 V; 213: 220 V and 362 F), chosen by that rule before
any result on them was seen. Each class fails if its gross sensitivity or
positive predictivity falls below the issue's floor (VEB 90/90, SVEB 75/50).

The shipped model (beat-cnn-7, with the service's AF veto) is above the
floor on these four records (VEB 92.7 / 99.3, SVEB 80.3 / 99.4 when
measured), but not on the whole of DS2, where VEB +P and SVEB Se fall short
(75.1 and 71.3, models/README.md): atrial fibrillation
and bundle branch block, which these records do not hold, produce most of
its false labels. This test guards against regressions; it is not the claim
that the floor is met. DS2 is never used for training or selection.
"""

from __future__ import annotations

import pytest

from ecgwatch.eval_cmd import EC57_START_S, RecordJob, score_record
from ecgwatch.evaluation.ec57 import Confusion
from ecgwatch.evaluation.records import data_dir

RECORDS = ("232", "200", "233", "213")
FLOOR = {"VEB": (0.90, 0.90), "SVEB": (0.75, 0.50)}
MITDB = data_dir() / "mitdb"

pytestmark = pytest.mark.skipif(
    not MITDB.is_dir(),
    reason=f"MIT-BIH data not found at {MITDB} (set ECGWATCH_DATA to the folder holding mitdb/)")


@pytest.fixture(scope="module")
def ds2_ectopic() -> Confusion:
    total = Confusion.empty()
    for rec in RECORDS:
        job = RecordJob("mitdb", rec, str(MITDB / rec), ("end-to-end",), EC57_START_S)
        total = total + score_record(job).scores["end-to-end"]
    return total


@pytest.mark.parametrize("name", ["VEB", "SVEB"])
def test_ds2_ectopic_records_stay_above_the_floor(ds2_ectopic: Confusion, name: str) -> None:
    score = ds2_ectopic.veb if name == "VEB" else ds2_ectopic.sveb
    se, ppv = FLOOR[name]
    assert score.se >= se and score.ppv >= ppv, (
        f"{name} is below the floor (Se {se:.0%}, +P {ppv:.0%}) on DS2 records "
        f"{', '.join(RECORDS)}: Se {100 * score.se:.1f} %, +P {100 * score.ppv:.1f} %.")

