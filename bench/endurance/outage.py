"""A Redis outage in the middle of a load, measured.

Starts its own `redis-server` (AOF on, `appendfsync always`, in a temporary directory, on a
free loopback port), the API in queue mode and `workers` RQ workers as real processes; client
threads keep the service loaded with validate requests whose outputs are known (half waiting
for their verdicts, half `wait=false` and polling their job). In the middle, Redis is stopped
for `outage_s` seconds and started again from its append-only file. The report says what was
accepted before, during and after the outage, what finished, what was lost, which statuses
clients saw while Redis was down (and how long the slowest took), and how long the service
took to recover.

    python scripts/redis_outage.py --outage 30
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.endurance.workload import Expectations, counting_batch

DOWN = "down"
BEFORE = "before"
AFTER = "after"


@dataclass
class Attempt:
    """One submission: when it was sent (phase), what came back, and its fate."""

    phase: str
    mode: str  # "wait", "async" (then polls its job) or "probe"
    status: int | None = None  # None: the connection failed or timed out
    retry_after: str | None = None
    seconds: float = 0.0
    answered_at: float = 0.0
    job_id: str | None = None
    finished: bool = False
    finished_at: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.status in (200, 202)


@dataclass
class Timeline:
    down_at: float = 0.0
    up_at: float = 0.0
    up_wall: float = 0.0  # time.time() at the restart, to compare with RQ's heartbeats

    def phase(self, at: float) -> str:
        if not self.down_at or at < self.down_at:
            return BEFORE
        if not self.up_at or at < self.up_at:
            return DOWN
        return AFTER


@dataclass
class OutageReport:
    outage_s: float
    stop_signal: str
    workers: int
    accepted: dict[str, int]
    finished: int
    lost: int
    problems: list[str]
    submit_statuses_down: dict[str, int]
    poll_statuses_down: dict[str, int]
    without_retry_after_down: int
    slowest_answer_down_s: float
    server_errors: int
    first_accepted_after_s: float | None
    ready_after_s: float | None
    all_workers_after_s: float | None
    all_done_after_s: float | None
    workers_alive: int

    def table(self) -> str:
        def fmt(value: float | None) -> str:
            return "never" if value is None else f"{value:.2f} s"

        accepted = self.accepted
        rows = [
            ("Redis outage", f"{self.outage_s:.0f} s (SIG{self.stop_signal.upper()}, restart from AOF)"),
            ("workers", f"{self.workers} (alive at the end: {self.workers_alive})"),
            (
                "requests accepted",
                f"before {accepted.get(BEFORE, 0)}, during {accepted.get(DOWN, 0)}, after {accepted.get(AFTER, 0)}",
            ),
            ("accepted requests finished", f"{self.finished} (every verdict checked)"),
            ("accepted requests lost or wrong", str(self.lost)),
            ("submissions while down", _counts(self.submit_statuses_down)),
            ("job polls while down", _counts(self.poll_statuses_down)),
            ("503s without Retry-After", str(self.without_retry_after_down)),
            ("slowest answer while down", fmt(self.slowest_answer_down_s)),
            ("5xx other than 503", str(self.server_errors)),
            ("Redis back -> first new request accepted", fmt(self.first_accepted_after_s)),
            ("Redis back -> /readyz 200", fmt(self.ready_after_s)),
            ("Redis back -> every worker heartbeating", fmt(self.all_workers_after_s)),
            ("Redis back -> every request accepted before done", fmt(self.all_done_after_s)),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counter.items())) or "none"


class _Load:
    """Client threads in a closed loop; each records every submission it makes."""

    def __init__(self, url: str, timeline: Timeline, batch: int, seed: int) -> None:
        self.url = url
        self.timeline = timeline
        self.batch = batch
        self.expect = Expectations()
        self.attempts: list[Attempt] = []
        self.polls: list[tuple[str, int | None, str | None, float]] = []
        self.pending: list[tuple[Attempt, dict[str, Any]]] = []
        self.give_up_at = float("inf")  # set when the load stops: accepted work gets this long
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.rng = random.Random(seed)

    def client(self, index: int) -> None:
        """Half the clients wait for their verdicts, half submit with wait=false and poll."""
        mode = "wait" if index % 2 == 0 else "async"
        with httpx.Client(base_url=self.url, timeout=600) as http:
            while not self.stop.is_set():
                body = self._batch(self.batch)
                attempt = self._submit(http, body, mode)
                if attempt.job_id is not None:
                    self._await_job(http, attempt, body)
                elif not attempt.accepted:
                    self.stop.wait(0.2)

    def prober(self, every_s: float = 0.25) -> None:
        """Small wait=false submissions at a steady pace, so that every moment of the outage
        is probed even while the other clients are blocked on work accepted before it; what
        it gets accepted is awaited at the end (`drain`)."""
        with httpx.Client(base_url=self.url, timeout=600) as http:
            while not self.stop.wait(every_s):
                body = self._batch(1)
                attempt = self._submit(http, body, "probe")
                if attempt.job_id is not None:
                    with self.lock:
                        self.pending.append((attempt, body))

    def drain(self) -> None:
        with httpx.Client(base_url=self.url, timeout=600) as http:
            for attempt, body in self.pending:
                self._await_job(http, attempt, body)

    def _batch(self, size: int) -> dict[str, Any]:
        with self.lock:
            return counting_batch(size, self.expect, self.rng)

    def _submit(self, http: httpx.Client, body: dict[str, Any], mode: str) -> Attempt:
        sent = time.monotonic()
        attempt = Attempt(self.timeline.phase(sent), mode)
        with self.lock:
            self.attempts.append(attempt)
        try:
            response = http.post("/v1/validate", params={"wait": mode == "wait"}, json=body)
        except httpx.HTTPError:
            attempt.answered_at = time.monotonic()
            attempt.seconds = attempt.answered_at - sent
            return attempt
        attempt.answered_at = time.monotonic()
        attempt.seconds = attempt.answered_at - sent
        attempt.status = response.status_code
        attempt.retry_after = response.headers.get("Retry-After")
        if response.status_code == 202:
            attempt.job_id = response.json()["job_id"]
        elif response.status_code == 200:
            self._check(attempt, response.json()["results"], body)
        return attempt

    def _await_job(self, http: httpx.Client, attempt: Attempt, body: dict[str, Any]) -> None:
        """Poll like a client (and keep polling through the outage), until the job ends."""
        while True:
            sent = time.monotonic()
            if sent > self.give_up_at:
                attempt.problems.append(f"job {attempt.job_id} not finished in time")
                return
            try:
                response = http.get(f"/v1/jobs/{attempt.job_id}")
                status: int | None = response.status_code
                retry_after = response.headers.get("Retry-After")
            except httpx.HTTPError:
                status, retry_after, response = None, None, None
            with self.lock:
                self.polls.append((self.timeline.phase(sent), status, retry_after, time.monotonic() - sent))
            if response is not None and status == 200:
                view = response.json()
                if view["status"] == "finished":
                    self._check(attempt, view["results"], body)
                    return
                if view["status"] == "failed":
                    attempt.problems.append(f"job {attempt.job_id} failed: {view.get('detail')}")
                    return
            time.sleep(0.2)

    def _check(self, attempt: Attempt, results: list[dict[str, Any]], body: dict[str, Any]) -> None:
        sent_ids = [task["id"] for task in body["tasks"]]
        got_ids = [result["id"] for result in results]
        if got_ids != sent_ids:
            attempt.problems.append(f"{len(sent_ids)} tasks sent, {len(got_ids)} results in another order")
        attempt.problems += [p for p in map(self.expect.problem, results) if p is not None]
        attempt.finished = True
        attempt.finished_at = time.monotonic()


def _epoch(moment: datetime) -> float:
    """RQ's timestamps are UTC, naive or not."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _watch(
    url: str, redis_url: str, queue: str, workers: int, timeline: Timeline, stop: threading.Event
) -> dict[str, float]:
    """From Redis's restart: when /readyz answers 200 again, and when every worker has sent a
    heartbeat since (its registration alone may be one the append-only file kept): the
    latest of the workers' first heartbeats after the restart, by RQ's own timestamps."""
    from redis import Redis
    from rq import Queue, Worker

    seen: dict[str, float] = {}
    first_beat: dict[str, float] = {}
    connection = Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=2)
    with httpx.Client(timeout=5) as http:
        while not stop.is_set() and len(seen) < 2:
            now = time.monotonic()
            if timeline.up_at and now >= timeline.up_at:
                if "ready" not in seen:
                    try:
                        if http.get(url + "/readyz").status_code == 200:
                            seen["ready"] = now - timeline.up_at
                    except httpx.HTTPError:
                        pass
                try:
                    for worker in Worker.all(
                        connection=connection, queue=Queue(queue, connection=connection)
                    ):
                        beat = worker.last_heartbeat
                        if beat is not None and _epoch(beat) >= timeline.up_wall:
                            first_beat.setdefault(worker.name, _epoch(beat) - timeline.up_wall)
                except Exception:  # noqa: BLE001 - Redis still starting
                    pass
                if len(first_beat) >= workers:
                    seen["workers"] = max(first_beat.values())
            stop.wait(0.05)
    connection.close()
    return seen


