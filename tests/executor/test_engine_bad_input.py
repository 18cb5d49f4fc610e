"""Bad input: each item gets its own verdict and the rest of the batch is still served."""

from __future__ import annotations

from executor_helpers import validate_one

from executor.engine import Engine
from executor.verdicts import Answer, ValidateTask, Verdict

GOOD = "def f(a):\n    return a * 2"


def test_mixed_validate_batch_gets_one_verdict_each(engine: Engine) -> None:
    non_utf8 = b"def f(a):\n    return '\xff'".decode("utf-8", "surrogateescape")
    tasks = [
        ValidateTask("good-1", GOOD, ["3"]),
        ValidateTask("empty", "", ["1"]),
        ValidateTask("non-utf8", non_utf8, ["1"]),
        ValidateTask("ten-mb", GOOD + "\n" + "#" * 10_000_000, ["1"]),
        ValidateTask("syntax", "def f(a):\n    return (", ["1"]),
        ValidateTask("no-f", "def g(a):\n    return a", ["1"]),
        ValidateTask("bad-input", GOOD, ["1,,", "x = ", "1)\nimport os\nf(1", "2"]),
        ValidateTask("no-inputs", GOOD, []),
        ValidateTask("prints-megabytes", "def f(a):\n    print('x' * 3_000_000)\n    return a", ["1"]),
        ValidateTask("raises", "def f(a):\n    return 1 / a", ["0"]),
        ValidateTask("forbidden", "import os\ndef f(a):\n    return a", ["1"]),
        ValidateTask("unknown-name-in-input", GOOD, ["undefined_name"]),
        ValidateTask("good-2", GOOD, ["'ab'", "[1]"]),
    ]
    results = {r.id: r for r in engine.validate(tasks)}
    assert len(results) == len(tasks)
    expected = {
        "good-1": Verdict.OK,
        "empty": Verdict.BAD_FORM,
        "non-utf8": Verdict.BAD_FORM,
        "ten-mb": Verdict.BAD_FORM,
        "syntax": Verdict.SYNTAX_ERROR,
        "no-f": Verdict.BAD_FORM,
        "bad-input": Verdict.INVALID_INPUT,
        "no-inputs": Verdict.INVALID_INPUT,
        "prints-megabytes": Verdict.OUTPUT_LIMIT,
        "raises": Verdict.RUNTIME_ERROR,
        "forbidden": Verdict.FORBIDDEN,
        "unknown-name-in-input": Verdict.INVALID_INPUT,
        "good-2": Verdict.OK,
    }
    for task_id, verdict in expected.items():
        assert results[task_id].verdict is verdict, (task_id, results[task_id])
        assert results[task_id].valid is (verdict is Verdict.OK)
        if verdict is not Verdict.OK:
            assert results[task_id].detail, f"{task_id}: a failing task must say why"
    assert results["good-1"].outputs == ["6"]
    assert results["good-2"].outputs == ["'abab'", "[1, 1]"]
    bad = results["bad-input"]
    assert bad.input_verdicts == [Verdict.INVALID_INPUT] * 3 + [Verdict.OK]
    assert bad.outputs == [None, None, None, "4"]  # the inputs that ran keep their outputs
    assert "ZeroDivisionError" in results["raises"].detail
    assert "10,000,000" not in results["ten-mb"].detail and "limit" in results["ten-mb"].detail


def test_mixed_verify_batch_gets_one_verdict_each(engine: Engine) -> None:
    answers = [
        Answer("ok", "deduction", "6", GOOD, "3", "6"),
        Answer("newline", "deduction", "6\nimport os", GOOD, "3", "6"),
        Answer("statement", "deduction", "x = 6", GOOD, "3", "6"),
        Answer("no-gold", "deduction", "6"),
        Answer("escape", "abduction", "3)\nTrue or (0", GOOD, None, "6"),
        Answer("abd-ok", "abduction", "3", GOOD, None, "6"),
        Answer("abd-no-program", "abduction", "3", None, None, "6"),
        Answer("ind-empty", "induction", GOOD),
        Answer("ind-bad-case", "induction", GOOD, cases=()),
        Answer("flood", "abduction", "1", "def f(a):\n    print('y' * 3_000_000)\n    return a", None, "1"),
        Answer("ok-2", "deduction", "'abab'", GOOD, "'ab'", "'abab'"),
    ]
    results = {r.id: r for r in engine.verify(answers)}
    assert results["ok"].correct and results["ok-2"].correct and results["abd-ok"].correct
    for bad in ("newline", "statement", "no-gold", "escape", "abd-no-program", "ind-empty", "ind-bad-case"):
        assert results[bad].verdict is Verdict.INVALID_INPUT, (bad, results[bad])
        assert not results[bad].correct and results[bad].detail
    assert results["flood"].verdict is Verdict.OUTPUT_LIMIT


def test_print_limit_applies_to_each_call_of_f(engine: Engine) -> None:
    # 600k characters per call is under the 1M limit even though validate calls f twice.
    result = validate_one(engine, "def f(a):\n    print('A' * 600_000)\n    return a", "1")
    assert result.verdict is Verdict.OK, result


def test_huge_return_value_is_output_limit(engine: Engine) -> None:
    result = validate_one(engine, "def f(a):\n    return 'x' * (10 ** 7)", "1")
    assert result.verdict is Verdict.OUTPUT_LIMIT and "limit" in result.detail


def test_timeout_is_reported_and_not_cached(engine: Engine) -> None:
    program = "def f(a):\n    while True:\n        pass"
    result = validate_one(engine, program, "1", timeout_s=0.5)
    assert result.verdict is Verdict.TIMEOUT
    assert not validate_one(engine, program, "1", timeout_s=0.5).cached


def test_memory_bomb_is_memory_limit(engine: Engine) -> None:
    result = validate_one(engine, "def f(a):\n    return len([0] * (10 ** 10))", "1")
    assert result.verdict is Verdict.MEMORY_LIMIT
