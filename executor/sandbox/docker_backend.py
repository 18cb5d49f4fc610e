"""The Docker backend of the sandbox pool: one warm sandbox container per zygote slot.

Each container runs the very same zygote as the local backend (the image
``azr/sandbox`` holds Debian's python3.11, its standard library, ``launch.py`` and the
``runtime`` package beside it at /opt/azr, and the C fork loop built from
``runtime/spawn.c``), serving a unix socket in a directory bind-mounted from the worker
(``--socket /run/azr/zygote.sock``).  No network is involved: the socket is a file.
Over it the pool speaks the same streaming protocol as over a local zygote's pipes
(``runtime/wire.py``): one container is one zygote, running up to ``max_live`` children.
Measured on the 2-core reference machine, a socket channel sustains ~690 isolated
executions/s against ~430-550 for stdio attached through dockerd (see
docs/docker.md), so the socket is the only channel implemented here.

Every container is started with::

    --network none --read-only --tmpfs /tmp:size=16m,noexec,nosuid,nodev --ipc none
    --cap-drop ALL --cap-add SETUID --cap-add SETGID --cap-add KILL
    --security-opt no-new-privileges --memory M --memory-swap M --pids-limit P --cpus C
    --init --label azr.sandbox=1 --label azr.owner=<worker id> ...

and Docker's default seccomp profile, inside which the runtime stacks its own filter
per child.  The zygote is uid 0 *inside* the container only to switch each program to
its own unprivileged per-slot uid and to kill it (hence SETUID/SETGID/KILL); programs
never run as root.

A container that dies, is OOM-killed, paused or stops answering is detected by the
channel (its socket hangs up; a read or write that waits while jobs are outstanding
checks the container's state every ``watchdog_s``) or by the pool (a job unanswered
``hang_grace_s`` past its own timeout), and the pool replaces it through the factory
and re-sends its jobs in flight once.  Containers are labelled with their owner; those of dead owners
are reaped when a pool starts, and a pool removes its own when it closes (also at
interpreter exit).
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import re
import select
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, cast

from executor.limits import Limits
from executor.sandbox.pool import (
    LAUNCH_PATH,
    RUNTIME_DIR,
    ZYGOTE_ENVIRONMENT,
    ChannelFactory,
    PoolConfig,
    SandboxPool,
)
from executor.settings import DockerSettings, load_settings

log = logging.getLogger(__name__)

LABEL_SANDBOX = "azr.sandbox"
LABEL_OWNER = "azr.owner"
LABEL_OWNER_HOST = "azr.owner.host"
LABEL_OWNER_PID = "azr.owner.pid"
LABEL_OWNER_START = "azr.owner.start"
LABEL_PARENT = "azr.owner.container"
LABEL_SLOT = "azr.slot"
CONTAINER_SOCKET_DIR = "/run/azr"
SOCKET_NAME = "zygote.sock"
LABEL_RUNTIME_SHA = "azr.runtime.sha256"
# Headroom above the children's memory for the zygote itself and the interpreter's own
# mappings: the container's memory limit covers the zygote and all of its children.
CONTAINER_MEMORY_HEADROOM_MB = 256
# How often a channel with nothing outstanding checks its container (see _ChannelIO).
IDLE_WATCHDOG_S = 60.0


# The C fork loop, compiled from runtime/spawn.c by the image build (sandbox/Dockerfile).
IMAGE_SPAWN_HELPER = "/opt/azr/_azr_spawn.so"


def runtime_files() -> list[str]:
    """What the sandbox image holds of this checkout, relative to executor/sandbox:
    launch.py and every file of the runtime package (compiled caches left out), sorted
    by their bytes, as `LC_ALL=C sort` does."""
    base = LAUNCH_PATH.parent
    files = [LAUNCH_PATH] + [
        path
        for path in RUNTIME_DIR.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]
    return sorted((path.relative_to(base).as_posix() for path in files), key=lambda name: name.encode())


def runtime_sha256() -> str:
    """The sha256 of the `sha256sum` listing of `runtime_files()`: the same as
    ``(cd executor/sandbox && sha256sum FILES...) | sha256sum`` in sandbox_images/build,
    which labels the image with it. Any edit, addition, removal or rename changes it."""
    base = LAUNCH_PATH.parent
    listing = "".join(
        f"{hashlib.sha256((base / name).read_bytes()).hexdigest()}  {name}\n" for name in runtime_files()
    )
    return hashlib.sha256(listing.encode()).hexdigest()


def image_runtime_status(client: Any, image: str) -> tuple[bool, str]:
    """(True, "") when `image` exists and holds this checkout's runtime, else (False, why)."""
    try:
        found = client.images.get(image)
    except Exception as exc:  # noqa: BLE001
        return False, f"the sandbox image {image} is missing; build it with sandbox_images/build ({exc})"
    labelled = (found.labels or {}).get(LABEL_RUNTIME_SHA, "")
    if labelled != runtime_sha256():
        return False, (
            f"the sandbox image {image} holds another runtime (sha256 {labelled[:12] or 'unknown'}, "
            f"this checkout {runtime_sha256()[:12]}); rebuild it with sandbox_images/build sandbox"
        )
    return True, ""


