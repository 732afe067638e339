"""A digest of everything the detector outputs for a fixed synthetic fleet.

    python bench/fleet_digest.py [--devices 100] [--seconds 60] [--unbatched] [--out FILE]

Prints one sha256 prefix per output kind (beats, beat labels with the shipped
model, alarm transitions, final device states, and the beat model's inputs:
every beat's window, template and RR features, bit for bit, so that a change
to the featurizer cannot hide behind labels that happen not to move). Run it before and after a
change meant to leave the output alone (an optimisation): the digests must be
equal; ``--out`` writes the whole output as JSON for diffing when they are
not. ``--unbatched`` filters each chunk on its own instead of batching the
filters across devices (detect/batch.py): the digests must not change either.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from detect.batch import SignalBatcher  # noqa: E402
from detect.classify import BeatBatcher  # noqa: E402
from detect.config import DetectorConfig  # noqa: E402
from detect.pipeline import DevicePipeline  # noqa: E402
from ecgwatch.bench_fleet import load_classifier, make_fleet  # noqa: E402
from ingest.device import DeviceMonitor, complete_tick  # noqa: E402
from ingest.payload import decode_samples  # noqa: E402


class _Recording(BeatBatcher):
    """The model's batcher, noting every beat's model input as the model receives it:
    (beat index, sha256 of its window, template and RR row)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.inputs: list[tuple[int, str]] = []

    def _predict(self, inputs):
        predict = self.classifier.predict

        def recording(windows, rr):
            for i, w, r in zip(inputs, windows, rr):
                blob = np.ascontiguousarray(w, np.float32).tobytes() + \
                    np.ascontiguousarray(r, np.float32).tobytes()
                self.inputs.append((i.index, hashlib.sha256(blob).hexdigest()))
            return predict(windows, rr)

        self.classifier.predict = recording
        try:
            return super()._predict(inputs)
        finally:
            del self.classifier.predict


def digest(devices: int, seconds: int, batched: bool = True) -> dict[str, list]:
    fleet = make_fleet(devices, seconds, 0)
    model = _Recording(load_classifier())
    signals = SignalBatcher() if batched else None
    config = DetectorConfig()
    monitors = {d: DeviceMonitor(d, config, pipeline_factory=(
        lambda dev, c: DevicePipeline(dev, c, model, signals))) for d in fleet.ids}
    out: dict[str, list] = {"beats": [], "labels": [], "transitions": [], "states": []}

    def take(d: str, r) -> None:
        out["beats"] += [(d, b.index) for b in r.beats]
        out["labels"] += [(d, b.index, str(b.label)) for b in r.classified]
        out["transitions"] += [t.to_dict() for t in r.transitions]

    for k in range(seconds):
        for d, payloads in zip(fleet.ids, fleet.payloads):
            take(d, monitors[d].push(decode_samples(d, payloads[k]), float(k + 1)))
        for d, r in complete_tick(monitors, signals, model, float(k + 1)):
            take(d, r)
    out["states"] = [m.state().to_dict() for m in monitors.values()]
    # Sorted: when a device's inputs are computed may change, what they are must not.
    out["features"] = sorted(model.inputs)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--unbatched", action="store_true")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    out = digest(a.devices, a.seconds, batched=not a.unbatched)
    for kind, items in out.items():
        text = json.dumps(items, sort_keys=True, default=str).encode()
        print(f"{kind:12s} n={len(items):6d} sha256={hashlib.sha256(text).hexdigest()[:16]}")
    if a.out:
        a.out.write_text(json.dumps(out, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
