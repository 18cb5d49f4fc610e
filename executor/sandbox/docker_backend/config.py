"""How sandbox containers are made: the settings' `docker` section with its defaults filled in."""

from __future__ import annotations

import os

from executor.sandbox.docker_backend.engine import DockerUnavailable
from executor.sandbox.docker_backend.labels import default_owner
from executor.settings import DockerSettings

# Headroom above the children's memory for the zygote itself and the interpreter's own
# mappings: the container's memory limit covers the zygote and all of its children.
CONTAINER_MEMORY_HEADROOM_MB = 256
# The socket inside the container (its directory is bind-mounted from the worker).
CONTAINER_SOCKET_DIR = "/run/azr"
SOCKET_NAME = "zygote.sock"


def _default_socket_dir() -> str:
    for candidate in ("/run/azr-sandboxes", "/tmp/azr-sandboxes"):
        try:
            os.makedirs(candidate, mode=0o711, exist_ok=True)
        except OSError:
            continue
        if os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    raise DockerUnavailable("no writable directory for sandbox sockets (set AZR_SANDBOX_SOCKET_DIR)")


def resolved(config: DockerSettings, max_live: int, child_memory_mb: int) -> DockerSettings:
    """`config` with everything left to the defaults filled in: the owner, the socket
    directories, and the container's memory and pids limits (room for `max_live` children
    of `child_memory_mb` each)."""
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
