"""The start-up self-test and the backend switch, without Docker: the suite must not be vacuous."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future

import pytest

from executor.sandbox.backends import make_pool
from executor.sandbox.pool import PoolConfig, SandboxPool
from executor.sandbox.protocol import ChildResult, SandboxJob
from executor.sandbox.selftest import PROBES, self_test
from executor.settings import Settings


class FakePool:
    """Answers every job with a fixed function of the job; its own sibling (the probe pool)."""

    def __init__(self, answer: Callable[[SandboxJob], ChildResult | None]) -> None:
        self.config = PoolConfig(lanes=2)
        self.size = 2
        self.answer = answer

    def sibling(self, config: PoolConfig) -> FakePool:
        assert not config.python_layers, "the probes must run without the Python layers"
        return self

    def start(self) -> None:
        return None

    def close(self) -> None:
        return None

    def submit(self, job: SandboxJob, lane: int, client: str = "") -> Future[ChildResult]:
        future: Future[ChildResult] = Future()
        future.set_result(self.answer(job) or ChildResult("forbidden", (), "refused"))
        return future


def _control_ok(job: SandboxJob) -> ChildResult | None:
    if job.input == "[3, 1, 2]":
        return ChildResult("ok", ("[3, 2, 1]", "[3, 2, 1]"))
    return None


def test_a_sandbox_that_lets_everything_through_fails() -> None:
    pool = FakePool(lambda job: _control_ok(job) or ChildResult("ok", ("'ESCAPED: yes'",)))
    failures = self_test(pool)  # type: ignore[arg-type]
    assert len(failures) >= len(PROBES)


def test_a_sandbox_that_refuses_everything_is_not_safe_either() -> None:
    pool = FakePool(lambda job: ChildResult("sandbox_error", (), "broken"))
    failures = self_test(pool)  # type: ignore[arg-type]
    assert any("control program" in f for f in failures)


def test_a_leaked_environment_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZR_TEST_SECRET", "hunter2")

    def answer(job: SandboxJob) -> ChildResult:
        if "os.environ" in job.program:
            return ChildResult("ok", (repr({"PATH": "/usr/bin", "AZR_TEST_SECRET": "hunter2"}),))
        return _control_ok(job) or ChildResult("forbidden", (), "refused")

    failures = self_test(FakePool(answer))  # type: ignore[arg-type]
    assert failures and "AZR_TEST_SECRET" in failures[0]


def test_a_sound_sandbox_passes() -> None:
    pool = FakePool(_control_ok)
    assert self_test(pool) == []  # type: ignore[arg-type]


def test_make_pool_chooses_the_backend() -> None:
    local = make_pool(Settings(sandbox={"backend": "local"}))
    assert type(local) is SandboxPool
    from executor.sandbox.docker_backend import DockerSandboxPool

    docker = make_pool(
        Settings(sandbox={"backend": "docker", "lanes": 2, "zygotes_per_lane": 1}), owner="unit-test"
    )
    assert isinstance(docker, DockerSandboxPool)
    assert docker.size == 2 and docker.owner == "unit-test"
    docker.close()  # never started: nothing to remove, must not raise


def test_the_real_local_sandbox_passes_the_self_test() -> None:
    pool = make_pool(Settings(sandbox={"backend": "local", "lanes": 2}))
    with pool:
        assert self_test(pool) == []
