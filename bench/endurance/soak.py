"""Soak: the service at full load for a while, with its resources sampled.

In queue mode (`workers` >= 1) starts a private `redis-server` (AOF on), the API and
`workers` RQ workers as real processes; in embedded mode (`workers=0`) the API alone, its
sandboxes its own children. It keeps them busy with closed-loop clients sending the `workload.Mix`:
AZR seed validations and deduction/abduction verifications (seeds repeat, so the result
cache answers many), fresh counting programs (always cache misses), ~5% hostile programs,
and every `miss_every_s` a new epoch in which every seed misses the cache once more. Every
result is checked (known outputs, allowed verdicts for hostile programs, and the same
verdict for the same item every time).

Every `sample_s` it records RSS, open files and threads of the API, each worker and each
zygote (the workers' child processes; with `backend="docker"` the zygotes are in sandbox
containers instead, which are counted), the number of service processes, sandbox
containers, and p50/p99 of the requests finished since the last sample. At the end: the
slope of each process's RSS (MB/hour, by least squares over the samples), fd and process
growth, and the samples as a table.

    python scripts/soak.py --minutes 30
"""

from __future__ import annotations

import contextlib
import random
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.endurance import procs
from bench.endurance.workload import Expectations, Mix, is_load_dependent, load_seeds


@dataclass
class Sample:
    t_s: float
    requests: int
    p50_ms: float
    p99_ms: float
    stats: dict[str, procs.ProcStat]  # "api", "w0", "w0.z<pid>", ...
    processes: int  # the API, the workers and their zygotes
    in_flight_children: int  # sandbox children alive at that moment
    containers: int | None


