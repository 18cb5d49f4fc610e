"""Equality is Python `==` on values parsed as literals on the trusted side (the CRUXEval rule).

Answers and gold outputs are literals of builtin types (contract amendment of 2026-12-04):
anything else (a call such as ``Counter(...)`` or ``float('inf')``, a name, an operator, a
statement) is ``invalid_input``, judged without running anything.
"""

from __future__ import annotations

import pytest
from executor_helpers import abduction, deduction, induction, validate_one

from executor.engine import Engine
from executor.verdicts import Verdict

REVERSE = "def f(a):\n    return a[::-1]"
COUNTER = "from collections import Counter\n\ndef f(s):\n    return Counter(s)"
COUNTER_REPR = "Counter({'a': 2, 'b': 1, 'c': 1})"
DEFAULTDICT = (
    "from collections import defaultdict\n\ndef f(a):\n    d = defaultdict(int)\n    d[a] += 1\n    return d"
)
DEFAULTDICT_REPR = "defaultdict(<class 'int'>, {'x': 1})"


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
        ("frozenset({1, 2})", "frozenset([2, 1])"),
        ("(1+2j)", "1+2j"),
        ("b'ab'", "b'a' b'b'"),
        ("16", "0x10"),
        ("inf", "inf"),
        ("-inf", "-1e400"),
        ("nan", "nan"),
        ("[nan, {'k': nan}]", "[nan, {'k': nan}]"),
        ("{'a': 2}", "{'a': 2}"),
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
        ("nan", "inf"),
        ("inf", "-inf"),
        ("{'a': 1}", "{'a': 1.5}"),
        ("{1, 2}", "[1, 2]"),
        ("b'a'", "'a'"),
    ],
)
def test_different_values_are_wrong(engine: Engine, gold: str, answer: str) -> None:
    result = deduction(engine, answer, gold)
    assert not result.correct and result.verdict is Verdict.WRONG, result
    assert "expected" in result.detail


@pytest.mark.parametrize(
    ("gold", "answer", "which"),
    [
        # Objects of other types: their repr is a call, not a literal, on either side.
        ("Counter({'a': 2, 'b': 1})", "Counter({'b': 1, 'a': 2})", "gold output"),
        ("Counter({'a': 2})", "{'a': 2}", "gold output"),
        ("{'a': 2}", "Counter({'a': 2})", "answer"),
        ("OrderedDict([('a', 1)])", "{'a': 1}", "gold output"),
        ("deque([1, 2])", "deque([1, 2])", "gold output"),
        ("{'x': 1}", DEFAULTDICT_REPR, "answer"),
        # float('inf') is a call: inf, -inf and nan are the literals (repr of floats).
        ("inf", "float('inf')", "answer"),
        ("nan", "float('nan')", "answer"),
        ("float('inf')", "inf", "gold output"),
        # Computation is not a literal either.
        ("2", "1+1", "answer"),
        ("'AA'", "'A' * 2", "answer"),
        ("'x'", "f('x')", "answer"),
        ("1", "x", "answer"),
        ("[1, 2]", "[i for i in (1, 2)]", "answer"),
    ],
)
def test_answers_and_gold_outputs_that_are_not_literals_are_invalid_input(
    engine: Engine, gold: str, answer: str, which: str
) -> None:
    executions = engine.pool.executions
    result = deduction(engine, answer, gold)
    assert result.verdict is Verdict.INVALID_INPUT and not result.correct, result
    assert f"the {which} is not a literal" in result.detail, result.detail
    assert engine.pool.executions == executions, "a deduction is judged without running anything"


def test_deductions_run_nothing_even_with_the_program_given(engine: Engine) -> None:
    executions = engine.pool.executions
    assert deduction(engine, "'cba'", "'cba'", REVERSE, "'abc'").correct
    assert deduction(engine, "'abc'", "'cba'", REVERSE, "'abc'").verdict is Verdict.WRONG
    # The gold output is what counts, even when the program would return something else.
    assert deduction(engine, "'zz'", "'zz'", REVERSE, "'abc'").correct
    assert engine.pool.executions == executions


def test_counter_output_is_bad_form_in_validate_and_invalid_as_a_gold_output(engine: Engine) -> None:
    """A Counter's repr is not a literal: no answer could be judged against it, so the task is
    not valid (validate says why), and the same text given as a gold output is refused."""
    result = validate_one(engine, COUNTER, "'abca'")
    assert not result.valid and result.verdict is Verdict.BAD_FORM
    assert result.outputs == [None] and result.input_verdicts == [Verdict.BAD_FORM]
    assert "not a literal" in result.detail and COUNTER_REPR in result.detail
    # As a gold output, whatever the answer, with or without the program.
    for answer in (COUNTER_REPR, "{'a': 2, 'b': 1, 'c': 1}"):
        for program, text in ((COUNTER, "'abca'"), (None, None)):
            refused = deduction(engine, answer, COUNTER_REPR, program, text)
            assert (
                refused.verdict is Verdict.INVALID_INPUT and "gold output is not a literal" in refused.detail
            )
    assert abduction(engine, COUNTER, "'abca'", COUNTER_REPR).verdict is Verdict.INVALID_INPUT
    assert induction(engine, COUNTER, [("'abca'", COUNTER_REPR)]).verdict is Verdict.INVALID_INPUT
    # The program that returns the value as a literal round-trips through deduction.
    plain = "from collections import Counter\n\ndef f(s):\n    return dict(Counter(s))"
    valid = validate_one(engine, plain, "'abca'")
    assert valid.valid and valid.outputs == ["{'a': 2, 'b': 1, 'c': 1}"]
    assert deduction(engine, valid.outputs[0], valid.outputs[0], plain, "'abca'").correct
    assert deduction(engine, "{'c': 1, 'b': 1, 'a': 2}", valid.outputs[0]).correct


