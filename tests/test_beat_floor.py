"""Regression floor for the shipped beat model on held-out patients (issue 3).

End to end, through the same streaming path as the service (``ecgwatch eval``'s
``score_record``): the four DS2 records with the most ectopic beats (232: 1382
S; 200: 826 V; 233: 831 V; 213: 220 V and 362 F), chosen by that rule before
any result on them was seen. Each class fails if its gross sensitivity or
positive predictivity falls below the issue's floor (VEB 90/90, SVEB 75/50).

The shipped model (beat-cnn-5) is above the VEB floor on these four records
but below the SVEB sensitivity floor (SVEB Se 63.9 %, +P 99.9 % when
measured with the service's AF veto, 67.5 / 99.2 without; beat-cnn-4 had
91.8 / 98.1): its decision biases, tuned on DS1, trade S sensitivity for
positive predictivity, and record 232's long runs of atrial ectopy lose the
most. So the SVEB floor is a strict expected failure
(it turns into a failure the day the floor is met, to be removed then), and a
second test guards SVEB against falling further than beat-cnn-5 measured. On
the whole of DS2 VEB +P is also below the floor (models/README.md). These
tests guard against regressions; they are not the claim that the floor is
met. DS2 is never used for training or selection.
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


@pytest.mark.parametrize("name", [
    "VEB",
    pytest.param("SVEB", marks=pytest.mark.xfail(
        strict=True, reason="beat-cnn-5's SVEB Se is below the floor on these records "
                            "(63.9 %, models/README.md)")),
])
def test_ds2_ectopic_records_stay_above_the_floor(ds2_ectopic: Confusion, name: str) -> None:
    score = ds2_ectopic.veb if name == "VEB" else ds2_ectopic.sveb
    se, ppv = FLOOR[name]
    assert score.se >= se and score.ppv >= ppv, (
        f"{name} is below the floor (Se {se:.0%}, +P {ppv:.0%}) on DS2 records "
        f"{', '.join(RECORDS)}: Se {100 * score.se:.1f} %, +P {100 * score.ppv:.1f} %.")


def test_sveb_does_not_fall_below_what_the_shipped_model_measured(ds2_ectopic: Confusion) -> None:
    # beat-cnn-5 with the AF veto measured Se 63.9 %, +P 99.9 %; two points of
    # slack for another platform's floating point, not for a worse model.
    score = ds2_ectopic.sveb
    assert score.se >= 0.62 and score.ppv >= 0.95, (
        f"SVEB on DS2 records {', '.join(RECORDS)} fell to Se {100 * score.se:.1f} %, "
        f"+P {100 * score.ppv:.1f} % (beat-cnn-5: 63.9 / 99.9).")
