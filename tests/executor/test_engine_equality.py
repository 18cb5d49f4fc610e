"""Equality is Python `==` evaluated inside the sandbox (the CRUXEval rule)."""

from __future__ import annotations

import pytest
from executor_helpers import abduction, deduction, induction, validate_one

from executor.engine import Engine
from executor.verdicts import Verdict

REVERSE = "def f(a):\n    return a[::-1]"


@pytest.mark.parametrize(
    ("gold", "answer"),
    [
        ("(1,)", "(1, )"),
        ("{1: 0, 2: 0}", "{2: 0, 1: 0}"),
        ("1.0", "1"),
        ("True", "1"),
        ('"Hello world"', "'Hello world'"),
        ("[1, 2]", "[1,2]"),
        ("{'a', 'b'}", "{'b', 'a'}"),
        ("Counter({'a': 2, 'b': 1})", "Counter({'b': 1, 'a': 2})"),
        ("Counter({'a': 2})", "{'a': 2}"),
        ("inf", "float('inf')"),
        ("-inf", "-1e400"),
        ("OrderedDict([('a', 1)])", "{'a': 1}"),
        ("deque([1, 2])", "deque([1, 2])"),
    ],
)
def test_equal_values_are_correct_deductions(engine: Engine, gold: str, answer: str) -> None:
    result = deduction(engine, answer, gold)
    assert result.correct and result.verdict is Verdict.OK, result


@pytest.mark.parametrize(
    ("gold", "answer"),
    [
        ("(1,)", "[1]"),
        ("'1'", "1"),
        ("[1, 2]", "[2, 1]"),
        ("nan", "float('nan')"),
        ("{'a': 1}", "{'a': 1.5}"),
    ],
)
def test_different_values_are_wrong(engine: Engine, gold: str, answer: str) -> None:
    result = deduction(engine, answer, gold)
    assert not result.correct and result.verdict is Verdict.WRONG, result
    assert "expected" in result.detail


def test_counter_output_from_validate_round_trips_through_deduction(engine: Engine) -> None:
    program = "from collections import Counter\n\ndef f(s):\n    return Counter(s)"
    result = validate_one(engine, program, "'abca'")
    assert result.valid and result.outputs[0].startswith("Counter(")
    assert deduction(engine, result.outputs[0], result.outputs[0], program, "'abca'").correct
    # A solver may name the value any way that is == to it; no import of Counter needed.
    assert deduction(engine, "{'a': 2, 'b': 1, 'c': 1}", result.outputs[0]).correct


def test_non_expression_repr_is_judged_through_the_program(engine: Engine) -> None:
    program = "from collections import defaultdict\n\ndef f(a):\n    d = defaultdict(int)\n    d[a] += 1\n    return d"
    gold = validate_one(engine, program, "'x'").outputs[0]
    assert gold == "defaultdict(<class 'int'>, {'x': 1})"
    assert deduction(engine, "{'x': 1}", gold, program, "'x'").correct
    assert deduction(engine, "{'x': 2}", gold, program, "'x'").verdict is Verdict.WRONG
    # Without the program the gold text cannot be evaluated at all.
    assert deduction(engine, "{'x': 1}", gold).verdict is Verdict.INVALID_INPUT
    # A gold text the program does not reproduce is refused, not trusted.
    assert (
        deduction(engine, "{'x': 1}", gold.replace("1}", "5}"), program, "'x'").verdict
        is Verdict.INVALID_INPUT
    )
    # Abduction and induction fall back to comparing repr() text.
    assert abduction(engine, program, "'x'", gold).correct
    assert abduction(engine, program, "'y'", gold).verdict is Verdict.WRONG
    assert induction(engine, program, [("'x'", gold)]).correct


def test_abduction_is_judged_by_running_f_on_the_answer(engine: Engine) -> None:
    assert abduction(engine, REVERSE, "'abc'", "'cba'").correct
    assert abduction(engine, REVERSE, "[1, 2]", "[2, 1]").correct
    wrong = abduction(engine, REVERSE, "'abd'", "'cba'")
    assert wrong.verdict is Verdict.WRONG and not wrong.correct


def test_abduction_escape_is_invalid_input(engine: Engine) -> None:
    program = "def f(a, b):\n    return a == [1] and b == 'x'"
    result = abduction(engine, program, "[9], 'y')\nTrue or (0", "True")
    assert result.verdict is Verdict.INVALID_INPUT and not result.correct


def test_abduction_with_keyword_and_multi_line_answer(engine: Engine) -> None:
    program = "def f(d, key):\n    return d[key]"
    assert abduction(engine, program, "{\n    'a': 1\n},\nkey='a'", "1").correct


def test_induction_object_whose_eq_is_always_true_is_wrong(engine: Engine) -> None:
    cheat = (
        "class Anything:\n    def __eq__(self, other):\n        return True\n    __hash__ = None\n\n"
        "def f(a):\n    return Anything()"
    )
    result = induction(engine, cheat, [("1", "2"), ("'a'", "'b'")])
    assert result.verdict is Verdict.WRONG and not result.correct
    # The same trick as an abduction program's output, and a reflected __eq__ on a str subclass.
    reflected = (
        "class S(str):\n    def __eq__(self, other):\n        return True\n    __hash__ = str.__hash__\n\n"
        "def f(a):\n    return S('zzz')"
    )
    assert induction(engine, reflected, [("1", "'expected'")]).verdict is Verdict.WRONG


def test_induction_equal_values_pass_and_one_wrong_case_fails(engine: Engine) -> None:
    cases = [("'ab'", "'ba'"), ("[1, 2, 3]", "[3, 2, 1]"), ("(1, 2)", "(2, 1)")]
    assert induction(engine, REVERSE, cases).correct
    result = induction(engine, REVERSE, [*cases, ("'xy'", "'xy'")])
    assert result.verdict is Verdict.WRONG and result.detail.startswith("case 3")


def test_induction_answer_passes_the_same_static_checks(engine: Engine) -> None:
    result = induction(engine, "import os\ndef f(a):\n    return a", [("1", "1")])
    assert result.verdict is Verdict.FORBIDDEN
    assert induction(engine, "def g(a):\n    return a", [("1", "1")]).verdict is Verdict.BAD_FORM


def test_deduction_answer_with_statement_is_invalid_input(engine: Engine) -> None:
    assert deduction(engine, "1\nimport os", "1").verdict is Verdict.INVALID_INPUT
    assert deduction(engine, "(lambda: __import__('os'))()", "1").verdict is Verdict.FORBIDDEN


def test_deduction_answer_that_raises_is_invalid_input(engine: Engine) -> None:
    result = deduction(engine, "1 / 0", "1")
    assert result.verdict is Verdict.INVALID_INPUT and "ZeroDivisionError" in result.detail
