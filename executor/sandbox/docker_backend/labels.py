"""Who owns a sandbox container: the labels a worker puts on its containers, and how to read them."""

from __future__ import annotations

import os
import re
import socket
import uuid

LABEL_SANDBOX = "azr.sandbox"
LABEL_OWNER = "azr.owner"
LABEL_OWNER_HOST = "azr.owner.host"
LABEL_OWNER_PID = "azr.owner.pid"
LABEL_OWNER_START = "azr.owner.start"
LABEL_PARENT = "azr.owner.container"
LABEL_SLOT = "azr.slot"


def process_start_ticks(pid: int) -> str:
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


def owner_labels(owner: str) -> dict[str, str]:
    """The labels that tie a container to this process: its owner, host, pid, start time and
    (when this process runs in a container) that container."""
    return {
        LABEL_SANDBOX: "1",
        LABEL_OWNER: owner,
        LABEL_OWNER_HOST: socket.gethostname(),
        LABEL_OWNER_PID: str(os.getpid()),
        LABEL_OWNER_START: process_start_ticks(os.getpid()),
        LABEL_PARENT: own_container_id(),
    }
