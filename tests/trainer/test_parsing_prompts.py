from __future__ import annotations

import pytest
from azr_trainer import parsing, prompts
from azr_trainer.tasks import IDENTITY_INDUCTION, IDENTITY_TRIPLET, InductionTask, Triplet

GOOD_CODE = (
    " plan: reverse </think>\n<answer>\n```python\ndef f(a):\n    return a[::-1]\n```\n"
    "```input\n'abc'\n```\n</answer>"
)


# ----------------------------------------------------------------------------- prompts
def test_prompts_are_r1_and_carry_the_task() -> None:
    refs = [IDENTITY_TRIPLET, Triplet("def f(x):\n    return x + 1", "2", "3")]
    p = prompts.propose_code_prompt("deduction", refs)
    assert p.startswith("A conversation between User and Assistant.")
    assert p.endswith("Assistant: <think>")
    assert "### Reference 2" in p and "return x + 1" in p and "```output\n3\n```" in p
    assert '```input\n"Hello world"\n```' in p
    assert "abduction" in prompts.propose_code_prompt("abduction", refs)
    with pytest.raises(ValueError):
        prompts.propose_code_prompt("induction", refs)

    pi = prompts.propose_induction_prompt("def f(a):\n    return a", 10)
    assert "10 different inputs" in pi and "```message" in pi

    sd = prompts.solve_prompt("deduction", IDENTITY_TRIPLET)
    assert '"Hello world"' in sd and "```output" in sd and "'Hello world'" not in sd
    sa = prompts.solve_prompt("abduction", IDENTITY_TRIPLET)
    assert "'Hello world'" in sa and '"Hello world"' not in sa


def test_induction_solver_sees_only_visible_pairs() -> None:
    task = InductionTask(
        "def f(a):\n    return a * 2",
        tuple(str(i) for i in range(10)),
        tuple(str(2 * i) for i in range(10)),
        "doubles",
    )
    assert len(task.visible) == 5 and len(task.hidden) == 5
    p = prompts.solve_prompt("induction", task)
    assert "```input\n4\n```" in p and "```input\n5\n```" not in p
    assert "doubles" in p and "return a * 2" not in p
    # an odd count shows floor(n/2) pairs, as the public AZR code
    odd = InductionTask("p", ("1", "2", "3"), ("1", "2", "3"), "m")
    assert odd.visible == [("1", "1")] and odd.hidden == [("2", "2"), ("3", "3")]
    one = InductionTask("p", ("1",), ("1",), "m")
    assert one.visible == one.hidden == [("1", "1")]
    assert IDENTITY_INDUCTION.hidden  # the seed can be checked too


# ----------------------------------------------------------------------------- parsing
def test_parse_good_code_proposal() -> None:
    p = parsing.parse_propose_code(GOOD_CODE)
    assert p.ok and p.program == "def f(a):\n    return a[::-1]" and p.input == "'abc'"
    # the prompt's own "<think>" may or may not be echoed
    assert parsing.parse_propose_code("<think>" + GOOD_CODE).ok


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("no tags at all", "missing </think>"),
        (" x </think> ```python\ndef f(a): return a\n```", "no <answer>"),
        (" x </think><answer>```python\ndef f(a):\n    return a\n```\n```input\n1\n```", "missing </answer>"),
        (" x </think><answer>```python\ndef f(a):\n    return a\n```</answer>", "missing ```input"),
        (" x </think><answer>```input\n1\n```</answer>", "missing ```python"),
        (" x </think></think><answer></answer>", "more than one </think>"),
        (" <answer>early</answer></think><answer>```python\nx\n```</answer>", "inside the thinking"),
        (" x </think><answer>a</answer><answer>b</answer>", "more than one <answer>"),
        (" x </think><answer>```python\n\n```\n```input\n1\n```</answer>", "missing ```python"),
    ],
)
def test_malformed_responses_are_format_errors(text: str, reason: str) -> None:
    p = parsing.parse_propose_code(text)
    assert not p.ok and reason in p.error


def test_extra_text_after_answer_is_ignored_and_labels_are_loose() -> None:
    text = (
        " t </think>  \n<answer>\nsome words\n```Python  \ndef f(a):\n    return a\n```\nmore words\n"
        "```input\n[1, 2], 3\n```\n</answer>\ntrailing chatter ```python\nignored\n```"
    )
    p = parsing.parse_propose_code(text)
    assert p.ok and p.program == "def f(a):\n    return a" and p.input == "[1, 2], 3"


