"""Queue mode: audit records are written by the worker to a Redis stream before the job is
acknowledged, so they survive a worker SIGKILL, and (AOF) a Redis restart."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest
from redis import Redis

from api import audit
from executor.settings import Settings
from tests.audit.conftest import RedisServer, Server, start_worker, wait_workers

pytestmark = [pytest.mark.redis, pytest.mark.slow]

SLOW = "def f(a):\n    n = 0\n    for i in range(a):\n        n += i\n    return n"


def _tasks(tag: str) -> list[dict[str, object]]:
    tasks: list[dict[str, object]] = []
    for i in range(4):
        tasks.append(
            {
                "id": f"{tag}-forbidden-{i}",
                "program": f"import ctypes\ndef f(a):\n    return a  # {tag} {i}",
                "inputs": ["1"],
            }
        )
        tasks.append({"id": f"{tag}-slow-{i}", "program": SLOW + f"  # {tag} {i}", "inputs": ["12000000"]})
    return tasks


def _audit_ids(client: httpx.Client, run: str) -> list[dict[str, object]]:
    return client.get("/v1/audit", params={"run": run, "limit": 500, "full": True}).json()["records"]


def test_records_survive_worker_sigkill_and_redis_restart(private_redis: RedisServer, tmp_path: Path) -> None:
    settings = Settings(
        queue={"redis_url": private_redis.url, "job_retries": 3, "chunk_min_tasks": 64},
        audit={"dir": str(tmp_path / "api")},
        worker={"heartbeat_grace_s": 2},
        api={"request_deadline_s": 120},
    )
    redis = Redis.from_url(private_redis.url)
    workers = [start_worker(private_redis.url)]
    try:
        wait_workers(private_redis.url, 1)
        with Server(settings) as server, httpx.Client(base_url=server.url, timeout=120) as client:
            job = client.post(
                "/v1/validate?wait=false",
                json={"tasks": _tasks("k"), "timeout_s": 20, "run": "sigkill", "step": 7},
            ).json()["job_id"]
            # kill the worker while it executes the chunk
            deadline = time.monotonic() + 60
            while client.get(f"/v1/jobs/{job}").json()["status"] != "running":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            time.sleep(0.3)
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait(10)
            assert redis.xlen(settings.audit.stream) == 0  # nothing recorded, nothing acknowledged
            workers.append(start_worker(private_redis.url))
            deadline = time.monotonic() + 90
            while (view := client.get(f"/v1/jobs/{job}").json())["status"] not in ("finished", "failed"):
                assert time.monotonic() < deadline, view
                time.sleep(0.2)
            assert view["status"] == "finished", view
            verdicts = {r["id"]: r["verdict"] for r in view["results"]}
            assert all(v == "forbidden" for k, v in verdicts.items() if "forbidden" in k)
            audit.current().flush()
            records = _audit_ids(client, "sigkill")
            items = {r["item_id"] for r in records}
            assert {f"k-forbidden-{i}" for i in range(4)} <= items, records
            assert all(r["step"] == 7 for r in records)
            stream_before = redis.xlen(settings.audit.stream)
            assert stream_before >= 4

            # Redis dies hard and comes back on the same AOF
            private_redis.kill()
            time.sleep(0.5)
            private_redis.start()
            assert Redis.from_url(private_redis.url).xlen(settings.audit.stream) == stream_before
            for proc in workers:
                if proc.poll() is None:
                    continue
            workers.append(start_worker(private_redis.url))
            wait_workers(private_redis.url, 1)
            reply = client.post(
                "/v1/validate", json={"tasks": _tasks("r")[:2], "run": "after-restart", "step": 1}
            )
            assert reply.status_code == 200, reply.text
            audit.current().flush()
            assert {"r-forbidden-0"} <= {r["item_id"] for r in _audit_ids(client, "after-restart")}
            assert {f"k-forbidden-{i}" for i in range(4)} <= {
                r["item_id"] for r in _audit_ids(client, "sigkill")
            }
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