def test_non_literal_repr_is_never_judged_through_the_program(engine: Engine) -> None:
    """The old path that recomputed a non-expression gold output through the program is gone:
    such a text is refused as a gold output, and a program whose result is not a literal is
    wrong against a literal gold, whatever its object would compare equal to."""
    result = validate_one(engine, DEFAULTDICT, "'x'")
    assert result.verdict is Verdict.BAD_FORM and "not a literal" in result.detail
    assert DEFAULTDICT_REPR in result.detail
    executions = engine.pool.executions
    for answer in ("{'x': 1}", DEFAULTDICT_REPR):
        refused = deduction(engine, answer, DEFAULTDICT_REPR, DEFAULTDICT, "'x'")
        assert refused.verdict is Verdict.INVALID_INPUT and "gold output is not a literal" in refused.detail
    assert engine.pool.executions == executions, "the program is not run to judge a deduction"
    assert abduction(engine, DEFAULTDICT, "'x'", DEFAULTDICT_REPR).verdict is Verdict.INVALID_INPUT
    assert induction(engine, DEFAULTDICT, [("'x'", DEFAULTDICT_REPR)]).verdict is Verdict.INVALID_INPUT
    # defaultdict(int, {'x': 1}) == {'x': 1} in Python, but only its repr leaves the sandbox.
    wrong = abduction(engine, DEFAULTDICT, "'x'", "{'x': 1}")
    assert wrong.verdict is Verdict.WRONG and "not a literal" in wrong.detail
    wrong = induction(engine, DEFAULTDICT, [("'y'", "{'y': 1}")])
    assert (
        wrong.verdict is Verdict.WRONG
        and wrong.detail.startswith("case 0:")
        and "not a literal" in wrong.detail
    )


def test_abduction_is_judged_by_running_f_on_the_answer(engine: Engine) -> None:
    assert abduction(engine, REVERSE, "'abc'", "'cba'").correct
    assert abduction(engine, REVERSE, "[1, 2]", "[2, 1]").correct
    wrong = abduction(engine, REVERSE, "'abd'", "'cba'")
    assert wrong.verdict is Verdict.WRONG and not wrong.correct


def test_abduction_escape_is_invalid_input(engine: Engine) -> None:
    program = "def f(a, b):\n    return a == [1] and b == 'x'"
    result = abduction(engine, program, "[9], 'y')\nTrue or (0", "True")
    assert result.verdict is Verdict.INVALID_INPUT and not result.correct


@pytest.mark.parametrize(
    "answer",
    ["''.join(['A'] * 20)", "'A' * 20", "str('A')", "x", "*['A']", "**{'a': 'A'}", "a='A', 'B'"],
)
def test_abduction_answer_that_is_not_a_literal_argument_list_is_invalid_input(
    engine: Engine, answer: str
) -> None:
    executions = engine.pool.executions
    result = abduction(engine, "def f(a, b='B'):\n    return a", answer, "'A'")
    assert result.verdict is Verdict.INVALID_INPUT and not result.correct, result
    assert "not a literal argument list" in result.detail, result.detail
    assert engine.pool.executions == executions, "refused before anything runs"


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
    assert abduction(engine, cheat, "1", "2").verdict is Verdict.WRONG
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


@pytest.mark.parametrize(
    "answer",
    ["1\nimport os", "1; 2", "x = 1", "(lambda: __import__('os'))()", "__import__('os').system('id')"],
)
def test_deduction_answer_with_statement_or_code_is_invalid_input(engine: Engine, answer: str) -> None:
    executions = engine.pool.executions
    result = deduction(engine, answer, "1")
    assert result.verdict is Verdict.INVALID_INPUT and "the answer is not a literal" in result.detail, result
    assert engine.pool.executions == executions, "an answer is never run"


@pytest.mark.parametrize(
    ("answer", "says"),
    [("1 / 0", "'/'"), ("[][0]", "subscripts"), ("{}['k']", "subscripts"), ("int('x')", "int(...)")],
)
def test_deduction_answer_that_would_raise_is_invalid_input(engine: Engine, answer: str, says: str) -> None:
    """An expression that would raise is never evaluated: it is refused for not being a literal,
    and the detail names what is not a literal (no exception ever happens)."""
    result = deduction(engine, answer, "1")
    assert result.verdict is Verdict.INVALID_INPUT and "the answer is not a literal" in result.detail, result
    assert says in result.detail and "Error" not in result.detail, result.detail


def test_abduction_and_induction_of_the_same_run_keep_their_own_detail(engine: Engine) -> None:
    program = "def f(a):\n    return a * 2  # cache-key probe"
    first = abduction(engine, program, "3", "7")
    assert first.verdict is Verdict.WRONG and first.detail == "expected 7, got 6"
    second = induction(engine, program, [("3", "7")])
    assert second.verdict is Verdict.WRONG and second.detail == "case 0: expected 7, got 6", second
