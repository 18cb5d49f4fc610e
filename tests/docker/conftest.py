"""Fixtures for the Docker-backend tests: skip loudly when no engine or image is there."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor.engine import Engine
from executor.limits import Limits
from executor.settings import Settings, load_settings

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

OWNER = f"pytest-{os.getpid()}"


REPO = HERE.parents[1]


def _refresh_sandbox_image(image: str) -> None:
    """Rebuild the sandbox image when it is missing or holds another runtime.py (cached: ~1 s)."""
    from executor.sandbox.docker_backend import DockerUnavailable, docker_client, image_runtime_status

    try:
        client = docker_client(timeout=10)
    except DockerUnavailable:
        return
    current, why = image_runtime_status(client, image)
    build = REPO / "sandbox_images" / "build"
    if current or not build.exists() or os.environ.get("AZR_TEST_NO_IMAGE_BUILD") == "1":
        return
    print(f"\n[tests/docker] {why}: running sandbox_images/build base sandbox", file=sys.stderr)
    env = dict(os.environ, AZR_SKIP_ENSURE_DOCKER="1")
    subprocess.run([str(build), "base", "sandbox"], env=env, check=False, timeout=900)


def _require_docker() -> None:
    from executor.sandbox.docker_backend import docker_available

    image = load_settings().docker.image
    _refresh_sandbox_image(image)
    ok, why = docker_available(image)
    if not ok:
        message = (
            f"\n{'!' * 78}\n!! NO DOCKER ENGINE / SANDBOX IMAGE: the Docker-backend tests are SKIPPED\n"
            f"!! {why}\n!! run: sandbox_images/build   (installs docker.io, starts dockerd, builds images)\n"
            f"{'!' * 78}"
        )
        print(message, file=sys.stderr)
        warnings.warn(message, stacklevel=1)
        pytest.skip(message)


@pytest.fixture(scope="session")
def docker_ready() -> None:
    _require_docker()


@pytest.fixture(scope="session")
def docker_client(docker_ready: None):
    from executor.sandbox.docker_backend import docker_client as make_client

    return make_client()


@pytest.fixture(scope="session")
def seen_containers() -> set[str]:
    """Ids of every sandbox container a test saw; checked for leftovers at the end."""
    return set()


@pytest.fixture(scope="module")
def docker_engine(docker_ready: None, seen_containers: set[str]) -> Iterator[Engine]:
    from executor.sandbox.backends import make_pool

    settings = Settings(sandbox={"backend": "docker"}, limits=Limits(timeout_s=5.0))
    pool = make_pool(settings, owner=f"{OWNER}")
    engine = Engine(settings, pool=pool)
    engine.start()
    seen_containers.update(c.id for c in pool.containers())  # type: ignore[attr-defined]
    yield engine
    seen_containers.update(c.id for c in pool.containers())  # type: ignore[attr-defined]
    engine.close()
