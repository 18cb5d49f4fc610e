"""Queue mode: real Redis, real RQ workers, real HTTP; crashes and restarts lose nothing."""

from __future__ import annotations

import os
import signal
import time
import uuid

import httpx
import pytest
import redis
from rq import Queue, Worker

from tests.api.workload import MIXED_ANSWERS, MIXED_TASKS, check_validate_results, check_verify_results
from tests.servers import Service, persistent_redis, running_service

pytestmark = pytest.mark.redis


def wait_job(service: Service, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = httpx.get(f"{service.url}/v1/jobs/{job_id}", timeout=10).json()
        if job["status"] in ("finished", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def test_mixed_batches(queued: Service) -> None:
    ready = httpx.get(queued.url + "/readyz").json()
    assert ready["mode"] == "queue" and ready["workers"] >= 1
    body = {"tasks": [t for t, _, _ in MIXED_TASKS], "timeout_s": 2}
    response = httpx.post(queued.url + "/v1/validate", json=body, timeout=120)
    assert response.status_code == 200, response.text
    check_validate_results(response.json()["results"])
    response = httpx.post(
        queued.url + "/v1/verify", json={"answers": [a for a, _, _ in MIXED_ANSWERS]}, timeout=120
    )
    check_verify_results(response.json()["results"])


def test_thousand_task_batch_spreads_over_both_workers(queued: Service) -> None:
    tasks = [
        {"id": f"t{i}", "program": f"def f(a):\n    return a * {i}", "inputs": [str(i)]} for i in range(1000)
    ]
    response = httpx.post(queued.url + "/v1/validate", json={"tasks": tasks}, timeout=300)
    results = response.json()["results"]
    assert [r["id"] for r in results] == [t["id"] for t in tasks]
    assert all(r["valid"] and r["outputs"] == [str(i * i)] for i, r in enumerate(results))
    conn = redis.Redis.from_url(queued.env["AZR_REDIS_URL"])
    workers = Worker.all(connection=conn, queue=Queue(queued.env["AZR_QUEUE_NAME"], connection=conn))
    assert len(workers) == 2
    assert all(w.successful_job_count > 0 for w in workers), [
        (w.name, w.successful_job_count) for w in workers
    ]


def _children(pid: int) -> set[int]:
    found = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as handle:
            found |= {int(p) for p in handle.read().split()}
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_worker_sigkill_mid_batch_loses_nothing(redis_url: str) -> None:
    with running_service(
        workers=2, AZR_REDIS_URL=redis_url, AZR_WORKER_HEARTBEAT_GRACE_S="2", AZR_CHUNK_MIN_TASKS="2"
    ) as service:
        nonce = uuid.uuid4().hex  # fresh programs: the shared result cache must not answer for them
        slow = f"def f(n):\n    # {nonce}\n    s = 0\n    for i in range(n):\n        s += i\n    return s"
        tasks = [{"id": f"s{i}", "program": slow, "inputs": [str(400_000 + i)]} for i in range(40)]
        accepted = httpx.post(
            service.url + "/v1/validate?wait=false", json={"tasks": tasks, "repeats": 1}, timeout=30
        )
        job_id = accepted.json()["job_id"]
        conn = redis.Redis.from_url(redis_url)
        queue = Queue(service.env["AZR_QUEUE_NAME"], connection=conn)
        deadline = time.monotonic() + 60
        victim = None
        while victim is None and time.monotonic() < deadline:
            for worker in Worker.all(connection=conn, queue=queue):
                if worker.get_current_job_id():
                    victim = worker
                    break
            time.sleep(0.02)
        assert victim is not None, "no worker picked up a chunk"
        zygotes = _children(victim.pid)
        assert zygotes, "the worker should have sandbox zygotes"
        os.kill(victim.pid, signal.SIGKILL)
        job = wait_job(service, job_id, timeout=120)
        assert job["status"] == "finished", job
        assert [r["id"] for r in job["results"]] == [t["id"] for t in tasks]
        assert all(
            r["valid"] and r["outputs"] == [str(sum(range(400_000 + i)))]
            for i, r in enumerate(job["results"])
        )
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in zygotes) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(p) for p in zygotes), "the dead worker's zygotes must exit"


def test_flooded_queue_answers_429_with_retry_after(redis_url: str) -> None:
    with running_service(
        workers=0, wait_ready=False, AZR_REDIS_URL=redis_url, AZR_MAX_QUEUE_DEPTH="3"
    ) as service:
        body = {"tasks": [{"id": "t", "program": "def f(a):\n    return a", "inputs": ["1"]}]}
        codes = [httpx.post(service.url + "/v1/validate?wait=false", json=body, timeout=10) for _ in range(5)]
        assert [c.status_code for c in codes[:3]] == [202, 202, 202]
        rejected = codes[3]
        assert rejected.status_code == 429
        assert int(rejected.headers["Retry-After"]) > 0
        assert "AZR_MAX_QUEUE_DEPTH" in rejected.json()["detail"]
        assert httpx.get(service.url + "/readyz").status_code == 503  # no workers yet
        conn = redis.Redis.from_url(redis_url)
        Queue(service.env["AZR_QUEUE_NAME"], connection=conn).empty()


