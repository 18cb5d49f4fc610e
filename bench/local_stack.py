"""Start the real service, real workers and throwaway Redis servers as local processes (tests, benchmarks)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]  # the checkout: processes run from here
AZR_EXEC = [sys.executable, "-m", "cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_answers(url: str = "redis://127.0.0.1:6379/0") -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except Exception:  # noqa: BLE001
        return False


def wait_http(url: str, timeout: float = 60.0, expect: int = 200) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == expect:
                return
            last = response.status_code
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer {expect} in {timeout} s (last: {last})")


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Service:
    url: str
    env: dict[str, str]
    api: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def add_worker(self) -> subprocess.Popen[bytes]:
        worker = subprocess.Popen([*AZR_EXEC, "worker"], cwd=REPO, env=self.env)
        self.workers.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.workers:
            stop(worker)
        stop(self.api)


def service_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZR_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["AZR_WORKER_METRICS_PORT"] = "0"
    env["AZR_AUDIT_DIR"] = tempfile.mkdtemp(prefix="azr-audit-")
    env.update(overrides)
    return env


@contextmanager
def running_service(
    workers: int = 0, wait_ready: bool = True, settings: Mapping[str, str] | None = None, **overrides: str
) -> Iterator[Service]:
    """`azr-exec serve` (and `azr-exec worker`s in queue mode) as real processes on loopback,
    with the `AZR_*` variables in `settings` and `overrides` (the latter win)."""
    overrides = {**(settings or {}), **overrides}
    port = free_port()
    if "AZR_REDIS_URL" in overrides:
        overrides.setdefault("AZR_QUEUE_NAME", f"azr-test-{uuid.uuid4().hex[:8]}")
    env = service_env(**overrides)
    api = subprocess.Popen([*AZR_EXEC, "serve", "--port", str(port)], cwd=REPO, env=env)
    service = Service(f"http://127.0.0.1:{port}", env, api)
    try:
        for _ in range(workers):
            service.add_worker()
        wait_http(service.url + "/healthz")
        if wait_ready:
            wait_http(service.url + "/readyz", timeout=90)
        yield service
    finally:
        service.stop_all()


@dataclass
class RedisServer:
    port: int
    directory: str
    process: subprocess.Popen[bytes] | None = None
    extra_args: tuple[str, ...] = ()  # after the defaults: a later option wins

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                self.directory,
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not redis_answers(self.url):
            if time.monotonic() > deadline:
                raise TimeoutError("redis-server did not start")
            time.sleep(0.05)

    def crash(self) -> None:
        """SIGKILL: no graceful save; only what AOF (appendfsync always) holds survives."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()


@contextmanager
def persistent_redis(*extra_args: str) -> Iterator[RedisServer]:
    """A private `redis-server` on a free port (AOF, appendfsync always), with `extra_args`
    after the defaults (for example an LRU cache: `--maxmemory 64mb --maxmemory-policy
    allkeys-lru --appendonly no`)."""
    if shutil.which("redis-server") is None:
        import pytest

        pytest.skip("redis-server is not installed (make setup installs it)")
    directory = tempfile.mkdtemp(prefix="azr-redis-")
    server = RedisServer(free_port(), directory, extra_args=extra_args)
    server.start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.process.terminate()
            server.process.wait()
        shutil.rmtree(directory, ignore_errors=True)
