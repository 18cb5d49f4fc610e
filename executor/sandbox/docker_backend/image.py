"""The sandbox image's identity: which runtime it holds, and whether it is this checkout's."""

from __future__ import annotations

import hashlib
from typing import Any

from executor.sandbox.pool import LAUNCH_PATH, RUNTIME_DIR

LABEL_RUNTIME_SHA = "azr.runtime.sha256"
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
