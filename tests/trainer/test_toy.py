"""The toy world: the family, its warm-up demonstrations (form, not answers), held-out sets."""

from __future__ import annotations

import random

import pytest
from azr_trainer import parsing, prompts, toy
from azr_trainer.config import ConfigError, load_config


@pytest.fixture
def family() -> toy.ToyFamily:
    return toy.family_from_config(load_config(preset="toy").toy)


def test_members_compute_their_outputs() -> None:
    fam = toy.ToyFamily(["add", "mod", "head", "rev", "len"], ks=[2], max_int=5)
    by_program = {m.program: m for m in fam.members}
    assert by_program["def f(a):\n    return a + 2"].run(3) == 5
    assert by_program["def f(a):\n    return a % 2"].run(5) == 1
    assert by_program["def f(a):\n    return a[:2]"].run("abc") == "ab"
    assert by_program["def f(a):\n    return a[::-1]"].run("ab") == "ba"
    assert by_program["def f(a):\n    return len(a)"].run("ab") == 2
    assert len(fam.members) == 5  # ops without k appear once


def test_triplets_are_literals_of_the_member(family: toy.ToyFamily) -> None:
    rng = random.Random(3)
    for _ in range(200):
        t = family.triplet(rng)
        member = next(m for m in family.members if m.program == t.program)
        import ast

        assert repr(member.run(ast.literal_eval(t.input))) == t.output


def test_bad_family_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown toy op"):
        toy.ToyFamily(["pow"])
    with pytest.raises(ConfigError, match="toy.ops"):
        load_config(preset="toy", overrides=["toy.ops=[add, nope]"])
    with pytest.raises(ConfigError, match="eval_sets"):
        load_config(preset="toy", overrides=["train.eval_sets=[humaneval]"])
    with pytest.raises(ConfigError, match="prompt_style"):
        load_config(preset="toy", overrides=["generation.prompt_style=short"])


def test_demonstrations_teach_the_form_and_not_the_answers(family: toy.ToyFamily) -> None:
    """A deduction demo answers with the program's output on a random input: the right kind of
    value, right only as often as chance makes it (never looking at the task's input)."""
    import ast

    rng = random.Random(0)
    pairs = toy.demonstrations(
        family, 1200, rng, num_references=2, num_inputs=4, style="compact", answers="kind"
    )
    solved = right = chance = 0.0
    for prompt, response in pairs:
        assert prompt.endswith("Assistant: <think>")
        if prompt.startswith("User: Propose a new"):
            p = parsing.parse_propose_code(response)
            assert p.ok and p.program in {m.program for m in family.members}
        elif prompt.startswith("User: Propose"):
            p = parsing.parse_propose_induction(response, 4)
            assert p.ok and len(p.inputs) == 4
        elif prompt.startswith("User: Deduce"):
            p = parsing.parse_solve(response, "deduction")
            assert p.ok
            program = prompt.split("```python\n")[1].split("\n```")[0]
            inp = ast.literal_eval(prompt.split("```input\n")[1].split("\n```")[0])
            member = family.member_of(program)
            assert member is not None
            outputs = [repr(member.run(v)) for v in _all_values(family, member.op.kind)]
            assert p.answer in outputs  # the form: a value this program can return
            solved += 1
            right += repr(member.run(inp)) == p.answer
            chance += outputs.count(repr(member.run(inp))) / len(outputs)
    assert solved >= 150
    # right about as often as an input-blind guess, far from always
    assert abs(right - chance) / solved < 0.08 and right / solved < 0.6


def _all_values(family: toy.ToyFamily, kind: str) -> list[object]:
    if kind == "int":
        return list(range(family.max_int + 1))
    import itertools

    return [
        "".join(p) for n in range(1, family.max_len + 1) for p in itertools.product(family.alphabet, repeat=n)
    ]


def test_heldout_set_is_fixed_distinct_and_per_type(family: toy.ToyFamily) -> None:
    types = ["deduction", "abduction", "induction"]
    a = toy.heldout_set(family, 20, types, num_inputs=4, seed=0)
    b = toy.heldout_set(family, 20, types, num_inputs=4, seed=0)
    assert a == b
    for tt in types:
        keys = [h.task.key() for h in a if h.task_type == tt]
        assert len(keys) == 20 == len(set(keys))
    assert toy.heldout_set(family, 20, types, 4, seed=1) != a


def test_compact_prompts_hold_the_task() -> None:
    t = toy.ToyFamily(["add"], ks=[1]).triplet(random.Random(0))
    ded = prompts.solve_prompt("deduction", t, "compact")
    assert (
        t.program in ded and f"```input\n{t.input}\n```" in ded and t.output not in ded.split("```input")[1]
    )
    abd = prompts.solve_prompt("abduction", t, "compact")
    assert f"```output\n{t.output}\n```" in abd and "```input" not in abd
    assert len(ded) < len(prompts.solve_prompt("deduction", t)) / 3


def test_every_demonstration_fits_in_the_presets_response_budget() -> None:
    """A response longer than generation.max_response_tokens is cut off and is a format error:
    with 40 tokens every induction proposal (50-58 tokens) failed, so that role never learned."""
    from azr_trainer import tiny

    cfg = load_config(preset="toy")
    family = toy.family_from_config(cfg.toy)
    sp, style = cfg.selfplay, cfg.generation.prompt_style
    tokenizer = tiny.train_tokenizer(
        toy.tokenizer_corpus(family, sp.num_references, sp.induction_num_inputs, style),
        cfg.model.tiny.vocab_size,
    )
    pairs = toy.demonstrations(
        family, 600, random.Random(3), sp.num_references, sp.induction_num_inputs, style, cfg.toy.demo_answers
    )
    longest = max(len(tokenizer(response)["input_ids"]) + 1 for _, response in pairs)  # + EOS
    assert longest <= cfg.generation.max_response_tokens, longest
