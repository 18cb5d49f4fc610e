"""A pool of warm zygotes, arranged in lanes with distinct hash seeds, fed fairly.

Lanes. ``config.lanes`` hash-seed lanes of ``config.zygotes_per_lane`` zygotes each; every
zygote of lane ``l`` runs with ``PYTHONHASHSEED = base + l + 1``. Repeat ``j`` of a
determinism check is submitted to its own lane (``submit(job, lane)`` is strict: the job
runs on that lane or fails), so two repeats of one (program, input) always run in
different interpreter processes with different hash seeds. ``submit_any`` is for jobs
without that constraint: whichever zygote has room first runs them.

Streaming. A zygote runs up to ``max_live`` children at once, at most ``fast_slots`` of
them "fast": a child that has run past ``demote_after_ms`` is demoted to the lowest CPU
priority (a ``DEMOTED`` record) and frees its fast slot. The zygote reads a job only
while it has a free fast slot and room for another child, so the queueing happens here:
a zygote is sent a job only while it has *credit*
(``fast in flight < fast_slots and live < max_live``), and the credit comes back with
each final record and each ``DEMOTED`` record.

Fairness. Jobs wait in one FIFO per client, per lane (``submit``) and in a shared set
(``submit_any``). A zygote with credit takes the next job round robin across the clients
of the queue it serves, alternating between its lane's queue and the shared one, so a
client with 64 queued jobs delays another client's single job by at most one turn.

Threads. Two per zygote: a writer that waits (on a condition, never polling) until its
zygote has credit and a job is waiting, then sends it; and a reader that turns record
frames into results and gives the credit back. The reader never writes, so a zygote that
blocks while writing a large record can never deadlock against us. Futures are resolved
outside the pool's lock: a done-callback may submit more work.

Failure. When a zygote's stream ends or is corrupt (or a job outlives its own timeout
by ``hang_grace_s``, i.e. the zygote hangs), the zygote is restarted; every job that was
in flight on it is re-sent once to the restarted zygote (same lane), and resolved as a
``sandbox_error`` if it is in flight at a second failure.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import logging
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from executor.limits import Limits
from executor.sandbox import native, runtime
from executor.sandbox.protocol import ChildResult, SandboxJob, ZygoteHello, decode_record
from executor.sandbox.runtime import wire
from executor.settings import SandboxSettings

log = logging.getLogger(__name__)

RUNTIME_DIR = Path(runtime.__file__).resolve().parent
# launch.py loads the runtime package beside it and runs the zygote on stdin/stdout
# (or on a unix socket with --socket PATH, in a sandbox container).
LAUNCH_PATH = RUNTIME_DIR.parent / "launch.py"
# LD_BIND_NOW: the dynamic linker resolves every symbol when the zygote starts, so no
# child pays for lazy binding (a lookup and its page faults) on its first call of a libc
# function the zygote never called (setuid, prctl, ...): about 5 % of an execution.
ZYGOTE_ENVIRONMENT = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LD_BIND_NOW": "1"}

# A job frame starts with its job id (wire.JOB); the pool encodes a job once, at submit
# time, and writes the id in when it sends the frame (a re-sent job gets a new id).
_JOB_ID = struct.Struct(">Q")
assert wire.JOB.format.startswith(">Q"), "wire.JOB must start with the job id"

_READY, _STARTING, _RESTARTING, _DOWN = "ready", "starting", "restarting", "down"


def default_sandbox_python(configured: str = "") -> str:
    """`configured` (AZR_SANDBOX_PYTHON) if it exists, else the system interpreter: its stdlib
    is world-readable, unlike a per-user install.

    Children drop to an unprivileged uid, so an interpreter under /root (pyenv) could
    not import any module that the zygote did not preload.
    """
    for candidate in (configured, "/usr/bin/python3", sys.executable):
        if candidate and os.path.exists(candidate):
            return os.path.realpath(candidate)
    return os.path.realpath(sys.executable)


def zygote_command(python: str) -> list[str]:
    """How a local zygote is started (stdin/stdout are its channel)."""
    return [python, "-s", "-S", "-B", str(LAUNCH_PATH)]


# The settings tree's defaults (executor.settings): a pool built without settings gets them too.
_SANDBOX = SandboxSettings()
_LIMITS = Limits()


@dataclass
class PoolConfig:
    """How a pool is built; `executor.sandbox.backends.pool_config` fills it from the settings tree."""

    lanes: int = _SANDBOX.lanes
    zygotes_per_lane: int = _SANDBOX.zygotes_per_lane
    sandbox_uid_base: int | None = _SANDBOX.uid_base
    max_output_chars: int = _LIMITS.max_output_chars
    max_print_chars: int = _LIMITS.max_print_chars
    python: str = field(default_factory=default_sandbox_python)
    # Where the C loop is built for `python` (empty: ~/.cache/azr-exec; see executor.sandbox.native).
    build_dir: str = _SANDBOX.build_dir
    # Path of the C loop (runtime/spawn.c, built) as the zygote sees it; None: built here
    # for `python` (executor.sandbox.native). Without it a zygote refuses to start.
    spawn_helper: str | None = None
    # Children of one zygote that count as fast (run for less than demote_after_ms).
    fast_slots: int = _SANDBOX.fast_slots
    # All live children of one zygote, demoted ones included.
    max_live: int = _SANDBOX.max_live
    demote_after_ms: float = _SANDBOX.demote_after_ms
    # Confinement layers a zygote may do without (an explicit downgrade; see ZygoteHello).
    allow_missing: tuple[str, ...] = _SANDBOX.allow_missing
    # Modules the policy forbids, refused at run time inside the sandbox too.
    forbidden_modules: tuple[str, ...] = ()
    # Test only: zygotes without the in-process Python layers (audit hook, module guards),
    # to show that the kernel layers hold on their own (the start-up self-test uses it).
    python_layers: bool = True
    # A job still unanswered this long after its own wall-clock timeout means that its
    # zygote hangs: the zygote is replaced and its jobs re-sent.
    hang_grace_s: float = 30.0
    # Longest a zygote may take from start to its ready frame.
    start_timeout_s: float = 60.0
    # Replace a zygote after it has been sent this many jobs (0: never), once they are done.
    recycle_after: int = 0

    def __post_init__(self) -> None:
        if self.lanes < 1 or self.zygotes_per_lane < 1:
            raise ValueError("a pool needs at least one lane and one zygote per lane")
        if self.fast_slots < 1 or self.max_live < self.fast_slots:
            raise ValueError("need 1 <= fast_slots <= max_live")
        self.allow_missing = tuple(self.allow_missing)
        self.forbidden_modules = tuple(self.forbidden_modules)

    def hello(self, slot: int, spawn_helper: str | None) -> ZygoteHello:
        uid = None if self.sandbox_uid_base is None else self.sandbox_uid_base + slot
        return ZygoteHello(
            max_output_chars=self.max_output_chars,
            max_print_chars=self.max_print_chars,
            sandbox_uid=uid,
            sandbox_gid=uid,
            spawn_helper=spawn_helper or None,
            fast_slots=self.fast_slots,
            max_live=self.max_live,
            demote_after_ms=self.demote_after_ms,
            allow_missing=self.allow_missing,
            forbidden_modules=self.forbidden_modules,
            python_layers=self.python_layers,
        )


# --------------------------------------------------------------------------- channels


class ByteReader(Protocol):
    def read(self, size: int, /) -> bytes: ...


class ByteWriter(Protocol):
    def write(self, data: bytes, /) -> Any: ...

    def flush(self) -> None: ...


class ZygoteChannel(Protocol):
    """A running zygote reached over a byte stream (a local process, or a container).

    ``reader`` is read by one thread only, ``writer`` written by one thread at a time;
    ``close`` may be called from any thread, more than once, and must make a blocked
    read or write return (end of stream or an error). A channel may also have a
    ``watch_busy(busy)`` method: the pool then hands it ``busy()``, true while the zygote
    has jobs in flight (the Docker channel checks its container only then)."""

    @property
    def reader(self) -> ByteReader: ...

    @property
    def writer(self) -> ByteWriter: ...

    def alive(self) -> bool: ...

    def close(self) -> None: ...


class LocalZygoteChannel:
    """A zygote as a child process of this one (its own session), over its stdin/stdout."""

    def __init__(self, command: Sequence[str], hash_seed: int, env: Mapping[str, str] | None = None) -> None:
        environment = {"PYTHONHASHSEED": str(hash_seed), **ZYGOTE_ENVIRONMENT, **(env or {})}
        self.process = subprocess.Popen(
            list(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            env=environment,
            close_fds=True,
            start_new_session=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.writer = self.process.stdin
        self.reader = self.process.stdout
        self._lock = threading.Lock()
        self._closed = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return not self._closed and self.process.poll() is None

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        # Kill first: a read or write blocked on the pipes then returns at once.
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)  # its own session: pgid == pid
            except OSError:
                pass
            try:
                self.process.kill()
            except OSError:
                pass
        for stream in (self.writer, self.reader):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        self.process.wait()


ChannelFactory = Callable[[int, int], ZygoteChannel]  # (slot, hash_seed) -> a started channel
HOST_MAGIC = importlib.util.MAGIC_NUMBER.hex()
# A zygote's reader sends the next job itself (no hand-over to the writer thread) when the
# frame is at most this big and the zygote has at most this much possibly unread: far below a
# pipe's 64 KiB, so that write never blocks.
INLINE_FRAME_BYTES = 8 * 1024
INLINE_UNREAD_BYTES = 24 * 1024


def local_channel_factory(config: PoolConfig) -> ChannelFactory:
    command = zygote_command(config.python)
    return lambda slot, seed: LocalZygoteChannel(command, seed)


class ZygoteStartError(RuntimeError):
    """A zygote did not answer its hello with a ready frame."""


# --------------------------------------------------------------------------- queues


@dataclass(eq=False)
class _Pending:
    job: SandboxJob
    frame: bytearray  # the encoded job frame; the id is written in when it is sent
    future: Future[ChildResult]
    client: str
    lane: int | None  # the lane it must run in, or None: any
    failures: int = 0  # zygote failures while this job was in flight
    running: bool = False  # the future is marked running (it can no longer be cancelled)
    job_id: int = 0
    demoted: bool = False
    overdue_at: float = 0.0  # monotonic time after which the zygote counts as hung


class _FairQueue:
    """One FIFO per client, served round robin: each pop takes the next client's oldest job."""

    def __init__(self) -> None:
        self._fifos: dict[str, deque[_Pending]] = {}
        self._turns: deque[str] = deque()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def push(self, pending: _Pending) -> None:
        fifo = self._fifos.get(pending.client)
        if fifo is None:
            fifo = self._fifos[pending.client] = deque()
            self._turns.append(pending.client)
        fifo.append(pending)
        self._size += 1

    def pop(self, full: Callable[[str], bool] | None = None) -> _Pending | None:
        """The next client's oldest job, skipping clients for which `full(client)` is true."""
        for _ in range(len(self._turns)):
            client = self._turns.popleft()
            if full is not None and full(client):
                self._turns.append(client)
                continue
            fifo = self._fifos[client]
            pending = fifo.popleft()
            self._size -= 1
            if fifo:
                self._turns.append(client)
            else:
                del self._fifos[client]
            return pending
        return None

    def drain(self) -> list[_Pending]:
        drained = [pending for fifo in self._fifos.values() for pending in fifo]
        self._fifos.clear()
        self._turns.clear()
        self._size = 0
        return drained


