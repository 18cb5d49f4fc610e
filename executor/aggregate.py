"""Pure functions that turn sandbox results into the contract's verdicts."""

from __future__ import annotations

from typing import Any

from executor.verdicts import InputOutcome, Verdict

# Verdicts worth no cache entry: they depend on load or on our own faults.
UNCACHEABLE = frozenset({Verdict.TIMEOUT, Verdict.SANDBOX_ERROR})


def _verdict(status: str) -> Verdict:
    try:
        return Verdict(status)
    except ValueError:
        return Verdict.SANDBOX_ERROR


def _shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def combine_repeats(results: list[dict[str, Any]]) -> InputOutcome:
    """Fold the repeated runs of one (program, input) into one outcome.

    Any failing run decides the verdict. If every run succeeded, their outputs must
    agree (compared in canonical form, so a set printed in another order is the same
    value); any difference is `nondeterministic`, never a valid task.
    """
    if not results:
        return InputOutcome(Verdict.SANDBOX_ERROR, detail="no run was made")
    cpu = max(float(r.get("cpu_ms", 0.0)) for r in results)
    rss = max(int(r.get("maxrss_kb", 0)) for r in results)
    for run in results:
        verdict = _verdict(run.get("status", ""))
        if verdict is not Verdict.OK:
            seen = [str(o) for o in run.get("outputs", [])]
            return InputOutcome(verdict, None, str(run.get("detail", "")), seen, cpu, rss)
    canon = [r.get("canon") for r in results]
    outputs = [str(r.get("output")) for r in results]
    if any(c is None for c in canon) or len(set(canon)) > 1:
        distinct = list(dict.fromkeys(outputs))
        shown = " vs ".join(_shorten(o) for o in distinct[:3])
        detail = (
            f"f returned different outputs in {len(results)} runs with different hash seeds "
            f"and address layouts: {shown}"
        )
        return InputOutcome(Verdict.NONDETERMINISTIC, None, detail, distinct, cpu, rss)
    return InputOutcome(Verdict.OK, outputs[0], "", [], cpu, rss)


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


def induction_verdict(results: list[dict[str, Any]]) -> tuple[Verdict, str]:
    """An induction answer is correct only if it returns the gold output on every case."""
    for index, run in enumerate(results):
        verdict = _verdict(run.get("status", ""))
        if verdict is not Verdict.OK:
            return verdict, f"case {index}: {run.get('detail', '')}"
    return Verdict.OK, ""
