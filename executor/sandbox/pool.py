"""A pool of warm zygotes, arranged in lanes with distinct hash seeds.

Repeat ``j`` of a determinism check goes to lane ``(base + j) % lanes``, so two
repeats of one (program, input) always run in different interpreter processes,
started with different ``PYTHONHASHSEED`` values (and so different address
layouts).  Each zygote is driven by one thread that takes jobs from its lane's
queue in small batches, so a batch costs one round trip to the zygote while every
job still runs in its own forked child.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from executor.sandbox import native, runtime

log = logging.getLogger(__name__)

RUNTIME_PATH = Path(runtime.__file__).resolve()
LAUNCH_PATH = RUNTIME_PATH.with_name("launch.py")
# LD_BIND_NOW: the dynamic linker resolves every symbol when the zygote starts, so no
# child pays for lazy binding (a lookup and its page faults) on its first call of a libc
# function the zygote never called (setuid, prctl, ...): about 5 % of an execution.
ZYGOTE_ENVIRONMENT = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LD_BIND_NOW": "1"}
Job = dict[str, Any]
Result = dict[str, Any]


def default_sandbox_python() -> str:
    """The system interpreter: its stdlib is world-readable, unlike a per-user install.

    Children drop to an unprivileged uid, so an interpreter under /root (pyenv) could
    not import any module that the zygote did not preload.
    """
    for candidate in (os.environ.get("AZR_SANDBOX_PYTHON", ""), "/usr/bin/python3", sys.executable):
        if candidate and os.path.exists(candidate):
            return os.path.realpath(candidate)
    return os.path.realpath(sys.executable)


@dataclass
class PoolConfig:
    lanes: int = 4
    zygotes_per_lane: int = 1
    batch_size: int = 16
    sandbox_uid_base: int | None = 61000
    max_output_chars: int = 200_000
    max_print_chars: int = 1_000_000
    python: str = field(default_factory=lambda: default_sandbox_python())
    # Path of the C fork loop (spawn.c) as the zygote sees it; None: built here for
    # `python` when possible (executor.sandbox.native), "" to fork in Python.
    spawn_helper: str | None = None


class ZygoteChannel(Protocol):
    """A running zygote reached over a byte stream (a local process, or a container)."""

    reader: IO[bytes]
    writer: IO[bytes]

    def alive(self) -> bool: ...

    def close(self) -> None: ...


class LocalZygoteChannel:
    """A zygote as a child process of this one, spoken to over its stdin/stdout."""

    def __init__(self, python: str, hash_seed: int) -> None:
        env = {"PYTHONHASHSEED": str(hash_seed), **ZYGOTE_ENVIRONMENT}
        self.process = subprocess.Popen(
            [python, "-s", "-S", "-B", str(LAUNCH_PATH), str(RUNTIME_PATH)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            env=env,
            close_fds=True,
            start_new_session=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.writer = self.process.stdin
        self.reader = self.process.stdout

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        for stream in (self.writer, self.reader):
            try:
                stream.close()
            except OSError:
                pass
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


ChannelFactory = Callable[[int, int], ZygoteChannel]


def local_channel_factory(config: PoolConfig) -> ChannelFactory:
    return lambda slot, seed: LocalZygoteChannel(config.python, seed)


class ZygoteDied(RuntimeError):
    pass


class ZygoteClient:
    """One zygote: hello handshake, then batches of jobs."""

    def __init__(self, factory: ChannelFactory, slot: int, seed: int, hello: dict[str, Any]) -> None:
        self.factory = factory
        self.slot = slot
        self.seed = seed
        self.hello = hello
        self.channel: ZygoteChannel | None = None
        self.info: dict[str, Any] = {}
        self.restarts = 0

    def start(self) -> None:
        self.channel = self.factory(self.slot, self.seed)
        runtime.write_frame(self.channel.writer, self.hello)
        ready = runtime.read_frame(self.channel.reader)
        if not ready or "ready" not in ready:
            raise ZygoteDied(f"zygote {self.slot} did not start")
        self.info = ready["ready"]

    def run(self, jobs: Sequence[Job]) -> list[Result]:
        if self.channel is None or not self.channel.alive():
            self.restart()
        assert self.channel is not None
        try:
            runtime.write_frame(self.channel.writer, {"jobs": list(jobs)})
            results = runtime.read_results(self.channel.reader)
        except (OSError, ValueError) as exc:
            raise ZygoteDied(f"zygote {self.slot}: {exc}") from exc
        if results is None:
            raise ZygoteDied(f"zygote {self.slot} closed its channel")
        if len(results) != len(jobs):
            raise ZygoteDied(f"zygote {self.slot} answered {len(results)} results for {len(jobs)} jobs")
        return results

    def restart(self) -> None:
        self.close()
        self.restarts += 1
        log.warning("restarting zygote %d (restart #%d)", self.slot, self.restarts)
        self.start()

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None


@dataclass
class _Pending:
    job: Job
    future: Future[Result]


# In a lane's queue: "a job in the shared queue is waiting" (see SandboxPool.submit_any).
_SHARED = object()


class SandboxPool:
    """Lanes of zygotes; `submit(job, lane)` returns a Future of the job's result."""

    def __init__(self, config: PoolConfig | None = None, factory: ChannelFactory | None = None) -> None:
        self.config = config or PoolConfig()
        self.factory = factory or local_channel_factory(self.config)
        self._queues: list[queue.SimpleQueue[Any]] = [queue.SimpleQueue() for _ in range(self.config.lanes)]
        # Jobs any lane may run (no hash-seed constraint): whichever zygote is free first
        # takes the next one, so one long execution does not hold up the jobs behind it.
        self._shared: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._shared_tokens = itertools.count()
        self._threads: list[threading.Thread] = []
        self._zygotes: list[ZygoteClient] = []
        self._busy_lock = threading.Lock()
        self._lane_busy = [0] * self.config.lanes  # zygotes of each lane running a batch now
        self._rotation = itertools.count()
        self._started = False
        self._start_lock = threading.Lock()
        self.executions = 0
        self.on_batch: Callable[[int, float], None] | None = None
        # When set to a list, every result's in-zygote wall time (fork -> result -> reaped), in ms,
        # is appended to it (the benchmark reads per-execution latency from here).
        self.latencies: list[float] | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        with self._start_lock:
            if self._started:
                return
            base_seed = int.from_bytes(os.urandom(2), "big") * 64
            spawn_helper = self.config.spawn_helper
            if spawn_helper is None:
                spawn_helper = native.spawn_helper(self.config.python)
            for lane in range(self.config.lanes):
                for index in range(self.config.zygotes_per_lane):
                    slot = lane * self.config.zygotes_per_lane + index
                    uid = None
                    if self.config.sandbox_uid_base is not None:
                        uid = self.config.sandbox_uid_base + slot
                    hello = {
                        "max_output_chars": self.config.max_output_chars,
                        "max_print_chars": self.config.max_print_chars,
                        "sandbox_uid": uid,
                        "sandbox_gid": uid,
                        "spawn_helper": spawn_helper or None,
                    }
                    zygote = ZygoteClient(self.factory, slot, base_seed + lane + 1, hello)
                    zygote.start()
                    self._zygotes.append(zygote)
                    thread = threading.Thread(
                        target=self._serve_lane, args=(zygote, lane), daemon=True, name=f"zygote-{slot}"
                    )
                    thread.start()
                    self._threads.append(thread)
            self._started = True
            log.info(
                "sandbox pool ready: %d lanes x %d zygotes, seccomp=%s, fork loop in %s",
                self.config.lanes,
                self.config.zygotes_per_lane,
                self._zygotes[0].info.get("seccomp"),
                "C" if self._zygotes[0].info.get("spawn") == "c" else "Python",
            )

    def close(self) -> None:
        with self._start_lock:
            if not self._started:
                return
            for lane_queue in self._queues:
                for _ in range(self.config.zygotes_per_lane):
                    lane_queue.put(None)
            for thread in self._threads:
                thread.join(timeout=30)
            for zygote in self._zygotes:
                zygote.close()
            self._zygotes.clear()
            self._threads.clear()
            self._started = False

    def __enter__(self) -> SandboxPool:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ state
    @property
    def size(self) -> int:
        return self.config.lanes * self.config.zygotes_per_lane

    @property
    def busy(self) -> int:
        return sum(self._lane_busy)

    def zygote_info(self) -> list[dict[str, Any]]:
        return [dict(z.info, slot=z.slot, restarts=z.restarts) for z in self._zygotes]

    def healthy(self) -> bool:
        return self._started and all(z.channel is not None and z.channel.alive() for z in self._zygotes)

    # ------------------------------------------------------------------ work
    def submit(self, job: Job, lane: int) -> Future[Result]:
        if not self._started:
            self.start()
        future: Future[Result] = Future()
        self._queues[lane % self.config.lanes].put(_Pending(job, future))
        return future

    def least_loaded_lanes(self, count: int, excluding: Sequence[int] = ()) -> list[int]:
        """`count` distinct lanes (not in `excluding`, as far as there are enough), those
        with the least work first (jobs waiting plus zygotes busy with a batch), so that a
        small request does not queue behind a long execution while another lane is idle.
        Ties rotate, to spread the load."""
        lanes = self.config.lanes
        start = next(self._rotation)
        skip = {lane % lanes for lane in excluding}
        rotated = [(start + offset) % lanes for offset in range(lanes)]
        ranked = sorted(  # stable: equal loads keep the rotated order
            rotated, key=lambda lane: (lane in skip, self._queues[lane].qsize() + self._lane_busy[lane])
        )
        return ranked[: max(1, min(count, lanes))]

    def submit_any(self, job: Job) -> Future[Result]:
        """Like `submit`, on whichever lane is free first; the result's "lane" says which.

        The job goes to a shared queue and a token to one lane's queue (round robin), so
        that an idle lane wakes for it; a lane that finds the shared queue already emptied
        by the others just goes on. Busy lanes also take shared jobs when their own queue
        runs dry while they fill a batch."""
        if not self._started:
            self.start()
        future: Future[Result] = Future()
        self._shared.put(_Pending(job, future))
        self._queues[next(self._shared_tokens) % self.config.lanes].put(_SHARED)
        return future

    def run(self, jobs: Sequence[tuple[Job, int]]) -> list[Result]:
        """Run (job, lane) pairs and wait for all results, in order."""
        futures = [self.submit(job, lane) for job, lane in jobs]
        return [future.result() for future in futures]

    def _take_shared(self) -> _Pending | None:
        try:
            return self._shared.get_nowait()
        except queue.Empty:
            return None

    def _serve_lane(self, zygote: ZygoteClient, lane: int) -> None:
        lane_queue = self._queues[lane]
        while True:
            first = lane_queue.get()
            if first is None:
                return
            if first is _SHARED:
                first = self._take_shared()
                if first is None:
                    continue  # another lane ran it already
            batch: list[_Pending] = [first]
            # Beyond the shared jobs signalled to this lane, take at most a fair share of the
            # rest (their tokens may wait behind a long execution in another lane).
            extra = -(-self._shared.qsize() // self.config.lanes)
            while len(batch) < self.config.batch_size:
                try:
                    item = lane_queue.get_nowait()
                except queue.Empty:
                    item = self._take_shared() if extra > 0 else None
                    if item is None:
                        break
                    extra -= 1
                if item is None:
                    lane_queue.put(None)
                    break
                if item is _SHARED:
                    item = self._take_shared()
                    if item is None:
                        continue
                batch.append(item)
            with self._busy_lock:
                self._lane_busy[lane] += 1
            started = time.perf_counter()
            try:
                results = self._run_with_retry(zygote, [p.job for p in batch])
            finally:
                with self._busy_lock:
                    self._lane_busy[lane] -= 1
            self.executions += len(batch)
            if self.latencies is not None:
                self.latencies.extend(float(r.get("wall_ms", 0.0)) for r in results if "wall_ms" in r)
            if self.on_batch is not None:
                self.on_batch(len(batch), time.perf_counter() - started)
            for pending, result in zip(batch, results, strict=True):
                result["lane"] = lane
                pending.future.set_result(result)

    def _run_with_retry(self, zygote: ZygoteClient, jobs: list[Job]) -> list[Result]:
        for attempt in range(2):
            try:
                return zygote.run(jobs)
            except ZygoteDied as exc:
                log.error("sandbox failure on attempt %d: %s", attempt + 1, exc)
                try:
                    zygote.restart()
                except Exception as restart_error:  # noqa: BLE001
                    log.error("zygote restart failed: %s", restart_error)
        detail = "the sandbox failed twice while running this job"
        return [{"status": "sandbox_error", "detail": detail} for _ in jobs]