class _Zygote:
    """One zygote's state; every field but `write_lock`'s stream is guarded by the pool's lock."""

    def __init__(
        self, pool_lock: threading.Lock, slot: int, lane: int, seed: int, hello: ZygoteHello
    ) -> None:
        self.slot = slot
        self.lane = lane
        self.seed = seed
        self.hello = hello
        self.channel: ZygoteChannel | None = None
        self.info: dict[str, Any] = {}
        self.state = _STARTING
        self.generation = 0  # bumped by every restart: a stale writer's failure is ignored
        self.inflight: dict[int, _Pending] = {}
        self.demoted = 0  # jobs in flight that were demoted (no longer hold a fast slot)
        self.sent = 0  # jobs sent to the current process
        self.retiring = False  # recycle_after reached: no new jobs, restart when drained
        self.break_reason = ""  # why the pool ended the current process (hang, write error, recycling)
        self.recycling = False  # ... and whether that was a planned replacement, not a failure
        self.recycles = 0
        self.resend: deque[_Pending] = deque()
        self.restarts = 0
        self.prefer_shared = False
        self.wakeup = threading.Condition(pool_lock)
        self.write_lock = threading.Lock()
        self.started = threading.Event()
        self.start_error: BaseException | None = None
        self.threads: list[threading.Thread] = []

    def has_credit(self, fast_slots: int, max_live: int) -> bool:
        live = len(self.inflight)
        return (
            self.state == _READY
            and not self.retiring
            and live - self.demoted < fast_slots
            and live < max_live
        )