class DockerUnavailable(RuntimeError):
    """No Docker engine answers, or the sandbox image is missing."""


# --------------------------------------------------------------------------- identity


def _process_start_ticks(pid: int) -> str:
    """The start time of a process (clock ticks since boot), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()
    except (OSError, IndexError):
        return ""


def own_container_id() -> str:
    """The id of the container this process runs in, or "" on a plain host."""
    patterns = (
        ("/proc/self/mountinfo", re.compile(r"/(?:docker/)?containers/([0-9a-f]{64})/")),
        ("/proc/self/cgroup", re.compile(r"(?:docker[-/])([0-9a-f]{64})")),
    )
    for path, pattern in patterns:
        try:
            with open(path) as handle:
                match = pattern.search(handle.read())
        except OSError:
            continue
        if match:
            return match.group(1)
    return ""


def default_owner(configured: str = "") -> str:
    """The owner label of this process's containers: `configured` (AZR_WORKER_ID, made
    label-safe), else host, pid and a random suffix."""
    if configured:
        return re.sub(r"[^A-Za-z0-9_.-]", "-", configured)[:48]
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:24]
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _default_socket_dir() -> str:
    for candidate in ("/run/azr-sandboxes", "/tmp/azr-sandboxes"):
        try:
            os.makedirs(candidate, mode=0o711, exist_ok=True)
        except OSError:
            continue
        if os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    raise DockerUnavailable("no writable directory for sandbox sockets (set AZR_SANDBOX_SOCKET_DIR)")


# --------------------------------------------------------------------------- config


def resolved(config: DockerSettings, max_live: int, child_memory_mb: int) -> DockerSettings:
    """`config` with everything left to the defaults filled in: the owner, the socket
    directories, and the container's memory and pids limits (room for `max_live` children
    of `child_memory_mb` each; see executor.sandbox.backends)."""
    socket_dir = config.socket_dir or _default_socket_dir()
    return config.model_copy(
        update={
            "owner": default_owner(config.owner),
            "socket_dir": socket_dir,
            "socket_host_dir": config.socket_host_dir or socket_dir,
            # A container runs up to max_live children at once, each within its own memory
            # limit: the container's limit covers them all, so that the cgroup's OOM killer
            # never ends a child that kept to its own limit (a verdict must not depend on its
            # neighbours). AZR_SANDBOX_MEMORY_MB caps a container lower.
            "memory_mb": config.memory_mb
            if config.memory_mb is not None
            else child_memory_mb * max_live + CONTAINER_MEMORY_HEADROOM_MB,
            # The zygote, docker-init and max_live children (pids count threads too).
            "pids_limit": config.pids_limit if config.pids_limit is not None else max(64, 2 * max_live + 16),
        }
    )


def docker_client(url: str | None = None, timeout: float = 60.0):
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - docker is a declared extra
        raise DockerUnavailable("the docker SDK is not installed (pip install 'azr-exec[docker]')") from exc
    try:
        client = (
            docker.DockerClient(base_url=url, timeout=int(timeout))
            if url
            else docker.from_env(timeout=int(timeout))
        )
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means no usable engine
        raise DockerUnavailable(f"no Docker engine answers ({exc})") from exc
    return client


# --------------------------------------------------------------------------- the channel


class _ChannelIO:
    """Blocking file-like reads/writes on a non-blocking unix socket, with a watchdog.

    One thread reads (the pool's reader: it waits here whenever the zygote is quiet) and
    one writes. While a read or write waits, the container's state is checked every
    ``watchdog_s`` while the pool has jobs in flight on it (else every
    ``IDLE_WATCHDOG_S``, so idle containers cost the Docker engine next to nothing): if
    it stopped, was removed or is paused, the wait ends with an OSError (the pool then
    replaces the container and re-sends its jobs).
    """

    def __init__(self, channel: DockerZygoteChannel, sock: socket.socket) -> None:
        self.channel = channel
        self.sock = sock
        self._buffer = b""
        self._poller = select.poll()
        self._poller.register(sock.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
        self._out_poller = select.poll()
        self._out_poller.register(sock.fileno(), select.POLLOUT | select.POLLHUP | select.POLLERR)
        self._hangup_poller = select.poll()
        self._hangup_poller.register(sock.fileno(), select.POLLRDHUP | select.POLLHUP | select.POLLERR)

    # reader side ---------------------------------------------------------------
    def read(self, size: int) -> bytes:
        if self._buffer:
            chunk, self._buffer = self._buffer[:size], self._buffer[size:]
            return chunk
        while True:
            events = self._poller.poll(self.channel.config.watchdog_s * 1000)
            if self.channel.closed:
                raise ConnectionError(f"sandbox container {self.channel.name}: channel closed")
            if events:
                try:
                    data = self.sock.recv(max(size, 1 << 16))
                except BlockingIOError:
                    continue
                except OSError as exc:
                    self.channel.mark_dead(f"socket error: {exc}")
                    raise
                if not data:
                    self.channel.mark_dead("the zygote closed its socket")
                    return b""
                self.channel.received()
                if len(data) > size:
                    self._buffer = data[size:]
                    data = data[:size]
                return data
            self.channel.check_during_wait()

    # writer side ---------------------------------------------------------------
    def write(self, data: bytes) -> int:
        view = memoryview(data)
        self.channel.sent()
        while view:
            if self.channel.closed:
                raise ConnectionError(f"sandbox container {self.channel.name}: channel closed")
            try:
                sent = self.sock.send(view)
                view = view[sent:]
                continue
            except BlockingIOError:
                pass
            except OSError as exc:
                self.channel.mark_dead(f"socket error: {exc}")
                raise
            if not self._out_poller.poll(self.channel.config.watchdog_s * 1000):
                self.channel.check_during_wait()
        return len(data)

    def flush(self) -> None:
        return None

    def hung_up(self) -> bool:
        """True when the zygote's end of the socket is closed (readable data is not a hang-up:
        a streaming zygote writes whenever a job has news)."""
        return bool(self._hangup_poller.poll(0))


class DockerZygoteChannel:
    """One sandbox container running a zygote, reached over a bind-mounted unix socket."""

    def __init__(self, client: Any, config: DockerSettings, slot: int, hash_seed: int) -> None:
        self.client = client
        self.config = config
        self.slot = slot
        self.dead_reason = ""
        self._closed = False
        self._start_watch()
        self.name = f"azr-sbx-{config.owner}-{slot}-{uuid.uuid4().hex[:6]}"[:128]
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
                labels=_owner_labels(config) | {LABEL_SLOT: str(slot)},
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
        self._io = _ChannelIO(self, self.sock)
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
            if delay >= 0.05 and not self._container_running():
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
            return self.client.api.inspect_container(self.container.id)["State"]  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001 - NotFound (auto-removed) or engine trouble
            return None

    def _container_running(self) -> bool:
        state = self._container_state()
        return bool(state and state.get("Running") and not state.get("Paused"))

    def mark_dead(self, reason: str) -> None:
        if not self.dead_reason:
            self.dead_reason = reason
            state = self._container_state()
            if state and state.get("OOMKilled"):
                self.dead_reason += " (the container was OOM-killed)"
            log.warning("sandbox container %s is dead: %s", self.name, self.dead_reason)

    def _start_watch(self) -> None:
        self._sent_at = 0.0  # when a frame was last written
        self._received_at = 0.0  # when the zygote last wrote anything
        self._checked_at = time.monotonic()  # when the container's state was last known good
        # Whether jobs are outstanding: the pool says (watch_busy); until then, a guess.
        self._busy: Callable[[], bool] = lambda: self._sent_at > self._received_at

    def watch_busy(self, busy: Callable[[], bool]) -> None:
        """The pool's hook: `busy()` tells whether this zygote has jobs in flight."""
        self._busy = busy

    @property
    def closed(self) -> bool:
        return self._closed

    def sent(self) -> None:
        self._sent_at = time.monotonic()

    def received(self) -> None:
        self._received_at = time.monotonic()

    def check_during_wait(self) -> None:
        """Called every watchdog_s while blocked on the socket; raises if the container is gone.

        Asks the Docker engine only while jobs are in flight (a quiet zygote with nothing
        to do is the normal case), else every IDLE_WATCHDOG_S."""
        now = time.monotonic()
        if not self.dead_reason and not self._busy() and now - self._checked_at < IDLE_WATCHDOG_S:
            return
        self._checked_at = now
        state = self._container_state()
        if state is None or not state.get("Running"):
            self.mark_dead("the container stopped")
        elif state.get("Paused"):
            self.mark_dead("the container is paused")
        if self.dead_reason:
            raise ConnectionError(f"sandbox container {self.name}: {self.dead_reason}")

    def alive(self) -> bool:
        """Cheap: no Docker engine call, one poll of the socket for a hang-up."""
        if self._closed or self.dead_reason or self.sock is None:
            return False
        if self._io.hung_up():
            self.mark_dead("the socket hung up")
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
            _remove_container(self.container)
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        shutil.rmtree(self.local_dir, ignore_errors=True)