def run_outage(
    outage_s: float = 30.0,
    workers: int = 2,
    clients: int = 4,
    batch: int = 12,
    before_s: float = 5.0,
    after_s: float = 10.0,
    stop_signal: str = "term",
    drain_s: float = 180.0,
    seed: int = 0,
) -> OutageReport:
    """Run the scenario end to end; see the module's docstring."""
    from bench.local_stack import persistent_redis, running_service

    sig = {"term": signal.SIGTERM, "kill": signal.SIGKILL}[stop_signal]
    timeline = Timeline()
    with persistent_redis() as server:
        with running_service(
            workers=workers,
            AZR_REDIS_URL=server.url,
            AZR_WORKER_HEARTBEAT_GRACE_S="3",
            AZR_CHUNK_MIN_TASKS="4",
        ) as service:
            load = _Load(service.url, timeline, batch, seed)
            threads = [threading.Thread(target=load.client, args=(i,), daemon=True) for i in range(clients)]
            threads.append(threading.Thread(target=load.prober, daemon=True))
            watcher_stop = threading.Event()
            watched: dict[str, float] = {}
            watcher = threading.Thread(
                target=lambda: watched.update(
                    _watch(
                        service.url,
                        server.url,
                        service.env["AZR_QUEUE_NAME"],
                        workers,
                        timeline,
                        watcher_stop,
                    )
                ),
                daemon=True,
            )
            for thread in threads:
                thread.start()
            watcher.start()
            time.sleep(before_s)

            assert server.process is not None
            server.process.send_signal(sig)
            server.process.wait()  # SIGTERM: Redis serves until its shutdown has saved the AOF
            timeline.down_at = time.monotonic()
            time.sleep(max(0.0, outage_s - (time.monotonic() - timeline.down_at)))
            timeline.up_at, timeline.up_wall = time.monotonic(), time.time()
            server.start()  # reloads the append-only file
            time.sleep(after_s)

            load.give_up_at = time.monotonic() + drain_s
            load.stop.set()
            for thread in threads:
                thread.join(drain_s)
            load.drain()
            watcher.join(5)
            watcher_stop.set()
            alive = sum(1 for worker in service.workers if worker.poll() is None)
    return _report(load, timeline, watched, outage_s, stop_signal, workers, alive)