def test_redis_restart_between_enqueue_and_execution_loses_nothing() -> None:
    with persistent_redis() as server:
        with running_service(workers=0, wait_ready=False, AZR_REDIS_URL=server.url) as service:
            body = {"tasks": [t for t, _, _ in MIXED_TASKS], "timeout_s": 2}
            accepted = httpx.post(service.url + "/v1/validate?wait=false", json=body, timeout=30)
            assert accepted.status_code == 202
            job_id = accepted.json()["job_id"]
            server.crash()  # SIGKILL: only the append-only file keeps the queue
            server.start()
            service.add_worker()
            job = wait_job(service, job_id)
            assert job["status"] == "finished", job
            check_validate_results(job["results"])


def test_job_stranded_between_dequeue_and_start_is_rescued(redis_url: str) -> None:
    """A worker killed right after taking a chunk off the queue leaves it in RQ's intermediate
    queue; the surviving workers' maintenance must re-queue it (within the heartbeat grace)."""
    with running_service(
        workers=0,
        wait_ready=False,
        AZR_REDIS_URL=redis_url,
        AZR_WORKER_HEARTBEAT_GRACE_S="2",
        AZR_WORKER_MAINTENANCE_S="1",
    ) as service:
        body = {
            "tasks": [
                {"id": "x", "program": f"def f(a):\n    return a  # {uuid.uuid4().hex}", "inputs": ["7"]}
            ]
        }
        job_id = httpx.post(service.url + "/v1/validate?wait=false", json=body, timeout=30).json()["job_id"]
        conn = redis.Redis.from_url(redis_url)
        queue = Queue(service.env["AZR_QUEUE_NAME"], connection=conn)
        stranded = conn.lmove(
            queue.key, queue.intermediate_queue_key, "RIGHT", "LEFT"
        )  # what a dying worker leaves
        assert stranded is not None and queue.count == 0
        service.add_worker()
        job = wait_job(service, job_id, timeout=90)
        assert job["status"] == "finished", job
        assert job["results"][0]["outputs"] == ["7"]


def test_the_result_cache_can_live_in_a_redis_of_its_own(redis_url: str) -> None:
    """AZR_CACHE_REDIS_URL: the workers' result cache goes there (a Redis with maxmemory and
    allkeys-lru in the manifests), and none of it into the queue's Redis."""
    program = f"def f(x):\n    return x * 3  # {uuid.uuid4().hex}"
    body = {"tasks": [{"id": "c", "program": program, "inputs": ["1", "2"]}]}
    with persistent_redis() as cache_redis:
        with running_service(
            workers=1, AZR_REDIS_URL=redis_url, AZR_CACHE_REDIS_URL=cache_redis.url
        ) as service:
            first = httpx.post(service.url + "/v1/validate", json=body, timeout=60).json()["results"][0]
            second = httpx.post(service.url + "/v1/validate", json=body, timeout=60).json()["results"][0]
        assert first["outputs"] == second["outputs"] == ["3", "6"]
        keys = redis.Redis.from_url(cache_redis.url).keys("azr:cache:*")
        assert len(keys) == 2  # one per input
        assert redis.Redis.from_url(redis_url).exists(*keys) == 0


def test_a_synchronous_request_leaves_nothing_in_the_queue_redis() -> None:
    """Once /v1/validate or /v1/verify answered, their chunks and record are deleted: only a
    `wait=false` job keeps its results for AZR_JOB_RESULT_TTL_S (the queue's Redis would otherwise
    hold an hour of traffic)."""
    body = {
        "tasks": [
            {"id": f"t{i}", "program": "def f(x):\n    return -x", "inputs": [str(i)]} for i in range(40)
        ]
    }
    with persistent_redis() as server:
        with running_service(workers=1, AZR_REDIS_URL=server.url) as service:
            for _ in range(3):
                response = httpx.post(service.url + "/v1/validate", json=body, timeout=60)
                assert response.status_code == 200 and len(response.json()["results"]) == 40
            submitted = httpx.post(service.url + "/v1/validate?wait=false", json=body, timeout=60)
            assert submitted.status_code == 202, submitted.text
            job_id = submitted.json()["job_id"]
            for _ in range(200):
                view = httpx.get(f"{service.url}/v1/jobs/{job_id}", timeout=10).json()
                if view["status"] == "finished":
                    break
                time.sleep(0.05)
            assert view["status"] == "finished"
            again = httpx.get(f"{service.url}/v1/jobs/{job_id}", timeout=10).json()
            assert again["status"] == "finished"  # an async job's results stay for its TTL
        client = redis.Redis.from_url(server.url)
        records = client.keys("azr:request:*")
        assert [r.decode() for r in records] == [f"azr:request:{job_id}"]
        jobs = {k.decode() for k in client.keys("rq:job:*")}
        assert jobs and all(key.startswith(f"rq:job:{job_id}-") for key in jobs), jobs
