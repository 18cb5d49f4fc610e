"""One sandbox container's life: started warm with its zygote, reached over a bind-mounted
unix socket, checked, and removed."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from executor.sandbox.docker_backend.cleanup import remove_container
from executor.sandbox.docker_backend.config import CONTAINER_SOCKET_DIR, SOCKET_NAME
from executor.sandbox.docker_backend.health import ContainerWatch
from executor.sandbox.docker_backend.labels import LABEL_SLOT, owner_labels
from executor.sandbox.docker_backend.socket_io import SocketIO
from executor.sandbox.pool import ZYGOTE_ENVIRONMENT
from executor.settings import DockerSettings

log = logging.getLogger(__name__)


class DockerZygoteChannel:
    """One sandbox container running a zygote, reached over a bind-mounted unix socket."""

    def __init__(self, client: Any, config: DockerSettings, slot: int, hash_seed: int) -> None:
        """`config`: resolved (executor.sandbox.docker_backend.config.resolved)."""
        self.client = client
        self.config = config
        self.slot = slot
        self._closed = False
        self.name = f"azr-sbx-{config.owner}-{slot}-{uuid.uuid4().hex[:6]}"[:128]
        self.watch = ContainerWatch(self.name, self._container_state, config.watchdog_s)
        self.local_dir = os.path.join(config.socket_dir, config.owner, self.name)
        self.host_dir = os.path.join(config.socket_host_dir, config.owner, self.name)
        os.makedirs(self.local_dir, mode=0o700, exist_ok=True)
        self.container = None
        self.sock: socket.socket | None = None
        started = time.monotonic()
        try:
            self.container = client.containers.run(
                config.image,
                command=["--socket", f"{CONTAINER_SOCKET_DIR}/{SOCKET_NAME}"],
                name=self.name,
                detach=True,
                auto_remove=True,
                labels=owner_labels(config.owner) | {LABEL_SLOT: str(slot)},
                environment={"PYTHONHASHSEED": str(hash_seed), **ZYGOTE_ENVIRONMENT, "PATH": "/usr/bin"},
                user="0:0",
                network_mode="none",
                ipc_mode="none",
                read_only=True,
                tmpfs={"/tmp": f"size={config.tmpfs_mb}m,mode=1777,noexec,nosuid,nodev"},
                volumes={self.host_dir: {"bind": CONTAINER_SOCKET_DIR, "mode": "rw"}},
                cap_drop=["ALL"],
                cap_add=["SETUID", "SETGID", "KILL"],
                security_opt=["no-new-privileges:true"],
                mem_limit=f"{config.memory_mb}m",
                memswap_limit=f"{config.memory_mb}m",
                pids_limit=config.pids_limit,
                nano_cpus=int(config.cpus * 1e9),
                init=True,
                runtime=config.runtime,
                cgroup_parent=config.cgroup_parent,
                log_config={"type": "json-file", "config": {"max-size": "1m", "max-file": "1"}},
                stdin_open=False,
                tty=False,
            )
            self.sock = self._connect(started)
        except BaseException:
            self.close()
            raise
        self._io = SocketIO(self.sock, self.watch, lambda: self._closed, self.name)
        self.reader = self._io
        self.writer = self._io
        log.debug("sandbox container %s ready in %.0f ms", self.name, (time.monotonic() - started) * 1000)

    # ------------------------------------------------------------------ start-up
    def _connect(self, started: float) -> socket.socket:
        path = os.path.join(self.local_dir, SOCKET_NAME)
        deadline = started + self.config.start_timeout_s
        delay = 0.005
        while True:
            if os.path.exists(path):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.connect(path)
                    sock.setblocking(False)
                    return sock
                except OSError:
                    sock.close()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"sandbox container {self.name} did not open its socket within "
                    f"{self.config.start_timeout_s:g} s; logs: {self._logs()!r}"
                )
            if delay >= 0.05 and not self.watch.running():
                raise RuntimeError(f"sandbox container {self.name} exited at start; logs: {self._logs()!r}")
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _logs(self) -> str:
        try:
            return self.container.logs(tail=20).decode(errors="replace")[-2000:] if self.container else ""
        except Exception:  # noqa: BLE001 - the container may be gone already
            return "<no logs: the container is gone>"

    # ------------------------------------------------------------------ health
    def _container_state(self) -> dict[str, Any] | None:
        try:
            return self.client.api.inspect_container(self.container.id)["State"]  # type: ignore[union-attr,no-any-return]
        except Exception:  # noqa: BLE001 - NotFound (auto-removed) or engine trouble
            return None

    @property
    def dead_reason(self) -> str:
        return self.watch.dead_reason

    @property
    def closed(self) -> bool:
        return self._closed

    def watch_busy(self, busy: Callable[[], bool]) -> None:
        """The pool's hook: `busy()` tells whether this zygote has jobs in flight."""
        self.watch.watch_busy(busy)

    def alive(self) -> bool:
        """Cheap: no Docker engine call, one poll of the socket for a hang-up."""
        if self._closed or self.watch.dead_reason or self.sock is None:
            return False
        if self._io.hung_up():
            self.watch.mark_dead("the socket hung up")
            return False
        return True

    # ------------------------------------------------------------------ teardown
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.sock is not None:
            try:  # wakes a reader or writer waiting on the socket at once
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self.container is not None:
            remove_container(self.container)
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        shutil.rmtree(self.local_dir, ignore_errors=True)
