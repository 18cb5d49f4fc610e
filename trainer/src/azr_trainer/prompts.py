"""R1-style prompts for the six task × role cases and the evaluations.

Every prompt ends with ``Assistant: <think>`` so the response starts inside the thinking.
"""

from __future__ import annotations

from collections.abc import Sequence

from azr_trainer.tasks import InductionTask, Triplet

R1_TEMPLATE = (
    "A conversation between User and Assistant. The User asks a question and the Assistant "
    "answers it. The Assistant first reasons about the problem inside <think> </think> tags and "
    "then gives the final answer inside <answer> </answer> tags, i.e. "
    "<think> reasoning here </think> <answer> answer here </answer>.\n"
    "User: {instruction}\n"
    "Assistant: <think>"
)

_RULES = (
    "Rules for the program:\n"
    "- Python 3, defining a function named `f` (helpers and classes are allowed, imports at the "
    "top only from the standard library).\n"
    "- Deterministic: no randomness, time, files, network, printing or input().\n"
    "- It returns a value; the input is the argument list of one call `f(<input>)`.\n"
)


#: ``r1``: the paper's prompts. ``compact``: the same tasks and answer format in a few words, for
#: small models trained from scratch (the toy preset), where prompt length is most of the compute.
PROMPT_STYLES: tuple[str, ...] = ("r1", "compact")
COMPACT_TEMPLATE = "User: {instruction}\nAssistant: <think>"


def r1(instruction: str) -> str:
    return R1_TEMPLATE.format(instruction=instruction.strip())


def compact(instruction: str) -> str:
    return COMPACT_TEMPLATE.format(instruction=instruction.strip())


def _io_blocks(t: Triplet) -> str:
    return f"```python\n{t.program.strip()}\n```\n```input\n{t.input.strip()}\n```\n```output\n{t.output.strip()}\n```\n"


def _compact_propose_code(task_type: str, references: Sequence[Triplet]) -> str:
    refs = "".join(_io_blocks(t) for t in references)
    return compact(f"Propose a new {task_type} task (program f and one input) unlike these.\n{refs}")


def _compact_propose_induction(program: str, num_inputs: int) -> str:
    return compact(f"Propose {num_inputs} inputs and a message for f.\n```python\n{program.strip()}\n```")


def _compact_solve(task_type: str, task: Triplet | InductionTask) -> str:
    if task_type == "deduction":
        assert isinstance(task, Triplet)
        return compact(
            f"Deduce the output.\n```python\n{task.program.strip()}\n```\n```input\n{task.input.strip()}\n```"
        )
    if task_type == "abduction":
        assert isinstance(task, Triplet)
        return compact(
            f"Abduce an input.\n```python\n{task.program.strip()}\n```\n```output\n{task.output.strip()}\n```"
        )
    assert isinstance(task, InductionTask)
    pairs = "".join(f"```input\n{i.strip()}\n```\n```output\n{o.strip()}\n```\n" for i, o in task.visible)
    return compact(f"Induce f. Message: {task.message.strip()}\n{pairs}")


def _triplet_block(t: Triplet, i: int) -> str:
    return (
        f"### Reference {i}\n```python\n{t.program.strip()}\n```\n"
        f"```input\n{t.input.strip()}\n```\n```output\n{t.output.strip()}\n```\n"
    )


def propose_code_prompt(task_type: str, references: Sequence[Triplet], style: str = "r1") -> str:
    """Deduction/abduction proposer: a new program and one input, unlike the references."""
    if style == "compact":
        return _compact_propose_code(task_type, references)
    if task_type == "deduction":
        goal = (
            "Design a new Python program `f` and one input so that working out the output from "
            "the program and the input is a good reasoning exercise: not trivial, not impossible."
        )
    elif task_type == "abduction":
        goal = (
            "Design a new Python program `f` and one input so that working out an input from "
            "the program and its output is a good reasoning exercise: not trivial, not impossible."
        )
    else:
        raise ValueError(task_type)
    refs = "".join(_triplet_block(t, i + 1) for i, t in enumerate(references))
    instruction = (
        f"## Task: propose a {task_type} task\n{goal}\n"
        "It must differ from every reference below.\n\n"
        f"{_RULES}\n"
        f"## References\n{refs or '(none)'}\n"
        "## Answer format\n"
        "<answer>\n```python\ndef f(...):\n    ...\n```\n```input\narguments of one call\n```\n"
        "</answer>"
    )
    return r1(instruction)


