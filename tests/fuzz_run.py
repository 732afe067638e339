"""The long fuzz run: ``python tests/fuzz_run.py --examples 100000 [--out out/fuzz.json]``.

Generates messages with tests/fuzzing.py and feeds them, interleaved with a
well-behaved control device, through ``Service.handle`` of a service
connected to a broker started here (mosquitto if installed, else the embedded
one). Prints and writes the counts: messages, rejects by reason, chunks
processed, internal errors (must be 0), and the control device's beats
against a clean run (must be equal).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hypothesis import HealthCheck, given, settings  # noqa: E402

from ecgwatch.broker import start_test_broker  # noqa: E402
from ecgwatch.service import Service, ServiceConfig  # noqa: E402
from fuzzing import Harness, clean_control_beats, messages  # noqa: E402
from ingest.mqtt import BrokerURL  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--examples", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=Path("out/fuzz.json"))
    args = ap.parse_args(argv)
    broker = start_test_broker()
    service = Service(ServiceConfig(BrokerURL.parse(broker.url), client_id="fuzz-run",
                                    protocol="3.1.1" if broker.kind == "amqtt" else "auto",
                                    inbox_size=100_000))
    service.start()
    # A control chunk after every 10th message, enough control signal for all of them.
    control_s = args.examples // 10 + 10
    harness = Harness(service, control_every=10, control_seconds=control_s)
    t0 = time.monotonic()

    @settings(max_examples=args.examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(msg=messages())
    def run(msg):
        harness.feed(msg)

    try:
        run()
    finally:
        service.stop()
        broker.stop()
    counts = service.counters.snapshot()
    clean = clean_control_beats(harness.sent, control_s)
    report = {"messages": harness.messages, "control_chunks": harness.sent,
              "control_beats": harness.control_beats(), "clean_control_beats": clean,
              "chunks_in": counts["chunks_in"], "chunks_processed": counts["chunks_processed"],
              "duplicates": counts["duplicates"], "gaps": counts["gaps"],
              "rejects": counts["rejects"], "rejects_total": counts["rejects_total"],
              "configs_applied": counts["configs_applied"],
              "seconds": round(time.monotonic() - t0, 1), "broker": broker.kind}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    ok = counts["rejects"].get("internal", 0) == 0 and harness.control_beats() == [clean]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
