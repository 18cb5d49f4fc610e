"""Fixtures for the trainer tests.

``azr_service`` starts the REAL verification service (``azr-exec serve``) on a free loopback
port and tears it down. Set ``AZR_SERVICE_URL`` to use an already running service instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch

# Two-core CI boxes also run the service: one torch thread avoids oversubscription.
torch.set_num_threads(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _azr_exec() -> str | None:
    local = Path(sys.executable).parent / "azr-exec"
    if local.exists():
        return str(local)
    return shutil.which("azr-exec")


def _wait_healthy(url: str, proc: subprocess.Popen | None, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"azr-exec serve exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise RuntimeError(f"service at {url} not healthy after {timeout_s}s ({last})")


@pytest.fixture(scope="session")
def azr_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("AZR_SERVICE_URL")
    if external:
        _wait_healthy(external.rstrip("/"), None, 10)
        yield external.rstrip("/")
        return
    exe = _azr_exec()
    if exe is None:
        pytest.skip("azr-exec is not installed (pip install -e <repo root>)")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("service") / "serve.log"
    env = {k: v for k, v in os.environ.items() if k != "AZR_REDIS_URL"}  # embedded mode
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [exe, "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            try:
                _wait_healthy(url, proc, 60)
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}\n--- serve log ---\n{log_path.read_text()}") from exc
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from azr_trainer import tiny, warmup

    return tiny.train_tokenizer(warmup.tokenizer_corpus(4), 512)


@pytest.fixture()
def saved_tiny(tiny_tokenizer, tmp_path: Path) -> Path:
    """A small saved checkpoint standing in for a pretrained model (loaded by path, not `tiny`)."""
    from azr_trainer.config import TinyModelConfig
    from azr_trainer.tiny import build_tiny_model

    model = build_tiny_model(TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2), tiny_tokenizer)
    model.save_pretrained(tmp_path / "m")
    tiny_tokenizer.save_pretrained(tmp_path / "m")
    return tmp_path / "m"