def _report(
    load: _Load,
    timeline: Timeline,
    watched: dict[str, float],
    outage_s: float,
    stop_signal: str,
    workers: int,
    alive: int,
) -> OutageReport:
    accepted = Counter(a.phase for a in load.attempts if a.accepted)
    problems = [p for a in load.attempts for p in a.problems]
    lost = sum(1 for a in load.attempts if a.accepted and (not a.finished or a.problems))
    down_submits = [a for a in load.attempts if a.phase == DOWN]
    down_polls = [p for p in load.polls if p[0] == DOWN]
    without_retry = sum(1 for a in down_submits if a.status == 503 and not a.retry_after) + sum(
        1 for _, status, retry, _ in down_polls if status == 503 and not retry
    )
    slowest = max([a.seconds for a in down_submits] + [p[3] for p in down_polls], default=0.0)
    server_errors = sum(1 for a in load.attempts if a.status and a.status >= 500 and a.status != 503) + sum(
        1 for _, status, _, _ in load.polls if status and status >= 500 and status != 503
    )
    # A 202 is an acceptance and nothing more (a 200 also waits for the verdicts).
    accepted_after = [
        a.answered_at - timeline.up_at for a in load.attempts if a.phase == AFTER and a.status == 202
    ]
    done = [a.finished_at - timeline.up_at for a in load.attempts if a.phase == BEFORE and a.finished]
    return OutageReport(
        outage_s=outage_s,
        stop_signal=stop_signal,
        workers=workers,
        accepted=dict(accepted),
        finished=sum(1 for a in load.attempts if a.accepted and a.finished),
        lost=lost,
        problems=problems[:20],
        submit_statuses_down=dict(Counter(str(a.status) for a in down_submits)),
        poll_statuses_down=dict(Counter(str(p[1]) for p in down_polls)),
        without_retry_after_down=without_retry,
        slowest_answer_down_s=slowest,
        server_errors=server_errors,
        first_accepted_after_s=min(accepted_after, default=None),
        ready_after_s=watched.get("ready"),
        all_workers_after_s=watched.get("workers"),
        all_done_after_s=max(done) if done else None,
        workers_alive=alive,
    )
