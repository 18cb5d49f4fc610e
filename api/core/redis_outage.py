"""Riding out a Redis outage in queue mode: what counts as one, waiting for Redis, and
retrying a write that must not be lost (a finished job's result) until Redis is back."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

# Redis is down, restarting, or does not answer in time (redis-py's TimeoutError is not a
# ConnectionError). Anything else from Redis is a bug, not an outage.
REDIS_DOWN: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError)

# What the API tells a client to wait while Redis is down (a restart with AOF takes seconds).
RETRY_AFTER_S = 5

T = TypeVar("T")


def redis_answers(redis: Redis) -> bool:
    try:
        return bool(redis.ping())
    except REDIS_DOWN:
        return False


def wait_for_redis(redis: Redis, first_s: float = 0.1, most_s: float = 1.0) -> None:
    """Block until Redis answers a PING, backing off (a signal handler may raise meanwhile)."""
    delay = first_s
    while not redis_answers(redis):
        time.sleep(delay)
        delay = min(delay * 2, most_s)


def through_outage(what: str, action: Callable[[], T], patience_s: float, pause_s: float = 0.5) -> T:
    """`action()`, retried while Redis is unreachable, for at most `patience_s`; then the
    last error is raised. For writes whose loss costs work (a computed result) and that are
    safe to repeat."""
    deadline = time.monotonic() + patience_s
    warned = False
    while True:
        try:
            return action()
        except REDIS_DOWN as exc:
            if time.monotonic() >= deadline:
                raise
            if not warned:
                log.warning("%s: Redis unreachable (%s); retrying until it is back", what, exc)
                warned = True
            time.sleep(pause_s)
            pause_s = min(pause_s * 2, 5.0)
