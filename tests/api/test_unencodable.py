"""Text UTF-8 cannot encode (a lone surrogate) never turns a request into a 5xx.

A lone surrogate arrives in the request JSON (the escape "\\udcff" is valid JSON), or comes
back from the sandbox in an exception message. Every response carries it as the six
characters `\\udcff`, and the other tasks' verdicts are all there. Over real HTTP on
loopback (embedded and queue mode) and in-process through FastAPI's TestClient.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.server import create_app
from executor.settings import Settings
from tests.servers import Service

SURROGATE = "\udcff"  # a lone surrogate: UTF-8 has no bytes for it
ESCAPED = "\\udcff"  # how responses carry it: a backslash and five characters


def surrogate_tasks() -> list[dict[str, Any]]:
    """One task with a surrogate in its program (JSON-escaped in the body), one whose f raises
    ValueError('\\udcff') (the escape written in ASCII in the program), one normal task."""
    nonce = uuid.uuid4().hex  # past the result cache: every run really executes
    return [
        {"id": "in-program", "program": f"def f(a):\n    return '{SURROGATE}'", "inputs": ["1"]},
        {
            "id": "raises",
            "program": f"def f(a):\n    # {nonce}\n    raise ValueError('\\udcff')",
            "inputs": ["1"],
        },
        {"id": "normal", "program": f"def f(a):\n    # {nonce}\n    return a[::-1]", "inputs": ["'abc'"]},
    ]


def check_validate(results: list[dict[str, Any]]) -> None:
    by_id = {r["id"]: r for r in results}
    assert [r["id"] for r in results] == ["in-program", "raises", "normal"]
    assert by_id["in-program"]["verdict"] == "bad_form"
    assert "surrogate" in by_id["in-program"]["detail"]
    assert by_id["raises"]["verdict"] == "runtime_error"
    assert "ValueError" in by_id["raises"]["detail"] and ESCAPED in by_id["raises"]["detail"]
    assert by_id["normal"]["verdict"] == "ok" and by_id["normal"]["outputs"] == ["'cba'"]


def surrogate_answers() -> list[dict[str, Any]]:
    nonce = uuid.uuid4().hex
    return [
        {"id": "in-answer", "task_type": "deduction", "output": "'a'", "answer": f"'{SURROGATE}'"},
        {
            "id": "raises",
            "task_type": "abduction",
            "program": f"def f(a):\n    # {nonce}\n    raise ValueError('\\udcff')",
            "output": "1",
            "answer": "1",
        },
        {"id": "normal", "task_type": "deduction", "output": "'cba'", "answer": "'cba'"},
    ]


def check_verify(results: list[dict[str, Any]]) -> None:
    assert [(r["id"], r["verdict"]) for r in results] == [
        ("in-answer", "invalid_input"),
        ("raises", "runtime_error"),
        ("normal", "ok"),
    ]
    assert ESCAPED in results[1]["detail"]


def post(client: httpx.Client | TestClient, path: str, body: Any) -> httpx.Response:
    """POST JSON with every non-ASCII character escaped (httpx's own json= writes UTF-8, which
    has no bytes for a lone surrogate; the escape "\\udcff" is what a client sends)."""
    return client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


def wait_job(client: httpx.Client | TestClient, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["status"] in ("finished", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def check_every_path(client: httpx.Client | TestClient) -> None:
    """Synchronous validate and verify, and both through ?wait=false and GET /v1/jobs."""
    response = post(client, "/v1/validate", {"tasks": surrogate_tasks(), "timeout_s": 5})
    assert response.status_code == 200, response.text
    check_validate(response.json()["results"])
    response = post(client, "/v1/verify", {"answers": surrogate_answers(), "timeout_s": 5})
    assert response.status_code == 200, response.text
    check_verify(response.json()["results"])
    accepted = post(client, "/v1/validate?wait=false", {"tasks": surrogate_tasks(), "timeout_s": 5})
    assert accepted.status_code == 202, accepted.text
    job = wait_job(client, accepted.json()["job_id"])
    assert job["status"] == "finished", job
    check_validate(job["results"])
    accepted = post(client, "/v1/verify?wait=false", {"answers": surrogate_answers(), "timeout_s": 5})
    job = wait_job(client, accepted.json()["job_id"])
    assert job["status"] == "finished", job
    check_verify(job["results"])


def test_embedded_over_http(embedded: Service) -> None:
    with httpx.Client(base_url=embedded.url, timeout=120) as client:
        check_every_path(client)
        assert client.get("/metrics").status_code == 200


def test_queue_mode_results_stored_in_redis(queued: Service) -> None:
    with httpx.Client(base_url=queued.url, timeout=120) as client:
        check_every_path(client)
        assert client.get("/metrics").status_code == 200


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app in this process (embedded mode, a real sandbox pool), through TestClient."""
    settings = Settings(audit={"dir": str(tmp_path_factory.mktemp("audit")), "sample_ok": 1.0})
    with TestClient(create_app(settings), raise_server_exceptions=True) as client:
        yield client