def _remove_container(container: Any) -> None:
    try:
        container.remove(force=True)
    except Exception as exc:  # noqa: BLE001 - NotFound (auto-removed) is the usual case
        if (
            "404" not in str(exc)
            and "No such container" not in str(exc)
            and "already in progress" not in str(exc)
        ):
            log.warning("could not remove sandbox container %s: %s", getattr(container, "name", "?"), exc)


def _owner_labels(config: DockerSettings) -> dict[str, str]:
    return {
        LABEL_SANDBOX: "1",
        LABEL_OWNER: config.owner,
        LABEL_OWNER_HOST: socket.gethostname(),
        LABEL_OWNER_PID: str(os.getpid()),
        LABEL_OWNER_START: _process_start_ticks(os.getpid()),
        LABEL_PARENT: own_container_id(),
    }


# --------------------------------------------------------------------------- factory + pool


class DockerChannelFactory:
    """`factory(slot, hash_seed) -> DockerZygoteChannel`, as SandboxPool expects."""

    def __init__(self, config: DockerSettings, client: Any = None) -> None:
        """`config`: resolved (see `resolved`)."""
        self.config = config
        self._client = client
        self._lock = threading.Lock()
        self.started = 0

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = docker_client(self.config.docker_url)
        return self._client

    def prepare(self) -> None:
        """Check the engine and image, and reap containers whose owner is gone."""
        client = self.client
        current, why = image_runtime_status(client, self.config.image)
        if not current:
            # Another runtime may speak another protocol (the streaming one is not the
            # batch one before it): refuse, unless told to go on regardless.
            if "missing" in why or self.config.image_mismatch != "warn":
                raise DockerUnavailable(why + " (AZR_SANDBOX_IMAGE_MISMATCH=warn to start anyway)")
            log.warning("%s", why)
        if self.config.reap_orphans:
            reaped = reap_orphans(client)
            if reaped:
                log.warning("removed %d sandbox container(s) left behind by dead workers", reaped)
        # Our own leftovers (a restarted worker with a fixed AZR_WORKER_ID).
        cleanup_containers(self.config.owner, client=client, socket_dir=self.config.socket_dir)

    def __call__(self, slot: int, hash_seed: int) -> DockerZygoteChannel:
        channel = DockerZygoteChannel(self.client, self.config, slot, hash_seed)
        with self._lock:
            self.started += 1
        return channel

    def cleanup(self) -> int:
        return cleanup_containers(self.config.owner, client=self._client, socket_dir=self.config.socket_dir)


