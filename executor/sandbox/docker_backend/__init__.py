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

One job per module:

- ``config``: the settings' ``docker`` section with its defaults filled in (owner, socket
  directories, memory and pids limits);
- ``engine``: a Docker engine client, or why there is none;
- ``image``: which runtime the sandbox image holds;
- ``labels``: who owns a container;
- ``channel``: one container's life (start, connect, remove);
- ``socket_io``: the wire to its zygote (blocking I/O on a non-blocking socket);
- ``health``: whether the container still runs (the watchdog);
- ``cleanup``: removing one's own containers and those of dead workers;
- ``pool``: the channel factory and the pool.
"""

from executor.sandbox.docker_backend.channel import DockerZygoteChannel
from executor.sandbox.docker_backend.cleanup import cleanup_containers, list_containers, reap_orphans
from executor.sandbox.docker_backend.engine import DockerUnavailable, docker_available, docker_client
from executor.sandbox.docker_backend.image import image_runtime_status, runtime_files, runtime_sha256
from executor.sandbox.docker_backend.labels import (
    LABEL_OWNER,
    LABEL_OWNER_PID,
    LABEL_OWNER_START,
    LABEL_SANDBOX,
    LABEL_SLOT,
)
from executor.sandbox.docker_backend.pool import DockerChannelFactory, DockerSandboxPool

__all__ = [
    "LABEL_OWNER",
    "LABEL_OWNER_PID",
    "LABEL_OWNER_START",
    "LABEL_SANDBOX",
    "LABEL_SLOT",
    "DockerChannelFactory",
    "DockerSandboxPool",
    "DockerUnavailable",
    "DockerZygoteChannel",
    "cleanup_containers",
    "docker_available",
    "docker_client",
    "image_runtime_status",
    "list_containers",
    "reap_orphans",
    "runtime_files",
    "runtime_sha256",
]
