"""``ecgwatch`` command line: serve, demo, simulate, analyze.

Thin on purpose: it turns flags into config objects and hands over to
``ecgwatch.service``, ``ecgwatch.demo``, ``ecgwatch.simulate`` and
``ecgwatch.analyze``. Secrets are never flags (``ps`` shows argv to every
user): the MQTT password comes from ``ECGWATCH_MQTT_PASSWORD`` or
``--password-file``.
"""

from __future__ import annotations

import argparse
import json
import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from detect.config import DetectorConfig
from detect.errors import ConfigError, EcgwatchError

log = logging.getLogger("ecgwatch")

# Subcommands whose flags belong to other modules: everything after the name
# is passed to ``<module>.main(argv)`` unparsed.
_DELEGATED = {"simulate": "ecgwatch.simulate", "analyze": "ecgwatch.analyze",
              "eval": "ecgwatch.eval_cmd", "bench": "ecgwatch.bench"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ecgwatch", description="Streaming arrhythmia detection for wearable ECG over MQTT.",
        allow_abbrev=False)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # allow_abbrev=False: otherwise "--password SECRET" would be taken as
    # "--password-file SECRET" and the secret echoed in the error message.
    serve = sub.add_parser("serve", help="run the detection service against an MQTT broker",
                           allow_abbrev=False)
    serve.add_argument("--broker", metavar="URL",
                       help="mqtt://host:port or mqtts://host:port; default: start an "
                            "embedded broker on 127.0.0.1 (see --port)")
    serve.add_argument("--port", type=int, default=1883,
                       help="port of the embedded broker when --broker is not given")
    serve.add_argument("--ca-file", help="CA bundle to verify the broker (TLS)")
    serve.add_argument("--cert-file", help="client certificate for mutual TLS")
    serve.add_argument("--key-file", help="private key of --cert-file")
    serve.add_argument("--insecure", action="store_true",
                       help="do not check the broker's host name against its certificate")
    serve.add_argument("--username", help="MQTT username (default: $ECGWATCH_MQTT_USERNAME)")
    serve.add_argument("--password-file",
                       help="file whose first line is the MQTT password "
                            "(default: $ECGWATCH_MQTT_PASSWORD)")
    serve.add_argument("--client-id", default="ecgwatch", help="MQTT client id")
    serve.add_argument("--beat-model", metavar="PATH",
                       help="label beats with this ONNX model ('default': the shipped one) "
                            "and raise ventricular rhythm alarms; off by default while the "
                            "shipped model is below the EC57 floor (models/README.md)")
    serve.add_argument("--config", metavar="FILE",
                       help="JSON file of detector settings and alarm limits, e.g. "
                            '{"alarms": {"asystole_s": 5, "tachy_bpm": 150}}')
    serve.add_argument("--protocol", choices=["auto", "5", "3.1.1"], default="auto",
                       help="MQTT version; auto tries 5 then 3.1.1")
    serve.add_argument("--connect-timeout", type=float, default=10.0, metavar="S",
                       help="give up if the broker has not accepted us within this time")
    serve.add_argument("--duration", type=float, metavar="S",
                       help="stop after this many seconds (default: run until SIGINT/SIGTERM)")
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="N service processes, devices partitioned by a stable hash of "
                            "their id (default 1); status and metrics per worker on "
                            "ecgwatch/v1/status/{client-id}-{i}")
    serve.add_argument("--session-expiry", type=int, default=3600, metavar="S",
                       help="the broker keeps our subscriptions and unacknowledged chunks this "
                            "long while the service is away (MQTT 5; 0: a clean session); "
                            "default 3600")
    serve.add_argument("--outbox", metavar="PATH", default=None,
                       help="SQLite file holding alerts until the broker acknowledges them, "
                            "published again at start-up ('{client_id}' is replaced; "
                            "':memory:' keeps them in memory only); default: "
                            "$ECGWATCH_STATE_DIR, else $XDG_STATE_HOME/ecgwatch, else "
                            "~/.local/state/ecgwatch, /outbox-{client_id}.sqlite3")
    _log_flag(serve)
    serve.set_defaults(handler=_serve)

    demo = sub.add_parser("demo", help="embedded broker + service + simulated fleet, "
                                       "printing alerts as they happen", allow_abbrev=False)
    demo.add_argument("--duration", type=float, default=60.0, metavar="S")
    demo.add_argument("--devices", type=int, default=7)
    demo.add_argument("--speed", type=float, default=1.0,
                      help="simulated seconds per wall-clock second")
    demo.add_argument("--format", choices=["json", "binary"], default="json",
                      help="samples payload encoding the simulated devices use")
    _log_flag(demo, default="WARNING")
    demo.set_defaults(handler=_demo)

    for name, help_text in (("simulate", "publish a simulated or recorded ECG fleet"),
                            ("analyze", "run the detector offline over a record"),
                            ("eval", "EC57 beat-classification scores on MIT-BIH")):
        # Listed for --help only: main() hands these over before parsing.
        sub.add_parser(name, help=f"{help_text} (see 'ecgwatch {name} --help')", add_help=False)
    return p