class DockerSandboxPool(SandboxPool):
    """A SandboxPool whose zygotes live in sandbox containers; removes them all on close."""

    def __init__(
        self,
        config: PoolConfig | None = None,
        docker_config: DockerSettings | None = None,
        child_memory_mb: int = Limits().memory_mb,
    ) -> None:
        """`docker_config`: default, the environment's (`executor.settings`); `child_memory_mb`:
        the memory limit of one execution, which the container's own limit makes room for."""
        config = config or PoolConfig()
        docker = docker_config if docker_config is not None else load_settings().docker
        self.docker_factory = DockerChannelFactory(resolved(docker, config.max_live, child_memory_mb))
        if config.spawn_helper is None:  # the image's own build, not this host's
            config.spawn_helper = IMAGE_SPAWN_HELPER
        if not config.recycle_after:
            config.recycle_after = self.docker_factory.config.recycle_after
        super().__init__(config, cast(ChannelFactory, self.docker_factory))
        self._atexit_registered = False

    @property
    def owner(self) -> str:
        return self.docker_factory.config.owner

    def sibling(self, config: PoolConfig) -> SandboxPool:
        """Containers of their own: closing the sibling removes only what it started."""
        own = self.docker_factory.config.model_copy(update={"owner": f"{self.owner}-probe"[:60]})
        return DockerSandboxPool(config, own)

    def start(self) -> None:
        if self._state == "running":
            return
        self.docker_factory.prepare()
        if not self._atexit_registered:
            atexit.register(self.docker_factory.cleanup)
            self._atexit_registered = True
        try:
            super().start()
        except BaseException:
            self.docker_factory.cleanup()
            raise

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.docker_factory.cleanup()

    def containers(self) -> list[Any]:
        return list_containers(self.owner, client=self.docker_factory.client)


