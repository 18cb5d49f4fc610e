"""The sandbox pool on containers: a channel factory and the pool that owns what it starts."""

from __future__ import annotations

import atexit
import logging
import threading
from typing import Any, cast

from executor.limits import Limits
from executor.sandbox.docker_backend.channel import DockerZygoteChannel
from executor.sandbox.docker_backend.cleanup import cleanup_containers, list_containers, reap_orphans
from executor.sandbox.docker_backend.config import resolved
from executor.sandbox.docker_backend.engine import DockerUnavailable, docker_client
from executor.sandbox.docker_backend.image import IMAGE_SPAWN_HELPER, image_runtime_status
from executor.sandbox.pool import ChannelFactory, PoolConfig, SandboxPool
from executor.settings import DockerSettings, load_settings

log = logging.getLogger(__name__)


class DockerChannelFactory:
    """`factory(slot, hash_seed) -> DockerZygoteChannel`, as SandboxPool expects."""

    def __init__(self, config: DockerSettings, client: Any = None) -> None:
        """`config`: resolved (see `resolved`)."""
        self.config = config
        self._client = client
        self._lock = threading.Lock()
        self.started = 0

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = docker_client(self.config.docker_url)
        return self._client

    def prepare(self) -> None:
        """Check the engine and image, and reap containers whose owner is gone."""
        client = self.client
        current, why = image_runtime_status(client, self.config.image)
        if not current:
            # Another runtime may speak another protocol (the streaming one is not the
            # batch one before it): refuse, unless told to go on regardless.
            if "missing" in why or self.config.image_mismatch != "warn":
                raise DockerUnavailable(why + " (AZR_SANDBOX_IMAGE_MISMATCH=warn to start anyway)")
            log.warning("%s", why)
        if self.config.reap_orphans:
            reaped = reap_orphans(client)
            if reaped:
                log.warning("removed %d sandbox container(s) left behind by dead workers", reaped)
        # Our own leftovers (a restarted worker with a fixed AZR_WORKER_ID).
        cleanup_containers(self.config.owner, client=client, socket_dir=self.config.socket_dir)

    def __call__(self, slot: int, hash_seed: int) -> DockerZygoteChannel:
        channel = DockerZygoteChannel(self.client, self.config, slot, hash_seed)
        with self._lock:
            self.started += 1
        return channel

    def cleanup(self) -> int:
        return cleanup_containers(self.config.owner, client=self._client, socket_dir=self.config.socket_dir)


class DockerSandboxPool(SandboxPool):
    """A SandboxPool whose zygotes live in sandbox containers; removes them all on close."""

    def __init__(
        self,
        config: PoolConfig | None = None,
        docker_config: DockerSettings | None = None,
        child_memory_mb: int = Limits().memory_mb,
    ) -> None:
        """`docker_config`: default, the environment's (`executor.settings`); `child_memory_mb`:
        the memory limit of one execution, which the container's own limit makes room for."""
        config = config or PoolConfig()
        docker = docker_config if docker_config is not None else load_settings().docker
        self.docker_factory = DockerChannelFactory(resolved(docker, config.max_live, child_memory_mb))
        if config.spawn_helper is None:  # the image's own build, not this host's
            config.spawn_helper = IMAGE_SPAWN_HELPER
        if not config.recycle_after:
            config.recycle_after = self.docker_factory.config.recycle_after
        super().__init__(config, cast(ChannelFactory, self.docker_factory))
        self._atexit_registered = False

    @property
    def owner(self) -> str:
        return self.docker_factory.config.owner

    def sibling(self, config: PoolConfig) -> SandboxPool:
        """Containers of their own: closing the sibling removes only what it started."""
        own = self.docker_factory.config.model_copy(update={"owner": f"{self.owner}-probe"[:60]})
        return DockerSandboxPool(config, own)

    def start(self) -> None:
        if self._state == "running":
            return
        self.docker_factory.prepare()
        if not self._atexit_registered:
            atexit.register(self.docker_factory.cleanup)
            self._atexit_registered = True
        try:
            super().start()
        except BaseException:
            self.docker_factory.cleanup()
            raise

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.docker_factory.cleanup()

    def containers(self) -> list[Any]:
        return list_containers(self.owner, client=self.docker_factory.client)
