"""Choose the sandbox pool for an engine: the local process tree or sandbox containers."""

from __future__ import annotations

from typing import Any

from executor.sandbox.pool import PoolConfig, SandboxPool, default_sandbox_python
from executor.settings import Settings


def pool_config(settings: Settings) -> PoolConfig:
    sandbox, limits = settings.sandbox, settings.limits
    return PoolConfig(
        lanes=sandbox.lanes,
        zygotes_per_lane=sandbox.zygotes_per_lane,
        sandbox_uid_base=sandbox.uid_base,
        max_output_chars=limits.max_output_chars,
        max_print_chars=limits.max_print_chars,
        python=default_sandbox_python(sandbox.python),
        build_dir=sandbox.build_dir,
        fast_slots=sandbox.fast_slots,
        max_live=sandbox.max_live,
        demote_after_ms=sandbox.demote_after_ms,
        allow_missing=sandbox.allow_missing,
        forbidden_modules=tuple(settings.policy.forbidden_modules),
    )


def make_pool(settings: Settings, **docker_overrides: Any) -> SandboxPool:
    """A (not yet started) pool for `settings.sandbox.backend`: "local" or "docker".

    The Docker pool takes `settings.docker`; keyword arguments override its fields
    (e.g. `owner=`)."""
    config = pool_config(settings)
    if settings.sandbox.backend == "docker":
        from executor.sandbox.docker_backend import DockerSandboxPool

        docker = settings.docker.model_copy(update=docker_overrides)
        return DockerSandboxPool(config, docker, child_memory_mb=settings.limits.memory_mb)
    return SandboxPool(config)
