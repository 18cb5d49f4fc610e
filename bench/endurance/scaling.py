"""Executions/s against the number of workers, each held to half a CPU (N workers stand for
N small hosts): the compose stack of deploy/compose/scaling.yml, scaled to N = 1, 2, 3, ...,
loaded with the AZR seed workload (each program under a fresh tag, so the result cache
answers none), and the efficiency of N workers against N times one worker.

    python scripts/scale_bench.py --workers 1,2,3
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.endurance.workload import Seed, load_seeds

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "deploy" / "compose" / "scaling.yml"
PROJECT = "azr-scale"
REPEATS = 2  # each task has one input, run twice (two hash seeds): two executions


@dataclass
class Round:
    workers: int
    seconds: float
    tasks: int
    executions_per_s: float
    p50_ms: float
    efficiency: float = 1.0  # against `workers` x the one-worker rate


class ComposeStack:
    def __init__(self, port: int, env: dict[str, str] | None = None) -> None:
        command = shutil.which("docker-compose")
        if command is None:
            raise RuntimeError("docker-compose is not installed (scripts/bootstrap.sh test installs it)")
        self.command = [command, "-p", PROJECT, "-f", str(COMPOSE_FILE)]
        self.env = {**os.environ, "AZR_SCALE_API_PORT": str(port), **(env or {})}
        self.url = f"http://127.0.0.1:{port}"

    def compose(self, *args: str, timeout: float = 600) -> None:
        done = subprocess.run(
            [*self.command, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise RuntimeError(f"docker-compose {' '.join(args)} failed: {done.stderr[-2000:]}")

    def scale(self, workers: int, timeout: float = 240) -> None:
        self.compose("up", "-d", "--no-recreate", "--scale", f"worker={workers}")
        deadline = time.monotonic() + timeout
        seen: Any = None
        while time.monotonic() < deadline:
            try:
                seen = httpx.get(self.url + "/readyz", timeout=5).json()
                if seen.get("workers") == workers:
                    return
            except (httpx.HTTPError, ValueError) as exc:
                seen = exc
            time.sleep(1)
        raise TimeoutError(f"{workers} workers not registered within {timeout} s (last /readyz: {seen})")

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", "-t", "30")


class _Load:
    def __init__(self, url: str, seeds: list[Seed], batch: int, seed: int) -> None:
        self.url = url
        self.seeds = seeds
        self.batch = batch
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.done: list[tuple[float, int, float]] = []  # (when, tasks, latency ms)
        self.errors: list[str] = []
        self.stop = threading.Event()

    def body(self) -> dict[str, Any]:
        tag = uuid.uuid4().hex[:12]
        with self.lock:
            chosen = [self.rng.choice(self.seeds) for _ in range(self.batch)]
        tasks = [
            {"id": f"{tag}-{i}", "program": f"{s.program}\n# scale {tag} {i}", "inputs": [s.input]}
            for i, s in enumerate(chosen)
        ]
        return {"tasks": tasks, "repeats": REPEATS}

    def client(self) -> None:
        with httpx.Client(base_url=self.url, timeout=600) as http:
            while not self.stop.is_set():
                body = self.body()
                started = time.monotonic()
                try:
                    response = http.post("/v1/validate", json=body)
                except httpx.HTTPError as exc:
                    with self.lock:
                        self.errors.append(repr(exc))
                    continue
                if response.status_code != 200:
                    with self.lock:
                        self.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
                    time.sleep(1)
                    continue
                results = response.json()["results"]
                with self.lock:
                    self.done.append((time.monotonic(), len(results), (time.monotonic() - started) * 1000))


def measure(url: str, workers: int, seconds: float, warmup_s: float, batch: int, seeds: list[Seed]) -> Round:
    """Closed-loop clients (4 per worker, so the queue never runs dry) for `warmup_s`, then
    count the tasks whose requests finish in the next `seconds`."""
    load = _Load(url, seeds, batch, seed=workers)
    threads = [threading.Thread(target=load.client, daemon=True) for _ in range(4 * workers)]
    for thread in threads:
        thread.start()
    time.sleep(warmup_s)
    start = time.monotonic()
    time.sleep(seconds)
    end = time.monotonic()
    load.stop.set()
    for thread in threads:
        thread.join(600)
    window = [(tasks, latency) for when, tasks, latency in load.done if start <= when < end]
    if load.errors:
        raise RuntimeError(f"{len(load.errors)} failed requests, e.g. {load.errors[0]}")
    tasks = sum(t for t, _ in window)
    latencies = sorted(latency for _, latency in window)
    return Round(
        workers=workers,
        seconds=end - start,
        tasks=tasks,
        executions_per_s=tasks * REPEATS / (end - start),
        p50_ms=latencies[len(latencies) // 2] if latencies else float("nan"),
    )


def run_scaling(
    counts: list[int], seconds: float = 60.0, warmup_s: float = 15.0, batch: int = 32, port: int = 18000
) -> list[Round]:
    seeds = load_seeds()
    stack = ComposeStack(port)
    rounds: list[Round] = []
    try:
        for workers in counts:
            stack.scale(workers)
            rounds.append(measure(stack.url, workers, seconds, warmup_s, batch, seeds))
            print(
                f"[scale] {workers} worker(s): {rounds[-1].executions_per_s:.1f} executions/s",
                flush=True,
            )
    finally:
        stack.down()
    one = next((r.executions_per_s for r in rounds if r.workers == 1), None)
    for r in rounds:
        if one:
            r.efficiency = r.executions_per_s / (r.workers * one)
    return rounds


def table(rounds: list[Round], cpus: str) -> str:
    lines = [
        f"workers held to {cpus} CPU each; AZR seed workload, validate, repeats={REPEATS}, cache misses only",
        f"{'workers':>7} {'tasks':>7} {'seconds':>8} {'executions/s':>13} {'p50 ms':>8} {'efficiency':>11}",
    ]
    for r in rounds:
        lines.append(
            f"{r.workers:>7} {r.tasks:>7} {r.seconds:>8.1f} {r.executions_per_s:>13.1f} {r.p50_ms:>8.0f} "
            f"{r.efficiency:>10.2f}x"
        )
    return "\n".join(lines)
