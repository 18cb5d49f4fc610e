"""Parse model responses. Pure functions, no exceptions: a failure is a ``Parsed`` with an error.

A response is the text generated after the prompt's ``Assistant: <think>``. It is well formed
when it closes the thinking with ``</think>`` and then holds exactly one
``<answer>…</answer>`` section that contains the role's fenced blocks. Text after
``</answer>`` is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FENCE = re.compile(r"```[ \t]*([A-Za-z_][\w+-]*)?[ \t]*\r?\n(.*?)\r?\n?[ \t]*```", re.DOTALL)


@dataclass(frozen=True)
class Parsed:
    ok: bool
    error: str = ""
    program: str = ""
    input: str = ""
    inputs: list[str] = field(default_factory=list)
    message: str = ""
    answer: str = ""


def fail(reason: str) -> Parsed:
    return Parsed(ok=False, error=reason)


def answer_section(response: str) -> tuple[str | None, str]:
    """The text inside the single ``<answer>`` section, or ``(None, reason)``."""
    text = response if "<think>" in response[:20] else "<think>" + response
    if text.count("<think>") != 1:
        return None, "more than one <think> tag"
    if text.count("</think>") != 1:
        return None, "missing </think>" if "</think>" not in text else "more than one </think>"
    before, after = text.split("</think>", 1)
    if "<answer>" in before or "</answer>" in before:
        return None, "answer tag inside the thinking"
    after = after.lstrip()
    if not after.startswith("<answer>"):
        return None, "no <answer> right after </think>"
    if after.count("<answer>") != 1 or after.count("</answer>") < 1:
        return None, "missing </answer>" if "</answer>" not in after else "more than one <answer>"
    body = after[len("<answer>") :].split("</answer>", 1)[0]
    return body, ""


def fenced_blocks(section: str, label: str) -> list[str]:
    """Contents of the ```label blocks (label compared case-insensitively)."""
    return [
        body.strip("\n").rstrip()
        for lab, body in _FENCE.findall(section)
        if (lab or "").lower() == label.lower()
    ]


def _single(section: str, label: str) -> tuple[str | None, str]:
    blocks = [b for b in fenced_blocks(section, label) if b.strip()]
    if not blocks:
        return None, f"missing ```{label} block"
    return blocks[0], ""


def parse_propose_code(response: str) -> Parsed:
    """Deduction/abduction proposal: a ```python block and an ```input block."""
    section, why = answer_section(response)
    if section is None:
        return fail(why)
    program, why = _single(section, "python")
    if program is None:
        return fail(why)
    inp, why = _single(section, "input")
    if inp is None:
        return fail(why)
    return Parsed(ok=True, program=program, input=inp.strip())


def parse_propose_induction(response: str, max_inputs: int) -> Parsed:
    """Induction proposal: up to ``max_inputs`` ```input blocks and a ```message block."""
    section, why = answer_section(response)
    if section is None:
        return fail(why)
    inputs: list[str] = []
    for b in fenced_blocks(section, "input"):
        b = b.strip()
        if b and b not in inputs:
            inputs.append(b)
    if not inputs:
        return fail("missing ```input blocks")
    message, why = _single(section, "message")
    if message is None:
        return fail(why)
    return Parsed(ok=True, inputs=inputs[:max_inputs], message=message.strip())


_SOLVE_LABEL = {"deduction": "output", "abduction": "input", "induction": "python"}


def parse_solve(response: str, task_type: str) -> Parsed:
    """Solver answer: ```output (deduction), ```input (abduction) or ```python (induction)."""
    section, why = answer_section(response)
    if section is None:
        return fail(why)
    body, why = _single(section, _SOLVE_LABEL[task_type])
    if body is None:
        return fail(why)
    return Parsed(ok=True, answer=body.strip() if task_type != "induction" else body)


def extract_answer_loose(response: str, label: str) -> str | None:
    """Evaluation-time extraction: last ```label block anywhere, else the answer section."""
    blocks = [b for b in fenced_blocks(response, label) if b.strip()]
    if blocks:
        return blocks[-1].strip()
    section, _ = answer_section(response)
    if section is not None and section.strip():
        return section.strip()
    return None
