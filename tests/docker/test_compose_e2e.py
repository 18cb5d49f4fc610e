"""End to end: the docker-compose stack up, a 1,000-task batch through the API while the
workers scale 1 -> 3 -> 1, every verdict back, nothing left behind; the workers' result cache
in `redis-cache` (a bounded LRU Redis), not in the queue's `redis`.

Needs Docker, docker-compose and the images from sandbox_images/build; skips loudly otherwise.
Slow (about two minutes on 2 cores): marked e2e and slow as well as docker.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
PROJECT = f"azre2e{os.getpid()}"
IMAGES = ("azr/service:latest", "azr/sandbox:latest", "azr/redis:latest", "azr/prometheus:latest")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _compose(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    command = shutil.which("docker-compose")
    assert command
    return subprocess.run(
        [command, "-p", PROJECT, "-f", str(REPO / "docker-compose.yml"), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def stack(docker_client: Any):
    if not shutil.which("docker-compose"):
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    build = REPO / "sandbox_images" / "build"
    if build.exists() and os.environ.get("AZR_TEST_NO_IMAGE_BUILD") != "1":
        # Cached: a few seconds when nothing changed; rebuilds what the checkout changed.
        built = subprocess.run(
            [str(build)],
            env=dict(os.environ, AZR_SKIP_ENSURE_DOCKER="1"),
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        assert built.returncode == 0, built.stderr[-3000:]
    for image in IMAGES:
        try:
            docker_client.images.get(image)
        except Exception:  # noqa: BLE001
            pytest.skip(f"image {image} is missing: run sandbox_images/build")
    api_port, prom_port = _free_port(), _free_port()
    env = dict(os.environ, AZR_API_PORT=str(api_port), AZR_PROMETHEUS_PORT=str(prom_port))
    up = _compose("up", "-d", env=env)
    assert up.returncode == 0, up.stderr
    base = f"http://127.0.0.1:{api_port}"
    try:
        _wait_ready(base, workers=1)
        yield {"base": base, "env": env, "prometheus": f"http://127.0.0.1:{prom_port}"}
    finally:
        workers = _worker_container_ids(docker_client)
        logs = _compose("logs", "--tail", "40", "worker", env=env)
        down = _compose("down", "-v", "--remove-orphans", "-t", "60", env=env)
        assert down.returncode == 0, down.stderr
        left = [
            c.name
            for c in docker_client.containers.list(all=True, filters={"label": "azr.sandbox=1"})
            if c.labels.get("azr.owner.container") in workers
        ]
        assert left == [], f"sandbox containers left behind: {left}\n{logs.stdout[-3000:]}"


def _worker_container_ids(client: Any) -> set[str]:
    found = client.containers.list(
        all=True,
        filters={"label": [f"com.docker.compose.project={PROJECT}", "com.docker.compose.service=worker"]},
    )
    return {c.id for c in found}


def _wait_ready(base: str, workers: int, timeout: float = 120) -> dict[str, Any]:
    import httpx

    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            reply = httpx.get(f"{base}/readyz", timeout=5)
            last = reply.json()
            if reply.status_code == 200 and int(last.get("workers", 0)) == workers:
                return last
        except (httpx.HTTPError, ValueError) as exc:
            last = repr(exc)
        time.sleep(1)
    raise AssertionError(f"the stack did not reach {workers} ready worker(s): {last}")


def _tasks(count: int, prefix: str) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    tasks, expected = [], {}
    for i in range(count):
        k = i % 97
        task_id = f"{prefix}{i}"
        if i % 50 == 7:
            tasks.append(
                {"id": task_id, "program": "import os\ndef f(x):\n    return os.getcwd()", "inputs": ["1"]}
            )
            expected[task_id] = ["forbidden"]
        else:
            tasks.append(
                {
                    "id": task_id,
                    "program": f"def f(x):\n    return [x * {k}, {i}]",
                    "inputs": [str(i), f"'{k}'"],
                }
            )
            expected[task_id] = [repr([i * k, i]), repr([str(k) * k, i])]
    return tasks, expected


def _check(results: list[dict[str, Any]], expected: dict[str, list[str]]) -> None:
    assert len(results) == len(expected)
    for result in results:
        want = expected[result["id"]]
        assert result["verdict"] != "sandbox_error", result
        if want == ["forbidden"]:
            assert result["verdict"] == "forbidden", result
        else:
            assert result["valid"] and result["outputs"] == want, result


def test_batch_through_the_api_while_workers_scale(stack: dict[str, Any], docker_client: Any) -> None:
    import httpx

    base, env = stack["base"], stack["env"]
    big, big_expected = _tasks(1000, "b")
    client = httpx.Client(base_url=base, timeout=300)
    reply = client.post("/v1/validate?wait=false", json={"tasks": big, "repeats": 2})
    assert reply.status_code == 202, reply.text
    job_id = reply.json()["job_id"]

    # Smaller synchronous requests keep flowing while the workers scale.
    flowing_errors: list[str] = []
    flowed = 0
    stop = threading.Event()

    def flow() -> None:
        nonlocal flowed
        with httpx.Client(base_url=base, timeout=300) as flow_client:
            round_ = 0
            while not stop.is_set():
                tasks, expected = _tasks(40, f"s{round_}-")
                round_ += 1
                try:
                    answer = flow_client.post("/v1/validate", json={"tasks": tasks})
                    if answer.status_code != 200:
                        flowing_errors.append(f"{answer.status_code} {answer.text[:200]}")
                        continue
                    _check(answer.json()["results"], expected)
                    flowed += len(tasks)
                except Exception as exc:  # noqa: BLE001
                    flowing_errors.append(repr(exc))

    thread = threading.Thread(target=flow)
    thread.start()
    try:
        up = _compose("up", "-d", "--no-recreate", "--scale", "worker=3", env=env)
        assert up.returncode == 0, up.stderr
        _wait_ready(base, workers=3)
        time.sleep(3)
        down = _compose("up", "-d", "--no-recreate", "--scale", "worker=1", env=env, timeout=400)
        assert down.returncode == 0, down.stderr
        _wait_ready(base, workers=1)
        time.sleep(2)
    finally:
        stop.set()
        thread.join(timeout=600)

    deadline = time.monotonic() + 600
    while True:
        view = client.get(f"/v1/jobs/{job_id}").json()
        if view["status"] in ("finished", "failed") or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert view["status"] == "finished", view
    _check(view["results"], big_expected)
    assert not flowing_errors, flowing_errors[:5]
    assert flowed > 0

    # Only the remaining worker's sandbox containers exist (the scaled-down ones cleaned up).
    workers = _worker_container_ids(docker_client)
    running_workers = (
        {c.id for c in docker_client.containers.list(filters={"id": list(workers)})} if workers else set()
    )
    sandboxes = docker_client.containers.list(all=True, filters={"label": "azr.sandbox=1"})
    ours = [c for c in sandboxes if c.labels.get("azr.owner.container") in workers]
    assert ours and all(c.labels["azr.owner.container"] in running_workers for c in ours), [
        (c.name, c.labels.get("azr.owner.container", "")[:12]) for c in ours
    ]


def test_the_result_cache_lives_in_its_own_lru_redis(stack: dict[str, Any]) -> None:
    import httpx

    def redis_cli(service: str, *args: str) -> list[str]:
        done = _compose("exec", "-T", service, "redis-cli", *args, env=stack["env"], timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    program = f"def f(x):\n    return [x, {os.getpid()}, 'cache check']"  # a program no test ran
    reply = httpx.post(
        f"{stack['base']}/v1/validate",
        json={"tasks": [{"id": "cache", "program": program, "inputs": ["1"]}]},
        timeout=120,
    )
    assert reply.status_code == 200 and reply.json()["results"][0]["valid"], reply.text
    assert redis_cli("redis-cache", "config", "get", "maxmemory-policy") == [
        "maxmemory-policy",
        "allkeys-lru",
    ]
    assert redis_cli("redis-cache", "config", "get", "maxmemory") == ["maxmemory", str(512 * 2**20)]
    assert redis_cli("redis-cache", "config", "get", "appendonly") == ["appendonly", "no"]
    assert redis_cli("redis", "config", "get", "maxmemory-policy") == ["maxmemory-policy", "noeviction"]
    assert redis_cli("redis", "config", "get", "appendonly") == ["appendonly", "yes"]
    assert redis_cli("redis-cache", "--scan", "--pattern", "azr:cache:*"), "no result cached in redis-cache"
    assert redis_cli("redis", "--scan", "--pattern", "azr:cache:*") == [], (
        "results cached in the queue's Redis"
    )


def test_prometheus_scrapes_api_and_workers(stack: dict[str, Any]) -> None:
    import httpx

    deadline = time.monotonic() + 60
    health: dict[str, str] = {}
    while time.monotonic() < deadline:
        targets = httpx.get(f"{stack['prometheus']}/api/v1/targets", timeout=5).json()["data"][
            "activeTargets"
        ]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        if health.get("azr-api") == "up" and health.get("azr-worker") == "up":
            break
        time.sleep(2)
    assert health.get("azr-api") == "up" and health.get("azr-worker") == "up", health
    rules = httpx.get(f"{stack['prometheus']}/api/v1/rules", timeout=5).json()["data"]["groups"]
    names = {rule["name"] for group in rules for rule in group["rules"]}
    assert {"AzrQueueBackingUp", "AzrNoWorkers", "AzrSandboxErrors"} <= names
    assert all(rule["health"] != "err" for group in rules for rule in group["rules"])
