"""The sandbox pool against a stand-in zygote (standin_zygote.py): streaming, credit, fairness,
lanes, failures and shutdown.

The stand-in speaks the wire protocol of executor/sandbox/runtime/wire.py with trivial
programs and real concurrency (one forked child per job), and exits with a protocol
violation if the pool ever sends a job without credit. With ``AZR_POOL_ZYGOTE=real`` the
tests that need no simulated zygote fault run against the real zygote (launch.py) instead,
with equivalent Python programs.
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, wait
from pathlib import Path
from typing import Any

import pytest

from executor.sandbox.pool import LocalZygoteChannel, PoolConfig, SandboxPool, ZygoteStartError
from executor.sandbox.protocol import SANDBOX_ERROR, TIMEOUT, ChildResult, SandboxJob
from executor.settings import SandboxSettings

STANDIN = Path(__file__).resolve().with_name("standin_zygote.py")
REAL = os.environ.get("AZR_POOL_ZYGOTE", "standin") == "real"
standin_only = pytest.mark.skipif(REAL, reason="simulates a zygote fault only the stand-in can produce")


# --------------------------------------------------------------------------- programs


def echo() -> str:
    return "def f(x):\n    return x\n" if REAL else "echo"


def sleeping(ms: int) -> str:
    return (
        f"import time\ndef f(x):\n    time.sleep({ms / 1000})\n    return x\n" if REAL else f"sleep:{ms};echo"
    )


def spinning() -> str:
    return "def f(x):\n    while True:\n        pass\n" if REAL else "spin:0"


def hash_probe() -> str:
    return "def f():\n    return hash('azr')\n" if REAL else "hash"


def job(program: str, argument: str = "1", timeout_s: float = 5.0, calls: int = 1) -> SandboxJob:
    return SandboxJob(program, argument, calls=calls, timeout_s=timeout_s)


# --------------------------------------------------------------------------- fixtures


def standin_factory(env: dict[str, str]) -> Callable[[int, int], LocalZygoteChannel]:
    return lambda slot, seed: LocalZygoteChannel([sys.executable, "-S", str(STANDIN)], seed, env)


def zygote_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    """The zygote reader/writer threads started since ``before`` was taken: those of the pools
    under test, not of any other pool alive in the process (the session's engine owns
    threads with the same names)."""
    return [t for t in threading.enumerate() if t.name.startswith("zygote-") and t not in before]


def tagged_processes(tag: str) -> list[int]:
    """Processes (stand-in zygotes and their children) started with STANDIN_TAG=tag."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"STANDIN_TAG={tag}".encode() in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


class Pools:
    """Makes started pools (stand-in zygotes unless AZR_POOL_ZYGOTE=real) and closes them all."""

    def __init__(self, tmp_path: Path) -> None:
        self.threads_before = set(threading.enumerate())  # before any pool of this test exists
        self.tmp_path = tmp_path
        self.tag = uuid.uuid4().hex
        self.log = tmp_path / "jobs.log"
        self.made: list[SandboxPool] = []

    def config(self, **overrides: Any) -> PoolConfig:
        base: dict[str, Any] = {"lanes": 2, "zygotes_per_lane": 1, "demote_after_ms": 100.0}
        if REAL:
            base["sandbox_uid_base"] = 64600 if os.geteuid() == 0 else None
        else:
            base.update(spawn_helper="", sandbox_uid_base=None, python=sys.executable)
        return PoolConfig(**{**base, **overrides})

    def __call__(
        self, env: dict[str, str] | None = None, start: bool = True, **overrides: Any
    ) -> SandboxPool:
        environment = {"STANDIN_TAG": self.tag, "STANDIN_LOG": str(self.log), **(env or {})}
        factory = None if REAL else standin_factory(environment)
        pool = SandboxPool(self.config(**overrides), factory)
        self.made.append(pool)
        if start:
            pool.start()
        return pool

    def received(self) -> list[str]:
        """The programs of every job frame the stand-ins received, in order."""
        if not self.log.exists():
            return []
        return [line.split(" ", 1)[1] for line in self.log.read_text().splitlines()]


