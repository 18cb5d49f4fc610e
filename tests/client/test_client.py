from __future__ import annotations

import asyncio
import socket
import time

import pytest
from azr_client import (
    AbductionAnswer,
    AsyncVerificationClient,
    AuthenticationError,
    Case,
    DeductionAnswer,
    InductionAnswer,
    RetryPolicy,
    ValidateTask,
    VerificationClient,
    VerificationClientError,
)
from azr_client._core import chunked, classify, parse_retry_after

FAST = RetryPolicy(max_attempts=4, backoff_base_s=0.01, backoff_max_s=0.05, jitter=0.0)


def tasks(n: int) -> list[ValidateTask]:
    return [ValidateTask(id=f"t{i}", program="def f(a):\n    return a", inputs=[str(i)]) for i in range(n)]


def post_bodies(server) -> list[dict]:
    return [r["body"] for r in server.requests if r["method"] == "POST"]


# ----------------------------------------------------------------------------- pure helpers
def test_retry_after_parsing() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)


def test_backoff_grows_caps_and_respects_retry_after() -> None:
    pol = RetryPolicy(backoff_base_s=0.1, backoff_max_s=1.0, jitter=0.0)
    assert [pol.delay(a, None) for a in range(5)] == [0.1, 0.2, 0.4, 0.8, 1.0]
    assert pol.delay(0, 2.5) == 2.5
    jit = RetryPolicy(backoff_base_s=1.0, backoff_max_s=1.0, jitter=0.5)
    assert all(0.5 <= jit.delay(0, None) <= 1.0 for _ in range(50))


def test_classify_and_chunking() -> None:
    assert [classify(s) for s in (200, 401, 413, 422, 429, 503, 500, 404)] == [
        "ok",
        "auth",
        "split",
        "split",
        "retry",
        "retry",
        "retry",
        "fail",
    ]
    assert list(chunked([1, 2, 3, 4, 5], 2)) == [[1, 2], [3, 4], [5]]


# ----------------------------------------------------------------------------- sync client
def test_validate_typed_results_and_run_tags(scripted_server) -> None:
    with VerificationClient(scripted_server.url, retry=FAST) as c:
        res = c.validate(tasks(3), repeats=2, timeout_s=5, run="r1", step=7)
    assert [r.id for r in res] == ["t0", "t1", "t2"]
    assert res[1].valid and res[1].verdict == "ok" and res[1].outputs == ["1"]
    body = post_bodies(scripted_server)[0]
    assert body["run"] == "r1" and body["step"] == 7 and body["repeats"] == 2
    assert body["timeout_s"] == 5


def test_verify_all_answer_kinds(scripted_server) -> None:
    answers = [
        DeductionAnswer(id="d", output="'cba'", answer="'cba'", program="p", input="'abc'"),
        AbductionAnswer(id="a", program="p", output="1", answer="2"),
        InductionAnswer(id="i", answer="x", cases=[Case("1", "x")]),
        {"id": "raw", "task_type": "deduction", "output": "1", "answer": "1"},
    ]
    with VerificationClient(scripted_server.url, retry=FAST) as c:
        res = c.verify(answers)
    assert [(r.id, r.correct) for r in res] == [("d", True), ("a", False), ("i", True), ("raw", True)]
    sent = post_bodies(scripted_server)[0]["answers"]
    assert sent[0]["program"] == "p" and sent[2]["cases"] == [{"input": "1", "output": "x"}]
    assert "run" not in post_bodies(scripted_server)[0]


def test_batching_splits_and_keeps_order(scripted_server) -> None:
    with VerificationClient(scripted_server.url, max_batch=3, concurrency=3, retry=FAST) as c:
        res = c.validate(tasks(10))
    assert [r.id for r in res] == [f"t{i}" for i in range(10)]
    sizes = sorted(len(b["tasks"]) for b in post_bodies(scripted_server))
    assert sizes == [1, 3, 3, 3]


def test_retries_429_honouring_retry_after(scripted_server) -> None:
    scripted_server.script_replies(429, {"Retry-After": "0.3"}, {"detail": "busy"})
    scripted_server.script_replies(503, body={})
    t0 = time.monotonic()
    with VerificationClient(scripted_server.url, retry=FAST) as c:
        res = c.validate(tasks(2))
    assert time.monotonic() - t0 >= 0.3
    assert all(r.valid for r in res)
    assert len(post_bodies(scripted_server)) == 3


def test_persistent_503_becomes_verdicts_not_exceptions(scripted_server) -> None:
    scripted_server.script_replies(503, {"Retry-After": "0"}, {"detail": "down"}, times=10)
    with VerificationClient(scripted_server.url, retry=FAST) as c:
        res = c.validate(tasks(2))
        ver = c.verify([DeductionAnswer(id="d", output="1", answer="1")])
    assert [r.verdict for r in res] == ["sandbox_error", "sandbox_error"]
    assert not any(r.valid for r in res) and all(r.client_side for r in res)
    assert res[0].outputs == [None] and "gave up after 4 attempts" in res[0].detail
    assert "HTTP 503" in res[0].detail
    assert not ver[0].correct and ver[0].verdict == "sandbox_error"


