"""The judge on the trusted side: sandbox reports (repr texts) folded into verdicts."""

from __future__ import annotations

import pytest

from executor import aggregate, literals
from executor.sandbox.protocol import SANDBOX_ERROR, ChildResult
from executor.verdicts import InputOutcome, Verdict


def run(
    *outputs: str, status: str = "ok", detail: str = "", cpu_ms: float = 1.0, maxrss_kb: int = 100
) -> ChildResult:
    """One execution's report: one repr text per call of f (two calls, like the engine's jobs)."""
    if status == "ok" and len(outputs) == 1:
        outputs = (outputs[0], outputs[0])
    return ChildResult(status, tuple(outputs), detail, cpu_ms=cpu_ms, maxrss_kb=maxrss_kb)


# --------------------------------------------------------------------------- combine_repeats


def test_agreeing_runs_are_ok() -> None:
    outcome = aggregate.combine_repeats([run("[1]"), run("[1]")])
    assert outcome.verdict is Verdict.OK and outcome.output == "[1]" and outcome.detail == ""
    assert outcome.outputs_seen == []


def test_runs_that_differ_only_in_set_order_agree_by_canonical_form() -> None:
    outcome = aggregate.combine_repeats([run("{'a', 'b'}"), run("{'b', 'a'}")])
    assert outcome.verdict is Verdict.OK and outcome.output == "{'a', 'b'}"
    # dict order too, nested, and within one run as well as between runs
    outcome = aggregate.combine_repeats(
        [run("[{1: 'x', 2: frozenset({3, 4})}]"), run("[{1: 'x', 2: frozenset({4, 3})}]")]
    )
    assert outcome.verdict is Verdict.OK and outcome.output == "[{1: 'x', 2: frozenset({3, 4})}]"
    within = aggregate.combine_repeats([run("{'a', 'b'}", "{'b', 'a'}")])
    assert within.verdict is Verdict.OK and within.output == "{'a', 'b'}"


def test_canonical_form_keeps_types_apart() -> None:
    """Equal under == but different values in the output text: 1 vs 1.0, a set vs a frozenset,
    a list vs a tuple, 0.0 vs -0.0 are a nondeterministic program, not one output."""
    for first, second in [
        ("1", "1.0"),
        ("{1}", "frozenset({1})"),
        ("[1]", "(1,)"),
        ("0.0", "-0.0"),
        ("1", "True"),
    ]:
        outcome = aggregate.combine_repeats([run(first), run(second)])
        assert outcome.verdict is Verdict.NONDETERMINISTIC, (first, second, outcome)


def test_differing_runs_are_nondeterministic_with_both_outputs_in_detail() -> None:
    outcome = aggregate.combine_repeats([run("'ab'"), run("'ba'")])
    assert outcome.verdict is Verdict.NONDETERMINISTIC and outcome.output is None
    assert "'ab'" in outcome.detail and "'ba'" in outcome.detail
    assert "different hash seeds" in outcome.detail
    assert outcome.outputs_seen == ["'ab'", "'ba'"]


def test_any_failing_run_decides() -> None:
    outcome = aggregate.combine_repeats([run("1"), run(status="timeout", detail="slow")])
    assert outcome.verdict is Verdict.TIMEOUT and outcome.detail == "slow" and outcome.output is None
    # first or later, and even when the other runs agree among themselves
    outcome = aggregate.combine_repeats(
        [run(status="runtime_error", detail="ZeroDivisionError: division by zero"), run("1"), run("1")]
    )
    assert outcome.verdict is Verdict.RUNTIME_ERROR and "ZeroDivisionError" in outcome.detail
    # a failing run decides before a difference between the others is looked at
    outcome = aggregate.combine_repeats([run("1"), run("2"), run(status="memory_limit", detail="oom")])
    assert outcome.verdict is Verdict.MEMORY_LIMIT and outcome.detail == "oom"