@pytest.fixture
def pools(tmp_path: Path) -> Iterator[Pools]:
    made = Pools(tmp_path)
    yield made
    for pool in made.made:
        pool.close()
    if not REAL:
        violations = [line for line in made.received() if "PROTOCOL VIOLATION" in line]
        assert not violations, violations


def done_count(futures: list[Future[ChildResult]]) -> int:
    return sum(1 for f in futures if f.done())


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


# --------------------------------------------------------------------------- basics


def test_results_are_matched_by_job_id_in_completion_order(pools: Pools) -> None:
    pool = pools(lanes=1)
    slow = pool.submit(job(sleeping(400), "'a'"), 0)
    fast = pool.submit(job(sleeping(10), "'b'"), 0)
    assert fast.result(timeout=10).outputs == ("'b'",)
    assert not slow.done(), "the fast job must not wait for the slow one"
    assert slow.result(timeout=10).outputs == ("'a'",)
    assert slow.result().lane == fast.result().lane == 0
    assert pool.executions == 2


def test_many_threads_many_clients_every_result_reaches_its_caller(pools: Pools) -> None:
    pool = pools(lanes=3, fast_slots=2, max_live=4)
    pool.latencies = []
    results: dict[tuple[int, int], ChildResult] = {}
    lock = threading.Lock()

    def client(number: int) -> None:
        futures = []
        for index in range(50):
            item = job(echo(), f"'{number}-{index}'")
            if index % 2:
                futures.append((index, pool.submit(item, index, client=f"c{number}")))
            else:
                futures.append((index, pool.submit_any(item, client=f"c{number}")))
        for index, future in futures:
            result = future.result(timeout=60)
            with lock:
                results[(number, index)] = result

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 400
    for (number, index), result in results.items():
        assert result.ok and result.outputs == (f"'{number}-{index}'",), result
        if index % 2:
            assert result.lane == index % 3, "submit(job, lane) must run on that lane"
    assert pool.executions == 400 and len(pool.latencies) == 400
    assert pool.busy == 0 and pool.queued == 0


def test_lanes_have_distinct_hash_seeds_and_submit_is_strict(pools: Pools) -> None:
    pool = pools(lanes=4, zygotes_per_lane=2)
    assert pool.size == 8 and pool.healthy()
    runs = {
        lane: pool.run([(job(hash_probe(), "" if REAL else "1"), lane + 4 * k) for k in range(4)])
        for lane in range(4)
    }
    hashes = {}
    for lane, results in runs.items():
        assert all(r.ok and r.lane == lane for r in results), results
        assert len({r.outputs for r in results}) == 1, "one lane, one hash seed (both of its zygotes)"
        hashes[lane] = results[0].outputs
    assert len(set(hashes.values())) == 4, "every lane its own hash seed"
    info = pool.zygote_info()
    assert [z["slot"] for z in info] == list(range(8)) and [z["lane"] for z in info] == [
        0,
        0,
        1,
        1,
        2,
        2,
        3,
        3,
    ]
    if not REAL:
        seeds = [int(z["hash_seed"]) for z in info[::2]]
        assert seeds == [seeds[0] + lane for lane in range(4)]  # base + lane + 1


def test_least_loaded_lanes_are_distinct_prefer_idle_lanes_and_rotate(pools: Pools) -> None:
    pool = pools(lanes=4)
    firsts = {pool.least_loaded_lanes(1)[0] for _ in range(8)}
    assert len(firsts) == 4, "ties rotate"
    busy = [
        pool.submit(job(sleeping(600)), 0),
        pool.submit(job(sleeping(600)), 0),
        pool.submit(job(sleeping(600)), 1),
    ]
    wait_until(lambda: pool.busy == 3)
    for _ in range(4):
        assert set(pool.least_loaded_lanes(2)) == {2, 3}
        ranked = pool.least_loaded_lanes(4)
        assert sorted(ranked) == [0, 1, 2, 3] and ranked[2:] == [1, 0]
        assert pool.least_loaded_lanes(1, excluding=[2]) == [3]
        assert pool.least_loaded_lanes(3, excluding=[2, 3])[:2] == [1, 0]
    assert pool.least_loaded_lanes(9) == pool.least_loaded_lanes(9)[:4]
    wait(busy, timeout=10)


