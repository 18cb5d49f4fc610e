"""The one code path from a request payload to verdicts, shared by embedded mode and RQ workers."""

from __future__ import annotations

import time
from typing import Any

from api import audit, metrics
from executor.engine import Engine
from executor.verdicts import Answer, Case, ValidateTask

Payload = dict[str, Any]


def validate_payload(tasks: list[dict[str, Any]], repeats: int | None, timeout_s: float | None) -> Payload:
    return {"kind": "validate", "tasks": tasks, "repeats": repeats, "timeout_s": timeout_s}


def verify_payload(answers: list[dict[str, Any]], timeout_s: float | None) -> Payload:
    return {"kind": "verify", "answers": answers, "timeout_s": timeout_s}


def items_of(payload: Payload) -> list[dict[str, Any]]:
    return list(payload["tasks"] if payload["kind"] == "validate" else payload["answers"])


def with_items(payload: Payload, items: list[dict[str, Any]]) -> Payload:
    key = "tasks" if payload["kind"] == "validate" else "answers"
    return {**payload, key: items}


def _result_dict(result: Any) -> dict[str, Any]:
    data = dict(vars(result))  # shallow: the engine hands each result out once (asdict deep-copies)
    for key in ("verdict",):
        data[key] = str(data[key])
    if "input_verdicts" in data:
        data["input_verdicts"] = [str(v) for v in data["input_verdicts"]]
    return data


# A validate payload this small runs its static checks on the event loop (`execute_async`):
# no hand-over to a worker thread and back. The checks are linear in the text, about 2.5 µs
# a character at worst (a dense 20,000-character program takes some 50 ms), so 4,000
# characters hold the loop for at most about 10 ms; anything bigger is checked on a thread.
SMALL_PAYLOAD_INPUTS = 8
SMALL_PAYLOAD_CHARS = 4_000


def is_small(payload: Payload) -> bool:
    if payload["kind"] != "validate":
        return False
    tasks = payload["tasks"]
    inputs = sum(len(t["inputs"]) for t in tasks)
    chars = sum(len(t["program"]) + sum(len(i) for i in t["inputs"]) for t in tasks)
    return inputs <= SMALL_PAYLOAD_INPUTS and chars <= SMALL_PAYLOAD_CHARS


def _validate_tasks(payload: Payload) -> list[ValidateTask]:
    return [ValidateTask(t["id"], t["program"], list(t["inputs"])) for t in payload["tasks"]]


def _recorded(
    kind: str, payload: Payload, results: list[dict[str, Any]], started: float
) -> list[dict[str, Any]]:
    metrics.EXECUTION_SECONDS.labels(kind).observe(time.perf_counter() - started)
    metrics.record_results(kind, (r["verdict"] for r in results))
    audit.record(payload, results)
    return results


def _client(payload: Payload) -> str | None:
    """Who asked, for the sandbox pool's fair share: the API key's id when keys are configured;
    else None, and every request is a client of its own."""
    meta = payload.get("meta") or {}
    key_id = meta.get("key_id")
    return f"key:{key_id}" if key_id else None


def execute(engine: Engine, payload: Payload) -> list[dict[str, Any]]:
    """Run one payload on an engine; plain dicts out (JSON- and pickle-friendly)."""
    started = time.perf_counter()
    kind = payload["kind"]
    if kind == "validate":
        validated = engine.validate(
            _validate_tasks(payload), payload.get("repeats"), payload.get("timeout_s"), _client(payload)
        )
        results = [_result_dict(r) for r in validated]
    elif kind == "verify":
        answers = [
            Answer(
                a["id"],
                a["task_type"],
                a["answer"],
                a.get("program"),
                a.get("input"),
                a.get("output"),
                tuple(Case(c["input"], c["output"]) for c in (a.get("cases") or ())),
            )
            for a in payload["answers"]
        ]
        results = [
            _result_dict(r) for r in engine.verify(answers, payload.get("timeout_s"), _client(payload))
        ]
    else:
        raise ValueError(f"unknown payload kind {kind!r}")
    return _recorded(kind, payload, results, started)


async def execute_async(engine: Engine, payload: Payload) -> list[dict[str, Any]]:
    """`execute` for a small validate payload (`is_small`), on the event loop."""
    started = time.perf_counter()
    validated = await engine.validate_async(
        _validate_tasks(payload), payload.get("repeats"), payload.get("timeout_s"), _client(payload)
    )
    return _recorded("validate", payload, [_result_dict(r) for r in validated], started)