def _resolve(pending: _Pending, result: ChildResult) -> None:
    if not pending.running and not pending.future.set_running_or_notify_cancel():
        return  # cancelled while it waited
    pending.running = True
    try:
        pending.future.set_result(result)
    except InvalidStateError:  # pragma: no cover - resolved elsewhere already
        pass


# --------------------------------------------------------------------------- the pool


class SandboxPool:
    """Lanes of streaming zygotes; `submit(job, lane)` returns a Future of the job's result."""

    def __init__(self, config: PoolConfig | None = None, factory: ChannelFactory | None = None) -> None:
        self.config = config or PoolConfig()
        self.factory_given = factory is not None
        self._accepts_code = False  # set from the zygotes' ready frames
        self.factory = factory or local_channel_factory(self.config)
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._stopped = threading.Event()
        self._ids = itertools.count(1)
        self._rotation = itertools.count()
        self._state = "new"  # new | running | closed
        self._closing = False
        self._zygotes: list[_Zygote] = []
        self._lanes: list[list[_Zygote]] = []
        self._lane_queues: list[_FairQueue] = []
        self._shared = _FairQueue()
        self.executions = 0
        # When set to a list, every result's in-zygote wall time (fork -> reaped), in ms, is
        # appended to it (the benchmark reads per-execution latency from here).
        self.latencies: list[float] | None = None

    # ------------------------------------------------------------------ lifecycle
    def sibling(self, config: PoolConfig) -> SandboxPool:
        """Another pool of the same backend with `config` (the start-up self-test uses one)."""
        return SandboxPool(config, self.factory if self.factory_given else None)

    def start(self) -> None:
        with self._start_lock:
            if self._state == "running":
                return
            config = self.config
            spawn_helper = config.spawn_helper
            if spawn_helper is None:
                spawn_helper = native.spawn_helper(config.python, config.build_dir)
            base_seed = int.from_bytes(os.urandom(2), "big") * 64
            with self._lock:
                self._closing = False
                self._stopped.clear()
                self._lane_queues = [_FairQueue() for _ in range(config.lanes)]
                self._shared = _FairQueue()
                self._zygotes = []
                self._lanes = [[] for _ in range(config.lanes)]
                for lane in range(config.lanes):
                    for index in range(config.zygotes_per_lane):
                        slot = lane * config.zygotes_per_lane + index
                        hello = config.hello(slot, spawn_helper)
                        zygote = _Zygote(self._lock, slot, lane, base_seed + lane + 1, hello)
                        self._zygotes.append(zygote)
                        self._lanes[lane].append(zygote)
            for zygote in self._zygotes:
                for role, target in (("reader", self._reader_main), ("writer", self._writer_main)):
                    thread = threading.Thread(
                        target=target, args=(zygote,), daemon=True, name=f"zygote-{zygote.slot}-{role}"
                    )
                    zygote.threads.append(thread)
                    thread.start()
            for zygote in self._zygotes:
                zygote.started.wait()
            failed = [z for z in self._zygotes if z.start_error is not None]
            if failed:
                self._shutdown("the sandbox pool did not start")
                self._state = "closed"
                first = failed[0]
                raise ZygoteStartError(f"zygote {first.slot} did not start: {first.start_error}")
            self._state = "running"
            info = self._zygotes[0].info
            log.info(
                "sandbox pool ready: %d lanes x %d zygotes, %d fast / %d live children each, fork loop in %s",
                config.lanes,
                config.zygotes_per_lane,
                config.fast_slots,
                config.max_live,
                "C" if info.get("spawn") == "c" else info.get("spawn", "?"),
            )

    def close(self) -> None:
        """Stop every zygote; jobs not finished resolve as sandbox errors. Idempotent."""
        with self._start_lock:
            if self._state != "running":
                return
            self._shutdown("the sandbox pool was closed before this job finished")
            self._state = "closed"

    def _shutdown(self, detail: str) -> None:
        with self._lock:
            self._closing = True
            orphans: list[_Pending] = []
            for queue in (*self._lane_queues, self._shared):
                orphans.extend(queue.drain())
            for zygote in self._zygotes:
                orphans.extend(zygote.resend)
                zygote.resend.clear()
                orphans.extend(zygote.inflight.values())
                zygote.inflight.clear()
                zygote.demoted = 0
                zygote.wakeup.notify_all()
            channels = [z.channel for z in self._zygotes if z.channel is not None]
        self._stopped.set()
        for channel in channels:
            channel.close()
        for pending in orphans:
            _resolve(
                pending, ChildResult.error(detail, lane=pending.lane if pending.lane is not None else -1)
            )
        deadline = time.monotonic() + 30
        current = threading.current_thread()
        for zygote in self._zygotes:
            for thread in zygote.threads:
                if thread is current:  # close() from a done-callback: this reader ends by itself
                    continue
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
                if thread.is_alive():
                    log.warning("thread %s did not stop within 30 s", thread.name)
        with self._lock:  # a channel a restart installed meanwhile (it saw _closing and closed it)
            for zygote in self._zygotes:
                zygote.channel = None

    def __enter__(self) -> SandboxPool:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ state
    @property
    def size(self) -> int:
        """The number of zygotes."""
        return self.config.lanes * self.config.zygotes_per_lane

    @property
    def busy(self) -> int:
        """Jobs in flight (sent to a zygote, not finished)."""
        with self._lock:
            return sum(len(z.inflight) for z in self._zygotes)

    @property
    def busy_zygotes(self) -> int:
        """Zygotes with at least one job in flight."""
        with self._lock:
            return sum(1 for z in self._zygotes if z.inflight)

    @property
    def queued(self) -> int:
        """Jobs waiting for a zygote with credit."""
        with self._lock:
            return (
                sum(len(q) for q in self._lane_queues)
                + len(self._shared)
                + sum(len(z.resend) for z in self._zygotes)
            )

    def zygote_info(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(
                    z.info,
                    slot=z.slot,
                    lane=z.lane,
                    restarts=z.restarts,
                    recycles=z.recycles,
                    state=z.state,
                    live=len(z.inflight),
                    demoted=z.demoted,
                )
                for z in self._zygotes
            ]

    def healthy(self) -> bool:
        with self._lock:
            if self._state != "running" or self._closing:
                return False
            zygotes = [(z.state, z.channel) for z in self._zygotes]
        return all(state == _READY and channel is not None and channel.alive() for state, channel in zygotes)

    # ------------------------------------------------------------------ work
    def submit(self, job: SandboxJob, lane: int, client: str = "") -> Future[ChildResult]:
        """Run `job` on a zygote of lane `lane % lanes` (its hash seed); the result says where."""
        return self._enqueue(job, lane % self.config.lanes, client)

    def submit_any(self, job: SandboxJob, client: str = "") -> Future[ChildResult]:
        """Run `job` on whichever zygote has room first; the result's `lane` says which."""
        return self._enqueue(job, None, client)

    def run(self, jobs: Iterable[tuple[SandboxJob, int]], client: str = "") -> list[ChildResult]:
        """Run (job, lane) pairs and wait for all results, in order."""
        futures = [self.submit(job, lane, client) for job, lane in jobs]
        return [future.result() for future in futures]

    def least_loaded_lanes(self, count: int, excluding: Sequence[int] = ()) -> list[int]:
        """`count` distinct lanes (not in `excluding`, as far as there are enough), those
        with the least work first (jobs waiting for the lane plus jobs in flight on its
        zygotes), so that a small request does not queue behind a long execution while
        another lane is idle. Ties rotate, to spread the load."""
        lanes = self.config.lanes
        start = next(self._rotation)
        skip = {lane % lanes for lane in excluding}
        with self._lock:
            if self._lane_queues:
                loads = [
                    len(self._lane_queues[lane])
                    + sum(len(z.inflight) + len(z.resend) for z in self._lanes[lane])
                    for lane in range(lanes)
                ]
            else:
                loads = [0] * lanes
        rotated = [(start + offset) % lanes for offset in range(lanes)]
        ranked = sorted(rotated, key=lambda lane: (lane in skip, loads[lane]))  # stable: ties keep rotation
        return ranked[: max(1, min(count, lanes))]

    def _enqueue(self, job: SandboxJob, lane: int | None, client: str) -> Future[ChildResult]:
        if self._state == "new":
            self.start()
        future: Future[ChildResult] = Future()
        where = -1 if lane is None else lane
        try:
            frame = bytearray(job.encode(0, with_code=self._accepts_code))
        except (struct.error, ValueError, TypeError, OverflowError) as exc:
            future.set_result(ChildResult.error(f"the job cannot be encoded: {exc}", lane=where))
            return future
        pending = _Pending(job, frame, future, client, lane)
        refused = ""
        with self._lock:
            if self._closing or self._state != "running":
                refused = "the sandbox pool is closed"
            elif lane is not None:
                zygotes = self._lanes[lane]
                if all(z.state == _DOWN for z in zygotes):
                    refused = f"no zygote of lane {lane} is running (restarts are failing)"
                else:
                    self._lane_queues[lane].push(pending)
                    self._wake(zygotes)
            elif all(z.state == _DOWN for z in self._zygotes):
                refused = "no zygote is running (restarts are failing)"
            else:
                self._shared.push(pending)
                self._wake(self._zygotes)
        if refused:
            _resolve(pending, ChildResult.error(refused, lane=where))
        return future

    def _wake(self, zygotes: Iterable[_Zygote]) -> None:
        """Wake the writers of those `zygotes` that have credit (caller holds the lock)."""
        fast, live = self.config.fast_slots, self.config.max_live
        for zygote in zygotes:
            if zygote.has_credit(fast, live):
                zygote.wakeup.notify()

    # ------------------------------------------------------------------ writer side
    def _take(self, zygote: _Zygote) -> _Pending | None:
        """The next job for `zygote` (caller holds the lock and checked its credit)."""
        while True:
            if zygote.resend:
                pending: _Pending | None = zygote.resend.popleft()
            else:
                lane_queue = self._lane_queues[zygote.lane]
                queues = (self._shared, lane_queue) if zygote.prefer_shared else (lane_queue, self._shared)
                pending = None
                full = self._full_clients(zygote)
                for queue in queues:
                    pending = queue.pop(full)
                    if pending is not None:
                        zygote.prefer_shared = queue is lane_queue  # the other one next time
                        break
            if pending is None:
                return None
            if pending.running or pending.future.set_running_or_notify_cancel():
                pending.running = True
                break
        pending.job_id = next(self._ids)
        pending.demoted = False
        pending.overdue_at = time.monotonic() + float(pending.job.timeout_s) + self.config.hang_grace_s
        _JOB_ID.pack_into(pending.frame, 0, pending.job_id)
        zygote.inflight[pending.job_id] = pending
        zygote.sent += 1
        if self.config.recycle_after and zygote.sent >= self.config.recycle_after:
            zygote.retiring = True
        return pending

    def _full_clients(self, zygote: _Zygote) -> Callable[[str], bool] | None:
        """Within the last `fast_slots` live places of a zygote, clients that already hold
        `max_live - fast_slots` children there wait: one client's long runners never take
        a zygote's whole capacity, so another client always finds room."""
        cap = self.config.max_live - self.config.fast_slots
        if cap <= 0 or len(zygote.inflight) < cap:
            return None
        held: dict[str, int] = {}
        for pending in zygote.inflight.values():
            held[pending.client] = held.get(pending.client, 0) + 1
        return lambda client: held.get(client, 0) >= cap

    def _writer_main(self, zygote: _Zygote) -> None:
        fast, live = self.config.fast_slots, self.config.max_live
        while True:
            pending: _Pending | None = None
            stop_reason, recycle = "", False
            with self._lock:
                while True:
                    if self._closing:
                        return
                    if zygote.state == _READY:
                        if zygote.has_credit(fast, live):
                            pending = self._take(zygote)
                            if pending is not None:
                                break
                        if zygote.retiring and not zygote.inflight:
                            stop_reason, recycle = f"recycled after {zygote.sent} jobs", True
                            break
                        overdue = min((p.overdue_at for p in zygote.inflight.values()), default=None)
                        if overdue is not None and overdue <= time.monotonic():
                            stop_reason = f"no result {self.config.hang_grace_s:g} s past a job's timeout: the zygote hangs"
                            break
                        wait = None if overdue is None else overdue - time.monotonic()
                    else:
                        wait = None
                    zygote.wakeup.wait(wait)
                channel, generation = zygote.channel, zygote.generation
            if stop_reason:
                self._break(zygote, generation, stop_reason, recycle)
                continue
            assert pending is not None and channel is not None
            self._send(zygote, channel, generation, pending)

    def _break(self, zygote: _Zygote, generation: int, reason: str, recycle: bool = False) -> None:
        """End the zygote's current process: its reader sees the stream end and restarts it."""
        with self._lock:
            if zygote.generation != generation or zygote.state != _READY or zygote.channel is None:
                return
            zygote.state = _RESTARTING
            zygote.break_reason = reason
            zygote.recycling = recycle
            channel = zygote.channel
        channel.close()

    # ------------------------------------------------------------------ reader side
    def _reader_main(self, zygote: _Zygote) -> None:
        try:
            self._connect(zygote)
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            zygote.start_error = exc
            with self._lock:
                zygote.state = _DOWN
            zygote.started.set()
            return
        zygote.started.set()
        while True:
            channel = zygote.channel
            if channel is None:  # the pool closed
                return
            reason = self._read_records(zygote, channel)
            if self._closing or not self._restart(zygote, reason):
                return

    def _connect(self, zygote: _Zygote) -> None:
        """Start a zygote process, say hello and wait for its ready frame."""
        channel = self.factory(zygote.slot, zygote.seed)
        with self._lock:
            if self._closing:
                closing = True
            else:
                closing = False
                zygote.channel = channel  # so that close() can end a slow start
        if closing:
            channel.close()
            raise ZygoteStartError("the pool is closing")
        timer = threading.Timer(self.config.start_timeout_s, channel.close)
        timer.daemon = True
        timer.start()
        try:
            with zygote.write_lock:
                wire.write_frame(channel.writer, zygote.hello.encode())
            body = wire.read_frame(channel.reader)
            if body is None:
                raise ZygoteStartError("the zygote closed its stream before it was ready")
            answer = json.loads(body)
        except (OSError, ValueError) as exc:
            channel.close()
            raise ZygoteStartError(f"no ready frame: {exc}") from exc
        except BaseException:
            channel.close()
            raise
        finally:
            timer.cancel()
            timer.join()
        if not isinstance(answer, dict) or not isinstance(answer.get("ready"), dict):
            channel.close()
            error = answer.get("error") if isinstance(answer, dict) else None
            raise ZygoteStartError(str(error or f"unexpected answer {body[:200]!r}"))
        # Compiled programs only for zygotes that read this interpreter's bytecode.
        self._accepts_code = answer["ready"].get("magic") == HOST_MAGIC
        watch_busy = getattr(channel, "watch_busy", None)
        if watch_busy is not None:
            watch_busy(lambda: bool(zygote.inflight))
        with self._lock:
            if self._closing:
                closing = True
            else:
                closing = False
                zygote.info = dict(answer["ready"])
                zygote.state = _READY
                zygote.wakeup.notify()
        if closing:
            channel.close()
            raise ZygoteStartError("the pool is closing")

    def _read_records(self, zygote: _Zygote, channel: ZygoteChannel) -> str:
        """Resolve records until the stream ends or breaks; returns why it did."""
        while True:
            try:
                body = wire.read_frame(channel.reader)
            except (OSError, ValueError) as exc:
                return f"its stream broke ({exc})"
            if body is None:
                return "its stream ended"
            try:
                self._on_record(zygote, body)
            except ValueError as exc:
                return f"it sent a corrupt record ({exc})"

    def _on_record(self, zygote: _Zygote, body: bytes) -> None:
        if len(body) < wire.RECORD.size:
            raise ValueError("truncated record")
        (job_id,) = _JOB_ID.unpack_from(body, 0)
        with self._lock:
            pending = zygote.inflight.get(job_id)
        if pending is None:
            if self._closing:
                return
            raise ValueError(f"a record for job {job_id}, which is not in flight here")
        record = decode_record(body, {job_id: float(pending.job.timeout_s)})
        if record.result is None:  # DEMOTED: not final, the fast slot is free again
            with self._lock:
                if zygote.inflight.get(job_id) is not pending:
                    return
                if pending.demoted:
                    raise ValueError(f"job {job_id} demoted twice")
                pending.demoted = True
                zygote.demoted += 1
                zygote.wakeup.notify()
            return
        result = record.result
        result.lane = zygote.lane
        following: _Pending | None = None
        with self._lock:
            if zygote.inflight.pop(job_id, None) is not pending:
                return
            if pending.demoted:
                zygote.demoted -= 1
            self.executions += 1
            if self.latencies is not None:
                self.latencies.append(result.wall_ms)
            following = self._take_inline(zygote)
            if following is None or zygote.has_credit(self.config.fast_slots, self.config.max_live):
                zygote.wakeup.notify()
            channel, generation = zygote.channel, zygote.generation
        if following is not None and channel is not None:
            self._send(zygote, channel, generation, following)
        _resolve(pending, result)

    def _take_inline(self, zygote: _Zygote) -> _Pending | None:
        """The next job for `zygote`, for its reader to send at once (caller holds the lock), when
        that cannot block: a small frame, and few bytes the zygote may not have read yet. A reader
        blocked on a write could otherwise wait for a zygote that waits for that reader."""
        if zygote.state != _READY or not zygote.has_credit(self.config.fast_slots, self.config.max_live):
            return None
        unread = sum(len(p.frame) for p in zygote.inflight.values() if not p.demoted)
        if unread > INLINE_UNREAD_BYTES:
            return None
        following = self._take(zygote)
        if following is not None and len(following.frame) > INLINE_FRAME_BYTES:
            zygote.resend.appendleft(following)  # the writer sends big frames
            del zygote.inflight[following.job_id]
            zygote.sent -= 1
            return None
        return following

    def _send(self, zygote: _Zygote, channel: ZygoteChannel, generation: int, pending: _Pending) -> None:
        try:
            with zygote.write_lock:
                if zygote.generation == generation:
                    wire.write_frame(channel.writer, pending.frame)
        except (OSError, ValueError) as exc:
            self._break(zygote, generation, f"cannot send a job: {exc}")

    def _restart(self, zygote: _Zygote, reason: str) -> bool:
        """Replace the zygote's process; False when the pool closes meanwhile."""
        with self._lock:
            if self._closing:
                return False
            reason = zygote.break_reason or reason
            recycled = zygote.recycling
            zygote.break_reason, zygote.recycling = "", False
            zygote.state = _RESTARTING
            zygote.generation += 1
            lost = sorted(zygote.inflight.values(), key=lambda p: p.job_id)
            zygote.inflight.clear()
            zygote.demoted = 0
            zygote.sent = 0
            zygote.retiring = False
            failed: list[_Pending] = []
            for pending in lost:
                pending.failures += 1
                (failed if pending.failures >= 2 else zygote.resend).append(pending)
            old = zygote.channel
            zygote.channel = None
            if recycled:
                zygote.recycles += 1
            else:
                zygote.restarts += 1
        if old is not None:
            old.close()
        if recycled:
            log.info("zygote %d (lane %d): %s", zygote.slot, zygote.lane, reason)
        else:
            log.warning(
                "zygote %d (lane %d): %s; restart #%d, re-sending %d job(s), failing %d",
                zygote.slot,
                zygote.lane,
                reason,
                zygote.restarts,
                len(lost) - len(failed),
                len(failed),
            )
        for pending in failed:
            _resolve(
                pending,
                ChildResult.error(
                    f"the sandbox failed twice while running this job (last: {reason})", zygote.lane
                ),
            )
        delay = 0.1
        while not self._closing:
            try:
                self._connect(zygote)
                return True
            except Exception as exc:  # noqa: BLE001 - logged, retried with a backoff
                if self._closing:
                    return False
                log.error("zygote %d (lane %d) did not restart: %s", zygote.slot, zygote.lane, exc)
                self._mark_down(zygote, str(exc))
            if self._stopped.wait(delay):
                return False
            delay = min(delay * 2, 10.0)
        return False

    def _mark_down(self, zygote: _Zygote, why: str) -> None:
        """A zygote that cannot be restarted: fail what only it (or its lane) could run."""
        with self._lock:
            zygote.state = _DOWN
            stranded = list(zygote.resend)
            zygote.resend.clear()
            if all(z.state == _DOWN for z in self._lanes[zygote.lane]):
                stranded.extend(self._lane_queues[zygote.lane].drain())
            if all(z.state == _DOWN for z in self._zygotes):
                stranded.extend(self._shared.drain())
        for pending in stranded:
            _resolve(pending, ChildResult.error(f"the sandbox could not be restarted: {why}", zygote.lane))
