"""Where verification work runs: in this process (embedded) or on RQ workers (queue mode)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from api import audit, metrics
from api.core.redis_outage import REDIS_DOWN, RETRY_AFTER_S
from api.services.execution import Payload, execute, execute_async, is_small, items_of, with_items
from executor.engine import Engine
from executor.settings import Settings, variable

log = logging.getLogger(__name__)


class Overloaded(Exception):
    """More work is queued than the service can finish; the caller should retry later."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BackendUnavailable(Exception):
    """The queue's store (Redis) does not answer: nothing was accepted; retry later."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DeadlineExceeded(Exception):
    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id


class JobView(dict[str, Any]):
    """{'job_id', 'kind', 'status', 'results'?, 'detail'}"""


class Backend(Protocol):
    mode: str

    def start(self) -> None: ...

    def close(self) -> None: ...

    async def run(self, payload: Payload) -> list[dict[str, Any]]: ...

    async def submit(self, payload: Payload) -> str: ...

    async def job(self, job_id: str) -> JobView | None: ...

    def readiness(self) -> tuple[bool, dict[str, Any]]: ...


def make_engine(settings: Settings, cache: Any | None = None) -> Engine:
    """The engine of this process, on the sandbox backend the settings name (local or docker)."""
    return Engine(settings, cache=metrics.CountingCache(cache) if cache is not None else None)


# ----------------------------------------------------------------------------- embedded


DOWNGRADE_SETTING = variable("sandbox.allow_missing")


def confinement_view(zygotes: list[dict[str, Any]]) -> dict[str, Any]:
    """What confines the children (the first zygote's layers; all zygotes share one setup),
    and any layer a zygote runs without because the downgrade setting allows it."""
    first = zygotes[0] if zygotes else {}
    downgraded = sorted({layer for info in zygotes for layer in info.get("downgraded", ())})
    view: dict[str, Any] = {"layers": first.get("layers", {}), "downgraded": downgraded}
    if downgraded:
        view["downgraded_by"] = f"{DOWNGRADE_SETTING}='{json.dumps(downgraded)}'"
    return view


def log_downgrades(zygotes: list[dict[str, Any]]) -> None:
    view = confinement_view(zygotes)
    if view["downgraded"]:
        log.warning(
            "sandbox running WITHOUT %s (allowed by %s)", ", ".join(view["downgraded"]), view["downgraded_by"]
        )


class EmbeddedBackend:
    """The engine and its sandbox pool in the API process; async jobs in a bounded in-memory store."""

    mode = "embedded"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        from executor.cache import MemoryCache

        self.engine = make_engine(
            settings, MemoryCache(settings.cache.entries, int(settings.cache.max_mb * 2**20))
        )
        self._threads = ThreadPoolExecutor(max_workers=8, thread_name_prefix="engine")
        self._jobs: OrderedDict[str, tuple[str, Future[list[dict[str, Any]]]]] = OrderedDict()
        self._lock = threading.Lock()
        self._inflight = 0

    def start(self) -> None:
        self.engine.start()
        pool = self.engine.pool
        from executor.sandbox.selftest import self_test

        failures = self_test(pool)
        if failures:
            self.engine.close()
            raise RuntimeError("sandbox self-test FAILED, refusing to serve: " + "; ".join(failures))
        log_downgrades(pool.zygote_info())
        metrics.LIVE.sources.append(
            lambda: [
                ("azr_sandboxes", "Sandbox zygotes by state.", {"state": "busy"}, float(pool.busy)),
                (
                    "azr_sandboxes",
                    "Sandbox zygotes by state.",
                    {"state": "idle"},
                    float(pool.size - pool.busy),
                ),
                ("azr_inflight_tasks", "Tasks being judged right now.", {}, float(self._inflight)),
                ("azr_workers", "Executor workers serving this API.", {}, 1.0),
                ("azr_queue_depth", "Chunks waiting in the queue.", {}, 0.0),
            ]
        )

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        self.engine.close()

    def _admit(self, payload: Payload) -> int:
        count = len(items_of(payload))
        with self._lock:
            bound = self.settings.api.max_inflight_executions
            if self._inflight + count > bound:
                raise Overloaded(
                    f"{self._inflight} tasks are in flight; the bound is {bound}",
                    retry_after_s=2,
                )
            self._inflight += count
        return count

    def _run_counted(self, payload: Payload, count: int) -> list[dict[str, Any]]:
        try:
            return execute(self.engine, payload)
        finally:
            with self._lock:
                self._inflight -= count

    async def run(self, payload: Payload) -> list[dict[str, Any]]:
        count = self._admit(payload)
        if is_small(payload):
            try:
                return await execute_async(self.engine, payload)
            finally:
                with self._lock:
                    self._inflight -= count
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._run_counted, payload, count)

    async def submit(self, payload: Payload) -> str:
        count = self._admit(payload)
        job_id = uuid.uuid4().hex
        future = self._threads.submit(self._run_counted, payload, count)
        with self._lock:
            self._jobs[job_id] = (payload["kind"], future)
            while len(self._jobs) > 10_000:
                self._jobs.popitem(last=False)
        return job_id

    async def job(self, job_id: str) -> JobView | None:
        with self._lock:
            entry = self._jobs.get(job_id)
        if entry is None:
            return None
        kind, future = entry
        view = JobView(job_id=job_id, kind=kind, status="queued", detail="")
        if future.done():
            error = future.exception()
            if error is not None:
                view.update(status="failed", detail=f"{type(error).__name__}: {error}")
            else:
                view.update(status="finished", results=future.result())
        elif future.running():
            view["status"] = "running"
        return view

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        pool = self.engine.pool
        healthy = pool.healthy()
        zygotes = pool.zygote_info()
        return healthy, {
            "mode": self.mode,
            "sandboxes": pool.size,
            "busy": pool.busy,
            "healthy": healthy,
            **confinement_view(zygotes),
        }


# ----------------------------------------------------------------------------- queue


def chunk_sizes(count: int, workers: int, settings: Settings) -> int:
    """Chunk size so a batch spreads over every worker (about 4 chunks each), within bounds."""
    target = math.ceil(count / max(1, workers * 4))
    queue = settings.queue
    return max(queue.chunk_min_tasks, min(queue.chunk_max_tasks, target))


REDIS_CONNECT_TIMEOUT_S = 2.0
REDIS_SOCKET_TIMEOUT_S = 5.0


def _unavailable(exc: Exception) -> BackendUnavailable:
    return BackendUnavailable(
        f"the job queue (Redis) is unreachable: {exc}; nothing was accepted, retry", RETRY_AFTER_S
    )


class QueueBackend:
    """Splits a request into RQ jobs; workers on any host execute them; results are gathered here."""

    mode = "queue"

    def __init__(self, settings: Settings) -> None:
        from redis import Redis
        from rq import Queue

        assert settings.queue.redis_url
        self.settings = settings
        # Timeouts: a Redis that stops answering (paused, partitioned) costs a request a few
        # seconds and a 503, never a hang.
        self.redis = Redis.from_url(
            settings.queue.redis_url,
            health_check_interval=10,
            decode_responses=False,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
            socket_timeout=REDIS_SOCKET_TIMEOUT_S,
        )
        self.queue = Queue(settings.queue.queue_name, connection=self.redis)
        self._last_cleanup = 0.0

    def start(self) -> None:
        def live() -> list[tuple[str, str, dict[str, str], float]]:
            return [
                ("azr_queue_depth", "Chunks waiting in the queue.", {}, float(self.queue.count)),
                ("azr_workers", "Executor workers serving this API.", {}, float(self._worker_count())),
            ]

        metrics.LIVE.sources.append(live)

    def close(self) -> None:
        self.redis.close()

    # -- helpers
    def _worker_count(self) -> int:
        from rq import Worker

        return int(Worker.count(connection=self.redis, queue=self.queue))

    def _workers(self) -> int:
        """Workers to spread a batch over (at least one, so chunking never divides by zero)."""
        try:
            return max(1, self._worker_count())
        except Exception:  # noqa: BLE001
            return 1

    def _enqueue(self, payload: Payload) -> str:
        from rq import Retry

        depth = self.queue.count
        bound = self.settings.queue.max_queue_depth
        if depth >= bound:
            raise Overloaded(
                f"the queue holds {depth} chunks; the bound is {bound} ({variable('queue.max_queue_depth')})",
                retry_after_s=5,
            )
        items = items_of(payload)
        size = chunk_sizes(len(items), self._workers(), self.settings)
        queue = self.settings.queue
        request_id = uuid.uuid4().hex
        job_ids = []
        with self.redis.pipeline() as pipe:
            for start in range(0, len(items), size):
                job_id = f"{request_id}-{start // size}"
                self.queue.enqueue(
                    "api.queue.tasks.execute_chunk",
                    with_items(payload, items[start : start + size]),
                    job_id=job_id,
                    result_ttl=queue.job_result_ttl_s,
                    failure_ttl=queue.job_failure_ttl_s,
                    ttl=queue.job_result_ttl_s,
                    job_timeout=int(self.settings.api.request_deadline_s * 2),
                    retry=Retry(max=queue.job_retries) if queue.job_retries else None,
                    pipeline=pipe,
                )
                job_ids.append(job_id)
            pipe.hset(
                f"azr:request:{request_id}",
                mapping={
                    "kind": payload["kind"],
                    "jobs": ",".join(job_ids),
                    "size": size,
                    "created": time.time(),
                },
            )
            pipe.expire(f"azr:request:{request_id}", queue.job_result_ttl_s)
            pipe.execute()
        return request_id

    def _cleanup_abandoned(self) -> None:
        """Re-queue chunks whose worker died (RQ's StartedJobRegistry cleanup honours retries)."""
        if time.monotonic() - self._last_cleanup < 1.0:
            return
        self._last_cleanup = time.monotonic()
        try:
            self.queue.started_job_registry.cleanup()
        except Exception as exc:  # noqa: BLE001
            log.warning("started-registry cleanup failed: %s", exc)

    def _chunk_statuses(self, job_ids: list[str]) -> list[str | None]:
        """Each chunk's RQ status (None: expired or lost), in one round trip and without
        fetching payloads or results: a waiting request polls this until every chunk is done."""
        from rq.job import Job

        with self.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hget(Job.key_for(job_id), "status")
            raw = pipe.execute()
        return [value.decode() if value is not None else None for value in raw]

    def _gather(self, request_id: str, forget: bool = False) -> JobView | None:
        """The request's state, with its results once every chunk finished. `forget`: then
        delete its chunks and record from Redis (a synchronous request, whose id never left
        the API: nobody can ask for it again, so it need not wait out AZR_JOB_RESULT_TTL_S)."""
        from rq.job import Job, JobStatus

        meta: dict[bytes, bytes] = self.redis.hgetall(f"azr:request:{request_id}")  # type: ignore[assignment]
        if not meta:
            return None
        kind = meta[b"kind"].decode()
        job_ids = meta[b"jobs"].decode().split(",")
        statuses = []
        failed_detail = ""
        for job_id, status in zip(job_ids, self._chunk_statuses(job_ids), strict=True):
            if status is None:
                statuses.append("failed")
                failed_detail = f"chunk {job_id} expired or was lost"
            elif status == JobStatus.FINISHED.value:
                statuses.append("finished")
            elif status in (JobStatus.FAILED.value, JobStatus.STOPPED.value, JobStatus.CANCELED.value):
                statuses.append("failed")
                failed_detail = f"chunk {job_id} failed after retries"
            elif status == JobStatus.STARTED.value:
                statuses.append("running")
            else:
                statuses.append("queued")
        view = JobView(job_id=request_id, kind=kind, detail=failed_detail)
        if all(s == "finished" for s in statuses):
            # Every chunk is done: fetch the results, once.
            results: list[dict[str, Any]] = []
            jobs = Job.fetch_many(job_ids, connection=self.redis)
            for job_id, job in zip(job_ids, jobs, strict=True):
                if job is None or job.get_status(refresh=False) != JobStatus.FINISHED:
                    view.update(status="failed", detail=f"chunk {job_id} expired or was lost")
                    return view
                results.extend(job.return_value(refresh=False) or [])
            view.update(status="finished", results=results)
            if forget:
                self._delete(request_id, [job for job in jobs if job is not None])
        elif "queued" not in statuses and "running" not in statuses:
            view["status"] = "failed"
        elif "running" in statuses or "finished" in statuses:
            view["status"] = "running"
        else:
            view["status"] = "queued"
        return view

    # -- Backend
    async def run(self, payload: Payload) -> list[dict[str, Any]]:
        request_id = await self.submit(payload)
        deadline = time.monotonic() + self.settings.api.request_deadline_s
        # A poll is one pipelined round trip of chunk statuses (results are fetched once, at
        # the end), so a short first wait costs little and saves a small request most of it.
        delay = 0.001
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 1.3, 0.025)
            try:
                view = await asyncio.to_thread(self._poll, request_id, True)
            except REDIS_DOWN as exc:  # accepted: wait for Redis to come back
                log.warning("redis unavailable while waiting for %s: %s", request_id, exc)
                delay = 0.5
                continue
            if view is None:
                raise DeadlineExceeded(request_id)
            if view["status"] == "finished":
                return list(view["results"])
            if view["status"] == "failed":
                return self._fill_failed(request_id, payload)
        raise DeadlineExceeded(request_id)

    def _poll(self, request_id: str, forget: bool = False) -> JobView | None:
        self._cleanup_abandoned()
        return self._gather(request_id, forget)

    def _delete(self, request_id: str, jobs: list[Any]) -> None:
        """Best effort: what is left expires with its TTL anyway."""
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for job in jobs:
                    job.delete(pipeline=pipe, remove_from_queue=False)
                pipe.delete(f"azr:request:{request_id}")
                pipe.execute()
        except REDIS_DOWN as exc:
            log.debug("could not delete the finished request %s: %s", request_id, exc)

    def _fill_failed(self, request_id: str, payload: Payload) -> list[dict[str, Any]]:
        """Chunks that failed after every retry: their tasks get `sandbox_error` verdicts."""
        from rq.job import Job, JobStatus

        meta: dict[bytes, bytes] = self.redis.hgetall(f"azr:request:{request_id}")  # type: ignore[assignment]
        job_ids = meta[b"jobs"].decode().split(",")
        items = items_of(payload)
        size = int(meta[b"size"])
        results: list[dict[str, Any]] = []
        for index, job in enumerate(Job.fetch_many(job_ids, connection=self.redis)):
            if job is not None and job.get_status(refresh=False) == JobStatus.FINISHED:
                results.extend(job.return_value(refresh=False) or [])
                continue
            chunk = items[index * size : (index + 1) * size]
            for item in chunk:
                base = {
                    "id": item["id"],
                    "verdict": "sandbox_error",
                    "detail": "the executor failed after retries",
                }
                if payload["kind"] == "validate":
                    n = len(item["inputs"])
                    results.append(
                        base
                        | {"valid": False, "outputs": [None] * n, "input_verdicts": ["sandbox_error"] * n}
                    )
                else:
                    results.append(base | {"correct": False})
        failed = [r for r in results if r["verdict"] == "sandbox_error"]
        metrics.record_results(payload["kind"], (r["verdict"] for r in failed))
        audit.record(payload, failed)
        return results

    async def submit(self, payload: Payload) -> str:
        try:
            return await asyncio.to_thread(self._enqueue, payload)
        except REDIS_DOWN as exc:
            raise _unavailable(exc) from exc

    async def job(self, job_id: str) -> JobView | None:
        try:
            return await asyncio.to_thread(self._poll, job_id)
        except REDIS_DOWN as exc:
            raise _unavailable(exc) from exc

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        try:
            self.redis.ping()
            workers = self._worker_count()
            depth = self.queue.count
        except Exception as exc:  # noqa: BLE001
            return False, {"mode": self.mode, "redis": f"unreachable: {exc}"}
        return workers > 0, {"mode": self.mode, "redis": "ok", "workers": workers, "queue_depth": depth}


def make_backend(settings: Settings) -> Backend:
    if settings.queue.redis_url:
        return QueueBackend(settings)
    return EmbeddedBackend(settings)
