"""The Docker engine: a client for it, or why there is none."""

from __future__ import annotations

from typing import Any


class DockerUnavailable(RuntimeError):
    """No Docker engine answers, or the sandbox image is missing."""


def docker_client(url: str | None = None, timeout: float = 60.0) -> Any:
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