def test_embedded_in_process(in_process: TestClient) -> None:
    check_every_path(in_process)


def test_the_audit_trail_keeps_and_shows_those_records(in_process: TestClient) -> None:
    from api import audit

    post(in_process, "/v1/validate", {"tasks": surrogate_tasks(), "run": "surrogates"})
    audit.current().flush()
    listed = in_process.get("/v1/audit", params={"run": "surrogates", "full": "true"})
    assert listed.status_code == 200, listed.text
    records = {r["item_id"]: r for r in listed.json()["records"]}
    assert set(records) == {"in-program", "raises", "normal"}  # every ok is sampled here
    assert ESCAPED in records["in-program"]["program"] and ESCAPED in records["raises"]["detail"]
    for record in records.values():
        assert in_process.get(f"/v1/audit/{record['id']}").status_code == 200
        assert in_process.get(f"/audit/record/{record['id']}").status_code == 200
    assert in_process.get("/audit", params={"run": "surrogates"}).status_code == 200
    export = in_process.get("/v1/audit/export.jsonl", params={"run": "surrogates"})
    assert export.status_code == 200 and export.text.count("\n") == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            '{"tasks": [{"id": "\\udcff'
            + "x" * 300
            + '", "program": "def f(a): return a", "inputs": ["1"]}]}',
            "id",
        ),
        (
            '{"tasks": [{"id": "t", "program": "def f(a): return a", "inputs": ["1"]}], "timeout_s": NaN}',
            "timeout_s",
        ),
        (
            '{"tasks": [{"id": "t", "program": "def f(a): return a", "inputs": ["1"]}], "step": Infinity}',
            "step",
        ),
        (
            '{"tasks": [{"id": "t", "program": "def f(a): return a", "inputs": ["1"], "x\\udcff": "\\udcff"}]}',
            "x",
        ),
        ('{"tasks": ' + "[" * 900 + '"\\udcff"' + "]" * 900 + "}", "tasks"),
    ],
    ids=["surrogate-id", "nan", "infinity", "surrogate-extra-field", "deep-echo"],
)
def test_a_422_that_repeats_unencodable_input_is_still_a_422(
    in_process: TestClient, body: str, field: str
) -> None:
    response = in_process.post("/v1/validate", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert field in response.text


def test_metrics_stay_readable(in_process: TestClient) -> None:
    """Run tags become Prometheus labels: one that UTF-8 cannot encode is refused (422),
    and the labels that are kept are sanitised; /metrics answers either way."""
    tasks = [{"id": "t", "program": "def f(a):\n    return a", "inputs": ["1"]}]
    refused = post(in_process, "/v1/validate", {"tasks": tasks, "run": f"run-{SURROGATE}"})
    assert refused.status_code == 422 and "run" in refused.text
    assert post(in_process, "/v1/validate", {"tasks": tasks, "run": "run-\u00e9\u4e2d"}).status_code == 200
    scrape = in_process.get("/metrics")
    assert scrape.status_code == 200 and 'run="run-__"' in scrape.text