def _log_flag(p: argparse.ArgumentParser, default: str = "INFO") -> None:
    p.add_argument("--log-level", default=default,
                   choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in _DELEGATED:
        module = importlib.import_module(_DELEGATED[args_list[0]])
        return int(module.main(args_list[1:]) or 0)
    args = build_parser().parse_args(args_list)
    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args) or 0)
    except EcgwatchError as e:
        print(f"ecgwatch: error: {e}", file=sys.stderr)
        return 1


@contextlib.contextmanager
def _stopping_on_signals(stop: threading.Event, duration: float | None) -> Iterator[None]:
    """Set ``stop`` on SIGINT/SIGTERM or after ``duration`` seconds; restore handlers after."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    timer = None
    if duration is not None:
        timer = threading.Timer(duration, stop.set)
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve(args: argparse.Namespace) -> int:
    from ecgwatch.broker import EmbeddedBroker
    from ecgwatch.service import Service, ServiceConfig
    from ingest.mqtt import BrokerURL, Credentials, TlsOptions

    tls = None
    if args.ca_file or args.cert_file or args.key_file or args.insecure:
        tls = TlsOptions(args.ca_file, args.cert_file, args.key_file, args.insecure)
    if args.password_file:
        credentials = Credentials.from_file(args.password_file, args.username)
    else:
        credentials = Credentials.from_env()
        if args.username:
            credentials = Credentials(args.username, credentials.password if credentials else None)

    embedded = None
    if args.broker is None:
        embedded = EmbeddedBroker(port=args.port).start()
        url, protocol = BrokerURL.parse(embedded.url), "3.1.1"   # amqtt is 3.1.1 only
        print(f"ecgwatch: embedded MQTT broker listening on {embedded.url}", flush=True)
    else:
        url, protocol = BrokerURL.parse(args.broker), args.protocol
    try:
        config = ServiceConfig(broker=url, client_id=args.client_id, tls=tls,
                               credentials=credentials, protocol=protocol,
                               connect_timeout_s=args.connect_timeout,
                               detector=_detector_config(args.config),
                               beat_model=args.beat_model,
                               session_expiry_s=args.session_expiry,
                               outbox=args.outbox or default_outbox())
        if args.workers != 1:
            if args.workers < 1:
                raise ConfigError(f"--workers {args.workers} must be at least 1.")
            if "{client_id}" not in config.outbox and config.outbox != ":memory:":
                # One file per worker: each replays only its own alerts.
                raise ConfigError(f"--outbox {config.outbox} needs '{{client_id}}' in its name "
                                  f"with --workers {args.workers}.")
            from ecgwatch.workers import run_workers
            return run_workers(config, args.workers, args.log_level,
                               lambda stop: _stopping_on_signals(stop, args.duration))
        stop = threading.Event()
        with _stopping_on_signals(stop, args.duration):
            Service(config).run(stop)
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def default_outbox() -> str:
    """The alert outbox under the state directory, one file per MQTT client id."""
    env = os.environ
    state = env.get("ECGWATCH_STATE_DIR") or (
        str(Path(env["XDG_STATE_HOME"]) / "ecgwatch") if env.get("XDG_STATE_HOME")
        else str(Path.home() / ".local" / "state" / "ecgwatch"))
    return str(Path(state) / "outbox-{client_id}.sqlite3")


def _detector_config(path: str | None) -> DetectorConfig:
    if path is None:
        return DetectorConfig()
    try:
        data = json.loads(Path(path).read_text())
    except OSError as e:
        raise ConfigError(f"Cannot read the config file {path}: {e.strerror}.") from None
    except ValueError as e:
        raise ConfigError(f"The config file {path} is not valid JSON: {e}.") from None
    return DetectorConfig.from_dict(data)


def _demo(args: argparse.Namespace) -> int:
    from ecgwatch.demo import run_demo

    stop = threading.Event()
    with _stopping_on_signals(stop, None):
        run_demo(duration=args.duration, devices=args.devices, speed=args.speed,
                 fmt=args.format, stop_event=stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
