"""The audit API in embedded mode against a real service: records, filters, detail, export, auth, overhead."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api import audit
from executor.settings import Settings
from tests.audit.conftest import Server, mixed_workload

UNSAFE = {
    "forbidden",
    "nondeterministic",
    "timeout",
    "runtime_error",
    "syntax_error",
    "memory_limit",
    "invalid_input",
}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, int]]]:
    directory = tmp_path_factory.mktemp("audit-api")
    settings = Settings(
        audit={"dir": str(directory), "sample_ok": 1.0}, sandbox={"lanes": 2}, limits={"memory_mb": 256}
    )
    with Server(settings) as server:
        counts = mixed_workload(server.url, run="run-api", rounds=2)
        mixed_workload(server.url, run="run-other", rounds=1)
        audit.current().flush()
        yield server, counts


def test_every_unsafe_verdict_is_recorded(service: tuple[Server, dict[str, int]]) -> None:
    server, counts = service
    for verdict in (
        "forbidden",
        "nondeterministic",
        "timeout",
        "runtime_error",
        "syntax_error",
        "invalid_input",
    ):
        assert counts.get(verdict), (verdict, counts)
    with httpx.Client(base_url=server.url) as client:
        records = client.get("/v1/audit", params={"run": "run-api", "limit": 500}).json()["records"]
        seen: dict[str, int] = {}
        for record in records:
            seen[record["verdict"]] = seen.get(record["verdict"], 0) + 1
        for verdict, n in counts.items():
            if verdict == "wrong":
                assert verdict not in seen  # wrong answers are not sampled by default
            else:
                assert seen.get(verdict) == n, (verdict, seen, counts)


def test_record_fields(service: tuple[Server, dict[str, int]]) -> None:
    server, _ = service
    with httpx.Client(base_url=server.url) as client:
        page = client.get(
            "/v1/audit", params={"verdict": "forbidden", "run": "run-api", "kind": "validate"}
        ).json()
        forbidden = [client.get(f"/v1/audit/{r['id']}").json() for r in page["records"]]
        imports = [r for r in forbidden if r["reason"] == "import os"]
        assert imports and imports[0]["line"] == 1 and imports[0]["finding"]["line"] == 1
        assert "import os" in imports[0]["program"] and imports[0]["input"] == "'.'"
        calls = [r for r in forbidden if r["reason"] == "name eval"]
        assert calls and calls[0]["line"] == 3, calls
        assert {r["step"] for r in forbidden} == {0, 1} and all(r["run"] == "run-api" for r in forbidden)

        (nd,) = client.get(
            "/v1/audit", params={"verdict": "nondeterministic", "run": "run-api", "full": True, "limit": 1}
        ).json()["records"]
        assert len(nd["outputs"]) >= 2 and len(set(nd["outputs"])) >= 2
        timeouts = client.get("/v1/audit", params={"verdict": "timeout", "full": True}).json()["records"]
        assert timeouts and timeouts[0]["cpu_ms"] > 100  # the busy loop burned CPU until the limit
        oks = client.get("/v1/audit", params={"verdict": "ok", "full": True, "kind": "validate"}).json()[
            "records"
        ]
        assert oks and oks[0]["sampled"] and oks[0]["maxrss_kb"] > 0
        verify = client.get(
            "/v1/audit", params={"kind": "verify", "verdict": "forbidden", "full": True}
        ).json()["records"]
        assert verify and verify[0]["task_type"] == "induction" and verify[0]["reason"] == "import subprocess"


def test_filters_search_time_and_pagination(service: tuple[Server, dict[str, int]]) -> None:
    server, _ = service
    with httpx.Client(base_url=server.url) as client:
        everything = client.get("/v1/audit", params={"limit": 500}).json()["records"]
        by_page: list[str] = []
        params: dict[str, object] = {"limit": 3}
        while True:
            body = client.get("/v1/audit", params=params).json()
            by_page += [r["id"] for r in body["records"]]
            if not body["next_cursor"]:
                break
            params["cursor"] = body["next_cursor"]
        assert by_page == [r["id"] for r in everything] and len(set(by_page)) == len(by_page)
        several = client.get("/v1/audit", params={"verdict": "timeout,forbidden"}).json()["records"]
        assert several and {r["verdict"] for r in several} == {"timeout", "forbidden"}
        found = client.get("/v1/audit", params={"q": "BYTEARRAY"}).json()["records"]
        assert found and all("memory" in r["item_id"] for r in found)
        assert client.get("/v1/audit", params={"reason": "ZeroDivisionError"}).json()["records"]
        newest = everything[0]["time"]
        assert client.get("/v1/audit", params={"since": newest + 1}).json()["records"] == []
        iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(newest + 5))
        assert len(client.get("/v1/audit", params={"until": iso, "limit": 500}).json()["records"]) == len(
            everything
        )
        assert client.get("/v1/audit", params={"since": "yesterday"}).status_code == 422
        assert client.get("/v1/audit/123-0").status_code == 404
        assert client.get("/v1/audit/not-an-id").status_code == 404


def test_export_jsonl(service: tuple[Server, dict[str, int]]) -> None:
    server, _ = service
    with httpx.Client(base_url=server.url) as client:
        reply = client.get("/v1/audit/export.jsonl", params={"run": "run-other"})
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in reply.text.splitlines()]
        assert lines and all(r["run"] == "run-other" and "program" in r for r in lines)
        listed = client.get("/v1/audit", params={"run": "run-other", "limit": 500}).json()["records"]
        assert [r["id"] for r in lines] == [r["id"] for r in listed]
        runs = client.get("/v1/audit/runs").json()["runs"]
        assert {"run-api", "run-other"} <= {r["run"] for r in runs}
        stats = client.get("/v1/audit/stats", params={"run": "run-api"}).json()
        assert stats["total"] == len(
            client.get("/v1/audit", params={"run": "run-api", "limit": 500}).json()["records"]
        )


def test_api_keys_and_requester(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZR_API_KEYS", '["secret-1"]')  # read from the environment, like a real service
    settings = Settings(audit={"dir": str(tmp_path)}, sandbox={"lanes": 1})
    assert settings.api.api_keys == ["secret-1"]
    with Server(settings) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/v1/audit").status_code == 401
        assert client.get("/audit").status_code == 401
        auth = {"Authorization": "Bearer secret-1"}
        reply = client.post(
            "/v1/validate",
            headers=auth,
            json={
                "tasks": [{"id": "x", "program": "import socket\ndef f(a):\n    return a", "inputs": ["1"]}]
            },
        )
        assert reply.json()["results"][0]["verdict"] == "forbidden"
        audit.current().flush()
        (record,) = client.get("/v1/audit", headers=auth).json()["records"]
        assert record["key_id"] and record["key_id"] != "secret-1" and len(record["key_id"]) == 12
        assert client.get("/audit", cookies={"azr_key": "secret-1"}).status_code == 200


def test_write_path_overhead(tmp_path: Path) -> None:
    """What auditing adds to one executed batch: the record() call on the verdict path."""
    from api.services.backends import make_engine
    from api.services.execution import execute, validate_payload

    settings = Settings(audit={"dir": str(tmp_path), "sample_ok": 0.01}, sandbox={"lanes": 2})
    service = audit.configure(settings)
    engine = make_engine(settings)
    engine.start()
    try:
        tasks = [
            {
                "id": f"t{i}",
                "program": f"import os\ndef f(a):\n    return a + {i}"
                if i % 2
                else f"def f(a):\n    return a + {i}",
                "inputs": ["1", "2"],
            }
            for i in range(64)
        ]
        payload = validate_payload(tasks, 2, 2.0)
        payload["meta"] = {"run": "bench", "step": 1, "key_id": None}
        executes, records = [], []
        for round_ in range(10):
            for task in tasks:
                task["program"] += f"\n# {round_}"  # defeat the result cache
            started = time.perf_counter()
            results = execute(engine, payload)
            executes.append(time.perf_counter() - started)
            started = time.perf_counter()
            service.record(payload, results)
            records.append(time.perf_counter() - started)
        service.flush()
        per_batch_ms = statistics.median(records) * 1000
        share = statistics.median(records) / statistics.median(executes)
        print(
            f"\n[audit] write path (embedded, 64-task batch, 32 unsafe): record() median {per_batch_ms:.2f} ms "
            f"vs execute() median {statistics.median(executes) * 1000:.1f} ms → {share:.2%} of verdict latency"
        )
        assert share < 0.05
    finally:
        engine.close()
        audit.shutdown()


def test_out_of_range_cursor_is_422_not_500() -> None:
    """Found by schemathesis: a cursor beyond SQLite's 64-bit keys must be a clear 4xx."""
    from api.audit.records import id_key

    with pytest.raises(ValueError):
        id_key("65473767731507565-3")
    with pytest.raises(ValueError):
        id_key("1-1000000")
    assert id_key("1700000000000-5") == 1700000000000 * 1_000_000 + 5


def test_parse_time_rejects_non_finite_values() -> None:
    """Found by schemathesis: since=INFINITY crashed the export stream."""
    from fastapi import HTTPException

    from api.routes.audit import parse_time

    for bad in ("INFINITY", "nan", "-inf", "1e300"):
        with pytest.raises(HTTPException) as caught:
            parse_time(bad, "since")
        assert caught.value.status_code == 422 and "since" in caught.value.detail
    assert parse_time("1700000000", "since") == 1700000000.0
