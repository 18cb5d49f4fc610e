"""Test helpers: the real service and Redis as local processes (see bench/local_stack.py)."""

from bench.local_stack import (  # noqa: F401
    Service,
    free_port,
    persistent_redis,
    redis_answers,
    running_service,
    wait_http,
)
