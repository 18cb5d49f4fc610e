"""MBPP+/HumanEval+ grading through the service: loading, the f wrapper, and a real run on
the shipped MBPP+ slice (reference solutions must pass, wrong ones fail)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from azr_trainer.backends.base import Generation
from azr_trainer.config import repo_root
from azr_trainer.eval import code_eval, code_sets, datasets

SLICE = Path(__file__).resolve().parents[2] / "data" / "mbppplus" / "MbppPlus-slice.jsonl"


def test_arg_text_and_rows() -> None:
    assert code_sets.arg_text([[3, 4], "a", {"k": 1}, None, 2.5]) == "[3, 4], 'a', {'k': 1}, None, 2.5"
    assert code_sets.arg_text([float("inf")]) is None  # no literal form: dropped
    row = {
        "task_id": "HumanEval/0",
        "prompt": "def add(a, b):\n    '''Add.'''\n",
        "entry_point": "add",
        "canonical_solution": "    return a + b\n",
        "base_input": [[1, 2], [float("nan"), 1]],
        "plus_input": {},
        "atol": 0,
    }
    p = code_sets.problem_from_row(row, "humaneval")
    assert p.reference == "def add(a, b):\n    '''Add.'''\n    return a + b\n"
    assert p.base_inputs == ("1, 2",) and p.plus_inputs == ()
    with pytest.raises(ValueError, match="unknown EvalPlus kind"):
        code_sets.problem_from_row(row, "lcb")


def test_inputs_take_the_types_of_the_prompts_example_call() -> None:
    """JSON has no tuples or complex numbers: the benchmark's own example call says where."""
    prompt = '"""\nDo it.\nassert g((4, (7, 6)), [1, 2], 1j, {"a": (1,)}) == 3\n"""\n'
    ex = code_sets.example_args(prompt, "g")
    assert ex == [(4, (7, 6)), [1, 2], 1j, {"a": (1,)}]
    args = [[1, [2, [3, [4]]]], [[5]], "2+3j", {"b": [2]}]
    got = [code_sets.conform(a, e) for a, e in zip(args, ex, strict=True)]
    assert got == [(1, (2, (3, (4,)))), [[5]], 2 + 3j, {"b": (2,)}]
    assert isinstance(got[0][1][1], tuple) and isinstance(got[1][0], list)
    assert code_sets.conform("x", 3) == "x" and code_sets.conform("1", True) == "1"
    assert code_sets.example_args(">>> add(2, 3)\n5", "add") == [2, 3]  # HumanEval doctest
    assert code_sets.example_args("assert h(x) == 1", "h") is None  # not literals
    row = {
        "task_id": "Mbpp/0",
        "prompt": prompt,
        "entry_point": "g",
        "canonical_solution": "def g(*a):\n    return 3",
        "base_input": [args],
        "plus_input": [],
    }
    p = code_sets.problem_from_row(row, "mbpp")
    assert p.base_inputs == ("(1, (2, (3, (4,)))), [[5]], (2+3j), {'b': (2,)}",)


def test_with_entry_wraps_the_entry_point() -> None:
    plain = code_sets.with_entry("def add(a, b):\n    return a + b", "add")
    ns: dict = {}
    exec(plain, ns)  # our own test program
    assert ns["f"](1, 2) == 3
    ns = {}
    exec(code_sets.with_entry("def similar_elements(a, b):\n    return [2, 1, 2]", "similar_elements"), ns)
    assert ns["f"]((1,), (2,)) == {1, 2}  # EvalPlus compares this task as sets
    ns = {}
    exec(code_sets.with_entry("def check_str(s):\n    return s or None", "check_str"), ns)
    assert ns["f"]("x") is True and ns["f"]("") is False
    ns = {}
    counter = "from collections import Counter\n\ndef freq(a):\n    return Counter(a)"
    exec(code_sets.with_entry(counter, "freq"), ns)
    out = ns["f"]([1, 1, 2])
    assert type(out) is dict and repr(out) == "{1: 2, 2: 1}"  # a literal the service can compare


def test_the_shipped_slice_loads() -> None:
    path, kind = datasets.code_set_path("mbppplus-slice", Path("/nowhere"), repo_root(SLICE))
    assert path == SLICE and kind == "mbpp"
    problems = code_sets.load_evalplus(path, kind)
    assert len(problems) == 30 and problems[0].id == "Mbpp/2"
    assert all(p.base_inputs and p.reference.strip() for p in problems)
    assert (SLICE.parent / "LICENSE").read_text().lstrip().startswith("Apache License")
    with pytest.raises(FileNotFoundError, match="docs/trainer/README.md"):
        code_sets.load_evalplus(Path("/nowhere/HumanEvalPlus.jsonl"), "humaneval")


@dataclass
class AnswerWith:
    """A backend double whose 'model' answers each problem with a program we choose."""

    programs: dict[str, str | None]
    prompts: list[str] = field(default_factory=list)

    def generate(self, prompts, greedy=False, max_new_tokens=None):
        out = []
        for p in prompts:
            self.prompts.append(p)
            entry = p.split("Write the complete function `", 1)[1].split("`", 1)[0]
            body = self.programs[entry]
            text = (
                "I do not know." if body is None else (f" t </think><answer>```python\n{body}\n```</answer>")
            )
            out.append(Generation([1], [2], text))
        return out

    def sync_weights(self) -> int:
        return 0


@pytest.mark.e2e
def test_reference_solutions_pass_and_wrong_ones_fail_through_the_service(azr_service: str) -> None:
    from azr_client import VerificationClient

    rows = [json.loads(line) for line in SLICE.read_text().splitlines()[:4]]
    problems = [code_sets.problem_from_row(r, "mbpp") for r in rows]
    entries = [p.entry_point for p in problems]
    assert "similar_elements" in entries  # a set-equality task is among them
    programs: dict[str, str | None] = {p.entry_point: p.reference for p in problems}
    programs[entries[1]] = f"def {entries[1]}(*args):\n    return None"  # wrong
    programs[entries[2]] = None  # no code block
    with VerificationClient(azr_service) as client:
        res, out_rows = code_eval.eval_code("mbppplus-slice", problems, AnswerWith(programs), client, 64)
    assert (res.n, res.skipped_problems, res.unverified) == (4, 0, 0)
    assert res.dropped_inputs == 0
    by_id = {r["id"]: r for r in out_rows}
    assert by_id[problems[0].id]["base"] and by_id[problems[0].id]["plus"]
    assert by_id[problems[3].id]["base"] and by_id[problems[3].id]["plus"]
    assert by_id[problems[1].id]["verdict"] == "wrong" and not by_id[problems[1].id]["base"]
    assert by_id[problems[2].id]["verdict"] == "no_code"
    assert (res.base_correct, res.plus_correct) == (2, 2)
    assert all(sum(r["cases"]) > 100 for r in out_rows)  # base + plus inputs were all checked
