"""Red team: the judge re-parses the same big output text again and again.

A program whose __repr__ alternates between two spellings of one 200,000-character literal
('[0,0,...]' and '[0, 0, ...]') makes `combine_repeats` parse ~9 texts per input (canonical_text
on both sides of every comparison, then is_literal): ~1.5 s of engine CPU per input, 8.6 s for
an 8-input, repeats=4 request of 175 characters, which the API runs ON THE EVENT LOOP
(api/services/execution.py execute_async for "small" payloads).
"""

from __future__ import annotations

import time

from executor import aggregate, literals
from executor.sandbox.protocol import ChildResult


def test_combine_repeats_parses_each_distinct_text_once(monkeypatch) -> None:
    a = "[" + ",".join(["0"] * 66000) + "]"
    b = "[" + ", ".join(["0"] * 66000) + "]"
    runs = [ChildResult("ok", (a, b)) for _ in range(4)]
    calls = []
    original = literals.parse_value
    monkeypatch.setattr(literals, "parse_value", lambda *x, **k: calls.append(1) or original(*x, **k))
    started = time.perf_counter()
    outcome = aggregate.combine_repeats(runs)
    elapsed = time.perf_counter() - started
    assert outcome.verdict.value == "ok"
    assert len(calls) <= 2, f"{len(calls)} parses of 2 distinct texts ({elapsed:.2f} s)"
