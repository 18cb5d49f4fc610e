"""The start-up self-test: passes on the real sandbox, and notices a missing kernel layer."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from conftest import TEST_UID_BASE

from executor.sandbox.pool import PoolConfig, SandboxPool
from executor.sandbox.protocol import ZygoteHello
from executor.sandbox.selftest import self_test


def test_the_real_sandbox_passes_the_self_test() -> None:
    with SandboxPool(PoolConfig(lanes=1, zygotes_per_lane=1, sandbox_uid_base=TEST_UID_BASE + 200)) as pool:
        assert self_test(pool) == []


@dataclass
class _Skipping(PoolConfig):
    """A pool whose zygotes skip one kernel layer on purpose (the hello's test-only switch)."""

    skip: tuple[str, ...] = ()

    def hello(self, slot: int, spawn_helper: str | None) -> ZygoteHello:
        hello = super().hello(slot, spawn_helper)
        return dataclasses.replace(hello, skip_layers=self.skip)


@pytest.fixture(params=["landlock", "seccomp"])
def weakened(request: pytest.FixtureRequest) -> Iterator[SandboxPool]:
    config = _Skipping(
        lanes=1, sandbox_uid_base=TEST_UID_BASE + 210, allow_missing=(request.param,), skip=(request.param,)
    )
    with SandboxPool(config) as pool:
        yield pool


def test_a_zygote_without_a_layer_refuses_unless_downgraded() -> None:
    config = _Skipping(lanes=1, sandbox_uid_base=TEST_UID_BASE + 220, skip=("landlock",))
    pool = SandboxPool(config)
    with pytest.raises(Exception, match="landlock"):
        pool.start()
    pool.close()


def test_the_self_test_notices_a_missing_kernel_layer(weakened: SandboxPool) -> None:
    info = weakened.zygote_info()[0]
    assert info["downgraded"], info
    failures = self_test(weakened)
    assert failures, "a zygote without a kernel layer passed the self-test"
