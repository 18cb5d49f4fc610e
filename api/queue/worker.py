"""`azr-exec worker`: an RQ worker that keeps a warm sandbox pool and executes verification chunks."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from rq import Queue, SimpleWorker, worker_registration
from rq.exceptions import StopRequested
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job
from rq.worker import WorkerStatus
from rq.worker_registration import WORKERS_BY_QUEUE_KEY

from api.core.redis_outage import REDIS_DOWN, redis_answers, through_outage, wait_for_redis
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
    # How long a finished job's result waits for Redis to come back before the worker gives
    # up on it (the job is then re-run once Redis is back: RQ re-queues it as abandoned).
    outage_patience_s = 600.0
    # RQ's idle loop backs off up to 60 s between reconnection attempts; a worker should be
    # back within a second or two of Redis.
    max_connection_wait_time = 2.0
    stop_requested = False

    _registration_checked = 0.0

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        super().heartbeat(timeout, pipeline)
        if time.monotonic() - self._registration_checked >= self.heartbeat_grace_s:
            self._registration_checked = time.monotonic()
            self.keep_registered()

    def keep_registered(self) -> None:
        """Register again if Redis lost this worker's registration. During a job the worker's
        key lives only `get_heartbeat_ttl` seconds, so a Redis outage longer than that expires
        it; RQ's maintenance then drops the worker from the registry, and the worker would go
        on taking jobs unseen by /readyz, `azr_workers` and the chunk sizing."""
        queues = [WORKERS_BY_QUEUE_KEY % name for name in self.queue_names()]
        try:
            with self.connection.pipeline(transaction=False) as pipe:
                pipe.hexists(self.key, "birth")
                for key in queues:
                    pipe.sismember(key, self.key)
                born, *listed = pipe.execute()
            if born and all(listed):
                return
            log.warning("worker %s: its registration was lost (a Redis outage); registering again", self.name)
            with self.connection.pipeline() as pipe:
                pipe.hset(self.key, mapping=self.serialize())
                worker_registration.register(self, pipe)
                pipe.expire(self.key, self.worker_ttl + 60)
                pipe.execute()
        except REDIS_DOWN as exc:  # checked again at a later heartbeat
            log.warning("worker %s: registration check failed: %s", self.name, exc)

    def request_stop(self, signum: Any, frame: Any) -> None:
        self.stop_requested = True  # SIGTERM/SIGINT: `run_worker` must not start another loop
        super().request_stop(signum, frame)

    # A job that ran through a Redis outage: its end (a heartbeat) and its result are written
    # once Redis is back, rather than lost with the connection; both writes are safe to repeat.
    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        through_outage(
            f"ending job {job.id}",
            lambda: super(VerificationWorker, self).handle_execution_ended(job, queue, heartbeat_ttl),
            self.outage_patience_s,
        )

    def handle_job_success(self, job: Job, queue: Queue, *args: Any, **kwargs: Any) -> None:
        through_outage(
            f"saving the result of job {job.id}",
            lambda: super(VerificationWorker, self).handle_job_success(job, queue, *args, **kwargs),
            self.outage_patience_s,
        )

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
    VerificationWorker.heartbeat_grace_s = settings.worker.heartbeat_grace_s
    try:
        return _work_through_outages(settings, redis, name or f"{socket.gethostname()}-{os.getpid()}", burst)
    finally:
        engine.close()


# A work loop that ends this often within a minute while Redis answers is a bug, not an outage.
MAX_QUICK_RESTARTS = 5


def _work_through_outages(settings: Settings, redis: Redis, name: str, burst: bool) -> int:
    """RQ's work loop, started again (same name, same warm sandboxes) whenever it ends on a
    Redis outage: RQ quits its loop on a lost connection or a timeout. The process stays up
    and waits for Redis, so an outage costs no sandbox restart and needs no supervisor."""
    grace_s = settings.worker.heartbeat_grace_s
    quick: list[float] = []  # loop ends while Redis answered
    while True:
        worker = VerificationWorker(
            [Queue(settings.queue.queue_name, connection=redis)],
            connection=redis,
            name=name,
            job_monitoring_interval=2,
            worker_ttl=max(20, 2 * grace_s),  # short blocking dequeues: maintenance runs often
            maintenance_interval=settings.worker.maintenance_s,
        )
        log.info("worker %s serving queue %s", worker.name, settings.queue.queue_name)
        torn_down = True
        try:
            worker.work(burst=burst, with_scheduler=False, logging_level="INFO")
        except REDIS_DOWN as exc:  # RQ's teardown (register_death) needs Redis too
            log.warning("worker %s: Redis lost at teardown: %s", name, exc)
            torn_down = False
        if burst or worker.stop_requested:
            return 0
        outage = not torn_down or not redis_answers(redis)
        try:
            log.warning("worker %s: work loop ended without a stop request; waiting for Redis", name)
            wait_for_redis(redis)
            if not torn_down:
                _retire(worker)
        except StopRequested:  # SIGTERM while waiting: RQ's handler is still installed
            return 0
        if not outage:
            now = time.monotonic()
            quick = [t for t in quick if now - t < 60] + [now]
            if len(quick) > MAX_QUICK_RESTARTS:
                log.error("worker %s: work loop ended %d times in a minute; exiting", name, len(quick))
                return 1
        log.info("worker %s: Redis answers; resuming", name)


def _retire(worker: VerificationWorker) -> None:
    """What RQ's teardown could not do while Redis was down: mark the old registration dead
    (so the name can register again) and let its pub/sub thread go (it closes its own
    connection when it ends; RQ's teardown would wait up to a minute for it)."""
    through_outage(f"retiring worker {worker.name}", worker.register_death, patience_s=60)
    if worker.pubsub_thread is not None:
        worker.pubsub_thread.stop(timeout=0)


def _self_test(engine: object) -> list[str]:
    try:
        from executor.sandbox.selftest import self_test
    except ImportError:
        return []
    return list(self_test(engine.pool))  # type: ignore[attr-defined]
