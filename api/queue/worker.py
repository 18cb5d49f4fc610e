"""`azr-exec worker`: an RQ worker that keeps a warm sandbox pool and executes verification chunks."""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import UTC, datetime, timedelta

from redis import Redis
from rq import Queue, SimpleWorker
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job
from rq.worker import WorkerStatus

from executor.settings import Settings, get_settings

log = logging.getLogger(__name__)


class QuickIntermediateQueue(IntermediateQueue):
    def __init__(self, queue_key: str, connection: Redis, grace_s: int) -> None:
        super().__init__(queue_key, connection)
        self.grace_s = grace_s

    def should_be_cleaned_up(self, job_id: str) -> bool:
        first_seen = self.get_first_seen(job_id)
        return first_seen is not None and datetime.now(UTC) - first_seen > timedelta(seconds=self.grace_s)


class VerificationWorker(SimpleWorker):
    """RQ's SimpleWorker (jobs run in this process, so the sandbox pool stays warm), with
    RQ's own heartbeats kept up by a thread while a job runs.

    A plain SimpleWorker refreshes no heartbeat during a job, so its heartbeat TTL must
    outlast the longest job and a dead worker's job waits that long to be re-queued.
    Here `maintain_heartbeats` runs every `job_monitoring_interval` seconds during the
    job, so the TTL can be short: a worker killed mid-job is noticed within
    `heartbeat_grace_s` and RQ's StartedJobRegistry cleanup re-queues its job (Retry).
    """

    heartbeat_grace_s = 10

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return int(self.job_monitoring_interval) + self.heartbeat_grace_s

    def clean_registries(self) -> None:
        """RQ's maintenance, plus a quicker rescue of jobs stranded in the intermediate queue.

        A worker killed between taking a job off the queue and registering it as started
        leaves the job in RQ's intermediate queue, which RQ rescues only after a minute.
        The same RQ cleanup runs here with the heartbeat grace instead of that minute.
        """
        super().clean_registries()
        for queue in self.queues:
            QuickIntermediateQueue(queue.key, self.connection, self.heartbeat_grace_s).cleanup(self, queue)

    def execute_job(self, job: Job, queue: Queue) -> None:
        execution = self.prepare_execution(job)
        done = threading.Event()

        def keep_alive() -> None:
            while not done.wait(self.job_monitoring_interval):
                try:
                    self.maintain_heartbeats(job, execution)
                except Exception as exc:  # noqa: BLE001 - a missed beat only risks a re-run
                    log.warning("heartbeat for job %s failed: %s", job.id, exc)

        beat = threading.Thread(target=keep_alive, name="rq-heartbeat", daemon=True)
        beat.start()
        try:
            self.perform_job(job, queue, execution)
        finally:
            done.set()
            beat.join(timeout=5)
        self.set_state(WorkerStatus.IDLE)


def _start_metrics_server(settings: Settings) -> None:
    port_from = settings.worker.metrics_port
    if not port_from:
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
    for port in range(port_from, port_from + 20):
        try:
            start_http_server(port, addr=settings.worker.metrics_addr)
            log.info("worker metrics on :%d/metrics", port)
            return
        except OSError:
            continue
    log.warning("no free port for the worker's metrics server")


def run_worker(burst: bool = False, name: str | None = None) -> int:
    from api.queue.tasks import worker_engine

    settings = get_settings()
    queue = settings.queue
    if not queue.redis_url:
        raise SystemExit("error: set AZR_REDIS_URL (e.g. redis://127.0.0.1:6379/0) to run a worker")
    redis = Redis.from_url(queue.redis_url)
    engine = worker_engine()  # warm the sandboxes before taking jobs
    failures = _self_test(engine)
    if failures:
        log.critical("sandbox self-test FAILED, refusing to serve: %s", "; ".join(failures))
        return 2
    _start_metrics_server(settings)
    grace_s = settings.worker.heartbeat_grace_s
    VerificationWorker.heartbeat_grace_s = grace_s
    worker = VerificationWorker(
        [Queue(queue.queue_name, connection=redis)],
        connection=redis,
        name=name or f"{socket.gethostname()}-{os.getpid()}",
        job_monitoring_interval=2,
        worker_ttl=max(20, 2 * grace_s),  # short blocking dequeues: maintenance runs often
        maintenance_interval=settings.worker.maintenance_s,
    )
    log.info("worker %s serving queue %s", worker.name, queue.queue_name)
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
