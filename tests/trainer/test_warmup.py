"""The tiny model's warm-up demonstrations must not teach "the output repeats the input"."""

from __future__ import annotations

import ast
import random

import pytest
from azr_trainer import warmup
from azr_trainer.tasks import IDENTITY_TRIPLET


def _value(text: str) -> object:
    return ast.literal_eval(text)


def _args(inp: str) -> tuple:
    return ast.literal_eval(f"({inp},)")


def test_no_demo_triplet_copies_its_input_except_the_identity_seed() -> None:
    triplets = warmup._demo_triplets(random.Random(0))
    assert len(triplets) == 1 + 2 * len(warmup.PROGRAMS)
    copies = [
        t for t in triplets if t.output.strip() == t.input.strip() or (_value(t.output),) == _args(t.input)
    ]
    assert copies == [IDENTITY_TRIPLET]


def test_demo_outputs_are_the_programs_true_outputs() -> None:
    hand = {
        ("def f(a):\n    return a[::-1]", "'abc'"): "'cba'",
        ("def f(n):\n    return sum(range(n))", "5"): "10",
        ("def f(a, b):\n    return a + b", "'x', 'y'"): "'xy'",
        ("def f(d):\n    return sorted(d.keys())", "{'b': 1, 'a': 2}"): "['a', 'b']",
    }
    for (prog, inp), want in hand.items():
        assert warmup.demo_output(prog, inp) == want
    # every input of every demo program, including those only proposers use, changes under f
    for prog, inputs in warmup.PROGRAMS:
        for inp in inputs:
            assert (_value(warmup.demo_output(prog, inp)),) != _args(inp), (prog, inp)


def test_demo_output_refuses_anything_but_the_fixed_programs() -> None:
    with pytest.raises(ValueError, match="fixed programs"):
        warmup.demo_output("def f(a):\n    return __import__('os').getcwd()", "1")


def test_deduction_demonstrations_answer_with_the_true_output() -> None:
    rng = random.Random(5)
    pairs = warmup.demonstrations(60, rng, num_references=2, num_inputs=4)
    solved = [(p, r) for p, r in pairs if "deduce the output" in p]
    assert solved
    for prompt, response in solved:
        prog = prompt.split("```python\n", 1)[1].split("\n```", 1)[0]
        inp = prompt.split("```input\n", 2)[1].split("\n```", 1)[0]
        out = response.split("```output\n", 1)[1].split("\n```", 1)[0]
        if prog == IDENTITY_TRIPLET.program:
            continue
        assert out == warmup.demo_output(prog, inp)
