"""docker-compose.yml, read as YAML (no Docker needed): the workers' result cache lives in a
Redis of its own, a bounded LRU cache, while the queue's Redis keeps the image's settings
(AOF, noeviction). tests/docker/test_compose_e2e.py brings the same file up for real."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


def services() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert document["version"] == "2.4"  # Debian's docker-compose 1.29 reads it
    found: dict[str, Any] = document["services"]
    return found


def flag(command: list[str], name: str) -> str:
    assert command.count(name) == 1, (name, command)
    return command[command.index(name) + 1]


def size_bytes(size: str) -> int:
    """Sizes as Redis (512mb) and compose's mem_limit (768m) write them, both in powers of 2."""
    units = {"k": 2**10, "m": 2**20, "g": 2**30}
    number = size.lower().removesuffix("b")
    return int(number[:-1]) * units[number[-1]] if number[-1] in units else int(number)


def test_the_result_cache_is_a_bounded_lru_redis() -> None:
    cache = services()["redis-cache"]
    queue = services()["redis"]
    assert cache["image"] == queue["image"] == "${AZR_REDIS_IMAGE:-azr/redis:latest}"
    command = cache["command"]
    # The image's entrypoint is redis-server; `command` replaces its CMD, bind included.
    assert flag(command, "--bind") == "0.0.0.0" and flag(command, "--protected-mode") == "no"
    assert flag(command, "--maxmemory-policy") == "allkeys-lru"
    assert flag(command, "--save") == "" and flag(command, "--appendonly") == "no"
    maxmemory = size_bytes(flag(command, "--maxmemory"))
    assert 0 < maxmemory <= 0.8 * size_bytes(cache["mem_limit"])
    assert "volumes" not in cache  # nothing to keep
    assert cache["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_the_queue_redis_keeps_its_aof_and_noeviction() -> None:
    queue = services()["redis"]
    # No command: the image's CMD (sandbox_images/redis/Dockerfile), AOF on, and Redis'
    # default policy, noeviction.
    assert "command" not in queue
    dockerfile = (ROOT / "sandbox_images" / "redis" / "Dockerfile").read_text()
    assert '"--appendonly", "yes"' in dockerfile and "maxmemory" not in dockerfile
    assert any(volume.endswith(":/data") for volume in queue["volumes"])


def test_only_the_workers_use_the_cache_redis() -> None:
    found = services()
    worker, api = found["worker"], found["api"]
    assert worker["environment"]["AZR_CACHE_REDIS_URL"] == "redis://redis-cache:6379/0"
    assert worker["environment"]["AZR_REDIS_URL"] == "redis://redis:6379/0"
    assert worker["depends_on"]["redis-cache"] == {"condition": "service_healthy"}
    assert worker["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert "AZR_CACHE_REDIS_URL" not in api["environment"] and "redis-cache" not in api["depends_on"]
