"""``ecgwatch serve --workers N``: N service processes on one machine, devices partitioned.

Each worker is a whole :class:`ecgwatch.service.Service` in its own process
(its own MQTT connection, client id ``{client_id}-{i}``, onnxruntime session
and device state), subscribed to every samples topic but serving only the
devices whose stable hash (:func:`ecgwatch.service.partition_of`) falls in
its slot; the others' messages are dropped before decoding. A device's state
therefore never moves between processes while N is unchanged. Scaling with
processes rather than threads: the detector is Python and numpy under the
GIL, and one onnxruntime thread per process was faster here than two.

The parent only supervises: it starts the workers, forwards SIGINT/SIGTERM
(or ``--duration``) as SIGTERM to each, and if one dies it stops the rest and
exits non-zero, so the process manager above (systemd, Kubernetes) restarts
the whole set with the same partitioning.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
import os
import signal
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

from .service import Service, ServiceConfig

log = logging.getLogger(__name__)
JOIN_S = 10.0


def worker_configs(config: ServiceConfig, workers: int) -> list[ServiceConfig]:
    """One config per worker: its own client id and partition slot."""
    return [dataclasses.replace(config, client_id=f"{config.client_id}-{i}",
                                partition=(i, workers)) for i in range(workers)]


def _worker_main(config: ServiceConfig, log_level: str) -> None:
    logging.basicConfig(level=log_level,
                        format=f"%(asctime)s %(levelname)s [{config.client_id}] "
                               "%(name)s: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    Service(config).run(stop)


def run_workers(config: ServiceConfig, workers: int, log_level: str,
                stopping: Callable[[threading.Event], AbstractContextManager[None]]) -> int:
    """Run ``workers`` service processes until stopped; 0 on a clean stop, 1 if one died."""
    ctx = mp.get_context("spawn")           # no forked copies of paho threads or locks
    procs = [ctx.Process(target=_worker_main, args=(c, log_level), name=c.client_id)
             for c in worker_configs(config, workers)]
    for p in procs:
        p.start()
    log.info("started %d workers: %s", workers, ", ".join(p.name for p in procs))
    stop, failed = threading.Event(), None
    with stopping(stop):
        while not stop.wait(0.5):
            failed = next((p for p in procs if not p.is_alive()), None)
            if failed is not None:
                log.error("worker %s exited with code %s; stopping the others",
                          failed.name, failed.exitcode)
                break
    for p in procs:
        if p.is_alive() and p.pid is not None:
            os.kill(p.pid, signal.SIGTERM)
    for p in procs:
        p.join(JOIN_S)
        if p.is_alive():
            log.error("worker %s did not stop within %.0f s; killing it", p.name, JOIN_S)
            p.kill()
            p.join()
    return 1 if failed is not None else 0
