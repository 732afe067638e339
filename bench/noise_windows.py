"""How the quality judge grades the scripted noise of the bench fleet, window by window.

    python bench/noise_windows.py [--devices 2000] [--seed 0]

For every device of ``fleet_scenarios(devices, seed)`` with a ``noise`` event
(-12 dB SNR, 10 s from 15 s), streams the synthetic signal through a
``DevicePipeline`` in 1 s chunks and prints the grades of the 2 s quality
windows (G good, N noisy, U unusable, from 12 s), the grades of the windows
lying wholly inside the noise, and where ``unusable_signal`` was raised:
its onset and decision (``at``) in seconds of the stream. The end-to-end
alarm-latency target (scripted onset to alert <= ``at - onset`` + 1.5 s)
holds for this event only if the onset is the first window wholly inside the
noise (16 s) or the one before it.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detect.config import DetectorConfig  # noqa: E402
from detect.pipeline import DevicePipeline  # noqa: E402
from detect.types import Chunk, Condition  # noqa: E402
from ecgwatch.simulate import fleet_scenarios  # noqa: E402
from ecgwatch.synth import synthesize  # noqa: E402

FS = 250.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    inside: Counter[str] = Counter()
    events = raised = early = 0
    for s in fleet_scenarios(a.devices, a.seed):
        noise = [e for e in s.events if e.kind == "noise"]
        if not noise:
            continue
        ev = noise[0]
        seconds = int(ev.start_s + ev.duration_s) + 10
        rec = synthesize(s, FS, float(seconds))
        p = DevicePipeline(s.name, DetectorConfig(), None, None)
        windows, first = [], None
        n = int(FS)
        for k in range(seconds):
            r = p.push(Chunk(s.name, k, float(k), FS, rec.signal[k * n:(k + 1) * n]))
            windows += r.quality
            for t in r.transitions:
                if first is None and t.condition is Condition.NOISE and t.action.value == "raised":
                    first = (t.onset, t.at)
        grades = "".join(w.quality.value[0].upper() for w in windows if w.start >= 12 * FS)
        inside.update(w.quality.value for w in windows
                      if w.start >= ev.start_s * FS and w.end <= (ev.start_s + ev.duration_s) * FS)
        events += 1
        if first is None:
            print(f"{s.name} {grades} not raised")
            continue
        raised += 1
        # First window wholly inside the noise, or the one before it (holds the onset).
        window = 2.0
        limit = (ev.start_s // window + 1) * window
        early += first[0] <= limit
        print(f"{s.name} {grades} onset {first[0]:.0f} s at {first[1]:.0f} s")
    total = sum(inside.values())
    print(f"\n{events} noise events, unusable_signal raised for {raised}, onset at or before "
          f"the first window wholly inside the noise for {early}")
    print("windows wholly inside the noise: " + ", ".join(
        f"{q} {c} ({100 * c / total:.0f} %)" for q, c in inside.most_common()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
