"""Speed of the shipped beat classifier in onnxruntime on ONE CPU thread.

    python bench/beat_model_speed.py [--model models/beat_classifier.onnx] [--batch 256]

Random inputs of the documented shapes, warm-up runs, then the median of
repeated timed runs, reported as microseconds per beat (the service budget
is <= 20 us per beat at batch 256). Writes out/beat_model_speed.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from detect.beat_features import CHANNELS, RR_FEATURES, WINDOW

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "beat_classifier.onnx"))
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--out", default=str(ROOT / "out" / "beat_model_speed.json"))
    args = ap.parse_args(argv)

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    session = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {"window": rng.standard_normal((args.batch, CHANNELS, WINDOW)).astype(np.float32),
             # RR features are positive (seconds, ratios): around 0.8 s and 1.0.
             "rr": rng.uniform(0.4, 1.6, (args.batch, len(RR_FEATURES))).astype(np.float32)}
    for _ in range(args.warmup):
        session.run(None, feeds)
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - t)
    us = float(np.median(times)) / args.batch * 1e6
    result = {"model": Path(args.model).name, "batch": args.batch, "threads": 1,
              "repeats": args.repeats, "us_per_beat_median": round(us, 2),
              "us_per_beat_p90": round(float(np.percentile(times, 90)) / args.batch * 1e6, 2),
              "onnxruntime": ort.__version__, "machine": platform.processor() or platform.machine()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"{result['model']}: {us:.2f} us per beat (median, batch {args.batch}, 1 thread, "
          f"onnxruntime {ort.__version__})")
    return result


if __name__ == "__main__":
    main()