@standin_only
def test_statuses_from_every_record_kind(pools: Pools) -> None:
    pool = pools(lanes=1)
    timeout = pool.submit(job("spin:0", timeout_s=0.3), 0).result(timeout=10)
    assert timeout.status == TIMEOUT and "0.3 s" in timeout.detail and timeout.wall_ms >= 300
    crash = pool.submit(job("crash"), 0).result(timeout=10)
    assert crash.status == "runtime_error" and "SIGSEGV" in crash.detail
    silent = pool.submit(job("exit"), 0).result(timeout=10)
    assert silent.status == "runtime_error" and "without a result" in silent.detail
    refused = pool.submit(job("notstart"), 0).result(timeout=10)
    assert refused.status == SANDBOX_ERROR and "could not start a child" in refused.detail
    error = pool.submit(job("error"), 0).result(timeout=10)
    assert error.status == "runtime_error" and error.outputs == ()
    three = pool.submit(job("echo", "[1]", calls=3), 0).result(timeout=10)
    assert three.ok and three.outputs == ("[1]",) * 3 and three.wall_ms > 0 and three.lane == 0
    assert pool.zygote_info()[0]["restarts"] == 0


# --------------------------------------------------------------------------- credit


def test_demotion_gives_the_fast_slot_back(pools: Pools) -> None:
    """One fast slot: a spinning job holds it only until it is demoted, then the next job runs."""
    pool = pools(lanes=1, fast_slots=1, max_live=4, demote_after_ms=50)
    spinner = pool.submit(job(spinning(), timeout_s=3.0), 0, client="A")
    time.sleep(0.02)
    started = time.monotonic()
    quick = pool.submit(job(echo(), "'b'"), 0, client="B").result(timeout=10)
    took = time.monotonic() - started
    assert quick.ok and quick.outputs == ("'b'",)
    assert took < 1.0, f"the job waited {took:.2f} s: demotion did not return the credit"
    assert not spinner.done()
    assert pool.zygote_info()[0]["demoted"] == 1 and pool.busy == 1
    assert spinner.result(timeout=10).status == TIMEOUT


def test_max_live_bounds_the_children_of_a_zygote(pools: Pools) -> None:
    """All demoted, but max_live reached: the next job waits for a child to end."""
    pool = pools(lanes=1, fast_slots=2, max_live=2, demote_after_ms=30)
    spinners = [pool.submit(job(spinning(), timeout_s=0.8), 0) for _ in range(2)]
    wait_until(lambda: pool.zygote_info()[0]["demoted"] == 2)
    started = time.monotonic()
    later = pool.submit(job(echo()), 0)
    time.sleep(0.2)
    assert not later.done() and pool.queued == 1
    assert later.result(timeout=10).ok
    assert time.monotonic() - started > 0.4
    assert [s.result().status for s in spinners] == [TIMEOUT, TIMEOUT]
    assert pool.zygote_info()[0]["restarts"] == 0  # the stand-in exits on a job sent without credit


# --------------------------------------------------------------------------- fairness


@pytest.mark.parametrize("mode", ["shared", "lanes", "mixed"])
def test_one_client_with_64_jobs_cannot_starve_another(pools: Pools, mode: str) -> None:
    """Client A queues 64 jobs of 200 ms on a pool that runs 4 at a time (>= 3.2 s in all);
    client B's single job, submitted right after, must overtake all but a handful of them."""
    pool = pools(lanes=2, fast_slots=2, max_live=2)
    slow = job(sleeping(200))
    started = time.monotonic()
    if mode == "shared":
        flood = [pool.submit_any(slow, client="A") for _ in range(64)]
    else:
        flood = [pool.submit(slow, index, client="A") for index in range(64)]
    wait_until(lambda: pool.busy == 4)  # A holds every slot of the pool; 60 of its jobs wait
    assert pool.queued == 60
    probe = job(echo(), "'B'")
    submitted = time.monotonic()
    single = pool.submit(probe, 1, client="B") if mode == "lanes" else pool.submit_any(probe, client="B")
    result = single.result(timeout=30)
    waited = time.monotonic() - submitted
    overtaken = 64 - done_count(flood)
    assert result.ok and result.outputs == ("'B'",)
    print(f"\nfairness[{mode}]: B waited {waited * 1000:.0f} ms; A had {overtaken} of 64 jobs unfinished")
    # At most one round of A's jobs (200 ms) before a slot frees up and B's turn comes.
    assert waited < 0.6, f"B waited {waited:.2f} s behind A's queue"
    assert overtaken >= 56, "B must overtake A's queue, not wait for it"
    if mode == "shared":
        wait(flood, timeout=60)
        total = time.monotonic() - started
        print(f"fairness[{mode}]: A's 64 jobs took {total:.2f} s in all")
        assert all(f.result().ok for f in flood)
        assert waited < total / 5


