"""Queue mode through a Redis outage: a real redis-server (AOF on, its own port and directory)
is stopped in the middle of a load and started again. Accepted work finishes with the right
verdicts, new requests get 503 + Retry-After at once while Redis is down, and the API and the
worker processes (the same ones) carry on by themselves. `scripts/redis_outage.py` runs the
same scenario with a 30 s outage and prints its figures."""

from __future__ import annotations

import shutil
import signal
import time

import pytest

from bench.endurance.outage import AFTER, BEFORE, run_outage
from tests.servers import persistent_redis, running_service

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]


@pytest.mark.parametrize("stop_signal", ["kill", "term"])
def test_redis_outage_under_load_loses_nothing(stop_signal: str) -> None:
    report = run_outage(
        outage_s=6, workers=2, clients=4, batch=8, before_s=4, after_s=5, stop_signal=stop_signal
    )
    summary = report.table()
    assert report.accepted.get(BEFORE, 0) > 0 and report.accepted.get(AFTER, 0) > 0, summary
    # every accepted request finished, every verdict and output as computed by hand
    assert report.lost == 0, (summary, report.problems)
    assert report.finished == sum(report.accepted.values()), summary
    # while Redis was down: only 503s with Retry-After, answered at once (no hang, no 500)
    assert set(report.submit_statuses_down) == {"503"}, summary
    assert set(report.poll_statuses_down) <= {"503"}, summary
    assert report.without_retry_after_down == 0, summary
    assert report.slowest_answer_down_s < 8, summary
    assert report.server_errors == 0, summary
    # and back by themselves: the same worker processes, the API taking work again
    assert report.workers_alive == 2, summary
    assert report.first_accepted_after_s is not None and report.first_accepted_after_s < 10, summary
    assert report.all_workers_after_s is not None and report.all_workers_after_s < 15, summary
    assert report.ready_after_s is not None, summary


def test_a_worker_waiting_for_redis_stops_on_sigterm() -> None:
    """A worker that lost Redis still honours SIGTERM (a rollout during an outage): it exits
    cleanly instead of waiting for Redis forever."""
    with persistent_redis() as server:
        with running_service(workers=1, AZR_REDIS_URL=server.url) as service:
            server.crash()
            time.sleep(3)  # the worker's RQ loop has met the lost connection by now
            [worker] = service.workers
            assert worker.poll() is None, "the worker must outlive the outage"
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=60) == 0