def test_slow_service_never_hangs_past_deadline(scripted_server) -> None:
    scripted_server.script_replies(200, delay_s=3.0, times=5)
    t0 = time.monotonic()
    with VerificationClient(scripted_server.url, request_timeout_s=0.3, deadline_s=0.8, retry=FAST) as c:
        res = c.validate(tasks(1))
    assert time.monotonic() - t0 < 2.0
    assert res[0].verdict == "sandbox_error" and not res[0].valid
    assert "client:" in res[0].detail


def test_connection_refused_becomes_verdicts() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with VerificationClient(f"http://127.0.0.1:{port}", retry=FAST, deadline_s=2) as c:
        res = c.verify([DeductionAnswer(id="d", output="1", answer="1")])
        assert not c.healthz()
    assert res[0].verdict == "sandbox_error" and "connection error" in res[0].detail


def test_bearer_key_sent_and_401_raises(scripted_server) -> None:
    with VerificationClient(scripted_server.url, api_key="sekrit", retry=FAST) as c:
        c.validate(tasks(1))
        scripted_server.script_replies(401, body={"detail": "bad key"})
        with pytest.raises(AuthenticationError):
            c.validate(tasks(1))
    assert scripted_server.requests[0]["headers"]["Authorization"] == "Bearer sekrit"


def test_422_bisects_to_the_offending_task(scripted_server) -> None:
    # first request (4 tasks) rejected, then halves: [t0,t1] ok, [t2,t3] rejected, t2 ok, t3 rejected
    limit = {"detail": "tasks[3].program too long (limit 100)"}
    scripted_server.script_replies(422, body=limit)
    scripted_server.script_replies(200)
    scripted_server.script_replies(422, body={"detail": "tasks[1].program too long"})
    scripted_server.script_replies(200)
    scripted_server.script_replies(422, body=limit)
    with VerificationClient(scripted_server.url, retry=FAST) as c:
        res = c.validate(tasks(4))
    assert [r.valid for r in res] == [True, True, True, False]
    assert res[3].verdict == "bad_form" and "limit 100" in res[3].detail


def test_missing_result_and_duplicate_ids(scripted_server) -> None:
    scripted_server.script_replies(200, body={"results": [{"id": "t0", "valid": True, "verdict": "ok"}]})
    with VerificationClient(scripted_server.url, retry=FAST) as c:
        res = c.validate(tasks(2))
        assert res[0].valid and res[1].verdict == "sandbox_error"
        with pytest.raises(VerificationClientError):
            c.validate(tasks(1) + tasks(1))
        assert c.validate([]) == []


def test_async_jobs_sync(scripted_server) -> None:
    with VerificationClient(scripted_server.url, retry=FAST) as c:
        job_id = c.submit_validate(tasks(2), repeats=2)
        assert "wait=false" in scripted_server.requests[-1]["path"]
        first = c.job(job_id)
        assert first.status == "running" and not first.done
        done = c.wait_job(job_id, timeout_s=5, poll_interval_s=0.01)
        assert done.status == "finished"
        assert [r.id for r in c.validate_results(done)] == ["t0", "t1"]
        assert c.healthz() and c.readyz()


# ----------------------------------------------------------------------------- async client
def test_async_client_concurrent_batches_and_failures(scripted_server) -> None:
    async def main() -> None:
        async with AsyncVerificationClient(scripted_server.url, max_batch=2, concurrency=4, retry=FAST) as c:
            res = await c.validate(tasks(7), run="r")
            assert [r.id for r in res] == [f"t{i}" for i in range(7)]
            assert await c.healthz()
            scripted_server.script_replies(503, body={}, times=4)
            bad = await c.verify([DeductionAnswer(id="d", output="1", answer="1")])
            assert bad[0].verdict == "sandbox_error" and bad[0].client_side
            job_id = await c.submit_verify([DeductionAnswer(id="d", output="1", answer="1")])
            done = await c.wait_job(job_id, timeout_s=5, poll_interval_s=0.01)
            assert done.results and done.results[0]["correct"]

    asyncio.run(main())
    assert len([b for b in post_bodies(scripted_server) if "tasks" in b]) == 4


def test_async_deadline(scripted_server) -> None:
    scripted_server.script_replies(200, delay_s=3.0, times=5)

    async def main() -> list:
        async with AsyncVerificationClient(
            scripted_server.url, request_timeout_s=0.3, deadline_s=0.8, retry=FAST
        ) as c:
            return await c.validate(tasks(1))

    t0 = time.monotonic()
    res = asyncio.run(main())
    assert time.monotonic() - t0 < 2.0
    assert res[0].verdict == "sandbox_error"
