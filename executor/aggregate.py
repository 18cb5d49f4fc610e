"""Pure functions that turn sandbox reports into the contract's verdicts.

This is the judge. It runs in the trusted engine, where no program code ever runs, and
works on texts only: each report carries, per call of ``f``, the ``repr`` of what it
returned. Values are compared by parsing those texts as literals of builtin types
(``executor.literals``), never by ``eval`` and never by code the program could reach.
"""

from __future__ import annotations

from typing import Any

from executor import literals
from executor.sandbox.protocol import ChildResult
from executor.verdicts import InputOutcome, Verdict

# Verdicts worth no cache entry: they depend on load or on our own faults.
UNCACHEABLE = frozenset({Verdict.TIMEOUT, Verdict.SANDBOX_ERROR})

NOT_A_LITERAL = (
    "f returned a value whose repr() is not a literal of builtin types (None, bool, int, float, "
    "complex, str, bytes, tuple, list, dict, set, frozenset): {text}. Answers are judged as literals, "
    "so no answer could ever match this output"
)


def _verdict(status: str) -> Verdict:
    try:
        return Verdict(status)
    except ValueError:
        return Verdict.SANDBOX_ERROR


def shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


class _Canon:
    """Canonical forms of repr texts, each text parsed once however often it is compared."""

    def __init__(self) -> None:
        self._forms: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        form = self._forms.get(text)
        if form is None:
            form = self._forms[text] = literals.canonical_text(text)
        return form

    def same(self, first: str, second: str) -> bool:
        """Do two repr texts show the same value (a set printed in another order is the same)?"""
        return first == second or self(first) == self(second)

    def is_literal(self, text: str) -> bool:
        return not self(text).startswith(literals.RAW_PREFIX)


def _within_run(run: ChildResult, canon: _Canon | None = None) -> str | None:
    """A detail if the calls of f in one process returned different values (hidden state)."""
    canon = canon or _Canon()
    outputs = run.outputs
    for later in outputs[1:]:
        if not canon.same(outputs[0], later):
            return (
                "f returned different values for the same input within one process (hidden state "
                f"such as a mutable default or a global): {shorten(outputs[0])} then {shorten(later)}"
            )
    return None


def _figures(results: list[ChildResult]) -> tuple[float, int]:
    return max(r.cpu_ms for r in results), max(r.maxrss_kb for r in results)


def combine_repeats(results: list[ChildResult]) -> InputOutcome:
    """Fold the repeated runs of one (program, input) into one outcome.

    Any failing run decides the verdict. If every run succeeded, every call's output must
    show the same value (compared as parsed literals, so a set printed in another order is
    the same value); any difference is `nondeterministic`, never a valid task. An output
    that is not a literal cannot be judged, so it makes the task `bad_form`.
    """
    if not results:
        return InputOutcome(Verdict.SANDBOX_ERROR, detail="no run was made")
    cpu, rss = _figures(results)
    canon = _Canon()
    for run in results:
        verdict = _verdict(run.status)
        if verdict is not Verdict.OK:
            return InputOutcome(verdict, None, run.detail, [], cpu, rss)
        if not run.outputs:
            return InputOutcome(Verdict.SANDBOX_ERROR, None, "a run reported no output", [], cpu, rss)
        inside = _within_run(run, canon)
        if inside is not None:
            return InputOutcome(
                Verdict.NONDETERMINISTIC, None, inside, list(dict.fromkeys(run.outputs)), cpu, rss
            )
    firsts = [run.outputs[0] for run in results]
    if any(not canon.same(firsts[0], other) for other in firsts[1:]):
        distinct = list(dict.fromkeys(firsts))
        shown = " vs ".join(shorten(o) for o in distinct[:3])
        detail = (
            f"f returned different outputs in {len(results)} runs with different hash seeds "
            f"and address layouts: {shown}"
        )
        return InputOutcome(Verdict.NONDETERMINISTIC, None, detail, distinct, cpu, rss)
    if not canon.is_literal(firsts[0]):
        return InputOutcome(
            Verdict.BAD_FORM, None, NOT_A_LITERAL.format(text=shorten(firsts[0])), [], cpu, rss
        )
    return InputOutcome(Verdict.OK, firsts[0], "", [], cpu, rss)


def judge_call(run: ChildResult, gold: object, gold_text: str) -> tuple[Verdict, str]:
    """Did one execution of f return the gold value? (abduction; one induction case)"""
    verdict = _verdict(run.status)
    if verdict is not Verdict.OK:
        return verdict, run.detail
    if not run.outputs:
        return Verdict.SANDBOX_ERROR, "the run reported no output"
    inside = _within_run(run)
    if inside is not None:
        return Verdict.NONDETERMINISTIC, inside
    text = run.outputs[0]
    try:
        value = literals.parse_value(text)
    except literals.LiteralError:
        return Verdict.WRONG, f"expected {shorten(gold_text)}, got {shorten(text)} (not a literal)"
    if literals.values_equal(gold, value):
        return Verdict.OK, ""
    return Verdict.WRONG, f"expected {shorten(gold_text)}, got {shorten(text)}"


def judge_cases(runs: list[ChildResult], golds: list[tuple[object, str]]) -> tuple[Verdict, str]:
    """An induction answer is correct only if it returns the gold value on every case."""
    for index, (run, (gold, gold_text)) in enumerate(zip(runs, golds, strict=True)):
        verdict, detail = judge_call(run, gold, gold_text)
        if verdict is not Verdict.OK:
            return verdict, f"case {index}: {detail}"
    return Verdict.OK, ""


def outcome_to_cache(outcome: InputOutcome) -> dict[str, Any]:
    return {
        "verdict": outcome.verdict.value,
        "output": outcome.output,
        "detail": outcome.detail,
        "outputs_seen": outcome.outputs_seen,
        "cpu_ms": outcome.cpu_ms,
        "maxrss_kb": outcome.maxrss_kb,
    }


def outcome_from_cache(data: dict[str, Any]) -> InputOutcome:
    return InputOutcome(
        Verdict(data["verdict"]),
        data.get("output"),
        data.get("detail", ""),
        list(data.get("outputs_seen", [])),
        float(data.get("cpu_ms", 0.0)),
        int(data.get("maxrss_kb", 0)),
        cached=True,
    )


def task_verdict(outcomes: list[InputOutcome]) -> tuple[Verdict, str]:
    """A task is ok only if every input is; otherwise the first failing input decides."""
    for index, outcome in enumerate(outcomes):
        if outcome.verdict is not Verdict.OK:
            return outcome.verdict, f"input {index}: {outcome.verdict.value}: {outcome.detail}"
    return Verdict.OK, ""