@dataclass
class SoakReport:
    minutes: float
    workers: int
    samples: list[Sample]
    requests: int
    items: int
    refused: int  # 429/503 with Retry-After: backpressure, not loss
    server_errors: int
    lost: int
    load_dependent: int  # a slow item's resource-limit verdict that differed between runs
    problems: list[str]
    slopes_mb_per_h: dict[str, float] = field(default_factory=dict)
    # The same over the second half of the samples: bounded caches (the engine's compile and
    # static-check caches, 4,096 programs each) fill during the first minutes of a soak, so a
    # leak shows as a slope that stays once they are full. The target is judged on this one.
    late_slopes_mb_per_h: dict[str, float] = field(default_factory=dict)

    def fd_growth(self) -> dict[str, int]:
        """Per process: open files at the end minus the most it had in the first half."""
        first_half = self.samples[: max(1, len(self.samples) // 2)]
        last = self.samples[-1].stats
        growth = {}
        for key, stat in last.items():
            if key.startswith("redis"):  # its clients' connections, not the service's files
                continue
            before = [s.stats[key].fds for s in first_half if key in s.stats]
            if before:
                growth[key] = stat.fds - max(before)
        return growth

    def misses(self, slope_limit: float = 5.0, fd_slack: int = 2) -> list[str]:
        """The soak's targets that were not met."""
        out = []
        if self.lost or self.server_errors:
            out.append(f"{self.lost} lost or wrong results, {self.server_errors} 5xx answers")
        # The service's own processes. The Redis servers are sampled and reported, not judged:
        # the queue's keeps finished jobs for AZR_JOB_RESULT_TTL_S (an hour) and the cache's
        # fills up to its maxmemory, so both grow by design for longer than a soak's first half.
        steep = {
            k: round(v, 1)
            for k, v in self.late_slopes_mb_per_h.items()
            if v >= slope_limit and not k.startswith("redis")
        }
        if steep:
            out.append(f"memory slope >= {slope_limit} MB/h: {steep}")
        first, last = self.samples[0], self.samples[-1]
        if last.processes != first.processes:
            out.append(f"service processes {first.processes} -> {last.processes}")
        if first.containers is not None and last.containers != first.containers:
            out.append(f"sandbox containers {first.containers} -> {last.containers}")
        grown = {k: v for k, v in self.fd_growth().items() if v > fd_slack}
        if grown:
            out.append(f"open files grew: {grown}")
        return out

    def table(self) -> str:
        lines = [
            f"soak: {self.minutes:g} min, {f'queue mode, {self.workers} workers' if self.workers else 'embedded mode'}, {self.requests} requests, {self.items} items judged, "
            f"{self.refused} refused with Retry-After, {self.server_errors} 5xx, {self.lost} lost or wrong, "
            f"{self.load_dependent} load-dependent (a slow seed's timeout/output_limit/memory_limit differing between runs)",
            "",
            f"{'t min':>6} {'req':>5} {'p50 ms':>8} {'p99 ms':>8} {'API MB':>7} {'workers MB':>14} "
            f"{'zygotes MB':>13} {'fds api/w/z':>13} {'procs':>5} {'kids':>4} {'ctrs':>4} {'redis MB q/c':>13}",
        ]
        for s in self.samples:
            workers = [v for k, v in s.stats.items() if k.startswith("w") and "." not in k]
            zygotes = [v for k, v in s.stats.items() if ".z" in k]
            api = s.stats.get("api")
            lines.append(
                f"{s.t_s / 60:6.1f} {s.requests:5d} {s.p50_ms:8.1f} {s.p99_ms:8.1f} "
                f"{api.rss_mb if api else float('nan'):7.1f} "
                f"{_span([w.rss_mb for w in workers]):>14} {_span([z.rss_mb for z in zygotes]):>13} "
                f"{(api.fds if api else -1):>4}/{_span([w.fds for w in workers], 0)}/{_span([z.fds for z in zygotes], 0)}"
                f" {s.processes:>5} {s.in_flight_children:>4} {('-' if s.containers is None else s.containers):>4}"
                f" {_redis_mb(s):>13}"
            )
        lines += ["", "RSS slope by process, MB/hour (least squares): all samples, second half"]
        for key, slope in sorted(self.slopes_mb_per_h.items()):
            late = self.late_slopes_mb_per_h.get(key)
            lines.append(f"  {key:<14} {slope:+8.2f} {'' if late is None else format(late, '+8.2f')}")
        growth = self.fd_growth()
        lines.append(
            "open files, end minus the first half's most: "
            + ", ".join(f"{k} {v:+d}" for k, v in sorted(growth.items()) if v)
            if any(growth.values())
            else "open files: no growth"
        )
        misses = self.misses()
        lines.append("targets: " + ("all met" if not misses else "MISSED: " + "; ".join(misses)))
        return "\n".join(lines)


def _redis_mb(sample: Sample) -> str:
    parts = [sample.stats.get(name) for name in ("redis", "redis-cache")]
    return "/".join("-" if p is None else f"{p.rss_mb:.1f}" for p in parts)


def _span(values: list[float], digits: int = 1) -> str:
    if not values:
        return "-"
    low, high = min(values), max(values)
    return f"{low:.{digits}f}" if low == high else f"{low:.{digits}f}-{high:.{digits}f}"


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per hour."""
    if len(points) < 2:
        return 0.0
    times = [t for t, _ in points]
    mean_t = statistics.fmean(times)
    mean_v = statistics.fmean(v for _, v in points)
    denominator = sum((t - mean_t) ** 2 for t in times)
    if denominator == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / denominator * 3600


class _Clients:
    def __init__(self, url: str, mix: Mix, expect: Expectations, batch: int) -> None:
        self.url = url
        self.mix = mix
        self.expect = expect
        self.batch = batch
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.finished: list[tuple[float, float]] = []  # (when, latency ms)
        self.requests = 0
        self.items = 0
        self.refused = 0
        self.server_errors = 0
        self.lost = 0
        self.load_dependent = 0
        self.problems: list[str] = []

    def run(self, index: int) -> None:
        kinds = ("validate", "verify")
        turn = index
        with httpx.Client(base_url=self.url, timeout=300) as http:
            while not self.stop.is_set():
                kind = kinds[turn % 2]
                turn += 1
                with self.lock:
                    body = (
                        self.mix.validate(self.batch) if kind == "validate" else self.mix.verify(self.batch)
                    )
                self._one(http, kind, body)

    def _one(self, http: httpx.Client, kind: str, body: dict[str, Any]) -> None:
        started = time.monotonic()
        try:
            response = http.post(f"/v1/{kind}", json=body)
        except httpx.HTTPError as exc:
            with self.lock:
                self.lost += 1
                self.problems.append(f"{kind}: {type(exc).__name__}: {exc}")
            return
        latency_ms = (time.monotonic() - started) * 1000
        if response.status_code in (429, 503):
            with self.lock:
                self.refused += 1
            self.stop.wait(float(response.headers.get("Retry-After", "1")))
            return
        if response.status_code >= 500 or response.status_code != 200:
            with self.lock:
                self.server_errors += response.status_code >= 500
                self.lost += 1
                self.problems.append(f"{kind}: HTTP {response.status_code}: {response.text[:200]}")
            return
        results = response.json()["results"]
        sent = [item["id"] for item in body["tasks" if kind == "validate" else "answers"]]
        problems = [p for p in map(self.expect.problem, results) if p is not None]
        if [r["id"] for r in results] != sent:
            problems.append(f"{kind}: {len(sent)} items sent, {len(results)} results or another order")
        varying = [p for p in problems if is_load_dependent(p)]
        wrong = [p for p in problems if not is_load_dependent(p)]
        with self.lock:
            self.requests += 1
            self.items += len(results)
            self.finished.append((time.monotonic(), latency_ms))
            self.lost += len(wrong)
            self.load_dependent += len(varying)
            self.problems += (wrong + varying)[:5]

    def latencies_since(self, since: float) -> list[float]:
        with self.lock:
            return [latency for when, latency in self.finished if when >= since]


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _sample(
    api_pid: int, worker_pids: list[int], t_s: float, latencies: list[float], others: dict[str, int]
) -> Sample:
    """`others`: more processes to sample by name (the Redis servers); not counted in `processes`."""
    stats: dict[str, procs.ProcStat] = {}
    api = procs.stat(api_pid)
    in_flight = 0
    if api is not None:
        stats["api"] = api
        for zygote_pid in procs.children(api_pid):  # embedded mode: the API's own zygotes
            zygote = procs.stat(zygote_pid)
            if zygote is not None:
                stats[f"api.z{zygote_pid}"] = zygote
                in_flight += len(procs.descendants(zygote_pid))
    for index, pid in enumerate(worker_pids):
        worker = procs.stat(pid)
        if worker is None:
            continue
        stats[f"w{index}"] = worker
        for zygote_pid in procs.children(pid):
            zygote = procs.stat(zygote_pid)
            if zygote is not None:
                stats[f"w{index}.z{zygote_pid}"] = zygote
                in_flight += len(procs.descendants(zygote_pid))
    processes = len(stats)
    for name, pid in others.items():
        other = procs.stat(pid)
        if other is not None:
            stats[name] = other
    return Sample(
        t_s=t_s,
        requests=len(latencies),
        p50_ms=_percentile(latencies, 0.5),
        p99_ms=_percentile(latencies, 0.99),
        stats=stats,
        processes=processes,
        in_flight_children=in_flight,
        containers=procs.sandbox_containers(worker_pids),
    )


def run_soak(
    minutes: float = 30.0,
    sample_s: float = 60.0,
    workers: int = 2,
    clients: int = 4,
    batch: int = 16,
    warmup_s: float = 30.0,
    miss_every_s: float = 60.0,
    seed: int = 0,
    backend: str = "local",
    on_sample: Any = None,
    service_env: dict[str, str] | None = None,
    cache_redis_mb: int | None = 64,
) -> SoakReport:
    """Run the soak; see the module's docstring. `on_sample(sample)` is called as samples come.
    `workers=0`: embedded mode (no Redis; the API runs the sandboxes). `service_env`: more
    `AZR_*` settings for the API and the workers. `cache_redis_mb`: queue mode's result cache
    in a second Redis with that `maxmemory` and `allkeys-lru` (as the shipped deployments run
    it); None: in the queue's Redis. The Redis servers are sampled like the service's processes."""
    from bench.local_stack import persistent_redis, running_service

    rng = random.Random(seed)
    expect = Expectations()
    mix = Mix(load_seeds(), expect, rng)
    redis_pids: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        if workers:
            queue_redis = stack.enter_context(persistent_redis())
            assert queue_redis.process is not None
            redis_pids["redis"] = queue_redis.process.pid
            cache_env = {}
            if cache_redis_mb:  # the result cache in an LRU Redis of its own, as the manifests run it
                lru = (
                    "--maxmemory",
                    f"{cache_redis_mb}mb",
                    "--maxmemory-policy",
                    "allkeys-lru",
                    "--appendonly",
                    "no",
                )
                cache_redis = stack.enter_context(persistent_redis(*lru))
                assert cache_redis.process is not None
                redis_pids["redis-cache"] = cache_redis.process.pid
                cache_env["AZR_CACHE_REDIS_URL"] = cache_redis.url
            running = running_service(
                workers,
                settings={**cache_env, **(service_env or {})},
                AZR_REDIS_URL=queue_redis.url,
                AZR_SANDBOX_BACKEND=backend,
            )
        else:
            running = running_service(settings=service_env, AZR_SANDBOX_BACKEND=backend)
        service = stack.enter_context(running)
        load = _Clients(service.url, mix, expect, batch)
        threads = [threading.Thread(target=load.run, args=(i,), daemon=True) for i in range(clients)]
        for thread in threads:
            thread.start()
        time.sleep(warmup_s)  # caches, pools and allocators settle before the first sample
        worker_pids = [w.pid for w in service.workers]
        started = time.monotonic()
        last = started
        samples = [_sample(service.api.pid, worker_pids, 0.0, [], redis_pids)]
        if on_sample:
            on_sample(samples[-1])
        next_epoch = started + miss_every_s
        end = started + minutes * 60
        while (now := time.monotonic()) < end:
            time.sleep(max(0.0, min(next_epoch, last + sample_s, end) - now))
            now = time.monotonic()
            if now >= next_epoch:
                with load.lock:
                    mix.new_epoch()
                next_epoch += miss_every_s
            if now >= last + sample_s or now >= end:
                samples.append(
                    _sample(
                        service.api.pid, worker_pids, now - started, load.latencies_since(last), redis_pids
                    )
                )
                last = now
                if on_sample:
                    on_sample(samples[-1])
        load.stop.set()
        for thread in threads:
            thread.join(300)
    report = SoakReport(
        minutes=minutes,
        workers=workers,
        samples=samples,
        requests=load.requests,
        items=load.items,
        refused=load.refused,
        server_errors=load.server_errors,
        lost=load.lost,
        load_dependent=load.load_dependent,
        problems=load.problems[:20],
    )
    keys = {key for sample in samples for key in sample.stats}
    late = samples[len(samples) // 2 :]
    for key in keys:
        points = [(s.t_s, s.stats[key].rss_mb) for s in samples if key in s.stats]
        if len(points) >= 3:
            report.slopes_mb_per_h[key] = slope_per_hour(points)
        late_points = [(s.t_s, s.stats[key].rss_mb) for s in late if key in s.stats]
        if len(late_points) >= 3:
            report.late_slopes_mb_per_h[key] = slope_per_hour(late_points)
    return report