def test_unknown_status_is_a_sandbox_error() -> None:
    assert aggregate.combine_repeats([run(status="weird")]).verdict is Verdict.SANDBOX_ERROR
    assert aggregate.combine_repeats([run("1"), run(status="weird")]).verdict is Verdict.SANDBOX_ERROR
    assert aggregate.combine_repeats([ChildResult.error("lost")]).verdict is Verdict.SANDBOX_ERROR
    assert aggregate.combine_repeats([]).verdict is Verdict.SANDBOX_ERROR
    # an ok run with no output at all is our fault, not the program's
    assert aggregate.combine_repeats([ChildResult("ok", ())]).verdict is Verdict.SANDBOX_ERROR


def test_two_calls_within_one_run_that_differ_are_nondeterministic() -> None:
    outcome = aggregate.combine_repeats([run("[1]", "[1, 1]"), run("[1]", "[1, 1]")])
    assert outcome.verdict is Verdict.NONDETERMINISTIC and outcome.output is None
    assert "within one process" in outcome.detail
    assert "[1]" in outcome.detail and "[1, 1]" in outcome.detail
    assert outcome.outputs_seen == ["[1]", "[1, 1]"]
    # in a later run only: still caught
    later = aggregate.combine_repeats([run("0"), run("0", "1")])
    assert later.verdict is Verdict.NONDETERMINISTIC and "within one process" in later.detail


@pytest.mark.parametrize(
    "output",
    [
        "Point(x=1, y=2)",
        "Decimal('1.1')",
        "Fraction(1, 3)",
        "defaultdict(<class 'int'>, {'x': 1})",
        "Counter({'a': 2})",
        "deque([1])",
        "<object object at 0x7f0000000000>",
        "{Ellipsis}",
        "dict_keys([1, 2])",
    ],
)
def test_an_output_that_is_not_a_literal_is_bad_form(output: str) -> None:
    assert not literals.is_literal(output)
    outcome = aggregate.combine_repeats([run(output), run(output)])
    assert outcome.verdict is Verdict.BAD_FORM and outcome.output is None
    assert "not a literal" in outcome.detail and output[:40] in outcome.detail


def test_non_literal_outputs_that_differ_are_nondeterministic_as_text() -> None:
    outcome = aggregate.combine_repeats([run("<A object at 0x1>"), run("<A object at 0x2>")])
    assert outcome.verdict is Verdict.NONDETERMINISTIC


def test_resource_figures_are_the_most_of_any_run() -> None:
    outcome = aggregate.combine_repeats(
        [run("1", cpu_ms=3.0, maxrss_kb=50), run("1", cpu_ms=1.0, maxrss_kb=90)]
    )
    assert outcome.cpu_ms == 3.0 and outcome.maxrss_kb == 90


# --------------------------------------------------------------------------- judge_call / judge_cases


def judge(output_texts: tuple[str, ...] | str, gold_text: str, status: str = "ok") -> tuple[Verdict, str]:
    texts = (output_texts,) if isinstance(output_texts, str) else output_texts
    return aggregate.judge_call(run(*texts, status=status), literals.parse_value(gold_text), gold_text)


def test_judge_call_correct_values_are_ok() -> None:
    assert judge("[2, 1]", "[2, 1]") == (Verdict.OK, "")
    assert judge("{'b', 'a'}", "{'a', 'b'}") == (Verdict.OK, "")
    assert judge("1", "1.0") == (Verdict.OK, "")  # Python's ==
    assert judge("(1,)", "(1, )") == (Verdict.OK, "")
    assert judge("[nan, inf]", "[nan, inf]") == (Verdict.OK, "")  # nan equals nan here


def test_judge_call_wrong_value_is_wrong_with_both_texts() -> None:
    verdict, detail = judge("[1, 2]", "[2, 1]")
    assert verdict is Verdict.WRONG and detail == "expected [2, 1], got [1, 2]"
    verdict, _ = judge("'1'", "1")
    assert verdict is Verdict.WRONG
    verdict, _ = judge("[1]", "(1,)")
    assert verdict is Verdict.WRONG


