"""The Docker backend's pieces that need no Docker engine: the socket channel under the
streaming pool (over a socketpair into the stand-in zygote), and the image's runtime label."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from executor.sandbox.docker_backend import DockerZygoteChannel, image
from executor.sandbox.docker_backend.health import ContainerWatch
from executor.sandbox.docker_backend.socket_io import SocketIO
from executor.sandbox.pool import ZYGOTE_ENVIRONMENT, PoolConfig, SandboxPool
from executor.sandbox.protocol import SANDBOX_ERROR, SandboxJob
from executor.settings import DockerSettings

REPO = Path(__file__).resolve().parents[3]
STANDIN = Path(__file__).resolve().with_name("standin_zygote.py")


class SocketStandinChannel(DockerZygoteChannel):
    """A DockerZygoteChannel whose "container" is a stand-in zygote on the other end of a
    unix socketpair (its stdin and stdout), so the socket I/O runs exactly as with Docker."""

    def __init__(self, config: DockerSettings, slot: int, hash_seed: int, env: dict[str, str]) -> None:
        self.client = None
        self.config = config
        self.slot = slot
        self._closed = False
        self.name = f"standin-{slot}"
        self.watch = ContainerWatch(self.name, self._container_state, config.watchdog_s)
        self.local_dir = ""
        self.container = None
        self.state_checks = 0
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.process = subprocess.Popen(
            [sys.executable, "-S", str(STANDIN)],
            stdin=theirs,
            stdout=theirs,
            env={"PYTHONHASHSEED": str(hash_seed), **ZYGOTE_ENVIRONMENT, **env},
            start_new_session=True,
        )
        theirs.close()
        ours.setblocking(False)
        self.sock = ours
        self._io = SocketIO(ours, self.watch, lambda: self._closed, self.name)
        self.reader = self._io
        self.writer = self._io

    def _container_state(self) -> dict[str, Any] | None:
        self.state_checks += 1
        return {"Running": self.process.poll() is None, "Paused": False}

    def close(self) -> None:
        super().close()
        self.process.kill()
        self.process.wait()


@pytest.fixture
def socket_pool(tmp_path: Path):
    made: list[SandboxPool] = []
    channels: list[SocketStandinChannel] = []

    def make(**overrides: Any) -> SandboxPool:
        docker_config = DockerSettings(socket_dir=str(tmp_path), watchdog_s=0.2)
        env = {"STANDIN_LOG": str(tmp_path / "jobs.log")}

        def factory(slot: int, seed: int) -> SocketStandinChannel:
            channel = SocketStandinChannel(docker_config, slot, seed, env)
            channels.append(channel)
            return channel

        config = PoolConfig(
            **{
                "lanes": 2,
                "zygotes_per_lane": 1,
                "spawn_helper": "",
                "sandbox_uid_base": None,
                "python": sys.executable,
                **overrides,
            }
        )
        pool = SandboxPool(config, factory)
        made.append(pool)
        pool.start()
        return pool

    make.channels = channels  # type: ignore[attr-defined]
    yield make
    for pool in made:
        pool.close()


def test_the_socket_channel_streams_jobs_both_ways(socket_pool) -> None:
    pool = socket_pool(fast_slots=2, max_live=4)
    slow = pool.submit(SandboxJob("sleep:300;echo", "'slow'", calls=1), 0)
    quick = [pool.submit_any(SandboxJob("echo", f"{i}", calls=2), client=str(i % 3)) for i in range(40)]
    assert [f.result(timeout=20).outputs for f in quick] == [(f"{i}",) * 2 for i in range(40)]
    assert not slow.done()
    assert slow.result(timeout=10).outputs == ("'slow'",)
    # A big record (a 300 kB output, several socket reads) arrives whole.
    big = "'" + "x" * 300_000 + "'"
    assert pool.submit(SandboxJob("echo", big, calls=1), 1).result(timeout=10).outputs == (big,)
    assert pool.healthy()


def test_the_watchdog_asks_for_the_container_only_while_a_job_is_outstanding(socket_pool) -> None:
    pool = socket_pool(lanes=1)
    channel = socket_pool.channels[0]
    assert pool.submit(SandboxJob("echo", "1", calls=1), 0).result(timeout=10).ok
    time.sleep(1.0)  # idle: five watchdog periods, no engine call
    assert channel.state_checks == 0
    assert pool.submit(SandboxJob("sleep:700;echo", "1", calls=1), 0).result(timeout=10).ok
    assert channel.state_checks >= 2  # checked every 0.2 s while the job was outstanding


def test_a_dead_socket_zygote_is_replaced_and_close_wakes_its_reader(socket_pool, tmp_path: Path) -> None:
    pool = socket_pool(lanes=1)
    marker = tmp_path / "once"
    inflight = pool.submit(SandboxJob("sleep:200;echo", "'x'", calls=1), 0)
    killer = pool.submit(SandboxJob(f"die_once:{marker}", "'k'", calls=1), 0)
    assert inflight.result(timeout=20).outputs == ("'x'",) and killer.result(timeout=20).ok
    assert pool.zygote_info()[0]["restarts"] == 1
    first = socket_pool.channels[0]
    assert not first.alive() and first.closed
    hung = pool.submit(SandboxJob("sleep:10000;echo", "1", calls=1, timeout_s=20), 0)
    time.sleep(0.1)
    started = time.monotonic()
    pool.close()
    assert time.monotonic() - started < 3
    assert hung.result(timeout=1).status == SANDBOX_ERROR


def test_alive_sees_a_hang_up_but_not_pending_records(socket_pool) -> None:
    pool = socket_pool(lanes=1)
    channel = socket_pool.channels[0]
    assert channel.alive()
    channel.process.kill()
    channel.process.wait()
    deadline = time.monotonic() + 5
    while channel.alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "hung up" in channel.dead_reason or "closed its socket" in channel.dead_reason
    assert pool.submit(SandboxJob("echo", "1", calls=1), 0).result(timeout=20).ok  # replaced


# --------------------------------------------------------------------------- the image


def _build_script_hash(root: Path) -> str:
    """runtime_sha256 as sandbox_images/build computes it (its function, run on `root`)."""
    script = (REPO / "sandbox_images" / "build").read_text()
    function = re.search(r"^runtime_sha256\(\) \{\n.*?^\}\n", script, re.S | re.M)
    assert function, "sandbox_images/build defines runtime_sha256()"
    done = subprocess.run(
        ["bash", "-c", f'set -euo pipefail\nROOT="$1"\n{function.group(0)}runtime_sha256', "-", str(root)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs sha256sum")
def test_the_image_label_hash_is_the_same_in_python_and_in_the_build_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _build_script_hash(REPO) == image.runtime_sha256()
    names = image.runtime_files()
    assert names[0] == "launch.py" and "runtime/wire.py" in names and "runtime/__init__.py" in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]

    # A copy: any added file or edit changes both the same way.
    copy = tmp_path / "executor" / "sandbox"
    copy.mkdir(parents=True)
    shutil.copy(REPO / "executor" / "sandbox" / "launch.py", copy / "launch.py")
    shutil.copytree(
        REPO / "executor" / "sandbox" / "runtime",
        copy / "runtime",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    monkeypatch.setattr(image, "LAUNCH_PATH", copy / "launch.py")
    monkeypatch.setattr(image, "RUNTIME_DIR", copy / "runtime")
    before = image.runtime_sha256()
    assert before == _build_script_hash(tmp_path)
    (copy / "runtime" / "extra.py").write_text("# new\n")
    (copy / "runtime" / "__pycache__").mkdir()
    (copy / "runtime" / "__pycache__" / "wire.cpython-311.pyc").write_bytes(b"ignored")
    after = image.runtime_sha256()
    assert after != before and after == _build_script_hash(tmp_path)


def test_the_image_ships_launch_py_and_the_runtime_package() -> None:
    dockerfile = (REPO / "sandbox_images" / "sandbox" / "Dockerfile").read_text()
    assert "COPY executor/sandbox/launch.py /opt/azr/launch.py" in dockerfile
    assert "COPY executor/sandbox/runtime/ /opt/azr/runtime/" in dockerfile
    assert "/opt/azr/runtime/spawn.c" in dockerfile and "runtime.py" not in dockerfile
    assert image.IMAGE_SPAWN_HELPER in dockerfile.replace(
        "-o /opt/azr/_azr_spawn.so", "/opt/azr/_azr_spawn.so"
    )
    collect = (REPO / "sandbox_images" / "sandbox" / "collect-rootfs.sh").read_text()
    assert "runtime.py" not in collect and "import _azr_spawn, runtime.wire" in collect