# The spinners' wall-clock limit: far longer than the test needs on a loaded 2-core machine
# (all 64 demoted within a few seconds, then 24 quick jobs), so that the measurement always
# falls inside it. The pool is closed at the end of the test, which kills them; nobody waits
# for the limit.
SPIN_TIMEOUT_S = 60.0
ENGINE_DEFAULTS = SandboxSettings()


@pytest.mark.parametrize(
    "credit",
    [
        pytest.param({"fast_slots": 4, "max_live": 32}, id="room-for-more"),
        pytest.param(
            {"fast_slots": ENGINE_DEFAULTS.fast_slots, "max_live": ENGINE_DEFAULTS.max_live},
            id="engine-defaults",
        ),
    ],
)
def test_single_requests_stay_fast_while_64_programs_spin(pools: Pools, credit: dict[str, int]) -> None:
    """The target: a single-task request's p50 latency < 50 ms while another client runs 64
    programs that spin until their timeout, on 4 lanes with the given credit per zygote."""
    pool = pools(lanes=4, **credit)
    flood_started = time.monotonic()
    spinners = [pool.submit_any(job(spinning(), timeout_s=SPIN_TIMEOUT_S), client="A") for _ in range(64)]
    wait_until(lambda: sum(z["demoted"] for z in pool.zygote_info()) == 64, timeout=SPIN_TIMEOUT_S / 2)
    assert pool.busy == 64 and pool.queued == 0
    latencies = []
    for index in range(24):
        started = time.monotonic()
        if index % 2:
            future = pool.submit(job(echo(), f"{index}"), pool.least_loaded_lanes(1)[0], client="B")
        else:
            future = pool.submit_any(job(echo(), f"{index}"), client="B")
        result = future.result(timeout=5)
        latencies.append((time.monotonic() - started) * 1000)
        assert result.ok and result.outputs == (f"{index}",)
    window_s = time.monotonic() - flood_started
    assert done_count(spinners) == 0 and pool.busy == 64, "the measurement must happen while all 64 spin"
    assert window_s < SPIN_TIMEOUT_S
    p50 = statistics.median(latencies)
    print(
        f"\nwhile 64 programs spin ({credit}): single-job latency p50 {p50:.1f} ms, "
        f"max {max(latencies):.1f} ms; the flood had run {window_s:.1f} s"
    )
    assert p50 < 50, latencies


# --------------------------------------------------------------------------- failures


@standin_only
def test_a_crashed_zygote_is_restarted_and_its_jobs_resent_once(pools: Pools, tmp_path: Path) -> None:
    pool = pools(lanes=1)
    first_pid = pool.zygote_info()[0]["pid"]
    marker = tmp_path / "died-once"
    inflight = pool.submit(job(sleeping(300), "'x'"), 0)
    killer = pool.submit(job(f"die_once:{marker}", "'k'"), 0)
    assert inflight.result(timeout=20).outputs == ("'x'",)
    assert killer.result(timeout=20).outputs == ("'k'",)
    info = pool.zygote_info()[0]
    assert info["restarts"] == 1 and info["pid"] != first_pid
    received = pools.received()
    assert received.count("sleep:300;echo") == 2 and received.count(f"die_once:{marker}") == 2

    # A job that kills its zygote every time: re-sent once, then a sandbox error.
    fatal = pool.submit(job("die"), 0).result(timeout=20)
    assert fatal.status == SANDBOX_ERROR and "twice" in fatal.detail and fatal.lane == 0
    assert pools.received().count("die") == 2
    assert pool.zygote_info()[0]["restarts"] == 3
    assert pool.submit(job("echo", "'after'"), 0).result(timeout=10).outputs == ("'after'",)
    assert pool.healthy()