def test_judge_call_output_that_is_not_a_literal_is_wrong() -> None:
    """An object whose repr looks like the gold, or whose __eq__ is always true, is never
    compared as an object: its repr is not a literal, so it is wrong."""
    verdict, detail = judge("Counter({'a': 2})", "{'a': 2}")
    assert verdict is Verdict.WRONG and "not a literal" in detail and "Counter" in detail
    verdict, detail = judge("<__main__.Anything object at 0x7f00>", "1")
    assert verdict is Verdict.WRONG and "not a literal" in detail


def test_judge_call_failing_run_decides_and_within_run_differences_are_nondeterministic() -> None:
    assert judge((), "1", status="runtime_error")[0] is Verdict.RUNTIME_ERROR
    assert aggregate.judge_call(run(status="timeout", detail="slow"), 1, "1") == (Verdict.TIMEOUT, "slow")
    assert aggregate.judge_call(run(status="weird"), 1, "1")[0] is Verdict.SANDBOX_ERROR
    assert aggregate.judge_call(ChildResult("ok", ()), 1, "1")[0] is Verdict.SANDBOX_ERROR
    # the first call happens to match the gold; the second does not: hidden state, not correct
    verdict, detail = judge(("1", "2"), "1")
    assert verdict is Verdict.NONDETERMINISTIC and "within one process" in detail


def test_judge_cases_all_correct_is_ok() -> None:
    golds = [(literals.parse_value(t), t) for t in ("'ba'", "[3, 2, 1]")]
    assert aggregate.judge_cases([run("'ba'"), run("[3, 2, 1]")], golds) == (Verdict.OK, "")


def test_judge_cases_first_failing_case_decides_with_its_number() -> None:
    golds = [(literals.parse_value(t), t) for t in ("1", "2", "3", "4")]
    runs = [run("1"), run("2"), run("Decimal('3')"), run(status="timeout", detail="slow")]
    verdict, detail = aggregate.judge_cases(runs, golds)
    assert verdict is Verdict.WRONG and detail.startswith("case 2: ") and "not a literal" in detail
    runs = [run("1"), run(status="runtime_error", detail="KeyError: 'x'"), run("0"), run("4")]
    assert aggregate.judge_cases(runs, golds) == (Verdict.RUNTIME_ERROR, "case 1: KeyError: 'x'")
    runs = [run("1"), run("2"), run("3"), run("5")]
    assert aggregate.judge_cases(runs, golds) == (Verdict.WRONG, "case 3: expected 4, got 5")


# --------------------------------------------------------------------------- task verdict, cache


def test_task_verdict_names_the_first_failing_input() -> None:
    verdict, detail = aggregate.task_verdict(
        [InputOutcome(Verdict.OK, "1"), InputOutcome(Verdict.RUNTIME_ERROR, None, "ZeroDivisionError")]
    )
    assert verdict is Verdict.RUNTIME_ERROR and detail.startswith("input 1: runtime_error")


def test_cache_round_trip_marks_cached() -> None:
    outcome = InputOutcome(Verdict.OK, "'x'", "", [], 1.5, 100)
    back = aggregate.outcome_from_cache(aggregate.outcome_to_cache(outcome))
    assert back.verdict is Verdict.OK and back.output == "'x'" and back.cached
    assert back.cpu_ms == 1.5 and back.maxrss_kb == 100


def test_timeouts_and_sandbox_errors_are_not_cached() -> None:
    assert Verdict.TIMEOUT in aggregate.UNCACHEABLE and Verdict.SANDBOX_ERROR in aggregate.UNCACHEABLE
    assert Verdict.NONDETERMINISTIC not in aggregate.UNCACHEABLE
    assert Verdict.BAD_FORM not in aggregate.UNCACHEABLE
    assert SANDBOX_ERROR == Verdict.SANDBOX_ERROR.value
