"""`azr-exec worker`: an RQ worker that keeps a warm sandbox pool and executes verification chunks."""

from __future__ import annotations

import logging
import os
import socket

from rq import Queue, SimpleWorker
from rq.job import Job

from api.core.config import Settings, get_settings

log = logging.getLogger(__name__)


class VerificationWorker(SimpleWorker):
    """RQ's SimpleWorker (jobs run in this process, so the sandbox pool stays warm).

    Only the heartbeat TTL is shortened: RQ re-queues the job of a worker that died
    once its heartbeat expires, and the default grace of 60 s is long for a trainer.
    """

    heartbeat_grace_s = 10

    def get_heartbeat_ttl(self, job: Job, elapsed_execution_time: float = 0.0) -> int:  # type: ignore[override]
        return int(self.job_monitoring_interval) + self.heartbeat_grace_s


def _start_metrics_server(settings: Settings) -> None:
    if not settings.worker_metrics_port:
        return
    from prometheus_client import start_http_server

    from api import metrics
    from api.queue.tasks import worker_engine

    def live() -> list[tuple[str, str, dict[str, str], float]]:
        pool = worker_engine().pool
        return [
            ("azr_sandboxes", "Sandbox zygotes by state.", {"state": "busy"}, float(pool.busy)),
            ("azr_sandboxes", "Sandbox zygotes by state.", {"state": "idle"}, float(pool.size - pool.busy)),
        ]

    metrics.LIVE.sources.append(live)
    from prometheus_client import REGISTRY

    try:
        REGISTRY.register(metrics.LIVE)
    except ValueError:
        pass
    for port in range(settings.worker_metrics_port, settings.worker_metrics_port + 20):
        try:
            start_http_server(port, addr=os.environ.get("AZR_WORKER_METRICS_ADDR", "0.0.0.0"))
            log.info("worker metrics on :%d/metrics", port)
            return
        except OSError:
            continue
    log.warning("no free port for the worker's metrics server")


def run_worker(burst: bool = False, name: str | None = None) -> int:
    from redis import Redis

    from api.queue.tasks import worker_engine

    settings = get_settings()
    if not settings.redis_url:
        raise SystemExit("error: set AZR_REDIS_URL (e.g. redis://127.0.0.1:6379/0) to run a worker")
    redis = Redis.from_url(settings.redis_url)
    engine = worker_engine()  # warm the sandboxes before taking jobs
    failures = _self_test(engine)
    if failures:
        log.critical("sandbox self-test FAILED, refusing to serve: %s", "; ".join(failures))
        return 2
    _start_metrics_server(settings)
    VerificationWorker.heartbeat_grace_s = settings.worker_heartbeat_grace_s
    worker = VerificationWorker(
        [Queue(settings.queue_name, connection=redis)],
        connection=redis,
        name=name or f"{socket.gethostname()}-{os.getpid()}",
        job_monitoring_interval=2,
        maintenance_interval=settings.worker_maintenance_s,
    )
    log.info("worker %s serving queue %s", worker.name, settings.queue_name)
    try:
        worker.work(burst=burst, with_scheduler=False, logging_level="INFO")
    finally:
        engine.close()
    return 0


def _self_test(engine: object) -> list[str]:
    try:
        from executor.sandbox.selftest import self_test
    except ImportError:
        return []
    return list(self_test(engine.pool))  # type: ignore[attr-defined]
