"""Start an embedded verification service (``azr-exec serve``) for the length of a ``with`` block."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx


class ServiceError(RuntimeError):
    pass


def azr_exec_path() -> str:
    """The ``azr-exec`` beside this interpreter, else the one on PATH."""
    local = Path(sys.executable).parent / "azr-exec"
    if local.exists():
        return str(local)
    found = shutil.which("azr-exec")
    if found is None:
        raise ServiceError(
            "azr-exec is not installed: run the README's set-up (make setup), or pass the URL of a "
            "running service"
        )
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    """Until ``/readyz`` answers 200 (the sandbox is up), or raise with the reason."""
    end = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise ServiceError(f"azr-exec serve exited with status {proc.returncode}")
        try:
            r = httpx.get(f"{url}/readyz", timeout=2.0)
            if r.status_code == 200:
                return
            last = f"/readyz {r.status_code}"
        except httpx.HTTPError as exc:
            last = str(exc) or type(exc).__name__
        time.sleep(0.25)
    raise ServiceError(f"service at {url} not ready after {timeout_s:.0f} s ({last})")


class EmbeddedService:
    """``azr-exec serve`` on a free loopback port, in embedded mode, logging to ``log_path``."""

    def __init__(self, log_path: Path, startup_timeout_s: float = 90.0) -> None:
        self.log_path = log_path
        self.startup_timeout_s = startup_timeout_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> EmbeddedService:
        env = {k: v for k, v in os.environ.items() if k != "AZR_REDIS_URL"}  # embedded mode
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [azr_exec_path(), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        try:
            wait_ready(self.url, self.proc, self.startup_timeout_s)
        except ServiceError as exc:
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise ServiceError(f"{exc}\n--- {self.log_path} ---\n{tail}") from exc
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
