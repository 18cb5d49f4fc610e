"""Every PromQL expression of the Grafana dashboard and the alert rules, against a real Prometheus
scraping a running service (embedded API, queue-mode API and a worker) after a mixed workload."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from executor.settings import Settings
from tests.audit.conftest import (
    ROOT,
    RedisServer,
    Server,
    free_port,
    mixed_workload,
    start_worker,
    wait_workers,
)

pytestmark = [pytest.mark.slow, pytest.mark.redis]

GRAFANA = ROOT / "deploy" / "grafana"
RULES = GRAFANA.parent / "prometheus" / "rules" / "dashboard-alerts.yml"
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
# Counters with labels exist only after their first increment; a healthy run has no sandbox errors.
# For these the test demands the metric's HELP/TYPE in the scrape (no typo) instead of samples.
ONLY_ON_FAILURE = {"azr_sandbox_errors_total"}


def dashboard_exprs() -> list[tuple[str, str]]:
    out = []
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                out.append((f"{path.name}: {panel['title']} [{target['refId']}]", target["expr"]))
    return out


def rule_exprs() -> list[tuple[str, str]]:
    rules = yaml.safe_load(RULES.read_text())
    return [(f"alert {r['alert']}", r["expr"]) for g in rules["groups"] for r in g["rules"]]


def test_promtool_check_rules() -> None:
    if PROMTOOL is None:
        pytest.skip("!!! promtool NOT INSTALLED: apt-get install -y prometheus !!!")
    result = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_dashboard_json_is_grafana_shaped() -> None:
    dashboard = json.loads((GRAFANA / "dashboards" / "azr-verification.json").read_text())
    assert dashboard["uid"] and dashboard["panels"]
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for needed in ("reason", "unsafe share", "latency", "queue depth", "sandbox", "cache hit"):
        assert needed in titles, needed
    for provisioning in (GRAFANA / "provisioning").rglob("*.yml"):
        assert yaml.safe_load(provisioning.read_text())["apiVersion"] == 1


def concrete(expr: str) -> str:
    """Grafana variables → values Prometheus can evaluate."""
    return expr.replace("$__rate_interval", "30s").replace("$run", ".*")


def without_threshold(expr: str) -> str:
    """An alert's expression minus its final comparison: the part that must return data."""
    return re.sub(r"\s*[<>]=?\s*[\d.]+\s*$", "", expr.strip())


def metric_names(expr: str) -> set[str]:
    return {re.sub(r"_(bucket|sum|count)$", "", m) for m in re.findall(r"\b(azr_[a-z_]+)\b", expr)}


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if PROMETHEUS is None:
        pytest.skip("!!! prometheus NOT INSTALLED: apt-get install -y prometheus !!!")
    if shutil.which("redis-server") is None:
        pytest.skip("!!! redis-server NOT INSTALLED: apt-get install -y redis-server !!!")
    tmp = tmp_path_factory.mktemp("prom")
    (tmp / "redis").mkdir()
    redis = RedisServer(tmp / "redis")
    redis.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        worker_port = free_port()
        procs.append(
            start_worker(
                redis.url,
                {"AZR_WORKER_METRICS_PORT": str(worker_port), "AZR_WORKER_METRICS_ADDR": "127.0.0.1"},
            )
        )
        queue_port = free_port()
        env = {
            **os.environ,
            "AZR_REDIS_URL": redis.url,
            "AZR_AUDIT_DIR": str(tmp / "queue-audit"),
            "AZR_SANDBOX_LANES": "1",
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "cli", "serve", "--port", str(queue_port)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        settings = Settings(
            audit={"dir": str(tmp / "embedded-audit")},
            sandbox={"lanes": 2},
            limits={"memory_mb": 256},
            api={"max_body_bytes": 8192},
        )
        with Server(settings) as embedded:
            wait_workers(redis.url, 1)
            queue_url = f"http://127.0.0.1:{queue_port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(queue_url + "/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "queue-mode API did not become ready"
                time.sleep(0.2)
            prom_port = free_port()
            config = {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(RULES)],
                "scrape_configs": [
                    {
                        "job_name": "azr-api",
                        "static_configs": [
                            {"targets": [f"127.0.0.1:{embedded.port}", f"127.0.0.1:{queue_port}"]}
                        ],
                    },
                    {"job_name": "azr-worker", "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}]},
                ],
            }
            (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
            prom = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={tmp / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            procs.append(prom)
            prom_url = f"http://127.0.0.1:{prom_port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(prom_url + "/-/ready", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "prometheus did not become ready"
                time.sleep(0.2)
            # the mixed workload, twice (the second round hits the result cache), in both modes
            for _ in range(2):
                for url in (embedded.url, queue_url):
                    mixed_workload(url, run="run-prom")
                big = httpx.post(
                    embedded.url + "/v1/validate",
                    content=b"x" * 20_000,
                    headers={"content-type": "application/json"},
                )
                assert big.status_code == 413
                time.sleep(3)
            targets = httpx.get(prom_url + "/api/v1/targets").json()["data"]["activeTargets"]
            assert len(targets) == 3 and all(t["health"] == "up" for t in targets), targets
            yield prom_url
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        redis.kill()


def query(prom_url: str, expr: str) -> list[dict[str, Any]]:
    reply = httpx.get(prom_url + "/api/v1/query", params={"query": expr}, timeout=10).json()
    assert reply["status"] == "success", (expr, reply)
    return list(reply["data"]["result"])


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_expression_returns_data(prometheus: str, source: str) -> None:
    exprs = (
        dashboard_exprs() if source == "dashboard" else [(n, without_threshold(e)) for n, e in rule_exprs()]
    )
    names = set(httpx.get(prometheus + "/api/v1/label/__name__/values").json()["data"])
    metadata = httpx.get(
        prometheus + "/api/v1/targets/metadata", params={"match_target": '{job=~".+"}'}
    ).json()["data"]
    declared = {m["metric"] for m in metadata}
    assert "azr_verdict_total" not in declared | names  # the check can tell a typo from a metric
    empty = []
    for name, expr in exprs:
        expr = concrete(expr)
        for metric in metric_names(expr):
            assert metric in declared or metric + "_bucket" in names or metric in names, (
                f"{name}: unknown metric {metric}"
            )
        result = query(prometheus, expr)
        if not result:
            empty.append((name, expr))
            assert metric_names(expr) <= ONLY_ON_FAILURE and all(m in declared for m in metric_names(expr)), (
                f"{name}: no data for {expr}"
            )
        print(f"[prom] {'ok   ' if result else 'EMPTY'} {name}: {len(result)} series")
    assert len(empty) <= 1, empty
