"""A mixed batch with known verdicts, used against both modes."""

from __future__ import annotations

MIXED_TASKS = [
    (
        {"id": "ok", "program": "def f(a):\n    return a[::-1]", "inputs": ["'abc'", "[1, 2]"]},
        "ok",
        ["'cba'", "[2, 1]"],
    ),
    ({"id": "syntax", "program": "def f(a):\n    return (", "inputs": ["1"]}, "syntax_error", None),
    (
        {"id": "import", "program": "import os.path\ndef f(a):\n    return a", "inputs": ["1"]},
        "forbidden",
        None,
    ),
    ({"id": "nof", "program": "def g(a):\n    return a", "inputs": ["1"]}, "bad_form", None),
    (
        {"id": "badin", "program": "def f(a):\n    return a", "inputs": ["1)\nimport os\nf(2"]},
        "invalid_input",
        None,
    ),
    (
        {
            "id": "nondet",
            "program": "def f(s):\n    return ''.join(set(s))",
            "inputs": ["'abcdefghijklmnop'"],
        },
        "nondeterministic",
        None,
    ),
    ({"id": "loop", "program": "def f(a):\n    while True:\n        pass", "inputs": ["1"]}, "timeout", None),
    (
        {"id": "mem", "program": "def f(a):\n    return len('x' * (10 ** 11))", "inputs": ["1"]},
        "memory_limit",
        None,
    ),
    ({"id": "err", "program": "def f(a):\n    return 1 // a", "inputs": ["0"]}, "runtime_error", None),
    (
        {
            "id": "counter",
            "program": "from collections import Counter\ndef f(s):\n    return dict(Counter(s))",
            "inputs": ["'aab'"],
        },
        "ok",
        ["{'a': 2, 'b': 1}"],
    ),
    (
        # A Counter's repr is not a literal: no answer could be judged against it.
        {
            "id": "counter-repr",
            "program": "from collections import Counter\ndef f(s):\n    return Counter(s)",
            "inputs": ["'aab'"],
        },
        "bad_form",
        None,
    ),
]

MIXED_ANSWERS = [
    (
        {
            "id": "d-ok",
            "task_type": "deduction",
            "program": "def f(a):\n    return a[::-1]",
            "input": "'abc'",
            "output": "'cba'",
            "answer": "'cba'",
        },
        True,
        "ok",
    ),
    ({"id": "d-tuple", "task_type": "deduction", "output": "(1,)", "answer": "(1, )"}, True, "ok"),
    ({"id": "d-wrong", "task_type": "deduction", "output": "'cba'", "answer": "'abc'"}, False, "wrong"),
    (
        {"id": "d-stmt", "task_type": "deduction", "output": "1", "answer": "1\nimport os"},
        False,
        "invalid_input",
    ),
    (
        {
            "id": "a-ok",
            "task_type": "abduction",
            "program": "def f(a):\n    return a[::-1]",
            "output": "'cba'",
            "answer": "'abc'",
        },
        True,
        "ok",
    ),
    (
        {
            "id": "a-escape",
            "task_type": "abduction",
            "program": "def f(a, b):\n    return a",
            "output": "[9]",
            "answer": "[9], 'y')\nTrue or (0",
        },
        False,
        "invalid_input",
    ),
    (
        {
            "id": "i-ok",
            "task_type": "induction",
            "answer": "def f(a):\n    return a[::-1]",
            "cases": [{"input": "'xy'", "output": "'yx'"}, {"input": "[3]", "output": "[3]"}],
        },
        True,
        "ok",
    ),
    (
        {
            "id": "i-eqhack",
            "task_type": "induction",
            "answer": "class A:\n    def __eq__(self, o):\n        return True\ndef f(a):\n    return A()",
            "cases": [{"input": "1", "output": "2"}],
        },
        False,
        "wrong",
    ),
]


def check_validate_results(results: list[dict]) -> None:
    by_id = {r["id"]: r for r in results}
    assert len(by_id) == len(MIXED_TASKS)
    for task, verdict, outputs in MIXED_TASKS:
        result = by_id[task["id"]]
        assert result["verdict"] == verdict, result
        assert result["valid"] is (verdict == "ok")
        assert len(result["input_verdicts"]) == len(task["inputs"])
        if outputs is not None:
            assert result["outputs"] == outputs
        if verdict != "ok":
            assert result["detail"], result


def check_verify_results(results: list[dict]) -> None:
    by_id = {r["id"]: r for r in results}
    assert len(by_id) == len(MIXED_ANSWERS)
    for answer, correct, verdict in MIXED_ANSWERS:
        assert by_id[answer["id"]]["correct"] is correct, by_id[answer["id"]]
        assert by_id[answer["id"]]["verdict"] == verdict, by_id[answer["id"]]