def test_parse_induction_proposal() -> None:
    blocks = "".join(f"```input\n{i}\n```\n" for i in [1, 2, 2, 3, 4])
    text = f" t </think><answer>{blocks}```message\nadds one\n```</answer>"
    p = parsing.parse_propose_induction(text, max_inputs=3)
    assert p.ok and p.inputs == ["1", "2", "3"] and p.message == "adds one"  # deduped, capped
    assert not parsing.parse_propose_induction(f" t </think><answer>{blocks}</answer>", 10).ok
    no_inputs = " t </think><answer>```message\nm\n```</answer>"
    assert "missing ```input" in parsing.parse_propose_induction(no_inputs, 10).error


@pytest.mark.parametrize(
    ("task_type", "block", "expected"),
    [
        ("deduction", "```output\n'cba'\n```", "'cba'"),
        ("abduction", "```input\n'abc', 2\n```", "'abc', 2"),
        ("induction", "```python\ndef f(a):\n    return a\n```", "def f(a):\n    return a"),
    ],
)
def test_parse_solve(task_type: str, block: str, expected: str) -> None:
    p = parsing.parse_solve(f" ok </think>\n<answer>\n{block}\n</answer>", task_type)
    assert p.ok and p.answer == expected
    wrong_label = " ok </think><answer>```text\nx\n```</answer>"
    assert not parsing.parse_solve(wrong_label, task_type).ok


def test_multiline_abduction_input_kept_whole() -> None:
    p = parsing.parse_solve(" t </think><answer>```input\n[1,\n 2], 'y'\n```</answer>", "abduction")
    assert p.ok and p.answer == "[1,\n 2], 'y'"


def test_loose_extraction_for_eval() -> None:
    assert parsing.extract_answer_loose("blah ```output\n5\n``` more", "output") == "5"
    assert parsing.extract_answer_loose(" x </think><answer> 7 </answer>", "output") == "7"
    assert parsing.extract_answer_loose("nothing", "output") is None


# ----------------------------------------------------------------------------- official (lenient)
def _wrap(body: str) -> str:
    return f" t </think>\n<answer>{body}</answer>"


def test_lenient_solver_answer_without_a_block_is_the_whole_answer_text() -> None:
    bare = _wrap("\n[1, 2]\n")
    assert not parsing.parse_solve(bare, "deduction").ok  # strict: the block is required
    p = parsing.parse_solve(bare, "deduction", lenient=True)
    assert p.ok and p.answer == "[1, 2]"
    assert parsing.parse_solve(_wrap(" 'x', 3 "), "abduction", lenient=True).answer == "'x', 3"
    # with blocks the last one counts (strict takes the first)
    two = _wrap("```output\n1\n```\nno wait\n```output\n2\n```")
    assert parsing.parse_solve(two, "deduction").answer == "1"
    assert parsing.parse_solve(two, "deduction", lenient=True).answer == "2"
    # the tags are still required, and an empty answer is still a format error
    assert not parsing.parse_solve(" [1, 2]", "deduction", lenient=True).ok
    assert not parsing.parse_solve(_wrap("  \n"), "deduction", lenient=True).ok


def test_lenient_induction_solver_needs_a_code_block_labelled_or_not() -> None:
    plain = _wrap("```\ndef f(a):\n    return a\n```")
    assert not parsing.parse_solve(plain, "induction").ok
    assert parsing.parse_solve(plain, "induction", lenient=True).answer == "def f(a):\n    return a"
    assert not parsing.parse_solve(_wrap("def f(a): return a"), "induction", lenient=True).ok


def test_lenient_proposals() -> None:
    unlabelled = _wrap("```\ndef f(a):\n    return a\n```\n```input\n1\n```")
    assert not parsing.parse_propose_code(unlabelled).ok
    p = parsing.parse_propose_code(unlabelled, lenient=True)
    assert p.ok and p.program == "def f(a):\n    return a" and p.input == "1"
    # no whole-text fallback for the two-part proposal
    assert not parsing.parse_propose_code(_wrap("def f(a): return a\n1"), lenient=True).ok

    blocks = "".join(f"```input\n{i}\n```\n" for i in ["1", "2", "2", "3"])
    tagged = _wrap(blocks + "<message>adds</message>")
    assert not parsing.parse_propose_induction(tagged, 3).ok  # strict: ```message required
    p = parsing.parse_propose_induction(tagged, 3, lenient=True)
    assert p.ok and p.inputs == ["2", "2", "3"] and p.message == "adds"  # last 3, duplicates kept
    strict = parsing.parse_propose_induction(_wrap(blocks + "```message\nadds\n```"), 3)
    assert strict.inputs == ["1", "2", "3"]
