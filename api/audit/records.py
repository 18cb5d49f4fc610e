"""Audit records: what one verdict looked like, built from a payload and its results.

A record is a plain JSON-friendly dict. Every result whose verdict is not `ok`/`wrong`
becomes a record; `ok` (and `wrong`) results are sampled at a configurable rate.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

ALWAYS_SKIPPED = frozenset({"ok", "wrong"})
UNSAFE = frozenset({"forbidden", "timeout", "memory_limit", "output_limit", "nondeterministic"})

_QUOTED = re.compile(r"'([^']{1,80})'")
_LINE = re.compile(r"\bline (\d+)\b")
_EXC = re.compile(r"\b([A-Z][A-Za-z0-9_]*(?:Error|Exception|Exit|Interrupt|Warning|Iteration))\b")
_VS = " vs "


@dataclass(frozen=True)
class AuditPolicy:
    sample_ok: float = 0.01
    sample_wrong: float = 0.0
    max_program_chars: int = 8000
    max_input_chars: int = 2000
    max_detail_chars: int = 2000


def cap(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n... [truncated, {len(text):,} chars in all]"


def reason_of(verdict: str, detail: str) -> str:
    """A short, groupable reason: the banned thing, the exception type, or the verdict."""
    if verdict == "forbidden":
        quoted = _QUOTED.search(detail)
        if "import" in detail and quoted:
            return f"import {quoted.group(1)}"
        if "attribute" in detail and quoted:
            return f"attribute {quoted.group(1)}"
        if quoted:
            return f"name {quoted.group(1)}"
        return "forbidden"
    if verdict == "runtime_error":
        match = _EXC.search(detail)
        return match.group(1) if match else "runtime_error"
    return verdict


def line_of(result: dict[str, Any], detail: str) -> int | None:
    line = result.get("line")
    if isinstance(line, int) and line > 0:
        return line
    match = _LINE.search(detail)
    return int(match.group(1)) if match else None


def differing_outputs(result: dict[str, Any], detail: str, index: int | None) -> list[str]:
    seen = result.get("input_outputs_seen")
    if isinstance(seen, list) and index is not None and index < len(seen) and seen[index]:
        return [str(s) for s in seen[index]][:4]
    if "different outputs" in detail and ": " in detail:
        tail = detail.rsplit("address layouts: ", 1)[-1]
        return tail.split(_VS)[:4]
    return []


class _Ids:
    """Time-ordered ids '<ms>-<seq>' (the same shape as Redis stream ids)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._seq = 0
        self._base = (os.getpid() % 1000) * 1000

    def next(self, now: float) -> str:
        ms = int(now * 1000)
        with self._lock:
            if ms <= self._last_ms:
                ms = self._last_ms
                self._seq += 1
            else:
                self._last_ms, self._seq = ms, 0
            return f"{ms}-{self._base + self._seq % 1000}"


IDS = _Ids()


def id_key(record_id: str) -> int:
    """The integer sort key of an id ('<ms>-<seq>' → ms * 10**6 + seq)."""
    ms, _, seq = record_id.partition("-")
    key = int(ms) * 1_000_000 + int(seq or 0)
    if not 0 <= int(seq or 0) < 1_000_000 or not 0 <= key < 2**63:  # SQLite keys are signed 64-bit
        raise ValueError(f"record id {record_id!r} is out of range")
    return key


def key_id(key: int) -> str:
    return f"{key // 1_000_000}-{key % 1_000_000}"


def _keep(verdict: str, policy: AuditPolicy, rng: random.Random) -> tuple[bool, bool]:
    """(keep it, it was sampled)."""
    if verdict not in ALWAYS_SKIPPED:
        return True, False
    rate = policy.sample_ok if verdict == "ok" else policy.sample_wrong
    if rate <= 0:
        return False, False
    return (rate >= 1 or rng.random() < rate), True


_rng = random.Random()


def build_records(
    payload: dict[str, Any],
    results: Iterable[dict[str, Any]],
    policy: AuditPolicy,
    now: float | None = None,
    rng: random.Random | None = None,
) -> list[dict[str, Any]]:
    """Records (without ids) for the results worth keeping."""
    now = time.time() if now is None else now
    rng = rng or _rng
    meta = payload.get("meta") or {}
    kind = payload.get("kind", "")
    items = payload.get("tasks") if kind == "validate" else payload.get("answers")
    by_id = {str(item.get("id")): item for item in items or ()}
    records: list[dict[str, Any]] = []
    for result in results:
        verdict = str(result.get("verdict", ""))
        keep, sampled = _keep(verdict, policy, rng)
        if not keep:
            continue
        item = by_id.get(str(result.get("id")), {})
        detail = str(result.get("detail") or "")
        input_index: int | None = None
        if kind == "validate":
            program = item.get("program")
            inputs = list(item.get("inputs") or [])
            verdicts = [str(v) for v in result.get("input_verdicts") or []]
            input_index = next((i for i, v in enumerate(verdicts) if v not in ("ok",)), None)
            if input_index is not None and input_index < len(inputs):
                input_text = inputs[input_index]
            else:
                input_text = inputs[0] if inputs else None
            details = result.get("input_details") or []
            if input_index is not None and input_index < len(details) and details[input_index]:
                detail = detail or str(details[input_index])
            task_type = "proposal"
            extra: dict[str, Any] = {"input_verdicts": verdicts, "n_inputs": len(inputs)}
        else:
            task_type = str(item.get("task_type") or "")
            if task_type == "induction":
                program = item.get("answer")
                cases = item.get("cases") or []
                input_text = cases[0].get("input") if cases else None
                extra = {"n_cases": len(cases)}
            else:
                program = item.get("program")
                input_text = item.get("answer") if task_type == "abduction" else item.get("input")
                extra = {
                    "answer": cap(item.get("answer"), policy.max_input_chars),
                    "gold_output": cap(item.get("output"), policy.max_input_chars),
                }
        line = line_of(result, detail)
        records.append(
            {
                "time": now,
                "verdict": verdict,
                "reason": reason_of(verdict, detail),
                "detail": cap(detail, policy.max_detail_chars) or "",
                "finding": {"message": cap(detail, 500), "line": line}
                if line is not None or verdict in ("forbidden", "syntax_error", "bad_form")
                else None,
                "line": line,
                "program": cap(program, policy.max_program_chars),
                "program_chars": len(program) if program else 0,
                "input": cap(input_text, policy.max_input_chars),
                "input_index": input_index,
                "outputs": differing_outputs(result, detail, input_index)
                if verdict == "nondeterministic"
                else [],
                "cpu_ms": float(result.get("cpu_ms") or 0.0),
                "maxrss_kb": int(result.get("maxrss_kb") or 0),
                "key_id": meta.get("key_id"),
                "run": meta.get("run"),
                "step": meta.get("step"),
                "kind": kind,
                "task_type": task_type,
                "item_id": str(result.get("id", "")),
                "sampled": sampled,
                **extra,
            }
        )
    return records
