"""Choose the sandbox pool for an engine: the local process tree or sandbox containers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from executor.sandbox.pool import PoolConfig, SandboxPool

if TYPE_CHECKING:  # pragma: no cover
    from executor.engine import EngineSettings

# Headroom above the per-execution address-space limit for the zygote itself and the
# interpreter's own mappings: the container's memory limit covers the zygote and its child.
CONTAINER_MEMORY_HEADROOM_MB = 256


def pool_config(settings: EngineSettings) -> PoolConfig:
    return PoolConfig(
        lanes=settings.lanes,
        zygotes_per_lane=settings.zygotes_per_lane,
        batch_size=settings.batch_size,
        sandbox_uid_base=settings.sandbox_uid_base,
        max_output_chars=settings.limits.max_output_chars,
        max_print_chars=settings.limits.max_print_chars,
    )


def make_pool(settings: EngineSettings, **docker_overrides: Any) -> SandboxPool:
    """A (not yet started) pool for `settings.backend`: "local" or "docker".

    The Docker pool reads the AZR_SANDBOX_* variables (image, socket directory, memory,
    pids, cpus; see executor/sandbox/docker_backend.py); keyword arguments override them.
    """
    config = pool_config(settings)
    if settings.backend == "docker":
        from executor.sandbox.docker_backend import DockerSandboxConfig, DockerSandboxPool

        overrides = dict(docker_overrides)
        overrides.setdefault("memory_mb", settings.limits.memory_mb + CONTAINER_MEMORY_HEADROOM_MB)
        # The wall-clock limit of a whole batch of jobs, before the container counts as hung.
        overrides.setdefault("batch_deadline_s", settings.batch_size * (settings.max_timeout_s + 1) + 60)
        return DockerSandboxPool(config, DockerSandboxConfig.from_env(**overrides))
    if settings.backend != "local":
        raise ValueError(f"unknown sandbox backend {settings.backend!r} (local | docker)")
    return SandboxPool(config)
