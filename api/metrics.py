"""Prometheus metrics of the API and the workers (multiprocess-safe when PROMETHEUS_MULTIPROC_DIR is set)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

REQUESTS = Counter("azr_requests_total", "HTTP requests by endpoint and status code.", ["endpoint", "status"])
REQUEST_SECONDS = Histogram(
    "azr_request_seconds", "HTTP request latency by endpoint.", ["endpoint"], buckets=LATENCY_BUCKETS
)
REJECTED = Counter("azr_rejected_requests_total", "Requests refused before any work, by reason.", ["reason"])
EXECUTIONS = Counter("azr_tasks_total", "Tasks and answers judged, by kind (validate|verify).", ["kind"])
VERDICTS = Counter(
    "azr_verdicts_total", "Verdicts by kind (validate|verify) and verdict.", ["kind", "verdict"]
)
EXECUTION_SECONDS = Histogram(
    "azr_execution_seconds", "Time the engine spent on one batch or chunk.", ["kind"], buckets=LATENCY_BUCKETS
)
QUEUE_WAIT_SECONDS = Histogram(
    "azr_queue_wait_seconds",
    "Time a chunk waited in the queue before a worker started it.",
    buckets=LATENCY_BUCKETS,
)
CACHE = Counter("azr_cache_requests_total", "Result-cache lookups by result (hit|miss).", ["result"])
SANDBOX_FAILURES = Counter("azr_sandbox_errors_total", "Executions that ended in sandbox_error.", ["kind"])

GaugeSource = Callable[[], Iterable[tuple[str, str, dict[str, str], float]]]


class LiveGauges(Collector):
    """Gauges computed at scrape time: queue depth, workers, busy/idle sandboxes."""

    def __init__(self) -> None:
        self.sources: list[GaugeSource] = []

    def collect(self) -> Iterable[Any]:
        families: dict[str, GaugeMetricFamily] = {}
        for source in self.sources:
            try:
                samples = list(source())
            except Exception:  # noqa: BLE001 - a scrape must never fail on a source
                continue
            for name, doc, labels, value in samples:
                family = families.get(name)
                if family is None:
                    family = families[name] = GaugeMetricFamily(name, doc, labels=sorted(labels))
                family.add_metric([labels[k] for k in sorted(labels)], value)
        return list(families.values())


LIVE = LiveGauges()


def build_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        return REGISTRY
    registry.register(LIVE)
    return registry


_registry: CollectorRegistry | None = None


def render() -> tuple[bytes, str]:
    global _registry
    if _registry is None:
        _registry = build_registry()
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            try:
                _registry.register(LIVE)
            except ValueError:
                pass
    return generate_latest(_registry), CONTENT_TYPE_LATEST


def record_results(kind: str, verdicts: Iterable[str]) -> None:
    count = 0
    for verdict in verdicts:
        VERDICTS.labels(kind, verdict).inc()
        if verdict == "sandbox_error":
            SANDBOX_FAILURES.labels(kind).inc()
        count += 1
    EXECUTIONS.labels(kind).inc(count)


class CountingCache:
    """Wraps a result cache and counts hits and misses."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def get_many(self, keys: list[str]) -> list[dict[str, Any] | None]:
        found = self.inner.get_many(keys)
        hits = sum(1 for value in found if value is not None)
        if hits:
            CACHE.labels("hit").inc(hits)
        if len(found) - hits:
            CACHE.labels("miss").inc(len(found) - hits)
        return list(found)

    def set_many(self, items: dict[str, dict[str, Any]]) -> None:
        self.inner.set_many(items)
