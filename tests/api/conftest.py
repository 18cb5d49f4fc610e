from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import Service, redis_answers, running_service

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def embedded() -> Iterator[Service]:
    """A real `azr-exec serve` in the embedded default (no Redis)."""
    with running_service() as service:
        yield service


@pytest.fixture(scope="session")
def redis_url() -> str:
    if not redis_answers(REDIS_URL):
        pytest.skip(f"LOUD SKIP: no Redis answers at {REDIS_URL}; `make test` starts one")
    return REDIS_URL


@pytest.fixture(scope="module")
def queued(redis_url: str) -> Iterator[Service]:
    """A real API in queue mode with two real `azr-exec worker` processes."""
    with running_service(workers=2, AZR_REDIS_URL=redis_url, AZR_WORKER_HEARTBEAT_GRACE_S="3") as service:
        yield service
