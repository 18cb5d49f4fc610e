"""RQ job functions, run by `azr-exec worker` processes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from api import metrics
from api.services.execution import Payload, execute
from executor.engine import Engine
from executor.settings import get_settings

_engine: Engine | None = None
_lock = threading.Lock()


def worker_engine() -> Engine:
    """One engine (and warm sandbox pool) per worker process, created on first use."""
    global _engine
    with _lock:
        if _engine is None:
            from redis import Redis

            from api.queue.redis_cache import RedisCache
            from api.services.backends import make_engine

            settings = get_settings()
            assert settings.queue.redis_url, "a worker needs AZR_REDIS_URL"
            cache_url = settings.cache.redis_url or settings.queue.redis_url
            # Short timeouts: a cache Redis that hangs costs a miss, never a stalled worker.
            cache_redis = Redis.from_url(cache_url, socket_timeout=2.0, socket_connect_timeout=2.0)
            cache = RedisCache(cache_redis, settings.cache.ttl_s)
            _engine = make_engine(settings, cache)
            _engine.start()
        return _engine


def execute_chunk(payload: Payload) -> list[dict[str, Any]]:
    from rq import get_current_job

    job = get_current_job()
    if job is not None and job.enqueued_at is not None:
        enqueued = job.enqueued_at if job.enqueued_at.tzinfo else job.enqueued_at.replace(tzinfo=UTC)
        metrics.QUEUE_WAIT_SECONDS.observe(max(0.0, (datetime.now(UTC) - enqueued).total_seconds()))
    return execute(worker_engine(), payload)