@standin_only
def test_a_corrupt_stream_counts_as_a_failure(pools: Pools) -> None:
    pool = pools(lanes=1)
    result = pool.submit(job("garbage"), 0).result(timeout=20)
    assert result.status == SANDBOX_ERROR and "corrupt" in result.detail
    assert pool.zygote_info()[0]["restarts"] == 2
    assert pool.submit(job("echo"), 0).result(timeout=10).ok


@standin_only
def test_a_hung_zygote_is_replaced_after_the_grace_period(pools: Pools) -> None:
    pool = pools(lanes=1, hang_grace_s=0.3)
    started = time.monotonic()
    result = pool.submit(job("freeze", timeout_s=0.2), 0).result(timeout=20)
    assert result.status == SANDBOX_ERROR and "hangs" in result.detail
    assert 0.9 < time.monotonic() - started < 10
    assert pool.zygote_info()[0]["restarts"] == 2
    assert pool.submit(job("echo"), 0).result(timeout=10).ok


@standin_only
def test_a_zygote_that_refuses_to_start_fails_start_cleanly(pools: Pools) -> None:
    pool = pools(env={"STANDIN_FAIL_START": "1"}, start=False)
    with pytest.raises(ZygoteStartError, match="told to fail"):
        pool.start()
    assert zygote_threads(pools.threads_before) == []
    assert not pool.healthy()
    assert pool.submit(job("echo"), 0).result(timeout=5).status == SANDBOX_ERROR


@standin_only
def test_a_cancelled_job_is_never_sent(pools: Pools) -> None:
    pool = pools(lanes=1, fast_slots=1, max_live=1)
    blocker = pool.submit(job("sleep:300;echo"), 0)
    cancelled = pool.submit(job("sleep:0;hash"), 0)
    assert cancelled.cancel()
    assert pool.submit(job("echo"), 0).result(timeout=10).ok
    assert blocker.result().ok
    assert "sleep:0;hash" not in pools.received()


@standin_only
def test_zygotes_are_recycled_after_recycle_after_jobs(pools: Pools) -> None:
    pool = pools(lanes=1, recycle_after=3)
    pids = set()
    for index in range(7):
        assert pool.submit(job("echo", f"{index}"), 0).result(timeout=10).outputs == (f"{index}",)
        pids.add(pool.zygote_info()[0]["pid"])
    wait_until(lambda: pool.zygote_info()[0]["recycles"] == 2)
    assert pool.zygote_info()[0]["restarts"] == 0 and len(pids) >= 2


# --------------------------------------------------------------------------- shutdown


def test_close_resolves_everything_and_leaves_no_thread_or_process(pools: Pools) -> None:
    threads_before = {t.ident for t in threading.enumerate()}
    pool = pools(lanes=2, fast_slots=2, max_live=4)
    pids = [z["pid"] for z in pool.zygote_info()]
    running = [pool.submit_any(job(sleeping(5000)), client="A") for _ in range(8)]
    queued = [pool.submit(job(sleeping(5000)), lane, client="B") for lane in range(16)]
    wait_until(lambda: pool.busy == 8)
    assert pool.queued == 16 and len(zygote_threads(pools.threads_before)) == 2 * pool.size
    started = time.monotonic()
    pool.close()
    assert time.monotonic() - started < 5
    for future in running + queued:
        assert future.done()
        assert future.result().status == SANDBOX_ERROR and "closed" in future.result().detail
    pool.close()  # idempotent
    assert not pool.healthy()
    late = pool.submit(job(echo()), 0)
    assert late.done() and late.result().status == SANDBOX_ERROR
    assert zygote_threads(pools.threads_before) == []
    assert {t.ident for t in threading.enumerate()} <= threads_before, "no thread may outlive close()"
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"zygote {pid} still exists"
    if not REAL:
        wait_until(lambda: tagged_processes(pools.tag) == [], timeout=5)


def test_context_manager_starts_and_closes(pools: Pools) -> None:
    pool = pools(start=False)
    with pool as running:
        assert running is pool and pool.healthy()
        assert len(zygote_threads(pools.threads_before)) == 2 * pool.size
        assert pool.run([(job(echo(), "'x'"), 1)])[0].outputs == ("'x'",)
    assert not pool.healthy() and zygote_threads(pools.threads_before) == []
