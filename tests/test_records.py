"""quick_init keeps a frozen record's constructor as the dataclass made it, only cheaper."""

import dataclasses
import inspect

import pytest

from detect.pipeline import PipelineResult
from detect.records import quick_init
from detect.types import Beat, Evidence, QualityWindow, Quality
from ingest.device import MonitorResult


@pytest.mark.parametrize("cls", [Beat, Evidence, QualityWindow, PipelineResult, MonitorResult])
def test_the_signature_and_defaults_are_the_dataclasses(cls):
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    fields = dataclasses.fields(cls)
    assert [p.name for p in params] == [f.name for f in fields]
    assert [p.default for p in params] == [
        inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
        for f in fields]


def test_records_are_built_checked_and_still_frozen():
    b = Beat("dev", 10, 0.04, rr=0.8)
    assert (b.device_id, b.index, b.time, b.rr, b.label) == ("dev", 10, 0.04, 0.8, "N")
    assert b == Beat("dev", 10, 0.04, 0.8, "N") and hash(b) == hash(Beat("dev", 10, 0.04, 0.8))
    assert dataclasses.replace(b, label="V").label == "V"
    with pytest.raises(ValueError, match="negative"):          # __post_init__ still runs
        Beat("dev", -1, 0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.label = "V"                                            # type: ignore[misc]
    assert QualityWindow(0, 5, Quality.GOOD).score == 1.0
    with pytest.raises(TypeError):
        Beat("dev")                                              # type: ignore[call-arg]
    with pytest.raises(ValueError, match="Stream event"):
        MonitorResult(stream_events=("gap",))                    # type: ignore[arg-type]


def test_only_frozen_slotted_records_without_factories_are_taken():
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        a: list = dataclasses.field(default_factory=list)

    for cls in (NoSlots, Factory):
        with pytest.raises(TypeError):
            quick_init(cls)
