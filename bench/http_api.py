"""`azr-exec bench --sections http`: end-to-end requests/s and latency over real HTTP, both modes."""

from __future__ import annotations

import http.client
import json
import statistics
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx

from executor.engine import Engine
from executor.verdicts import ValidateTask


def _batch(size: int) -> list[dict[str, Any]]:
    nonce = uuid.uuid4().hex[:8]  # fresh programs: no cache hits across runs
    return [
        {
            "id": f"t{i}",
            "program": f"def f(a):\n    # {nonce}\n    return sorted(a)[::-1] + [{i}]",
            "inputs": ["[3, 1, 2]"],
        }
        for i in range(size)
    ]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _round_trips(url: str, count: int) -> dict[str, float]:
    """Single-task validate round trips, alternating two clients on keep-alive connections:
    the standard library's http.client (the service's own latency, with the least client
    work) and httpx (what the azr_client package and most Python callers add on top)."""
    raw: list[float] = []
    with_httpx: list[float] = []
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=60)
    headers = {"Content-Type": "application/json"}
    with httpx.Client(base_url=url, timeout=60) as client:
        for i in range(count):
            body = {"tasks": [_batch(1)[0] | {"id": f"r{i}"}], "repeats": 2}
            if i % 2 == 0:
                encoded = json.dumps(body).encode()
                started = time.perf_counter()
                connection.request("POST", "/v1/validate", body=encoded, headers=headers)
                answer = connection.getresponse()
                answer.read()
                raw.append((time.perf_counter() - started) * 1000)
                if answer.status != 200:
                    raise RuntimeError(f"/v1/validate answered {answer.status}")
            else:
                started = time.perf_counter()
                response = client.post("/v1/validate", json=body)
                with_httpx.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
    connection.close()
    return {
        "p50_ms": statistics.median(raw),
        "p99_ms": _percentile(raw, 0.99),
        "requests_per_s": 1000 / statistics.mean(raw),
        "httpx_p50_ms": statistics.median(with_httpx),
        "httpx_p99_ms": _percentile(with_httpx, 0.99),
    }


def _big_batch(url: str, size: int) -> float:
    body = {"tasks": _batch(size), "repeats": 2}
    started = time.perf_counter()
    response = httpx.post(url + "/v1/validate", json=body, timeout=600)
    response.raise_for_status()
    assert all(r["valid"] for r in response.json()["results"])
    return time.perf_counter() - started


def http_section(args: Any) -> dict[str, Any]:
    """Round trips and a 1,000-task batch per mode. This VM's speed drifts from minute to
    minute, so the engine's own time for the same batch is measured again right before
    each mode's batch, and "vs engine" compares the two neighbours."""
    from bench.local_stack import redis_answers, running_service

    quick = bool(getattr(args, "quick", False))
    trips, size = (100, 1000) if quick else (300, 1000)
    figures: dict[str, Any] = {}

    with Engine() as engine:
        engine.validate([ValidateTask(t["id"], t["program"], t["inputs"]) for t in _batch(50)])

        def engine_batch() -> float:
            tasks = [ValidateTask(t["id"], t["program"], t["inputs"]) for t in _batch(size)]
            started = time.perf_counter()
            engine.validate(tasks, repeats=2)
            return time.perf_counter() - started

        engine_s = engine_batch()
        figures["engine_batch_s"] = engine_s
        print(
            f"engine alone: {size} tasks x 2 repeats in {engine_s:.2f} s ({2 * size / engine_s:.0f} executions/s)"
        )

        with running_service() as service:
            _round_trips(service.url, 20)
            figures["embedded_round_trip"] = _round_trips(service.url, trips)
            figures["embedded_engine_s"] = engine_batch()
            figures["embedded_batch_s"] = _big_batch(service.url, size)

        if redis_answers():
            for workers in (1, 2):
                with running_service(workers=workers, AZR_REDIS_URL="redis://127.0.0.1:6379/0") as service:
                    _big_batch(service.url, 100)
                    figures[f"queue_{workers}w_round_trip"] = _round_trips(service.url, trips // 2)
                    figures[f"queue_{workers}w_engine_s"] = engine_batch()
                    figures[f"queue_{workers}w_batch_s"] = _big_batch(service.url, size)
        else:
            print("queue mode skipped: no Redis at 127.0.0.1:6379")

    print()
    print("single-task round trips: http.client (the service's latency) | httpx (a typical client's)")
    print("1000-task batch: the mode's time, and the engine's own time for the same batch just before it")
    print(
        f"{'mode':<14}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>8}{'httpx p50':>11}{'httpx p99':>11}"
        f"{'batch s':>9}{'engine s':>10}{'vs engine':>11}"
    )
    for mode in ("embedded", "queue_1w", "queue_2w"):
        trip = figures.get(f"{mode}_round_trip")
        batch = figures.get(f"{mode}_batch_s")
        reference = figures.get(f"{mode}_engine_s")
        if trip is None or batch is None or reference is None:
            continue
        figures[f"{mode}_vs_engine"] = round(batch / reference, 3)
        print(
            f"{mode:<14}{trip['p50_ms']:>9.2f}{trip['p99_ms']:>9.2f}{trip['requests_per_s']:>8.0f}"
            f"{trip['httpx_p50_ms']:>11.2f}{trip['httpx_p99_ms']:>11.2f}{batch:>9.2f}{reference:>10.2f}"
            f"{batch / reference:>10.2f}x"
        )
    return figures
