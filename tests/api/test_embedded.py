"""The embedded default over real HTTP on loopback."""

from __future__ import annotations

import time

import httpx

from tests.api.workload import MIXED_ANSWERS, MIXED_TASKS, check_validate_results, check_verify_results
from tests.servers import Service


def test_mixed_validate_batch(embedded: Service) -> None:
    body = {"tasks": [t for t, _, _ in MIXED_TASKS], "repeats": 2, "timeout_s": 2, "run": "test", "step": 1}
    response = httpx.post(embedded.url + "/v1/validate", json=body, timeout=60)
    assert response.status_code == 200, response.text
    check_validate_results(response.json()["results"])


def test_mixed_verify_batch(embedded: Service) -> None:
    body = {"answers": [a for a, _, _ in MIXED_ANSWERS]}
    response = httpx.post(embedded.url + "/v1/verify", json=body, timeout=60)
    assert response.status_code == 200, response.text
    check_verify_results(response.json()["results"])


def test_async_job_round_trip(embedded: Service) -> None:
    body = {"tasks": [t for t, _, _ in MIXED_TASKS], "timeout_s": 2}
    accepted = httpx.post(embedded.url + "/v1/validate?wait=false", json=body, timeout=10)
    assert accepted.status_code == 202
    job_id = accepted.json()["job_id"]
    deadline = time.monotonic() + 60
    while True:
        job = httpx.get(f"{embedded.url}/v1/jobs/{job_id}", timeout=10).json()
        if job["status"] in ("finished", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert job["status"] == "finished"
    check_validate_results(job["results"])


def test_unknown_job_is_404(embedded: Service) -> None:
    response = httpx.get(embedded.url + "/v1/jobs/nope", timeout=10)
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


def test_health_ready_metrics_docs(embedded: Service) -> None:
    assert httpx.get(embedded.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(embedded.url + "/readyz").json()
    assert ready["status"] == "ready" and ready["mode"] == "embedded"
    # Every confinement layer holds, and none is downgraded.
    assert set(ready["layers"]) >= {"c_runner", "landlock", "seccomp", "uid", "python"}, ready
    assert ready["downgraded"] == [] and "downgraded_by" not in ready
    httpx.post(embedded.url + "/v1/validate", json={"tasks": [MIXED_TASKS[0][0]]}, timeout=30)
    text = httpx.get(embedded.url + "/metrics").text
    for name in (
        "azr_requests_total",
        "azr_verdicts_total",
        "azr_request_seconds_bucket",
        "azr_sandboxes",
        "azr_cache_requests_total",
        "azr_execution_seconds_bucket",
    ):
        assert name in text, name
    spec = httpx.get(embedded.url + "/openapi.json").json()
    assert {"/v1/validate", "/v1/verify", "/v1/jobs/{job_id}", "/healthz", "/readyz", "/metrics"} <= set(
        spec["paths"]
    )
    assert httpx.get(embedded.url + "/docs").status_code == 200


def test_repeated_validation_hits_the_cache(embedded: Service) -> None:
    task = {"id": "c", "program": "def f(n):\n    return sum(range(n))", "inputs": ["12345"]}
    httpx.post(embedded.url + "/v1/validate", json={"tasks": [task]}, timeout=30)

    def hits() -> float:
        for line in httpx.get(embedded.url + "/metrics").text.splitlines():
            if line.startswith('azr_cache_requests_total{result="hit"}'):
                return float(line.split()[-1])
        return 0.0

    before = hits()
    again = httpx.post(embedded.url + "/v1/validate", json={"tasks": [task]}, timeout=30).json()
    assert again["results"][0]["outputs"] == ["76193340"]
    assert hits() == before + 1


def test_verify_accepts_a_bare_list_of_answers(embedded: Service) -> None:
    answers = [a for a, _, _ in MIXED_ANSWERS]
    response = httpx.post(embedded.url + "/v1/verify", json=answers, timeout=60)
    assert response.status_code == 200, response.text
    check_verify_results(response.json()["results"])
