"""Helpers for the audit tests: a real service on a loopback port, workers, Redis, a mixed workload."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """create_app(settings) under uvicorn in a thread, on a free loopback port."""

    def __init__(self, settings: Any) -> None:
        import uvicorn

        from api.server import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the service did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


PROGRAMS = {
    "ok": ("def f(a):\n    return a[::-1]", ["'abc'", "[1, 2]"]),
    "forbidden_import": ("import os\n\ndef f(a):\n    return os.listdir(a)", ["'.'"]),
    "forbidden_call": ("def f(a):\n    x = a * 2\n    return eval('x + 1')", ["1"]),
    "nondeterministic": (
        "def f(a):\n    s = set(['alpha', 'beta', 'gamma', 'delta', a])\n    return str(s)",
        ["'q'"],
    ),
    "timeout": ("def f(a):\n    while True:\n        a += 1", ["1"]),
    "runtime_error": ("def f(a):\n    return a / 0", ["1"]),
    "syntax_error": ("def f(a)\n    return a", ["1"]),
    "memory": ("def f(a):\n    x = bytearray(2 * 1024 ** 3)\n    return len(x)", ["1"]),
}


def mixed_workload(
    url: str, run: str = "run-alpha", rounds: int = 1, headers: dict[str, str] | None = None
) -> dict[str, int]:
    """Validate and verify requests with every kind of verdict; returns verdict counts."""
    counts: dict[str, int] = {}
    with httpx.Client(base_url=url, timeout=120, headers=headers or {}) as client:
        for r in range(rounds):
            tasks = [
                {"id": f"{name}-{r}", "program": program + f"\n# round {r}", "inputs": inputs}
                for name, (program, inputs) in PROGRAMS.items()
            ]
            reply = client.post("/v1/validate", json={"tasks": tasks, "timeout_s": 1, "run": run, "step": r})
            reply.raise_for_status()
            for result in reply.json()["results"]:
                counts[result["verdict"]] = counts.get(result["verdict"], 0) + 1
            answers = [
                {"id": f"d{r}", "task_type": "deduction", "output": "'cba'", "answer": "'cba'"},
                {"id": f"w{r}", "task_type": "deduction", "output": "'cba'", "answer": "'abc'"},
                {
                    "id": f"a{r}",
                    "task_type": "abduction",
                    "program": "def f(a):\n    return a",
                    "output": "1",
                    "answer": "1); import os; (1",
                },
                {
                    "id": f"i{r}",
                    "task_type": "induction",
                    "answer": "import subprocess\ndef f(a):\n    return a",
                    "cases": [{"input": "1", "output": "1"}],
                },
            ]
            reply = client.post("/v1/verify", json={"answers": answers, "run": run, "step": r})
            reply.raise_for_status()
            for result in reply.json()["results"]:
                counts[result["verdict"]] = counts.get(result["verdict"], 0) + 1
    return counts


# ----------------------------------------------------------------------------- Redis


class RedisServer:
    """A private redis-server (AOF on, fsync always) on a free port, restartable on the same data."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        from redis import Redis

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if Redis(port=self.port).ping():
                    return
            except Exception:  # noqa: BLE001
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    server = RedisServer(tmp_path / "redis")
    server.dir.mkdir()
    server.start()
    yield server
    server.kill()


def start_worker(redis_url: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "AZR_REDIS_URL": redis_url,
        "AZR_WORKER_HEARTBEAT_GRACE_S": "2",
        "AZR_WORKER_METRICS_PORT": "0",
        "AZR_SANDBOX_LANES": "2",
        **(extra_env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_workers(redis_url: str, n: int, timeout: float = 60) -> None:
    from redis import Redis
    from rq import Worker

    redis = Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Worker.count(connection=redis) >= n:
            return
        time.sleep(0.1)
    raise RuntimeError(f"fewer than {n} workers registered")
