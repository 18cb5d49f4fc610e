"""Removing sandbox containers: one's own when a pool closes, and those whose worker died."""

from __future__ import annotations

import logging
import os
import shutil
import socket
from typing import Any

from executor.sandbox.docker_backend.engine import DockerUnavailable, docker_client
from executor.sandbox.docker_backend.labels import (
    LABEL_OWNER,
    LABEL_OWNER_HOST,
    LABEL_OWNER_PID,
    LABEL_OWNER_START,
    LABEL_PARENT,
    LABEL_SANDBOX,
    own_container_id,
    process_start_ticks,
)

log = logging.getLogger(__name__)


def remove_container(container: Any) -> None:
    try:
        container.remove(force=True)
    except Exception as exc:  # noqa: BLE001 - NotFound (auto-removed) is the usual case
        if (
            "404" not in str(exc)
            and "No such container" not in str(exc)
            and "already in progress" not in str(exc)
        ):
            log.warning("could not remove sandbox container %s: %s", getattr(container, "name", "?"), exc)


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
        remove_container(container)
    if owner and socket_dir:
        shutil.rmtree(os.path.join(socket_dir, owner), ignore_errors=True)
    return len(found)


def owner_gone(labels: dict[str, str], client: Any, created: str) -> bool:
    """Whether the worker that made a container (its labels) is gone."""
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
    return process_start_ticks(pid) != labels.get(LABEL_OWNER_START)


def reap_orphans(client: Any = None) -> int:
    """Remove sandbox containers whose owning worker (process or container) is gone."""
    client = client or docker_client()
    removed = 0
    for container in list_containers(None, client):
        labels = container.labels or {}
        created = container.attrs.get("Created", "")
        if owner_gone(labels, client, created):
            remove_container(container)
            removed += 1
    return removed
