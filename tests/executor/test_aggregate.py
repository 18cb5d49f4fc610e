"""Folding repeated runs into verdicts."""

from __future__ import annotations

from executor import aggregate
from executor.verdicts import InputOutcome, Verdict


def run(output: str, canon: str | None = None, status: str = "ok") -> dict:
    return {"status": status, "output": output, "canon": canon if canon is not None else output, "detail": ""}


def test_agreeing_runs_are_ok() -> None:
    outcome = aggregate.combine_repeats([run("[1]"), run("[1]")])
    assert outcome.verdict is Verdict.OK and outcome.output == "[1]"


def test_runs_that_differ_only_in_set_order_agree_by_canonical_form() -> None:
    outcome = aggregate.combine_repeats(
        [run("{'a', 'b'}", "set{'a', 'b'}"), run("{'b', 'a'}", "set{'a', 'b'}")]
    )
    assert outcome.verdict is Verdict.OK and outcome.output == "{'a', 'b'}"


def test_differing_runs_are_nondeterministic_with_both_outputs_in_detail() -> None:
    outcome = aggregate.combine_repeats([run("'ab'"), run("'ba'")])
    assert outcome.verdict is Verdict.NONDETERMINISTIC and outcome.output is None
    assert "'ab'" in outcome.detail and "'ba'" in outcome.detail
    assert outcome.outputs_seen == ["'ab'", "'ba'"]


def test_any_failing_run_decides() -> None:
    outcome = aggregate.combine_repeats([run("1"), {"status": "timeout", "detail": "slow"}])
    assert outcome.verdict is Verdict.TIMEOUT and outcome.detail == "slow"


def test_unknown_status_is_a_sandbox_error() -> None:
    assert aggregate.combine_repeats([{"status": "weird"}]).verdict is Verdict.SANDBOX_ERROR
    assert aggregate.combine_repeats([]).verdict is Verdict.SANDBOX_ERROR


def test_task_verdict_names_the_first_failing_input() -> None:
    verdict, detail = aggregate.task_verdict(
        [InputOutcome(Verdict.OK, "1"), InputOutcome(Verdict.RUNTIME_ERROR, None, "ZeroDivisionError")]
    )
    assert verdict is Verdict.RUNTIME_ERROR and detail.startswith("input 1: runtime_error")


def test_cache_round_trip_marks_cached() -> None:
    outcome = InputOutcome(Verdict.OK, "'x'", "", [], 1.5, 100)
    back = aggregate.outcome_from_cache(aggregate.outcome_to_cache(outcome))
    assert back.verdict is Verdict.OK and back.output == "'x'" and back.cached


def test_timeouts_and_sandbox_errors_are_not_cached() -> None:
    assert Verdict.TIMEOUT in aggregate.UNCACHEABLE and Verdict.SANDBOX_ERROR in aggregate.UNCACHEABLE
    assert Verdict.NONDETERMINISTIC not in aggregate.UNCACHEABLE


def test_induction_verdict_stops_at_the_first_failing_case() -> None:
    verdict, detail = aggregate.induction_verdict(
        [{"status": "ok"}, {"status": "wrong", "detail": "expected 1"}]
    )
    assert verdict is Verdict.WRONG and detail == "case 1: expected 1"