# --------------------------------------------------------------------------- cleanup


def list_containers(owner: str | None = None, client: Any = None) -> list[Any]:
    client = client or docker_client()
    filters = {"label": [f"{LABEL_SANDBOX}=1"] + ([f"{LABEL_OWNER}={owner}"] if owner else [])}
    return list(client.containers.list(all=True, filters=filters))


def cleanup_containers(owner: str | None = None, client: Any = None, socket_dir: str | None = None) -> int:
    """Remove every sandbox container (of one owner, or of all owners); returns how many.

    Called when a pool starts (its own leftovers) and stops, and from tests and
    operators' scripts (``python -c 'from executor.sandbox.docker_backend import
    cleanup_containers; cleanup_containers()'``).
    """
    try:
        client = client or docker_client()
    except DockerUnavailable:
        return 0
    try:
        found = list_containers(owner, client)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not list sandbox containers: %s", exc)
        return 0
    for container in found:
        _remove_container(container)
    if owner:
        if socket_dir:
            shutil.rmtree(os.path.join(socket_dir, owner), ignore_errors=True)
    return len(found)


def _owner_gone(labels: dict[str, str], client: Any, created: str) -> bool:
    parent = labels.get(LABEL_PARENT, "")
    if parent:
        try:
            state = client.api.inspect_container(parent)["State"]
        except Exception as exc:  # noqa: BLE001
            return "404" in str(exc) or "No such container" in str(exc)
        if not state.get("Running"):
            return True
        # The worker's container restarted after this sandbox was made: its owner died.
        return bool(state.get("StartedAt", "") > created)
    if labels.get(LABEL_OWNER_HOST) != socket.gethostname() or own_container_id():
        return False  # another host's worker (or we cannot tell): leave it
    try:
        pid = int(labels.get(LABEL_OWNER_PID, ""))
    except ValueError:
        return False
    return _process_start_ticks(pid) != labels.get(LABEL_OWNER_START)


def reap_orphans(client: Any = None) -> int:
    """Remove sandbox containers whose owning worker (process or container) is gone."""
    client = client or docker_client()
    removed = 0
    for container in list_containers(None, client):
        labels = container.labels or {}
        created = container.attrs.get("Created", "")
        if _owner_gone(labels, client, created):
            _remove_container(container)
            removed += 1
    return removed


# --------------------------------------------------------------------------- helpers


def docker_available(image: str | None = None) -> tuple[bool, str]:
    """(True, "") when an engine answers (and the image exists, if given), else (False, why)."""
    try:
        client = docker_client(timeout=10)
    except DockerUnavailable as exc:
        return False, str(exc)
    if image:
        try:
            client.images.get(image)
        except Exception as exc:  # noqa: BLE001
            return False, f"image {image} is missing (run sandbox_images/build): {exc}"
    return True, ""