def propose_induction_prompt(program: str, num_inputs: int, style: str = "r1") -> str:
    """Induction proposer: inputs for a given program and a message describing it."""
    if style == "compact":
        return _compact_propose_induction(program, num_inputs)
    instruction = (
        "## Task: propose an induction task\n"
        f"Here is a program. Write {num_inputs} different inputs for it, each the argument list "
        "of one call `f(<input>)`, chosen so that the input/output pairs reveal what `f` does, "
        "and a short message that hints at the function without giving away the code. Another "
        "model will have to write the program from half of the pairs and your message.\n\n"
        f"```python\n{program.strip()}\n```\n\n"
        "## Answer format\n"
        "<answer>\n"
        + "".join("```input\n...\n```\n" for _ in range(min(num_inputs, 2)))
        + f"(… {num_inputs} input blocks in all)\n```message\nyour message\n```\n</answer>"
    )
    return r1(instruction)


def solve_deduction_prompt(program: str, input_text: str) -> str:
    instruction = (
        "## Task: deduce the output\n"
        "Given the program and the input, what does `f(<input>)` return? Answer with the "
        "Python literal of the returned value (its repr).\n\n"
        f"```python\n{program.strip()}\n```\n```input\n{input_text.strip()}\n```\n\n"
        "## Answer format\n<answer>\n```output\nthe returned value\n```\n</answer>"
    )
    return r1(instruction)


def solve_abduction_prompt(program: str, output_text: str) -> str:
    instruction = (
        "## Task: abduce an input\n"
        "Given the program and an output, give an input (the argument list of one call) for "
        "which `f(<input>)` returns exactly that output.\n\n"
        f"```python\n{program.strip()}\n```\n```output\n{output_text.strip()}\n```\n\n"
        "## Answer format\n<answer>\n```input\narguments of one call\n```\n</answer>"
    )
    return r1(instruction)


def solve_induction_prompt(task: InductionTask) -> str:
    pairs = "".join(f"```input\n{i.strip()}\n```\n```output\n{o.strip()}\n```\n" for i, o in task.visible)
    instruction = (
        "## Task: induce the program\n"
        "Write a Python function `f` that maps every input below to its output (and works on "
        "further hidden examples of the same rule).\n"
        f"Message: {task.message.strip()}\n\n"
        f"{pairs}\n"
        "## Answer format\n<answer>\n```python\ndef f(...):\n    ...\n```\n</answer>"
    )
    return r1(instruction)


def solve_prompt(task_type: str, task: Triplet | InductionTask, style: str = "r1") -> str:
    if style == "compact":
        return _compact_solve(task_type, task)
    if task_type == "deduction":
        assert isinstance(task, Triplet)
        return solve_deduction_prompt(task.program, task.input)
    if task_type == "abduction":
        assert isinstance(task, Triplet)
        return solve_abduction_prompt(task.program, task.output)
    assert isinstance(task, InductionTask)
    return solve_induction_prompt(task)


def code_prompt(problem: str, entry_point: str) -> str:
    """A program-synthesis problem (MBPP+, HumanEval+): write the function ``entry_point``."""
    instruction = (
        "## Task: write a Python function\n"
        f"{problem.strip()}\n\n"
        f"Write the complete function `{entry_point}` in Python 3, with the imports it needs at "
        "the top.\n\n"
        f"## Answer format\n<answer>\n```python\ndef {entry_point}(...):\n    ...\n```\n</answer>"
    )
    return r1(instruction)


def math_prompt(problem: str) -> str:
    instruction = (
        f"{problem.strip()}\n\nReason step by step, and put the final answer inside "
        "\\boxed{} within the answer tags."
    )
    return r1(instruction)
